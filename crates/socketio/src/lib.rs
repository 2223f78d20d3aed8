//! # iolite
//!
//! Socket.IO v5 for Rust: namespaces, rooms, acks, broadcasts and connection state
//! recovery, compatible with the official JavaScript and Python clients.
//!
//! ```no_run
//! use iolite::{AckSender, Data, SocketIo, SocketRef};
//! use serde_json::Value;
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let io = SocketIo::new();
//!     io.ns("/", |socket: SocketRef| async move {
//!         socket.on("chat", |socket: SocketRef, Data(msg): Data<String>, ack: AckSender| async move {
//!             socket.broadcast().emit("chat", &msg).ok();
//!             ack.send(&"delivered").ok();
//!         });
//!         socket.on("join", |socket: SocketRef, Data(room): Data<String>| async move {
//!             socket.join(room);
//!         });
//!     });
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     io.serve(listener).await
//! }
//! ```
//!
//! The packet codec alone:
//!
//! ```
//! use iolite::parser::{Decoder, Framing, Packet};
//! use serde_json::json;
//!
//! let mut decoder = Decoder::default();
//! let packet = decoder.decode_text(r#"2/chat,7["hello",1]"#).unwrap().unwrap();
//! assert_eq!(packet.event_name(), Some("hello"));
//! let ack = Packet::ack(packet.nsp.clone(), packet.id.unwrap(), json!(["ok"]));
//! let mut frame = Vec::new();
//! ack.encode_into(&mut frame, Framing::EngineMessage);
//! assert_eq!(frame, br#"43/chat,7["ok"]"#);
//! ```
//!
//! ## Design
//! - [`parser`]: the Socket.IO packet codecs (JSON as `socket.io-parser`, msgpack as
//!   `socket.io-msgpack-parser`), pure.
//! - The transport underneath is [`iolite_engine`]: Engine.IO sessions over polling and
//!   WebSocket.
//! - A client's events start their handlers in the order they arrived; a handler that
//!   awaits moves to its own task, so it never holds up the next event.
//! - A broadcast is encoded once; every recipient gets the same bytes (one prepared
//!   WebSocket frame, or the same text in each polling queue).
//! - Rooms live in a sharded index; sockets in sharded maps: no global lock.

mod ack;
pub mod adapter;
mod client;
mod config;
mod error;
mod event_name;
mod handler;
mod handler_list;
mod io;
mod ns;
mod operators;
mod outgoing;
pub mod parser;
mod remote;
mod room;
mod service;
mod socket;
mod sync;

pub use ack::{AckError, AckFuture, AckResponse, AckSender, AckStream};
pub use adapter::{Adapter, AdapterError, BroadcastOptions};
pub use client::ClientState;
pub use config::{Config, ParserKind, Recovery};
pub use error::{ConnectError, DisconnectReason, EmitError};
pub use handler::{
    Args, Bin, ConnectHandler, Data, Event, EventContext, EventHandler, ExtractError, FromConnect,
    FromEvent, State,
};
pub use io::{Builder, DynNamespace, SocketIo};
pub use iolite_engine::{AllowOrigin, Cookie, Cors, Sid, Transport};
pub use ns::Namespace;
pub use operators::BroadcastOperators;
pub use remote::RemoteSocket;
pub use room::Room;
pub use service::{serve, IoLayer, IoService, NotFound};
pub use socket::{Handshake, Headers, Socket, SocketEmitter, SocketRef};
