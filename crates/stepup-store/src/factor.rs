//! What the application owns per user: the [`FactorStore`] trait, the
//! [`PasskeyStore`] trait (feature `passkey`) and their in-memory
//! implementation.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use stepup_core::Subject;
use stepup_core::ct::{self, Comparison};

use crate::channel::Channel;
use crate::error::StoreError;
#[cfg(feature = "passkey")]
use crate::passkey::StoredPasskey;
use crate::secret::TotpSecret;

/// What the application owns per user, in its own database: the enrolled
/// TOTP secret, the digests of unused recovery codes, the registered
/// addresses one-time codes go to (e-mail, SMS), and the assurance epoch
/// that ends every outstanding assurance token when it moves. Passkeys are
/// kept by a store that also implements [`PasskeyStore`] (feature
/// `passkey`). Passwords are not here: they stay in the application's user
/// table, behind its own check (`stepup-challenge`'s `PasswordVerifier`).
///
/// Subjects are told apart by [`Subject::id`]; the session and epoch a
/// [`Subject`] carries play no part here. Every write is atomic for its
/// subject; [`consume_recovery_digest`](FactorStore::consume_recovery_digest)
/// and [`bump_epoch`](FactorStore::bump_epoch) must be atomic under
/// concurrency too (one winner, no lost update).
///
/// The rules every implementation keeps are checked by
/// `factor_store_contract!` (feature `contract`).
///
/// ```
/// use stepup_core::Subject;
/// use stepup_store::{FactorStore, MemoryFactorStore, TotpSecret};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let factors = MemoryFactorStore::new();
/// let alice = Subject::new("alice");
/// factors.set_totp_secret(&alice, TotpSecret::generate()?).await?;
/// factors.set_recovery_digests(&alice, vec![[1; 32], [2; 32]]).await?;
/// assert!(factors.consume_recovery_digest(&alice, &[1; 32]).await?);
/// assert!(!factors.consume_recovery_digest(&alice, &[1; 32]).await?, "used once");
/// assert_eq!(factors.recovery_codes_left(&alice).await?, 1);
/// assert_eq!(factors.bump_epoch(&alice).await?, 1);
/// # Ok::<(), stepup_store::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait FactorStore: Send + Sync + 'static {
    /// The subject's TOTP secret, if enrolled.
    fn totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Option<TotpSecret>, StoreError>> + Send;

    /// Whether the subject has a TOTP secret, without reading it (a store
    /// that seals secrets answers without opening one, so a secret that no
    /// longer opens still counts as enrolled and can be removed). The
    /// default reads it with [`totp_secret`](FactorStore::totp_secret).
    fn has_totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        async { Ok(self.totp_secret(subject).await?.is_some()) }
    }

    /// Stores (replaces) the subject's TOTP secret.
    fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the subject's TOTP secret (nothing happens if there is none).
    fn remove_totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the subject's recovery-code digests: the earlier ones stop
    /// working.
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
    /// never to an address taken from a request. The default: none (the
    /// subject has no e-mail or SMS codes).
    fn code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        let _ = (subject, channel);
        async { Ok(None) }
    }

    /// Bumps the subject's assurance epoch and returns the new one, so
    /// every outstanding assurance token ends ([`Subject::with_epoch`]: the
    /// application's subject source must read the epoch from where this
    /// writes it). Epochs only grow, per subject, and a bump of one subject
    /// leaves every other's alone; a subject never bumped is at 0. Called
    /// when a factor is removed or replaced and when recovery codes are
    /// regenerated.
    fn bump_epoch(&self, subject: &Subject)
    -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A [`FactorStore`] that also keeps the subjects' passkeys (feature
