//! TOTP: step-ups, enrollment (a pending secret confirmed by a first
//! code) and removal.

use std::fmt;
use std::time::Duration;

use stepup_core::{IssuedToken, Method, Subject};
use stepup_store::TotpSecret;
use stepup_store::attempts::Advance;

use super::events::Reason;
use super::{Attempt, Engine};
use crate::error::ChallengeError;
use crate::event::{EventKind, NoticeKind};
use crate::keys::StoreKeys;
use crate::limiter;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How long an enrollment waits to be confirmed with a first code.
const ENROLLMENT_TTL: Duration = Duration::from_secs(10 * 60);

/// A TOTP enrollment waiting for its first code: show the QR code (or the
/// URI, or the base-32 secret for manual entry), then call
/// [`Engine::confirm_totp_enrollment`]. `Debug` is redacted.
pub struct TotpEnrollment {
    uri: String,
    qr_png: Vec<u8>,
    key: String,
}

impl TotpEnrollment {
    /// The `otpauth://totp/…` URI (it contains the secret: show it only to
    /// the user, never log it).
    pub fn otpauth_uri(&self) -> &str {
        &self.uri
    }

    /// The URI as a PNG QR code.
    pub fn qr_png(&self) -> &[u8] {
        &self.qr_png
    }

    /// The secret in base 32, for users who type it into their app instead
    /// of scanning (show it only to the user, never log it).
    pub fn manual_entry_key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrollment([redacted])")
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Steps up with a TOTP code.
    pub async fn step_up_totp(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let method = Method::Totp;
        let outcome = self.totp_inner(attempt, code).await;
        // The step is recorded in the same commit as the counters.
        self.finish_committing(attempt, method, method, outcome.map(Some))
            .await
    }

