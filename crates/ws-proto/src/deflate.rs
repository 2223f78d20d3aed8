//! permessage-deflate (RFC 7692): parameter negotiation and the per-message codecs.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::ProtocolError;

/// RFC 7692 §7.2.1: the tail that a sync flush leaves and that senders strip.
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What one side is willing to negotiate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Server: always compress each message on its own (and say so with
    /// `server_no_context_takeover`). Default `true`: it lets one compressed broadcast be
    /// shared by every connection and keeps no compressor state between messages.
    /// Client: ask the server for it.
    pub server_no_context_takeover: bool,
    /// Server: ask the client to compress each message on its own, so no inflate window
    /// is kept between messages. Default `true` (saves ~40 KiB per idle connection).
    /// Client: offer it.
    pub client_no_context_takeover: bool,
    /// Largest LZ77 window (log2) the server compresses with, 9-15. Default 15.
    pub server_max_window_bits: u8,
    /// Largest window the client should compress with, 9-15. Default 15.
    pub client_max_window_bits: u8,
    /// Messages shorter than this are sent uncompressed (RFC 7692 allows this per message).
    /// Default 256 bytes.
    pub compress_threshold: usize,
    /// zlib compression level, 0-9. Default 1: most of the gain for a fraction of the CPU.
    pub level: u32,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            compress_threshold: 256,
            level: 1,
        }
    }
}

impl DeflateConfig {
    /// Sets [`DeflateConfig::server_no_context_takeover`].
    pub fn server_no_context_takeover(mut self, v: bool) -> Self {
        self.server_no_context_takeover = v;
        self
    }
    /// Sets [`DeflateConfig::client_no_context_takeover`].
    pub fn client_no_context_takeover(mut self, v: bool) -> Self {
        self.client_no_context_takeover = v;
        self
    }
    /// Sets [`DeflateConfig::server_max_window_bits`] (clamped to 9-15).
    pub fn server_max_window_bits(mut self, v: u8) -> Self {
        self.server_max_window_bits = v.clamp(9, 15);
        self
    }
    /// Sets [`DeflateConfig::client_max_window_bits`] (clamped to 9-15).
    pub fn client_max_window_bits(mut self, v: u8) -> Self {
        self.client_max_window_bits = v.clamp(9, 15);
        self
    }
    /// Sets [`DeflateConfig::compress_threshold`].
    pub fn compress_threshold(mut self, v: usize) -> Self {
        self.compress_threshold = v;
        self
    }
    /// Sets [`DeflateConfig::level`] (clamped to 0-9).
    pub fn level(mut self, v: u32) -> Self {
        self.level = v.min(9);
        self
    }
}

/// The outcome of a negotiation, from one endpoint's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// Window bits to compress with; `None` when we must not compress at all (the peer
    /// asked for a window of 8, which zlib cannot produce).
    pub compress_window: Option<u8>,
    /// Reset the compressor after every message.
    pub compress_no_context_takeover: bool,
    /// The peer resets its compressor after every message, so ours may drop its window.
    pub decompress_no_context_takeover: bool,
    /// Messages shorter than this are sent uncompressed.
    pub compress_threshold: usize,
    /// zlib level.
    pub level: u32,
}

/// One parsed `permessage-deflate` offer or response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

/// Parses one extension element (`permessage-deflate; a; b=1`). `None` if it is another
/// extension; `Some(Err)` if it is ours but malformed (RFC 7692 §7: must be declined).
fn parse_element(element: &str) -> Option<Result<Params, ()>> {
    let mut parts = element.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut p = Params::default();
    let mut seen = [false; 4];
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (part, None),
        };
        let idx = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                p.server_no_context_takeover = true;
                0
            }
            "client_no_context_takeover" if value.is_none() => {
                p.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                p.server_max_window_bits = Some(match value.map(window_bits) {
                    Some(Some(b)) => b,
                    _ => return Some(Err(())),
                });
                2
            }
            "client_max_window_bits" => {
                p.client_max_window_bits = Some(match value {
                    None => None,
                    Some(v) => match window_bits(v) {
                        Some(b) => Some(b),
                        None => return Some(Err(())),
                    },
                });
                3
            }
            _ => return Some(Err(())),
        };
        // RFC 7692 §7.1: an offer with a duplicated parameter must be declined.
        if std::mem::replace(&mut seen[idx], true) {
            return Some(Err(()));
        }
    }
    Some(Ok(p))
}

