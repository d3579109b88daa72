//! Passkeys (WebAuthn) through `webauthn-rs`: registration and step-up
//! assertions with user verification required, ceremony state kept only in
//! this process, used once, bound to the subject and session, and expiring;
//! at most a few per subject and a bounded number in all.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use stepup_core::{Method, Timestamp};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::error::{ChallengeError, StoreError, no_randomness};

pub use stepup_store::StoredPasskey;

/// Where passkeys are valid: the relying-party id (your registrable domain,
/// `bank.example`), the origins pages run on, and the name shown to users.
///
/// Logging: stepup's own events never carry credential material, but
/// `webauthn-rs` logs whole ceremonies (challenges, credentials,
/// attestations) at `debug` and `trace` under its `webauthn_rs*` targets.
/// Keep those targets at `info` or above in production.
#[derive(Clone, Debug)]
pub struct PasskeyConfig {
    rp_id: String,
    origins: Vec<String>,
    rp_name: String,
    ceremony_ttl: Duration,
    max_ceremonies: usize,
    trust_device_binding: bool,
}

/// Ceremonies one subject may have in flight: a new one replaces the oldest.
const PER_SUBJECT: usize = 3;

impl PasskeyConfig {
    /// Passkeys for `rp_id`, used from `origin` (`https://bank.example`).
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> PasskeyConfig {
        PasskeyConfig {
            rp_id: rp_id.to_owned(),
            origins: vec![origin.to_owned()],
            rp_name: rp_name.to_owned(),
            ceremony_ttl: Duration::from_secs(300),
            max_ceremonies: 10_000,
            trust_device_binding: false,
        }
    }

    /// **Risky.** Believes what an authenticator says at registration about
    /// being bound to its device (not backup-eligible): such a passkey then
    /// proves [`Method::DeviceBoundPasskey`] (`amr` `hwk`, level 3 in the
    /// NIST table). Registrations are not attested, so the claim is the
    /// authenticator's own: software can make it, and whoever can register
    /// a passkey (a phished TOTP code is enough to add one) can then reach
    /// level 3 — and, being stronger than the user's other factors, block
    /// the user from changing them until an account recovery. Without this,
    /// every passkey proves [`Method::Passkey`] (`amr` `swk`, level 2).
    /// Turn it on only where registering a passkey already needs a strong
    /// proof, or the authenticators are your own (managed security keys).
    pub fn trust_unattested_device_binding(mut self) -> Self {
        self.trust_device_binding = true;
        self
    }

    /// How many ceremonies may be in flight in this process (default
    /// 10,000, at least 1): past it, starts are refused with
    /// [`ChallengeError::Busy`] (a `503`) until some finish or expire. Each
    /// subject has at most 3; a fourth replaces its oldest.
    pub fn with_ceremony_cap(mut self, max: usize) -> Self {
        self.max_ceremonies = max.max(1);
        self
    }

    /// Also accepts `origin` (a second host or port under the same rp id).
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origins.push(origin.to_owned());
        self
    }

    /// How long a started ceremony may be finished (default 300 s, at most 600).
    pub fn with_ceremony_timeout(mut self, ttl: Duration) -> Self {
        self.ceremony_ttl = ttl.clamp(Duration::from_secs(30), Duration::from_secs(600));
        self
    }

    /// Checks the configuration and builds the verifier: a clear error for
    /// an rp id that is not a domain of every origin, or an origin that is
    /// not a URL.
    pub(crate) fn build(&self) -> Result<Passkeys, ChallengeError> {
        let mut origins = self.origins.iter();
        let first = origins
            .next()
            .ok_or_else(|| ChallengeError::PasskeyConfig("no origin configured".into()))?;
        let url = |o: &str| {
            Url::parse(o).map_err(|e| {
                ChallengeError::PasskeyConfig(format!("origin {o:?} is not a URL: {e}"))
            })
        };
        let first_url = url(first)?;
        let others = origins.map(|o| url(o)).collect::<Result<Vec<_>, _>>()?;
        let mut builder = WebauthnBuilder::new(&self.rp_id, &first_url)
            .map_err(|e| {
                ChallengeError::PasskeyConfig(format!(
                    "rp id {:?} does not fit origin {first:?}: {e}",
                    self.rp_id
                ))
            })?
            .rp_name(&self.rp_name);
        for o in &others {
            builder = builder.append_allowed_origin(o);
        }
        let webauthn = builder
            .build()
            .map_err(|e| ChallengeError::PasskeyConfig(e.to_string()))?;
        Ok(Passkeys {
            webauthn,
            ceremonies: Mutex::default(),
            ttl: self.ceremony_ttl,
            max: self.max_ceremonies,
            trust_device_binding: self.trust_device_binding,
        })
    }
}

