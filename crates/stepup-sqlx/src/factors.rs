//! [`SqlStore`]: the users' factors in SQL, sealed at rest.

use std::sync::Arc;

#[cfg(feature = "passkey")]
use sqlx::Row as _;
use stepup_core::Subject;
use stepup_store::{Channel, FactorStore, StoreError, TotpSecret};
use subtle::ConstantTimeEq;

use crate::db::{Db, on_pool};
use crate::error::{failed, out_of_range};
use crate::sealing::{Place, SealingKeys};
use crate::state::SqlStateStore;

const STORE: &str = "factor";
const TOTP_COLUMN: &str = "stepup_totp.sealed";
#[cfg(feature = "passkey")]
const PASSKEY_COLUMN: &str = "stepup_passkeys.sealed";

/// The users' factors in SQLite or PostgreSQL: a [`FactorStore`] and (with
/// feature `passkey`) a [`PasskeyStore`](stepup_store::PasskeyStore).
/// Cheap to clone; clones share the pool.
///
/// * TOTP secrets and passkey credential records are **sealed**
///   (XChaCha20-Poly1305 under the current key of the [`SealingKeys`],
///   associated data binding the row to its user, its credential id and
///   its column: a row copied elsewhere does not open).
/// * Recovery codes are kept only as **keyed digests** (HMAC-SHA256 under
///   a subkey of the sealing key, over the user and the code), never as a
///   plain hash; using one is a single `DELETE … RETURNING`.
/// * Each read or write of a factor is **one statement** (replacing the
///   recovery codes is one transaction); a credential id is unique across
///   all users (a unique index); a passkey update never moves its
///   signature counter back.
/// * Errors name the operation and the kind of failure, never a secret,
///   a user id or an address.
///
/// ```
/// use stepup_core::Subject;
/// use stepup_sqlx::{SealingKey, SealingKeys, SqlStore};
/// use stepup_store::{FactorStore, TotpSecret};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let keys = SealingKeys::new(SealingKey::generate(1)?);
/// let store = SqlStore::connect("sqlite::memory:", keys).await?;
/// store.migrate().await?;
///
/// let alice = Subject::new("alice");
/// let secret = TotpSecret::generate()?;
/// store.set_totp_secret(&alice, secret.clone()).await?;
/// assert_eq!(store.totp_secret(&alice).await?, Some(secret));
/// assert_eq!(store.bump_epoch(&alice).await?, 1);
/// assert_eq!(store.epoch("alice").await?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SqlStore {
    db: Db,
    keys: Arc<SealingKeys>,
    /// `DELETE … WHERE digest IN (…)` with one bind per key of the ring.
    consume_sql: Arc<str>,
    /// `SELECT COUNT(*) … WHERE key_id IN (…)`, the ring's ids inlined
    /// (numbers this store made, not input).
    left_sql: Arc<str>,
    /// Set once the ring's keys are checked against the database: before
    /// the first write that seals, so an instance with a wrong key never
    /// seals anything the others cannot open.
    checked: Arc<tokio::sync::OnceCell<()>>,
}

impl SqlStore {
    /// Connects to `url` (`sqlite:…` or `postgres://…`) with a pool of its
    /// own. SQLite files are created when missing and run in WAL mode; see
    /// the crate docs for the pool settings. Run [`migrate`](Self::migrate)
    /// before the first use.
    pub async fn connect(url: &str, keys: SealingKeys) -> Result<SqlStore, StoreError> {
        let db = Db::connect(url)
            .await
            .map_err(|e| failed(STORE, "connect", &e))?;
        Ok(SqlStore::on(db, keys))
    }

