//! Where state lives: the short-lived server state (`StateStore`), what the
//! application owns per user (`FactorStore`), and its password check
//! (`PasswordVerifier`). In-memory implementations are the embedded default.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stepup_core::{Clock, Subject, SystemClock, Timestamp};

use crate::code::Channel;
use crate::error::StoreError;
#[cfg(feature = "passkey")]
use crate::passkey::StoredPasskey;
use crate::secret::TotpSecret;

/// Short-lived server state with expiry and atomic operations. Every
/// operation is one atomic step, so a shared implementation (Redis) can do
/// each in one round trip: compare-and-set of a step (a script), an
/// increment with expiry (`INCR` + `EXPIRE NX`), set with expiry, get, and
/// take-once (`GETDEL`).
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
    /// absent) and returns the new value.
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

    /// Removes `key`.
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
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
/// instances need a shared store.
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

/// What the application owns per user: enrolled TOTP secrets and the digests
/// of unused recovery codes. (Passwords stay in the application's user table;
/// see [`PasswordVerifier`].)
pub trait FactorStore: Send + Sync + 'static {
    /// The subject's TOTP secret, if enrolled.
    fn totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Option<TotpSecret>, StoreError>> + Send;

    /// Stores (replaces) the subject's TOTP secret.
    fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the subject's TOTP secret.
    fn remove_totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the subject's recovery-code digests.
    fn set_recovery_digests(
        &self,
        subject: &Subject,
        digests: Vec<[u8; 32]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes `digest` from the subject's unused recovery codes if present,
    /// atomically; returns whether it was there (of two concurrent consumes
    /// of one code, exactly one returns `true`).
    fn consume_recovery_digest(
        &self,
        subject: &Subject,
        digest: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// How many unused recovery codes the subject has.
    fn recovery_codes_left(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The subject's registered address for one-time codes on `channel`
    /// (an e-mail address, a phone number), if any. Codes go only there,
    /// never to an address taken from a request. The default: none.
    fn code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let _ = (subject, channel);
        async { Ok(None) }
    }

    /// The subject's passkeys. The default: none.
    #[cfg(feature = "passkey")]
    fn passkeys(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Vec<StoredPasskey>, StoreError>> + Send {
        let _ = subject;
        async { Ok(Vec::new()) }
    }

    /// Adds `passkey` to the subject's passkeys, atomically, unless its
    /// credential id is already registered — to this subject or anyone
    /// else (WebAuthn §7.1 step 22): then nothing changes and the answer is
    /// `false`. The default refuses: a store that keeps passkeys implements
    /// the four passkey writes.
    #[cfg(feature = "passkey")]
    fn add_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (subject, passkey);
        async { Err(no_passkeys()) }
    }

    /// Replaces the stored credential with the same credential id as
    /// `passkey` (its counter and backup state after a use), atomically and
    /// only if that credential is still registered: a use racing with a
    /// removal never brings the credential back. Returns whether it was
    /// there.
    #[cfg(feature = "passkey")]
    fn update_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (subject, passkey);
        async { Err(no_passkeys()) }
    }

    /// Removes the subject's passkey with credential id `id`, atomically;
    /// returns whether it was there.
    #[cfg(feature = "passkey")]
    fn remove_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (subject, id);
        async { Err(no_passkeys()) }
    }

    /// Renames the subject's passkey with credential id `id`; returns
    /// whether it was there.
    #[cfg(feature = "passkey")]
    fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (subject, id, name);
        async { Err(no_passkeys()) }
    }

    /// Bumps the subject's assurance epoch and returns the new one, so
    /// every outstanding assurance token ends ([`Subject::with_epoch`]: the
    /// application's subject source must read the epoch from where this
    /// writes it). Called when a factor is removed or replaced and when
    /// recovery codes are regenerated.
    fn bump_epoch(&self, subject: &Subject)
    -> impl Future<Output = Result<u64, StoreError>> + Send;
}

#[cfg(feature = "passkey")]
fn no_passkeys() -> StoreError {
    StoreError::new("factor", "this factor store keeps no passkeys")
}

#[derive(Default, Debug)]
struct Factors {
    totp: Option<TotpSecret>,
    recovery: Vec<[u8; 32]>,
    email: Option<String>,
    phone: Option<String>,
    #[cfg(feature = "passkey")]
    passkeys: Vec<StoredPasskey>,
    epoch: u64,
}

/// The in-memory [`FactorStore`], for examples and tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryFactorStore {
    inner: Arc<Mutex<HashMap<String, Factors>>>,
}

impl MemoryFactorStore {
    /// An empty store.
    pub fn new() -> MemoryFactorStore {
        MemoryFactorStore::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Factors>>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new("factor", "the in-memory store's lock is poisoned"))
    }

    fn with<T>(
        &self,
        subject: &Subject,
        f: impl FnOnce(&mut Factors) -> T,
    ) -> Result<T, StoreError> {
        let mut map = self.lock()?;
        Ok(f(map.entry(subject.id().to_owned()).or_default()))
    }

    /// The assurance epoch of user `id` (0 until a factor change bumps
    /// it): what the application's subject source puts in
    /// [`Subject::with_epoch`].
    ///
    /// ```
    /// use stepup_challenge::{FactorStore, MemoryFactorStore};
    /// use stepup_core::Subject;
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryFactorStore::new();
    /// assert_eq!(store.epoch("alice"), 0);
    /// store.bump_epoch(&Subject::new("alice")).await?;
    /// assert_eq!(store.epoch("alice"), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn epoch(&self, id: &str) -> u64 {
        self.lock()
            .ok()
            .and_then(|map| map.get(id).map(|f| f.epoch))
            .unwrap_or(0)
    }
}

