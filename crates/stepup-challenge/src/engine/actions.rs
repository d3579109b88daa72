//! Step-ups bound to one action: a confirmation ceremony per action (its
//! digest and summary, sealed, bound to the subject and session), turned
//! by a successful step-up made for it into a single-use grant that the
//! bound route takes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::{ActionDigest, Method, Policy, Proof, Subject, Timestamp};

use super::Engine;
use crate::error::StoreError;
use crate::keys::{RecordId, StoreKeys, hex};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How bound actions are confirmed: a ceremony lasts `ceremony_ttl`
/// (default 5 minutes) and allows `attempts` wrong answers (default 5)
/// before it is void; a grant lasts `grant_ttl` (default 2 minutes); one
/// login session may open `per_session` ceremonies within the ceremony
/// ttl (default 10).
///
/// ```
/// use std::time::Duration;
/// use stepup_challenge::ActionLimits;
/// let limits = ActionLimits::default().grant_ttl(Duration::from_secs(60)).per_session(5);
/// assert_eq!(limits.grant_lifetime(), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionLimits {
    ceremony_ttl: Duration,
    grant_ttl: Duration,
    attempts: u64,
    per_session: u64,
}

impl Default for ActionLimits {
    fn default() -> Self {
        ActionLimits {
            ceremony_ttl: Duration::from_secs(300),
            grant_ttl: Duration::from_secs(120),
            attempts: 5,
            per_session: 10,
        }
    }
}

impl ActionLimits {
    /// How long a ceremony waits for its step-up (30 s to 10 minutes).
    #[must_use]
    pub fn ceremony_ttl(mut self, ttl: Duration) -> Self {
        self.ceremony_ttl = ttl.clamp(Duration::from_secs(30), Duration::from_secs(600));
        self
    }

    /// How long a grant waits for its request (10 s to 10 minutes).
    #[must_use]
    pub fn grant_ttl(mut self, ttl: Duration) -> Self {
        self.grant_ttl = ttl.clamp(Duration::from_secs(10), Duration::from_secs(600));
        self
    }

    /// Wrong answers a ceremony allows before it is void (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = u64::from(attempts.max(1));
        self
    }

    /// Ceremonies one login session may open within the ceremony ttl
    /// (at least 1).
    #[must_use]
    pub fn per_session(mut self, ceremonies: u32) -> Self {
        self.per_session = u64::from(ceremonies.max(1));
        self
    }

    /// How long a grant lasts.
    pub fn grant_lifetime(&self) -> Duration {
        self.grant_ttl
    }

    /// How long a ceremony lasts.
    pub fn ceremony_lifetime(&self) -> Duration {
        self.ceremony_ttl
    }
}

/// An action waiting for its step-up, as the pages show it.
#[derive(Clone, Debug)]
pub struct PendingAction {
    id: String,
    summary: String,
    digest: ActionDigest,
    confirmed_with: Vec<Method>,
}

impl PendingAction {
    /// The ceremony id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What it does ("Send 12,000.00 to bob"), from the server-side record.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The action's digest.
    pub fn digest(&self) -> ActionDigest {
        self.digest
    }

    /// The methods of the step-ups already made for it, when its policy
    /// needs more than one (empty before the first).
    pub fn confirmed_with(&self) -> &[Method] {
        &self.confirmed_with
    }
}

/// What opening a ceremony gave.
#[derive(Debug)]
pub(crate) enum Opened {
    /// Its id.
    Id(String),
    /// The session opened too many within the ttl.
    TooMany,
}

/// What a successful step-up made for a ceremony did to it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// The proofs made for it meet its policy: the grant is written.
    Granted,
    /// Recorded; the policy needs more (another method): it stays open.
    Partly,
    /// The ceremony is gone (expired, void, used, another session's).
    Gone,
}

/// A ceremony as stored (sealed).
#[derive(Serialize, Deserialize)]
struct Ceremony {
    /// The opener's session digest (hex).
    s: String,
    /// The action digest (hex).
    d: String,
    /// The summary.
    u: String,
    /// The policy the action needs (its canonical expression): the proofs
    /// made for the ceremony must meet it by themselves.
    p: String,
    /// When it was opened (Unix seconds).
    o: u64,
    /// The proofs made for it so far: method (canonical name), time.
    f: Vec<(String, u64)>,
}

/// A grant as stored (sealed, under a name derived from the session and
/// the digest).
#[derive(Serialize, Deserialize)]
struct Grant {
    s: String,
    d: String,
    /// The ceremony it came from.
    c: String,
    /// The proofs made for it: method (canonical name), time.
    f: Vec<(String, u64)>,
}

