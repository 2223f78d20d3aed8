//! A fresh PostgreSQL database per test, on the server named by `IOLITE_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped when the test ends,
//! even when it fails.
//!
//! A machine without PostgreSQL fails these tests with a message saying so: they are
//! never skipped (`scripts/test` installs and starts one).

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::NoTls;

/// The server's maintenance database, where test databases are created.
pub fn admin_url() -> String {
    std::env::var("IOLITE_TEST_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` naming database `db` instead (URL or `key=value` form).
pub fn with_dbname(url: &str, db: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (main, query) = match rest.split_once('?') {
                Some((m, q)) => (m, Some(q)),
                None => (rest, None),
            };
            let authority = main.split('/').next().unwrap_or("");
            match query {
                Some(q) => format!("{scheme}://{authority}/{db}?{q}"),
                None => format!("{scheme}://{authority}/{db}"),
            }
        }
        // In the key=value form the last value of a key wins.
        None => format!("{url} dbname={db}"),
    }
}

async fn admin() -> tokio_postgres::Client {
    let url = admin_url();
    let (client, conn) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "cannot reach PostgreSQL at {url}: {e} ({:?})\n\
             These tests need a PostgreSQL server: scripts/test installs and starts one, or \
             set IOLITE_TEST_PG_URL to a server where this user may CREATE DATABASE.",
            std::error::Error::source(&e)
        ),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of its own, dropped (connections and all) when this is dropped.
pub struct TestDb {
    /// Its name (`iolite_test_...`).
    pub name: String,
    /// The connection string for it.
    pub url: String,
}

impl TestDb {
    /// Creates `iolite_test_<unique>`.
    pub async fn create() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "iolite_test_{}_{}_{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let client = admin().await;
        if let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            panic!(
                "cannot create the test database {name} on {}: {e}",
                admin_url()
            );
        }
        Self {
            url: with_dbname(&admin_url(), &name),
            name,
        }
    }

    /// Runs SQL in the test database (to set up a case the store must refuse).
    pub async fn execute(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// One value of a query in the test database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.name));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside a runtime (or while unwinding from a
        // failed test): a thread with a runtime of its own does it.
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok((client, conn)) = tokio_postgres::connect(&admin_url(), NoTls).await else {
                    eprintln!("could not drop the test database {name}: PostgreSQL unreachable");
                    return;
                };
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                // FORCE: the stores' pools may still hold connections.
                if let Err(e) = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                {
                    eprintln!("could not drop the test database {name}: {e}");
                }
            });
        });
        let _ = done.join();
    }
}