    /// A store on an SQLite pool the application already has (the one its
    /// sessions or users live in).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(pool: sqlx::SqlitePool, keys: SealingKeys) -> SqlStore {
        SqlStore::on(Db::new(crate::db::Pool::Sqlite(pool)), keys)
    }

    /// A store on a PostgreSQL pool the application already has.
    #[cfg(feature = "postgres")]
    pub fn postgres(pool: sqlx::PgPool, keys: SealingKeys) -> SqlStore {
        SqlStore::on(Db::new(crate::db::Pool::Postgres(pool)), keys)
    }

    fn on(db: Db, keys: SealingKeys) -> SqlStore {
        let binds: Vec<String> = (0..keys.ids().count())
            .map(|i| format!("${}", i + 2))
            .collect();
        let consume_sql = format!(
            "DELETE FROM stepup_recovery_codes WHERE subject = $1 AND digest IN ({}) RETURNING key_id",
            binds.join(", ")
        );
        let ids: Vec<String> = keys.ids().map(|id| id.to_string()).collect();
        let left_sql = format!(
            "SELECT COUNT(*) FROM stepup_recovery_codes WHERE subject = $1 AND key_id IN ({})",
            ids.join(", ")
        );
        SqlStore {
            db,
            keys: Arc::new(keys),
            consume_sql: consume_sql.into(),
            left_sql: left_sql.into(),
            checked: Arc::default(),
        }
    }

    /// Brings the schema up to date (the crate's embedded migrations, in
    /// one transaction under a lock: instances starting together apply
    /// each once), then checks the sealing keys against those the database
    /// has seen: a key whose id the database knows with another key is an
    /// error (a wrong key would open nothing), a new id is recorded.
    /// Returns the schema versions it applied.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let applied = crate::migrate::migrate(&self.db, STORE).await?;
        self.keys_checked().await?;
        Ok(applied)
    }

    /// Checks every key of the ring against the database once per store
    /// (what [`migrate`](Self::migrate) does; every write that seals asks
    /// first, so a store that skipped `migrate` is checked too).
    async fn keys_checked(&self) -> Result<(), StoreError> {
        self.checked
            .get_or_try_init(|| async {
                for (id, check) in self.keys.check_values() {
                    self.check_key(id, check).await?;
                }
                Ok::<(), StoreError>(())
            })
            .await
            .map(|_| ())
    }

    async fn check_key(&self, id: u32, ours: [u8; 32]) -> Result<(), StoreError> {
        let fail = |e: sqlx::Error| failed(STORE, "check sealing key", &e);
        let recorded: Vec<u8> = on_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO stepup_sealing_keys (key_id, check_value, first_used_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
            )
            .bind(i64::from(id))
            .bind(ours.as_slice())
            .bind(crate::now_seconds())
            .execute(pool)
            .await
            .map_err(fail)?;
            sqlx::query_scalar("SELECT check_value FROM stepup_sealing_keys WHERE key_id = $1")
                .bind(i64::from(id))
                .fetch_one(pool)
                .await
                .map_err(fail)?
        });
        self.db.sent(2);
        if bool::from(recorded.as_slice().ct_eq(ours.as_slice())) {
            Ok(())
        } else {
            Err(StoreError::new(
                STORE,
                format!(
                    "check sealing key: the sealing key with id {id} is not the key this database \
                     knows by that id (a wrong key would open nothing)"
                ),
            ))
        }
    }

    /// The state store on the same pool ([`SqlStateStore`]): for a
    /// deployment with a database and no Redis.
    pub fn state(&self) -> SqlStateStore {
        SqlStateStore::on(self.db.clone())
    }

    /// The assurance epoch of user `id` (0 until a factor change bumps
    /// it): what the application's subject source puts in
    /// [`Subject::with_epoch`].
    pub async fn epoch(&self, id: &str) -> Result<u64, StoreError> {
        let epoch: Option<i64> = on_pool!(self.db, pool => {
            sqlx::query_scalar("SELECT epoch FROM stepup_epochs WHERE subject = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| failed(STORE, "epoch", &e))?
        });
        self.db.sent(1);
        u64::try_from(epoch.unwrap_or(0)).map_err(|_| out_of_range(STORE, "epoch"))
    }

    /// Registers where the subject receives one-time codes on `channel`
    /// (what [`FactorStore::code_destination`] answers), replacing any
    /// earlier address; `None` removes it.
    pub async fn set_code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
        address: Option<&str>,
    ) -> Result<(), StoreError> {
        let fail = |e: sqlx::Error| failed(STORE, "set code destination", &e);
        on_pool!(self.db, pool => match address {
            Some(address) => sqlx::query(
                "INSERT INTO stepup_code_destinations (subject, channel, address) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject, channel) DO UPDATE SET address = excluded.address",
            )
            .bind(subject.id())
            .bind(channel.as_str())
            .bind(address)
            .execute(pool)
            .await
            .map_err(fail)
            .map(drop)?,
            None => sqlx::query("DELETE FROM stepup_code_destinations WHERE subject = $1 AND channel = $2")
                .bind(subject.id())
                .bind(channel.as_str())
                .execute(pool)
                .await
                .map_err(fail)
                .map(drop)?,
        });
        self.db.sent(1);
        Ok(())
    }

    /// How many statements this store has sent to the database (each one
    /// round trip; its [`state`](Self::state) store shares the count): for
    /// monitoring and the benchmarks.
    pub fn statements(&self) -> u64 {
        self.db.statements()
    }

    /// Re-seals every TOTP secret and passkey sealed under an older key of
    /// the ring under the current one, in batches, each row with a
    /// compare-and-set (a write racing with it wins); rows that do not open
    /// are counted ([`Resealed::unreadable`]) and left. Run it after putting
    /// a new key first in the ring; once it reports nothing left under the
    /// old key (recovery codes aside), the old key can go.
    ///
    /// Recovery codes cannot be re-sealed — only their keyed digests are
    /// kept: [`Resealed::recovery_codes_under_old_keys`] counts those that
    /// still need an old key; they work while it stays in the ring, and a
    /// user's next set of codes is digested under the current key.
    pub async fn reseal(&self) -> Result<Resealed, StoreError> {
        self.keys_checked().await?;
        let (totp, unreadable) = self.reseal_totp().await?;
        let mut report = Resealed {
            totp,
            unreadable,
            ..Resealed::default()
        };
        #[cfg(feature = "passkey")]
        {
            let (passkeys, unreadable) = self.reseal_passkeys().await?;
            report.passkeys = passkeys;
            report.unreadable += unreadable;
        }
        let current = i64::from(self.keys.current().id());
        let left: i64 = on_pool!(self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM stepup_recovery_codes WHERE key_id <> $1")
                .bind(current)
                .fetch_one(pool)
                .await
                .map_err(|e| failed(STORE, "reseal", &e))?
        });
        self.db.sent(1);
        report.recovery_codes_under_old_keys = u64::try_from(left).unwrap_or(0);
        Ok(report)
    }

    /// Re-seals the TOTP secrets under older keys, in batches of 100 in
    /// subject order; returns (moved, did not open).
    async fn reseal_totp(&self) -> Result<(u64, u64), StoreError> {
        let fail = |e: sqlx::Error| failed(STORE, "reseal", &e);
        let current = i64::from(self.keys.current().id());
        let (mut moved, mut unreadable) = (0, 0);
        // A cursor, so rows that do not open are passed once, not met again.
        let mut after: Option<String> = None;
        loop {
            let rows: Vec<(String, i64, Vec<u8>)> = on_pool!(self.db, pool => {
                sqlx::query_as(
                    "SELECT subject, key_id, sealed FROM stepup_totp \
                     WHERE key_id <> $1 AND ($2 IS NULL OR subject > $2) ORDER BY subject LIMIT 100",
                )
                .bind(current)
                .bind(&after)
                .fetch_all(pool)
                .await
                .map_err(fail)?
            });
            self.db.sent(1);
            let Some((last, _, _)) = rows.last() else {
                return Ok((moved, unreadable));
            };
            after = Some(last.clone());
            for (subject, key_id, sealed) in rows {
                let place = totp_place("reseal", &subject);
                let Ok(secret) = self.keys.open(&place, key_id, &sealed) else {
                    unreadable += 1;
                    continue;
                };
                let (new_id, resealed) = self.keys.seal(&place, &secret)?;
                on_pool!(self.db, pool => {
                    sqlx::query(
                        "UPDATE stepup_totp SET key_id = $1, sealed = $2 \
                         WHERE subject = $3 AND key_id = $4 AND sealed = $5",
                    )
                    .bind(i64::from(new_id))
                    .bind(resealed)
                    .bind(&subject)
                    .bind(key_id)
                    .bind(&sealed)
                    .execute(pool)
                    .await
                    .map_err(fail)?;
                });
                self.db.sent(1);
                moved += 1;
            }
        }
    }

    /// Re-seals the passkey records under older keys, in batches of 100 in
    /// credential-id order; returns (moved, did not open).
    #[cfg(feature = "passkey")]
    async fn reseal_passkeys(&self) -> Result<(u64, u64), StoreError> {
        let fail = |e: sqlx::Error| failed(STORE, "reseal", &e);
        let current = i64::from(self.keys.current().id());
        let (mut moved, mut unreadable) = (0, 0);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows: Vec<(String, Vec<u8>, i64, Vec<u8>)> = on_pool!(self.db, pool => {
                sqlx::query_as(
                    "SELECT subject, credential_id, key_id, sealed FROM stepup_passkeys \
                     WHERE key_id <> $1 AND ($2 IS NULL OR credential_id > $2) ORDER BY credential_id LIMIT 100",
                )
                .bind(current)
                .bind(&after)
                .fetch_all(pool)
                .await
                .map_err(fail)?
            });
            self.db.sent(1);
            let Some((_, last, _, _)) = rows.last() else {
                return Ok((moved, unreadable));
            };
            after = Some(last.clone());
            for (subject, credential_id, key_id, sealed) in rows {
                let place = passkey_place("reseal", &subject, &credential_id);
                let Ok(record) = self.keys.open(&place, key_id, &sealed) else {
                    unreadable += 1;
                    continue;
                };
                let (new_id, resealed) = self.keys.seal(&place, &record)?;
                on_pool!(self.db, pool => {
                    sqlx::query(
                        "UPDATE stepup_passkeys SET key_id = $1, sealed = $2 \
                         WHERE credential_id = $3 AND key_id = $4 AND sealed = $5",
                    )
                    .bind(i64::from(new_id))
                    .bind(resealed)
                    .bind(&credential_id)
                    .bind(key_id)
                    .bind(&sealed)
                    .execute(pool)
                    .await
                    .map_err(fail)?;
                });
                self.db.sent(1);
                moved += 1;
            }
        }
    }
}

