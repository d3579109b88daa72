//! Events: one per challenge attempt and enrollment change, for monitoring
//! success rates and drop-offs. Never a code, secret, password or token.

use std::fmt;

use stepup_core::{Method, Timestamp};

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
    /// A method (or a set of recovery codes) was removed or replaced.
    Removed,
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
