//! What a verified token says about the user: which methods were proven when.

use std::fmt;
use std::time::Duration;

use crate::challenge::Challenge;
use crate::key::KeyId;
use crate::level::{LevelTable, SharedLevels};
use crate::method::Method;
use crate::policy::Policy;
use crate::subject::Subject;
use crate::time::Timestamp;
use crate::token::CONTEXT_LEN;

/// The most proofs (distinct methods) one token carries.
pub const MAX_PROOFS: usize = 8;

/// One method proven at one time.
///
/// ```
/// use stepup_core::{Method, Proof, Timestamp};
/// let p = Proof::new(Method::Totp, Timestamp::from_unix_seconds(1_700_000_000));
/// assert_eq!(p.method(), Method::Totp);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Proof {
    method: Method,
    at: Timestamp,
}

impl Proof {
    /// `method` was proven at `at`.
    pub fn new(method: Method, at: Timestamp) -> Proof {
        Proof { method, at }
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// When it was proven.
    pub fn at(&self) -> Timestamp {
        self.at
    }
}

/// Method equality that decides built-in methods by their one-byte code and
/// compares names only for two custom methods.
fn same_method(a: &Method, b: &Method) -> bool {
    match (a, b) {
        (Method::Custom(x), Method::Custom(y)) => x.as_bytes() == y.as_bytes(),
        _ => a.wire_code() == b.wire_code(),
    }
}

/// A fixed-capacity list of proofs, one per method, kept inline so that
/// verifying a token never allocates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proofs {
    items: [Proof; MAX_PROOFS],
    len: usize,
}

impl Proofs {
    pub(crate) const fn new() -> Proofs {
        Proofs {
            items: [Proof {
                method: Method::Password,
                at: Timestamp::UNIX_EPOCH,
            }; MAX_PROOFS],
            len: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[Proof] {
        &self.items[..self.len]
    }

    /// Records `proof`, replacing an older proof of the same method. When
    /// full, the oldest proof makes room. Returns `false` only if `proof` is
    /// older than one already held for its method (nothing changes then).
    pub(crate) fn record(&mut self, proof: Proof) -> bool {
        if let Some(existing) = self.items[..self.len]
            .iter_mut()
            .find(|p| p.method == proof.method)
        {
            if existing.at > proof.at {
                return false;
            }
            existing.at = proof.at;
            return true;
        }
        if self.len == MAX_PROOFS {
            let oldest = self
                .items
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.at)
                .map_or(0, |(i, _)| i);
            self.items[oldest] = proof;
        } else {
            self.items[self.len] = proof;
            self.len += 1;
        }
        true
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Appends `proof` if its method is not held yet and there is room.
    pub(crate) fn push_new(&mut self, proof: Proof) -> bool {
        let len = self.len;
        if len >= MAX_PROOFS
            || self.items[..len]
                .iter()
                .any(|p| same_method(&p.method, &proof.method))
        {
            return false;
        }
        self.items[len] = proof;
        self.len = len + 1;
        true
    }

    /// Keeps only the proofs for which `keep` holds.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Proof) -> bool) {
        let mut n = 0;
        for i in 0..self.len {
            if keep(&self.items[i]) {
                self.items[n] = self.items[i];
                n += 1;
            }
        }
        self.len = n;
    }
}

impl fmt::Debug for Proofs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// What a verified assurance token says: who, which methods were proven and
/// when, the level those methods reach, and the token's issue and expiry
/// times.
///
/// Handlers receive it from the adapter (an extractor) after the gate allowed
/// the request. The level is computed from every proof in the token; a route's
/// [`Policy`] may ask for fresher proofs than that, which
/// [`require`](Assurance::require) checks.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Gate, Issuer, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, Timestamp};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let issuer = Issuer::new(&ring);
/// let gate = Gate::new(&ring);
/// let user = Subject::new("user-1");
/// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
///
/// let token = issuer.issue(&user, Proof::new(Method::Totp, t0), None, t0)?;
/// let now = t0 + Duration::from_secs(120);
/// let assurance = gate.verify(&user, Some(token.value()), now).unwrap();
///
/// assert_eq!(assurance.level(), 2);
/// assert_eq!(assurance.acr(), Some("aal2"));
/// assert_eq!(assurance.amr(), ["otp"]);
/// assert_eq!(assurance.age_of(Method::Totp, now), Some(Duration::from_secs(120)));
/// assert!(assurance.require(&Policy::method(Method::Totp).max_age(Duration::from_secs(300)), now).is_ok());
/// assert!(assurance.require(&Policy::method(Method::Totp).max_age(Duration::from_secs(60)), now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Assurance {
    subject: Subject,
    proofs: Proofs,
    issued_at: Timestamp,
    expires_at: Timestamp,
    levels: SharedLevels,
    key_id: Option<KeyId>,
    context: Option<[u8; CONTEXT_LEN]>,
}