/// What [`SqlStore::reseal`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resealed {
    /// TOTP secrets moved to the current key.
    pub totp: u64,
    /// Passkey records moved to the current key.
    pub passkeys: u64,
    /// Unused recovery codes still digested under an older key (they
    /// cannot be re-keyed; see [`SqlStore::reseal`]).
    pub recovery_codes_under_old_keys: u64,
    /// TOTP secrets and passkey records under an older key that did not
    /// open (their key is not in the ring, or the row was altered): left
    /// as they are. Such a secret fails its step-ups; such a passkey is
    /// skipped when listed. Delete them by hand once understood.
    pub unreadable: u64,
}

fn totp_place<'a>(operation: &'static str, subject: &'a str) -> Place<'a> {
    Place {
        operation,
        column: TOTP_COLUMN,
        subject,
        row: b"",
    }
}

#[cfg(feature = "passkey")]
fn passkey_place<'a>(
    operation: &'static str,
    subject: &'a str,
    credential_id: &'a [u8],
) -> Place<'a> {
    Place {
        operation,
        column: PASSKEY_COLUMN,
        subject,
        row: credential_id,
    }
}

impl FactorStore for SqlStore {
    async fn totp_secret(&self, subject: &Subject) -> Result<Option<TotpSecret>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = on_pool!(self.db, pool => {
            sqlx::query_as("SELECT key_id, sealed FROM stepup_totp WHERE subject = $1")
                .bind(subject.id())
                .fetch_optional(pool)
                .await
                .map_err(|e| failed(STORE, "totp secret", &e))?
        });
        self.db.sent(1);
        let Some((key_id, sealed)) = row else {
            return Ok(None);
        };
        let bytes = self
            .keys
            .open(&totp_place("totp secret", subject.id()), key_id, &sealed)?;
        TotpSecret::from_bytes(&bytes)
            .map(Some)
            .ok_or_else(|| StoreError::new(STORE, "totp secret: the opened secret is too short"))
    }

    async fn has_totp_secret(&self, subject: &Subject) -> Result<bool, StoreError> {
        let found = on_pool!(self.db, pool => {
            sqlx::query("SELECT key_id FROM stepup_totp WHERE subject = $1")
                .bind(subject.id())
                .fetch_optional(pool)
                .await
                .map_err(|e| failed(STORE, "has totp secret", &e))?
                .is_some()
        });
        self.db.sent(1);
        Ok(found)
    }

    async fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> Result<(), StoreError> {
        self.keys_checked().await?;
        let (key_id, sealed) = self.keys.seal(
            &totp_place("set totp secret", subject.id()),
            secret.as_bytes(),
        )?;
        on_pool!(self.db, pool => {
            sqlx::query(
                "INSERT INTO stepup_totp (subject, key_id, sealed, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (subject) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, \
                 updated_at = excluded.updated_at",
            )
            .bind(subject.id())
            .bind(i64::from(key_id))
            .bind(sealed)
            .bind(crate::now_seconds())
            .execute(pool)
            .await
            .map_err(|e| failed(STORE, "set totp secret", &e))?;
        });
        self.db.sent(1);
        Ok(())
    }

    async fn remove_totp_secret(&self, subject: &Subject) -> Result<(), StoreError> {
        on_pool!(self.db, pool => {
            sqlx::query("DELETE FROM stepup_totp WHERE subject = $1")
                .bind(subject.id())
                .execute(pool)
                .await
                .map_err(|e| failed(STORE, "remove totp secret", &e))?;
        });
        self.db.sent(1);
        Ok(())
    }

    async fn set_recovery_digests(
        &self,
        subject: &Subject,
        digests: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        let fail = |e: sqlx::Error| failed(STORE, "set recovery codes", &e);
        self.keys_checked().await?;
        let mut keyed: Vec<(u32, [u8; 32])> = digests
            .iter()
            .map(|d| self.keys.current_recovery_digest(subject.id(), d))
            .collect();
        keyed.sort_unstable();
        keyed.dedup();
        // One transaction: the old set goes and the new one comes together.
        let insert = (!keyed.is_empty()).then(|| {
            let rows: Vec<String> = (0..keyed.len())
                .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
                .collect();
            format!(
                "INSERT INTO stepup_recovery_codes (subject, digest, key_id) VALUES {}",
                rows.join(", ")
            )
        });
        on_pool!(self.db, pool => {
            let mut tx = pool.begin().await.map_err(fail)?;
            // Lock the user's epoch row first: two replacements racing on
            // PostgreSQL (READ COMMITTED) then run one after the other, and
            // the second one's delete sees the first one's codes. (SQLite
            // serialises writers anyway.)
            sqlx::query(
                "INSERT INTO stepup_epochs (subject, epoch) VALUES ($1, 0) \
                 ON CONFLICT (subject) DO UPDATE SET epoch = stepup_epochs.epoch",
            )
            .bind(subject.id())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            sqlx::query("DELETE FROM stepup_recovery_codes WHERE subject = $1")
                .bind(subject.id())
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            if let Some(insert) = &insert {
                let mut query = sqlx::query(insert).bind(subject.id());
                for (key_id, digest) in &keyed {
                    query = query.bind(digest.as_slice()).bind(i64::from(*key_id));
                }
                query.execute(&mut *tx).await.map_err(fail)?;
            }
            tx.commit().await.map_err(fail)?;
        });
        self.db.sent(4 + u64::from(insert.is_some()));
        Ok(())
    }

    async fn consume_recovery_digest(
        &self,
        subject: &Subject,
        digest: &[u8; 32],
    ) -> Result<bool, StoreError> {
        let candidates = self.keys.recovery_digests(subject.id(), digest);
        let used = on_pool!(self.db, pool => {
            let mut query = sqlx::query(&self.consume_sql).bind(subject.id());
            for (_, keyed) in &candidates {
                query = query.bind(keyed.as_slice());
            }
            query
                .fetch_all(pool)
                .await
                .map_err(|e| failed(STORE, "use recovery code", &e))?
                .len()
        });
        self.db.sent(1);
        Ok(used > 0)
    }

    async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, StoreError> {
        let left: i64 = on_pool!(self.db, pool => {
            sqlx::query_scalar(&self.left_sql)
                .bind(subject.id())
                .fetch_one(pool)
                .await
                .map_err(|e| failed(STORE, "recovery codes left", &e))?
        });
        self.db.sent(1);
        usize::try_from(left).map_err(|_| out_of_range(STORE, "recovery codes left"))
    }

    async fn code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
    ) -> Result<Option<String>, StoreError> {
        let address: Option<String> = on_pool!(self.db, pool => {
            sqlx::query_scalar(
                "SELECT address FROM stepup_code_destinations WHERE subject = $1 AND channel = $2",
            )
            .bind(subject.id())
            .bind(channel.as_str())
            .fetch_optional(pool)
            .await
            .map_err(|e| failed(STORE, "code destination", &e))?
        });
        self.db.sent(1);
        Ok(address)
    }

    async fn bump_epoch(&self, subject: &Subject) -> Result<u64, StoreError> {
        let epoch: i64 = on_pool!(self.db, pool => {
            sqlx::query_scalar(
                "INSERT INTO stepup_epochs (subject, epoch) VALUES ($1, 1) \
                 ON CONFLICT (subject) DO UPDATE SET epoch = stepup_epochs.epoch + 1 RETURNING epoch",
            )
            .bind(subject.id())
            .fetch_one(pool)
            .await
            .map_err(|e| failed(STORE, "bump epoch", &e))?
        });
        self.db.sent(1);
        u64::try_from(epoch).map_err(|_| out_of_range(STORE, "bump epoch"))
    }
}

