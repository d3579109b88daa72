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
//! | `admit` (an attempt's lockouts, budgets and consecutive cap, checked and counted) | one Lua script |
//! | `commit` (a success: TOTP step compare-and-set, counters started over, methods enabled again) | one Lua script |
//! | `advance` (TOTP step compare-and-set) | a Lua script: `GET`, compare, `SET … PX` |
//! | `increment` (attempt counters) | a Lua script: `INCR`, `PEXPIRE` on creation |
//! | `put` | `SET … PX` |
//! | `get` | `GET` |
//! | `take` (single use) | `GETDEL` (Redis ≥ 6.2) |
//! | `remove` | `DEL` |
//!
//! A TOTP step-up is three round trips (the client address group's
//! lockout, the admission, the commit; two without an address). (A
//! script's first call on a fresh server costs one more round trip to load
//! it.)
//!
//! **Redis Cluster** ([`RedisStateStore::connect_cluster`]): the engine
//! writes every key of one subject, and of one client address group, with
//! the same hash tag, so each script touches one slot.
//!
//! Passkey ceremonies are in the store too: the engine seals webauthn-rs's
//! ceremony state before it is put here (a reader learns nothing of it, a
//! writer cannot forge one), so a ceremony started on one instance finishes
//! on any other, once. The users' factors are not: those are the
//! application's `FactorStore`.
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

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Client, RedisFuture, Script};
use stepup_store::attempts::{Admit, Admitted, Commit, Committed};
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

/// [`StateStore::admit`]: the disabled flag, each budget's lockout and
/// count (locking the one attempt that crosses it, with doubling and a new
/// generation), then the consecutive cap — as `stepup_store::attempts::admit_with`
/// does with single operations.
///
/// `KEYS`: disabled, any-disabled, consecutive (any-disabled again when
/// there is none), then per budget: attempts prefix, lock, generation,
/// backoff. `ARGV`: now (s), has consecutive (0/1), cap, consecutive memory
/// (ms), backoff memory (ms), generation ttl (ms), budget count, then per
/// budget: allowed, window (ms), first lockout (ms), longest lockout (ms).
/// Returns `{0, left (-1: none), consecutive (-1: none)}`, `{1, until}` or
/// `{2, just disabled (0/1)}`.
const ADMIT: &str = r"
local function count(key, ttl)
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ttl)
  end
  return n
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {2, 0}
end
local now = tonumber(ARGV[1])
local left = -1
for i = 0, tonumber(ARGV[7]) - 1 do
  local k = 4 + i * 4
  local a = 8 + i * 4
  local allowed = tonumber(ARGV[a])
  local first = tonumber(ARGV[a + 2])
  local generation = tonumber(redis.call('GET', KEYS[k + 2]) or '0') or 0
  local lock = tonumber(redis.call('GET', KEYS[k + 1]) or '')
  if lock and lock > now then
    return {1, lock}
  end
  local n = count(KEYS[k] .. string.format('%d', generation), ARGV[a + 1])
  if n <= allowed then
    if left < 0 or allowed - n < left then
      left = allowed - n
    end
  elseif n > allowed + 1 then
    return {1, lock or (now + math.max(1, math.floor(first / 1000)))}
  else
    local lockouts = count(KEYS[k + 3], ARGV[5])
    local length = math.min(first * 2 ^ math.min(lockouts - 1, 30), tonumber(ARGV[a + 3]))
    local untill = now + math.max(1, math.floor(length / 1000))
    redis.call('SET', KEYS[k + 1], string.format('%d', untill), 'PX', string.format('%d', math.max(1, length)))
    redis.call('SET', KEYS[k + 2], string.format('%d', generation + 1), 'PX', ARGV[6])
    return {1, untill}
  end
end
if ARGV[2] ~= '1' then
  return {0, left, -1}
