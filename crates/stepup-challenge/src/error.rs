//! What can go wrong in a challenge, typed so an adapter can say it clearly.

use stepup_core::{IssueError, Method, Timestamp};

pub use stepup_store::StoreError;

/// Why a challenge did not produce a new assurance token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The code or password was wrong. How many attempts are left is not
    /// told (it would tell a patient attacker how to stay under every
    /// budget), only whether few are.
    #[error("that was not right{}", if *few_left { "; a few more failures will pause this method" } else { "" })]
    Wrong {
        /// Only a few attempts are left before a pause.
        few_left: bool,
    },
    /// Too many consecutive failures with this method (at most 100, NIST
    /// SP 800-63B): it stays disabled for this account until a success with
    /// a factor of the user's own at least as strong (not the password, a
    /// recovery code, or an e-mail/SMS code the table ranks no higher than
    /// the password), or the application's reset.
    #[error(
        "{0} is paused for this account after too many failed attempts; use another way to confirm"
    )]
    Disabled(Method),
    /// An account recovery cannot start: no notice sink is configured
    /// (nobody could tell the user, who could not cancel it).
    #[error("{0}")]
    Recovery(&'static str),
    /// Too many attempts: nothing is checked until `until`, right or wrong.
    #[error("too many attempts; try again after {until}")]
    LockedOut {
        /// When attempts are accepted again.
        until: Timestamp,
    },
    /// The code was right but was already used (or an older one was, after a
    /// newer one): wait for the next code.
    #[error("that code was already used; wait for the next one")]
    AlreadyUsed,
    /// The input is not in the expected format (for TOTP: exactly the
    /// configured number of ASCII digits). Not counted as an attempt.
    #[error("{0}")]
    Format(&'static str),
    /// The subject has not enrolled this method.
    #[error("{0} is not set up for this account")]
    NotEnrolled(Method),
    /// No one-time code is waiting for this sign-in (none was sent, it
    /// expired, was used, or a newer one replaced it).
    #[error("there is no valid code waiting; send a new one")]
    NoPendingCode,
    /// No passkey ceremony with that id is waiting for this sign-in (it was
    /// finished, expired, or started by another session or user).
    #[error("that passkey request has expired or was already used; start again")]
    NoPendingCeremony,
    /// The confirmation of a bound action expired, was used, or had too
    /// many wrong answers.
    #[error("this confirmation has expired or was already used; go back and submit again")]
    NoPendingAction,
    /// The passkey's answer did not verify (wrong origin, no user
    /// verification, a credential not registered to this user, …).
    #[error("the passkey could not be verified")]
    PasskeyRejected,
    /// The passkey configuration is unusable (relying-party id or origin).
    #[error("passkeys are misconfigured: {0}")]
    PasskeyConfig(String),
    /// The approval on the other device was not given yet: wait, then
    /// finish again. Not counted as an attempt.
    #[error("not approved yet: approve on your other device, then continue")]
    ApprovalPending,
    /// The approval was refused on the other device (a wrong number): it
    /// is void; start a new one. Not counted again (the wrong number was).
    #[error("the request was refused on your other device; send a new one")]
    ApprovalRefused,
    /// No enrollment is waiting to be confirmed (it expired or was used).
    #[error("there is no pending enrollment to confirm; start again")]
    NoPendingEnrollment,
    /// A store failed; nothing was recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The token could not be issued; nothing was recorded.
    #[error("the step-up succeeded but no token could be issued: {0}")]
    Issue(#[from] IssueError),
}

/// No randomness to draw a code, secret or id from: a failure of kind
/// `random`, answered like a store failure (nothing was recorded).
pub(crate) fn no_randomness(error: getrandom::Error) -> StoreError {
    StoreError::new("random", format!("no randomness available: {error}"))
}
