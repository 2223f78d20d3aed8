//! The benchmarked operations, shared by `benches/codec.rs` (timed by Criterion) and
//! `examples/ops.rs` (run a fixed number of times, for callgrind).
//!
//! Each `*_op` function sets up one implementation and returns a closure that performs
//! the operation once; setup is never inside the closure.

use std::future::Future;
use std::hint::black_box;
use std::io::{self, Read, Write};
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use iolite_ws_proto::{Decoder, Deflater, Encoder, Inflater, Limits, Message, OpCode, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// 16 B, 1 KiB and 64 KiB: a chat message, a typical JSON event, a large update.
pub const SIZES: [usize; 3] = [16, 1 << 10, 64 << 10];

/// RFC 7692 §7.2.1: the tail a sync flush leaves, stripped by the sender.
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// A benchmark group: one operation, several implementations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Masking alone.
    Unmask,
    /// A masked client frame arrives and is decoded.
    DecodeUnmask,
    /// A server frame is produced into a contiguous buffer.
    EncodeServer,
    /// A masked client frame is produced into a contiguous buffer.
    EncodeClient,
    /// One message compressed for permessage-deflate.
    DeflateCompress,
    /// One permessage-deflate message inflated.
    DeflateInflate,
}

impl Group {
    /// Every group, in the order the benchmarks run.
    pub const ALL: [Group; 6] = [
        Group::Unmask,
        Group::DecodeUnmask,
        Group::EncodeServer,
        Group::EncodeClient,
        Group::DeflateCompress,
        Group::DeflateInflate,
    ];

    /// The Criterion group name.
    pub fn name(self) -> &'static str {
        match self {
            Group::Unmask => "unmask",
            Group::DecodeUnmask => "decode_unmask",
            Group::EncodeServer => "encode_server",
            Group::EncodeClient => "encode_client",
            Group::DeflateCompress => "deflate_compress",
            Group::DeflateInflate => "deflate_inflate",
        }
    }

    /// The implementations compared in this group; iolite first.
    pub fn implementations(self) -> &'static [&'static str] {
        match self {
            Group::Unmask => &["iolite", "fastwebsockets"],
            Group::DeflateCompress | Group::DeflateInflate => &["iolite", "flate2"],
            _ => &["iolite", "tungstenite", "fastwebsockets"],
        }
    }
}

/// Calls `run` with the closure for one (group, implementation, size), so a caller can
/// time it without a dynamic call per iteration.
pub fn with_op<R>(group: Group, implementation: &str, size: usize, run: impl OpRunner<R>) -> R {
    match (group, implementation) {
        (Group::Unmask, "iolite") => run.run(unmask_iolite(size)),
        (Group::Unmask, "fastwebsockets") => run.run(unmask_fastwebsockets(size)),
        (Group::DecodeUnmask, "iolite") => run.run(decode_iolite(size)),
        (Group::DecodeUnmask, "tungstenite") => run.run(decode_tungstenite(size)),
        (Group::DecodeUnmask, "fastwebsockets") => run.run(decode_fastwebsockets(size)),
        (Group::EncodeServer, "iolite") => run.run(encode_iolite(Role::Server, size)),
        (Group::EncodeServer, "tungstenite") => run.run(encode_tungstenite(false, size)),
        (Group::EncodeServer, "fastwebsockets") => run.run(encode_fastwebsockets(false, size)),
        (Group::EncodeClient, "iolite") => run.run(encode_iolite(Role::Client, size)),
        (Group::EncodeClient, "tungstenite") => run.run(encode_tungstenite(true, size)),
        (Group::EncodeClient, "fastwebsockets") => run.run(encode_fastwebsockets(true, size)),
        (Group::DeflateCompress, "iolite") => run.run(compress_iolite(size)),
        (Group::DeflateCompress, "flate2") => run.run(compress_flate2(size)),
        (Group::DeflateInflate, "iolite") => run.run(inflate_iolite(size)),
        (Group::DeflateInflate, "flate2") => run.run(inflate_flate2(size)),
        (group, other) => panic!("no {other} implementation in {}", group.name()),
    }
}

