//! # iolite-engine
//!
//! Engine.IO v4, the transport layer under Socket.IO, matching Node's `engine.io` and
//! `engine.io-parser` 5.x byte for byte. This part is the pure protocol: packets, HTTP
//! long-polling payloads, the handshake, request query parameters, session ids and the
//! errors Node answers with. It never touches a socket, a clock or a runtime; the
//! server's transports drive it.
//!
//! ```
//! use bytes::Bytes;
//! use iolite_engine::{decode_payload, encode_payload, Packet, PayloadLimits};
//! use iolite_ws_proto::{Message, Utf8Bytes};
//!
//! // WebSocket: one packet per frame.
//! let ping = Packet::decode_text(Utf8Bytes::from_static("2probe"))?;
//! assert!(ping.is_probe_ping());
//! assert_eq!(Packet::probe_pong().to_ws_message(), Message::text("3probe"));
//!
//! // Long-polling: a POST body holds several packets; binary travels as base64.
//! let body = Bytes::from_static(b"4hello\x1ebAQID");
//! let packets = decode_payload(body, &PayloadLimits::default())?
//!     .collect::<Result<Vec<_>, _>>()?;
//! assert_eq!(packets, [Packet::text("hello"), Packet::binary(vec![1, 2, 3])]);
//! assert_eq!(encode_payload(&packets), b"4hello\x1ebAQID");
//! # Ok::<(), iolite_engine::DecodeError>(())
//! ```
//!
//! ## Design
//! - [`Packet`] is one packet; a message carries [`Data`], text as
//!   [`Utf8Bytes`](iolite_ws_proto::Utf8Bytes) or binary as [`Bytes`](bytes::Bytes).
//!   Decoding slices the frame or body it came from rather than copying it.
//!   [`Packet::to_ws_message`] makes the WebSocket frame payload once, to be shared by a
//!   broadcast; [`Packet::encode_ws_into`] writes it into a caller's buffer.
//! - [`decode_payload`] checks [`PayloadLimits`] before decoding anything, then yields
//!   packets until the first malformed one, as Node does; [`PayloadEncoder`] builds a GET
//!   response body.
//! - [`OpenPacket`] is the handshake JSON, [`Query`] the `EIO`/`transport`/`sid` query
//!   parameters with Node's checks in Node's order, [`Sid`] a session id from the OS CSPRNG.
//! - Errors are typed and say what the peer is told: [`RequestError`] carries Node's code,
//!   message, HTTP status and exact JSON body; [`DecodeError::close_reason`] says when a
//!   session ends with `"parse error"`, [`DecodeError::status`] what a POST is answered.

mod error;
mod handshake;
mod packet;
mod payload;
mod query;
mod server;
mod sid;

pub use error::{DecodeError, RequestError, PARSE_ERROR};
pub use handshake::{
    OpenPacket, DEFAULT_MAX_PAYLOAD, DEFAULT_PING_INTERVAL_MS, DEFAULT_PING_TIMEOUT_MS,
};
pub use packet::{Data, Packet, PacketType, PROBE};
pub use payload::{
    decode_payload, encode_payload, PayloadDecoder, PayloadEncoder, PayloadLimits, CONTENT_TYPE,
    POST_RESPONSE_BODY, POST_RESPONSE_CONTENT_TYPE, SEPARATOR,
};
pub use query::{query_param, ProtocolVersion, Query, Transport};
pub use server::{
    serve_http1, AllowFuture, AllowOrigin, AllowRequest, Body, BoxError, CloseReason, Cookie, Cors,
    Engine, EngineConfig, Handler, RequestHead, SendError, SharedMessage, Socket,
};
pub use sid::{InvalidSid, RandomError, Sid, SID_LEN};
