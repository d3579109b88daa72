//! Passkeys (feature `passkey`): registration, step-ups, removal. The
//! operations the routes call need only `F: FactorStore` (they reach the
//! passkeys through what [`Engine::with_passkeys`] captured); the public
//! ones need `F: PasskeyStore`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::{IssuedToken, Method, Subject, Timestamp};
use stepup_store::StoredPasskey;

use super::events::Reason;
use super::{Attempt, Engine};
use crate::error::{ChallengeError, StoreError};
use crate::event::{EventKind, NoticeKind};
use crate::keys::{RecordId, StoreKeys, SubjectName};
use crate::limiter;
#[cfg(doc)]
use crate::limiter::AttemptLimits;
use crate::passkey::CeremonyState;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// Passkeys, once offered: the verifier with the ceremonies in flight, and
/// the factor store seen as a passkey store. [`Engine::with_passkeys`]
/// captures `store` where `F: PasskeyStore` is known, so the methods that
/// need only `F: FactorStore` (the enrolled methods, the routes'
/// dispatch) reach the passkeys through it.
pub(super) struct PasskeySupport<F> {
    service: Arc<crate::passkey::Passkeys>,
    store: fn(&F) -> &dyn DynPasskeyStore,
}

/// Passkey ceremonies one subject may have in flight: a new one replaces
/// the oldest.
pub(crate) const PER_SUBJECT: u64 = 3;

/// Who a ceremony belongs to: the store name of its subject, and the keyed
/// digest of its session (and bound action) it is sealed to.
struct Owner {
    name: SubjectName,
    binding: [u8; 32],
}

/// A ceremony as the store keeps it (serialised, then sealed): the
/// webauthn-rs state and when it expires (checked on the finish too, so a
/// store that kept it longer changes nothing).
#[derive(Serialize, Deserialize)]
struct CeremonyRecord<T> {
    #[serde(rename = "s")]
    state: T,
    #[serde(rename = "e")]
    expires: u64,
}

/// The associated data a ceremony is sealed to: its store key (subject and
/// slot), the owner's session (and action) binding, and the nonce the
/// browser holds, so a sealed ceremony opens for nobody else and for no
/// other id, and a value moved to another key or slot opens nowhere.
fn associated(key: &str, owner: &Owner, nonce: &RecordId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(key.len() + 80);
    ad.extend_from_slice(b"stepup passkey ceremony\0");
    ad.extend_from_slice(key.as_bytes());
    ad.push(0);
    ad.extend_from_slice(&owner.binding);
    ad.extend_from_slice(nonce.as_str().as_bytes());
    ad
}

/// A ceremony id as the browser holds it: the slot digit, then the nonce
/// (32 hex); `None` for any other shape.
fn parse_ceremony(id: &str) -> Option<(u8, RecordId)> {
    let slot = id.get(..1)?.parse::<u8>().ok()?;
    if u64::from(slot) >= PER_SUBJECT {
        return None;
    }
    Some((slot, RecordId::parse(id.get(1..)?)?))
}

/// A boxed store future, so a [`PasskeyStore`](crate::PasskeyStore) can be
/// used behind `dyn`.
pub(super) type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The [`PasskeyStore`](crate::PasskeyStore) operations the engine needs
/// behind `dyn`.
pub(super) trait DynPasskeyStore: Send + Sync {
    fn passkeys<'a>(&'a self, subject: &'a Subject) -> StoreFuture<'a, Vec<StoredPasskey>>;
    fn add_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool>;
    fn update_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool>;
    fn remove_passkey<'a>(&'a self, subject: &'a Subject, id: &'a [u8]) -> StoreFuture<'a, bool>;
}

impl<T: crate::PasskeyStore> DynPasskeyStore for T {
    fn passkeys<'a>(&'a self, subject: &'a Subject) -> StoreFuture<'a, Vec<StoredPasskey>> {
        Box::pin(crate::PasskeyStore::passkeys(self, subject))
    }

    fn add_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::add_passkey(self, subject, passkey))
    }

    fn update_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::update_passkey(self, subject, passkey))
    }

    fn remove_passkey<'a>(&'a self, subject: &'a Subject, id: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::remove_passkey(self, subject, id))
    }
}