/// Something that runs an operation closure: generic over the closure's type, so every
/// implementation's closure is monomorphised and inlined into the timing loop.
pub trait OpRunner<R> {
    /// Runs (times, repeats) `op`.
    fn run(self, op: impl FnMut()) -> R;
}

/// JSON-like text of exactly `len` bytes: compressible the way real messages are.
pub fn payload(len: usize) -> Bytes {
    let mut s = String::with_capacity(len + 64);
    let mut i = 0u32;
    while s.len() < len {
        s.push_str(&format!(
            r#"{{"id":{},"user":"u{}","text":"message number {} in room {}"}}"#,
            i,
            i.wrapping_mul(2_654_435_761) % 1000,
            i,
            i % 7
        ));
        i += 1;
    }
    s.truncate(len);
    Bytes::from(s)
}

/// The wire bytes of one masked client binary frame carrying `payload`.
fn client_frame(payload: &Bytes) -> Vec<u8> {
    let mut encoder = Encoder::new(Role::Client, None, 0x5eed);
    encoder
        .encode(OpCode::Binary, payload.clone())
        .to_bytes()
        .to_vec()
}

/// An in-memory socket: every read returns (the rest of) the same frame, so each frame
/// arrives in its own read as from a real client; writes are accepted and dropped.
struct Replay {
    frame: Vec<u8>,
    pos: usize,
}

impl Replay {
    fn new(frame: Vec<u8>) -> Self {
        Self { frame, pos: 0 }
    }

    fn sink() -> Self {
        Self::new(Vec::new())
    }

    /// The bytes the next read returns, at most `room` of them.
    fn next_read(&mut self, room: usize) -> &[u8] {
        let start = self.pos;
        let n = room.min(self.frame.len() - start);
        self.pos = (start + n) % self.frame.len().max(1);
        &self.frame[start..start + n]
    }
}

impl Read for Replay {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.next_read(buf.len());
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(bytes.len())
    }
}

