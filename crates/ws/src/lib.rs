//! # iolite-ws
//!
//! A fast WebSocket server and client for tokio (RFC 6455 + RFC 7692 permessage-deflate),
//! built on the sans-IO core [`iolite_ws_proto`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use iolite_ws::{accept, Config, Message};
//!
//! # async fn run() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! let config = Arc::new(Config::default());
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     let config = config.clone();
//!     tokio::spawn(async move {
//!         let Ok((mut ws, _request)) = accept(tcp, config).await else { return };
//!         while let Some(Ok(msg)) = ws.recv().await {
//!             if matches!(msg, Message::Text(_) | Message::Binary(_)) {
//!                 let _ = ws.send(msg);
//!             }
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! ## Design
//! - Each connection has a [`Receiver`] (the application's read loop, which also answers
//!   pings and close frames) and any number of [`Sender`]s. Sends never wait on the
//!   socket: they frame the message and push it onto a bounded per-connection queue.
//! - A writer task per connection drains the queue with vectored writes, many frames per
//!   system call, and runs keepalive and the close handshake.
//! - [`Connection`] is the one-task form: its `recv` also writes, so a read loop that
//!   never waits on anything else saves the writer task (memory, and a wake-up per reply).
//! - Broadcasts use [`PreparedMessage`]: framed (and compressed) once, the same bytes go
//!   to every recipient. [`broadcast`] sends one to many connections and loads their
//!   state into the CPU's cache ahead of the sends ([`prefetch`]).
//! - An idle connection holds no read buffer (buffers come from a per-thread pool when
//!   bytes arrive) and no write buffer (frames are shared `Bytes`).
//! - A peer that reads too slowly hits [`Config::max_queued_bytes`] and
//!   [`Config::slow_consumer`] decides: refuse the message or close with 1008/1013.
//! - No connection has a timer: one thread ([`sweep`]) wakes those whose keepalive or close
//!   deadline has passed. A server binary may also take [`slab_alloc::SlabAlloc`] as its
//!   global allocator, which packs tokio's cache-aligned task and I/O blocks (a third of an
//!   idle connection's memory with glibc).

mod broadcast;
mod client;
mod config;
mod connection;
mod entry;
mod error;
mod pool;
pub mod prefetch;
mod receiver;
mod sender;
mod server;
mod shared;
pub mod slab_alloc;
mod socket;
pub mod sweep;
#[cfg(feature = "hyper")]
mod upgrade;
mod writer;

pub use broadcast::broadcast;
pub use client::{client_handshake, ClientBuilder, MaybeTlsStream};
pub use config::{Config, SlowConsumer};
pub use connection::Connection;
pub use error::{Error, SendError};
pub use receiver::Receiver;
pub use sender::Sender;
pub use server::{accept, accept_connection_with, accept_with, Reject};
pub use socket::WebSocket;
#[cfg(feature = "hyper")]
pub use upgrade::{
    is_upgrade_request, upgrade, PendingUpgrade, UpgradedConnection, UpgradedWebSocket,
};

pub use iolite_ws_proto::{
    handshake::{ClientAccepted, ClientRequest, Offer},
    CloseCode, CloseFrame, DeflateConfig, DeflateParams, HandshakeLimits, Limits, Message,
    PreparedMessage, ProtocolError, Role, Utf8Bytes,
};