fn window_bits(v: &str) -> Option<u8> {
    // RFC 7692 §7.1.2.1: 1*DIGIT in 8..=15, no leading zeros.
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// Splits a `Sec-WebSocket-Extensions` header value into elements, outside quotes.
fn elements(header: &str) -> impl Iterator<Item = &str> {
    header.split(',').map(str::trim).filter(|e| !e.is_empty())
}

impl DeflateConfig {
    /// Server side: picks the first acceptable `permessage-deflate` offer among the
    /// `Sec-WebSocket-Extensions` header values, returning the response header value and
    /// the negotiated parameters. `None` declines compression.
    pub fn accept_offer<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Option<(String, DeflateParams)> {
        for header in headers {
            for element in elements(header) {
                let Some(Ok(offer)) = parse_element(element) else {
                    continue;
                };
                let mut compress_window = self.server_max_window_bits;
                if let Some(requested) = offer.server_max_window_bits {
                    // zlib cannot compress with a 256-byte window; decline this offer.
                    if requested < 9 {
                        continue;
                    }
                    compress_window = compress_window.min(requested);
                }
                let mut response = String::from("permessage-deflate");
                let server_nct =
                    offer.server_no_context_takeover || self.server_no_context_takeover;
                if server_nct {
                    response.push_str("; server_no_context_takeover");
                }
                // RFC 7692 §7.1.1.2: the server may ask this of any client.
                let client_nct =
                    offer.client_no_context_takeover || self.client_no_context_takeover;
                if client_nct {
                    response.push_str("; client_no_context_takeover");
                }
                if offer.server_max_window_bits.is_some() {
                    response.push_str(&format!("; server_max_window_bits={compress_window}"));
                }
                if let Some(client_bits) = offer.client_max_window_bits {
                    let wanted = client_bits.unwrap_or(15).min(self.client_max_window_bits);
                    if wanted < 15 {
                        response.push_str(&format!("; client_max_window_bits={wanted}"));
                    }
                }
                return Some((
                    response,
                    DeflateParams {
                        compress_window: Some(compress_window),
                        compress_no_context_takeover: server_nct,
                        // Our inflater always has a 15-bit window, so it can read any
                        // stream the client produces whatever window it chose.
                        decompress_no_context_takeover: client_nct,
                        compress_threshold: self.compress_threshold,
                        level: self.level,
                    },
                ));
            }
        }
        None
    }

    /// Client side: the `Sec-WebSocket-Extensions` value to offer.
    pub fn offer(&self) -> String {
        let mut s = String::from("permessage-deflate; client_max_window_bits");
        if self.client_max_window_bits < 15 {
            s.push_str(&format!("={}", self.client_max_window_bits));
        }
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        s
    }

    /// Client side: checks the server's response against what [`DeflateConfig::offer`]
    /// offered. `Ok(None)` if the server did not enable compression.
    pub fn accept_response<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<DeflateParams>, &'static str> {
        let mut found = None;
        for header in headers {
            for element in elements(header) {
                match parse_element(element) {
                    None => return Err("unknown extension"),
                    Some(Err(())) => return Err("malformed permessage-deflate"),
                    Some(Ok(p)) => {
                        if found.replace(p).is_some() {
                            return Err("permessage-deflate twice");
                        }
                    }
                }
            }
        }
        let Some(p) = found else { return Ok(None) };
        if let Some(bits) = p.server_max_window_bits {
            if self.server_max_window_bits < 15 && bits > self.server_max_window_bits {
                return Err("server_max_window_bits above the offer");
            }
        }
        let compress_window = match p.client_max_window_bits {
            // RFC 7692 §7.1.2.2: a value is required in a response.
            Some(None) => return Err("client_max_window_bits without a value"),
            Some(Some(bits)) if bits > self.client_max_window_bits => {
                return Err("client_max_window_bits above the offer")
            }
            Some(Some(8)) => None,
            Some(Some(bits)) => Some(bits),
            None => Some(self.client_max_window_bits),
        };
        if self.server_no_context_takeover && !p.server_no_context_takeover {
            // The server may ignore our request, but then it keeps its window: fine,
            // our inflater keeps its state too.
        }
        Ok(Some(DeflateParams {
            compress_window,
            compress_no_context_takeover: p.client_no_context_takeover
                || self.client_no_context_takeover,
            decompress_no_context_takeover: p.server_no_context_takeover,
            compress_threshold: self.compress_threshold,
            level: self.level,
        }))
    }
}

