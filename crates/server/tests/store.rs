//! The history stores: SQLite on real files in a temporary directory, PostgreSQL on a
//! database of each test's own (see `pg_common`). The cases every store must pass run on
//! both (`<case>::sqlite`, `<case>::postgres`).

#![allow(clippy::unwrap_used)] // test helpers: a failure is the test failing

mod pg_common;

use std::collections::HashSet;
use std::sync::Arc;

use iolite_server::store::{
    self, NewMessage, Store, StoreConfig, StoreError, StoreKind, StoreSettings, User,
};
use pg_common::TestDb;

fn config(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        path: dir.path().join("nested/dir/history.sqlite3"),
    }
}

/// Where a case's store lives; [`Fixture::open`] opens it (again).
struct Fixture {
    settings: StoreSettings,
    _dir: Option<tempfile::TempDir>,
    _db: Option<TestDb>,
}

impl Fixture {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            settings: StoreSettings {
                kind: StoreKind::Sqlite,
                path: config(&dir).path,
                url: None,
            },
            _dir: Some(dir),
            _db: None,
        }
    }

    async fn postgres() -> Self {
        let db = TestDb::create().await;
        Self {
            settings: StoreSettings {
                kind: StoreKind::Postgres,
                url: Some(db.url.clone()),
                ..StoreSettings::default()
            },
            _dir: None,
            _db: Some(db),
        }
    }

    async fn open(&self) -> Arc<dyn Store> {
        store::connect(&self.settings).await.unwrap()
    }
}

/// `$case(fixture)` as two tests, `$case::sqlite` and `$case::postgres`.
macro_rules! on_both {
    ($(#[$m:meta])* $case:ident) => {
        mod $case {
            use super::*;
            $(#[$m])*
            async fn sqlite() {
                super::$case(Fixture::sqlite()).await
            }
            $(#[$m])*
            async fn postgres() {
                super::$case(Fixture::postgres().await).await
            }
        }
    };
}

on_both!(
    #[tokio::test]
    pages_before_cover_120_messages_without_gap_or_duplicate
);
on_both!(
    #[tokio::test]
    append_is_idempotent_by_user_and_client_id
);
on_both!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    concurrent_appends_get_unique_growing_ids
);
on_both!(
    #[tokio::test]
    rooms_exist_once_created_and_data_survives_reopen
);
on_both!(
    #[tokio::test]
    two_stores_on_one_database_share_history
);

fn msg(room: &str, user: &str, text: &str, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        room: room.into(),
        user: User {
            id: format!("id:{user}"),
            name: user.into(),
        },
        text: text.into(),
        client_id: client_id.map(str::to_owned),
        ts: 1_763_900_000_000,
    }
}

#[tokio::test]
async fn open_creates_directory_schema_and_wal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir);
    let s = store::open(&cfg).unwrap();
    assert!(cfg.path.exists());
    assert!(s.rooms().await.unwrap().is_empty());
    drop(s);
    let conn = rusqlite::Connection::open(&cfg.path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}

async fn pages_before_cover_120_messages_without_gap_or_duplicate(f: Fixture) {
    let s = f.open().await;
    let mut ids = Vec::new();
    for i in 0..120 {
        // Another room in between, so the room's ids are not contiguous.
        if i % 7 == 0 {
            s.append(msg("other", "bob", "noise", None)).await.unwrap();
        }
        let a = s
            .append(msg("general", "ada", &format!("m{i}"), None))
            .await
            .unwrap();
        assert!(!a.duplicate);
        assert_eq!(a.message.text, format!("m{i}"));
        ids.push(a.message.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    // Walk back from the latest page.
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let p = s.before("general", before, 25).await.unwrap();
        pages += 1;
        assert!(p.messages.len() <= 25);
        assert!(
            p.messages.windows(2).all(|w| w[0].id < w[1].id),
            "oldest first"
        );
        assert!(p.messages.iter().all(|m| m.room == "general"));
        let mut page_ids: Vec<i64> = p.messages.iter().map(|m| m.id).collect();
        page_ids.append(&mut seen);
        seen = page_ids;
        if !p.has_more {
            break;
        }
        before = Some(p.messages[0].id);
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, ids);

    // And forward with `after`.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let p = s.after("general", after, 50).await.unwrap();
        assert!(p.messages.windows(2).all(|w| w[0].id < w[1].id));
        seen.extend(p.messages.iter().map(|m| m.id));
        match p.messages.last() {
            Some(m) => after = m.id,
            None => break,
        }
        if !p.has_more {
            break;
        }
    }
    assert_eq!(seen, ids);

    // Exactly a page: no more.
    let p = s.before("general", Some(ids[25]), 25).await.unwrap();
    assert_eq!(p.messages.len(), 25);
    assert!(!p.has_more);
    let p = s.after("general", ids[94], 25).await.unwrap();
    assert_eq!(p.messages.len(), 25);
    assert!(!p.has_more);
    let p = s.after("general", ids[93], 25).await.unwrap();
    assert!(p.has_more);

    let rooms = s.rooms().await.unwrap();
    let general = rooms.iter().find(|r| r.name == "general").unwrap();
    assert_eq!(general.messages, 120);
    assert_eq!(general.last_id, *ids.last().unwrap());
    let other = rooms.iter().find(|r| r.name == "other").unwrap();
    assert_eq!(other.messages, 18);
}

