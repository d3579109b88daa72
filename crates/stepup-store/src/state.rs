//! Short-lived server state: the [`StateStore`] trait and its in-memory
//! implementation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stepup_core::{Clock, SystemClock, Timestamp};

use crate::attempts::{Admit, Admitted, Commit, Committed};
use crate::error::StoreError;

/// Short-lived server state with expiry and atomic operations: the last
/// accepted TOTP step, attempt counters and lockouts, pending one-time
/// codes, pending enrollments and account recoveries.
///
/// Every operation is one atomic step, so a shared implementation (Redis)
/// can do each in one round trip: compare-and-set of a step (a script), an
/// increment with expiry (`INCR` + `EXPIRE NX`), set with expiry, get, and
/// take-once (`GETDEL`). Keys are opaque strings the engine makes (keyed
/// digests, never a user id in the clear); values are opaque bytes.
///
/// The rules every implementation keeps are checked by
/// `state_store_contract!` (feature `contract`).
///
/// ```
/// use std::time::Duration;
/// use stepup_store::{MemoryStateStore, StateStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let state = MemoryStateStore::default();
/// let ttl = Duration::from_secs(60);
/// assert!(state.advance("totp:alice", 7, ttl).await?);
/// assert!(!state.advance("totp:alice", 7, ttl).await?, "a step is accepted once");
/// assert_eq!(state.increment("tries:alice", ttl).await?, 1);
/// state.put("code:alice", b"digest".to_vec(), ttl).await?;
/// assert_eq!(state.take("code:alice").await?.as_deref(), Some(&b"digest"[..]));
/// assert_eq!(state.take("code:alice").await?, None, "taken once");
/// # Ok::<(), stepup_store::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StateStore: Send + Sync + 'static {
    /// Sets `key` to `step` only if it holds no step or a smaller one;
    /// returns whether it did. The entry expires after `ttl`.
    fn advance(
        &self,
        key: &str,
        step: u64,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Increments the counter `key` (created at 0 with expiry `window` when
    /// absent) and returns the new value. The window is fixed: later
    /// increments do not extend it.
    fn increment(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Stores `value` under `key` for `ttl`, replacing any value.
    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads `key` without removing it.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Removes `key` and returns what it held: of two concurrent takes, one
    /// gets the value.
    fn take(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Removes `key` (nothing happens if it is absent).
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks and counts one attempt before it is verified (see
    /// [`Admit`]): lockouts, windowed budgets, the consecutive cap. The
    /// default runs [`admit_with`](crate::attempts::admit_with) over the
    /// operations above; a shared store overrides it to do it in one round
    /// trip, with the same outcomes.
    fn admit(&self, request: &Admit) -> impl Future<Output = Result<Admitted, StoreError>> + Send {
        crate::attempts::admit_with(self, request)
    }

    /// Records a success (see [`Commit`]): the TOTP step, then counters
    /// started over and disabled methods enabled again. The default runs
    /// [`commit_with`](crate::attempts::commit_with); a shared store
    /// overrides it to do it in one round trip, with the same outcomes.
    fn commit(
        &self,
        request: &Commit,
    ) -> impl Future<Output = Result<Committed, StoreError>> + Send {
        crate::attempts::commit_with(self, request)
    }
}

type Entries = HashMap<String, (Value, Timestamp)>;

#[derive(Debug)]
enum Value {
    Step(u64),
    Count(u64),
    Bytes(Vec<u8>),
}

/// The in-memory [`StateStore`]: one process, a mutex, expiry checked on
/// access (and swept as the map grows). Enough for one instance; several
/// instances need a shared store (`stepup-redis`). Time comes from a
/// [`Clock`], in whole seconds.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{TestClock, Timestamp};
/// use stepup_store::{MemoryStateStore, StateStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
/// let state = MemoryStateStore::new(clock.clone());
/// state.put("k", b"v".to_vec(), Duration::from_secs(30)).await?;
/// assert_eq!(state.len(), 1);
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(state.get("k").await?, None, "expired");
/// assert!(state.is_empty());
/// # Ok::<(), stepup_store::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStateStore {
    inner: Arc<Mutex<Entries>>,
    clock: Arc<dyn Clock>,
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        MemoryStateStore::new(SystemClock)
    }
}

impl MemoryStateStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: impl Clock) -> MemoryStateStore {
        MemoryStateStore {
            inner: Arc::default(),
            clock: Arc::new(clock),
        }
    }

    /// How many live entries the store holds.
    pub fn len(&self) -> usize {
        let now = self.clock.now();
        self.lock()
            .map(|m| m.values().filter(|(_, exp)| *exp > now).count())
            .unwrap_or(0)
    }

    /// Whether the store holds no live entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> Result<MutexGuard<'_, Entries>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new("state", "the in-memory store's lock is poisoned"))
    }

    /// Runs `f` on the live entry for `key` (expired entries are removed
    /// first), sweeping expired entries when the map has grown.
    fn with<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Entries, Timestamp) -> T,
    ) -> Result<T, StoreError> {
        let now = self.clock.now();
        let mut map = self.lock()?;
        if map.get(key).is_some_and(|(_, exp)| *exp <= now) {
            map.remove(key);
        }
        if map.len() > 1024 && map.len().is_power_of_two() {
            map.retain(|_, (_, exp)| *exp > now);
        }
        Ok(f(&mut map, now))
    }
}

impl StateStore for MemoryStateStore {
    async fn advance(&self, key: &str, step: u64, ttl: Duration) -> Result<bool, StoreError> {
        self.with(key, |map, now| match map.get(key) {
            Some((Value::Step(current), _)) if *current >= step => false,
            _ => {
                map.insert(key.to_owned(), (Value::Step(step), now + ttl));
                true
            }
        })
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        self.with(key, |map, now| {
            let entry = map
                .entry(key.to_owned())
                .or_insert((Value::Count(0), now + window));
            let next = match entry.0 {
                Value::Count(n) => n.saturating_add(1),
                _ => 1,
            };
            entry.0 = Value::Count(next);
            next
        })
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        self.with(key, |map, now| {
            map.insert(key.to_owned(), (Value::Bytes(value), now + ttl));
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(key, |map, _| match map.get(key) {
            Some((Value::Bytes(b), _)) => Some(b.clone()),
            _ => None,
        })
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(key, |map, _| match map.remove(key) {
            Some((Value::Bytes(b), _)) => Some(b),
            _ => None,
        })
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.with(key, |map, _| {
            map.remove(key);
        })
    }
}
