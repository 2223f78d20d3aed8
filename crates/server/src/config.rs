//! The server's configuration: a TOML file (`--config FILE`), `IOLITE_*` environment
//! variables and command-line flags, in that order of precedence from lowest to highest,
//! over built-in defaults. `iolite.example.toml` at the repository root lists every field
//! with its default.
//!
//! Every field of the file has a flag and an environment variable ([`FIELDS`]); the file
//! and the flags are checked strictly (an unknown key or flag is an error), and
//! [`Config::validate`] names the field that is wrong.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::chat::ChatSettings;
use crate::limits::OriginPattern;
use crate::store::{redact_url, StoreKind, StoreSettings};

/// Why the configuration could not be loaded. Each message names the file or the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a value of the wrong type
    /// (the message shows the line and names the key).
    #[error("invalid configuration file {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's error, with the line and the key.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {field}{}: {message}", sources(field))]
    Invalid {
        /// The field, as in the file (`limits.max_connections`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// The field's flag and environment variable, for error messages: " (--port, IOLITE_PORT)".
fn sources(field: &str) -> String {
    FIELDS
        .iter()
        .find(|f| f.0 == field)
        .map(|(_, flag, env)| format!(" (--{flag}, {env})"))
        .unwrap_or_default()
}

/// Every field of the file with its flag (without `--`) and its environment variable.
/// A unit test checks the command line against it.
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("listen.host", "host", "IOLITE_HOST"),
    ("listen.port", "port", "IOLITE_PORT"),
    ("listen.public_url", "public-url", "IOLITE_PUBLIC_URL"),
    (
        "listen.allowed_origins",
        "allowed-origins",
        "IOLITE_ALLOWED_ORIGINS",
    ),
    ("tls.cert", "tls-cert", "IOLITE_TLS_CERT"),
    ("tls.key", "tls-key", "IOLITE_TLS_KEY"),
    ("auth.secret", "auth-secret", "IOLITE_AUTH_SECRET"),
    (
        "auth.public_key",
        "auth-public-key",
        "IOLITE_AUTH_PUBLIC_KEY",
    ),
    ("auth.jwks", "auth-jwks", "IOLITE_AUTH_JWKS"),
    (
        "auth.algorithms",
        "auth-algorithms",
        "IOLITE_AUTH_ALGORITHMS",
    ),
    ("auth.issuer", "auth-issuer", "IOLITE_AUTH_ISSUER"),
    ("auth.audience", "auth-audience", "IOLITE_AUTH_AUDIENCE"),
    ("auth.leeway", "auth-leeway", "IOLITE_AUTH_LEEWAY"),
    ("store.kind", "store-kind", "IOLITE_STORE_KIND"),
    ("store.path", "store-path", "IOLITE_STORE_PATH"),
    ("store.url", "store-url", "IOLITE_STORE_URL"),
    (
        "cluster.adapter",
        "cluster-adapter",
        "IOLITE_CLUSTER_ADAPTER",
    ),
    ("cluster.redis_url", "redis-url", "IOLITE_REDIS_URL"),
    ("cluster.key", "cluster-key", "IOLITE_CLUSTER_KEY"),
    (
        "cluster.requests_timeout_ms",
        "cluster-requests-timeout-ms",
        "IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS",
    ),
    (
        "cluster.ready_requires_redis",
        "ready-requires-redis",
        "IOLITE_READY_REQUIRES_REDIS",
    ),
    (
        "cluster.stream_max_len",
        "cluster-stream-max-len",
        "IOLITE_CLUSTER_STREAM_MAX_LEN",
    ),
    (
        "cluster.subscription_mode",
        "cluster-subscription-mode",
        "IOLITE_CLUSTER_SUBSCRIPTION_MODE",
    ),
    (
        "chat.message_length",
        "chat-message-length",
        "IOLITE_CHAT_MESSAGE_LENGTH",
    ),
    (
        "chat.rooms_per_socket",
        "chat-rooms-per-socket",
        "IOLITE_CHAT_ROOMS_PER_SOCKET",
    ),
    (
        "chat.history_page",
        "chat-history-page",
        "IOLITE_CHAT_HISTORY_PAGE",
    ),
    (
        "chat.events_per_second",
        "chat-events-per-second",
        "IOLITE_CHAT_EVENTS_PER_SECOND",
    ),
    (
        "limits.max_connections",
        "max-connections",
        "IOLITE_MAX_CONNECTIONS",
    ),
    (
        "limits.connections_per_ip",
        "connections-per-ip",
        "IOLITE_CONNECTIONS_PER_IP",
    ),
    ("limits.max_payload", "max-payload", "IOLITE_MAX_PAYLOAD"),
    (
        "limits.max_queued_bytes",
        "max-queued-bytes",
        "IOLITE_MAX_QUEUED_BYTES",
    ),
    (
        "limits.handshake_timeout_seconds",
        "handshake-timeout-seconds",
        "IOLITE_HANDSHAKE_TIMEOUT_SECONDS",
    ),
    ("api.key", "api-key", "IOLITE_API_KEY"),
    ("log.format", "log-format", "IOLITE_LOG_FORMAT"),
    ("log.level", "log-level", "IOLITE_LOG_LEVEL"),
    (
        "shutdown.drain_seconds",
        "drain-seconds",
        "IOLITE_DRAIN_SECONDS",
    ),
    (
        "socketio.ping_interval_ms",
        "ping-interval-ms",
        "IOLITE_PING_INTERVAL_MS",
    ),
    (
        "socketio.ping_timeout_ms",
        "ping-timeout-ms",
        "IOLITE_PING_TIMEOUT_MS",
    ),
    (
        "socketio.recovery_seconds",
        "recovery-seconds",
        "IOLITE_RECOVERY_SECONDS",
    ),
];

/// The whole configuration. Every section and field has a default, so an empty file (or
/// none) is a working server on `http://127.0.0.1:3000`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where to listen and which browser origins may connect.
    pub listen: Listen,
    /// HTTPS / WSS.
    pub tls: Tls,
    /// JWT verification; absent means guest mode.
    pub auth: AuthConfig,
    /// Chat history.
    pub store: StoreSettings,
    /// Several server processes acting as one.
    pub cluster: Cluster,
    /// The chat's limits.
    pub chat: ChatSettings,
    /// Connection-level limits.
    pub limits: Limits,
    /// The HTTP API for backends.
    pub api: Api,
    /// Logging.
    pub log: Log,
    /// Graceful shutdown.
    pub shutdown: Shutdown,
    /// Socket.IO heartbeats and connection state recovery.
    pub socketio: SocketIoSettings,
}