impl FactorStore for MemoryFactorStore {
    async fn totp_secret(&self, subject: &Subject) -> Result<Option<TotpSecret>, StoreError> {
        self.with(subject, |f| f.totp.clone())
    }

    async fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> Result<(), StoreError> {
        self.with(subject, |f| f.totp = Some(secret))
    }

    async fn remove_totp_secret(&self, subject: &Subject) -> Result<(), StoreError> {
        self.with(subject, |f| f.totp = None)
    }

    async fn set_recovery_digests(
        &self,
        subject: &Subject,
        digests: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        self.with(subject, |f| f.recovery = digests)
    }

    async fn consume_recovery_digest(
        &self,
        subject: &Subject,
        digest: &[u8; 32],
    ) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            let before = f.recovery.len();
            f.recovery.retain(|d| {
                !stepup_core::ct::eq_as(stepup_core::ct::Comparison::RecoveryCode, d, digest)
            });
            f.recovery.len() < before
        })
    }

    async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, StoreError> {
        self.with(subject, |f| f.recovery.len())
    }

    #[cfg(feature = "passkey")]
    async fn passkeys(&self, subject: &Subject) -> Result<Vec<StoredPasskey>, StoreError> {
        self.with(subject, |f| f.passkeys.clone())
    }

    #[cfg(feature = "passkey")]
    async fn add_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock()?;
        let taken = map
            .values()
            .flat_map(|f| f.passkeys.iter())
            .any(|p| p.id() == passkey.id());
        if taken {
            return Ok(false);
        }
        map.entry(subject.id().to_owned())
            .or_default()
            .passkeys
            .push(passkey);
        Ok(true)
    }

    #[cfg(feature = "passkey")]
    async fn update_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            match f.passkeys.iter_mut().find(|p| p.id() == passkey.id()) {
                Some(stored) => {
                    stored.passkey = passkey.passkey;
                    true
                }
                None => false,
            }
        })
    }

    #[cfg(feature = "passkey")]
    async fn remove_passkey(&self, subject: &Subject, id: &[u8]) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            let before = f.passkeys.len();
            f.passkeys.retain(|p| p.id() != id);
            f.passkeys.len() < before
        })
    }

    #[cfg(feature = "passkey")]
    async fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            match f.passkeys.iter_mut().find(|p| p.id() == id) {
                Some(stored) => {
                    stored.name = name.to_owned();
                    true
                }
                None => false,
            }
        })
    }

    async fn bump_epoch(&self, subject: &Subject) -> Result<u64, StoreError> {
        self.with(subject, |f| {
            f.epoch = f.epoch.saturating_add(1);
            f.epoch
        })
    }

    async fn code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
    ) -> Result<Option<String>, StoreError> {
        self.with(subject, |f| match channel {
            Channel::Email => f.email.clone(),
            Channel::Sms => f.phone.clone(),
        })
    }
}

impl MemoryFactorStore {
    /// Registers where the subject receives one-time codes on `channel`.
    pub fn set_code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
        address: impl Into<String>,
    ) -> Result<(), StoreError> {
        let address = address.into();
        self.with(subject, |f| match channel {
            Channel::Email => f.email = Some(address),
            Channel::Sms => f.phone = Some(address),
        })
    }
}

/// The application's password check against its own user table: `stepup`
/// never stores passwords.
pub trait PasswordVerifier: Send + Sync + 'static {
    /// Whether `password` is the subject's current password.
    fn verify(
        &self,
        subject: &Subject,
        password: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether password step-ups are offered at all (the challenge page shows
    /// the password form only then).
    fn is_configured(&self) -> bool {
        true
    }
}

/// A [`PasswordVerifier`] for tests and examples: one fixed password per
/// user id, compared in constant time.
#[derive(Clone, Default)]
pub struct FixedPasswords {
    passwords: Arc<HashMap<String, String>>,
}

impl FixedPasswords {
    /// Accepts `password` for user `id`.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> FixedPasswords {
        FixedPasswords {
            passwords: Arc::new(
                pairs
                    .into_iter()
                    .map(|(u, p)| (u.to_owned(), p.to_owned()))
                    .collect(),
            ),
        }
    }
}

impl std::fmt::Debug for FixedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FixedPasswords({} users, [redacted])",
            self.passwords.len()
        )
    }
}

impl PasswordVerifier for FixedPasswords {
    async fn verify(&self, subject: &Subject, password: &str) -> Result<bool, StoreError> {
        Ok(self.passwords.get(subject.id()).is_some_and(|p| {
            stepup_core::ct::eq_as(
                stepup_core::ct::Comparison::Password,
                p.as_bytes(),
                password.as_bytes(),
            )
        }))
    }
}
