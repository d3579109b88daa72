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
pub(crate) struct Keys {
    attempts: String,
    lock: String,
    lockouts: String,
}

impl Keys {
    pub(crate) fn new(method: Method, subject_key: &str) -> Keys {
        Keys {
            attempts: format!("stepup:attempts:{method}:{subject_key}"),
            lock: format!("stepup:lock:{method}:{subject_key}"),
            lockouts: format!("stepup:lockouts:{method}:{subject_key}"),
        }
    }
}

/// Counts one attempt before it is verified. `Ok(attempts_left)` lets it be
/// checked; a lockout is returned for right and wrong input alike.
pub(crate) async fn admit<S: StateStore>(
    state: &S,
    limits: &AttemptLimits,
    keys: &Keys,
    address: Option<IpAddr>,
    now: Timestamp,
) -> Result<u64, ChallengeError> {
    if let Some(until) = locked_until(state, &keys.lock).await?
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
    let n = state.increment(&keys.attempts, limits.window).await?;
    if n > limits.per_subject {
        let lockouts = state
            .increment(&keys.lockouts, Duration::from_secs(24 * 3600))
            .await?;
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
        state.remove(&keys.attempts).await?;
        return Err(ChallengeError::LockedOut { until });
    }
    Ok(limits.per_subject - n)
}

/// A success resets the subject's counters for the method.
pub(crate) async fn reset<S: StateStore>(state: &S, keys: &Keys) -> Result<(), ChallengeError> {
    state.remove(&keys.attempts).await?;
    state.remove(&keys.lockouts).await?;
    Ok(())
}

async fn locked_until<S: StateStore>(
    state: &S,
    key: &str,
) -> Result<Option<Timestamp>, ChallengeError> {
    Ok(state.get(key).await?.and_then(|bytes| {
        let raw: [u8; 8] = bytes.as_slice().try_into().ok()?;
        Some(Timestamp::from_unix_seconds(u64::from_be_bytes(raw)))
    }))
}