/// `[listen]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    /// Interface to listen on. Default `127.0.0.1` (this machine only).
    pub host: String,
    /// TCP port. Default 3000; 0 picks a free port (the startup log says which).
    pub port: u16,
    /// The URL people open when it is not `http(s)://host:port` (behind a reverse proxy,
    /// or listening on `0.0.0.0`); its origin may connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// More origins that may connect (the browser's `Origin` header), e.g.
    /// `https://app.example.com` or `https://*.example.com`; `*` allows any. The server's
    /// own origin is always allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 3000,
            public_url: None,
            allowed_origins: Vec::new(),
        }
    }
}

/// `[tls]`: both or neither.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl Tls {
    /// Whether TLS is configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }
}

/// How the nodes of a cluster reach each other.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AdapterKind {
    /// One process: broadcasts reach this process's clients only.
    #[default]
    Memory,
    /// Redis pub/sub (`cluster.redis_url`): broadcasts, presence and typing reach the
    /// clients of every node on the same Redis and `cluster.key`.
    Redis,
    /// A Redis stream (`cluster.redis_url`, the stream `cluster.key`): as `Redis`, and a
    /// client that reconnects to another node recovers its session and missed events.
    #[serde(rename = "redis-streams")]
    #[value(name = "redis-streams")]
    RedisStreams,
    /// Redis 7 sharded pub/sub (`SSUBSCRIBE`, `cluster.redis_url`): as `Redis`, on the
    /// channels of Node's `createShardedAdapter`.
    #[serde(rename = "redis-sharded")]
    #[value(name = "redis-sharded")]
    RedisSharded,
}

impl AdapterKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::RedisStreams => "redis-streams",
            Self::RedisSharded => "redis-sharded",
        }
    }
}

/// `[cluster]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// `memory` (one process, the default), `redis`, `redis-streams` or `redis-sharded`.
    pub adapter: AdapterKind,
    /// The Redis server (`redis://host:6379/`, `redis://:password@host/0`), a master
    /// found through Sentinel (`redis+sentinel://host:26379,host2:26379/master-name`), or a
    /// Redis Cluster (`redis+cluster://host:7000,host2:7000`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// The prefix of the Redis channels (Node's `@socket.io/redis-adapter` `key`), or with
    /// `redis-streams` the stream's name (`streamName`); nodes of one cluster share it.
    pub key: String,
    /// How long a request to the other nodes (the members of a room, for presence) waits
    /// for their answers, in milliseconds.
    pub requests_timeout_ms: u64,
    /// Whether `/readyz` answers 503 while the link to Redis is down, so a load balancer
    /// sends new clients to the nodes that are still part of the cluster.
    pub ready_requires_redis: bool,
    /// With `redis-streams`, the stream is trimmed to about this many entries (`maxLen`): a
    /// client recovers only while the last event it saw is still in it.
    pub stream_max_len: u64,
    /// With `redis-sharded`, which rooms get a channel of their own (Node's
    /// `subscriptionMode`): `static`, `dynamic` or `dynamic-private`; nodes of one cluster
    /// use the same.
    pub subscription_mode: String,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            adapter: AdapterKind::Memory,
            redis_url: None,
            key: "socket.io".into(),
            requests_timeout_ms: 5_000,
            ready_requires_redis: false,
            stream_max_len: DEFAULT_STREAM_MAX_LEN,
            subscription_mode: DEFAULT_SUBSCRIPTION_MODE.into(),
        }
    }
}

/// Node's `createShardedAdapter` `subscriptionMode`.
const DEFAULT_SUBSCRIPTION_MODE: &str = "dynamic";

/// Node's `@socket.io/redis-streams-adapter` `maxLen`.
const DEFAULT_STREAM_MAX_LEN: u64 = 10_000;
/// Far more than a recovery window needs; guards against a typo filling Redis's memory.
const MAX_STREAM_MAX_LEN: u64 = 100_000_000;

/// `[limits]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open TCP connections in all. Past it new connections get HTTP 503.
    pub max_connections: usize,
    /// Open TCP connections from one address (an IPv6 /64 counts as one address). A
    /// browser tab uses one (WebSocket) or two (long-polling).
    pub connections_per_ip: usize,
    /// Largest message and largest HTTP request body, in bytes.
    pub max_payload: usize,
    /// Bytes that may wait to be sent to one slow client before it is disconnected.
    pub max_queued_bytes: usize,
    /// Time a connection has for its TLS handshake and for each request head, in seconds;
    /// an idle keep-alive connection is closed after it too.
    pub handshake_timeout_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            connections_per_ip: 100,
            max_payload: 1_000_000,
            max_queued_bytes: 4 << 20,
            handshake_timeout_seconds: 10,
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Api {
    /// The key backends send (`Authorization: Bearer <key>` or `X-Api-Key`); the API is
    /// off without one. At least 16 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `debug`, `iolite_server=debug,info`...
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Shutdown {
    /// How long a shutdown may wait for connections to close, in seconds; then the
    /// process exits anyway. 0 exits as soon as every client has been told.
    pub drain_seconds: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { drain_seconds: 10 }
    }
}

impl Shutdown {
    /// [`Shutdown::drain_seconds`] as a duration.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }
}

/// `[socketio]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SocketIoSettings {
    /// How often the server pings each client, in milliseconds.
    pub ping_interval_ms: u64,
    /// How long a client has to answer a ping, in milliseconds.
    pub ping_timeout_ms: u64,
    /// How long a dropped client may come back and recover its session (rooms and
    /// missed messages), in seconds; 0 turns recovery off.
    pub recovery_seconds: u64,
}

impl Default for SocketIoSettings {
    fn default() -> Self {
        Self {
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            recovery_seconds: 120,
        }
    }
}

const ABOUT: &str = "iolite: a real-time chat server speaking Socket.IO v5";

const LONG_ABOUT: &str = "iolite: a real-time chat server speaking Socket.IO v5.

Serves the chat page and a Socket.IO endpoint (/socket.io/) on http://127.0.0.1:3000
by default, with an HTTP API for backends (/api, with an API key), /healthz, /readyz
and /metrics.

