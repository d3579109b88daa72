//! The schema, as embedded migrations with a table of their own
//! (`stepup_schema`), applied under a lock so instances starting together
//! apply each migration once.
//!
//! Not sqlx's migrator: its `_sqlx_migrations` table belongs to the
//! application's own migrations, and sharing it would make each side see
//! the other's as unknown.

use sha2::{Digest, Sha256};
use sqlx::Executor as _;
use stepup_store::StoreError;

use crate::db::{Db, Dialect, on_pool};
use crate::error::failed;

/// One migration: a version, what it does, and its statements per dialect.
struct Migration {
    version: i64,
    description: &'static str,
    #[cfg(feature = "sqlite")]
    sqlite: &'static str,
    #[cfg(feature = "postgres")]
    postgres: &'static str,
}

impl Migration {
    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => self.sqlite,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => self.postgres,
        }
    }
}

/// Every migration, oldest first. Never edit one that has shipped: add a
/// new one (the checksum check refuses a database whose applied migration
/// differs from the one here).
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "factors, sealing keys and state",
    #[cfg(feature = "sqlite")]
    sqlite: include_str!("../migrations/sqlite/0001_init.sql"),
    #[cfg(feature = "postgres")]
    postgres: include_str!("../migrations/postgres/0001_init.sql"),
}];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = 1;

/// What the PostgreSQL advisory lock that serialises migrations is called
/// (an arbitrary constant: "stepup" in ASCII).
#[cfg(feature = "postgres")]
const PG_LOCK: i64 = 0x7374_6570_7570;

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS stepup_schema (
    version BIGINT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Brings the schema up to [`LATEST`]: one transaction under a lock
/// (`BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL). Returns
/// the versions it applied.
pub(crate) async fn migrate(db: &Db, store: &'static str) -> Result<Vec<i64>, StoreError> {
    {
        let fail = |e: sqlx::Error| failed(store, "migrate", &e);
        let dialect = db.dialect();
        let begin = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            #[cfg(feature = "postgres")]
            Dialect::Postgres => "BEGIN",
        };
        let applied = on_pool!(db, pool => {
            let mut tx = pool.begin_with(begin).await.map_err(fail)?;
            #[cfg(feature = "postgres")]
            if dialect == Dialect::Postgres {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_LOCK)
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            (&mut *tx).execute(CREATE_SCHEMA_TABLE).await.map_err(fail)?;
            let applied: Vec<(i64, String)> =
                sqlx::query_as("SELECT version, checksum FROM stepup_schema ORDER BY version")
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(fail)?;
            let todo = pending(&applied, dialect, store)?;
            for migration in &todo {
                let sql = migration.sql(dialect);
                // Several statements: sent unprepared, as one script.
                (&mut *tx).execute(sql).await.map_err(fail)?;
                sqlx::query(
                    "INSERT INTO stepup_schema (version, description, checksum, applied_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(migration.version)
                .bind(migration.description)
                .bind(checksum(sql))
                .bind(crate::now_seconds())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            }
            // Dropped without a commit (any `?` above), the transaction rolls back.
            tx.commit().await.map_err(fail)?;
            todo.iter().map(|m| m.version).collect::<Vec<_>>()
        });
        db.sent(1);
        Ok(applied)
    }
}

/// The migrations still to apply after `applied` (version, checksum),
/// refusing a database that was migrated with different statements or by
/// a newer build.
fn pending(
    applied: &[(i64, String)],
    dialect: Dialect,
    store: &'static str,
) -> Result<Vec<&'static Migration>, StoreError> {
    for (version, sum) in applied {
        match MIGRATIONS.iter().find(|m| m.version == *version) {
            None => {
                return Err(StoreError::new(
                    store,
                    format!(
                        "migrate: the database is at schema version {version}, newer than this \
                         stepup-sqlx knows ({LATEST}): upgrade stepup-sqlx"
                    ),
                ));
            }
            Some(m) if checksum(m.sql(dialect)) != *sum => {
                return Err(StoreError::new(
                    store,
                    format!(
                        "migrate: schema version {version} in the database differs from the one \
                         this stepup-sqlx ships (its checksum)"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(MIGRATIONS
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}
