//! Events: one per challenge attempt and enrollment change, for monitoring
//! success rates and drop-offs. Never a code, secret, password or token.

use std::fmt;

use stepup_core::{Method, Subject, Timestamp};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A challenge was shown to the user.
    ChallengeIssued,
    /// A step-up succeeded and a token was issued.
    Succeeded,
    /// A step-up attempt failed (see the reason).
    Failed,
    /// The attempt hit a lockout.
    LockedOut,
    /// A method was enrolled (confirmed).
    Enrolled,
    /// A method (or a set of recovery codes) was removed.
    Removed,
    /// A method was replaced (a new TOTP secret, new recovery codes).
    Replaced,
    /// A method was disabled for the subject after too many consecutive
    /// failures.
    Disabled,
    /// An account recovery (replacing a lost factor through a weaker one)
    /// started its waiting period.
    RecoveryStarted,
    /// A pending account recovery was cancelled.
    RecoveryCancelled,
}

impl EventKind {
    /// A stable snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::ChallengeIssued => "challenge_issued",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::LockedOut => "locked_out",
            EventKind::Enrolled => "enrolled",
            EventKind::Removed => "removed",
            EventKind::Replaced => "replaced",
            EventKind::Disabled => "disabled",
            EventKind::RecoveryStarted => "recovery_started",
            EventKind::RecoveryCancelled => "recovery_cancelled",
        }
    }
}

/// One event. The subject appears only as a keyed digest (16 hex
/// characters), stable for one engine key, so events can be correlated
/// without naming users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Which method.
    pub method: Method,
    /// The subject's keyed digest.
    pub subject: String,
    /// Why, for failures: `wrong`, `already_used`, `format`, `not_enrolled`,
    /// `store`, …
    pub reason: Option<&'static str>,
    /// When.
    pub at: Timestamp,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} subject={}",
            self.method,
            self.kind.as_str(),
            self.subject
        )?;
        if let Some(reason) = self.reason {
            write!(f, " reason={reason}")?;
        }
        Ok(())
    }
}

/// Where the application wants events (a metrics counter, an audit log).
/// Called synchronously: keep it quick.
pub trait EventSink: Send + Sync + 'static {
    /// Records one event.
    fn record(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync + 'static> EventSink for F {
    fn record(&self, event: &Event) {
        self(event)
    }
}

/// A change to an account's factors that its owner should hear about, on
/// every channel they have ("a passkey was added to your account", "your
/// authenticator app was replaced", "someone started an account recovery:
/// cancel it if it was not you"). Unlike an [`Event`], a notice names the
/// subject, so the application can reach the user; it carries no secret.
#[derive(Clone, Debug)]
pub struct Notice<'a> {
    /// What happened.
    pub kind: NoticeKind,
    /// Which method (for an account recovery: `RecoveryCode`, standing for
    /// the weaker factors it lets replace a stronger one).
    pub method: Method,
    /// Whose account.
    pub subject: &'a Subject,
    /// When.
    pub at: Timestamp,
    /// For [`NoticeKind::RecoveryStarted`]: when the waiting period ends.
    pub ready_at: Option<Timestamp>,
}

/// What a [`Notice`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoticeKind {
    /// A factor was added.
    FactorAdded,
    /// A factor was replaced (a new TOTP secret; new recovery codes).
    FactorReplaced,
    /// A factor was removed.
    FactorRemoved,
    /// A method was disabled after too many consecutive failures.
    MethodDisabled,
    /// An account recovery started its waiting period: tell the user how to
    /// cancel it.
    RecoveryStarted,
    /// A pending account recovery was cancelled.
    RecoveryCancelled,
}

impl NoticeKind {
    /// A stable snake_case name.
    ///
    /// ```
    /// assert_eq!(stepup_challenge::NoticeKind::FactorAdded.as_str(), "factor_added");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::FactorAdded => "factor_added",
            NoticeKind::FactorReplaced => "factor_replaced",
            NoticeKind::FactorRemoved => "factor_removed",
            NoticeKind::MethodDisabled => "method_disabled",
            NoticeKind::RecoveryStarted => "recovery_started",
            NoticeKind::RecoveryCancelled => "recovery_cancelled",
        }
    }
}

/// Where the application wants [`Notice`]s: turn them into e-mails, SMS,
/// push messages to every channel the user has. Called synchronously after
/// the change is stored: queue the message, do not send inline.
pub trait NoticeSink: Send + Sync + 'static {
    /// Delivers one notice.
    fn notify(&self, notice: &Notice<'_>);
}

impl<F: Fn(&Notice<'_>) + Send + Sync + 'static> NoticeSink for F {
    fn notify(&self, notice: &Notice<'_>) {
        self(notice)
    }
}
