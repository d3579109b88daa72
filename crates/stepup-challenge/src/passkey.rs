//! Passkeys (WebAuthn) through `webauthn-rs`: registration and step-up
//! assertions with user verification required. The ceremony state is kept
//! by the engine, sealed, in the state store (shared by every instance):
//! used once, bound to the subject and session, and expiring; at most a
//! few per subject and a bounded number in all.

use std::fmt;
use std::time::Duration;

use stepup_core::Method;
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid,
    Webauthn, WebauthnBuilder,
};

use crate::error::ChallengeError;

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
    trust_device_binding: bool,
}

impl PasskeyConfig {
    /// Passkeys for `rp_id`, used from `origin` (`https://bank.example`).
    pub fn new(rp_id: &str, origin: &str, rp_name: &str) -> PasskeyConfig {
        PasskeyConfig {
            rp_id: rp_id.to_owned(),
            origins: vec![origin.to_owned()],
            rp_name: rp_name.to_owned(),
            ceremony_ttl: Duration::from_secs(300),
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
            ttl: self.ceremony_ttl,
            trust_device_binding: self.trust_device_binding,
        })
    }
}

/// The verifier: webauthn-rs under the configuration. It holds no
/// ceremony: the engine keeps each one, sealed, in the state store, so it
/// may finish on any instance (see `engine/passkeys.rs`).
pub(crate) struct Passkeys {
    webauthn: Webauthn,
    pub(crate) ttl: Duration,
    trust_device_binding: bool,
}

impl fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passkeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A ceremony's state between its start and its finish, as the engine
/// keeps it (serialised, sealed) in the state store: webauthn-rs's state,
/// which holds the challenge and the credentials allowed. Never sent to
/// the browser.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) enum CeremonyState {
    /// A registration in flight.
    #[serde(rename = "r")]
    Registration(Box<PasskeyRegistration>),
    /// A step-up (assertion) in flight.
    #[serde(rename = "a")]
    Authentication(Box<PasskeyAuthentication>),
}

impl Passkeys {
    /// The method a step-up with `passkey` proves here.
    pub(crate) fn method_of(&self, passkey: &StoredPasskey) -> Method {
        if self.trust_device_binding {
            passkey.claimed_method()
        } else {
            Method::Passkey
        }
    }

    /// Starts a registration for the user handle `handle`, excluding the
    /// credentials in `existing`: the browser's options, and the state to
    /// keep until the finish.
    pub(crate) fn start_registration(
        &self,
        handle: [u8; 16],
        user_name: &str,
        existing: &[StoredPasskey],
    ) -> Result<(CreationChallengeResponse, CeremonyState), ChallengeError> {
        let exclude = existing
            .iter()
            .map(|p| p.passkey.cred_id().clone())
            .collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(
                Uuid::from_bytes(handle),
                user_name,
                user_name,
                Some(exclude),
            )
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        Ok((challenge, CeremonyState::Registration(Box::new(state))))
    }

    /// Finishes a registration with the browser's answer.
    pub(crate) fn finish_registration(
        &self,
        state: CeremonyState,
        response: &RegisterPublicKeyCredential,
    ) -> Result<Passkey, ChallengeError> {
        match state {
            CeremonyState::Registration(state) => self
                .webauthn
                .finish_passkey_registration(response, &state)
                .map_err(|_| ChallengeError::PasskeyRejected),
            CeremonyState::Authentication(_) => Err(ChallengeError::NoPendingCeremony),
        }
    }

    /// Starts a step-up limited to `credentials`, user verification
    /// required: the browser's options, and the state to keep.
    pub(crate) fn start_authentication(
        &self,
        credentials: &[StoredPasskey],
    ) -> Result<(RequestChallengeResponse, CeremonyState), ChallengeError> {
        let list: Vec<Passkey> = credentials.iter().map(|p| p.passkey.clone()).collect();
        let (challenge, state) = self
            .webauthn
            .start_passkey_authentication(&list)
            .map_err(|_| ChallengeError::PasskeyRejected)?;
        Ok((challenge, CeremonyState::Authentication(Box::new(state))))
    }

    /// Verifies an assertion; returns the stored passkey it used, updated
    /// with the new counter / backup state (for the caller to save), or a
    /// refusal. A counter that did not advance is refused as a possibly
    /// cloned key.
    pub(crate) fn finish_authentication(
        &self,
        state: CeremonyState,
        response: &PublicKeyCredential,
        credentials: Vec<StoredPasskey>,
    ) -> Result<StoredPasskey, ChallengeError> {
        let CeremonyState::Authentication(state) = state else {
            return Err(ChallengeError::NoPendingCeremony);
        };
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
