//! Account recovery: a weaker factor replaces a lost stronger one after a
//! waiting period the user is told about and can cancel.

use std::time::Duration;

use stepup_core::{Method, Subject, Timestamp};

use super::Engine;
use crate::error::ChallengeError;
use crate::event::{EventKind, Notice, NoticeKind};
use crate::keys::StoreKeys;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How long a recovery stays usable once its waiting period is over.
const RECOVERY_READY_FOR: Duration = Duration::from_secs(24 * 3600);
/// Account recoveries a subject may start within [`RECOVERY_START_WINDOW`]:
/// a session thief cannot restart one forever after the owner cancels.
const RECOVERY_STARTS: u64 = 3;
const RECOVERY_START_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// A pending account recovery: when it was asked for and when its waiting
/// period ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRecovery {
    /// When it was started.
    pub requested_at: Timestamp,
    /// When the waiting period ends: from then (for a day) a weaker factor
    /// may replace a stronger one.
    pub ready_at: Timestamp,
}

impl PendingRecovery {
    /// Whether the waiting period is over at `now`.
    pub fn is_ready(&self, now: Timestamp) -> bool {
        now >= self.ready_at
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.requested_at.as_unix_seconds().to_be_bytes().to_vec();
        out.extend_from_slice(&self.ready_at.as_unix_seconds().to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<PendingRecovery> {
        let (a, b) = bytes.split_at_checked(8)?;
        Some(PendingRecovery {
            requested_at: Timestamp::from_unix_seconds(u64::from_be_bytes(a.try_into().ok()?)),
            ready_at: Timestamp::from_unix_seconds(u64::from_be_bytes(b.try_into().ok()?)),
        })
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Starts an account recovery: the user lost their strongest factor and
    /// wants a weaker one (an e-mail or SMS code, a recovery code) to
    /// replace it. Nothing changes for the waiting period
    /// ([`with_recovery_wait`](Engine::with_recovery_wait), 24 hours by
    /// default) while the user is notified ([`NoticeKind::RecoveryStarted`])
    /// and can cancel; then, for a day, factor changes accept a fresh proof
    /// with any second factor. Starting again while one is pending keeps
    /// the first (the wait does not restart, nor shorten).
    pub async fn start_account_recovery(
        &self,
        subject: &Subject,
    ) -> Result<PendingRecovery, ChallengeError> {
        if self.notices.is_none() && !self.changes.silent_recovery {
            return Err(ChallengeError::Recovery(
                "account recovery needs a way to tell the user: configure a notice sink",
            ));
        }
        if let Some(pending) = self.pending_recovery(subject).await? {
            return Ok(pending);
        }
        let now = self.clock.now();
        let starts = self
            .state
            .increment(
                &StoreKeys::account_recovery_starts(&self.keys.subject(subject)),
                RECOVERY_START_WINDOW,
            )
            .await?;
        if starts > RECOVERY_STARTS {
            return Err(ChallengeError::LockedOut {
                until: now + RECOVERY_START_WINDOW,
            });
        }
        let pending = PendingRecovery {
            requested_at: now,
            ready_at: now + self.changes.recovery_wait,
        };
        self.state
            .put(
                &self.recovery_key(subject),
                pending.encode(),
                self.changes
                    .recovery_wait
                    .saturating_add(RECOVERY_READY_FOR),
            )
            .await?;
        self.emit(
            EventKind::RecoveryStarted,
            Method::RecoveryCode,
            subject,
            None,
        );
        if let Some(sink) = &self.notices {
            sink.notify(&Notice {
                kind: NoticeKind::RecoveryStarted,
                method: Method::RecoveryCode,
                subject,
                at: now,
                ready_at: Some(pending.ready_at),
            });
        }
        Ok(pending)
    }

    /// The subject's pending account recovery, if any.
    pub async fn pending_recovery(
        &self,
        subject: &Subject,
    ) -> Result<Option<PendingRecovery>, ChallengeError> {
        Ok(self
            .state
            .get(&self.recovery_key(subject))
            .await?
            .and_then(|bytes| PendingRecovery::decode(&bytes)))
    }

    /// Cancels the subject's pending account recovery; whether there was one.
    pub async fn cancel_account_recovery(&self, subject: &Subject) -> Result<bool, ChallengeError> {
        let cancelled = self
            .state
            .take(&self.recovery_key(subject))
            .await?
            .is_some();
        if cancelled {
            self.emit(
                EventKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
            self.notify(
                NoticeKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(cancelled)
    }

    pub(super) fn recovery_key(&self, subject: &Subject) -> String {
        StoreKeys::account_recovery(&self.keys.subject(subject))
    }
}
