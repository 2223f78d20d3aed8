//! Errors of the Socket.IO layer.

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The socket is disconnected.
    #[error("socket closed")]
    Closed,
    /// The client's send queue is full (it reads too slowly).
    #[error("send queue full")]
    QueueFull,
    /// The data could not be serialized to JSON.
    #[error("could not serialize: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The event name is reserved (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    Reserved(String),
    /// The cluster adapter could not publish it (it was still delivered on this node).
    #[error(transparent)]
    Adapter(#[from] crate::adapter::AdapterError),
}

impl From<iolite_engine::SendError> for EmitError {
    fn from(e: iolite_engine::SendError) -> Self {
        match e {
            iolite_engine::SendError::Closed => Self::Closed,
            iolite_engine::SendError::QueueFull => Self::QueueFull,
        }
    }
}

/// A connect middleware's refusal: the client gets `connect_error` with this message and
/// data (Node's `next(err)` with `err.data`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// `err.message` on the client.
    pub message: String,
    /// `err.data` on the client.
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Adds `err.data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Why a socket disconnected, as Socket.IO names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The client's transport closed.
    TransportClose,
    /// The transport failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent something that does not parse.
    ParseError,
    /// The server closed the connection (`socket.conn.close()`).
    ForcedClose,
    /// The server shut down.
    ServerShuttingDown,
    /// The server closed all connections (`io.close()`, `disconnectSockets(true)`).
    ForcedServerClose,
    /// The client left the namespace (`socket.disconnect()`).
    ClientNamespaceDisconnect,
    /// The server removed the socket from the namespace (`socket.disconnect()`).
    ServerNamespaceDisconnect,
}

impl DisconnectReason {
    /// The reason as Node writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ServerShuttingDown => "server shutting down",
            Self::ForcedServerClose => "forced server close",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
        }
    }

    /// Whether connection state recovery keeps the session (the client did not leave on
    /// purpose and was not sent away).
    pub const fn is_recoverable(self) -> bool {
        matches!(
            self,
            Self::TransportError
                | Self::TransportClose
                | Self::ForcedClose
                | Self::PingTimeout
                | Self::ServerShuttingDown
                | Self::ForcedServerClose
        )
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<iolite_engine::CloseReason> for DisconnectReason {
    fn from(r: iolite_engine::CloseReason) -> Self {
        use iolite_engine::CloseReason as C;
        match r {
            C::TransportClose => Self::TransportClose,
            C::TransportError => Self::TransportError,
            C::PingTimeout => Self::PingTimeout,
            C::ParseError => Self::ParseError,
            C::ForcedClose => Self::ForcedClose,
            C::ServerShuttingDown => Self::ServerShuttingDown,
        }
    }
}