async fn append_is_idempotent_by_user_and_client_id(f: Fixture) {
    let s = f.open().await;
    let first = s
        .append(msg("general", "ada", "hello", Some("c-1")))
        .await
        .unwrap();
    assert!(!first.duplicate);
    let again = s
        .append(msg("general", "ada", "hello (resent)", Some("c-1")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message, first.message);
    assert_eq!(again.message.text, "hello");
    // Same client id from another user: another message.
    let bob = s
        .append(msg("general", "bob", "hi", Some("c-1")))
        .await
        .unwrap();
    assert!(!bob.duplicate);
    assert!(bob.message.id > first.message.id);
    // No client id: never deduplicated.
    let a = s.append(msg("general", "ada", "x", None)).await.unwrap();
    let b = s.append(msg("general", "ada", "x", None)).await.unwrap();
    assert!(!a.duplicate && !b.duplicate);
    assert_ne!(a.message.id, b.message.id);
    // The same key in another room is still the first message, and adds nothing there.
    let elsewhere = s
        .append(msg("random", "ada", "hello again", Some("c-1")))
        .await
        .unwrap();
    assert!(elsewhere.duplicate);
    assert_eq!(elsewhere.message, first.message);
    assert!(s
        .room("random")
        .await
        .unwrap()
        .is_none_or(|r| r.messages == 0));
    let page = s.before("general", None, 50).await.unwrap();
    assert_eq!(page.messages.len(), 4);
    assert_eq!(s.room("general").await.unwrap().unwrap().messages, 4);
}

async fn concurrent_appends_get_unique_growing_ids(f: Fixture) {
    let s = f.open().await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let m = msg(
                    "busy",
                    &format!("u{t}"),
                    &format!("{t}/{i}"),
                    Some(&format!("{i}")),
                );
                ids.push(s.append(m).await.unwrap().message.id);
            }
            ids
        }));
    }
    let mut all = HashSet::new();
    for t in tasks {
        let ids = t.await.unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "one task's ids grow");
        for id in ids {
            assert!(all.insert(id), "id {id} given twice");
        }
    }
    assert_eq!(all.len(), 400);
    let p = s.after("busy", 0, 1000).await.unwrap();
    assert_eq!(p.messages.len(), 400);
    assert!(!p.has_more);
    assert!(p.messages.windows(2).all(|w| w[0].id < w[1].id));
}

async fn rooms_exist_once_created_and_data_survives_reopen(f: Fixture) {
    let s = f.open().await;
    assert!(s.create_room("empty").await.unwrap());
    assert!(!s.create_room("empty").await.unwrap());
    assert!(s.room("nope").await.unwrap().is_none());
    let m = s
        .append(msg("general", "ada", "persisted", Some("k")))
        .await
        .unwrap()
        .message;
    drop(s);

    let s: Arc<dyn Store> = f.open().await;
    let rooms = s.rooms().await.unwrap();
    let names: Vec<&str> = rooms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["empty", "general"]);
    assert_eq!(rooms[0].last_id, 0);
    assert_eq!(rooms[0].messages, 0);
    let p = s.before("general", None, 10).await.unwrap();
    assert_eq!(p.messages, vec![m.clone()]);
    // The idempotency key survives too, and ids keep growing.
    let again = s
        .append(msg("general", "ada", "persisted", Some("k")))
        .await
        .unwrap();
    assert!(again.duplicate);
    let next = s.append(msg("general", "ada", "new", None)).await.unwrap();
    assert!(next.message.id > m.id);
    assert!(s
        .before("empty", None, 10)
        .await
        .unwrap()
        .messages
        .is_empty());
}

#[tokio::test]
async fn unwritable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the directory should be: even root cannot create a directory there.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let cfg = StoreConfig {
        path: file.join("history.sqlite3"),
    };
    let err = store::open(&cfg).err().unwrap();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("store.path"), "{text}");
    assert!(text.contains("not-a-dir"), "{text}");

    // A directory where the file should be.
    let cfg = StoreConfig {
        path: dir.path().to_owned(),
    };
    let err = store::open(&cfg).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("store.path"), "{err}");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite3");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = store::open(&StoreConfig { path }).err().unwrap();
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.sqlite3");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = store::open(&StoreConfig { path }).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

