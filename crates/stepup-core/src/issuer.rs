//! The issuer: mints assurance tokens after a successful step-up.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::assurance::{Assurance, Proof, Proofs};
use crate::config::TokenConfig;
use crate::error::IssueError;
use crate::key::{KeyId, KeyRing};
use crate::level::{LevelTable, SharedLevels};
use crate::subject::Subject;
use crate::time::Timestamp;
use crate::token::{Claims, Codec, TIME_BASE};

/// Mints an assurance token after a method was proven, merging the proofs of
/// the previous token that are still fresh.
///
/// The new token is always signed with the ring's current signing key (so a
/// step-up moves a token off a retiring key), bound to the subject, its
/// session (if any) and its epoch, and lives for the configured lifetime.
/// Proofs older than the lifetime are dropped; a previous token that does not
/// verify for this subject (tampered, expired, revoked, someone else's) is
/// ignored, never merged. So is a previous token minted in another client
/// context (see [`issue_in_context`](Issuer::issue_in_context)): proofs are
/// carried over only between tokens of the same context, or between tokens
/// that both have none.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Gate, Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let issuer = Issuer::new(&ring);
/// let user = Subject::new("user-1");
/// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
///
/// let first = issuer.issue(&user, Proof::new(Method::Password, t0), None, t0)?;
/// let t1 = t0 + Duration::from_secs(60);
/// let second = issuer.issue(&user, Proof::new(Method::Totp, t1), Some(first.value()), t1)?;
///
/// assert_eq!(second.assurance().proven_at(Method::Password), Some(t0)); // kept
/// assert_eq!(second.assurance().proven_at(Method::Totp), Some(t1));
/// assert_eq!(second.max_age(), Duration::from_secs(3600)); // the cookie's Max-Age
/// assert!(!format!("{second:?}").contains(second.value())); // Debug is redacted
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Issuer {
    codec: Arc<Codec>,
    levels: SharedLevels,
    lifetime: Duration,
    skew: Duration,
}

/// A freshly minted token: its text (the cookie value), what it asserts, and
/// how long it lives. `Debug` does not show the token.
#[derive(Clone)]
pub struct IssuedToken {
    value: String,
    assurance: Assurance,
    max_age: Duration,
}

impl IssuedToken {
    /// The token text, URL-safe and at most [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) characters.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Takes the token text.
    pub fn into_value(self) -> String {
        self.value
    }

    /// What the token asserts.
    pub fn assurance(&self) -> &Assurance {
        &self.assurance
    }