Settings come from a TOML file (--config), IOLITE_* environment variables and these
flags: a flag beats a variable, a variable beats the file, the file beats the defaults.
iolite.example.toml lists every setting with its default; --print-config shows the
result.";

/// The command line. Every option also reads an environment variable.
#[derive(Debug, Default, Parser)]
#[command(name = "iolite", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// TOML configuration file (see iolite.example.toml).
    #[arg(long, short = 'c', env = "IOLITE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML (secrets hidden) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Interface to listen on [default: 127.0.0.1].
    #[arg(long, env = "IOLITE_HOST", help_heading = "Listen")]
    pub host: Option<String>,
    /// TCP port; 0 picks a free one [default: 3000].
    #[arg(long, short = 'p', env = "IOLITE_PORT", help_heading = "Listen")]
    pub port: Option<u16>,
    /// The URL people open, when not http(s)://host:port; its origin may connect.
    #[arg(
        long,
        env = "IOLITE_PUBLIC_URL",
        value_name = "URL",
        help_heading = "Listen"
    )]
    pub public_url: Option<String>,
    /// More origins that may connect, comma-separated (https://*.example.com; * for any).
    #[arg(
        long,
        env = "IOLITE_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGINS",
        help_heading = "Listen"
    )]
    pub allowed_origins: Option<Vec<String>>,

    /// PEM certificate chain; turns on HTTPS/WSS (needs --tls-key).
    #[arg(
        long,
        env = "IOLITE_TLS_CERT",
        value_name = "FILE",
        help_heading = "TLS"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the certificate.
    #[arg(
        long,
        env = "IOLITE_TLS_KEY",
        value_name = "FILE",
        help_heading = "TLS"
    )]
    pub tls_key: Option<PathBuf>,

    /// HMAC secret for HS256/384/512 tokens (prefer the variable or the file: flags show in `ps`).
    #[arg(
        long,
        env = "IOLITE_AUTH_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_secret: Option<String>,
    /// PEM public key file for RS*/PS*/ES*/EdDSA tokens.
    #[arg(
        long,
        env = "IOLITE_AUTH_PUBLIC_KEY",
        value_name = "FILE",
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_public_key: Option<PathBuf>,
    /// JWKS file.
    #[arg(
        long,
        env = "IOLITE_AUTH_JWKS",
        value_name = "FILE",
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_jwks: Option<PathBuf>,
    /// Accepted algorithms, comma-separated [default: those the key allows].
    #[arg(
        long,
        env = "IOLITE_AUTH_ALGORITHMS",
        value_delimiter = ',',
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_algorithms: Option<Vec<String>>,
    /// Required `iss` claim.
    #[arg(
        long,
        env = "IOLITE_AUTH_ISSUER",
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_issuer: Option<String>,
    /// Accepted `aud` values, comma-separated.
    #[arg(
        long,
        env = "IOLITE_AUTH_AUDIENCE",
        value_delimiter = ',',
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_audience: Option<Vec<String>>,
    /// Clock skew allowed for exp/nbf, in seconds [default: 0].
    #[arg(
        long,
        env = "IOLITE_AUTH_LEEWAY",
        value_name = "SECONDS",
        help_heading = "Auth (none: guest mode)"
    )]
    pub auth_leeway: Option<u64>,

    /// SQLite file for chat history [default: data/iolite.sqlite3].
    #[arg(
        long,
        env = "IOLITE_STORE_PATH",
        value_name = "FILE",
        help_heading = "Store"
    )]
    pub store_path: Option<PathBuf>,
    /// Where history lives: sqlite (a file) or postgres (shared by a cluster) [default: sqlite].
    #[arg(long, env = "IOLITE_STORE_KIND", value_enum, help_heading = "Store")]
    pub store_kind: Option<StoreKind>,
    /// PostgreSQL connection string (postgres://user:password@host:5432/db), for --store-kind postgres.
    #[arg(
        long,
        env = "IOLITE_STORE_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Store"
    )]
    pub store_url: Option<String>,

    /// How nodes of a cluster reach each other: memory (one process), redis (pub/sub),
    /// redis-streams (with recovery across nodes) or redis-sharded (Redis 7 sharded
    /// pub/sub) [default: memory].
    #[arg(
        long,
        env = "IOLITE_CLUSTER_ADAPTER",
        value_enum,
        help_heading = "Cluster"
    )]
    pub cluster_adapter: Option<AdapterKind>,
    /// Redis URL (redis://host:6379/, redis+sentinel://host:26379/master-name or
    /// redis+cluster://host:7000,host2:7000), for
    /// --cluster-adapter redis, redis-streams or redis-sharded.
    #[arg(
        long,
        env = "IOLITE_REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        help_heading = "Cluster"
    )]
    pub redis_url: Option<String>,
    /// Prefix of the Redis channels (redis-streams: the stream's name), shared by the nodes
    /// of a cluster [default: socket.io].
    #[arg(
        long,
        env = "IOLITE_CLUSTER_KEY",
        value_name = "KEY",
        help_heading = "Cluster"
    )]
    pub cluster_key: Option<String>,
    /// How long a request to the other nodes waits, in milliseconds [default: 5000].
    #[arg(
        long,
        env = "IOLITE_CLUSTER_REQUESTS_TIMEOUT_MS",
        value_name = "MS",
        help_heading = "Cluster"
    )]
    pub cluster_requests_timeout_ms: Option<u64>,
    /// /readyz answers 503 while Redis is unreachable; redis adapter only [default: false].
    #[arg(
        long,
        env = "IOLITE_READY_REQUIRES_REDIS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new(),
        help_heading = "Cluster"
    )]
    pub ready_requires_redis: Option<bool>,
    /// redis-streams: the stream is trimmed to about this many entries [default: 10000].
    #[arg(
        long,
        env = "IOLITE_CLUSTER_STREAM_MAX_LEN",
        value_name = "N",
        help_heading = "Cluster"
    )]
    pub cluster_stream_max_len: Option<u64>,
    /// redis-sharded: which rooms get a channel of their own, static, dynamic or
    /// dynamic-private [default: dynamic].
    #[arg(
        long,
        env = "IOLITE_CLUSTER_SUBSCRIPTION_MODE",
        value_name = "MODE",
        help_heading = "Cluster"
    )]
    pub cluster_subscription_mode: Option<String>,

    /// Longest chat message, in characters [default: 2000].
    #[arg(
        long,
        env = "IOLITE_CHAT_MESSAGE_LENGTH",
        value_name = "N",
        help_heading = "Chat"
    )]
    pub chat_message_length: Option<usize>,
    /// Most rooms one connection may be in [default: 50].
    #[arg(
        long,
        env = "IOLITE_CHAT_ROOMS_PER_SOCKET",
        value_name = "N",
        help_heading = "Chat"
    )]
    pub chat_rooms_per_socket: Option<usize>,
    /// Largest history page [default: 50].
    #[arg(
        long,
        env = "IOLITE_CHAT_HISTORY_PAGE",
        value_name = "N",
        help_heading = "Chat"
    )]
    pub chat_history_page: Option<usize>,
    /// Events per second per connection [default: 20].
    #[arg(
        long,
        env = "IOLITE_CHAT_EVENTS_PER_SECOND",
        value_name = "N",
        help_heading = "Chat"
    )]
    pub chat_events_per_second: Option<u32>,

    /// Open TCP connections in all [default: 10000].
    #[arg(
        long,
        env = "IOLITE_MAX_CONNECTIONS",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub max_connections: Option<usize>,
    /// Open TCP connections from one address [default: 100].
    #[arg(
        long,
        env = "IOLITE_CONNECTIONS_PER_IP",
        value_name = "N",
        help_heading = "Limits"
    )]
    pub connections_per_ip: Option<usize>,
    /// Largest message or request body, in bytes [default: 1000000].
    #[arg(
        long,
        env = "IOLITE_MAX_PAYLOAD",
        value_name = "BYTES",
        help_heading = "Limits"
    )]
    pub max_payload: Option<usize>,
    /// Bytes queued for one slow client before it is dropped [default: 4194304].
    #[arg(
        long,
        env = "IOLITE_MAX_QUEUED_BYTES",
        value_name = "BYTES",
        help_heading = "Limits"
    )]
    pub max_queued_bytes: Option<usize>,
    /// Time for the TLS handshake and each request head, in seconds [default: 10].
    #[arg(
        long,
        env = "IOLITE_HANDSHAKE_TIMEOUT_SECONDS",
        value_name = "SECONDS",
        help_heading = "Limits"
    )]
    pub handshake_timeout_seconds: Option<u64>,

    /// Key for the HTTP API (at least 16 characters; the API is off without one).
    #[arg(
        long,
        env = "IOLITE_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "HTTP API"
    )]
    pub api_key: Option<String>,

    /// Log format [default: text].
    #[arg(long, env = "IOLITE_LOG_FORMAT", value_enum, help_heading = "Logging")]
    pub log_format: Option<LogFormat>,
    /// Log filter: info, debug, iolite_server=debug,info... [default: info].
    #[arg(
        long,
        env = "IOLITE_LOG_LEVEL",
        value_name = "FILTER",
        help_heading = "Logging"
    )]
    pub log_level: Option<String>,

    /// Longest graceful shutdown, in seconds [default: 10].
    #[arg(
        long,
        env = "IOLITE_DRAIN_SECONDS",
        value_name = "SECONDS",
        help_heading = "Shutdown"
    )]
    pub drain_seconds: Option<u64>,

    /// Ping interval, in milliseconds [default: 25000].
    #[arg(
        long,
        env = "IOLITE_PING_INTERVAL_MS",
        value_name = "MS",
        help_heading = "Socket.IO"
    )]
    pub ping_interval_ms: Option<u64>,
    /// Ping timeout, in milliseconds [default: 20000].
    #[arg(
        long,
        env = "IOLITE_PING_TIMEOUT_MS",
        value_name = "MS",
        help_heading = "Socket.IO"
    )]
    pub ping_timeout_ms: Option<u64>,
    /// Session recovery window, in seconds; 0 turns recovery off [default: 120].
    #[arg(
        long,
        env = "IOLITE_RECOVERY_SECONDS",
        value_name = "SECONDS",
        help_heading = "Socket.IO"
    )]
    pub recovery_seconds: Option<u64>,
}

