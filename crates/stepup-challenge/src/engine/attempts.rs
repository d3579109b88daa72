//! Every attempt's plumbing: counted by the limiter before it is
//! verified, then turned into a token (counters reset, disabled methods
//! enabled again) or into the error the user sees.

use stepup_core::{IssuedToken, Method, Proof, Subject};
use stepup_store::attempts::Advance;

use super::events::Reason;
use super::{Attempt, Confirmed, Engine};
use crate::change;
use crate::error::{ChallengeError, StoreError};
use crate::event::{EventKind, NoticeKind};
use crate::keys::AddressName;
use crate::limiter::{self, Admission, Keys};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Clears every attempt counter of `method` for the subject and enables
    /// it again if it was disabled (for an approval method, its refused
    /// approvals too): the application's reset (after a support call,
    /// say), never something a request should reach alone.
    pub async fn reset_attempts(
        &self,
        subject: &Subject,
        method: Method,
    ) -> Result<(), ChallengeError> {
        if method.is_custom() {
            use crate::keys::StoreKeys;
            let name = self.keys.subject(subject);
            self.state
                .remove(&StoreKeys::approval_wrong(&name, method))
                .await?;
            self.state
                .remove(&StoreKeys::approval_suspended(&name, method))
                .await?;
        }
        limiter::reset(&self.state, &self.limiter_keys(subject, method)).await
    }

    /// Counts the attempt, then (and only then: futures start when awaited)
    /// runs `check`; a `false` is a wrong answer.
    pub(super) async fn counted(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        check: impl std::future::Future<Output = Result<bool, StoreError>>,
    ) -> Result<(), ChallengeError> {
        let admitted = self.admit(attempt, method).await?;
        if check.await? {
            Ok(())
        } else {
            Err(ChallengeError::Wrong {
                few_left: admitted.few_left,
            })
        }
    }

    pub(super) fn limiter_keys(&self, subject: &Subject, method: Method) -> Keys {
        Keys::new(method, &self.keys.subject(subject))
    }

    pub(super) fn address_key(&self, attempt: Attempt<'_>) -> Option<AddressName> {
        attempt
            .address
            .map(|ip| self.keys.address(ip, self.limits.v6_prefix))
    }

    /// Counts the attempt. An attempt made for an action whose ceremony
    /// is gone stops here, before anything is counted or consumed.
    pub(super) async fn admit(
        &self,
        attempt: Attempt<'_>,
        method: Method,
    ) -> Result<Admission, ChallengeError> {
        if let Some(id) = attempt.action
            && self.pending_action(attempt.subject, id).await?.is_none()
        {
            return Err(ChallengeError::NoPendingAction);
        }
        let keys = self.limiter_keys(attempt.subject, method);
        let address = self.address_key(attempt);
        let mut just_disabled = false;
        let admitted = limiter::admit(
            &self.state,
            &self.limits,
            &keys,
            address.as_ref(),
            self.clock.now(),
            &mut just_disabled,
        )
        .await;
        if just_disabled {
            // Once, on the attempt that disabled it: not on every later one.
            self.notify(NoticeKind::MethodDisabled, method, attempt.subject, None);
        }
        admitted
    }

    /// Turns a verified factor into a token, or a failure into the error the
    /// user sees; emits the event either way.
    pub(super) async fn finish(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        outcome: Result<(), ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        self.finish_as(attempt, method, method, outcome).await
    }

    /// [`finish`](Engine::finish) for an attempt counted as `counted` that
    /// proved `proven` (a passkey attempt proves a synced or a device-bound
    /// passkey).
    pub(super) async fn finish_as(
        &self,
        attempt: Attempt<'_>,
        counted: Method,
        proven: Method,
        outcome: Result<(), ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        self.finish_committing(attempt, counted, proven, outcome.map(|()| None))
            .await
    }

    /// [`finish_as`](Engine::finish_as) for a verified factor whose use is
    /// recorded in the same commit as the counters (a TOTP step: a replay
    /// found there is [`ChallengeError::AlreadyUsed`], a failure).
    pub(super) async fn finish_committing(
        &self,
        attempt: Attempt<'_>,
        counted: Method,
        proven: Method,
        outcome: Result<Option<Advance>, ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        let subject = attempt.subject;
        let outcome = match outcome {
            Ok(advance) => match self.succeeded(subject, counted, proven, advance).await {
                Ok(()) => Ok(()),
                Err(ChallengeError::AlreadyUsed) => Err(ChallengeError::AlreadyUsed),
                Err(e) => {
                    self.emit(EventKind::Failed, proven, subject, Some(Reason::Store));
                    return Err(e);
                }
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                // Made for an action: the proof is recorded for it (and
                // becomes its grant once the proofs made for it meet its
                // policy), or — the ceremony was used by a racing step-up,
                // or expired just now — nothing is issued, so no step-up
                // seems to confirm what it did not.
                let now = self.clock.now();
                let proof = Proof::new(proven, now);
                if let Some(id) = attempt.action {
                    match self.confirm_action(subject, id, proof).await {
                        Ok(Confirmed::Granted | Confirmed::Partly) => {}
                        Ok(Confirmed::Gone) => {
                            self.emit(EventKind::Failed, proven, subject, None);
                            return Err(ChallengeError::NoPendingAction);
                        }
                        Err(e) => {
                            self.emit(EventKind::Failed, proven, subject, Some(Reason::Store));
                            return Err(e.into());
                        }
                    }
                }
                let issued = match attempt.context {
                    Some(ctx) => {
                        self.issuer
                            .issue_in_context(subject, proof, attempt.previous, ctx, now)
                    }
                    None => self.issuer.issue(subject, proof, attempt.previous, now),
                };
                match issued {
                    Ok(token) => {
                        self.funnel_succeeded(subject, proven).await;
                        Ok(token)
                    }
                    Err(e) => {
                        self.emit(EventKind::Failed, proven, subject, Some(Reason::Issue));
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                let guess = matches!(
                    e,
                    ChallengeError::Wrong { .. }
                        | ChallengeError::AlreadyUsed
                        | ChallengeError::PasskeyRejected
                );
                if guess && let Some(id) = attempt.action {
                    // Each ceremony allows a few wrong answers, then is void.
                    if let Err(store) = self.action_failed(id).await {
                        self.emit(EventKind::Failed, counted, subject, Some(Reason::Store));
                        return Err(store.into());
                    }
                }
                if guess && let Some(address) = self.address_key(attempt) {
                    // Failures only: users behind one address are not
                    // blocked by each other's successes.
                    if let Err(store) =
                        limiter::failed_from(&self.state, &self.limits, &address, self.clock.now())
                            .await
                    {
                        self.emit(EventKind::Failed, counted, subject, Some(Reason::Store));
                        return Err(store);
                    }
                }
                let (kind, reason) = Reason::of_failure(&e);
                self.emit(kind, counted, subject, reason);
                Err(e)
            }
        }
    }

    /// A success resets the method's counters and enables again the
    /// methods disabled for the subject that are no stronger than the one
    /// proven (by the level table), records `advance` first (a TOTP step:
    /// [`ChallengeError::AlreadyUsed`] when it is not newer, and then
    /// nothing else changes), and cancels a pending account recovery — all
    /// in one commit.
    async fn succeeded(
        &self,
        subject: &Subject,
        counted: Method,
        proven: Method,
        advance: Option<Advance>,
    ) -> Result<(), ChallengeError> {
        let levels = self.issuer.levels();
        let rank = levels.rank_of(proven);
        // Only a factor of the user's own brings a disabled method back —
        // never the password or a mailbox code (rank ties included).
        let strong = change::is_strong(proven, levels);
        let subject_name = self.keys.subject(subject);
        let reenable: Vec<Keys> = Method::BUILT_IN
            .into_iter()
            .filter(|m| strong && *m != counted && levels.rank_of(*m) <= rank)
            .map(|m| Keys::new(m, &subject_name))
            .collect();
        // The user still holds a factor of their own: nothing to recover.
        let recovery = strong.then(|| self.recovery_key(subject));
        let cancelled = limiter::succeeded(
            &self.state,
            &Keys::new(counted, &subject_name),
            &reenable,
            advance,
            recovery,
        )
        .await?;
        if cancelled {
            self.emit(
                EventKind::RecoveryCancelled,
                proven,
                subject,
                Some(Reason::FactorUsed),
            );
            self.notify(
                NoticeKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(())
    }
}