/// Two stores on one database (two nodes of a cluster, or two processes on one SQLite
/// file): opened at once on a new database, appending in turn, each sees the other's
/// messages, ids grow across both, and idempotency keys hold across both.
async fn two_stores_on_one_database_share_history(f: Fixture) {
    let (a, b) = tokio::join!(f.open(), f.open());
    let mut ids = Vec::new();
    for i in 0..10 {
        let s = if i % 2 == 0 { &a } else { &b };
        let m = s
            .append(msg(
                "general",
                "ada",
                &format!("m{i}"),
                Some(&format!("k{i}")),
            ))
            .await
            .unwrap();
        assert!(!m.duplicate);
        ids.push(m.message.id);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for s in [&a, &b] {
        let p = s.after("general", 0, 100).await.unwrap();
        assert_eq!(p.messages.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
        assert_eq!(s.room("general").await.unwrap().unwrap().messages, 10);
        assert_eq!(s.room("general").await.unwrap().unwrap().last_id, ids[9]);
    }
    // ada's tab resent k3 to the other node.
    let again = b
        .append(msg("general", "ada", "m3", Some("k3")))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.message.id, ids[3]);
    assert!(a.create_room("side").await.unwrap());
    assert!(!b.create_room("side").await.unwrap());
}

#[tokio::test]
async fn postgres_schema_is_created_with_its_version() {
    let db = TestDb::create().await;
    let s = Fixture {
        settings: StoreSettings {
            kind: StoreKind::Postgres,
            url: Some(db.url.clone()),
            ..StoreSettings::default()
        },
        _dir: None,
        _db: None,
    }
    .open()
    .await;
    assert!(s.rooms().await.unwrap().is_empty());
    assert_eq!(db.query_i64("SELECT version FROM iolite_schema").await, 1);
    assert_eq!(db.query_i64("SELECT count(*) FROM iolite_schema").await, 1);
    s.append(msg("general", "ada", "hi", None)).await.unwrap();
    drop(s);
    // Opening again migrates nothing and keeps the data.
    let s = store::connect(&StoreSettings {
        kind: StoreKind::Postgres,
        url: Some(db.url.clone()),
        ..StoreSettings::default()
    })
    .await
    .unwrap();
    assert_eq!(s.room("general").await.unwrap().unwrap().messages, 1);
    assert_eq!(db.query_i64("SELECT version FROM iolite_schema").await, 1);
}

#[tokio::test]
async fn postgres_newer_schema_is_refused() {
    let db = TestDb::create().await;
    db.execute("CREATE TABLE iolite_schema (version BIGINT NOT NULL); INSERT INTO iolite_schema VALUES (99)")
        .await;
    let err = store::connect(&StoreSettings {
        kind: StoreKind::Postgres,
        url: Some(db.url.clone()),
        ..StoreSettings::default()
    })
    .await
    .err()
    .unwrap();
    assert!(
        matches!(
            err,
            StoreError::PostgresTooNew {
                found: 99,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_unreachable_is_a_clear_error_without_the_password() {
    // Port 1 on localhost: nothing listens there, the connection is refused at once.
    let err = store::connect(&StoreSettings {
        kind: StoreKind::Postgres,
        url: Some("postgres://iolite:pg-secret@127.0.0.1:1/iolite?connect_timeout=5".into()),
        ..StoreSettings::default()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("store.url"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(!text.contains("pg-secret"), "{text}");
}

#[tokio::test]
async fn postgres_bad_urls_are_refused() {
    for url in [
        None,
        Some("postgres://h/db?sslmode=bogus"),
        Some("not a url = ="),
    ] {
        let err = store::connect(&StoreSettings {
            kind: StoreKind::Postgres,
            url: url.map(str::to_owned),
            ..StoreSettings::default()
        })
        .await
        .err()
        .unwrap();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{url:?}: {err:?}");
        assert!(err.to_string().contains("store.url"), "{err}");
    }
}

#[tokio::test]
async fn postgres_wrong_database_is_a_connect_error() {
    let url = pg_common::with_dbname(&pg_common::admin_url(), "iolite_no_such_database");
    let err = store::connect(&StoreSettings {
        kind: StoreKind::Postgres,
        url: Some(url),
        ..StoreSettings::default()
    })
    .await
    .err()
    .unwrap();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("iolite_no_such_database"), "{err}");
}