    /// The token's lifetime: use it as the cookie's `Max-Age`.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// When the token expires.
    pub fn expires_at(&self) -> Timestamp {
        self.assurance.expires_at()
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("value", &"[redacted]")
            .field("assurance", &self.assurance)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl Issuer {
    /// An issuer with default settings (see [`TokenConfig`]); use
    /// [`TokenConfig::issuer`] for others.
    pub fn new(ring: &KeyRing) -> Issuer {
        TokenConfig::new(ring.clone()).issuer()
    }

    pub(crate) fn from_parts(
        codec: Arc<Codec>,
        levels: SharedLevels,
        lifetime: Duration,
        skew: Duration,
    ) -> Issuer {
        Issuer {
            codec,
            levels,
            lifetime,
            skew,
        }
    }

    /// The gate that verifies exactly what this issuer issues: the same
    /// keys, purpose, level table, lifetime and skew. Adapters build their
    /// gate this way from the engine's issuer, so the two cannot come from
    /// different keys.
    ///
    /// ```
    /// use stepup_core::{Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, SystemClock, Clock};
    /// let issuer = Issuer::new(&KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let user = Subject::new("u1");
    /// let now = SystemClock.now();
    /// let token = issuer.issue(&user, Proof::new(Method::Totp, now), None, now)?;
    /// assert!(issuer.gate().verify(user, Some(token.value()), now).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn gate(&self) -> crate::Gate {
        crate::Gate::from_parts(
            self.codec.clone(),
            self.levels.clone(),
            self.lifetime,
            self.skew,
        )
    }

    /// The id of the key new tokens are signed with.
    pub fn signing_key_id(&self) -> Option<KeyId> {
        self.codec.signing_key_id()
    }

    /// The token lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The level table tokens are judged by (ranks of methods, `acr` values).
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, Method, TokenConfig};
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let issuer = TokenConfig::new(ring).issuer();
    /// assert_eq!(issuer.levels().level_of(&[Method::Totp]), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn levels(&self) -> &LevelTable {
        &self.levels
    }

    /// A 32-byte key for `label`, derived from the signing key (HMAC under
    /// a domain no token or context digest uses), for server-side keyed
    /// digests: store keys, code digests. Every instance sharing the key
    /// ring derives the same key; rotating the signing key changes it.
    /// `None` only for an issuer without keys.
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let issuer = TokenConfig::new(ring).issuer();
    /// let a = issuer.derive_key("store keys").unwrap();
    /// assert_ne!(a, issuer.derive_key("code digests").unwrap());
    /// assert_eq!(a, issuer.derive_key("store keys").unwrap());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn derive_key(&self, label: &str) -> Option<[u8; 32]> {
        self.codec.derive_key(label)
    }

    /// Mints a token for `subject` recording `proof`, keeping the still-fresh
    /// proofs of `previous` (the token the client presented, if any).
    pub fn issue(
        &self,
        subject: &Subject,
        proof: Proof,
        previous: Option<&str>,
        now: Timestamp,
    ) -> Result<IssuedToken, IssueError> {
        self.mint(subject, proof, previous, None, now)
    }

    /// [`issue`](Issuer::issue), also recording a keyed digest of the client
    /// context the step-up happened in — whatever bytes the application
    /// chooses, say the client's IP prefix and user agent. The token carries
    /// 8 bytes of HMAC, not the context; [`Gate::same_context`](crate::Gate::same_context)
    /// later tells whether a request comes from the same context.
    ///
    /// Only proofs made in this same context are carried over from
    /// `previous`: a token from another context (or without one) contributes
    /// nothing, so a token stolen elsewhere cannot lend its proofs to a step-up
    /// made here. Likewise [`issue`](Issuer::issue) carries nothing over from
    /// a token that has a context.
    ///
    /// ```
    /// use stepup_core::{Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp};
    ///
    /// let issuer = Issuer::new(&KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let user = Subject::new("user-1");
    /// let t0 = Timestamp::from_unix_seconds(1_700_000_000);
    /// let home = issuer.issue_in_context(&user, Proof::new(Method::Passkey, t0), None, b"home", t0)?;
    ///
    /// // Same context: the passkey proof is kept.
    /// let again = issuer.issue_in_context(&user, Proof::new(Method::Password, t0), Some(home.value()), b"home", t0)?;
    /// assert_eq!(again.assurance().proven_at(Method::Passkey), Some(t0));
    /// // Another context: only the new proof.
    /// let elsewhere = issuer.issue_in_context(&user, Proof::new(Method::Password, t0), Some(home.value()), b"cafe", t0)?;
    /// assert_eq!(elsewhere.assurance().proven_at(Method::Passkey), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn issue_in_context(
        &self,
        subject: &Subject,
        proof: Proof,
        previous: Option<&str>,
        context: &[u8],
        now: Timestamp,
    ) -> Result<IssuedToken, IssueError> {
        self.mint(subject, proof, previous, Some(context), now)
    }

    /// Whether the previous token's proofs were made in the client context
    /// of the token being minted: both without a context, or both with the
    /// same one (its digest checked under the key that signed the previous
    /// token, so a key rotation does not matter). Anything else would carry
    /// a proof made elsewhere — a stolen token, another network — into this
    /// context (issue #13, finding 5).
    fn same_context(&self, previous: &Claims, context: Option<&[u8]>) -> bool {
        match (previous.context, context) {
            (None, None) => true,
            (Some(recorded), Some(bytes)) => self
                .codec
                .context_digest(Some(previous.key_id), bytes)
                .is_some_and(|digest| {
                    crate::ct::eq_as(crate::ct::Comparison::ContextDigest, &digest, &recorded)
                }),
            _ => false,
        }
    }

    fn mint(
        &self,
        subject: &Subject,
        proof: Proof,
        previous: Option<&str>,
        context: Option<&[u8]>,
        now: Timestamp,
    ) -> Result<IssuedToken, IssueError> {
        let since_base = now.as_unix_seconds().checked_sub(TIME_BASE);
        if since_base.is_none_or(|s| s > u64::from(u32::MAX)) {
            return Err(IssueError::ClockOutOfRange);
        }
        if proof.at() > now.saturating_add(self.skew) {
            return Err(IssueError::ProofInFuture);
        }
        let fresh = |p: &Proof| now.duration_since(p.at()) < self.lifetime;
        if !fresh(&proof) {
            return Err(IssueError::ProofTooOld);
        }
        let mut proofs = Proofs::new();
        let carried = previous.is_some_and(|token| {
            self.codec
                .open(token, subject, &mut proofs)
                .is_ok_and(|claims| {
                    claims.epoch == subject.epoch()
                        && claims.issued_at <= now.saturating_add(self.skew)
                        && now
                            < claims
                                .expires_at
                                .min(claims.issued_at.saturating_add(self.lifetime))
                        && self.same_context(&claims, context)
                })
        });
        if carried {
            proofs.retain(fresh);
        } else {
            proofs.clear();
        }
        // A proof dated ahead within the skew is recorded as of now, so every
        // proof is at or before the token's issue time.
        proofs.record(Proof::new(proof.method(), proof.at().min(now)));
        let lifetime_secs = u32::try_from(self.lifetime.as_secs()).unwrap_or(u32::MAX);
        let digest = match context {
            Some(bytes) => Some(
                self.codec
                    .context_digest(None, bytes)
                    .ok_or(IssueError::NoSigningKey)?,
            ),
            None => None,
        };
        let value = self
            .codec
            .seal_in_context(subject, now, lifetime_secs, &proofs, digest)
            .ok_or(IssueError::NoSigningKey)?;
        let expires_at = now.saturating_add(Duration::from_secs(u64::from(lifetime_secs)));
        let mut assurance = Assurance::new(
            subject.clone(),
            proofs,
            now,
            expires_at,
            self.levels.clone(),
        );
        assurance.set_token_facts(now, expires_at, self.codec.signing_key_id(), digest);
        Ok(IssuedToken {
            value,
            assurance,
            max_age: self.lifetime,
        })
    }
}
