//! Connection configuration.

use std::sync::Arc;
use std::time::Duration;

use iolite_ws_proto::{CloseCode, DeflateConfig, HandshakeLimits, Limits};

/// What to do when a peer reads so slowly that its send queue is over
/// [`Config::max_queued_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowConsumer {
    /// Refuse the new message (the send returns [`crate::SendError::QueueFull`] with the
    /// message); the connection stays open and the queue keeps what it had.
    Reject,
    /// Drop what is queued, send a close frame with this code (1008 policy or 1013 try
    /// again later) and close the connection.
    Close(CloseCode),
}

/// Configuration of a WebSocket connection, shared by all connections of a server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Frame and message limits. In an `Arc` because every connection's decoder refers to
    /// them ([`Config::limits`] sets them from a value; `Arc::make_mut` changes one).
    pub limits: Arc<Limits>,
    /// Opening handshake limits.
    pub handshake_limits: HandshakeLimits,
    /// permessage-deflate policy; `None` (the default) refuses compression.
    pub deflate: Option<DeflateConfig>,
    /// Bytes that may wait in one connection's send queue. Default 4 MiB. A single message
    /// larger than this is still accepted when the queue is empty. Past it: [`Config::slow_consumer`].
    pub max_queued_bytes: usize,
    /// Policy past [`Config::max_queued_bytes`]. Default: close with 1008.
    pub slow_consumer: SlowConsumer,
    /// Send a ping this often. Default 30 s; `None` disables keepalive.
    pub ping_interval: Option<Duration>,
    /// Close a peer that has not answered a ping (with any pong) within this time.
    /// Default 30 s.
    pub pong_timeout: Duration,
    /// How long to wait for the peer's close frame or TCP close after ours. Default 5 s.
    pub close_timeout: Duration,
    /// Deadline for the opening handshake. Default 10 s.
    pub handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Arc::new(Limits::default()),
            handshake_limits: HandshakeLimits::default(),
            deflate: None,
            max_queued_bytes: 4 << 20,
            slow_consumer: SlowConsumer::Close(CloseCode::POLICY),
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(30),
            close_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// Sets [`Config::limits`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Arc::new(limits);
        self
    }
    /// Sets [`Config::handshake_limits`].
    pub fn handshake_limits(mut self, limits: HandshakeLimits) -> Self {
        self.handshake_limits = limits;
        self
    }
    /// Sets [`Config::deflate`].
    pub fn deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }
    /// Sets [`Config::max_queued_bytes`].
    pub fn max_queued_bytes(mut self, n: usize) -> Self {
        self.max_queued_bytes = n;
        self
    }
    /// Sets [`Config::slow_consumer`].
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }
    /// Sets [`Config::ping_interval`].
    pub fn ping_interval(mut self, every: Option<Duration>) -> Self {
        self.ping_interval = every;
        self
    }
    /// Sets [`Config::pong_timeout`].
    pub fn pong_timeout(mut self, t: Duration) -> Self {
        self.pong_timeout = t;
        self
    }
    /// Sets [`Config::close_timeout`].
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.close_timeout = t;
        self
    }
    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, t: Duration) -> Self {
        self.handshake_timeout = t;
        self
    }
}
