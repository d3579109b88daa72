//! The first step of the step-up funnel: a guard refusing a request for
//! want of a step-up. The guard tells a [`Funnel`] (the engine, wired by
//! the adapters' `StepUp`), which counts journeys from there: page shown,
//! method started, succeeded or failed, abandoned, resumed.

use stepup_core::Subject;

/// Where a refusal went: a browser (the challenge page, or a kept form
/// sent there) or an API client (`401` with `WWW-Authenticate`).
///
/// ```
/// assert_eq!(stepup_http::Via::Api.as_str(), "api");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// A browser navigation, sent to the challenge page.
    Browser,
    /// An API request, answered `401`.
    Api,
}

impl Via {
    /// A stable name: `browser` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Browser => "browser",
            Via::Api => "api",
        }
    }
}

/// A request the guard refused for want of a step-up.
///
/// ```
/// use stepup_core::Subject;
/// use stepup_http::{Challenged, Via};
///
/// let alice = Subject::new("alice");
/// let refused = Challenged::new(&alice, "/transfer", "level 2 within 5m", "insufficient_level", Via::Api);
/// assert_eq!(refused.route, "/transfer");
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Challenged<'a> {
    /// Who was asked.
    pub subject: &'a Subject,
    /// The request's path, without its query.
    pub route: &'a str,
    /// The guard's name ([`Guard::name`](crate::Guard::name)) or else the
    /// policy's text.
    pub policy: &'a str,
    /// Why ([`ChallengeReason::code`](stepup_core::ChallengeReason::code),
    /// or `ambiguous_token`).
    pub reason: &'static str,
    /// Browser or API.
    pub via: Via,
}

impl<'a> Challenged<'a> {
    /// A refusal of `subject` on `route` under `policy` for `reason`.
    pub fn new(
        subject: &'a Subject,
        route: &'a str,
        policy: &'a str,
        reason: &'static str,
        via: Via,
    ) -> Challenged<'a> {
        Challenged {
            subject,
            route,
            policy,
            reason,
            via,
        }
    }
}

/// Hears of every refusal for want of a step-up: the engine implements it
/// (the adapters' `StepUp` wires it through
/// [`Settings::with_funnel`](crate::Settings::with_funnel)); write one to
/// count refusals without the engine. Called synchronously on the request
/// path: keep it quick.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use stepup_http::{Challenged, Funnel};
///
/// #[derive(Default)]
/// struct Count(AtomicUsize);
/// impl Funnel for Count {
///     fn challenged(&self, _: &Challenged<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let count = Count::default();
/// let alice = stepup_core::Subject::new("alice");
/// count.challenged(&Challenged::new(&alice, "/keys", "level 2", "no_token", stepup_http::Via::Browser));
/// assert_eq!(count.0.load(Ordering::Relaxed), 1);
/// ```
pub trait Funnel: Send + Sync {
    /// A guard refused `challenged.subject`'s request.
    fn challenged(&self, challenged: &Challenged<'_>);
}