/// `factors` as a [`DynPasskeyStore`]: what [`PasskeySupport::store`] holds.
pub(super) fn as_passkey_store<F: crate::PasskeyStore>(factors: &F) -> &dyn DynPasskeyStore {
    factors
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// The passkey verifier and the factor store as a passkey store, or
    /// "not set up" without [`with_passkeys`](Engine::with_passkeys).
    pub(super) fn passkey_support(
        &self,
    ) -> Result<(&crate::passkey::Passkeys, &dyn DynPasskeyStore), ChallengeError> {
        self.passkeys
            .as_ref()
            .map(|support| (&*support.service, (support.store)(&self.factors)))
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))
    }

    /// Who a passkey ceremony belongs to: the subject, its session, and
    /// the bound action it was started for (`action`), so an assertion
    /// made for one action's ceremony finishes no other.
    fn owner(&self, subject: &Subject, action: Option<&str>) -> Owner {
        Owner {
            name: self.keys.subject(subject),
            binding: self.keys.ceremony_binding(subject, action),
        }
    }

    /// Keeps a started ceremony in the state store, sealed, and returns the
    /// id the browser finishes it with. The start is counted first
    /// ([`AttemptLimits::ceremony_starts`]); the count also picks the slot,
    /// so a subject has at most [`PER_SUBJECT`] in flight and a new one
    /// replaces an older one. That bounds what the store holds (three per
    /// user); there is no count across users, which a few hundred accounts
    /// could spend to refuse everyone's passkeys.
    async fn keep_ceremony(
        &self,
        owner: &Owner,
        state: &CeremonyState,
        ttl: Duration,
    ) -> Result<String, ChallengeError> {
        let now = self.clock.now();
        let n = limiter::ceremony_started(&self.state, &self.limits, &owner.name, now).await?;
        let slot = u8::try_from((n - 1) % PER_SUBJECT).unwrap_or(0);
        let nonce = RecordId::random()
            .ok_or_else(|| StoreError::new("random", "no randomness available"))?;
        let key = StoreKeys::passkey_ceremony(&owner.name, slot);
        let record = CeremonyRecord {
            state,
            expires: (now + ttl).as_unix_seconds(),
        };
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(&record).map_err(|_| StoreError::new("passkey", "encode"))?,
        );
        let sealed = self
            .keys
            .seal_ceremony(&associated(&key, owner, &nonce), &plain)?;
        self.state.put(&key, sealed, ttl).await?;
        Ok(format!("{slot}{nonce}"))
    }

    /// Takes the ceremony `id` once, wherever it was started: refused when
    /// it is unknown, replaced by a newer one, expired, another subject's
    /// or session's, or made for another action, or when the stored value
    /// was altered. Only a ceremony that opens for this owner and id is
    /// taken: a stale or another session's id leaves the ceremony in its
    /// slot for its owner.
    async fn take_ceremony(
        &self,
        id: &str,
        owner: &Owner,
    ) -> Result<CeremonyState, ChallengeError> {
        let (slot, nonce) = parse_ceremony(id).ok_or(ChallengeError::NoPendingCeremony)?;
        let key = StoreKeys::passkey_ceremony(&owner.name, slot);
        let associated = associated(&key, owner, &nonce);
        let sealed = self
            .state
            .get(&key)
            .await?
            .ok_or(ChallengeError::NoPendingCeremony)?;
        let plain = self
            .keys
            .open_ceremony(&associated, &sealed)
            .ok_or(ChallengeError::NoPendingCeremony)?;
        // One winner: of two finishes, one takes it. What is taken must be
        // what was opened (a start that replaced it in between: refused).
        let taken = self.state.take(&key).await?;
        if taken.as_deref() != Some(sealed.as_slice()) {
            return Err(ChallengeError::NoPendingCeremony);
        }
        let record: CeremonyRecord<CeremonyState> =
            serde_json::from_slice(&plain).map_err(|_| ChallengeError::NoPendingCeremony)?;
        if Timestamp::from_unix_seconds(record.expires) <= self.clock.now() {
            return Err(ChallengeError::NoPendingCeremony);
        }
        Ok(record.state)
    }

    // The passkey operations below need only `F: FactorStore`: they reach
    // the passkeys through the store `with_passkeys` captured (which needed
    // `F: PasskeyStore`), and are "not set up" without it. The routes call
    // them; applications call the public methods of the same name without
    // `_dyn`, which need `F: PasskeyStore`.

    /// See [`start_passkey_registration`](Engine::start_passkey_registration).
    pub(crate) async fn start_passkey_registration_dyn(
        &self,
        subject: &Subject,
        user_name: &str,
    ) -> Result<(String, webauthn_rs::prelude::CreationChallengeResponse), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let existing = store.passkeys(subject).await?;
        let (options, state) =
            service.start_registration(self.keys.user_handle(subject), user_name, &existing)?;
        let id = self
            .keep_ceremony(&self.owner(subject, None), &state, service.ttl)
            .await?;
        Ok((id, options))
    }

    /// See [`finish_passkey_registration`](Engine::finish_passkey_registration).
    pub(crate) async fn finish_passkey_registration_dyn(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<(), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let subject = attempt.subject;
        let registered = match self
            .take_ceremony(ceremony, &self.owner(subject, None))
            .await
        {
            Ok(state) => service.finish_registration(state, response),
            Err(e) => Err(e),
        };
        let passkey = match registered {
            Ok(p) => p,
            Err(e) => {
                self.emit(
                    EventKind::Failed,
                    Method::Passkey,
                    subject,
                    Some(Reason::Registration),
                );
                return Err(e);
            }
        };
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        let stored = StoredPasskey {
            name: if name.is_empty() {
                "Passkey".into()
            } else {
                name
            },
            passkey,
        };
        let method = service.method_of(&stored);
        if !store.add_passkey(subject, stored).await? {
            self.emit(
                EventKind::Failed,
                method,
                subject,
                Some(Reason::AlreadyRegistered),
            );
            return Err(ChallengeError::PasskeyRejected);
        }
        self.emit(EventKind::Enrolled, method, subject, None);
        self.notify(NoticeKind::FactorAdded, method, subject, None);
        self.changed(subject).await?;
        Ok(())
    }

    /// See [`start_passkey_step_up`](Engine::start_passkey_step_up).
    pub(crate) async fn start_passkey_step_up_dyn(
        &self,
        attempt: Attempt<'_>,
    ) -> Result<(String, webauthn_rs::prelude::RequestChallengeResponse), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let credentials = store.passkeys(attempt.subject).await?;
        if credentials.is_empty() {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        if let Some(id) = attempt.action
            && self.pending_action(attempt.subject, id).await?.is_none()
        {
            return Err(ChallengeError::NoPendingAction);
        }
        let (options, state) = service.start_authentication(&credentials)?;
        let id = self
            .keep_ceremony(
                &self.owner(attempt.subject, attempt.action),
                &state,
                service.ttl,
            )
            .await?;
        self.method_started(attempt.subject, Method::Passkey);
        Ok((id, options))
    }

    /// See [`step_up_passkey`](Engine::step_up_passkey).
    pub(crate) async fn step_up_passkey_dyn(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
    ) -> Result<IssuedToken, ChallengeError> {
        let mut method = Method::Passkey;
        let outcome = async {
            let (service, store) = self.passkey_support()?;
            // No pending ceremony is no guess: not counted.
            let taken = self
                .take_ceremony(ceremony, &self.owner(attempt.subject, attempt.action))
                .await?;
            // A registration's ceremony is no step-up's: refused uncounted.
            if !matches!(taken, CeremonyState::Authentication(_)) {
                return Err(ChallengeError::NoPendingCeremony);
            }
            self.admit(attempt, Method::Passkey).await?;
            let credentials = store.passkeys(attempt.subject).await?;
            let used = service.finish_authentication(taken, response, credentials)?;
            let used_method = service.method_of(&used);
            // Only a credential still registered, its counter still ahead,
            // counts (a removal, or a racing use with a later counter, wins).
            if !store.update_passkey(attempt.subject, used).await? {
                return Err(ChallengeError::PasskeyRejected);
            }
            method = used_method;
            Ok(())
        }
        .await;
        self.finish_as(attempt, Method::Passkey, method, outcome)
            .await
    }

    /// See [`remove_passkey`](Engine::remove_passkey).
    pub(crate) async fn remove_passkey_dyn(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<(), ChallengeError> {
        let (_, store) = self.passkey_support()?;
        let method = self
            .passkey_method_dyn(subject, id)
            .await?
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))?;
        if !store.remove_passkey(subject, id).await? {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        self.factors.bump_epoch(subject).await?;
        self.emit(EventKind::Removed, method, subject, None);
        self.notify(NoticeKind::FactorRemoved, method, subject, None);
        self.removed(subject).await?;
        self.changed(subject).await?;
        Ok(())
    }

    /// See [`passkey_method`](Engine::passkey_method).
    pub(crate) async fn passkey_method_dyn(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<Option<Method>, ChallengeError> {
        let (service, store) = self.passkey_support()?;
        Ok(store
            .passkeys(subject)
            .await?
            .iter()
            .find(|p| p.id() == id)
            .map(|p| service.method_of(p)))
    }
}