/// A raw-deflate compressor producing RFC 7692 message payloads.
pub struct Deflater {
    inner: Compress,
    no_context_takeover: bool,
}

impl Deflater {
    /// A compressor with the given window and level.
    pub fn new(window_bits: u8, level: u32, no_context_takeover: bool) -> Self {
        Self {
            inner: Compress::new_with_window_bits(
                Compression::new(level),
                false,
                window_bits.clamp(9, 15),
            ),
            no_context_takeover,
        }
    }

    /// Compresses one whole message, returning the payload to send with RSV1 set.
    pub fn compress(&mut self, input: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let start_in = self.inner.total_in();
        loop {
            let consumed = (self.inner.total_in() - start_in) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            // Errors from zlib here would mean a bug in our use of it; there is no input
            // a peer controls that reaches a compressor.
            let status = self
                .inner
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync);
            let done_in = (self.inner.total_in() - start_in) as usize == input.len();
            if matches!(status, Err(_) | Ok(Status::StreamEnd))
                || (done_in && out.len() < out.capacity())
            {
                break;
            }
        }
        if out.ends_with(&TRAILER) {
            out.truncate(out.len() - TRAILER.len());
        }
        if self.no_context_takeover {
            self.inner.reset();
        }
        Bytes::from(out)
    }
}

/// A raw-deflate decompressor with a limit on its output.
pub struct Inflater {
    inner: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    /// A decompressor with a 15-bit window, which reads streams made with any window.
    pub fn new() -> Self {
        Self {
            inner: Decompress::new_with_window_bits(false, 15),
        }
    }

    /// Inflates `input` (one frame's payload) onto `out`. With `last`, also feeds the
    /// RFC 7692 trailer that ends the message. Fails with
    /// [`ProtocolError::InflatedTooLarge`] once `out` grows past `limit` bytes; `out` never
    /// holds more than `limit + 1` bytes, whatever the compression ratio.
    pub fn inflate(
        &mut self,
        input: &[u8],
        last: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        self.inflate_part(input, out, limit)?;
        if last {
            self.inflate_part(&TRAILER, out, limit)?;
        }
        Ok(())
    }

    fn inflate_part(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        // Grow from a guess based on the input (text often inflates 3-4x), never past what
        // the limit allows; output goes into spare capacity, which is not zeroed first.
        let mut consumed = 0;
        loop {
            if out.len() == out.capacity() {
                // Double (amortised growth) from a first guess, but never past one byte over
                // the limit: output can then never exceed it by more than that byte.
                let guess = (input.len() - consumed).saturating_mul(4).max(64);
                let target = out
                    .capacity()
                    .saturating_mul(2)
                    .max(out.len().saturating_add(guess))
                    .min(limit.saturating_add(1));
                if target <= out.len() {
                    return Err(ProtocolError::InflatedTooLarge { max: limit });
                }
                out.reserve_exact(target - out.len());
            }
            let before_in = self.inner.total_in();
            let before_out = out.len();
            let res = self
                .inner
                .decompress_vec(&input[consumed..], out, FlushDecompress::Sync);
            let taken = (self.inner.total_in() - before_in) as usize;
            consumed += taken;
            let produced = out.len() - before_out;
            match res {
                Ok(Status::StreamEnd) => {
                    // A final deflate block ends this stream; the next message starts anew.
                    self.inner.reset(false);
                    if consumed < input.len() {
                        return Err(ProtocolError::Inflate);
                    }
                }
                Ok(_) => {}
                Err(_) => return Err(ProtocolError::Inflate),
            }
            if out.len() > limit {
                return Err(ProtocolError::InflatedTooLarge { max: limit });
            }
            // Done once all input is in and the output did not fill the room it had.
            if consumed >= input.len() && out.len() < out.capacity() {
                return Ok(());
            }
            if taken == 0 && produced == 0 && out.len() < out.capacity() {
                // No progress with room to spare: zlib wants something it will never get.
                return Err(ProtocolError::Inflate);
            }
        }
    }

