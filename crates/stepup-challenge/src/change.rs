//! Who may change an account's factors, with what proof: the rule that
//! keeps a stolen session, or a password plus a mailbox, from adding a
//! factor of the attacker's and stepping up with it.
//!
//! Ranks come from the configured [`LevelTable`] (the level one proof of a
//! method alone reaches), never from a literal level:
//!
//! * **Adding** a factor needs a fresh proof (5 minutes by default) with a
//!   factor at least as strong as the strongest the user already has.
//! * **Replacing** one (a new TOTP secret, new recovery codes) needs that,
//!   with the replaced factor itself or a strictly stronger one.
//! * **Removing** one needs a proof at least as strong as the factor removed.
//! * The password never counts once the user has a second factor; recovery
//!   codes never count (they are a backup), nor do they make the user "have
//!   a second factor". Nor do e-mail and SMS codes unless the table ranks
//!   them above the password: a user whose only factors are such codes
//!   proves the password *and* a code. A user without any re-confirms the
//!   password to add the first.
//! * Recovery codes are generated only for a user who has another factor
//!   at least as strong as they are.
//! * A weaker factor (an e-mail or SMS code, a recovery code) replaces a
//!   lost stronger one only after an account recovery's waiting period
//!   ([`Engine::start_account_recovery`](crate::Engine::start_account_recovery)).

use std::time::Duration;

use stepup_core::{LevelTable, Method, Policy};

/// A change to a subject's factors, and the rule it is held to
/// ([`Engine::authorize_change`](crate::Engine::authorize_change)). Ranks
/// come from the configured level table
/// ([`LevelTable::rank_of`](stepup_core::LevelTable::rank_of)), and every
/// proof must be fresh (5 minutes by default):
///
/// | change | needs |
/// |---|---|
/// | the first second factor | the password, re-confirmed — and a code, for a user with e-mail or SMS codes; without a password check, refused unless [`dangerously_allow_first_factor_without_password`](crate::Engine::dangerously_allow_first_factor_without_password) |
/// | `Add` | a proof with a factor at least as strong as the strongest the user has |
/// | `Replace` | that, with the replaced factor itself or a strictly stronger one |
/// | `Remove` | a proof at least as strong as the removed factor |
/// | recovery codes (`Add`/`Replace(RecoveryCode)`) | another factor at least as strong as recovery codes, and a proof with the strongest |
///
/// The password never counts once the user has a second factor; recovery
/// codes never count, nor do e-mail and SMS codes the table does not rank
/// above the password — except in a ready account recovery, which accepts
/// any second factor for one change.
///
/// ```
/// use stepup_challenge::FactorChange;
/// use stepup_core::Method;
/// assert_ne!(FactorChange::Add(Method::Totp), FactorChange::Replace(Method::Totp));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FactorChange {
    /// A new factor of this method (a first TOTP, another passkey, the first
    /// recovery codes).
    Add(Method),
    /// A factor of this method replaced by a new one (a new TOTP secret,
    /// new recovery codes).
    Replace(Method),
    /// A factor of this method removed.
    Remove(Method),
}

/// What a change needs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ChangeCheck {
    /// The assurance presented is enough.
    Allowed,
    /// A fresh proof satisfying this policy first (answer with its
    /// challenge, then come back).
    Prove(Policy),
    /// Not possible this way; the text says why and what to do.
    Refused(&'static str),
}

/// What an account has and how the deployment is set up, for the rule.
pub(crate) struct Account<'a> {
    /// The methods the subject can step up with (password included when the
    /// application checks passwords).
    pub(crate) enrolled: &'a [Method],
    pub(crate) levels: &'a LevelTable,
    pub(crate) passwords: bool,
    pub(crate) first_without_password: bool,
    /// An account recovery's waiting period is over.
    pub(crate) recovery_ready: bool,
    pub(crate) fresh: Duration,
}

