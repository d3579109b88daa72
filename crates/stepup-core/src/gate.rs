//! The gate: one decision per request, with no I/O and no locks.

use std::sync::Arc;
use std::time::Duration;

use crate::assurance::{Assurance, Proof, Proofs};
use crate::challenge::{Challenge, ChallengeReason};
use crate::config::TokenConfig;
use crate::key::KeyRing;
use crate::level::{LevelTable, SharedLevels};
use crate::policy::Policy;
use crate::subject::Subject;
use crate::time::Timestamp;
use crate::token::{Codec, Rejection};

/// What the gate decided for one request.
#[derive(Debug)]
#[must_use]
// `Allow` is larger than `Challenge`, but boxing it would add an allocation
// to every allowed request; decisions are moved once and dropped.
#[allow(clippy::large_enum_variant)]
pub enum Decision {
    /// The policy is met: hand the assurance to the handler.
    Allow(Assurance),
    /// The policy is not met: ask the user to step up.
    Challenge(Challenge),
}

/// Verifies assurance tokens and decides, per request, whether a route's
/// [`Policy`] is met.
///
/// The token check costs one HMAC-SHA256 over a couple of hundred bytes and a
/// few comparisons: no I/O, no JSON, no locks, no allocation. Any number of
/// instances decide alike with a shared [`KeyRing`]. Cloning is cheap.
///
/// The checks, in order (each failure is a [`Challenge`] with its reason):
/// a token is present ([`NoAssurance`](ChallengeReason::NoAssurance)); it is
/// at most [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) characters of canonical
/// base64url, a known version and key id, and its MAC verifies for this
/// purpose, subject and session ([`Invalid`](ChallengeReason::Invalid), or
/// [`OtherBinding`](ChallengeReason::OtherBinding) for a genuine token of
/// someone else); it is not dated beyond `now` plus the clock skew
/// (`Invalid`); its epoch is the subject's ([`Revoked`](ChallengeReason::Revoked));
/// `now` is before its expiry ([`Expired`](ChallengeReason::Expired)) — the
/// lifetime signed in the token, capped at the gate's configured
/// [lifetime](crate::TokenConfig::with_lifetime), which also bounds the age
/// of every proof; and
/// the proofs it holds meet the policy at `now`
/// ([`InsufficientLevel`](ChallengeReason::InsufficientLevel),
/// [`MissingMethod`](ChallengeReason::MissingMethod),
/// [`Stale`](ChallengeReason::Stale)).
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{ChallengeReason, Decision, Gate, Issuer, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, Timestamp};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let (issuer, gate) = (Issuer::new(&ring), Gate::new(&ring));
/// let user = Subject::new("user-1").with_session("s-1");
/// let policy = Policy::level(2).max_age(Duration::from_secs(300));
/// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
///
/// // No token yet: challenge.
/// match gate.check(&user, None, &policy, t0) {
///     Decision::Challenge(c) => assert_eq!(c.reason(), ChallengeReason::NoAssurance),
///     Decision::Allow(_) => unreachable!(),
/// }
///
/// // After a TOTP step-up: allowed for five minutes, then challenged as stale.
/// let token = issuer.issue(&user, Proof::new(Method::Totp, t0), None, t0)?;
/// assert!(matches!(gate.check(&user, Some(token.value()), &policy, t0 + Duration::from_secs(300)), Decision::Allow(_)));
/// match gate.check(&user, Some(token.value()), &policy, t0 + Duration::from_secs(301)) {
///     Decision::Challenge(c) => assert_eq!(c.reason(), ChallengeReason::Stale),
///     Decision::Allow(_) => unreachable!(),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Gate {
    codec: Arc<Codec>,
    levels: SharedLevels,
    lifetime: Duration,
    skew: Duration,
}

impl Gate {
    /// A gate with default settings (see [`TokenConfig`]); use
    /// [`TokenConfig::gate`] for others.
    pub fn new(ring: &KeyRing) -> Gate {
        TokenConfig::new(ring.clone()).gate()
    }

    pub(crate) fn from_parts(
        codec: Arc<Codec>,
        levels: SharedLevels,
        lifetime: Duration,
        skew: Duration,
    ) -> Gate {
        Gate {
            codec,
            levels,
            lifetime,
            skew,
        }
    }