impl Cli {
    /// Loads the file named by `--config` (or the defaults), applies the flags and
    /// variables over it, and validates the result.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Overrides what the command line or the environment set.
    pub fn apply(&self, c: &mut Config) {
        fn set<T: Clone>(to: &mut T, from: &Option<T>) {
            if let Some(v) = from {
                *to = v.clone();
            }
        }
        fn set_opt<T: Clone>(to: &mut Option<T>, from: &Option<T>) {
            if from.is_some() {
                to.clone_from(from);
            }
        }
        set(&mut c.listen.host, &self.host);
        set(&mut c.listen.port, &self.port);
        set_opt(&mut c.listen.public_url, &self.public_url);
        set(&mut c.listen.allowed_origins, &self.allowed_origins);
        set_opt(&mut c.tls.cert, &self.tls_cert);
        set_opt(&mut c.tls.key, &self.tls_key);
        set_opt(&mut c.auth.secret, &self.auth_secret);
        set_opt(&mut c.auth.public_key, &self.auth_public_key);
        set_opt(&mut c.auth.jwks, &self.auth_jwks);
        set(&mut c.auth.algorithms, &self.auth_algorithms);
        set_opt(&mut c.auth.issuer, &self.auth_issuer);
        set(&mut c.auth.audience, &self.auth_audience);
        set(&mut c.auth.leeway, &self.auth_leeway);
        set(&mut c.store.path, &self.store_path);
        set(&mut c.store.kind, &self.store_kind);
        set_opt(&mut c.store.url, &self.store_url);
        set(&mut c.cluster.adapter, &self.cluster_adapter);
        set_opt(&mut c.cluster.redis_url, &self.redis_url);
        set(&mut c.cluster.key, &self.cluster_key);
        set(
            &mut c.cluster.requests_timeout_ms,
            &self.cluster_requests_timeout_ms,
        );
        set(
            &mut c.cluster.ready_requires_redis,
            &self.ready_requires_redis,
        );
        set(&mut c.cluster.stream_max_len, &self.cluster_stream_max_len);
        set(
            &mut c.cluster.subscription_mode,
            &self.cluster_subscription_mode,
        );
        set(&mut c.chat.message_length, &self.chat_message_length);
        set(&mut c.chat.rooms_per_socket, &self.chat_rooms_per_socket);
        set(&mut c.chat.history_page, &self.chat_history_page);
        set(&mut c.chat.events_per_second, &self.chat_events_per_second);
        set(&mut c.limits.max_connections, &self.max_connections);
        set(&mut c.limits.connections_per_ip, &self.connections_per_ip);
        set(&mut c.limits.max_payload, &self.max_payload);
        set(&mut c.limits.max_queued_bytes, &self.max_queued_bytes);
        set(
            &mut c.limits.handshake_timeout_seconds,
            &self.handshake_timeout_seconds,
        );
        set_opt(&mut c.api.key, &self.api_key);
        set(&mut c.log.format, &self.log_format);
        set(&mut c.log.level, &self.log_level);
        set(&mut c.shutdown.drain_seconds, &self.drain_seconds);
        set(&mut c.socketio.ping_interval_ms, &self.ping_interval_ms);
        set(&mut c.socketio.ping_timeout_ms, &self.ping_timeout_ms);
        set(&mut c.socketio.recovery_seconds, &self.recovery_seconds);
    }
}

