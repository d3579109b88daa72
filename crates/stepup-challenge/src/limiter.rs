//! The attempt limiter: counted before verifying, per subject and method
//! across sessions and addresses, plus a budget per client address.

use std::net::IpAddr;
use std::time::Duration;

use stepup_core::{Method, Timestamp};

use crate::error::ChallengeError;
use crate::store::StateStore;

/// How many attempts are allowed, and how long lockouts last.
///
/// Defaults: 5 failures per subject and method within 15 minutes, then a
/// lockout of 1 minute that doubles with every further lockout within a day
/// (capped at 1 day) — far below NIST SP 800-63B's limit of 100 consecutive
/// failures. Per client address: 50 attempts in 15 minutes, across all
/// subjects, so one attacker cannot quietly lock out many users.
#[derive(Clone, Debug)]
pub struct AttemptLimits {
    pub(crate) per_subject: u64,
    pub(crate) window: Duration,
    pub(crate) first_lockout: Duration,
    pub(crate) max_lockout: Duration,
    pub(crate) per_address: u64,
    pub(crate) address_window: Duration,
}

impl Default for AttemptLimits {
    fn default() -> Self {
        AttemptLimits {
            per_subject: 5,
            window: Duration::from_secs(15 * 60),
            first_lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(24 * 3600),
            per_address: 50,
            address_window: Duration::from_secs(15 * 60),
        }
    }
}

impl AttemptLimits {
    /// Failures allowed per subject and method within `window` (at least 1).
    pub fn per_subject(mut self, attempts: u32, window: Duration) -> Self {
        self.per_subject = u64::from(attempts.max(1));
        self.window = window.max(Duration::from_secs(1));
        self
    }

    /// The first lockout and the cap for its doubling.
    pub fn lockout(mut self, first: Duration, max: Duration) -> Self {
        self.first_lockout = first.max(Duration::from_secs(1));
        self.max_lockout = max.max(self.first_lockout);
        self
    }

    /// Attempts allowed per client address within `window` (at least 1).
    pub fn per_address(mut self, attempts: u32, window: Duration) -> Self {
        self.per_address = u64::from(attempts.max(1));
        self.address_window = window.max(Duration::from_secs(1));
        self
    }
}

/// The keys of one subject's counters for one method.
///
/// Attempts are counted per *generation*: every lockout starts a new
/// generation, so attempts after a lockout count from zero while attempts
/// racing with the lockout keep counting in the old, exhausted one.
pub(crate) struct Keys {
    base: String,
    lock: String,
    generation: String,
    backoff: String,
}

impl Keys {
    pub(crate) fn new(method: Method, subject_key: &str) -> Keys {
        Keys {
            base: format!("stepup:attempts:{method}:{subject_key}"),
            lock: format!("stepup:lock:{method}:{subject_key}"),
            generation: format!("stepup:generation:{method}:{subject_key}"),
            backoff: format!("stepup:backoff:{method}:{subject_key}"),
        }
    }

    fn attempts(&self, generation: u64) -> String {
        format!("{}:{generation}", self.base)
    }
}

/// How long a lock generation is remembered: longer than any window.
const GENERATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long consecutive lockouts keep doubling the next one.
const BACKOFF_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// Counts one attempt before it is verified. `Ok(attempts_left)` lets it be
/// checked; a lockout is returned for right and wrong input alike.
///
/// Order matters for racing attempts: the generation is read before the lock,
/// and a lockout sets the lock before starting a new generation, so an
/// attempt either sees the lock or counts in the exhausted generation — never
/// more than the budget is evaluated, however many attempts race.
pub(crate) async fn admit<S: StateStore>(
    state: &S,
    limits: &AttemptLimits,
    keys: &Keys,
    address: Option<IpAddr>,
    now: Timestamp,
) -> Result<u64, ChallengeError> {
    let generation = read_u64(state, &keys.generation).await?.unwrap_or(0);
    if let Some(until) = read_u64(state, &keys.lock)
        .await?
        .map(Timestamp::from_unix_seconds)
        && until > now
    {
        return Err(ChallengeError::LockedOut { until });
    }
    if let Some(ip) = address {
        let n = state
            .increment(&format!("stepup:address:{ip}"), limits.address_window)
            .await?;
        if n > limits.per_address {
            return Err(ChallengeError::LockedOut {
                until: now + limits.address_window,
            });
        }
    }
    let n = state
        .increment(&keys.attempts(generation), limits.window)
        .await?;
    if n <= limits.per_subject {
        return Ok(limits.per_subject - n);
    }
    if n > limits.per_subject + 1 {
        // A racing attempt past the one that locked: report that lock.
        let until = read_u64(state, &keys.lock)
            .await?
            .map_or(now + limits.first_lockout, Timestamp::from_unix_seconds);
        return Err(ChallengeError::LockedOut { until });
    }
    // Exactly one attempt crosses the budget: it locks, with doubling.
    let lockouts = state.increment(&keys.backoff, BACKOFF_MEMORY).await?;
    let doublings = u32::try_from(lockouts.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(30);
    let length = limits
        .first_lockout
        .saturating_mul(1u32 << doublings)
        .min(limits.max_lockout);
    let until = now + length;
    state
        .put(
            &keys.lock,
            until.as_unix_seconds().to_be_bytes().to_vec(),
            length,
        )
        .await?;
    state
        .put(
            &keys.generation,
            (generation + 1).to_be_bytes().to_vec(),
            GENERATION_TTL,
        )
        .await?;
    Err(ChallengeError::LockedOut { until })
}

/// A success resets the subject's budget and backoff for the method.
pub(crate) async fn reset<S: StateStore>(state: &S, keys: &Keys) -> Result<(), ChallengeError> {
    let generation = read_u64(state, &keys.generation).await?.unwrap_or(0);
    state.remove(&keys.attempts(generation)).await?;
    state.remove(&keys.backoff).await?;
    Ok(())
}

async fn read_u64<S: StateStore>(state: &S, key: &str) -> Result<Option<u64>, ChallengeError> {
    Ok(state.get(key).await?.and_then(|bytes| {
        let raw: [u8; 8] = bytes.as_slice().try_into().ok()?;
        Some(u64::from_be_bytes(raw))
    }))
}