impl Assurance {
    pub(crate) fn new(
        subject: Subject,
        proofs: Proofs,
        issued_at: Timestamp,
        expires_at: Timestamp,
        levels: SharedLevels,
    ) -> Assurance {
        Assurance {
            subject,
            proofs,
            issued_at,
            expires_at,
            levels,
            key_id: None,
            context: None,
        }
    }

    pub(crate) fn parts_mut(&mut self) -> (&Subject, &mut Proofs) {
        (&self.subject, &mut self.proofs)
    }

    pub(crate) fn set_token_facts(
        &mut self,
        issued_at: Timestamp,
        expires_at: Timestamp,
        key_id: Option<KeyId>,
        context: Option<[u8; CONTEXT_LEN]>,
    ) {
        self.issued_at = issued_at;
        self.expires_at = expires_at;
        self.key_id = key_id;
        self.context = context;
    }

    /// The key that signed the token and the client-context digest it
    /// records, for [`Gate::same_context`](crate::Gate::same_context).
    pub(crate) fn context_facts(&self) -> (Option<KeyId>, Option<[u8; CONTEXT_LEN]>) {
        (self.key_id, self.context)
    }

    /// Whether the token was issued in a recorded client context (see
    /// [`Issuer::issue_in_context`](crate::Issuer::issue_in_context)).
    pub fn has_client_context(&self) -> bool {
        self.context.is_some()
    }

    /// The subject the token was verified for.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The highest level the proven methods reach (0: none), counting every
    /// proof the token holds. (Computed on demand: the gate's hot path does
    /// not pay for it.)
    pub fn level(&self) -> u8 {
        let mut methods = [Method::Password; MAX_PROOFS];
        for (slot, p) in methods.iter_mut().zip(self.proofs.as_slice()) {
            *slot = p.method;
        }
        self.levels.level_of(&methods[..self.proofs.len])
    }

    /// The `acr` value of [`level`](Assurance::level), if a level is reached.
    pub fn acr(&self) -> Option<&str> {
        self.levels.acr(self.level())
    }

    /// The RFC 8176 `amr` values of the proven methods, without repeats.
    pub fn amr(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for p in self.proofs.as_slice() {
            for v in self.levels.amr_of(p.method) {
                if !out.contains(v) {
                    out.push(v);
                }
            }
        }
        out
    }