/// Upper bounds that catch a unit mistake (milliseconds given as seconds, say) rather than
/// limit anyone.
const MAX_SECONDS: u64 = 24 * 3600;

impl Config {
    /// Reads and parses a TOML file (not yet validated).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text (not yet validated).
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks ranges and consistency; the error names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.listen;
        if l.host.trim().is_empty() {
            return Err(invalid("listen.host", "must not be empty"));
        }
        if l.host.contains(['/', ' ', '[', ']']) {
            return Err(invalid(
                "listen.host",
                format!(
                    "{:?} is not a host name or an IP address (no brackets, no scheme)",
                    l.host
                ),
            ));
        }
        if let Some(url) = &l.public_url {
            OriginPattern::parse_url(url).map_err(|e| invalid("listen.public_url", e))?;
        }
        for o in &l.allowed_origins {
            OriginPattern::parse(o).map_err(|e| invalid("listen.allowed_origins", e))?;
        }

        match (&self.tls.cert, &self.tls.key) {
            (Some(_), None) => {
                return Err(invalid(
                    "tls.key",
                    "tls.cert is set but tls.key is not; give both or neither",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "tls.cert",
                    "tls.key is set but tls.cert is not; give both or neither",
                ))
            }
            (Some(c), Some(k)) => {
                if c.as_os_str().is_empty() {
                    return Err(invalid("tls.cert", "must not be empty"));
                }
                if k.as_os_str().is_empty() {
                    return Err(invalid("tls.key", "must not be empty"));
                }
            }
            (None, None) => {}
        }

        self.validate_store()?;
        self.validate_cluster()?;

        let c = &self.chat;
        positive("chat.message_length", c.message_length as u64)?;
        positive("chat.rooms_per_socket", c.rooms_per_socket as u64)?;
        positive("chat.history_page", c.history_page as u64)?;
        positive("chat.events_per_second", u64::from(c.events_per_second))?;

        let m = &self.limits;
        positive("limits.max_connections", m.max_connections as u64)?;
        positive("limits.connections_per_ip", m.connections_per_ip as u64)?;
        positive("limits.max_payload", m.max_payload as u64)?;
        positive("limits.max_queued_bytes", m.max_queued_bytes as u64)?;
        positive(
            "limits.handshake_timeout_seconds",
            m.handshake_timeout_seconds,
        )?;
        at_most(
            "limits.handshake_timeout_seconds",
            m.handshake_timeout_seconds,
            MAX_SECONDS,
        )?;

