//! Events (to `tracing` and the application's sink) and notices (to the
//! user).

use stepup_core::{Method, Subject, Timestamp};

use super::Engine;
use crate::event::{Event, EventKind, Notice, NoticeKind};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Records that a challenge was shown to the subject (the adapters call
    /// this when they render the challenge page or answer with a challenge),
    /// so drop-offs between "asked" and "succeeded" can be measured.
    pub fn challenge_issued(&self, subject: &Subject, method: Method) {
        self.emit(EventKind::ChallengeIssued, method, subject, None);
    }

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
        reason: Option<&'static str>,
    ) {
        let event = Event {
            kind,
            method,
            subject: self.subject_digest(subject),
            reason,
            at: self.clock.now(),
        };
        match kind {
            EventKind::Failed | EventKind::LockedOut | EventKind::Disabled => {
                tracing::warn!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, reason = reason.unwrap_or(""), "step-up event")
            }
            _ => {
                tracing::info!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, "step-up event")
            }
        }
        if let Some(sink) = &self.events {
            sink.record(&event);
        }
    }

    fn subject_digest(&self, subject: &Subject) -> String {
        self.event_keys.events(subject)
    }
}