    /// Drops the sliding window between messages when the peer does not take over context.
    pub fn reset(&mut self) {
        self.inner.reset(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_accepts_first_valid_offer_and_declines_bad_ones() {
        let cfg = DeflateConfig::default();
        assert_eq!(cfg.accept_offer(["x-webkit-deflate-frame"]), None);
        assert_eq!(cfg.accept_offer(["permessage-deflate; bogus"]), None);
        assert_eq!(
            cfg.accept_offer(["permessage-deflate; server_max_window_bits"]),
            None
        );
        assert_eq!(
            cfg.accept_offer(["permessage-deflate; server_max_window_bits=16"]),
            None
        );
        assert_eq!(
            cfg.accept_offer([
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
            ]),
            None
        );
        let (resp, params) = cfg
            .accept_offer(["permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10; client_max_window_bits"])
            .unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
        );
        assert_eq!(params.compress_window, Some(10));
    }

    #[test]
    fn client_checks_response() {
        let cfg = DeflateConfig::default()
            .client_no_context_takeover(false)
            .server_no_context_takeover(false);
        assert_eq!(cfg.accept_response([]), Ok(None));
        let p = cfg
            .accept_response(["permessage-deflate; client_max_window_bits=9"])
            .unwrap()
            .unwrap();
        assert_eq!(p.compress_window, Some(9));
        assert!(!p.compress_no_context_takeover);
        assert!(cfg
            .accept_response(["permessage-deflate; client_max_window_bits"])
            .is_err());
        assert!(cfg.accept_response(["foo"]).is_err());
        assert!(cfg
            .accept_response(["permessage-deflate, permessage-deflate"])
            .is_err());
    }

    #[test]
    fn roundtrip_with_and_without_context_takeover() {
        for nct in [false, true] {
            for bits in [9, 12, 15] {
                let mut d = Deflater::new(bits, 6, nct);
                let mut i = Inflater::new();
                for n in 0..5 {
                    let msg = format!("hello hello hello {n} {}", "x".repeat(n * 1000));
                    let c = d.compress(msg.as_bytes());
                    let mut out = Vec::new();
                    i.inflate(&c, true, &mut out, 1 << 20).unwrap();
                    assert_eq!(&out[..], msg.as_bytes());
                }
            }
        }
    }

    #[test]
    fn bomb_stops_at_limit() {
        let mut d = Deflater::new(15, 9, true);
        let c = d.compress(&vec![0u8; 10 << 20]);
        assert!(c.len() < 20_000);
        let mut out = Vec::new();
        let err = Inflater::new()
            .inflate(&c, true, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, ProtocolError::InflatedTooLarge { max: 1 << 20 });
        assert!(
            out.capacity() <= (2 << 20) + (64 << 10),
            "capacity {}",
            out.capacity()
        );
        // Exactly at the limit is fine.
        let c = d.compress(&vec![7u8; 1 << 20]);
        let mut out = Vec::new();
        Inflater::new()
            .inflate(&c, true, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out.len(), 1 << 20);
    }

    #[test]
    fn small_message_inflates_into_a_small_buffer() {
        let c = Deflater::new(15, 1, true).compress(b"0123456789abcdef");
        let mut out = Vec::new();
        Inflater::new()
            .inflate(&c, true, &mut out, 64 << 20)
            .unwrap();
        assert_eq!(out, b"0123456789abcdef");
        assert!(out.capacity() <= 256, "capacity {}", out.capacity());
    }

    #[test]
    fn garbage_is_an_inflate_error() {
        let mut out = Vec::new();
        let err = Inflater::new()
            .inflate(&[0xff; 32], true, &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(err, ProtocolError::Inflate);
    }
}