end
local cap = tonumber(ARGV[3])
local n = count(KEYS[3], ARGV[4])
if n > cap then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[4])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  if n == cap + 1 then
    return {2, 1}
  end
  return {2, 0}
end
return {0, left, n}
";

/// [`StateStore::commit`]: the TOTP step (compare-and-set; when it is not
/// newer nothing else happens), budgets started over, the consecutive
/// count removed, disabled methods enabled again (only while any-disabled
/// is set), and one entry taken — as `stepup_store::attempts::commit_with`
/// does with single operations.
///
/// `KEYS`: step, any-disabled, consecutive, take (any-disabled in a place
/// not used), then per reset budget: attempts prefix, generation, backoff;
/// then per method to enable: disabled, consecutive. `ARGV`: has step,
/// step, step ttl (ms), has consecutive, has take, reset count, enable
/// count, then per method to enable: has consecutive. Returns
/// `{advanced (0/1), taken (0/1)}`.
const COMMIT: &str = r"
if ARGV[1] == '1' then
  local current = redis.call('GET', KEYS[1])
  if current and tonumber(current) >= tonumber(ARGV[2]) then
    return {0, 0}
  end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
local resets = tonumber(ARGV[6])
for i = 0, resets - 1 do
  local k = 5 + i * 3
  local generation = tonumber(redis.call('GET', KEYS[k + 1]) or '0') or 0
  redis.call('DEL', KEYS[k] .. string.format('%d', generation), KEYS[k + 2])
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[3])
end
local enables = tonumber(ARGV[7])
if enables > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  local base = 5 + resets * 3
  for i = 0, enables - 1 do
    if redis.call('DEL', KEYS[base + i * 2]) == 1 and ARGV[8 + i] == '1' then
      redis.call('DEL', KEYS[base + i * 2 + 1])
    end
  end
end
local taken = 0
if ARGV[5] == '1' then
  taken = redis.call('DEL', KEYS[4])
end
return {1, taken}
";

/// How long a command may take before the step-up fails closed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// The [`StateStore`] on Redis: a connection manager (reconnecting,
/// multiplexed), a key prefix, and the two scripts. Cheap to clone; share
/// one between engines.
#[derive(Clone)]
pub struct RedisStateStore {
    connection: Connection,
    prefix: String,
    advance: Script,
    increment: Script,
    admit: Script,
    commit: Script,
}

