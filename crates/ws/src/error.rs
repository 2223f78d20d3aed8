//! Errors of the I/O layer.

use iolite_ws_proto::{CloseCode, HandshakeError, Message, ProtocolError};

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The opening handshake failed or was refused.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake was refused by the application's policy with this HTTP status.
    #[error("handshake refused with status {0}")]
    Refused(u16),
    /// The peer broke the protocol or crossed a limit; we closed with its close code.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The opening handshake did not finish within [`crate::Config::handshake_timeout`].
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer did not answer a ping within [`crate::Config::pong_timeout`].
    #[error("peer did not answer ping in time")]
    KeepaliveTimeout,
    /// The connection was closed because the peer read too slowly.
    #[error("peer too slow: send queue over its limit")]
    SlowConsumer,
    /// The TCP connection ended without a close frame (close code 1006).
    #[error("connection closed without a close frame")]
    AbnormalClosure,
    /// The URL given to the client is not a usable `ws://` or `wss://` URL.
    #[error("invalid URL: {0}")]
    Url(String),
    /// TLS setup failed.
    #[error("TLS error: {0}")]
    Tls(String),
}

impl Error {
    /// The close code this error corresponds to, as an application would log it.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(e) => e.close_code(),
            Self::SlowConsumer => CloseCode::POLICY,
            _ => CloseCode::ABNORMAL,
        }
    }
}

/// Why a message could not be queued. Both variants hand the message back.
#[derive(Debug, thiserror::Error)]
pub enum SendError<T = Message> {
    /// The connection is closing or closed.
    #[error("connection closed")]
    Closed(T),
    /// The send queue is over [`crate::Config::max_queued_bytes`].
    #[error("send queue full")]
    QueueFull(T),
}

impl<T> SendError<T> {
    /// Takes the message back.
    pub fn into_inner(self) -> T {
        match self {
            Self::Closed(t) | Self::QueueFull(t) => t,
        }
    }
}
