//! The database a store talks to: one of the pools sqlx offers, and the
//! statement count the benchmarks read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(not(any(feature = "sqlite", feature = "postgres")))]
compile_error!("stepup-sqlx needs a database: enable the feature `sqlite` or `postgres`");

/// Runs `$body` with `$pool` bound to the store's pool, whichever database
/// it is: the same statement text serves both (`$1`-style binds, which
/// SQLite reads too), the types differ per arm.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite($pool) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// A pool of SQLite or PostgreSQL connections.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Which SQL dialect a statement is written for, where the two differ
/// (table definitions, locking).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

/// A pool and the count of statements sent through it.
#[derive(Clone, Debug)]
pub(crate) struct Db {
    pub(crate) pool: Pool,
    statements: Arc<AtomicU64>,
}

impl Db {
    pub(crate) fn new(pool: Pool) -> Db {
        Db {
            pool,
            statements: Arc::default(),
        }
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match &self.pool {
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Counts `n` statements (each one round trip to the database).
    pub(crate) fn sent(&self, n: u64) {
        self.statements.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Connects to `url`: `sqlite:…` or `postgres://…`/`postgresql://…`.
    ///
    /// SQLite files are created when missing and run in WAL mode with
    /// `synchronous = FULL`, `secure_delete` and a 5 s busy timeout; an
    /// in-memory SQLite
    /// database (`sqlite::memory:`, `mode=memory`) gets one connection
    /// that never closes, since each connection would be a database of its
    /// own and the last one closing would end it.
    pub(crate) async fn connect(url: &str) -> Result<Db, sqlx::Error> {
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            return connect_sqlite(url).await;
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            use std::str::FromStr;
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?;
            warn_unless_verified(&options);
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect_with(options)
                .await?;
            return Ok(Db::new(Pool::Postgres(pool)));
        }
        Err(sqlx::Error::Configuration(
            "the URL is not for a database this build of stepup-sqlx has (features `sqlite`, `postgres`)".into(),
        ))
    }
}

/// PostgreSQL's default `sslmode=prefer` accepts any certificate and falls
/// back to plain text: whoever sits between the application and a remote
/// database could then answer for it (a recovery code "found", an old
/// epoch). Warn unless the connection is local or the certificate and host
/// are verified (`sslmode=verify-full`, or `verify-ca`).
#[cfg(feature = "postgres")]
fn warn_unless_verified(options: &sqlx::postgres::PgConnectOptions) {
    use sqlx::postgres::PgSslMode;
    let host = options.get_host();
    let local = options.get_socket().is_some()
        || host.starts_with('/')
        || matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]");
    let verified = matches!(
        options.get_ssl_mode(),
        PgSslMode::VerifyFull | PgSslMode::VerifyCa
    );
    if !local && !verified {
        tracing::warn!(
            "stepup-sqlx: the PostgreSQL connection does not verify the server (add \
             sslmode=verify-full to the URL): a party on the network path could read and \
             answer for the factor store"
        );
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: &str) -> Result<Db, sqlx::Error> {
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    // Deleted rows (a used recovery code, a replaced secret, a taken
    // enrollment) are overwritten, not left in free pages.
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .pragma("secure_delete", "ON");
    let pool = if in_memory {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?
    } else {
        // FULL: a committed use of a recovery code survives a power loss
        // (NORMAL could roll the last commits back).
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full);
        // Instances starting together on a new file race to switch it to
        // WAL, which takes an exclusive lock without waiting on the busy
        // timeout: the losers get SQLITE_BUSY and try again (the file is
        // in WAL by then, which needs no such lock).
        let mut tries = 0;
        loop {
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options.clone())
                .await;
            match pool {
                Err(sqlx::Error::Database(e)) if is_busy(e.code().as_deref()) && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other?,
            }
        }
    };
    Ok(Db::new(Pool::Sqlite(pool)))
}

/// SQLITE_BUSY or one of its extended codes (the low byte is 5).
#[cfg(feature = "sqlite")]
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<u32>().ok())
        .is_some_and(|c| c & 0xff == 5)
}
