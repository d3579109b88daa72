//! [`SqlStateStore`]: the short-lived state in SQL, for a deployment that
//! has a database and no Redis.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;
use stepup_core::Clock;
use stepup_store::{StateStore, StoreError};

use crate::db::{Db, on_pool};
use crate::error::{failed, out_of_range};

const STORE: &str = "state";

/// Kinds of entries in `stepup_state`.
const STEP: i64 = 1;
const COUNT: i64 = 2;
const BYTES: i64 = 3;

/// How many expired rows one sweep statement deletes: small enough that
/// no request waits long behind it.
const SWEEP_BATCH: i64 = 500;

/// The [`StateStore`] in SQLite or PostgreSQL (table `stepup_state`):
/// every operation is one statement, expiry is an `expires_at` column
/// (Unix milliseconds) that reads ignore, and expired rows are deleted in
/// small batches by [`sweep_expired`](Self::sweep_expired), which
/// [`spawn_sweeper`](Self::spawn_sweeper) runs in the background.
///
/// | operation | statement |
/// |---|---|
/// | `advance` | `INSERT … ON CONFLICT DO UPDATE … WHERE` (older, expired or other kind) `RETURNING` |
/// | `increment` | `INSERT … ON CONFLICT DO UPDATE SET number = CASE …` `RETURNING number` |
/// | `put` | `INSERT … ON CONFLICT DO UPDATE` |
/// | `get` | `SELECT … WHERE expires_at > now` |
/// | `take` | `DELETE … RETURNING` |
/// | `remove` | `DELETE` |
///
/// Redis stays the faster choice for many instances (`stepup-redis`);
/// this one saves running Redis where a database is already there.
///
/// ```
/// use std::time::Duration;
/// use stepup_sqlx::SqlStateStore;
/// use stepup_store::StateStore;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let state = SqlStateStore::connect("sqlite::memory:").await?;
/// state.migrate().await?;
/// let ttl = Duration::from_secs(60);
/// assert!(state.advance("totp", 7, ttl).await?);
/// assert!(!state.advance("totp", 7, ttl).await?, "a step is accepted once");
/// state.put("code", b"digest".to_vec(), ttl).await?;
/// assert_eq!(state.take("code").await?.as_deref(), Some(&b"digest"[..]));
/// assert_eq!(state.take("code").await?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SqlStateStore {
    db: Db,
    clock: Option<Arc<dyn Clock>>,
}

impl SqlStateStore {
    /// Connects to `url` (`sqlite:…` or `postgres://…`) with a pool of its
    /// own; [`SqlStore::state`](crate::SqlStore::state) shares the factor
    /// store's pool instead. Run [`migrate`](Self::migrate) before the
    /// first use.
    pub async fn connect(url: &str) -> Result<SqlStateStore, StoreError> {
        let db = Db::connect(url)
            .await
            .map_err(|e| failed(STORE, "connect", &e))?;
        Ok(SqlStateStore::on(db))
    }

    /// A state store on an SQLite pool the application already has.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(pool: sqlx::SqlitePool) -> SqlStateStore {
        SqlStateStore::on(Db::new(crate::db::Pool::Sqlite(pool)))
    }

    /// A state store on a PostgreSQL pool the application already has.
    #[cfg(feature = "postgres")]
    pub fn postgres(pool: sqlx::PgPool) -> SqlStateStore {
        SqlStateStore::on(Db::new(crate::db::Pool::Postgres(pool)))
    }

    pub(crate) fn on(db: Db) -> SqlStateStore {
        SqlStateStore { db, clock: None }
    }

    /// Reads time from `clock` (whole seconds) instead of the system clock
    /// (milliseconds): for tests.
    pub fn with_clock(mut self, clock: impl Clock) -> SqlStateStore {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Brings the schema up to date (the same migrations as
    /// [`SqlStore::migrate`](crate::SqlStore::migrate), without the sealing
    /// key check). Returns the versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        crate::migrate::migrate(&self.db, STORE).await
    }

    /// Deletes expired rows, 500 per statement, until none is
    /// left; returns how many it deleted. Reads never see expired rows, so
    /// this only keeps the table small.
    pub async fn sweep_expired(&self) -> Result<u64, StoreError> {
        let mut swept = 0;
        loop {
            let now = self.now_ms();
            let deleted = on_pool!(self.db, pool => {
                sqlx::query(
                    // The outer condition again: on PostgreSQL a row the
                    // subquery found may be renewed by a concurrent write
                    // before the delete reaches it; the delete then
                    // re-checks only its own WHERE.
                    "DELETE FROM stepup_state WHERE state_key IN \
                     (SELECT state_key FROM stepup_state WHERE expires_at <= $1 LIMIT $2) \
                     AND expires_at <= $1",
                )
                .bind(now)
                .bind(SWEEP_BATCH)
                .execute(pool)
                .await
                .map_err(|e| failed(STORE, "sweep", &e))?
                .rows_affected()
            });
            self.db.sent(1);
            swept += deleted;
            if deleted < SWEEP_BATCH as u64 {
                return Ok(swept);
            }
            // Let requests in between batches.
            tokio::task::yield_now().await;
        }
    }

    /// Runs [`sweep_expired`](Self::sweep_expired) every `every` on the
    /// current tokio runtime until the returned [`Sweeper`] is dropped. A
    /// failed sweep is logged (`tracing`, warn) and tried again next time.
    ///
    /// Panics outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn_sweeper(&self, every: Duration) -> Sweeper {
        let store = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = store.sweep_expired().await {
                    tracing::warn!(error = %e, "stepup-sqlx: sweeping expired state failed");
                }
            }
        });
        Sweeper { task }
    }

    /// How many statements this store has sent (each one round trip).
    pub fn statements(&self) -> u64 {
        self.db.statements()
    }

    fn now_ms(&self) -> i64 {
        match &self.clock {
            Some(clock) => i64::try_from(clock.now().as_unix_seconds().saturating_mul(1000))
                .unwrap_or(i64::MAX),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        }
    }

    /// Now and now + `ttl`, in Unix milliseconds.
    fn now_and_expiry(&self, ttl: Duration) -> (i64, i64) {
        let now = self.now_ms();
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        (now, now.saturating_add(ttl))
    }
}

