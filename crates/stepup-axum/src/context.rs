//! `StepUpContext`: what the extractor and the routes need to verify and to
//! answer, without the engine's types.

use std::fmt;
use std::sync::Arc;

use axum::http::request::Parts;
use stepup_core::{Clock, Gate, Subject};
use stepup_tower::{ChallengeTarget, SubjectSource};

use stepup_core::web::CookieSettings;

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
    pub(crate) gate: Gate,
    pub(crate) subjects: Arc<dyn SubjectSource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cookie: CookieSettings,
    pub(crate) target: ChallengeTarget,
    pub(crate) origin: String,
    pub(crate) reasons: Reasons,
    pub(crate) renderer: Option<PageRenderer>,
}

/// An application's own challenge page: gets what the page should show and
/// returns the HTML (escaping is then the application's job).
pub type PageRenderer = Arc<dyn Fn(&stepup_challenge::ChallengePage) -> String + Send + Sync>;

/// The reasons of the policies given to `require`, by a short identifier the
/// challenge page receives as `why=…`: the page shows configured text only.
#[derive(Clone, Default)]
pub(crate) struct Reasons(Arc<std::sync::Mutex<Vec<String>>>);

impl Reasons {
    /// The identifier of `reason`, adding it if new.
    pub(crate) fn register(&self, reason: &str) -> Option<String> {
        let mut list = self.0.lock().ok()?;
        let index = match list.iter().position(|r| r == reason) {
            Some(i) => i,
            None => {
                list.push(reason.to_owned());
                list.len() - 1
            }
        };
        Some(format!("r{index}"))
    }

    /// The reason registered under `id`.
    pub(crate) fn get(&self, id: &str) -> Option<String> {
        let index: usize = id.strip_prefix('r')?.parse().ok()?;
        self.0.lock().ok()?.get(index).cloned()
    }
}

impl fmt::Debug for StepUpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpContext")
            .field("cookie", &self.inner.cookie)
            .field("challenge_page", &self.inner.target.page)
            .field("origin", &self.inner.origin)
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