enum State {
    Registration(Box<PasskeyRegistration>),
    Authentication(Box<PasskeyAuthentication>),
}

struct Ceremony {
    state: State,
    subject: String,
    binding: [u8; 32],
    expires: Timestamp,
}

/// The ceremonies in flight: by id, in expiry order (the TTL is fixed, so
/// that is start order) and per subject, so expiring and capping never
/// scan the whole map.
#[derive(Default)]
struct Ceremonies {
    by_id: HashMap<String, Ceremony>,
    order: VecDeque<(Timestamp, String)>,
    per_subject: HashMap<String, VecDeque<String>>,
}

impl Ceremonies {
    fn remove(&mut self, id: &str) -> Option<Ceremony> {
        let ceremony = self.by_id.remove(id)?;
        if let Some(list) = self.per_subject.get_mut(&ceremony.subject) {
            list.retain(|other| other != id);
            if list.is_empty() {
                self.per_subject.remove(&ceremony.subject);
            }
        }
        Some(ceremony)
    }

    /// Drops expired ceremonies from the front of the expiry order.
    fn expire(&mut self, now: Timestamp) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.remove(&id);
            }
        }
        // Ids taken before expiring stay in the order until their time; keep
        // the queue within a small multiple of the live set.
        if self.order.len() > 64 && self.order.len() > 4 * self.by_id.len() {
            let live = &self.by_id;
            self.order.retain(|(_, id)| live.contains_key(id));
        }
    }
}

/// The verifier and the ceremonies in flight.
pub(crate) struct Passkeys {
    webauthn: Webauthn,
    ceremonies: Mutex<Ceremonies>,
    ttl: Duration,
    max: usize,
    trust_device_binding: bool,
}

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("ttl", &self.ttl)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// A step-up ceremony taken from the map, to verify.
pub(crate) struct Authentication(Box<PasskeyAuthentication>);

/// Who a ceremony belongs to: the store name of its subject, and the keyed
/// digest of subject and session it is bound to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner<'a> {
    pub(crate) key: &'a str,
    pub(crate) binding: [u8; 32],
    /// The WebAuthn user handle (a keyed digest of the id).
    pub(crate) handle: [u8; 16],
}

fn new_id() -> Result<String, StoreError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw).map_err(no_randomness)?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

impl Passkeys {
    fn put(
        &self,
        owner: Owner<'_>,
        state: State,
        now: Timestamp,
    ) -> Result<String, ChallengeError> {
        let id = new_id()?;
        let mut all = self
            .ceremonies
            .lock()
            .map_err(|_| StoreError::new("state", "the ceremony map's lock is poisoned"))?;
        all.expire(now);
        let oldest = all
            .per_subject
            .get(owner.key)
            .filter(|list| list.len() >= PER_SUBJECT)
            .and_then(|list| list.front().cloned());
        if let Some(oldest) = oldest {
            all.remove(&oldest);
        }
        if all.by_id.len() >= self.max {
            return Err(ChallengeError::Busy);
        }
        let expires = now + self.ttl;
        all.by_id.insert(
            id.clone(),
            Ceremony {
                state,
                subject: owner.key.to_owned(),
                binding: owner.binding,
                expires,
            },
        );
        all.order.push_back((expires, id.clone()));
        all.per_subject
            .entry(owner.key.to_owned())
            .or_default()
            .push_back(id.clone());
        Ok(id)
    }

    /// Takes a ceremony once; refuses another subject's or session's, and
    /// expired ones (which are gone either way).
    fn take(&self, id: &str, owner: Owner<'_>, now: Timestamp) -> Result<State, ChallengeError> {
        let mut all = self
            .ceremonies
            .lock()
            .map_err(|_| StoreError::new("state", "the ceremony map's lock is poisoned"))?;
        let ceremony = all.remove(id).ok_or(ChallengeError::NoPendingCeremony)?;
        let same_owner = stepup_core::ct::eq_as(
            stepup_core::ct::Comparison::SessionDigest,
            &ceremony.binding,
            &owner.binding,
        );
        if ceremony.expires <= now || !same_owner {
            return Err(ChallengeError::NoPendingCeremony);
        }
        Ok(ceremony.state)
    }

    /// Takes a step-up ceremony once (before the attempt is counted: a
    /// request without a pending ceremony is no guess).
    pub(crate) fn take_authentication(
        &self,
        id: &str,
        owner: Owner<'_>,
        now: Timestamp,
    ) -> Result<Authentication, ChallengeError> {
        match self.take(id, owner, now)? {
            State::Authentication(state) => Ok(Authentication(state)),
            State::Registration(_) => Err(ChallengeError::NoPendingCeremony),
        }
    }

