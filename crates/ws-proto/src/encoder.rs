//! The write side of a connection: messages in, frames out.

use std::cell::RefCell;

use std::sync::Arc;

use bytes::Bytes;

use crate::close::CloseFrame;
use crate::deflate::{DeflateParams, Deflater};
use crate::frame::{Frame, FrameHeader, OpCode};
use crate::mask::apply_mask;
use crate::message::Message;
use crate::prepared::PreparedMessage;
use crate::Role;

/// Frames outgoing messages for one connection: compresses them when permessage-deflate
/// was negotiated and the message is above the threshold, and masks them on a client.
pub struct Encoder {
    role: Role,
    deflate: Option<DeflateParams>,
    // Only with context takeover: each message then depends on the previous ones.
    own_deflater: Option<Box<Deflater>>,
    rng: u64,
}

thread_local! {
    // Without context takeover every message is compressed on its own, so connections on
    // a thread can share one compressor instead of each holding ~300 KiB of zlib state.
    static SHARED: RefCell<Vec<((u8, u32), Deflater)>> = const { RefCell::new(Vec::new()) };
}

/// Compresses `input` as a self-contained message with a per-thread compressor.
pub(crate) fn compress_shared(window: u8, level: u32, input: &[u8]) -> Bytes {
    SHARED.with(|cell| {
        let mut v = cell.borrow_mut();
        let key = (window, level);
        let idx = match v.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                v.push((key, Deflater::new(window, level, true)));
                v.len() - 1
            }
        };
        v[idx].1.compress(input)
    })
}

impl Encoder {
    /// An encoder for `role`. `seed` seeds the masking-key generator (clients only); the
    /// I/O layer passes OS randomness, since this crate does no I/O.
    pub fn new(role: Role, deflate: Option<&DeflateParams>, seed: u64) -> Self {
        Self {
            role,
            deflate: deflate.cloned(),
            own_deflater: None,
            rng: seed | 1,
        }
    }

    /// Whether encoding needs this encoder's state. A server without compression frames
    /// stateless-ly, so senders can skip any lock around the encoder.
    pub fn is_stateless(&self) -> bool {
        self.role == Role::Server && self.deflate.is_none()
    }

    /// Encodes any message as one final frame.
    pub fn encode_message(&mut self, msg: Message) -> Frame {
        match msg {
            Message::Text(t) => self.encode(OpCode::Text, t.into_bytes()),
            Message::Binary(b) => self.encode(OpCode::Binary, b),
            Message::Ping(b) => self.encode_control(OpCode::Ping, b),
            Message::Pong(b) => self.encode_control(OpCode::Pong, b),
            Message::Close(c) => self.encode_close(c.as_ref()),
        }
    }

    /// Encodes a whole data message as one final frame.
    pub fn encode(&mut self, opcode: OpCode, payload: Bytes) -> Frame {
        let (payload, rsv1) = self.maybe_compress(payload);
        self.frame(opcode, payload, rsv1, true)
    }

    /// Encodes one fragment of a data message, uncompressed; `opcode` is `Text`/`Binary`
    /// for the first fragment and `Continuation` after.
    pub fn encode_fragment(&mut self, opcode: OpCode, payload: Bytes, fin: bool) -> Frame {
        self.frame(opcode, payload, false, fin)
    }

    /// Encodes a ping or pong. The payload is cut to 125 bytes (RFC 6455 §5.5).
    pub fn encode_control(&mut self, opcode: OpCode, mut payload: Bytes) -> Frame {
        payload.truncate(125);
        self.frame(opcode, payload, false, true)
    }

    /// Encodes a close frame; `None` sends one with no status code.
    pub fn encode_close(&mut self, close: Option<&CloseFrame>) -> Frame {
        let payload = close.map(CloseFrame::to_payload).unwrap_or_default();
        self.frame(OpCode::Close, payload, false, true)
    }

    /// The frame to send a prepared message on this connection: the shared bytes when
    /// they fit this connection's negotiation, or a per-connection encoding otherwise.
    pub fn encode_prepared(&mut self, msg: &PreparedMessage) -> Frame {
        match self.shared_prepared(msg) {
            Some(frame) => Frame::raw(Bytes::clone(frame)),
            None => self.encode(msg.opcode(), msg.payload().clone()),
        }
    }

