//! A Socket.IO v5 / Engine.IO v4 client: WebSocket and HTTP long-polling with upgrade,
//! namespaces, acks, binary, reconnection and connection state recovery. It speaks to
//! Node's `socket.io` 4.x and to iolite's server, and behaves like the official
//! `socket.io-client` (same options, same disconnect reasons, same recovery rules).
//!
//! ```no_run
//! use iolite_client::{Binary, Lifecycle, Manager};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = Manager::new("http://127.0.0.1:3000")?;
//! let socket = manager
//!     .socket("/")
//!     .auth(json!({"token": "secret"}))
//!     .on("greeting", |args, _ack| println!("greeting: {:?}", args.arg::<String>(0)))
//!     .connect()
//!     .await?;
//!
//! // Typed emits: a tuple is the argument list; Binary travels as an attachment.
//! socket.emit("chat", &("hello", 42))?;
//! socket.emit("upload", &(json!({"name": "a.bin"}), Binary::from(vec![1, 2, 3])))?;
//!
//! // Acks: the emit is queued at once, the future resolves to the answer.
//! let answer = socket.emit_with_ack("echo", &("ping",))?.await?;
//! assert_eq!(answer.arg::<String>(0)?, "ping");
//!
//! // Events without a handler queue up for next_event; the server may ask for an ack.
//! while let Some(mut event) = socket.next_event().await {
//!     println!("{}: {:?}", event.name, event.args.values());
//!     event.ack(&("thanks",))?;
//! }
//!
//! // Connects, disconnects and errors, in order.
//! if let Lifecycle::Disconnect(reason) = socket.next_lifecycle().await {
//!     println!("disconnected: {reason}"); // "transport close", "io server disconnect", ...
//! }
//! socket.disconnect();
//! # Ok(()) }
//! ```
//!
//! ## Design
//! - A [`Manager`] owns one Engine.IO connection and a task that drives it: the
//!   handshake, answering pings (and closing with `"ping timeout"` after
//!   `pingInterval + pingTimeout` without one), long-polling (one GET and one POST in
//!   flight, on two keep-alive HTTP/1.1 connections) and the upgrade to WebSocket
//!   (`2probe`/`3probe`, pause polling, `5`), and reconnection with socket.io-client's
//!   exponential backoff and jitter.
//! - A [`Socket`] is one namespace on it. Emits encode in the caller and go straight to
//!   the WebSocket's send queue (or the polling buffer) under one lock, so they return
//!   at once with a [`Result`]: [`EmitError::Full`] when the queue is over its limit,
//!   [`EmitError::Closed`] once the socket is closed for good. While the socket is
//!   reconnecting emits are buffered, as socket.io-client does.
//! - Incoming events go to a handler ([`Socket::on`]), a catch-all ([`Socket::on_any`]) or
//!   a queue ([`Socket::next_event`]); arguments are a [`Payload`] read with serde.
//! - Connection state recovery: the `pid` of the server's CONNECT answer and the offset
//!   of the last event are sent back in the next CONNECT, and [`Socket::recovered`] tells
//!   whether the server restored the session.
//! - Input from the network is bounded ([`ManagerBuilder::max_payload`],
//!   [`ManagerBuilder::max_attachments`]) and never trusted: malformed input closes the
//!   connection with `"transport error"` or `"parse error"`, it never panics.

mod codec;
mod config;
mod error;
mod http;
mod manager;
mod payload;
mod socket;
mod transport;

pub use codec::Parser;
pub use config::ManagerBuilder;
pub use error::{AckError, BuildError, ConnectError, DisconnectReason, EmitError};
pub use iolite_engine::Transport;
pub use manager::Manager;
pub use payload::{Binary, Payload};
pub use socket::{AckFuture, AckSender, Event, Lifecycle, Socket, SocketBuilder};