/// Stored proofs read back; `None` if any does not read (never less than
/// was recorded).
fn read_proofs(stored: &[(String, u64)]) -> Option<Vec<Proof>> {
    stored
        .iter()
        .map(|(m, at)| {
            m.parse::<Method>()
                .ok()
                .map(|m| Proof::new(m, Timestamp::from_unix_seconds(*at)))
        })
        .collect()
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Opens a ceremony for the action of `digest` (shown as `summary`) by
    /// `subject`'s session, which step-ups made for it must meet `policy`
    /// with (by themselves, not with proofs made before).
    pub(crate) async fn open_action(
        &self,
        subject: &Subject,
        digest: &ActionDigest,
        summary: &str,
        policy: &Policy,
    ) -> Result<Opened, StoreError> {
        let limits = &self.actions;
        let now = self.clock.now().as_unix_seconds();
        let expression = policy.to_string();
        // The same action again in this session (a double submit, a
        // retry, a reload) waits on the ceremony already open for it — one
        // confirmation, no quota spent — while at least half its time is
        // left.
        let waiting = StoreKeys::action_waiting(&self.keys.grant_name(subject, digest));
        if let Some(sealed) = self.state.get(&waiting).await?
            && let Some(id) = self.open_json::<String>(&waiting, &sealed)
            && let Some((_, ceremony)) = self.ceremony(subject, &id).await?
            && ceremony.d == digest.to_hex()
            && ceremony.p == expression
            && now.saturating_sub(ceremony.o) <= limits.ceremony_ttl.as_secs() / 2
        {
            return Ok(Opened::Id(id));
        }
        let count = StoreKeys::actions_opened(&self.keys.session(subject));
        if self.state.increment(&count, limits.ceremony_ttl).await? > limits.per_session {
            return Ok(Opened::TooMany);
        }
        let id = RecordId::random().ok_or_else(|| StoreError::new("state", "no randomness"))?;
        let record = Ceremony {
            s: hex(&self.keys.session_digest(subject)),
            d: digest.to_hex(),
            u: summary.to_owned(),
            p: expression,
            o: now,
            f: Vec::new(),
        };
        let key = StoreKeys::action(&id);
        let sealed = self.seal_json(&key, &record)?;
        self.state.put(&key, sealed, limits.ceremony_ttl).await?;
        let named = self.seal_json(&waiting, &id.as_str())?;
        self.state.put(&waiting, named, limits.ceremony_ttl).await?;
        Ok(Opened::Id(id.as_str().to_owned()))
    }

    /// The ceremony `id` of `subject`'s session and its store key.
    async fn ceremony(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Option<(String, Ceremony)>, StoreError> {
        let Some(id) = RecordId::parse(id) else {
            return Ok(None);
        };
        let key = StoreKeys::action(&id);
        let Some(sealed) = self.state.get(&key).await? else {
            return Ok(None);
        };
        Ok(self
            .ours::<Ceremony>(&key, &sealed, subject)
            .map(|c| (key, c)))
    }

    /// The bound action `attempt` is made for, if any: a ceremony that is
    /// gone is [`ChallengeError::NoPendingAction`] (for what is sent before
    /// the attempt: a code, an approval request).
    pub(super) async fn action_of(
        &self,
        attempt: super::Attempt<'_>,
    ) -> Result<Option<PendingAction>, crate::ChallengeError> {
        match attempt.action {
            Some(id) => Ok(Some(
                self.pending_action(attempt.subject, id)
                    .await?
                    .ok_or(crate::ChallengeError::NoPendingAction)?,
            )),
            None => Ok(None),
        }
    }

    /// The ceremony `id` of `subject`'s session, still waiting: `None`
    /// when there is none, it expired or was used, or it is another
    /// session's.
    pub async fn pending_action(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Option<PendingAction>, StoreError> {
        Ok(self.ceremony(subject, id).await?.and_then(|(_, c)| {
            Some(PendingAction {
                digest: ActionDigest::from_hex(&c.d)?,
                confirmed_with: read_proofs(&c.f)?.iter().map(Proof::method).collect(),
                summary: c.u,
                id: id.to_owned(),
            })
        }))
    }

    /// `sealed` (from the store entry `key`) opened, if it belongs to
    /// `subject`'s session.
    fn ours<T: SessionBound>(&self, key: &str, sealed: &[u8], subject: &Subject) -> Option<T> {
        let session = hex(&self.keys.session_digest(subject));
        self.open_json::<T>(key, sealed)
            .filter(|r| stepup_core::ct::eq(r.session().as_bytes(), session.as_bytes()))
    }

    /// Counts a wrong answer made for the ceremony `id`; at the limit the
    /// ceremony is void.
    pub(crate) async fn action_failed(&self, id: &str) -> Result<(), StoreError> {
        let Some(id) = RecordId::parse(id) else {
            return Ok(());
        };
        let limits = &self.actions;
        let failures = self
            .state
            .increment(&StoreKeys::action_failures(&id), limits.ceremony_ttl)
            .await?;
        if failures >= limits.attempts {
            self.state.remove(&StoreKeys::action(&id)).await?;
        }
        Ok(())
    }

    /// Records `proof`, of a step-up made for `subject`'s ceremony `id`.
    /// When the proofs made for the ceremony meet its policy by themselves,
    /// the ceremony becomes the grant for its action (one caller ever
    /// does); when the policy needs more (two methods), the ceremony stays
    /// open with the proof recorded.
    pub(crate) async fn confirm_action(
        &self,
        subject: &Subject,
        id: &str,
        proof: Proof,
    ) -> Result<Confirmed, StoreError> {
        // Read first: only the session that opened it may use it.
        let Some((key, ceremony)) = self.ceremony(subject, id).await? else {
            return Ok(Confirmed::Gone);
        };
        let (Ok(policy), Some(mut proofs), Some(digest)) = (
            Policy::parse(&ceremony.p),
            read_proofs(&ceremony.f),
            ActionDigest::from_hex(&ceremony.d),
        ) else {
            return Ok(Confirmed::Gone);
        };
        proofs.retain(|p| p.method() != proof.method());
        proofs.push(proof);
        let now = self.clock.now();
        let stored: Vec<(String, u64)> = proofs
            .iter()
            .map(|p| (p.method().to_string(), p.at().as_unix_seconds()))
            .collect();
        // The grant's own facts: the client context is the guard's to check
        // when the grant is used (a `same_context` term is not the proofs').
        let facts = stepup_core::Facts::default()
            .with_granted(true)
            .with_same_context(true);
        if policy
            .met_with(&proofs, self.issuer.levels(), now, facts)
            .is_err()
        {
            // Not yet: keep it open, with this proof, for the rest of its
            // time. (Of two racing partial step-ups one proof may be lost:
            // then one more is asked, never less.)
            let left = self
                .actions
                .ceremony_ttl
                .saturating_sub(std::time::Duration::from_secs(
                    now.as_unix_seconds().saturating_sub(ceremony.o),
                ))
                .max(std::time::Duration::from_secs(1));
            let updated = Ceremony {
                f: stored,
                ..ceremony
            };
            let sealed = self.seal_json(&key, &updated)?;
            self.state.put(&key, sealed, left).await?;
            return Ok(Confirmed::Partly);
        }
        // Met: one step-up takes the ceremony.
        if self
            .state
            .take(&key)
            .await?
            .and_then(|sealed| self.ours::<Ceremony>(&key, &sealed, subject))
            .is_none()
        {
            return Ok(Confirmed::Gone);
        }
        let grant = Grant {
            s: ceremony.s,
            d: ceremony.d,
            c: id.to_owned(),
            f: stored,
        };
        let key = StoreKeys::grant(&self.keys.grant_name(subject, &digest));
        let sealed = self.seal_json(&key, &grant)?;
        self.state.put(&key, sealed, self.actions.grant_ttl).await?;
        Ok(Confirmed::Granted)
    }

    /// Takes the grant for the action of `digest` in `subject`'s session —
    /// one caller ever does — and gives the proofs made for it. With
    /// `presented` (the ceremony id an API client sends back), the grant
    /// must come from that ceremony. A grant that does not match is left
    /// where it is.
    pub(crate) async fn take_grant(
        &self,
        subject: &Subject,
        digest: &ActionDigest,
        presented: Option<&str>,
    ) -> Result<Option<Vec<Proof>>, StoreError> {
        let key = StoreKeys::grant(&self.keys.grant_name(subject, digest));
        let matching = |sealed: &[u8]| {
            self.ours::<Grant>(&key, sealed, subject).filter(|g| {
                ActionDigest::from_hex(&g.d).is_some_and(|d| d == *digest)
                    && presented.is_none_or(|p| stepup_core::ct::eq(p.as_bytes(), g.c.as_bytes()))
            })
        };
        let Some(sealed) = self.state.get(&key).await? else {
            return Ok(None);
        };
        if matching(&sealed).is_none() {
            return Ok(None);
        }
        let Some(grant) = self
            .state
            .take(&key)
            .await?
            .and_then(|sealed| matching(&sealed))
        else {
            return Ok(None);
        };
        // A record this engine wrote always reads: one that does not
        // counts as nothing proven.
        Ok(read_proofs(&grant.f))
    }
}

/// A sealed record bound to a login session.
trait SessionBound: serde::de::DeserializeOwned {
    fn session(&self) -> &str;
}

impl SessionBound for Ceremony {
    fn session(&self) -> &str {
        &self.s
    }
}

impl SessionBound for Grant {
    fn session(&self) -> &str {
        &self.s
    }
}