    /// Decides whether `subject`, presenting `token`, meets `policy` at `now`.
    ///
    /// Pass the subject by value when you have it (it moves into the
    /// [`Assurance`]); a reference works too and is cloned.
    pub fn check(
        &self,
        subject: impl Into<Subject>,
        token: Option<&str>,
        policy: &Policy,
        now: Timestamp,
    ) -> Decision {
        let outcome = self.verify(subject, token, now).and_then(|assurance| {
            policy
                .met_by(assurance.proofs(), &self.levels, now, false)
                .map(|()| assurance)
        });
        match outcome {
            Ok(assurance) => Decision::Allow(assurance),
            Err(reason) => Decision::Challenge(self.challenge(reason, policy)),
        }
    }

    /// Verifies `token` for `subject` at `now`, without a policy: what an
    /// extractor or a status endpoint needs.
    pub fn verify(
        &self,
        subject: impl Into<Subject>,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<Assurance, ChallengeReason> {
        let token = token.ok_or(ChallengeReason::NoAssurance)?;
        // Built first and filled in place: the proofs are decoded straight
        // into the assurance that is returned, never copied around.
        let mut assurance = Assurance::new(
            subject.into(),
            Proofs::new(),
            Timestamp::UNIX_EPOCH,
            Timestamp::UNIX_EPOCH,
            self.levels.clone(),
        );
        let (subject, proofs) = assurance.parts_mut();
        let claims = self
            .codec
            .open(token, subject, proofs)
            .map_err(|r| match r {
                Rejection::Invalid => ChallengeReason::Invalid,
                Rejection::OtherBinding => ChallengeReason::OtherBinding,
            })?;
        if claims.issued_at > now.saturating_add(self.skew) {
            return Err(ChallengeReason::Invalid);
        }
        if claims.epoch != subject.epoch() {
            return Err(ChallengeReason::Revoked);
        }
        // The lifetime signed in the token counts only up to the configured
        // one: shortening the lifetime after an incident takes effect at
        // once for every token already out there (issue #13, finding 6).
        let lifetime = claims
            .expires_at
            .duration_since(claims.issued_at)
            .min(self.lifetime);
        let expires_at = claims.issued_at.saturating_add(lifetime);
        if now >= expires_at {
            return Err(ChallengeReason::Expired);
        }
        // The lifetime bounds every proof's age, including proofs merged in
        // from earlier tokens, whatever the route's policy says.
        let fresh = |p: &Proof| now.duration_since(p.at()) < lifetime;
        if !proofs.as_slice().iter().all(fresh) {
            proofs.retain(fresh);
            if proofs.as_slice().is_empty() {
                return Err(ChallengeReason::Expired);
            }
        }
        assurance.set_token_facts(
            claims.issued_at,
            expires_at,
            Some(claims.key_id),
            claims.context,
        );
        Ok(assurance)
    }

    /// The challenge for `policy` not being met for `reason`.
    pub fn challenge(&self, reason: ChallengeReason, policy: &Policy) -> Challenge {
        Challenge::new(reason, policy, &self.levels)
    }

    /// Whether `assurance` was issued in the client context `context` (the
    /// same bytes the issuer was given — say an IP prefix and a user agent):
    /// `None` when its token records no context. For contextual policies such
    /// as "a new network or browser since the step-up needs a fresh one".
    ///
    /// Costs one HMAC over `context`; compared in constant time.
    ///
    /// ```
    /// use stepup_core::{Gate, Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp};
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let (issuer, gate) = (Issuer::new(&ring), Gate::new(&ring));
    /// let user = Subject::new("user-1");
    /// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
    /// let context = b"203.0.113.0/24 Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";
    /// let token = issuer.issue_in_context(&user, Proof::new(Method::Totp, t0), None, context, t0)?;
    ///
    /// let assurance = gate.verify(&user, Some(token.value()), t0).unwrap();
    /// assert_eq!(gate.same_context(&assurance, context), Some(true));
    /// assert_eq!(gate.same_context(&assurance, b"198.51.100.0/24 curl/8.5"), Some(false));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn same_context(&self, assurance: &Assurance, context: &[u8]) -> Option<bool> {
        let (key_id, recorded) = assurance.context_facts();
        let recorded = recorded?;
        let digest = self.codec.context_digest(key_id, context)?;
        Some(crate::ct::eq_as(
            crate::ct::Comparison::ContextDigest,
            &digest[..],
            &recorded[..],
        ))
    }

    /// The level table.
    pub fn levels(&self) -> &LevelTable {
        &self.levels
    }

    pub(crate) fn codec(&self) -> &Codec {
        &self.codec
    }
}