impl Write for Replay {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(black_box(buf).len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for Replay {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // `put_slice`, not `initialize_unfilled`: zeroing the caller's spare capacity
        // would time our stand-in socket, not the codec.
        let bytes = self.get_mut().next_read(buf.remaining());
        buf.put_slice(bytes);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(black_box(buf).len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs a future that never waits: `Replay` is always ready, so one poll completes it
/// and no runtime's scheduling cost is timed.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("in-memory socket never blocks"),
    }
}

/// The payload placed as in a read buffer: right after a masked client header of 6, 8
/// or 14 bytes, so it starts off any word boundary.
fn unmask_buffer(size: usize) -> (Vec<u8>, usize) {
    let head = client_frame(&payload(size)).len() - size;
    (vec![0x5a; head + size], head)
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn unmask_iolite(size: usize) -> impl FnMut() {
    let (mut buf, head) = unmask_buffer(size);
    move || iolite_ws_proto::mask::apply_mask(black_box(&mut buf[head..]), KEY, 0)
}

/// tungstenite's `apply_mask` is private, but it is the same `align_to::<u32>` loop.
fn unmask_fastwebsockets(size: usize) -> impl FnMut() {
    let (mut buf, head) = unmask_buffer(size);
    move || fastwebsockets::unmask(black_box(&mut buf[head..]), KEY)
}

fn decode_iolite(size: usize) -> impl FnMut() {
    let wire = client_frame(&payload(size));
    let mut decoder = Decoder::new(Role::Server, Limits::default(), None);
    let mut buf = BytesMut::with_capacity(wire.len());
    move || {
        // The read that delivers the frame, then the decode.
        buf.extend_from_slice(&wire);
        let msg = decoder.decode(&mut buf).expect("valid frame");
        assert!(matches!(&msg, Some(Message::Binary(p)) if p.len() == size));
        black_box(msg);
    }
}

fn decode_tungstenite(size: usize) -> impl FnMut() {
    let wire = client_frame(&payload(size));
    let mut ws = tungstenite::WebSocket::from_raw_socket(
        Replay::new(wire),
        tungstenite::protocol::Role::Server,
        None,
    );
    move || {
        let msg = ws.read().expect("valid frame");
        assert!(matches!(&msg, tungstenite::Message::Binary(p) if p.len() == size));
        black_box(msg);
    }
}

fn decode_fastwebsockets(size: usize) -> impl FnMut() {
    let wire = client_frame(&payload(size));
    let mut ws =
        fastwebsockets::WebSocket::after_handshake(Replay::new(wire), fastwebsockets::Role::Server);
    move || {
        let frame = now(ws.read_frame()).expect("valid frame");
        assert!(frame.opcode == fastwebsockets::OpCode::Binary && frame.payload.len() == size);
        black_box(frame.payload.len());
    }
}

fn encode_iolite(role: Role, size: usize) -> impl FnMut() {
    let payload = payload(size);
    let mut encoder = Encoder::new(role, None, 0x5eed);
    let mut out = Vec::with_capacity(size + 14);
    move || {
        // What the write buffer of a non-vectored socket receives: header and payload in
        // one buffer, masked in place on a client.
        out.clear();
        encoder.encode_into(OpCode::Binary, &payload, &mut out);
        black_box(&out);
    }
}

fn encode_tungstenite(client: bool, size: usize) -> impl FnMut() {
    let payload = payload(size);
    let role = if client {
        tungstenite::protocol::Role::Client
    } else {
        tungstenite::protocol::Role::Server
    };
    let mut ws = tungstenite::WebSocket::from_raw_socket(Replay::sink(), role, None);
    move || {
        ws.send(tungstenite::Message::Binary(payload.clone()))
            .expect("in-memory write");
    }
}

fn encode_fastwebsockets(client: bool, size: usize) -> impl FnMut() {
    let payload = payload(size);
    let role = if client {
        fastwebsockets::Role::Client
    } else {
        fastwebsockets::Role::Server
    };
    let mut ws = fastwebsockets::WebSocket::after_handshake(Replay::sink(), role);
    // Like iolite's copy above: contiguous bytes, not a vectored write.
    ws.set_writev(false);
    move || {
        let frame = fastwebsockets::Frame::binary(fastwebsockets::Payload::Borrowed(&payload));
        now(ws.write_frame(frame)).expect("in-memory write");
    }
}

fn compress_iolite(size: usize) -> impl FnMut() {
    let payload = payload(size);
    let mut deflater = Deflater::new(15, 1, true);
    move || {
        black_box(deflater.compress(&payload));
    }
}

/// One message compressed the way RFC 7692 wants it, with flate2 alone.
fn compress_flate2(size: usize) -> impl FnMut() {
    let payload = payload(size);
    let mut compress = Compress::new_with_window_bits(Compression::new(1), false, 15);
    let mut out = Vec::with_capacity(size + 64);
    move || {
        out.clear();
        let start = compress.total_in();
        loop {
            let done = (compress.total_in() - start) as usize;
            compress
                .compress_vec(&payload[done..], &mut out, FlushCompress::Sync)
                .expect("compress");
            if (compress.total_in() - start) as usize == payload.len() && out.len() < out.capacity()
            {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TRAILER) {
            out.truncate(out.len() - TRAILER.len());
        }
        compress.reset();
        black_box(&out);
    }
}

fn compressed(size: usize) -> Bytes {
    Deflater::new(15, 1, true).compress(&payload(size))
}

fn inflate_iolite(size: usize) -> impl FnMut() {
    let input = compressed(size);
    let mut inflater = Inflater::new();
    let mut out = Vec::with_capacity(size + 1);
    move || {
        out.clear();
        // The decoder passes `Limits::max_inflated_size`, 64 MiB by default.
        inflater
            .inflate(&input, true, &mut out, 64 << 20)
            .expect("inflate");
        assert_eq!(out.len(), size);
        black_box(&out);
    }
}

fn inflate_flate2(size: usize) -> impl FnMut() {
    let input = compressed(size);
    let mut decompress = Decompress::new_with_window_bits(false, 15);
    let mut out = Vec::with_capacity(size + 1);
    move || {
        out.clear();
        decompress
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("inflate");
        decompress
            .decompress_vec(&TRAILER, &mut out, FlushDecompress::Sync)
            .expect("inflate");
        assert_eq!(out.len(), size);
        decompress.reset(false);
        black_box(&out);
    }
}
