//! SQL stores for **stepup** on sqlx 0.8: the users' factors
//! ([`SqlStore`]: a `FactorStore`, and a `PasskeyStore` with feature
//! `passkey`) and the short-lived state ([`SqlStateStore`]: a
//! `StateStore`), in SQLite or PostgreSQL — factors that survive a restart
//! and are shared by every instance, sealed at rest.
//!
//! # Which store when
//!
//! | | factors (TOTP secrets, passkeys, recovery codes, epochs) | state (TOTP steps, attempt counters, pending codes) |
//! |---|---|---|
//! | tests, examples | `MemoryFactorStore` | `MemoryStateStore` |
//! | one instance | [`SqlStore`] on SQLite (a file, WAL) | `MemoryStateStore` (or [`SqlStateStore`] to keep lockouts over restarts) |
//! | several instances | [`SqlStore`] on PostgreSQL | `RedisStateStore` (`stepup-redis`), or [`SqlStateStore`] on the same PostgreSQL |
//!
//! # Quick start
//!
//! ```
//! use stepup_challenge::{Engine, MemoryStateStore, TotpConfig};
//! use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
//! use stepup_sqlx::{SealingKeys, SqlStore};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! # let dir = std::env::temp_dir().join(format!("stepup-sqlx-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let sealing_key = stepup_sqlx::SealingKey::generate(1)?.to_text();
//! # let url = format!("sqlite://{}", dir.join("app.db").display());
//! // The sealing key comes from where the application keeps secrets
//! // (`1:…`, see `SealingKey`); the database from its configuration.
//! let keys = SealingKeys::parse(&sealing_key)?;
//! let factors = SqlStore::connect(&url, keys).await?; // e.g. "sqlite://data/app.db"
//! factors.migrate().await?;
//!
//! let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
//! let engine = Engine::new(tokens.issuer(), factors, MemoryStateStore::default())
//!     .with_totp(TotpConfig::new("Bank"));
//! # let _ = engine;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`SqlStore::connect`] makes a pool of its own: for SQLite the file is
//! created when missing and runs in WAL mode with `synchronous = FULL` (a
//! committed use of a recovery code survives a power loss) and
//! `secure_delete` (deleted secrets are overwritten), a 5 s busy timeout
//! and 8 connections; `sqlite::memory:` gets one connection that never
//! closes (each connection would be a database of its own); PostgreSQL gets
//! 16 connections, TLS by rustls with the system's roots. **Put
//! `sslmode=verify-full` in a remote PostgreSQL URL**: PostgreSQL's default
//! (`prefer`) takes any certificate and falls back to plain text, so a party
//! on the network path could answer for the database ("this recovery code
//! exists"); a non-local URL without `verify-full`/`verify-ca` is logged as
//! a warning. To share the application's pool —
//! the file its users or sessions (`tower-sessions-sqlx-store`, also on
//! sqlx 0.8) live in — use [`SqlStore::sqlite`] or [`SqlStore::postgres`].
//! Building never needs a database or `DATABASE_URL`: every statement is
//! a runtime query with binds.
//!
//! The subject source reads the assurance epoch with [`SqlStore::epoch`]
//! (one statement) and puts it in `Subject::with_epoch`, so a factor change
//! ends every outstanding assurance.
//!
//! # The schema
//!
//! [`SqlStore::migrate`] applies the crate's embedded migrations in one
//! transaction under a lock (`BEGIN IMMEDIATE` on SQLite, an advisory lock
//! on PostgreSQL: instances starting together apply each once), recorded
//! in a table of its own, `stepup_schema` (not sqlx's `_sqlx_migrations`,
//! which belongs to the application). It refuses a database migrated by a
//! newer stepup-sqlx, or whose applied migration differs from the one
//! shipped. The tables (all `stepup_`; subjects are the application's user
//! ids; times are Unix seconds):
//!
//! | table | rows | columns |
//! |---|---|---|
//! | `stepup_epochs` | one per user whose factors changed | `subject`, `epoch` |
//! | `stepup_totp` | one per user with TOTP | `subject`, `key_id`, `sealed` (the secret, sealed), `updated_at` |
//! | `stepup_recovery_codes` | one per unused code | `subject`, `digest` (keyed), `key_id`; a used code's row is deleted |
//! | `stepup_code_destinations` | one per user and channel | `subject`, `channel` (`email`/`sms`), `address` |
//! | `stepup_passkeys` | one per passkey | `id` (registration order), `credential_id` (unique across users), `subject`, `name`, `counter`, `key_id`, `sealed` (the credential record, sealed), `created_at`, `used_at` |
//! | `stepup_sealing_keys` | one per sealing key id seen | `key_id`, `check_value` (an HMAC under a subkey, so a wrong key is refused at start), `first_used_at` |
//! | `stepup_state` | short-lived state ([`SqlStateStore`]) | `state_key` (the engine's keyed names), `kind`, `number`, `value`, `expires_at` (Unix **milliseconds**, indexed) |
//! | `stepup_schema` | one per applied migration | `version`, `description`, `checksum`, `applied_at` |
//!
//! The statements are in the crate's `migrations/sqlite` and
//! `migrations/postgres` directories, for a DBA who applies them by hand.
//!
//! # Sealed at rest
//!
//! TOTP secrets and passkey credential records are encrypted with
//! XChaCha20-Poly1305 (random 192-bit nonces) under a subkey of the
//! current [`SealingKey`]; the associated data names the column, the key
//! id, the user and (for passkeys) the credential id, so a sealed value
//! copied to another user, credential or column — by someone who can write
//! to the database or edit a backup — does not open: the read is an error
//! that says so, never a wrong secret. Recovery codes are stored only as
//! HMAC-SHA256 digests under another subkey, over the user and the
//! engine's digest of the code; a stolen table cannot be tested offline
//! without the key. In the clear: user ids, passkey names and credential
//! ids, code destinations (addresses), signature counters, epochs. The
//! engine seals the one secret it keeps in the state store (a pending TOTP
//! secret) itself, under its state key, so `stepup_state` holds no secret
//! in the clear either.
//!
//! A record that does not open (its key left the ring before `reseal`
//! finished, a damaged or planted row) fails closed without locking the
//! user out: a TOTP secret still counts as enrolled (`has_totp_secret`
//! answers without opening it), its step-ups fail, and it can be removed; a
//! passkey is skipped when the user's passkeys are listed (logged as a
//! warning), so the others still work. [`SqlStore::reseal`] counts such
//! rows ([`Resealed::unreadable`]).
//!
//! **Key rotation**, without a flag day: each row records the id of the key
//! it was sealed under and [`SealingKeys`] opens with any key of the ring;
//! every write seals under the current (first) key.
//!
//! 1. generate a key with a new id ([`SealingKey::generate`]) and deploy the
//!    ring `NEW,OLD` (the current key first);
//! 2. run [`SqlStore::reseal`]: every TOTP secret and passkey still under
//!    the old key is re-sealed under the new one;
//! 3. drop the old key once [`Resealed`] reports none left under it.
//!    Recovery codes cannot be re-keyed (only digests exist):
//!    [`Resealed::recovery_codes_under_old_keys`] counts them; they keep
//!    working while the old key is in the ring, and each user's next set is
//!    digested under the new key.
//!
//! A store given another key under a known id is refused by
//! [`migrate`](SqlStore::migrate), and — for a store that does not migrate
//! (migrations applied by a deploy job) — by its first write that seals:
//! `stepup_sealing_keys` keeps a check value per id, so an instance with a
//! wrong key never seals a secret the others cannot open. Use one sealing
//! key ring per deployment (never staging's in production): the associated
//! data binds rows to users, not to a deployment.
//!
//! **Backups**: back the database up as usual (SQLite: `VACUUM INTO` or
//! the online backup API, never a bare file copy of a WAL database in
//! use; PostgreSQL: `pg_dump` or base backups) and the sealing keys
//! **separately** — a backup with its key beside it is a backup in the
//! clear; a backup without any key is useless. Keep old keys as long as
//! backups sealed under them may be restored.
//!
//! # The state store
//!
//! [`SqlStateStore`] implements the engine's `StateStore` with one
//! statement per operation and an `expires_at` column; expired rows are
//! invisible and swept in batches of 500 by [`SqlStateStore::sweep_expired`]
//! (run it from [`SqlStateStore::spawn_sweeper`]). [`SqlStore::state`]
//! gives one on the factor store's pool. Expiry is computed from each
//! instance's clock: keep the instances' clocks in sync (NTP), or a fast
//! one shortens what the others remember (a TOTP step's replay guard).
//!
//! # Features
//!
//! | feature | brings |
//! |---|---|
//! | `sqlite` (default) | SQLite, bundled (nothing to install) |
//! | `postgres` | PostgreSQL, TLS by rustls (no OpenSSL) |
//! | `passkey` (default) | `PasskeyStore` for [`SqlStore`] (webauthn-rs) |
//!
//! # Errors
//!
//! Every failure is a `StoreError` naming the store (`factor` or `state`),
//! the operation and the kind (`totp secret: timed out waiting for a
//! connection`, `… a table is missing (run SqlStore::migrate first)`, `… the
//! sealed stepup_totp.sealed does not open under key id 1 …`): never a
//! secret, a user id or an address, since database messages can quote
//! values and only their class (SQLSTATE or SQLite code) is kept. The engine
//! fails closed on any of them.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod db;
mod error;
mod factors;
mod migrate;
mod sealing;
mod state;

pub use factors::{Resealed, SqlStore};
pub use sealing::{KeyError, SealingKey, SealingKeys};
pub use state::{SqlStateStore, Sweeper};

/// Now, in Unix seconds, for the columns that record when a row was written.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