/// `passkey`). A store without passkeys does not implement it; the
/// `stepup-challenge` engine then offers no passkeys (its
/// `Engine::with_passkeys` needs this trait).
///
/// A credential id is registered to at most one subject at a time
/// (WebAuthn §7.1 step 22): [`add_passkey`](PasskeyStore::add_passkey)
/// checks that across all subjects, atomically with the insert (a unique
/// index on the credential id does it in a database).
///
/// The rules every implementation keeps are checked by
/// `passkey_store_contract!` (features `contract` and `passkey`).
///
/// ```
/// use stepup_core::Subject;
/// use stepup_store::{PasskeyStore, StoreError};
///
/// /// Renames every passkey of `subject` called `from`.
/// async fn rename_all(
///     store: &impl PasskeyStore,
///     subject: &Subject,
///     from: &str,
///     to: &str,
/// ) -> Result<usize, StoreError> {
///     let mut renamed = 0;
///     for passkey in store.passkeys(subject).await? {
///         if passkey.name == from && store.rename_passkey(subject, passkey.id(), to).await? {
///             renamed += 1;
///         }
///     }
///     Ok(renamed)
/// }
/// ```
#[cfg(feature = "passkey")]
pub trait PasskeyStore: FactorStore {
    /// The subject's passkeys, in registration order.
    fn passkeys(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Vec<StoredPasskey>, StoreError>> + Send;

    /// Adds `passkey` to the subject's passkeys, atomically, unless its
    /// credential id is already registered — to this subject or anyone
    /// else (WebAuthn §7.1 step 22): then nothing changes and the answer is
    /// `false`.
    fn add_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Replaces the subject's stored credential with the same credential id
    /// as `passkey` (its counter and backup state after a use; the name
    /// stays), atomically and only if that credential is still registered
    /// to the subject — a use racing with a removal never brings the
    /// credential back — and only if its signature counter
    /// ([`StoredPasskey::counter`]) moves forward: above the stored one,
    /// or both 0 (an authenticator that keeps no counter), so of two racing
    /// uses the later counter stays. Returns whether it replaced it.
    fn update_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the subject's passkey with credential id `id`, atomically;
    /// returns whether it was there.
    fn remove_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Renames the subject's passkey with credential id `id`; returns
    /// whether it was there.
    fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
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

/// The in-memory [`FactorStore`] (and, with feature `passkey`,
/// [`PasskeyStore`]), for examples and tests: one process, a mutex, gone
/// at exit. Cheap to clone; clones share the data.
///
/// ```
/// use stepup_core::Subject;
/// use stepup_store::{Channel, FactorStore, MemoryFactorStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let factors = MemoryFactorStore::new();
/// let bob = Subject::new("bob");
/// factors.set_code_destination(&bob, Channel::Email, "bob@example.com")?;
/// assert_eq!(
///     factors.code_destination(&bob, Channel::Email).await?.as_deref(),
///     Some("bob@example.com")
/// );
/// assert_eq!(factors.code_destination(&bob, Channel::Sms).await?, None);
/// # Ok::<(), stepup_store::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// use stepup_core::Subject;
    /// use stepup_store::{FactorStore, MemoryFactorStore};
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

    /// Registers where the subject receives one-time codes on `channel`
    /// (what [`FactorStore::code_destination`] answers), replacing any
    /// earlier address.
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
            f.recovery
                .retain(|d| !ct::eq_as(Comparison::RecoveryCode, d, digest));
            f.recovery.len() < before
        })
    }

    async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, StoreError> {
        self.with(subject, |f| f.recovery.len())
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

    async fn bump_epoch(&self, subject: &Subject) -> Result<u64, StoreError> {
        self.with(subject, |f| {
            f.epoch = f.epoch.saturating_add(1);
            f.epoch
        })
    }
}

#[cfg(feature = "passkey")]
impl PasskeyStore for MemoryFactorStore {
    async fn passkeys(&self, subject: &Subject) -> Result<Vec<StoredPasskey>, StoreError> {
        self.with(subject, |f| f.passkeys.clone())
    }

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

    async fn update_passkey(
        &self,
        subject: &Subject,
        passkey: StoredPasskey,
    ) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            let Some(new) = passkey.counter() else {
                return false;
            };
            match f.passkeys.iter_mut().find(|p| p.id() == passkey.id()) {
                Some(stored)
                    if stored
                        .counter()
                        .is_some_and(|old| old < new || (old == 0 && new == 0)) =>
                {
                    stored.passkey = passkey.passkey;
                    true
                }
                _ => false,
            }
        })
    }

    async fn remove_passkey(&self, subject: &Subject, id: &[u8]) -> Result<bool, StoreError> {
        self.with(subject, |f| {
            let before = f.passkeys.len();
            f.passkeys.retain(|p| p.id() != id);
            f.passkeys.len() < before
        })
    }

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
}
