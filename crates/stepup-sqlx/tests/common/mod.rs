//! What the tests share: databases of their own (an SQLite file in a
//! private temporary directory, an in-memory SQLite database, a database
//! on the test process's PostgreSQL cluster) and sealing keys.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

// The tests run on PostgreSQL too, never skipped: `cargo test --workspace`
// has the feature (the banks enable it), alone it is
// `cargo test -p stepup-sqlx --features postgres`.
#[cfg(not(feature = "postgres"))]
compile_error!("stepup-sqlx's tests need `--features postgres` (they run on PostgreSQL too)");

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use stepup_sqlx::{SealingKey, SealingKeys, SqlStateStore, SqlStore};

/// A directory removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        use std::os::unix::fs::DirBuilderExt;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "stepup-sqlx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        TempDir(dir)
    }

    /// The URL of an SQLite file in this directory.
    pub(crate) fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.0.join("stepup.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A ring of one fixed key with id `id`.
pub(crate) fn keys(id: u32, byte: u8) -> SealingKeys {
    SealingKeys::new(SealingKey::new(id, [byte; 32]))
}

/// Where a test's database lives.
pub(crate) enum Where {
    /// A file in a temporary directory (WAL).
    SqliteFile,
    /// `sqlite::memory:`.
    SqliteMemory,
    /// A fresh database on the process's PostgreSQL cluster.
    Postgres,
}

/// A fresh database: its URL, and what must live as long as it.
pub(crate) fn database(place: Where) -> (String, Option<TempDir>) {
    match place {
        Where::SqliteFile => {
            let dir = TempDir::new();
            (dir.sqlite_url(), Some(dir))
        }
        Where::SqliteMemory => ("sqlite::memory:".to_owned(), None),
        Where::Postgres => (
            stepup_test_support::postgres::shared().fresh_database(),
            None,
        ),
    }
}

/// A raw connection to a test's database, beside the store: what an
/// attacker who can read or write the database has.
pub(crate) enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

macro_rules! on_raw {
    ($raw:expr, $pool:ident => $body:expr) => {
        match $raw {
            Raw::Sqlite($pool) => $body,
            Raw::Postgres($pool) => $body,
        }
    };
}

impl Raw {
    /// A pool of its own on the database at `url` (an SQLite file is
    /// created if the store has not yet).
    pub(crate) async fn new(url: &str) -> Raw {
        if url.starts_with("sqlite") {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .unwrap()
                .create_if_missing(true);
            Raw::Sqlite(sqlx::SqlitePool::connect_with(options).await.unwrap())
        } else {
            Raw::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    pub(crate) async fn execute(&self, sql: &str) -> u64 {
        on_raw!(self, pool => sqlx::raw_sql(sql).execute(pool).await.unwrap().rows_affected())
    }

    pub(crate) async fn bytes(&self, sql: &str) -> Vec<u8> {
        on_raw!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
    }

    /// Every non-NULL value of the first column.
    pub(crate) async fn blobs(&self, sql: &str) -> Vec<Vec<u8>> {
        let rows: Vec<Option<Vec<u8>>> =
            on_raw!(self, pool => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap());
        rows.into_iter().flatten().collect()
    }

    pub(crate) async fn text(&self, sql: &str) -> String {
        on_raw!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
    }

    pub(crate) async fn number(&self, sql: &str) -> i64 {
        on_raw!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap())
    }

    /// Runs `sql` with one bind, `value`.
    pub(crate) async fn set_bytes(&self, sql: &str, value: Vec<u8>) {
        on_raw!(self, pool => {
            sqlx::query(sql).bind(value).execute(pool).await.unwrap();
        })
    }
}

/// Whether `needle` occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A migrated factor store on a fresh database.
pub(crate) async fn factor_store(
    place: Where,
) -> stepup_store::contract::Guarded<SqlStore, Option<TempDir>> {
    let (url, dir) = database(place);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    stepup_store::contract::Guarded::new(store, dir)
}

/// A migrated state store on a fresh database.
pub(crate) async fn state_store(
    place: Where,
) -> stepup_store::contract::Guarded<SqlStateStore, Option<TempDir>> {
    let (url, dir) = database(place);
    let store = SqlStateStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    stepup_store::contract::Guarded::new(store, dir)
}
