//! Recovery codes: step-ups (each code used up) and generation.

use stepup_core::{IssuedToken, Method, Subject};

use super::{Attempt, Engine};
use crate::error::ChallengeError;
use crate::event::{EventKind, NoticeKind};
use crate::recovery::{self, RecoveryCode};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Steps up with a recovery code, which is used up.
    pub async fn step_up_recovery_code(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            let digest = recovery::digest_of_input(code)?;
            if self.factors.recovery_codes_left(attempt.subject).await? == 0 {
                return Err(ChallengeError::NotEnrolled(Method::RecoveryCode));
            }
            self.counted(
                attempt,
                Method::RecoveryCode,
                self.factors
                    .consume_recovery_digest(attempt.subject, &digest),
            )
            .await
        }
        .await;
        self.finish(attempt, Method::RecoveryCode, outcome).await
    }

    /// Replaces the subject's recovery codes with `count` new ones (1 to
    /// 20), returned once for the user to keep; only digests are stored.
    /// Replacing earlier codes bumps the subject's epoch. No proof is
    /// checked here: the caller asks [`authorize_change`](Engine::authorize_change) first.
    pub async fn generate_recovery_codes(
        &self,
        subject: &Subject,
        count: usize,
    ) -> Result<Vec<RecoveryCode>, ChallengeError> {
        let codes = (0..count.clamp(1, 20))
            .map(|_| RecoveryCode::generate())
            .collect::<Result<Vec<_>, _>>()?;
        let replaced = self.factors.recovery_codes_left(subject).await? > 0;
        let digests = codes.iter().map(RecoveryCode::digest).collect();
        self.factors.set_recovery_digests(subject, digests).await?;
        if replaced {
            self.factors.bump_epoch(subject).await?;
            self.emit(EventKind::Replaced, Method::RecoveryCode, subject, None);
            self.notify(
                NoticeKind::FactorReplaced,
                Method::RecoveryCode,
                subject,
                None,
            );
        } else {
            self.emit(EventKind::Enrolled, Method::RecoveryCode, subject, None);
            self.notify(NoticeKind::FactorAdded, Method::RecoveryCode, subject, None);
        }
        self.changed(subject).await?;
        Ok(codes)
    }

    /// How many unused recovery codes the subject has.
    pub async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, ChallengeError> {
        Ok(self.factors.recovery_codes_left(subject).await?)
    }
}
