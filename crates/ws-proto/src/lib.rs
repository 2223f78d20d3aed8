//! # iolite-ws-proto
//!
//! The WebSocket protocol (RFC 6455) with permessage-deflate (RFC 7692), as a sans-IO
//! core: it turns bytes into messages and messages into frames, and never touches a
//! socket, a clock or a runtime. [`iolite-ws`](https://docs.rs/iolite-ws) is the tokio
//! layer on top.
//!
//! ```
//! use bytes::BytesMut;
//! use iolite_ws_proto::{Decoder, Encoder, Limits, Message, Role};
//!
//! // A client frames a message; a server decodes it.
//! let mut client = Encoder::new(Role::Client, None, 42);
//! let frame = client.encode_message(Message::text("hello"));
//! let mut server = Decoder::new(Role::Server, Limits::default(), None);
//! let mut buf = BytesMut::from(&frame.to_bytes()[..]);
//! assert_eq!(server.decode(&mut buf).unwrap(), Some(Message::text("hello")));
//! ```
//!
//! ## Design
//! - [`Decoder`] reads frames straight out of the connection's read buffer: payloads are
//!   unmasked in place and handed out as `Bytes` slices of that buffer, without a copy
//!   for unfragmented messages. Text is validated as bytes arrive, so invalid UTF-8 fails
//!   the connection in the middle of a frame. Every size is checked against [`Limits`]
//!   before anything is buffered for it.
//! - [`Encoder`] produces [`Frame`]s: a header kept inline and a shared payload, written
//!   with vectored I/O. [`PreparedMessage`] frames a broadcast once for all recipients.
//! - [`handshake`] parses and builds the HTTP/1.1 upgrade on both sides, within
//!   [`HandshakeLimits`], and negotiates [`DeflateConfig`].
//! - Errors are typed: [`ProtocolError::close_code`] and [`HandshakeError::status`] give
//!   what the peer must be told.

mod close;
mod decoder;
mod deflate;
mod encoder;
mod error;
mod frame;
pub mod handshake;
mod limits;
pub mod mask;
mod message;
mod prepared;
pub mod utf8;

pub use close::{CloseCode, CloseFrame, MAX_REASON_LEN};
pub use decoder::{close_reply, Decoder};
pub use deflate::{DeflateConfig, DeflateParams, Deflater, Inflater};
pub use encoder::Encoder;
pub use error::{HandshakeError, ProtocolError};
pub use frame::{Frame, FrameHeader, OpCode, MAX_HEAD_LEN};
pub use limits::{HandshakeLimits, Limits};
pub use message::{Message, Utf8Bytes};
pub use prepared::PreparedMessage;

/// Which end of the connection this is; it decides masking (RFC 6455 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts connections; receives masked frames, sends unmasked ones.
    Server,
    /// Opens connections; sends masked frames.
    Client,
}