    /// The proven methods.
    pub fn methods(&self) -> impl ExactSizeIterator<Item = Method> + '_ {
        self.proofs.as_slice().iter().map(|p| p.method)
    }

    /// Every proof: method and time.
    pub fn proofs(&self) -> &[Proof] {
        self.proofs.as_slice()
    }

    /// When `method` was last proven: the newest proof that
    /// [satisfies](Method::satisfies) it, so asking for
    /// [`Passkey`](Method::Passkey) gives the newest proof of either kind of
    /// passkey.
    ///
    /// ```
    /// use stepup_core::{Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp};
    ///
    /// let issuer = Issuer::new(&KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let user = Subject::new("user-1");
    /// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
    /// let token = issuer.issue(&user, Proof::new(Method::DeviceBoundPasskey, t0), None, t0)?;
    /// let a = token.assurance();
    /// assert_eq!(a.proven_at(Method::Passkey), Some(t0));
    /// assert_eq!(a.proven_at(Method::DeviceBoundPasskey), Some(t0));
    /// assert_eq!(a.proven_at(Method::Totp), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn proven_at(&self, method: Method) -> Option<Timestamp> {
        self.proofs
            .as_slice()
            .iter()
            .filter(|p| p.method.satisfies(&method))
            .map(|p| p.at)
            .max()
    }

    /// How long ago `method` was last proven, as [`proven_at`](Assurance::proven_at)
    /// counts it (zero for a proof dated slightly ahead of `now` within the
    /// clock skew).
    pub fn age_of(&self, method: Method, now: Timestamp) -> Option<Duration> {
        self.proven_at(method).map(|at| now.duration_since(at))
    }

    /// When the token was issued.
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }

    /// When the token stops being accepted.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// The level table the level was computed with.
    pub fn level_table(&self) -> &LevelTable {
        &self.levels
    }

    /// Whether this assurance satisfies `policy` at `now`.
    pub fn satisfies(&self, policy: &Policy, now: Timestamp) -> bool {
        policy
            .met_by(self.proofs.as_slice(), &self.levels, now, false)
            .is_ok()
    }

    /// Checks `policy` at `now` for decisions a handler makes itself ("a
    /// transfer over 10 000 needs a passkey"): the same challenge the gate
    /// would give if the route had that policy.
    ///
    /// A [`Bound`](crate::Requirement::Bound) term is never met here: a
    /// bound route's grant is taken by the layer, which then calls
    /// [`require_granted`](Assurance::require_granted).
    pub fn require(&self, policy: &Policy, now: Timestamp) -> Result<(), Challenge> {
        self.require_granted(policy, now, false)
    }

    /// [`require`](Assurance::require), with `granted` saying whether a
    /// single-use grant for the request's exact action was taken (what
    /// meets a [`Bound`](crate::Requirement::Bound) term). When only the
    /// grant is missing the challenge's reason is
    /// [`Unconfirmed`](crate::ChallengeReason::Unconfirmed).
    pub fn require_granted(
        &self,
        policy: &Policy,
        now: Timestamp,
        granted: bool,
    ) -> Result<(), Challenge> {
        self.require_with(policy, now, crate::Facts::default().with_granted(granted))
    }

    /// [`require`](Assurance::require) with every fact of the request (a
    /// grant taken, the same client context: see [`Facts`](crate::Facts)).
    pub fn require_with(
        &self,
        policy: &Policy,
        now: Timestamp,
        facts: crate::Facts,
    ) -> Result<(), Challenge> {
        policy
            .met_with(self.proofs.as_slice(), &self.levels, now, facts)
            .map_err(|reason| Challenge::new(reason, policy, &self.levels))
    }
}

impl fmt::Debug for Assurance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assurance")
            .field("subject", &self.subject)
            .field("level", &self.level())
            .field("proofs", &self.proofs)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_unix_seconds(s)
    }

    #[test]
    fn record_replaces_same_method_and_keeps_newest() {
        let mut p = Proofs::new();
        assert!(p.record(Proof::new(Method::Totp, t(10))));
        assert!(p.record(Proof::new(Method::Totp, t(20))));
        assert!(!p.record(Proof::new(Method::Totp, t(15))));
        assert_eq!(p.as_slice(), [Proof::new(Method::Totp, t(20))]);
    }

    #[test]
    fn record_evicts_oldest_when_full() {
        let mut p = Proofs::new();
        for i in 0..MAX_PROOFS {
            let m = Method::custom(&format!("m{i}")).unwrap();
            p.record(Proof::new(m, t(100 + i as u64)));
        }
        p.record(Proof::new(Method::Passkey, t(500)));
        assert_eq!(p.as_slice().len(), MAX_PROOFS);
        let m0 = Method::custom("m0").unwrap();
        assert!(p.as_slice().iter().all(|x| x.method() != m0));
        assert!(p.as_slice().iter().any(|x| x.method() == Method::Passkey));
    }
}