    /// Counts the attempt and checks the code: the step to record as used.
    async fn totp_inner(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<Advance, ChallengeError> {
        self.totp.check_format(code)?;
        let secret = self
            .factors
            .totp_secret(attempt.subject)
            .await?
            .ok_or(ChallengeError::NotEnrolled(Method::Totp))?;
        let admitted = self.admit(attempt, Method::Totp).await?;
        let now = self.clock.now().as_unix_seconds();
        let step = self
            .totp
            .matched_step(&secret, code, now)?
            .ok_or(ChallengeError::Wrong {
                few_left: admitted.few_left,
            })?;
        Ok(self.step_advance(attempt.subject, &secret, step))
    }

    /// Records `step` as the last accepted one for this subject and secret
    /// (see [`accept_step`](Self::accept_step)), as part of a commit.
    fn step_advance(&self, subject: &Subject, secret: &TotpSecret, step: u64) -> Advance {
        Advance {
            key: StoreKeys::totp_step(
                &self.keys.subject(subject),
                &self.keys.secret(secret.as_bytes()),
            ),
            step,
            ttl: self.totp.replay_memory(),
        }
    }

    /// Records `step` as the last accepted one for this subject and secret;
    /// refuses a step that is not newer (replay, or an older in-window code
    /// after a newer one). A new secret has its own replay state.
    async fn accept_step(
        &self,
        subject: &Subject,
        secret: &TotpSecret,
        step: u64,
    ) -> Result<(), ChallengeError> {
        let advance = self.step_advance(subject, secret, step);
        if self
            .state
            .advance(&advance.key, advance.step, advance.ttl)
            .await?
        {
            Ok(())
        } else {
            Err(ChallengeError::AlreadyUsed)
        }
    }

    /// Starts a TOTP enrollment: a fresh secret (160 bits), kept on the
    /// server for ten minutes until confirmed, for this subject *and
    /// session* only.
    pub async fn start_totp_enrollment(
        &self,
        subject: &Subject,
        account_name: &str,
    ) -> Result<TotpEnrollment, ChallengeError> {
        let secret = TotpSecret::generate()?;
        let enrollment = TotpEnrollment {
            uri: self.totp.otpauth_uri(&secret, account_name)?,
            qr_png: self.totp.qr_png(&secret, account_name)?,
            key: secret.to_base32(),
        };
        // Sealed: a reader of the state store (a shared Redis, a database
        // backup) never sees the secret that becomes the user's factor.
        let key = self.enrollment_key(subject);
        let sealed = self.keys.seal(&key, secret.as_bytes())?;
        self.state.put(&key, sealed, ENROLLMENT_TTL).await?;
        Ok(enrollment)
    }

    /// Confirms a pending TOTP enrollment of this session with a first valid
    /// code. The code's step is recorded in the new secret's replay state,
    /// so it cannot then be replayed as a step-up; of two racing
    /// confirmations one wins. Counted by the attempt limiter like a
    /// step-up. Replacing a secret bumps the subject's epoch.
    pub async fn confirm_totp_enrollment(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<(), ChallengeError> {
        self.totp.check_format(code)?;
        let subject = attempt.subject;
        let key = self.enrollment_key(subject);
        // No pending enrollment is no guess: not counted.
        let pending = self
            .state
            .get(&key)
            .await?
            .and_then(|sealed| self.keys.open(&key, &sealed))
            .and_then(|bytes| TotpSecret::from_bytes(&bytes))
            .ok_or(ChallengeError::NoPendingEnrollment)?;
        let admitted = self.admit(attempt, Method::Totp).await?;
        let now = self.clock.now().as_unix_seconds();
        let Some(step) = self.totp.matched_step(&pending, code, now)? else {
            self.emit(
                EventKind::Failed,
                Method::Totp,
                subject,
                Some(Reason::Wrong),
            );
            if let Some(address) = self.address_key(attempt) {
                limiter::failed_from(&self.state, &self.limits, &address, self.clock.now()).await?;
            }
            return Err(ChallengeError::Wrong {
                few_left: admitted.few_left,
            });
        };
        // The new secret's own replay state first, so a refusal loses
        // nothing; then take the pending secret once.
        self.accept_step(subject, &pending, step).await?;
        if self.state.take(&key).await?.is_none() {
            return Err(ChallengeError::NoPendingEnrollment);
        }
        let replaced = self.factors.has_totp_secret(subject).await?;
        self.factors.set_totp_secret(subject, pending).await?;
        limiter::succeeded(
            &self.state,
            &self.limiter_keys(subject, Method::Totp),
            &[],
            None,
            None,
        )
        .await?;
        if replaced {
            self.factors.bump_epoch(subject).await?;
            self.emit(EventKind::Replaced, Method::Totp, subject, None);
            self.notify(NoticeKind::FactorReplaced, Method::Totp, subject, None);
        } else {
            self.emit(EventKind::Enrolled, Method::Totp, subject, None);
            self.notify(NoticeKind::FactorAdded, Method::Totp, subject, None);
        }
        self.changed(subject).await?;
        Ok(())
    }

    /// Removes the subject's TOTP enrollment, bumps the subject's epoch
    /// (outstanding assurance ends) and notifies. No proof is checked here
    /// (the caller asks [`authorize_change`](Engine::authorize_change) first).
    pub async fn remove_totp(&self, subject: &Subject) -> Result<(), ChallengeError> {
        // Whether it is there, without opening it: a secret that no longer
        // opens (a sealing key gone) can still be removed.
        if !self.factors.has_totp_secret(subject).await? {
            return Err(ChallengeError::NotEnrolled(Method::Totp));
        }
        self.factors.remove_totp_secret(subject).await?;
        self.factors.bump_epoch(subject).await?;
        self.emit(EventKind::Removed, Method::Totp, subject, None);
        self.notify(NoticeKind::FactorRemoved, Method::Totp, subject, None);
        self.removed(subject).await?;
        self.changed(subject).await?;
        Ok(())
    }

    fn enrollment_key(&self, subject: &Subject) -> String {
        StoreKeys::totp_enrollment(&self.keys.session(subject))
    }
}
