//! Factor changes: what a change needs ([`Engine::authorize_change`]),
//! and what follows one (recovery codes without a factor to back go; a
//! ready account recovery is used up).

use std::time::Duration;

use stepup_core::{Assurance, Method, Policy, Subject};

use super::Engine;
use crate::change::{self, Account, ChangeCheck, FactorChange, Refusal, Rule};
use crate::error::ChallengeError;
use crate::event::{EventKind, NoticeKind};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How factor changes are guarded (see [`FactorChange`]).
#[derive(Clone, Debug)]
pub(super) struct ChangeSettings {
    pub(super) fresh: Duration,
    pub(super) recovery_wait: Duration,
    pub(super) first_without_password: bool,
    pub(super) silent_recovery: bool,
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// What `change` to the subject's factors needs, given the `assurance`
    /// the request carries (if any): [`ChangeCheck::Allowed`], a fresh
    /// proof ([`ChangeCheck::Prove`] with the policy to challenge with), or
    /// a refusal with its reason. See [`FactorChange`] for the rule.
    ///
    /// ```
    /// use stepup_challenge::{ChangeCheck, Engine, FactorChange, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::*;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default())
    ///     .with_passwords(InsecureFixedPasswords::new([("bob", "builder")]));
    /// let bob = Subject::new("bob").with_session("s-1");
    /// // Bob has no second factor: his first needs the password, re-confirmed.
    /// match engine.authorize_change(&bob, None, FactorChange::Add(Method::Totp)).await? {
    ///     ChangeCheck::Prove(policy) => assert_eq!(policy.to_string(), "password within 5m"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn authorize_change(
        &self,
        subject: &Subject,
        assurance: Option<&Assurance>,
        change: FactorChange,
    ) -> Result<ChangeCheck, ChallengeError> {
        let enrolled = self.enrolled_methods(subject).await?;
        let now = self.clock.now();
        let recovery_ready = self
            .pending_recovery(subject)
            .await?
            .is_some_and(|r| r.is_ready(now));
        let account = self.account(&enrolled, recovery_ready);
        let rule = change::rule(change, &account);
        if matches!(rule, Rule::Refused(Refusal::CodesNeedFactor)) && account.passwords {
            // Nothing about the account's factors is told before the
            // password is re-confirmed: the challenge first, the refusal
            // after.
            let password = Policy::method(Method::Password)
                .max_age(self.changes.fresh)
                .with_reason(change::REASON);
            return Ok(
                match self.allowed_by(ChangeCheck::Prove(password), subject, assurance) {
                    ChangeCheck::Allowed => rule.into(),
                    prove => prove,
                },
            );
        }
        Ok(self.allowed_by(rule.into(), subject, assurance))
    }

    /// What starting an account recovery needs, given the request's
    /// `assurance`: a fresh proof with any second factor the subject has
    /// (an e-mail code, a recovery code: the weaker ones are the point).
    pub async fn authorize_recovery(
        &self,
        subject: &Subject,
        assurance: Option<&Assurance>,
    ) -> Result<ChangeCheck, ChallengeError> {
        let enrolled = self.enrolled_methods(subject).await?;
        let rule = change::recovery_rule(&self.account(&enrolled, false));
        Ok(self.allowed_by(rule.into(), subject, assurance))
    }

    fn account<'a>(&'a self, enrolled: &'a [Method], recovery_ready: bool) -> Account<'a> {
        Account {
            enrolled,
            levels: self.issuer.levels(),
            passwords: self.passwords.is_configured(),
            first_without_password: self.changes.first_without_password,
            recovery_ready,
            fresh: self.changes.fresh,
        }
    }

    /// A proof the presented assurance already satisfies is no longer asked.
    fn allowed_by(
        &self,
        check: ChangeCheck,
        subject: &Subject,
        assurance: Option<&Assurance>,
    ) -> ChangeCheck {
        let now = self.clock.now();
        match check {
            ChangeCheck::Prove(policy)
                if assurance.is_some_and(|a| {
                    a.subject().id() == subject.id()
                        && a.subject().epoch() == subject.epoch()
                        && a.satisfies(&policy, now)
                }) =>
            {
                ChangeCheck::Allowed
            }
            other => other,
        }
    }

    /// After a removal: recovery codes are a backup for a factor at least as
    /// strong, so when none is left they go too.
    pub(super) async fn removed(&self, subject: &Subject) -> Result<(), ChallengeError> {
        let levels = self.issuer.levels();
        let enrolled = self.enrolled_methods(subject).await?;
        let backed = enrolled.iter().any(|m| {
            change::is_strong(*m, levels)
                && levels.rank_of(*m) >= levels.rank_of(Method::RecoveryCode)
        });
        if !backed && enrolled.contains(&Method::RecoveryCode) {
            self.factors
                .set_recovery_digests(subject, Vec::new())
                .await?;
            self.emit(EventKind::Removed, Method::RecoveryCode, subject, None);
            self.notify(
                NoticeKind::FactorRemoved,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(())
    }

    /// After any completed change: a ready account recovery is used up (one
    /// change per waiting period).
    pub(super) async fn changed(&self, subject: &Subject) -> Result<(), ChallengeError> {
        let now = self.clock.now();
        if self
            .pending_recovery(subject)
            .await?
            .is_some_and(|r| r.is_ready(now))
        {
            self.state.remove(&self.recovery_key(subject)).await?;
        }
        Ok(())
    }
}
