//! Errors and reasons, named as socket.io-client names them.

use std::fmt;

use serde_json::Value;

/// Why an emit (or an ack answer) could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The socket is closed for good: disconnected by the client or the server, refused by
    /// the server, or reconnection gave up. Emits while the socket is only *reconnecting*
    /// are buffered and sent once it is connected again, as socket.io-client does.
    #[error("socket closed")]
    Closed,
    /// The outgoing queue is over its limit ([`crate::ManagerBuilder::max_queued_bytes`],
    /// or [`crate::ManagerBuilder::max_buffered_packets`] while disconnected): the peer or
    /// the network is slower than the emits. Nothing was queued; try again later.
    #[error("send queue full")]
    Full,
    /// The arguments could not be serialized to JSON.
    #[error("arguments do not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The event name is reserved by Socket.IO (`connect`, `disconnect`, ...).
    #[error("{0:?} is a reserved event name")]
    Reserved(String),
}

impl EmitError {
    /// Whether the socket is closed (as opposed to temporarily full).
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    /// Whether the queue is full (the socket is fine; retry later).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full)
    }
}

/// Why an acknowledgement did not arrive.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// The emit itself failed; nothing was sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// No answer within the timeout (socket.io-client: "operation has timed out").
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before the answer came (socket.io-client: "socket has been
    /// disconnected").
    #[error("socket has been disconnected")]
    Disconnected,
}

/// Why a socket could not connect to its namespace.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConnectError {
    /// The server refused the namespace (a CONNECT_ERROR packet: a middleware's `next(err)`,
    /// or "Invalid namespace"). `message` is the error's message and `data` its `data`.
    /// The socket is closed; [`crate::Socket::connect`] tries again.
    #[error("connection refused: {message}")]
    Refused {
        /// `err.message`.
        message: String,
        /// `err.data`, if the server set one.
        data: Option<Value>,
    },
    /// The Engine.IO connection could not be opened (socket.io-client's `connect_error`
    /// with "xhr poll error", "websocket error", "timeout"...). With reconnection on, the
    /// manager keeps trying.
    #[error("transport error: {0}")]
    Transport(String),
    /// Reconnection gave up after [`crate::ManagerBuilder::reconnection_attempts`]
    /// attempts (socket.io-client's `reconnect_failed`), or reconnection is off and the
    /// connection failed.
    #[error("reconnection failed")]
    ReconnectFailed,
    /// The socket was disconnected (by [`crate::Socket::disconnect`] or the manager being
    /// closed) before it connected.
    #[error("socket closed before it connected")]
    Closed,
    /// The namespace cannot be written on the wire (it contains a comma).
    #[error("invalid namespace {0:?}")]
    InvalidNamespace(String),
}

/// Why a connected socket was disconnected: the reasons socket.io-client gives its
/// `disconnect` event ([`DisconnectReason::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// `"io server disconnect"`: the server disconnected the socket (`socket.disconnect()`).
    /// No reconnection for this namespace.
    ServerDisconnect,
    /// `"io client disconnect"`: [`crate::Socket::disconnect`]. No reconnection.
    ClientDisconnect,
    /// `"ping timeout"`: no ping from the server within `pingInterval + pingTimeout`.
    PingTimeout,
    /// `"transport close"`: the connection was closed (by the server, or the network).
    TransportClose,
    /// `"transport error"`: the connection failed (an HTTP or WebSocket error, a malformed
    /// Engine.IO packet, a message over a limit).
    TransportError,
    /// `"parse error"`: the server sent a malformed Socket.IO packet.
    ParseError,
    /// `"forced close"`: [`crate::Manager::close`] closed the whole connection.
    ForcedClose,
}

impl DisconnectReason {
    /// The reason as socket.io-client spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerDisconnect => "io server disconnect",
            Self::ClientDisconnect => "io client disconnect",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
        }
    }

    /// Whether the manager reconnects after it (if reconnection is on): the connection was
    /// lost rather than closed on purpose.
    pub fn will_reconnect(self) -> bool {
        matches!(
            self,
            Self::PingTimeout | Self::TransportClose | Self::TransportError | Self::ParseError
        )
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A manager could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The URL is not `http`, `https`, `ws` or `wss` with a host.
    #[error("invalid URL {0:?}")]
    Url(String),
    /// No transport was enabled.
    #[error("no transport enabled")]
    NoTransport,
    /// Not called inside a tokio runtime (the manager spawns its task there).
    #[error("must be called inside a tokio runtime")]
    NoRuntime,
}
