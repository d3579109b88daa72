//! `StepUpContext`: what the extractor and the routes need to verify and to
//! answer, without the engine's types.

use std::fmt;
use std::sync::Arc;

use axum::http::request::Parts;
use stepup_core::{Gate, Subject};
use stepup_tower::{ChallengeTarget, SubjectSource};

use stepup_challenge::routes::Settings;

/// The part of [`StepUp`](crate::StepUp) that requests see: the gate, who is
/// logged in, the clock, the cookie and where the challenge page is. Put it
/// in the request extensions with [`StepUp::extension`](crate::StepUp::extension)
/// so the [`Assurance`](crate::Assurance) extractor works on routes without
/// the layer. Cheap to clone.
#[derive(Clone)]
pub struct StepUpContext {
    pub(crate) inner: Arc<ContextInner>,
}

#[derive(Clone)]
pub(crate) struct ContextInner {
    pub(crate) subjects: Arc<dyn SubjectSource>,
    /// What the routes and the layers share (gate, clock, cookie, page,
    /// origin, reasons).
    pub(crate) settings: Settings,
}

impl ContextInner {
    pub(crate) fn gate(&self) -> &Gate {
        self.settings.gate()
    }

    pub(crate) fn now(&self) -> stepup_core::Timestamp {
        self.settings.clock().now()
    }

    pub(crate) fn cookie_name(&self) -> &str {
        self.settings.cookie_name()
    }

    /// Where the page is, in the form the tower layer's answers take it.
    pub(crate) fn target(&self) -> ChallengeTarget {
        ChallengeTarget {
            page: self.settings.page().clone(),
            fallback: self.settings.fallback().clone(),
            note: None,
        }
    }
}

impl fmt::Debug for StepUpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpContext")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl StepUpContext {
    pub(crate) fn subject(&self, parts: &Parts) -> Option<Subject> {
        self.inner.subjects.subject(parts)
    }
}

/// Lets a shared, type-erased subject source drive the layer.
#[derive(Clone)]
pub struct SharedSubjects(pub(crate) Arc<dyn SubjectSource>);

impl fmt::Debug for SharedSubjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSubjects")
    }
}

impl SubjectSource for SharedSubjects {
    fn subject(&self, parts: &Parts) -> Option<Subject> {
        self.0.subject(parts)
    }
}
