//! Chat history storage: the [`Store`] trait and its SQLite implementation.
//!
//! The trait is object-safe and every method returns a boxed future, so the chat holds an
//! `Arc<dyn Store>` and a PostgreSQL store (for several server processes) can be added
//! beside [`sqlite`] without touching the chat.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod sqlite;

/// Where history lives.
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

/// Opens the configured store: the SQLite file, with its parent directory and schema
/// created if needed.
pub fn open(config: &StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(sqlite::SqliteStore::open(&config.path)?))
}