    /// The method a step-up with `passkey` proves here.
    pub(crate) fn method_of(&self, passkey: &StoredPasskey) -> Method {
        if self.trust_device_binding {
            passkey.claimed_method()
        } else {
            Method::Passkey
        }
    }

    /// How many ceremonies are in flight (for tests of the caps).
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.ceremonies.lock().map(|c| c.by_id.len()).unwrap_or(0)
    }

    pub(crate) fn start_registration(
        &self,
        owner: Owner<'_>,
        user_name: &str,
        existing: &[StoredPasskey],
        now: Timestamp,
    ) -> Result<(String, CreationChallengeResponse), ChallengeError> {
        let exclude = existing
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(
                Uuid::from_bytes(owner.handle),
                user_name,
                user_name,
                Some(exclude),
            )
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        let id = self.put(owner, State::Registration(Box::new(state)), now)?;
        Ok((id, challenge))
    }

    pub(crate) fn finish_registration(
        &self,
        owner: Owner<'_>,
        ceremony: &str,
        response: &RegisterPublicKeyCredential,
        now: Timestamp,
    ) -> Result<Passkey, ChallengeError> {
        match self.take(ceremony, owner, now)? {
            State::Registration(state) => self
                .webauthn
                .finish_passkey_registration(response, &state)
                .map_err(|_| ChallengeError::PasskeyRejected),
            State::Authentication(_) => Err(ChallengeError::NoPendingCeremony),
        }
    }

    pub(crate) fn start_authentication(
        &self,
        owner: Owner<'_>,
        credentials: &[StoredPasskey],
        now: Timestamp,
    ) -> Result<(String, RequestChallengeResponse), ChallengeError> {
        let list: Vec<Passkey> = credentials.iter().map(|p| p.passkey.clone()).collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_authentication(&list)
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        let id = self.put(owner, State::Authentication(Box::new(state)), now)?;
        Ok((id, challenge))
    }

    /// Verifies an assertion; returns the stored passkey it used, updated
    /// with the new counter / backup state (for the caller to save), or a
    /// refusal. A counter that did not advance is refused as a possibly
    /// cloned key.
    pub(crate) fn finish_authentication(
        &self,
        ceremony: Authentication,
        response: &PublicKeyCredential,
        credentials: Vec<StoredPasskey>,
    ) -> Result<StoredPasskey, ChallengeError> {
        let state = ceremony.0;
        let result = self
            .webauthn
            .finish_passkey_authentication(response, &state)
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        if !result.user_verified() {
            return Err(ChallengeError::PasskeyRejected);
        }
        let mut stored = credentials
            .into_iter()
            .find(|p| p.passkey.cred_id() == result.cred_id())
            .ok_or(ChallengeError::PasskeyRejected)?;
        stored.passkey.update_credential(&result);
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use stepup_core::Subject;

    fn service(cap: usize) -> Passkeys {
        PasskeyConfig::new("localhost", "http://localhost:3000", "test")
            .with_ceremony_cap(cap)
            .build()
            .unwrap()
    }

    fn owner<'a>(_subject: &'a Subject, key: &'a str) -> Owner<'a> {
        Owner {
            key,
            binding: [key.len() as u8; 32],
            handle: [1u8; 16],
        }
    }

    fn start(p: &Passkeys, who: &str, now: Timestamp) -> Result<String, ChallengeError> {
        let subject = Subject::new(who.to_owned());
        p.start_registration(owner(&subject, who), who, &[], now)
            .map(|(id, _)| id)
    }

    #[test]
    fn a_subject_has_at_most_three_ceremonies_newest_replacing_oldest() {
        let p = service(100);
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        let ids: Vec<String> = (0..5).map(|_| start(&p, "alice", now).unwrap()).collect();
        assert_eq!(p.in_flight(), 3);
        let alice = Subject::new("alice");
        assert!(matches!(
            p.take(&ids[0], owner(&alice, "alice"), now),
            Err(ChallengeError::NoPendingCeremony)
        ));
        assert!(matches!(
            p.take(&ids[4], owner(&alice, "alice"), now),
            Ok(State::Registration(_))
        ));
    }

    #[test]
    fn the_total_is_capped_with_a_clear_refusal_and_expiry_frees_room() {
        let p = service(4);
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        for who in ["a", "b", "c", "d"] {
            start(&p, who, now).unwrap();
        }
        assert!(matches!(start(&p, "e", now), Err(ChallengeError::Busy)));
        // After the TTL the old ones expire without a full scan.
        let later = now + Duration::from_secs(301);
        start(&p, "e", later).unwrap();
        assert_eq!(p.in_flight(), 1);
    }
}
