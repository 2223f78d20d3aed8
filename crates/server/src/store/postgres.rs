//! The PostgreSQL store: the history of every node of a cluster in one database.
//!
//! A small pool of connections (deadpool) serves every call, so pages are not queued
//! behind appends. Appends lock their room's row before taking an id, so within a room ids
//! are handed out in commit order: a client that synced up to id N never misses a message
//! below N that committed later (pages and syncs are per room).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{
    redact_url, Appended, Message, NewMessage, Page, RoomInfo, Store, StoreError, StoreFuture, User,
};

/// Schema migrations: entry `i` takes the version in `iolite_schema` from `i` to `i + 1`.
/// Append only.
const MIGRATIONS: &[&str] = &[
    // 1: rooms (with their extent, kept up to date by appends so listing rooms does not
    // scan the messages) and messages. An identity column never hands out an id twice:
    // clients paginate and deduplicate by id. Prefixed names, as the database may be
    // shared with other applications.
    "CREATE TABLE iolite_rooms (
        name TEXT PRIMARY KEY,
        created BIGINT NOT NULL,
        last_id BIGINT NOT NULL DEFAULT 0,
        messages BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE iolite_messages (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        room TEXT NOT NULL REFERENCES iolite_rooms(name),
        user_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        text TEXT NOT NULL,
        client_id TEXT,
        ts BIGINT NOT NULL
    );
    CREATE INDEX iolite_messages_room_id ON iolite_messages(room, id);
    CREATE UNIQUE INDEX iolite_messages_client ON iolite_messages(user_id, client_id)
        WHERE client_id IS NOT NULL;",
];

/// Serializes migrations of nodes starting at once (`pg_advisory_xact_lock`); any
/// constant shared by every iolite ("iolite" in ASCII).
const MIGRATION_LOCK: i64 = 0x696f_6c69_7465;

/// Connections in the pool.
const POOL_SIZE: usize = 8;
/// How long a call waits for a free connection, and how long connecting may take.
const WAIT: Duration = Duration::from_secs(10);

const MESSAGE_COLUMNS: &str = "id, room, user_id, user_name, text, ts, client_id";

/// Chat history in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => StoreError::Postgres(e),
        other => StoreError::Pool(other.to_string()),
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and creates or migrates the schema. Fails when
    /// the database cannot be reached: a node without its history should not start.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::InvalidUrl(format!("{e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("iolite");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let shown = redact_url(url);
        let mut client = pool.get().await.map_err(|e| match e {
            PoolError::Backend(cause) => StoreError::Connect {
                url: shown.clone(),
                cause,
            },
            other => StoreError::Pool(format!("connecting to {shown}: {other}")),
        })?;
        migrate(&mut client, &shown).await?;
        drop(client);
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    async fn append(&self, m: NewMessage) -> Result<Appended, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO iolite_rooms (name, created) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&m.room, &m.ts],
        )
        .await?;
        // The room's row lock is held until commit: appends to one room take their ids
        // one after the other, in commit order.
        tx.execute(
            "SELECT 1 FROM iolite_rooms WHERE name = $1 FOR UPDATE",
            &[&m.room],
        )
        .await?;
        if let Some(cid) = &m.client_id {
            // Read after the lock: a concurrent duplicate in this room has committed.
            if let Some(row) = tx
                .query_opt(
                    &format!(
                        "SELECT {MESSAGE_COLUMNS} FROM iolite_messages
                         WHERE user_id = $1 AND client_id = $2"
                    ),
                    &[&m.user.id, cid],
                )
                .await?
            {
                return Ok(Appended {
                    message: message(&row)?,
                    duplicate: true,
                });
            }
        }
        let inserted = tx
            .query_one(
                "INSERT INTO iolite_messages (room, user_id, user_name, text, client_id, ts)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &m.room,
                    &m.user.id,
                    &m.user.name,
                    &m.text,
                    &m.client_id,
                    &m.ts,
                ],
            )
            .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            // The same key sent at once to another room (or node) committed first.
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) && m.client_id.is_some() => {
                drop(tx);
                let row = client
                    .query_one(
                        &format!(
                            "SELECT {MESSAGE_COLUMNS} FROM iolite_messages
                             WHERE user_id = $1 AND client_id = $2"
                        ),
                        &[&m.user.id, &m.client_id],
                    )
                    .await?;
                return Ok(Appended {
                    message: message(&row)?,
                    duplicate: true,
                });
            }
            Err(e) => return Err(e.into()),
        };
        tx.execute(
            "UPDATE iolite_rooms SET last_id = $2, messages = messages + 1 WHERE name = $1",
            &[&m.room, &id],
        )
        .await?;
        tx.commit().await?;
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

    async fn create_room(&self, room: String) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO iolite_rooms (name, created) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&room, &now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    async fn room(&self, room: String) -> Result<Option<RoomInfo>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT name, last_id, messages FROM iolite_rooms WHERE name = $1",
                &[&room],
            )
            .await?;
        row.as_ref().map(room_info).transpose()
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(
                "SELECT name, last_id, messages FROM iolite_rooms ORDER BY name COLLATE \"C\"",
            )
            .await?;
        let rows = client.query(&st, &[]).await?;
        rows.iter().map(room_info).collect()
    }

    async fn before(
        &self,
        room: String,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM iolite_messages WHERE room = $1 AND id < $2
                 ORDER BY id DESC LIMIT $3"
            ))
            .await?;
        let rows = client
            .query(
                &st,
                &[&room, &before.unwrap_or(i64::MAX), &fetch_limit(limit)],
            )
            .await?;
        let newest_first = rows.iter().map(message).collect::<Result<Vec<_>, _>>()?;
        let mut p = page(newest_first, limit);
        p.messages.reverse();
        Ok(p)
    }

    async fn after(&self, room: String, after: i64, limit: usize) -> Result<Page, StoreError> {
        let client = self.client().await?;
        let st = client
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM iolite_messages WHERE room = $1 AND id > $2
                 ORDER BY id ASC LIMIT $3"
            ))
            .await?;
        let rows = client
            .query(&st, &[&room, &after, &fetch_limit(limit)])
            .await?;
        let messages = rows.iter().map(message).collect::<Result<Vec<_>, _>>()?;
        Ok(page(messages, limit))
    }
}