#[cfg(feature = "passkey")]
mod passkeys {
    use stepup_store::{PasskeyStore, StoredPasskey};
    use webauthn_rs::prelude::Passkey;

    use super::*;

    impl SqlStore {
        fn open_passkey(
            &self,
            operation: &'static str,
            subject: &Subject,
            credential_id: &[u8],
            key_id: i64,
            sealed: &[u8],
        ) -> Result<Passkey, StoreError> {
            let record = self.keys.open(
                &passkey_place(operation, subject.id(), credential_id),
                key_id,
                sealed,
            )?;
            let passkey: Passkey = serde_json::from_slice(&record).map_err(|_| {
                StoreError::new(
                    STORE,
                    format!("{operation}: an opened record is not a passkey"),
                )
            })?;
            if passkey.cred_id().as_slice() != credential_id {
                return Err(StoreError::new(
                    STORE,
                    format!("{operation}: an opened record belongs to another credential"),
                ));
            }
            Ok(passkey)
        }

        fn seal_passkey(
            &self,
            operation: &'static str,
            subject: &Subject,
            passkey: &StoredPasskey,
        ) -> Result<(i64, Vec<u8>), StoreError> {
            let record =
                zeroize::Zeroizing::new(serde_json::to_vec(&passkey.passkey).map_err(|_| {
                    StoreError::new(
                        STORE,
                        format!("{operation}: the passkey does not serialise"),
                    )
                })?);
            let (key_id, sealed) = self.keys.seal(
                &passkey_place(operation, subject.id(), passkey.id()),
                &record,
            )?;
            Ok((i64::from(key_id), sealed))
        }
    }