    /// The complete frame of `msg` that this connection can send as it is, shared with every
    /// other such recipient; `None` if it needs an encoding of its own (a client masks, and
    /// compression with context takeover depends on what this connection sent before).
    pub fn shared_prepared<'a>(&self, msg: &'a PreparedMessage) -> Option<&'a Arc<Bytes>> {
        if self.role == Role::Client {
            return None;
        }
        match &self.deflate {
            None => Some(msg.shared_frame()),
            Some(p)
                if msg.payload().len() < p.compress_threshold || p.compress_window.is_none() =>
            {
                Some(msg.shared_frame())
            }
            Some(p) if p.compress_no_context_takeover => {
                let window = p.compress_window.unwrap_or(15);
                Some(msg.shared_compressed_frame(window, p.level))
            }
            Some(_) => None,
        }
    }

    /// Encodes a whole data message straight into `out`: header, then the payload
    /// (compressed when negotiated, masked on a client). For callers that write one
    /// contiguous buffer; masking happens in place in `out`, with no other copy.
    pub fn encode_into(&mut self, opcode: OpCode, payload: &[u8], out: &mut Vec<u8>) {
        let compressed = self.compress(payload);
        let body = compressed.as_deref().unwrap_or(payload);
        let mask = (self.role == Role::Client).then(|| self.next_mask());
        let header = FrameHeader {
            fin: true,
            rsv1: compressed.is_some(),
            rsv23: false,
            opcode,
            mask,
            payload_len: body.len() as u64,
        };
        let mut head = [0u8; crate::frame::MAX_HEAD_LEN];
        let n = header.encode(&mut head);
        out.reserve(n + body.len());
        out.extend_from_slice(&head[..n]);
        let start = out.len();
        out.extend_from_slice(body);
        if let Some(m) = mask {
            apply_mask(&mut out[start..], m, 0);
        }
    }

    fn maybe_compress(&mut self, payload: Bytes) -> (Bytes, bool) {
        match self.compress(&payload) {
            Some(c) => (c, true),
            None => (payload, false),
        }
    }

    /// The compressed payload, if this message is to be compressed.
    fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        let p = self.deflate.as_ref()?;
        let window = p.compress_window?;
        if payload.len() < p.compress_threshold {
            return None;
        }
        Some(if p.compress_no_context_takeover {
            compress_shared(window, p.level, payload)
        } else {
            let level = p.level;
            self.own_deflater
                .get_or_insert_with(|| Box::new(Deflater::new(window, level, false)))
                .compress(payload)
        })
    }

    fn frame(&mut self, opcode: OpCode, payload: Bytes, rsv1: bool, fin: bool) -> Frame {
        let mut header = FrameHeader {
            fin,
            rsv1,
            rsv23: false,
            opcode,
            mask: None,
            payload_len: 0,
        };
        if self.role == Role::Server {
            return Frame::new(header, payload);
        }
        // A client must mask, so the payload is copied once anyway: copy it next to its
        // header and send one contiguous buffer.
        let mask = self.next_mask();
        header.mask = Some(mask);
        header.payload_len = payload.len() as u64;
        let mut head = [0u8; crate::frame::MAX_HEAD_LEN];
        let n = header.encode(&mut head);
        let mut buf = Vec::with_capacity(n + payload.len());
        buf.extend_from_slice(&head[..n]);
        buf.extend_from_slice(&payload);
        apply_mask(&mut buf[n..], mask, 0);
        Frame::raw(Bytes::from(buf))
    }

    fn next_mask(&mut self) -> [u8; 4] {
        // xorshift64*: masking keys only need to be unpredictable to scripts in the page
        // that cannot see them (RFC 6455 §10.3); the seed comes from the OS.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let v = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((v >> 32) as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoder, Limits};
    use bytes::BytesMut;

    #[test]
    fn encode_into_matches_encode_for_both_roles() {
        for role in [Role::Server, Role::Client] {
            let payload = b"hello, contiguous world".repeat(10);
            let mut a = Encoder::new(role, None, 99);
            let mut b = Encoder::new(role, None, 99);
            let frame = a.encode(OpCode::Binary, Bytes::from(payload.clone()));
            let mut out = Vec::new();
            b.encode_into(OpCode::Binary, &payload, &mut out);
            assert_eq!(frame.to_bytes(), out);
        }
        // A client frame decodes on the server side.
        let mut enc = Encoder::new(Role::Client, None, 5);
        let mut out = Vec::new();
        enc.encode_into(OpCode::Text, "ok".as_bytes(), &mut out);
        let mut buf = BytesMut::from(&out[..]);
        let msg = Decoder::new(Role::Server, Limits::default(), None)
            .decode(&mut buf)
            .unwrap();
        assert_eq!(msg, Some(crate::Message::text("ok")));
    }
}