pub(crate) const REASON: &str = "Confirm it's you before changing how you sign in.";
/// Why an account recovery asks for a step-up.
pub(crate) const RECOVERY_REASON: &str = "Confirm it's you to start an account recovery.";
const CODES_NEED_FACTOR: &str = "Set up an authenticator app or a passkey first: recovery codes are a backup for another factor.";
const NO_PASSWORD_CHECK: &str =
    "Adding a first factor needs a password check, and this service has none configured.";
const TOO_WEAK: &str = "None of your ways to confirm is strong enough for this change. If you lost your strongest one, start an account recovery.";

/// What the rule decides; the caller is told it as a [`ChangeCheck`]
/// (`Rule::into`), the engine also looks at which refusal it is.
#[derive(Clone, Debug)]
pub(crate) enum Rule {
    /// See [`ChangeCheck::Allowed`].
    Allowed,
    /// See [`ChangeCheck::Prove`].
    Prove(Policy),
    /// See [`ChangeCheck::Refused`].
    Refused(Refusal),
}

/// Why a change (or an account recovery) cannot be made this way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Recovery codes without a strong factor for them to back up.
    CodesNeedFactor,
    /// A first factor, with no password check configured.
    NoPasswordCheck,
    /// No factor of the user's is strong enough for this change.
    TooWeak,
    /// An account recovery for a user without a strong factor.
    NothingToRecover,
    /// An account recovery for a user without any second factor.
    NoOtherWay,
}

impl Refusal {
    /// What the user is told.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Refusal::CodesNeedFactor => CODES_NEED_FACTOR,
            Refusal::NoPasswordCheck => NO_PASSWORD_CHECK,
            Refusal::TooWeak => TOO_WEAK,
            Refusal::NothingToRecover => NOTHING_TO_RECOVER,
            Refusal::NoOtherWay => NO_OTHER_WAY,
        }
    }
}

impl From<Rule> for ChangeCheck {
    fn from(rule: Rule) -> ChangeCheck {
        match rule {
            Rule::Allowed => ChangeCheck::Allowed,
            Rule::Prove(policy) => ChangeCheck::Prove(policy),
            Rule::Refused(refusal) => ChangeCheck::Refused(refusal.text()),
        }
    }
}

/// Whether a proof of `method` shows the user holds a second factor of
/// their own: not the password, not a recovery code (a backup), and an
/// e-mail or SMS code only where the table ranks it above the password
/// (whoever has the password often has the mailbox).
pub(crate) fn is_strong(method: Method, levels: &LevelTable) -> bool {
    match method {
        Method::Password | Method::RecoveryCode => false,
        // A mailbox code, or the application's own method: only where the
        // table ranks it above the password (a custom method the table
        // does not place is level 1, like the password).
        Method::EmailCode | Method::SmsCode | Method::Custom(_) => {
            levels.rank_of(method) > levels.rank_of(Method::Password)
        }
        _ => true,
    }
}

#[cfg(test)]
mod strength {
    use super::*;

    #[test]
    fn a_custom_method_is_strong_only_where_the_table_ranks_it_above_the_password() {
        let push = Method::custom("approve").unwrap();
        assert!(!is_strong(push, &LevelTable::nist()));
        assert!(is_strong(
            push,
            &LevelTable::nist().with_custom_method(push, 2, &["mca"])
        ));
        assert!(is_strong(Method::Totp, &LevelTable::nist()));
        assert!(!is_strong(Method::EmailCode, &LevelTable::nist()));
    }
}

