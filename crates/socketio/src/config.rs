//! Server configuration, with Node's Socket.IO defaults.

use std::time::Duration;

use iolite_engine::EngineConfig;

use crate::parser::ParserLimits;

/// Connection state recovery (Node's `connectionStateRecovery`): a client whose transport
/// dropped gets back its id, rooms, data and the packets it missed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// How long a session is kept after its transport dropped. Default 2 minutes.
    pub max_disconnection_duration: Duration,
    /// Skip the connect middlewares for a recovered socket. Default on.
    pub skip_middlewares: bool,
}

impl Default for Recovery {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
        }
    }
}

/// The packet encoding on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParserKind {
    /// The default text parser (`socket.io-parser`).
    #[default]
    Json,
    /// `socket.io-msgpack-parser`: one binary message per packet.
    Msgpack,
}

/// Configuration of a [`SocketIo`](crate::SocketIo) server.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Engine.IO layer: heartbeats, payload limit, transports, CORS, hooks.
    pub engine: EngineConfig,
    /// The path requests are served under. Default `/socket.io/`.
    pub path: String,
    /// How long a new connection may take to connect to a namespace before it is closed.
    /// Default 45 s, as Node's `connectTimeout`.
    pub connect_timeout: Duration,
    /// Connection state recovery; off by default, as in Node.
    pub recovery: Option<Recovery>,
    /// The parser. Default JSON.
    pub parser: ParserKind,
    /// Decoder limits (attachments per packet, largest ack id).
    pub parser_limits: ParserLimits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            path: "/socket.io/".into(),
            connect_timeout: Duration::from_secs(45),
            recovery: None,
            parser: ParserKind::Json,
            parser_limits: ParserLimits::default(),
        }
    }
}
