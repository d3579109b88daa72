//! Events: one per challenge attempt and enrollment change, for monitoring
//! success rates and drop-offs. Never a code, secret, password or token.

use std::fmt;

use stepup_core::{Method, Subject, Timestamp};
use stepup_http::Via;

/// What happened. The funnel of a step-up, in order: [`Challenged`]
/// (a guard refused a request), [`PageShown`], [`MethodStarted`] (a code
/// sent, a passkey ceremony started), [`Failed`] / [`LockedOut`], then
/// [`Succeeded`] or [`Abandoned`], and [`Resumed`] when a kept form went
/// ahead afterwards.
///
/// [`Challenged`]: EventKind::Challenged
/// [`PageShown`]: EventKind::PageShown
/// [`MethodStarted`]: EventKind::MethodStarted
/// [`Failed`]: EventKind::Failed
/// [`LockedOut`]: EventKind::LockedOut
/// [`Succeeded`]: EventKind::Succeeded
/// [`Abandoned`]: EventKind::Abandoned
/// [`Resumed`]: EventKind::Resumed
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A guard refused a request for want of a step-up, opening a journey
    /// (once per subject while a journey is open: a refusal within an open
    /// journey is part of it). Carries route, policy, reason and
    /// [`Via`](stepup_http::Via).
    Challenged,
    /// The challenge page was shown (once per rendering).
    PageShown,
    /// A method that has a first step was started: an e-mail or SMS code
    /// sent, a passkey ceremony begun. (TOTP, passwords and recovery codes
    /// have none: their first event is the attempt's.)
    MethodStarted,
    /// A step-up succeeded and a token was issued (closing the journey).
    Succeeded,
    /// A step-up attempt failed (see the reason).
    Failed,
    /// The attempt hit a lockout.
    LockedOut,
    /// A journey ended without a success within the funnel window
    /// ([`Engine::with_funnel_window`](crate::Engine::with_funnel_window)).
    Abandoned,
    /// A form kept across the step-up went ahead (once per form).
    Resumed,
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
    ///
    /// ```
    /// assert_eq!(stepup_challenge::EventKind::PageShown.as_str(), "page_shown");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Challenged => "challenged",
            EventKind::PageShown => "page_shown",
            EventKind::MethodStarted => "method_started",
            EventKind::Succeeded => "succeeded",
            EventKind::Failed => "failed",
            EventKind::LockedOut => "locked_out",
            EventKind::Abandoned => "abandoned",
            EventKind::Resumed => "resumed",
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
/// without naming users. The funnel's events carry the route and policy
/// of the journey they belong to (the refusal that opened it), when this
/// instance saw that refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Which method (none for `challenged`, `page_shown`, `abandoned`,
    /// `resumed`).
    pub method: Option<Method>,
    /// The subject's keyed digest.
    pub subject: String,
    /// Why: for failures `wrong`, `already_used`, `format`,
    /// `not_enrolled`, `store`, `wrong_number` (an approval refused on the
    /// other device), …; for `challenged` the challenge reason
    /// (`no_token`, `insufficient_level`, `stale`, …).
    pub reason: Option<&'static str>,
    /// The path of the request the journey started on (no query).
    pub route: Option<String>,
    /// The policy the journey started under: the guard's name, or the
    /// policy's text.
    pub policy: Option<String>,
    /// Whether the journey started in a browser or an API client.
    pub via: Option<Via>,
    /// When.
    pub at: Timestamp,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(method) = self.method {
            write!(f, " method={method}")?;
        }
        write!(f, " subject={}", self.subject)?;
        if let Some(reason) = self.reason {
            write!(f, " reason={reason}")?;
        }
        if let Some(policy) = &self.policy {
            write!(f, " policy={policy:?}")?;
        }
        if let Some(route) = &self.route {
            write!(f, " route={route}")?;
        }
        if let Some(via) = self.via {
            write!(f, " via={}", via.as_str())?;
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
    /// An approval request was refused on the user's other device (a
    /// wrong number): someone may be signed in as the user. After three
    /// within a day, approvals are suspended for the rest of it.
    ApprovalRefused,
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
            NoticeKind::ApprovalRefused => "approval_refused",
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
