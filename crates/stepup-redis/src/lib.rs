//! A Redis [`StateStore`] (the trait of `stepup-store`) for **stepup**:
//! what is not stateless — the last
//! accepted TOTP step, attempt counters and lockouts, pending e-mail/SMS
//! codes, pending TOTP enrollments — shared by every instance of an
//! application, so an attacker cannot spread guesses or replays across them.
//!
//! Assurance tokens stay stateless: the gate verifies them with the shared
//! key alone, so protected routes keep working while Redis is down; only
//! step-ups need the store, and they fail closed (no proof recorded, the
//! user told to retry) when it cannot answer.
//!
//! Every operation is one round trip, every entry carries a Redis TTL:
//!
//! | operation | Redis |
//! |---|---|
//! | `advance` (TOTP step compare-and-set) | a Lua script: `GET`, compare, `SET … PX` |
//! | `increment` (attempt counters) | a Lua script: `INCR`, `PEXPIRE` on creation |
//! | `put` | `SET … PX` |
//! | `get` | `GET` |
//! | `take` (single use) | `GETDEL` (Redis ≥ 6.2) |
//! | `remove` | `DEL` |
//!
//! (A script's first call on a fresh server costs one more round trip to
//! load it.)
//!
//! Passkey ceremony state is **not** in the store: it stays in the process
//! that started the ceremony (see `stepup_challenge::PasskeyConfig`), so a
//! passkey ceremony must finish on the instance that started it. Nor are
//! the users' factors: those are the application's `FactorStore`.
//!
//! This crate depends on `stepup-store` (the traits) only, not on the
//! engine. Its tests run `stepup-store`'s contract suite
//! (`state_store_contract!`) against a real Redis, plus the Redis-only
//! rules: key prefixes with a Redis TTL on every key, and a clear error
//! while Redis is down that clears once it is back.
//!
//! Use it as the engine's state (`stepup-challenge`, or the `stepup`
//! facade with feature `redis`):
//!
//! ```no_run
//! use stepup_challenge::{Engine, MemoryFactorStore};
//! use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
//! use stepup_redis::RedisStateStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
//! let state = RedisStateStore::connect("redis://127.0.0.1:6379/", "bank:")?;
//! let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), state);
//! # let _ = engine;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use stepup_store::{StateStore, StoreError};

/// Sets `KEYS[1]` to `ARGV[1]` (a step) unless it holds that step or a
/// newer one; the entry lives `ARGV[2]` milliseconds. Returns 1 if it did.
const ADVANCE: &str = r"
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
";

/// Increments `KEYS[1]`; a new counter lives `ARGV[1]` milliseconds (a
/// counter found without a TTL gets one too). Returns the new value.
const INCREMENT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
";

/// How long a command may take before the step-up fails closed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// The [`StateStore`] on Redis: a connection manager (reconnecting,
/// multiplexed), a key prefix, and the two scripts. Cheap to clone; share
/// one between engines.
#[derive(Clone)]
pub struct RedisStateStore {
    connection: ConnectionManager,
    prefix: String,
    advance: Script,
    increment: Script,
}

impl fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStateStore {
    /// A store on the Redis at `url` (`redis://host:port/db`, or
    /// `rediss://` for TLS when the `redis` crate is built with it), every
    /// key starting with `prefix`. Connects lazily: the application starts
    /// even while Redis is down (step-ups then fail closed until it is
    /// back). Commands time out after [`DEFAULT_TIMEOUT`].
    ///
    /// Must be called inside a tokio runtime.
    pub fn connect(url: &str, prefix: &str) -> Result<RedisStateStore, StoreError> {
        RedisStateStore::connect_with_timeout(url, prefix, DEFAULT_TIMEOUT)
    }

    /// [`connect`](RedisStateStore::connect), with commands (and connecting)
    /// timing out after `timeout` instead of [`DEFAULT_TIMEOUT`]: longer for
    /// a Redis far away or a loaded test machine, shorter to fail closed
    /// sooner. A step-up waiting on a timed-out command fails closed like
    /// any other store error.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use stepup_redis::RedisStateStore;
    ///
    /// # async fn run() -> Result<(), stepup_store::StoreError> {
    /// let state = RedisStateStore::connect_with_timeout(
    ///     "redis://127.0.0.1:6379/",
    ///     "bank:",
    ///     Duration::from_secs(2),
    /// )?;
    /// # let _ = state;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_with_timeout(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<RedisStateStore, StoreError> {
        let client = Client::open(url).map_err(|e| error("connecting", &e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| error("connecting", &e))?;
        Ok(RedisStateStore::with_connection(connection, prefix))
    }

    /// A store on a connection manager configured by the application.
    pub fn with_connection(connection: ConnectionManager, prefix: &str) -> RedisStateStore {
        RedisStateStore {
            connection,
            prefix: prefix.to_owned(),
            advance: Script::new(ADVANCE),
            increment: Script::new(INCREMENT),
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `GET` or `GETDEL` of one key.
    async fn read(&self, command: &str, key: &str) -> redis::RedisResult<Option<Vec<u8>>> {
        let mut connection = self.connection.clone();
        redis::cmd(command)
            .arg(self.key(key))
            .query_async(&mut connection)
            .await
    }
}

/// A Redis failure as a store error: what was being done and the kind of
/// failure, never a key or a value.
fn error(doing: &str, e: &redis::RedisError) -> StoreError {
    let kind = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "cannot reach Redis".to_owned()
    } else {
        format!("{:?}", e.kind())
    };
    StoreError::new("redis", format!("{doing}: {kind}"))
}

/// Milliseconds of `ttl`, at least 1 (Redis refuses 0).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl StateStore for RedisStateStore {
    async fn advance(&self, key: &str, step: u64, ttl: Duration) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let done: i64 = self
            .advance
            .key(self.key(key))
            .arg(step)
            .arg(millis(ttl))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| error("advance", &e))?;
        Ok(done == 1)
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let mut connection = self.connection.clone();
        self.increment
            .key(self.key(key))
            .arg(millis(window))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| error("increment", &e))
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut connection)
            .await
            .map_err(|e| error("put", &e))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read("GET", key).await.map_err(|e| error("get", &e))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read("GETDEL", key)
            .await
            .map_err(|e| error("take", &e))
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(|e| error("remove", &e))
    }
}