/// The background sweep of [`SqlStateStore::spawn_sweeper`]: stops when
/// dropped.
#[derive(Debug)]
pub struct Sweeper {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StateStore for SqlStateStore {
    async fn advance(&self, key: &str, step: u64, ttl: Duration) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(|_| out_of_range(STORE, "advance"))?;
        let (now, expires) = self.now_and_expiry(ttl);
        let set = on_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO stepup_state (state_key, kind, number, value, expires_at) \
                 VALUES ($1, 1, $2, NULL, $3) \
                 ON CONFLICT (state_key) DO UPDATE SET kind = 1, number = excluded.number, \
                 value = NULL, expires_at = excluded.expires_at \
                 WHERE stepup_state.expires_at <= $4 OR stepup_state.kind <> 1 \
                 OR stepup_state.number < excluded.number \
                 RETURNING kind",
            )
            .bind(key)
            .bind(step)
            .bind(expires)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(|e| failed(STORE, "advance", &e))?
            .is_some()
        });
        self.db.sent(1);
        Ok(set)
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let (now, expires) = self.now_and_expiry(window);
        let count: i64 = on_pool!(self.db, pool => {
            sqlx::query_scalar(
                "INSERT INTO stepup_state (state_key, kind, number, value, expires_at) \
                 VALUES ($1, 2, 1, NULL, $2) \
                 ON CONFLICT (state_key) DO UPDATE SET \
                 number = CASE WHEN stepup_state.expires_at <= $3 OR stepup_state.kind <> 2 \
                 THEN 1 ELSE stepup_state.number + 1 END, \
                 expires_at = CASE WHEN stepup_state.expires_at <= $3 \
                 THEN excluded.expires_at ELSE stepup_state.expires_at END, \
                 kind = 2, value = NULL \
                 RETURNING number",
            )
            .bind(key)
            .bind(expires)
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| failed(STORE, "increment", &e))?
        });
        self.db.sent(1);
        u64::try_from(count).map_err(|_| out_of_range(STORE, "increment"))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let (_, expires) = self.now_and_expiry(ttl);
        on_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO stepup_state (state_key, kind, number, value, expires_at) \
                 VALUES ($1, 3, NULL, $2, $3) \
                 ON CONFLICT (state_key) DO UPDATE SET kind = 3, number = NULL, \
                 value = excluded.value, expires_at = excluded.expires_at",
            )
            .bind(key)
            .bind(value)
            .bind(expires)
            .execute(pool)
            .await
            .map_err(|e| failed(STORE, "put", &e))?;
        });
        self.db.sent(1);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now_ms();
        let value: Option<Vec<u8>> = on_pool!(self.db, pool => {
            sqlx::query_scalar(
                "SELECT value FROM stepup_state WHERE state_key = $1 AND kind = 3 AND expires_at > $2",
            )
            .bind(key)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(|e| failed(STORE, "get", &e))?
        });
        self.db.sent(1);
        Ok(value)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let now = self.now_ms();
        let taken = on_pool!(self.db, pool => {
            match sqlx::query(
                "DELETE FROM stepup_state WHERE state_key = $1 RETURNING kind, value, expires_at",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(|e| failed(STORE, "take", &e))?
            {
                Some(row) => {
                    let read = || -> Result<_, sqlx::Error> {
                        Ok((
                            row.try_get::<i64, _>(0)?,
                            row.try_get::<Option<Vec<u8>>, _>(1)?,
                            row.try_get::<i64, _>(2)?,
                        ))
                    };
                    Some(read().map_err(|e| failed(STORE, "take", &e))?)
                }
                None => None,
            }
        });
        self.db.sent(1);
        Ok(match taken {
            Some((BYTES, value, expires)) if expires > now => value,
            _ => None,
        })
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        on_pool!(self.db, pool => {
            sqlx::query("DELETE FROM stepup_state WHERE state_key = $1")
                .bind(key)
                .execute(pool)
                .await
                .map_err(|e| failed(STORE, "remove", &e))?;
        });
        self.db.sent(1);
        Ok(())
    }
}

// The kinds are spelled out in the statements above; keep them in step.
const _: () = assert!(STEP == 1 && COUNT == 2 && BYTES == 3);