/// The policy a change needs, or why it cannot be made.
pub(crate) fn rule(change: FactorChange, account: &Account<'_>) -> Rule {
    let rank = |m: &Method| account.levels.rank_of(*m);
    let second: Vec<Method> = account
        .enrolled
        .iter()
        .copied()
        .filter(|m| *m != Method::Password)
        .collect();
    let strong: Vec<Method> = second
        .iter()
        .copied()
        .filter(|m| is_strong(*m, account.levels))
        .collect();
    let weak_codes = || {
        second
            .iter()
            .copied()
            .filter(|m| matches!(m, Method::EmailCode | Method::SmsCode) && !strong.contains(m))
            .map(Policy::method)
            .reduce(Policy::or)
    };
    let codes = matches!(
        change,
        FactorChange::Add(Method::RecoveryCode) | FactorChange::Replace(Method::RecoveryCode)
    );
    if codes
        && !strong
            .iter()
            .any(|m| rank(m) >= rank(&Method::RecoveryCode))
    {
        return Rule::Refused(Refusal::CodesNeedFactor);
    }
    let Some(strongest) = strong.iter().map(rank).max() else {
        // No second factor yet: the password, re-confirmed — and a code on
        // the user's e-mail or phone when there is one, so neither the
        // password nor the mailbox alone adds a factor.
        let password = account.passwords.then(|| Policy::method(Method::Password));
        let policy = match (password, weak_codes()) {
            (Some(p), Some(codes)) => p.and(codes),
            (Some(p), None) => p,
            (None, _) if !account.first_without_password => {
                return Rule::Refused(Refusal::NoPasswordCheck);
            }
            (None, Some(codes)) => codes,
            (None, None) => return Rule::Allowed,
        };
        return Rule::Prove(policy.max_age(account.fresh).with_reason(REASON));
    };
    let candidates: Vec<Method> = if account.recovery_ready {
        second
    } else {
        let (threshold, replaced) = match change {
            // New recovery codes cannot be proven with the old ones (they
            // never count): they need the strongest factor, as an addition.
            FactorChange::Add(_) | FactorChange::Replace(Method::RecoveryCode) => (strongest, None),
            FactorChange::Replace(old) => (strongest, Some(old)),
            FactorChange::Remove(old) => (rank(&old), None),
        };
        strong
            .into_iter()
            .filter(|m| rank(m) >= threshold)
            .filter(|m| replaced.is_none_or(|old| m.satisfies(&old) || rank(m) > rank(&old)))
            .collect()
    };
    let Some(policy) = candidates
        .into_iter()
        .map(Policy::method)
        .reduce(Policy::or)
    else {
        return Rule::Refused(Refusal::TooWeak);
    };
    Rule::Prove(policy.max_age(account.fresh).with_reason(REASON))
}

const NOTHING_TO_RECOVER: &str =
    "There is nothing to recover: without a stronger factor you can add one with your password.";
const NO_OTHER_WAY: &str = "You have no other way to confirm it's you: please contact support.";

