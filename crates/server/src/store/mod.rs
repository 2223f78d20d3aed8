//! Chat history storage: the [`Store`] trait, its SQLite implementation (one process) and
//! its PostgreSQL implementation (several server processes sharing one history).
//!
//! The trait is object-safe and every method returns a boxed future, so the chat holds an
//! `Arc<dyn Store>` whichever backend [`connect`] opened.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod postgres;
pub mod sqlite;

/// Which database holds the history.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file (`store.path`): one server process.
    #[default]
    Sqlite,
    /// A PostgreSQL database (`store.url`): every node of a cluster shows the same history.
    Postgres,
}

impl StoreKind {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The `[store]` section: which backend, and where.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite` (default) or `postgres`.
    pub kind: StoreKind,
    /// The SQLite file (`kind = "sqlite"`).
    pub path: PathBuf,
    /// The PostgreSQL connection string (`kind = "postgres"`):
    /// `postgres://user:password@host:5432/dbname` or `host=... dbname=...`.
    pub url: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            path: StoreConfig::default().path,
            url: None,
        }
    }
}

impl StoreSettings {
    /// The SQLite part.
    pub fn sqlite(&self) -> StoreConfig {
        StoreConfig {
            path: self.path.clone(),
        }
    }

    /// Where the history is, for logs: the file, or the URL with its password hidden.
    pub fn describe(&self) -> String {
        match self.kind {
            StoreKind::Sqlite => self.path.display().to_string(),
            StoreKind::Postgres => redact_url(self.url.as_deref().unwrap_or("")),
        }
    }
}

/// A connection string with its password replaced by `(hidden)`, for logs and errors.
/// Both forms are handled: `postgres://user:secret@host/db` and `password=secret host=...`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:(hidden)@{host}{tail}");
            }
        }
        // `?password=...` in the query.
        if let Some((path, query)) = tail.split_once('?') {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=(hidden)"),
                    _ => kv.to_owned(),
                })
                .collect();
            return format!("{scheme}://{authority}{path}?{}", query.join("&"));
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=(hidden)"),
            _ => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The SQLite store's settings: the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file.
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/iolite.sqlite3"),
        }
    }
}

/// Who wrote a message, or who is in a room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct User {
    /// Stable id: the token's `sub`, or `guest:<name>`.
    pub id: String,
    /// Display name.
    pub name: String,
}

/// A stored message, as the protocol sends it (`docs/chat-protocol.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Grows with every stored message, across rooms.
    pub id: i64,
    /// The room.
    pub room: String,
    /// The author.
    pub user: User,
    /// The text.
    pub text: String,
    /// Server time of the append, milliseconds since the epoch.
    pub ts: i64,
    /// The sender's idempotency key, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The room (created if it does not exist).
    pub room: String,
    /// The author.
    pub user: User,
    /// The text, already validated.
    pub text: String,
    /// Idempotency key: a second append with the same `(user.id, client_id)` returns the
    /// first message.
    pub client_id: Option<String>,
    /// Milliseconds since the epoch.
    pub ts: i64,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored message (the earlier one for a duplicate).
    pub message: Message,
    /// Whether `(user id, client_id)` was already stored, so nothing was added.
    pub duplicate: bool,
}

/// A page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The messages, by growing id.
    pub messages: Vec<Message>,
    /// Whether more messages lie beyond the page (older for `before`, newer for `after`).
    pub has_more: bool,
}

/// A room and its history's extent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room name.
    pub name: String,
    /// The id of its latest message, 0 when it has none.
    pub last_id: i64,
    /// How many messages it holds.
    pub messages: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the database file could not be created.
    #[error("cannot create the directory {} for the chat history (store.path): {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database file could not be opened or set up.
    #[error("cannot open the chat history {} (store.path): {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer version of iolite.
    #[error("the chat history {} has schema version {found}; this iolite knows up to {supported}", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// `store.url` is missing or is not a PostgreSQL connection string.
    #[error("invalid PostgreSQL connection string (store.url): {0}")]
    InvalidUrl(String),
    /// PostgreSQL could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL at {url} (store.url): {}", chain(cause))]
    Connect {
        /// The connection string, password hidden.
        url: String,
        /// The driver's error, its causes in the message (not a `source`, so that
        /// reporters that print the chain do not print them twice).
        cause: tokio_postgres::Error,
    },
    /// The PostgreSQL schema was written by a newer version of iolite.
    #[error("the PostgreSQL chat history at {url} has schema version {found}; this iolite knows up to {supported}")]
    PostgresTooNew {
        /// The connection string, password hidden.
        url: String,
        /// Its version (table `iolite_schema`).
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// A PostgreSQL query failed.
    #[error("chat history query failed (PostgreSQL): {}", chain(.0))]
    Postgres(tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool (all busy past the wait, or
    /// the pool closed).
    #[error("no PostgreSQL connection for the chat history: {0}")]
    Pool(String),
    /// A query failed (disk full, I/O error, corruption...).
    #[error("chat history query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A worker thread could not be started.
    #[error("cannot start the chat history's thread: {0}")]
    Thread(std::io::Error),
    /// The store's worker thread is gone.
    #[error("the chat history store is closed")]
    Closed,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Postgres(e)
    }
}

/// An error and its causes, "a: b: c": the driver's own message is often only the first
/// ("error connecting to server"), the useful part ("Connection refused") its source.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// What the store methods return: a boxed future, so [`Store`] stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Chat history. Implementations never block the async runtime: the work runs on threads
/// of their own.
pub trait Store: Send + Sync + 'static {
    /// Appends a message, creating its room if needed. Idempotent by
    /// `(user.id, client_id)` when `client_id` is set.
    fn append(&self, message: NewMessage) -> StoreFuture<'_, Appended>;

    /// Creates a room with no message; `true` when it did not exist before.
    fn create_room(&self, room: &str) -> StoreFuture<'_, bool>;

    /// The room, if it exists.
    fn room(&self, room: &str) -> StoreFuture<'_, Option<RoomInfo>>;

    /// Every room, by name.
    fn rooms(&self) -> StoreFuture<'_, Vec<RoomInfo>>;

    /// At most `limit` messages of `room` with `id < before` (the latest when `None`),
    /// oldest first; `has_more` when older ones exist.
    fn before(&self, room: &str, before: Option<i64>, limit: usize) -> StoreFuture<'_, Page>;

    /// At most `limit` messages of `room` with `id > after`, oldest first; `has_more`
    /// when newer ones exist.
    fn after(&self, room: &str, after: i64, limit: usize) -> StoreFuture<'_, Page>;
}

/// Opens a SQLite store: the file, with its parent directory and schema created if needed.
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(&config.path)?))
}

/// Opens the configured store: the SQLite file ([`open`]) or the PostgreSQL database,
/// whose schema is created or migrated before this returns.
pub async fn connect(settings: &StoreSettings) -> Result<Arc<dyn Store>, StoreError> {
    match settings.kind {
        StoreKind::Sqlite => open(&settings.sqlite()),
        StoreKind::Postgres => {
            let url = settings.url.as_deref().ok_or_else(|| {
                StoreError::InvalidUrl("store.kind is \"postgres\" but store.url is not set".into())
            })?;
            Ok(Arc::new(postgres::PostgresStore::connect(url).await?))
        }
    }
}
