//! The SQLite store: one file in WAL mode, a writer thread and a reader thread.
//!
//! SQLite calls block, so none runs on the async runtime: each connection lives on its own
//! thread and takes jobs from a channel. One writer is all SQLite allows anyway; the reader
//! has its own connection so history pages are not queued behind appends (WAL lets it read
//! while the writer writes).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{Appended, Message, NewMessage, Page, RoomInfo, Store, StoreError, StoreFuture, User};

/// Schema migrations: entry `i` takes `user_version` from `i` to `i + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    // 1: rooms (with their extent, kept up to date by appends so listing rooms does not
    // scan the messages) and messages. AUTOINCREMENT so an id is never reused, even after
    // the newest messages are deleted: clients paginate and deduplicate by id.
    "CREATE TABLE rooms (
        name TEXT PRIMARY KEY,
        created INTEGER NOT NULL,
        last_id INTEGER NOT NULL DEFAULT 0,
        messages INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        room TEXT NOT NULL REFERENCES rooms(name),
        user_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        text TEXT NOT NULL,
        client_id TEXT,
        ts INTEGER NOT NULL
    );
    CREATE INDEX messages_room_id ON messages(room, id);
    CREATE UNIQUE INDEX messages_client ON messages(user_id, client_id)
        WHERE client_id IS NOT NULL;",
];

/// How long a connection waits for a lock another process holds before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const MESSAGE_COLUMNS: &str = "id, room, user_id, user_name, text, ts, client_id";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A connection on its own thread. Dropping the last handle ends the thread, which closes
/// the connection.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn spawn(name: &str, mut conn: Connection) -> Result<Self, std::io::Error> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })?;
        Ok(Self { jobs })
    }

    fn call<T, F>(&self, f: F) -> StoreFuture<'static, T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move |conn| {
            let _ = tx.send(f(conn));
        }));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }
}

/// Chat history in a SQLite file.
pub struct SqliteStore {
    writer: Worker,
    reader: Worker,
}

impl SqliteStore {
    /// Opens (or creates) the file, its parent directory and the schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let mut writer = connect(path).map_err(open_err)?;
        migrate(&mut writer, path)?;
        let reader = connect(path).map_err(open_err)?;
        Ok(Self {
            writer: Worker::spawn("iolite-store-w", writer).map_err(StoreError::Thread)?,
            reader: Worker::spawn("iolite-store-r", reader).map_err(StoreError::Thread)?,
        })
    }
}

fn connect(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers do not block the writer nor the other way round; with it, NORMAL sync
    // loses at most the last transactions on power loss, never consistency.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(mode, "the chat history could not switch to WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let open_err = |source| StoreError::Open {
        path: path.to_owned(),
        source,
    };
    // IMMEDIATE takes the write lock first, so two processes opening a new file at once
    // do not both run the same migration.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if version > supported {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            supported,
        });
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql).map_err(open_err)?;
        tx.pragma_update(None, "user_version", v as i64 + 1)
            .map_err(open_err)?;
    }
    tx.commit().map_err(open_err)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn message(row: &Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(0)?,
        room: row.get(1)?,
        user: User {
            id: row.get(2)?,
            name: row.get(3)?,
        },
        text: row.get(4)?,
        ts: row.get(5)?,
        client_id: row.get(6)?,
    })
}

fn room_info(row: &Row<'_>) -> rusqlite::Result<RoomInfo> {
    Ok(RoomInfo {
        name: row.get(0)?,
        last_id: row.get(1)?,
        messages: row.get::<_, i64>(2)?.max(0) as u64,
    })
}

/// `limit + 1` rows tell whether there is more than a page.
fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

fn page(mut messages: Vec<Message>, limit: usize) -> Page {
    let has_more = messages.len() > limit;
    messages.truncate(limit);
    Page { messages, has_more }
}

fn append(conn: &mut Connection, m: NewMessage) -> Result<Appended, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if let Some(cid) = &m.client_id {
        let existing = tx
            .query_row(
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE user_id = ?1 AND client_id = ?2"
                ),
                params![m.user.id, cid],
                message,
            )
            .optional()?;
        if let Some(message) = existing {
            return Ok(Appended {
                message,
                duplicate: true,
            });
        }
    }
    tx.execute(
        "INSERT INTO rooms (name, created) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![m.room, m.ts],
    )?;
    tx.execute(
        "INSERT INTO messages (room, user_id, user_name, text, client_id, ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![m.room, m.user.id, m.user.name, m.text, m.client_id, m.ts],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute(
        "UPDATE rooms SET last_id = ?2, messages = messages + 1 WHERE name = ?1",
        params![m.room, id],
    )?;
    tx.commit()?;
    Ok(Appended {
        message: Message {
            id,
            room: m.room,
            user: m.user,
            text: m.text,
            ts: m.ts,
            client_id: m.client_id,
        },
        duplicate: false,
    })
}

impl Store for SqliteStore {
    fn append(&self, message: NewMessage) -> StoreFuture<'_, Appended> {
        self.writer.call(move |conn| append(conn, message))
    }

    fn create_room(&self, room: &str) -> StoreFuture<'_, bool> {
        let room = room.to_owned();
        self.writer.call(move |conn| {
            let n = conn.execute(
                "INSERT INTO rooms (name, created) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![room, now_ms()],
            )?;
            Ok(n == 1)
        })
    }

    fn room(&self, room: &str) -> StoreFuture<'_, Option<RoomInfo>> {
        let room = room.to_owned();
        self.reader.call(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT name, last_id, messages FROM rooms WHERE name = ?1",
                    params![room],
                    room_info,
                )
                .optional()?)
        })
    }

    fn rooms(&self) -> StoreFuture<'_, Vec<RoomInfo>> {
        self.reader.call(|conn| {
            let mut st =
                conn.prepare_cached("SELECT name, last_id, messages FROM rooms ORDER BY name")?;
            let rows = st.query_map([], room_info)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn before(&self, room: &str, before: Option<i64>, limit: usize) -> StoreFuture<'_, Page> {
        let room = room.to_owned();
        self.reader.call(move |conn| {
            let mut st = conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?1 AND id < ?2
                 ORDER BY id DESC LIMIT ?3"
            ))?;
            let rows = st.query_map(
                params![room, before.unwrap_or(i64::MAX), fetch_limit(limit)],
                message,
            )?;
            let newest_first = rows.collect::<Result<Vec<_>, _>>()?;
            let mut p = page(newest_first, limit);
            p.messages.reverse();
            Ok(p)
        })
    }

    fn after(&self, room: &str, after: i64, limit: usize) -> StoreFuture<'_, Page> {
        let room = room.to_owned();
        self.reader.call(move |conn| {
            let mut st = conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room = ?1 AND id > ?2
                 ORDER BY id ASC LIMIT ?3"
            ))?;
            let rows = st.query_map(params![room, after, fetch_limit(limit)], message)?;
            Ok(page(rows.collect::<Result<Vec<_>, _>>()?, limit))
        })
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}