/// A single server's connection manager, or a cluster's connection.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
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
        RedisStateStore::on(Connection::Single(connection), prefix)
    }

    /// A store on a Redis Cluster, reached through any of `nodes`
    /// (`redis://host:port/`; the others are discovered), every key
    /// starting with `prefix`. Connects lazily, like
    /// [`connect`](RedisStateStore::connect); commands (and connecting)
    /// time out after `timeout`.
    ///
    /// The engine writes every key of one subject (and of one client
    /// address group) with the same hash tag, so each script touches one
    /// slot; a `prefix` must not contain `{` (it would become the tag).
    /// While a node is down, the step-ups whose keys it holds fail closed;
    /// they work again once the cluster has the slots served.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use stepup_redis::RedisStateStore;
    ///
    /// # async fn run() -> Result<(), stepup_store::StoreError> {
    /// let state = RedisStateStore::connect_cluster(
    ///     &["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/", "redis://10.0.0.3:6379/"],
    ///     "bank:",
    ///     Duration::from_millis(500),
    /// )?;
    /// # let _ = state;
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_cluster(
        nodes: &[&str],
        prefix: &str,
        timeout: Duration,
    ) -> Result<RedisStateStore, StoreError> {
        if prefix.contains('{') {
            return Err(StoreError::new(
                "redis",
                "a cluster key prefix must not contain '{' (it would be the hash tag)",
            ));
        }
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(1)
            .max_retry_wait(200)
            .build()
            .map_err(|e| error("connecting", &e))?;
        let config = ClusterConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let connection = client.get_pending_async_connection_with_config(config);
        Ok(RedisStateStore::on(Connection::Cluster(connection), prefix))
    }

    fn on(connection: Connection, prefix: &str) -> RedisStateStore {
        RedisStateStore {
            connection,
            prefix: prefix.to_owned(),
            advance: Script::new(ADVANCE),
            increment: Script::new(INCREMENT),
            admit: Script::new(ADMIT),
            commit: Script::new(COMMIT),
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

    async fn admit(&self, request: &Admit) -> Result<Admitted, StoreError> {
        let mut script = self.admit.prepare_invoke();
        script
            .key(self.key(&request.disabled))
            .key(self.key(&request.any_disabled))
            .key(
                self.key(
                    request
                        .consecutive
                        .as_ref()
                        .map_or(&request.any_disabled, |c| &c.key),
                ),
            )
            .arg(request.now)
            .arg(u8::from(request.consecutive.is_some()))
            .arg(request.consecutive.as_ref().map_or(0, |c| c.cap))
            .arg(millis(stepup_store::attempts::CONSECUTIVE_MEMORY))
            .arg(millis(stepup_store::attempts::BACKOFF_MEMORY))
            .arg(millis(stepup_store::attempts::GENERATION_TTL))
            .arg(request.budgets.len());
        for budget in &request.budgets {
            script
                .key(self.key(&budget.keys.attempts))
                .key(self.key(&budget.keys.lock))
                .key(self.key(&budget.keys.generation))
                .key(self.key(&budget.keys.backoff))
                .arg(budget.allowed)
                .arg(millis(budget.window))
                .arg(millis(budget.first_lockout))
                .arg(millis(budget.max_lockout));
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> = script
            .invoke_async(&mut connection)
            .await
            .map_err(|e| error("admit", &e))?;
        let number = |i: usize| reply.get(i).copied().unwrap_or(-1);
        let whole = |n: i64| u64::try_from(n).ok();
        match number(0) {
            0 => Ok(Admitted::Yes {
                left: whole(number(1)).unwrap_or(u64::MAX),
                consecutive: whole(number(2)),
            }),
            1 => Ok(Admitted::LockedOut {
                until: whole(number(1)).unwrap_or(0),
            }),
            2 => Ok(Admitted::Disabled {
                just_now: number(1) == 1,
            }),
            _ => Err(StoreError::new("redis", "admit: unexpected reply")),
        }
    }

    async fn commit(&self, request: &Commit) -> Result<Committed, StoreError> {
        let spare = &request.any_disabled;
        let mut script = self.commit.prepare_invoke();
        script
            .key(self.key(request.advance.as_ref().map_or(spare, |a| &a.key)))
            .key(self.key(spare))
            .key(self.key(request.consecutive.as_ref().unwrap_or(spare)))
            .key(self.key(request.take.as_ref().unwrap_or(spare)))
            .arg(u8::from(request.advance.is_some()))
            .arg(request.advance.as_ref().map_or(0, |a| a.step))
            .arg(request.advance.as_ref().map_or(1, |a| millis(a.ttl)))
            .arg(u8::from(request.consecutive.is_some()))
            .arg(u8::from(request.take.is_some()))
            .arg(request.reset.len())
            .arg(request.reenable.len());
        for keys in &request.reset {
            script
                .key(self.key(&keys.attempts))
                .key(self.key(&keys.generation))
                .key(self.key(&keys.backoff));
        }
        for other in &request.reenable {
            script
                .key(self.key(&other.disabled))
                .key(self.key(other.consecutive.as_ref().unwrap_or(spare)))
                .arg(u8::from(other.consecutive.is_some()));
        }
        let mut connection = self.connection.clone();
        let reply: Vec<i64> = script
            .invoke_async(&mut connection)
            .await
            .map_err(|e| error("commit", &e))?;
        Ok(Committed {
            advanced: reply.first() == Some(&1),
            taken: reply.get(1) == Some(&1),
        })
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
