//! Events (to `tracing` and the application's sink) and notices (to the
//! user).

use stepup_core::{Method, Subject, Timestamp};

use super::Engine;
use super::funnel::Origin;
use crate::error::ChallengeError;
use crate::event::{Event, EventKind, Notice, NoticeKind};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// Why an event happened: its [`Event::reason`] (and the log's `reason`),
/// a stable snake_case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reason {
    /// A wrong code, password or recovery code.
    Wrong,
    /// A wrong number typed on the other device for an approval.
    WrongNumber,
    /// A code already used (or older than one used).
    AlreadyUsed,
    /// Input not in the expected format.
    Format,
    /// The method is not set up for the subject.
    NotEnrolled,
    /// No e-mail or SMS code waiting.
    NoPendingCode,
    /// No passkey ceremony waiting.
    NoPendingCeremony,
    /// No bound-action ceremony waiting.
    NoPendingAction,
    /// A passkey answer that did not verify.
    PasskeyRejected,
    /// A store failed.
    Store,
    /// The token could not be issued.
    Issue,
    /// Any other failure (busy, misconfigured passkeys, no pending
    /// enrollment, an account recovery refused).
    Other,
    /// Too many codes sent to the subject.
    SendLimit,
    /// The code sender failed.
    Send,
    /// A passkey registration did not verify.
    #[cfg(feature = "passkey")]
    Registration,
    /// A passkey registered already.
    #[cfg(feature = "passkey")]
    AlreadyRegistered,
    /// A pending account recovery ended because a factor of the user's own
    /// was used.
    FactorUsed,
    /// A guard's refusal: the challenge reason's code.
    Challenge(&'static str),
    /// An upstream step-up failed: [`UpstreamError::code`](crate::UpstreamError::code).
    Upstream(&'static str),
}

impl Reason {
    /// The name events and logs carry.
    fn as_str(self) -> &'static str {
        match self {
            Reason::Wrong => "wrong",
            Reason::WrongNumber => "wrong_number",
            Reason::AlreadyUsed => "already_used",
            Reason::Format => "format",
            Reason::NotEnrolled => "not_enrolled",
            Reason::NoPendingCode => "no_pending_code",
            Reason::NoPendingCeremony => "no_pending_ceremony",
            Reason::NoPendingAction => "no_pending_action",
            Reason::PasskeyRejected => "passkey_rejected",
            Reason::Store => "store",
            Reason::Issue => "issue",
            Reason::Other => "other",
            Reason::SendLimit => "send_limit",
            Reason::Send => "send",
            #[cfg(feature = "passkey")]
            Reason::Registration => "registration",
            #[cfg(feature = "passkey")]
            Reason::AlreadyRegistered => "already_registered",
            Reason::FactorUsed => "factor_used",
            Reason::Challenge(code) | Reason::Upstream(code) => code,
        }
    }

    /// The event a failed attempt is recorded as. Every error is named
    /// here: a new one must say what it is.
    pub(super) fn of_failure(error: &ChallengeError) -> (EventKind, Option<Reason>) {
        match error {
            ChallengeError::LockedOut { .. } => (EventKind::LockedOut, None),
            ChallengeError::Disabled(_) => (EventKind::Disabled, None),
            ChallengeError::Wrong { .. } => (EventKind::Failed, Some(Reason::Wrong)),
            ChallengeError::AlreadyUsed => (EventKind::Failed, Some(Reason::AlreadyUsed)),
            ChallengeError::Format(_) => (EventKind::Failed, Some(Reason::Format)),
            ChallengeError::NotEnrolled(_) => (EventKind::Failed, Some(Reason::NotEnrolled)),
            ChallengeError::NoPendingCode => (EventKind::Failed, Some(Reason::NoPendingCode)),
            ChallengeError::NoPendingCeremony => {
                (EventKind::Failed, Some(Reason::NoPendingCeremony))
            }
            ChallengeError::NoPendingAction => (EventKind::Failed, Some(Reason::NoPendingAction)),
            ChallengeError::ApprovalPending => (EventKind::Failed, Some(Reason::Other)),
            ChallengeError::ApprovalRefused => (EventKind::Failed, Some(Reason::WrongNumber)),
            ChallengeError::PasskeyRejected => (EventKind::Failed, Some(Reason::PasskeyRejected)),
            ChallengeError::Store(_) => (EventKind::Failed, Some(Reason::Store)),
            ChallengeError::Recovery(_)
            | ChallengeError::PasskeyConfig(_)
            | ChallengeError::NoPendingEnrollment
            | ChallengeError::Issue(_) => (EventKind::Failed, Some(Reason::Other)),
        }
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    pub(super) fn notify(
        &self,
        kind: NoticeKind,
        method: Method,
        subject: &Subject,
        ready_at: Option<Timestamp>,
    ) {
        if let Some(sink) = &self.notices {
            sink.notify(&Notice {
                kind,
                method,
                subject,
                at: self.clock.now(),
                ready_at,
            });
        }
    }

    pub(super) fn emit(
        &self,
        kind: EventKind,
        method: Method,
        subject: &Subject,
        reason: Option<Reason>,
    ) {
        self.emit_funnel(kind, Some(method), subject, reason);
    }

    /// Logs the event and hands it to the application's sink.
    pub(super) fn emit_event(
        &self,
        kind: EventKind,
        method: Option<Method>,
        subject: String,
        reason: Option<Reason>,
        origin: Origin,
    ) {
        let reason = reason.map(Reason::as_str);
        let event = Event {
            kind,
            method,
            subject,
            reason,
            route: origin.route,
            policy: origin.policy,
            via: origin.via,
            at: self.clock.now(),
        };
        let method = event.method.map(|m| m.to_string()).unwrap_or_default();
        let policy = event.policy.as_deref().unwrap_or("");
        match kind {
            EventKind::Failed | EventKind::LockedOut | EventKind::Disabled => {
                tracing::warn!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, reason = reason.unwrap_or(""), policy, "step-up event")
            }
            EventKind::Challenged
            | EventKind::PageShown
            | EventKind::MethodStarted
            | EventKind::Abandoned
            | EventKind::Resumed
            | EventKind::Succeeded
            | EventKind::Enrolled
            | EventKind::Removed
            | EventKind::Replaced
            | EventKind::RecoveryStarted
            | EventKind::RecoveryCancelled => {
                tracing::info!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, reason = reason.unwrap_or(""), policy, "step-up event")
            }
        }
        if let Some(sink) = &self.events {
            sink.record(&event);
        }
    }

    pub(super) fn subject_digest(&self, subject: &Subject) -> String {
        self.event_keys.events(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepup_core::IssueError;

    /// Events and logs carry these names: applications count them.
    #[test]
    fn failures_keep_their_event_names() {
        let named = |e: ChallengeError| {
            let (kind, reason) = Reason::of_failure(&e);
            (kind, reason.map(Reason::as_str))
        };
        let failed = |reason| (EventKind::Failed, Some(reason));
        assert_eq!(
            named(ChallengeError::LockedOut {
                until: Timestamp::from_unix_seconds(1)
            }),
            (EventKind::LockedOut, None)
        );
        assert_eq!(
            named(ChallengeError::Disabled(Method::Totp)),
            (EventKind::Disabled, None)
        );
        assert_eq!(
            named(ChallengeError::Wrong { few_left: true }),
            failed("wrong")
        );
        assert_eq!(named(ChallengeError::AlreadyUsed), failed("already_used"));
        assert_eq!(named(ChallengeError::Format("x")), failed("format"));
        assert_eq!(
            named(ChallengeError::NotEnrolled(Method::Totp)),
            failed("not_enrolled")
        );
        assert_eq!(
            named(ChallengeError::NoPendingCode),
            failed("no_pending_code")
        );
        assert_eq!(
            named(ChallengeError::NoPendingCeremony),
            failed("no_pending_ceremony")
        );
        assert_eq!(
            named(ChallengeError::NoPendingAction),
            failed("no_pending_action")
        );
        assert_eq!(
            named(ChallengeError::PasskeyRejected),
            failed("passkey_rejected")
        );
        assert_eq!(
            named(ChallengeError::Store(crate::StoreError::new("s", "m"))),
            failed("store")
        );
        for other in [
            ChallengeError::Recovery("x"),
            ChallengeError::PasskeyConfig("x".into()),
            ChallengeError::NoPendingEnrollment,
            ChallengeError::Issue(IssueError::NoSigningKey),
        ] {
            assert_eq!(named(other), failed("other"));
        }
        assert_eq!(Reason::SendLimit.as_str(), "send_limit");
        assert_eq!(Reason::Send.as_str(), "send");
        assert_eq!(Reason::Issue.as_str(), "issue");
        assert_eq!(Reason::FactorUsed.as_str(), "factor_used");
        #[cfg(feature = "passkey")]
        {
            assert_eq!(Reason::Registration.as_str(), "registration");
            assert_eq!(Reason::AlreadyRegistered.as_str(), "already_registered");
        }
    }
}