/// Passkeys (feature `passkey`): only with a factor store that keeps them.
impl<F: crate::PasskeyStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Offers passkeys for `config`'s relying party, checked now: a bad rp
    /// id or origin is an error at start-up, not at the first ceremony.
    /// The factor store must keep passkeys ([`PasskeyStore`](crate::PasskeyStore)).
    pub fn with_passkeys(
        mut self,
        config: crate::passkey::PasskeyConfig,
    ) -> Result<Self, ChallengeError> {
        self.passkeys = Some(PasskeySupport {
            service: Arc::new(config.build()?),
            store: as_passkey_store::<F>,
        });
        Ok(self)
    }

    /// Starts registering a passkey: the options for
    /// `navigator.credentials.create()`, and the ceremony id to finish with.
    /// Credentials already registered are excluded. Starts are counted
    /// ([`AttemptLimits::ceremony_starts`]).
    pub async fn start_passkey_registration(
        &self,
        subject: &Subject,
        user_name: &str,
    ) -> Result<(String, webauthn_rs::prelude::CreationChallengeResponse), ChallengeError> {
        self.start_passkey_registration_dyn(subject, user_name)
            .await
    }

    /// Finishes a registration with the browser's answer and stores the
    /// passkey under `name`. A credential id already registered (to anyone)
    /// is refused.
    pub async fn finish_passkey_registration(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<(), ChallengeError> {
        self.finish_passkey_registration_dyn(attempt, ceremony, response, name)
            .await
    }

    /// Starts a passkey step-up: the options for `navigator.credentials.get()`
    /// (limited to this subject's credentials, user verification required)
    /// and the ceremony id to finish with. Starts are counted
    /// ([`AttemptLimits::ceremony_starts`]).
    pub async fn start_passkey_step_up(
        &self,
        attempt: Attempt<'_>,
    ) -> Result<(String, webauthn_rs::prelude::RequestChallengeResponse), ChallengeError> {
        self.start_passkey_step_up_dyn(attempt).await
    }

    /// Steps up with the browser's passkey assertion for `ceremony`: it
    /// proves [`Method::Passkey`] — or [`Method::DeviceBoundPasskey`] for a
    /// passkey that says it is device-bound, only with
    /// [`PasskeyConfig::trust_unattested_device_binding`](crate::PasskeyConfig::trust_unattested_device_binding).
    pub async fn step_up_passkey(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
    ) -> Result<IssuedToken, ChallengeError> {
        self.step_up_passkey_dyn(attempt, ceremony, response).await
    }

    /// The subject's passkeys, in registration order.
    pub async fn passkeys(&self, subject: &Subject) -> Result<Vec<StoredPasskey>, ChallengeError> {
        Ok(crate::PasskeyStore::passkeys(&self.factors, subject).await?)
    }

    /// Renames the subject's passkey with credential id `id`.
    pub async fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> Result<(), ChallengeError> {
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if self.factors.rename_passkey(subject, id, &name).await? {
            Ok(())
        } else {
            Err(ChallengeError::NotEnrolled(Method::Passkey))
        }
    }

    /// Removes the subject's passkey with credential id `id`, bumps the
    /// subject's epoch (outstanding assurance ends) and notifies. No proof
    /// is checked here: the routes check one first (see
    /// [`authorize_change`](Engine::authorize_change)); call this directly
    /// only from your own support tooling, after your own checks.
    pub async fn remove_passkey(&self, subject: &Subject, id: &[u8]) -> Result<(), ChallengeError> {
        self.remove_passkey_dyn(subject, id).await
    }

    /// The method the subject's passkey `id` proves here, or `None` when the
    /// subject has no passkey with that credential id.
    pub async fn passkey_method(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<Option<Method>, ChallengeError> {
        self.passkey_method_dyn(subject, id).await
    }
}
