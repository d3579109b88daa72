//! Passkeys (WebAuthn) through `webauthn-rs`: registration and step-up
//! assertions with user verification required, ceremony state kept only in
//! this process, used once, bound to the subject and session, and expiring.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};
use stepup_core::{Subject, Timestamp};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::error::{ChallengeError, StoreError};

/// A passkey registered to a subject, with the name the user gave it.
#[derive(Clone, Debug)]
pub struct StoredPasskey {
    /// The user's name for it ("work laptop").
    pub name: String,
    /// The credential (public key, id, counter, backup state).
    pub passkey: Passkey,
}

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
}

impl PasskeyConfig {
    /// Passkeys for `rp_id`, used from `origin` (`https://bank.example`).
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> PasskeyConfig {
        PasskeyConfig {
            rp_id: rp_id.to_owned(),
            origins: vec![origin.to_owned()],
            rp_name: rp_name.to_owned(),
            ceremony_ttl: Duration::from_secs(300),
        }
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
        })
    }
}

enum State {
    Registration(Box<PasskeyRegistration>),
    Authentication(Box<PasskeyAuthentication>),
}

struct Ceremony {
    state: State,
    binding: [u8; 32],
    expires: Timestamp,
}

/// The verifier and the ceremonies in flight.
pub(crate) struct Passkeys {
    webauthn: Webauthn,
    ceremonies: Mutex<HashMap<String, Ceremony>>,
    ttl: Duration,
}

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn binding(subject: &Subject) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(subject.id().as_bytes());
    h.update([0]);
    h.update(subject.session().unwrap_or("").as_bytes());
    h.finalize().into()
}

/// A stable WebAuthn user handle for a subject that reveals nothing of its id.
fn user_handle(subject: &Subject) -> Uuid {
    let digest = Sha256::digest(subject.id().as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

fn new_id() -> Result<String, StoreError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|e| StoreError::new("random", format!("no randomness available: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

impl Passkeys {
    fn put(
        &self,
        subject: &Subject,
        state: State,
        now: Timestamp,
    ) -> Result<String, ChallengeError> {
        let id = new_id()?;
        let mut map = self
            .ceremonies
            .lock()
            .map_err(|_| StoreError::new("state", "the ceremony map's lock is poisoned"))?;
        map.retain(|_, c| c.expires > now);
        map.insert(
            id.clone(),
            Ceremony {
                state,
                binding: binding(subject),
                expires: now + self.ttl,
            },
        );
        Ok(id)
    }

    /// Takes a ceremony once; refuses another subject's or session's, and
    /// expired ones (which are gone either way).
    fn take(&self, id: &str, subject: &Subject, now: Timestamp) -> Result<State, ChallengeError> {
        let mut map = self
            .ceremonies
            .lock()
            .map_err(|_| StoreError::new("state", "the ceremony map's lock is poisoned"))?;
        let ceremony = map.remove(id).ok_or(ChallengeError::NoPendingCeremony)?;
        if ceremony.expires <= now || ceremony.binding != binding(subject) {
            return Err(ChallengeError::NoPendingCeremony);
        }
        Ok(ceremony.state)
    }

    pub(crate) fn start_registration(
        &self,
        subject: &Subject,
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
            .start_passkey_registration(user_handle(subject), user_name, user_name, Some(exclude))
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        let id = self.put(subject, State::Registration(Box::new(state)), now)?;
        Ok((id, challenge))
    }

    pub(crate) fn finish_registration(
        &self,
        subject: &Subject,
        ceremony: &str,
        response: &RegisterPublicKeyCredential,
        now: Timestamp,
    ) -> Result<Passkey, ChallengeError> {
        match self.take(ceremony, subject, now)? {
            State::Registration(state) => self
                .webauthn
                .finish_passkey_registration(response, &state)
                .map_err(|_| ChallengeError::PasskeyRejected),
            State::Authentication(_) => Err(ChallengeError::NoPendingCeremony),
        }
    }

    pub(crate) fn start_authentication(
        &self,
        subject: &Subject,
        credentials: &[StoredPasskey],
        now: Timestamp,
    ) -> Result<(String, RequestChallengeResponse), ChallengeError> {
        let list: Vec<Passkey> = credentials.iter().map(|p| p.passkey.clone()).collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_authentication(&list)
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        let id = self.put(subject, State::Authentication(Box::new(state)), now)?;
        Ok((id, challenge))
    }

    /// Verifies an assertion; returns the stored passkeys updated with the
    /// new counter / backup state (for the caller to save), or a refusal.
    /// A counter that did not advance is refused as a possibly cloned key.
    pub(crate) fn finish_authentication(
        &self,
        subject: &Subject,
        ceremony: &str,
        response: &PublicKeyCredential,
        mut credentials: Vec<StoredPasskey>,
        now: Timestamp,
    ) -> Result<Vec<StoredPasskey>, ChallengeError> {
        let state = match self.take(ceremony, subject, now)? {
            State::Authentication(state) => state,
            State::Registration(_) => return Err(ChallengeError::NoPendingCeremony),
        };
        let result = self
            .webauthn
            .finish_passkey_authentication(response, &state)
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        if !result.user_verified() {
            return Err(ChallengeError::PasskeyRejected);
        }
        let stored = credentials
            .iter_mut()
            .find(|p| p.passkey.cred_id() == result.cred_id())
            .ok_or(ChallengeError::PasskeyRejected)?;
        stored.passkey.update_credential(&result);
        Ok(credentials)
    }
}