/// What starting an account recovery needs: a fresh proof with any second
/// factor the user has, weaker ones included (that is the point), for a
/// user who has a strong factor to lose.
pub(crate) fn recovery_rule(account: &Account<'_>) -> Rule {
    let has_strong = account
        .enrolled
        .iter()
        .any(|m| is_strong(*m, account.levels));
    if !has_strong {
        return Rule::Refused(Refusal::NothingToRecover);
    }
    account
        .enrolled
        .iter()
        .copied()
        .filter(|m| *m != Method::Password)
        .map(Policy::method)
        .reduce(Policy::or)
        .map_or(Rule::Refused(Refusal::NoOtherWay), |policy| {
            Rule::Prove(policy.max_age(account.fresh).with_reason(RECOVERY_REASON))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(change: FactorChange, enrolled: &[Method]) -> ChangeCheck {
        check_with(change, enrolled, &LevelTable::nist(), false)
    }

    fn check_with(
        change: FactorChange,
        enrolled: &[Method],
        levels: &LevelTable,
        ready: bool,
    ) -> ChangeCheck {
        rule(
            change,
            &Account {
                enrolled,
                levels,
                passwords: enrolled.contains(&Method::Password),
                first_without_password: false,
                recovery_ready: ready,
                fresh: Duration::from_secs(300),
            },
        )
        .into()
    }

    fn policy(c: ChangeCheck) -> String {
        match c {
            ChangeCheck::Prove(p) => p.to_string(),
            ChangeCheck::Allowed => "allowed".into(),
            ChangeCheck::Refused(why) => format!("refused: {why}"),
        }
    }

    use Method::*;

    #[test]
    fn a_first_factor_needs_the_password() {
        assert_eq!(
            policy(check(FactorChange::Add(Totp), &[Password])),
            "password within 5m"
        );
        // E-mail codes do not make a second factor: the password and a code.
        assert_eq!(
            policy(check(FactorChange::Add(Totp), &[Password, EmailCode])),
            "password within 5m and email_code within 5m"
        );
        assert!(policy(check(FactorChange::Add(Totp), &[])).starts_with("refused"));
        // Without a password check the mailbox alone does not add a factor.
        assert!(policy(check(FactorChange::Add(Totp), &[EmailCode])).starts_with("refused"));
    }

    #[test]
    fn recovery_codes_need_another_factor() {
        let refused = |m: &[Method]| policy(check(FactorChange::Add(RecoveryCode), m));
        assert!(refused(&[Password]).starts_with("refused"));
        assert!(refused(&[Password, EmailCode]).starts_with("refused"));
        assert!(refused(&[Password, RecoveryCode]).starts_with("refused"));
        assert_eq!(refused(&[Password, Totp]), "totp within 5m");
    }

    #[test]
    fn adding_needs_the_strongest_and_never_the_password_or_a_backup() {
        let enrolled = [Password, Totp, EmailCode, RecoveryCode];
        assert_eq!(
            policy(check(FactorChange::Add(Passkey), &enrolled)),
            "totp within 5m"
        );
        let with_key = [Password, DeviceBoundPasskey, Totp, EmailCode];
        assert_eq!(
            policy(check(FactorChange::Add(Passkey), &with_key)),
            "device_bound_passkey within 5m"
        );
    }

    #[test]
    fn replacing_needs_the_factor_itself_or_a_stronger_one() {
        let enrolled = [Password, Passkey, Totp];
        assert_eq!(
            policy(check(FactorChange::Replace(Totp), &enrolled)),
            "totp within 5m"
        );
        let enrolled = [Password, DeviceBoundPasskey, Totp];
        assert_eq!(
            policy(check(FactorChange::Replace(Totp), &enrolled)),
            "device_bound_passkey within 5m"
        );
    }

    #[test]
    fn removing_needs_a_proof_as_strong_as_the_factor() {
        let enrolled = [Password, DeviceBoundPasskey, Totp, EmailCode];
        assert_eq!(
            policy(check(FactorChange::Remove(Totp), &enrolled)),
            "device_bound_passkey within 5m or totp within 5m"
        );
        assert_eq!(
            policy(check(FactorChange::Remove(DeviceBoundPasskey), &enrolled)),
            "device_bound_passkey within 5m"
        );
    }

    #[test]
    fn a_ready_recovery_accepts_the_weaker_factors() {
        let enrolled = [Password, Totp, EmailCode, RecoveryCode];
        assert_eq!(
            policy(check_with(
                FactorChange::Replace(Totp),
                &enrolled,
                &LevelTable::nist(),
                true
            )),
            "totp within 5m or email_code within 5m or recovery_code within 5m"
        );
    }

    #[test]
    fn ranks_come_from_the_table() {
        use stepup_core::Level;
        // A table where e-mail codes rank with TOTP: an e-mail proof may add.
        let table = LevelTable::new([
            Level::new(1, "low").reached_by_distinct(1),
            Level::new(2, "high").reached_by_any_of([Totp, EmailCode, Passkey]),
        ])
        .unwrap_or_default();
        let enrolled = [Password, Totp, EmailCode];
        assert_eq!(
            policy(check_with(
                FactorChange::Add(Passkey),
                &enrolled,
                &table,
                false
            )),
            "totp within 5m or email_code within 5m"
        );
    }
}