        if let Some(key) = &self.api.key {
            if key.chars().count() < 16 {
                return Err(invalid("api.key", "must be at least 16 characters"));
            }
            if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(invalid(
                    "api.key",
                    "must not contain spaces or control characters",
                ));
            }
        }

        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            return Err(invalid("log.level", format!("{:?}: {e}", self.log.level)));
        }

        at_most(
            "shutdown.drain_seconds",
            self.shutdown.drain_seconds,
            MAX_SECONDS,
        )?;

        let s = &self.socketio;
        positive("socketio.ping_interval_ms", s.ping_interval_ms)?;
        positive("socketio.ping_timeout_ms", s.ping_timeout_ms)?;
        at_most(
            "socketio.ping_interval_ms",
            s.ping_interval_ms,
            MAX_SECONDS * 1000,
        )?;
        at_most(
            "socketio.ping_timeout_ms",
            s.ping_timeout_ms,
            MAX_SECONDS * 1000,
        )?;
        at_most("socketio.recovery_seconds", s.recovery_seconds, MAX_SECONDS)?;
        Ok(())
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        let st = &self.store;
        match st.kind {
            StoreKind::Sqlite => {
                if st.url.is_some() {
                    return Err(invalid(
                        "store.kind",
                        "store.url is set but store.kind is \"sqlite\"; set store.kind = \"postgres\" to use PostgreSQL, or remove store.url",
                    ));
                }
                if st.path.as_os_str().is_empty() {
                    return Err(invalid("store.path", "must not be empty"));
                }
                if st.path.is_dir() {
                    return Err(invalid(
                        "store.path",
                        format!(
                            "{} is a directory; give the database file",
                            st.path.display()
                        ),
                    ));
                }
            }
            StoreKind::Postgres => {
                let Some(url) = st.url.as_deref().filter(|u| !u.trim().is_empty()) else {
                    return Err(invalid(
                        "store.url",
                        "store.kind is \"postgres\": set the connection string, e.g. postgres://user:password@host:5432/iolite",
                    ));
                };
                let parsed = url.parse::<tokio_postgres::Config>().map_err(|e| {
                    invalid(
                        "store.url",
                        format!(
                            "{} is not a PostgreSQL connection string: {e}",
                            redact_url(url)
                        ),
                    )
                })?;
                if parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
                    return Err(invalid(
                        "store.url",
                        "sslmode=require is not supported yet: connect over a private network or a local TLS tunnel",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        match c.adapter {
            AdapterKind::Memory => {
                if c.redis_url.is_some() {
                    return Err(invalid(
                        "cluster.adapter",
                        "cluster.redis_url is set but cluster.adapter is \"memory\"; set cluster.adapter = \"redis\" to use it, or remove cluster.redis_url",
                    ));
                }
                if c.ready_requires_redis {
                    return Err(invalid(
                        "cluster.ready_requires_redis",
                        "needs cluster.adapter = \"redis\"",
                    ));
                }
            }
            AdapterKind::Redis | AdapterKind::RedisStreams | AdapterKind::RedisSharded => {
                let Some(url) = c.redis_url.as_deref().filter(|u| !u.trim().is_empty()) else {
                    return Err(invalid(
                        "cluster.redis_url",
                        format!(
                            "cluster.adapter is \"{}\": set the Redis URL, e.g. redis://127.0.0.1:6379/",
                            c.adapter.as_str()
                        ),
                    ));
                };
                // Only parses the URL (the same parser the streams client uses); connects
                // to nothing.
                iolite_redis::RedisClient::new(url).map_err(|e| {
                    invalid("cluster.redis_url", format!("{}: {e}", redact_url(url)))
                })?;
            }
        }
        if c.adapter != AdapterKind::RedisStreams && c.stream_max_len != DEFAULT_STREAM_MAX_LEN {
            return Err(invalid(
                "cluster.stream_max_len",
                "needs cluster.adapter = \"redis-streams\"",
            ));
        }
        positive("cluster.stream_max_len", c.stream_max_len)?;
        if let Err(e) = c
            .subscription_mode
            .parse::<iolite_redis::SubscriptionMode>()
        {
            return Err(invalid("cluster.subscription_mode", e));
        }
        if c.adapter != AdapterKind::RedisSharded
            && c.subscription_mode != DEFAULT_SUBSCRIPTION_MODE
        {
            return Err(invalid(
                "cluster.subscription_mode",
                "needs cluster.adapter = \"redis-sharded\"",
            ));
        }
        at_most(
            "cluster.stream_max_len",
            c.stream_max_len,
            MAX_STREAM_MAX_LEN,
        )?;
        if c.key.is_empty() {
            return Err(invalid("cluster.key", "must not be empty"));
        }
        positive("cluster.requests_timeout_ms", c.requests_timeout_ms)?;
        at_most(
            "cluster.requests_timeout_ms",
            c.requests_timeout_ms,
            MAX_SECONDS * 1000,
        )?;
        Ok(())
    }

    /// Whether the listen address is every interface (so the server's own origin is not
    /// known from the configuration alone).
    pub fn listens_everywhere(&self) -> bool {
        self.listen
            .host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
    }

    /// The effective configuration as TOML, secrets replaced by `"(hidden)"`.
    pub fn to_toml(&self) -> String {
        const HIDDEN: &str = "(hidden)";
        let mut doc = toml::Table::new();
        let mut put = |name: &str, value: Result<toml::Table, toml::ser::Error>| {
            doc.insert(name.into(), toml::Value::Table(value.unwrap_or_default()));
        };
        put("listen", toml::Table::try_from(&self.listen));
        put("tls", toml::Table::try_from(&self.tls));

        let a = &self.auth;
        let mut auth = toml::Table::new();
        if a.secret.is_some() {
            auth.insert("secret".into(), HIDDEN.into());
        }
        if let Some(p) = &a.public_key {
            auth.insert("public_key".into(), p.display().to_string().into());
        }
        if let Some(p) = &a.jwks {
            auth.insert("jwks".into(), p.display().to_string().into());
        }
        auth.insert("algorithms".into(), strings(&a.algorithms));
        if let Some(i) = &a.issuer {
            auth.insert("issuer".into(), i.clone().into());
        }
        auth.insert("audience".into(), strings(&a.audience));
        auth.insert("leeway".into(), int(a.leeway));
        doc.insert("auth".into(), auth.into());

        let mut store = toml::Table::new();
        store.insert("kind".into(), self.store.kind.as_str().into());
        store.insert("path".into(), self.store.path.display().to_string().into());
        if let Some(url) = &self.store.url {
            store.insert("url".into(), redact_url(url).into());
        }
        doc.insert("store".into(), store.into());

        let cl = &self.cluster;
        let mut cluster = toml::Table::new();
        cluster.insert("adapter".into(), cl.adapter.as_str().into());
        if let Some(url) = &cl.redis_url {
            cluster.insert("redis_url".into(), redact_url(url).into());
        }
        cluster.insert("key".into(), cl.key.clone().into());
        cluster.insert("requests_timeout_ms".into(), int(cl.requests_timeout_ms));
        cluster.insert("stream_max_len".into(), int(cl.stream_max_len));
        cluster.insert(
            "subscription_mode".into(),
            cl.subscription_mode.clone().into(),
        );
        cluster.insert(
            "ready_requires_redis".into(),
            cl.ready_requires_redis.into(),
        );
        doc.insert("cluster".into(), cluster.into());

        let c = &self.chat;
        let mut chat = toml::Table::new();
        chat.insert("message_length".into(), int(c.message_length as u64));
        chat.insert("rooms_per_socket".into(), int(c.rooms_per_socket as u64));
        chat.insert("history_page".into(), int(c.history_page as u64));
        chat.insert(
            "events_per_second".into(),
            int(u64::from(c.events_per_second)),
        );
        doc.insert("chat".into(), chat.into());

        let mut put = |name: &str, value: Result<toml::Table, toml::ser::Error>| {
            doc.insert(name.into(), toml::Value::Table(value.unwrap_or_default()));
        };
        put("limits", toml::Table::try_from(&self.limits));
        let mut api = toml::Table::new();
        if self.api.key.is_some() {
            api.insert("key".into(), HIDDEN.into());
        }
        put("api", Ok(api));
        put("log", toml::Table::try_from(&self.log));
        put("shutdown", toml::Table::try_from(&self.shutdown));
        put("socketio", toml::Table::try_from(&self.socketio));
        toml::to_string(&doc).unwrap_or_default()
    }
}

fn strings(v: &[String]) -> toml::Value {
    toml::Value::Array(v.iter().map(|s| s.clone().into()).collect())
}

fn int(n: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn positive(field: &'static str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(())
}

fn at_most(field: &'static str, v: u64, max: u64) -> Result<(), ConfigError> {
    if v > max {
        return Err(invalid(
            field,
            format!("{v} is more than the largest allowed, {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_field_has_its_flag_and_variable() {
        let cmd = Cli::command();
        for (field, flag, env) in FIELDS {
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(flag))
                .unwrap_or_else(|| panic!("{field}: no --{flag}"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(*env),
                "{field}: --{flag} reads the wrong variable"
            );
        }
        // And no flag is missing from the table (the two that are not fields aside).
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "config" | "print-config" | "help" | "version") {
                continue;
            }
            assert!(
                FIELDS.iter().any(|f| f.1 == long),
                "--{long} is not in FIELDS"
            );
        }
        cmd.debug_assert();
    }

    #[test]
    fn every_field_of_the_example_file_parses_and_equals_the_defaults() {
        let text = include_str!("../../../iolite.example.toml");
        let parsed = Config::from_toml(text).unwrap();
        assert_eq!(parsed, Config::default());
        // Uncommenting the optional fields keeps the file valid: they are real keys.
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| {
                        r.split_once(" = ").is_some_and(|(k, _)| {
                            !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                        })
                    })
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let c = Config::from_toml(&uncommented).unwrap();
        assert!(c.tls.enabled() && c.api.key.is_some() && c.auth.secret.is_some());
        // Every field of FIELDS is in the file.
        for (field, _, _) in FIELDS {
            let (section, key) = field.split_once('.').unwrap();
            assert!(
                text.contains(&format!("[{section}]")),
                "[{section}] missing from the example"
            );
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "{field} missing from the example"
            );
        }
    }

    #[test]
    fn sharded_adapter_settings() {
        let sharded = Config::from_toml(
            "[cluster]\nadapter = \"redis-sharded\"\nredis_url = \"redis://h/\"\n\
             subscription_mode = \"dynamic-private\"\nready_requires_redis = true",
        )
        .unwrap();
        sharded.validate().unwrap();
        assert_eq!(sharded.cluster.adapter, AdapterKind::RedisSharded);
        let back = Config::from_toml(&sharded.to_toml()).unwrap();
        assert_eq!(back.cluster, sharded.cluster);
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis-sharded\""),
            "cluster.redis_url"
        );
        assert_eq!(
            field_of(
                "[cluster]\nadapter = \"redis-sharded\"\nredis_url = \"redis://h/\"\n\
                 subscription_mode = \"Static\""
            ),
            "cluster.subscription_mode"
        );
        // The mode is the sharded adapter's only.
        assert_eq!(
            field_of(
                "[cluster]\nadapter = \"redis\"\nredis_url = \"redis://h/\"\n\
                 subscription_mode = \"static\""
            ),
            "cluster.subscription_mode"
        );
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    fn field_of(text: &str) -> &'static str {
        match Config::from_toml(text).unwrap().validate() {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(
            field_of("[limits]\nmax_connections = 0"),
            "limits.max_connections"
        );
        assert_eq!(
            field_of("[limits]\nconnections_per_ip = 0"),
            "limits.connections_per_ip"
        );
        assert_eq!(field_of("[limits]\nmax_payload = 0"), "limits.max_payload");
        assert_eq!(field_of("[tls]\ncert = \"c.pem\""), "tls.key");
        assert_eq!(field_of("[tls]\nkey = \"k.pem\""), "tls.cert");
        assert_eq!(field_of("[api]\nkey = \"short\""), "api.key");
        assert_eq!(
            field_of("[api]\nkey = \"a key with spaces in it\""),
            "api.key"
        );
        assert_eq!(field_of("[listen]\nhost = \"\""), "listen.host");
        assert_eq!(field_of("[listen]\nhost = \"http://x\""), "listen.host");
        assert_eq!(
            field_of("[listen]\npublic_url = \"chat.example.com\""),
            "listen.public_url"
        );
        assert_eq!(
            field_of("[listen]\nallowed_origins = [\"https://a.com/path\"]"),
            "listen.allowed_origins"
        );
        assert_eq!(field_of("[log]\nlevel = \"info,[[\"\n"), "log.level");
        assert_eq!(field_of("[store]\npath = \"\""), "store.path");
        assert_eq!(field_of("[store]\npath = \".\""), "store.path");
        assert_eq!(field_of("[chat]\nhistory_page = 0"), "chat.history_page");
        assert_eq!(
            field_of("[socketio]\nping_interval_ms = 0"),
            "socketio.ping_interval_ms"
        );
        assert_eq!(
            field_of("[shutdown]\ndrain_seconds = 999999999"),
            "shutdown.drain_seconds"
        );
    }

    #[test]
    fn store_and_cluster_values_name_their_field() {
        assert_eq!(field_of("[store]\nkind = \"postgres\""), "store.url");
        assert_eq!(
            field_of("[store]\nkind = \"postgres\"\nurl = \"\""),
            "store.url"
        );
        assert_eq!(
            field_of("[store]\nkind = \"postgres\"\nurl = \"postgres://h/db?sslmode=nope\""),
            "store.url"
        );
        assert_eq!(
            field_of("[store]\nkind = \"postgres\"\nurl = \"postgres://h/db?sslmode=require\""),
            "store.url"
        );
        assert_eq!(field_of("[store]\nurl = \"postgres://h/db\""), "store.kind");
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis\""),
            "cluster.redis_url"
        );
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis\"\nredis_url = \"http://x\""),
            "cluster.redis_url"
        );
        // Sentinel and Redis Cluster URLs are Redis URLs too; a cluster has no database.
        for url in [
            "redis+sentinel://s1:26379,s2:26379/mymaster",
            "redis+cluster://r1:7000,r2:7000",
        ] {
            Config::from_toml(&format!(
                "[cluster]\nadapter = \"redis-sharded\"\nredis_url = \"{url}\""
            ))
            .unwrap()
            .validate()
            .unwrap();
        }
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis\"\nredis_url = \"redis+cluster://r1:7000/3\""),
            "cluster.redis_url"
        );
        assert_eq!(
            field_of("[cluster]\nredis_url = \"redis://h/\""),
            "cluster.adapter"
        );
        assert_eq!(
            field_of("[cluster]\nready_requires_redis = true"),
            "cluster.ready_requires_redis"
        );
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis\"\nredis_url = \"redis://h/\"\nkey = \"\""),
            "cluster.key"
        );
        assert_eq!(
            field_of("[cluster]\nrequests_timeout_ms = 0"),
            "cluster.requests_timeout_ms"
        );
        assert_eq!(
            field_of("[cluster]\nadapter = \"redis-streams\""),
            "cluster.redis_url"
        );
        assert!(field_msg("[cluster]\nadapter = \"redis-streams\"").contains("\"redis-streams\""));
        // The streams client reports its link too.
        Config::from_toml(
            "[cluster]\nadapter = \"redis-streams\"\nredis_url = \"redis://h/\"\n\
             ready_requires_redis = true",
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(
            field_of(
                "[cluster]\nadapter = \"redis\"\nredis_url = \"redis://h/\"\nstream_max_len = 5"
            ),
            "cluster.stream_max_len"
        );
        assert_eq!(
            field_of(
                "[cluster]\nadapter = \"redis-streams\"\nredis_url = \"redis://h/\"\nstream_max_len = 0"
            ),
            "cluster.stream_max_len"
        );
        assert_eq!(
            field_of(
                "[cluster]\nadapter = \"redis-streams\"\nredis_url = \"redis://h/\"\n\
                 stream_max_len = 100000001"
            ),
            "cluster.stream_max_len"
        );
        let e = Config::from_toml("[cluster]\nadapter = \"redis_streams\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("redis_streams"), "{e}");
        let streams = Config::from_toml(
            "[cluster]\nadapter = \"redis-streams\"\nredis_url = \"redis://h/\"\n\
             key = \"chat-stream\"\nstream_max_len = 500",
        )
        .unwrap();
        streams.validate().unwrap();
        assert_eq!(streams.cluster.adapter, AdapterKind::RedisStreams);
        assert_eq!(streams.cluster.stream_max_len, 500);
        let back = Config::from_toml(&streams.to_toml()).unwrap();
        assert_eq!(back.cluster, streams.cluster);
        let e = Config::from_toml("[store]\nkind = \"mysql\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mysql") && e.contains("kind"), "{e}");
        let e = field_msg("[store]\nkind = \"postgres\"");
        assert!(e.contains("--store-url, IOLITE_STORE_URL"), "{e}");

        let ok = Config::from_toml(
            "[store]\nkind = \"postgres\"\nurl = \"host=127.0.0.1 user=postgres dbname=x\"\n\
             [cluster]\nadapter = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/\"\n\
             ready_requires_redis = true",
        )
        .unwrap();
        ok.validate().unwrap();
    }

    #[test]
    fn cluster_flags_apply() {
        let mut c = Config::default();
        let cli = Cli::try_parse_from([
            "iolite",
            "--store-kind",
            "postgres",
            "--store-url",
            "postgres://u:pw@h/db",
            "--cluster-adapter",
            "redis",
            "--redis-url",
            "redis://h:1/",
            "--cluster-key",
            "chat",
            "--cluster-requests-timeout-ms",
            "750",
            "--ready-requires-redis",
        ])
        .unwrap();
        cli.apply(&mut c);
        assert_eq!(c.store.kind, StoreKind::Postgres);
        assert_eq!(c.store.url.as_deref(), Some("postgres://u:pw@h/db"));
        assert_eq!(c.cluster.adapter, AdapterKind::Redis);
        assert_eq!(c.cluster.key, "chat");
        assert_eq!(c.cluster.requests_timeout_ms, 750);
        assert!(c.cluster.ready_requires_redis);
        c.validate().unwrap();
        let cli = Cli::try_parse_from(["iolite", "--ready-requires-redis", "false"]).unwrap();
        cli.apply(&mut c);
        assert!(!c.cluster.ready_requires_redis);
        let cli = Cli::try_parse_from([
            "iolite",
            "--cluster-adapter",
            "redis-streams",
            "--cluster-stream-max-len",
            "2500",
        ])
        .unwrap();
        cli.apply(&mut c);
        assert_eq!(c.cluster.adapter, AdapterKind::RedisStreams);
        assert_eq!(c.cluster.stream_max_len, 2500);
        c.validate().unwrap();
    }

    #[test]
    fn printed_config_hides_connection_passwords() {
        let mut c = Config::default();
        c.store.kind = StoreKind::Postgres;
        c.store.url = Some("postgres://iolite:pg-secret@db:5432/chat".into());
        c.cluster.adapter = AdapterKind::Redis;
        c.cluster.redis_url = Some("redis://:redis-secret@cache:6379/0".into());
        let text = c.to_toml();
        assert!(
            !text.contains("pg-secret") && !text.contains("redis-secret"),
            "{text}"
        );
        assert!(
            text.contains("postgres://iolite:(hidden)@db:5432/chat"),
            "{text}"
        );
        assert!(text.contains("redis://:(hidden)@cache:6379/0"), "{text}");
        let back = Config::from_toml(&text).unwrap();
        assert_eq!(back.cluster.adapter, AdapterKind::Redis);
        assert_eq!(back.store.kind, StoreKind::Postgres);
        assert_eq!(
            redact_url("host=db password=s3cret user=u"),
            "host=db password=(hidden) user=u"
        );
        assert_eq!(
            redact_url("postgres://db/chat?user=u&password=s3cret"),
            "postgres://db/chat?user=u&password=(hidden)"
        );
        assert_eq!(redact_url("redis://cache:6379/"), "redis://cache:6379/");
    }

    #[test]
    fn parse_errors_name_the_key() {
        let e = Config::from_toml("[limits]\nmax_conections = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_conections"), "{e}");
        let e = Config::from_toml("[listen]\nport = 70000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
        let e = Config::from_toml("[nope]\n").unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
        let e = Config::from_toml("[log]\nformat = \"xml\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xml") && e.contains("format"), "{e}");
    }

    #[test]
    fn invalid_messages_say_the_flag_and_variable() {
        let e = field_msg("[limits]\nmax_connections = 0");
        assert!(
            e.contains("limits.max_connections (--max-connections, IOLITE_MAX_CONNECTIONS)"),
            "{e}"
        );
    }

    fn field_msg(text: &str) -> String {
        Config::from_toml(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn flags_override_the_file() {
        let mut c = Config::from_toml("[listen]\nport = 4000\nhost = \"0.0.0.0\"").unwrap();
        let cli = Cli::try_parse_from([
            "iolite",
            "--port",
            "5000",
            "--allowed-origins",
            "https://a.com,https://*.b.com",
        ])
        .unwrap();
        cli.apply(&mut c);
        assert_eq!(c.listen.port, 5000);
        assert_eq!(c.listen.host, "0.0.0.0");
        assert_eq!(
            c.listen.allowed_origins,
            ["https://a.com", "https://*.b.com"]
        );
        assert!(c.listens_everywhere());
    }

    #[test]
    fn printed_config_hides_secrets_and_parses_back() {
        let mut c = Config::default();
        c.api.key = Some("0123456789abcdef-secret".into());
        c.auth.secret = Some("hmac-secret".into());
        let text = c.to_toml();
        assert!(!text.contains("hmac-secret"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("(hidden)"));
        let back = Config::from_toml(&text).unwrap();
        assert_eq!(back.limits, c.limits);
        assert_eq!(back.listen, c.listen);
        assert_eq!(back.chat, c.chat);
    }
}