    impl PasskeyStore for SqlStore {
        async fn passkeys(&self, subject: &Subject) -> Result<Vec<StoredPasskey>, StoreError> {
            const OPERATION: &str = "passkeys";
            let rows = on_pool!(self.db, pool => {
                sqlx::query(
                    "SELECT credential_id, name, key_id, sealed FROM stepup_passkeys \
                     WHERE subject = $1 ORDER BY id",
                )
                .bind(subject.id())
                .fetch_all(pool)
                .await
                .map_err(|e| failed(STORE, OPERATION, &e))?
                .into_iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get::<Vec<u8>, _>(0)?,
                        row.try_get::<String, _>(1)?,
                        row.try_get::<i64, _>(2)?,
                        row.try_get::<Vec<u8>, _>(3)?,
                    ))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| failed(STORE, OPERATION, &e))?
            });
            self.db.sent(1);
            // A record that does not open (its key left the ring too early,
            // a damaged or planted row) is skipped and logged, not fatal:
            // that credential cannot be used, the user's others still can.
            let mut passkeys = Vec::with_capacity(rows.len());
            for (credential_id, name, key_id, sealed) in rows {
                match self.open_passkey(OPERATION, subject, &credential_id, key_id, &sealed) {
                    Ok(passkey) => passkeys.push(StoredPasskey { name, passkey }),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "stepup-sqlx: a passkey record does not open and is skipped"
                    ),
                }
            }
            Ok(passkeys)
        }

        async fn add_passkey(
            &self,
            subject: &Subject,
            passkey: StoredPasskey,
        ) -> Result<bool, StoreError> {
            const OPERATION: &str = "add passkey";
            self.keys_checked().await?;
            let counter = passkey.counter().ok_or_else(|| {
                StoreError::new(
                    STORE,
                    format!("{OPERATION}: the record has no readable counter"),
                )
            })?;
            let (key_id, sealed) = self.seal_passkey(OPERATION, subject, &passkey)?;
            let added: Option<i64> = on_pool!(self.db, pool => {
                sqlx::query_scalar(
                    "INSERT INTO stepup_passkeys \
                     (credential_id, subject, name, counter, key_id, sealed, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (credential_id) DO NOTHING RETURNING id",
                )
                .bind(passkey.id())
                .bind(subject.id())
                .bind(&passkey.name)
                .bind(i64::from(counter))
                .bind(key_id)
                .bind(sealed)
                .bind(crate::now_seconds())
                .fetch_optional(pool)
                .await
                .map_err(|e| failed(STORE, OPERATION, &e))?
            });
            self.db.sent(1);
            Ok(added.is_some())
        }

        async fn update_passkey(
            &self,
            subject: &Subject,
            passkey: StoredPasskey,
        ) -> Result<bool, StoreError> {
            const OPERATION: &str = "update passkey";
            self.keys_checked().await?;
            // A record whose counter cannot be read never replaces one.
            let Some(counter) = passkey.counter().map(i64::from) else {
                return Ok(false);
            };
            let (key_id, sealed) = self.seal_passkey(OPERATION, subject, &passkey)?;
            // One statement: still this subject's, and the counter moves
            // forward (or stays at 0 for authenticators without one).
            let updated = on_pool!(self.db, pool => {
                sqlx::query(
                    "UPDATE stepup_passkeys SET counter = $3, key_id = $4, sealed = $5, used_at = $6 \
                     WHERE subject = $1 AND credential_id = $2 \
                     AND (counter < $3 OR (counter = 0 AND $3 = 0))",
                )
                .bind(subject.id())
                .bind(passkey.id())
                .bind(counter)
                .bind(key_id)
                .bind(sealed)
                .bind(crate::now_seconds())
                .execute(pool)
                .await
                .map_err(|e| failed(STORE, OPERATION, &e))?
                .rows_affected()
            });
            self.db.sent(1);
            Ok(updated > 0)
        }

        async fn remove_passkey(&self, subject: &Subject, id: &[u8]) -> Result<bool, StoreError> {
            let removed = on_pool!(self.db, pool => {
                sqlx::query("DELETE FROM stepup_passkeys WHERE subject = $1 AND credential_id = $2")
                    .bind(subject.id())
                    .bind(id)
                    .execute(pool)
                    .await
                    .map_err(|e| failed(STORE, "remove passkey", &e))?
                    .rows_affected()
            });
            self.db.sent(1);
            Ok(removed > 0)
        }

        async fn rename_passkey(
            &self,
            subject: &Subject,
            id: &[u8],
            name: &str,
        ) -> Result<bool, StoreError> {
            let renamed = on_pool!(self.db, pool => {
                sqlx::query(
                    "UPDATE stepup_passkeys SET name = $3 WHERE subject = $1 AND credential_id = $2",
                )
                .bind(subject.id())
                .bind(id)
                .bind(name)
                .execute(pool)
                .await
                .map_err(|e| failed(STORE, "rename passkey", &e))?
                .rows_affected()
            });
            self.db.sent(1);
            Ok(renamed > 0)
        }
    }
}