async fn migrate(client: &mut deadpool_postgres::Object, shown: &str) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    let tx = client.transaction().await?;
    // Two nodes starting on a new database at once: the second waits here, then finds
    // the schema made.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS iolite_schema (version BIGINT NOT NULL)")
        .await?;
    let version: i64 = match tx
        .query_opt("SELECT version FROM iolite_schema", &[])
        .await?
    {
        Some(row) => row.try_get(0)?,
        None => {
            tx.execute("INSERT INTO iolite_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    if version > supported {
        return Err(StoreError::PostgresTooNew {
            url: shown.to_owned(),
            found: version,
            supported,
        });
    }
    for (v, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.batch_execute(sql).await?;
        tx.execute("UPDATE iolite_schema SET version = $1", &[&(v as i64 + 1)])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn message(row: &Row) -> Result<Message, StoreError> {
    Ok(Message {
        id: row.try_get(0)?,
        room: row.try_get(1)?,
        user: User {
            id: row.try_get(2)?,
            name: row.try_get(3)?,
        },
        text: row.try_get(4)?,
        ts: row.try_get(5)?,
        client_id: row.try_get(6)?,
    })
}

fn room_info(row: &Row) -> Result<RoomInfo, StoreError> {
    Ok(RoomInfo {
        name: row.try_get(0)?,
        last_id: row.try_get(1)?,
        messages: row.try_get::<_, i64>(2)?.max(0) as u64,
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

impl Store for PostgresStore {
    fn append(&self, message: NewMessage) -> StoreFuture<'_, Appended> {
        Box::pin(self.append(message))
    }

    fn create_room(&self, room: &str) -> StoreFuture<'_, bool> {
        Box::pin(self.create_room(room.to_owned()))
    }

    fn room(&self, room: &str) -> StoreFuture<'_, Option<RoomInfo>> {
        Box::pin(self.room(room.to_owned()))
    }

    fn rooms(&self) -> StoreFuture<'_, Vec<RoomInfo>> {
        Box::pin(self.rooms())
    }

    fn before(&self, room: &str, before: Option<i64>, limit: usize) -> StoreFuture<'_, Page> {
        Box::pin(self.before(room.to_owned(), before, limit))
    }

    fn after(&self, room: &str, after: i64, limit: usize) -> StoreFuture<'_, Page> {
        Box::pin(self.after(room.to_owned(), after, limit))
    }
}
