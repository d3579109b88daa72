//! `StepUpContext`: what the extractor needs to verify and to answer on
//! routes no step-up layer wraps, without the engine's types.

use std::fmt;
use std::sync::Arc;

use axum::http::request::Parts;
use stepup_core::Subject;
use stepup_http::Guard;
use stepup_tower::SubjectSource;

/// The configuration the [`Assurance`](crate::Assurance) extractor reads
/// from the request extensions: the subject source and a level-1 guard with
/// the application's settings (cookie, clock, challenge page, reasons).
/// Put it there with [`StepUp::layer`](crate::StepUp::layer).
#[derive(Clone)]
pub struct StepUpContext {
    pub(crate) inner: Arc<ContextInner>,
}

pub(crate) struct ContextInner {
    pub(crate) subjects: Arc<dyn SubjectSource>,
    pub(crate) guard: Guard<Parts>,
}

impl fmt::Debug for StepUpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpContext")
            .field("guard", &self.inner.guard)
            .finish_non_exhaustive()
    }
}

impl StepUpContext {
    pub(crate) fn subject(&self, parts: &Parts) -> Option<Subject> {
        self.inner.subjects.subject(parts)
    }

    pub(crate) fn guard(&self) -> &Guard<Parts> {
        &self.inner.guard
    }
}

/// A [`SubjectSource`] shared between the layers and the routes of one
/// [`StepUp`](crate::StepUp).
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
