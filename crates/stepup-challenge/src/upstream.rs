//! Step-ups made elsewhere: the browser is sent to an upstream identity
//! provider and comes back with its answer ([`Upstream`]; stepup-oidc's
//! `OidcMethod` is one).

use std::fmt;

use stepup_core::{IssuedToken, Method, ReturnTo, Subject};
use stepup_http::BoxFuture;

use crate::StoreError;

/// A step-up made at an upstream identity provider: the challenge page
/// offers it as one more way, `POST /upstream/{name}/start` sends the
/// browser there, and the provider's answer comes back to
/// `GET /upstream/{name}/callback` (register exactly that URL at the
/// provider). See [`ChallengeRoutes::with_upstream`](crate::routes::ChallengeRoutes::with_upstream).
///
/// Everything security-critical is the implementation's: the request
/// kept for one use, bound to the user and session; the answer verified;
/// the token minted. The routes add what a browser flow needs around it
/// (origin checks, the page, the cookie, the way back).
///
/// ```
/// use stepup_challenge::{StoreError, Upstream, UpstreamDone, UpstreamError, UpstreamFinish, UpstreamStart};
/// use stepup_core::{Method, Subject};
/// use stepup_http::BoxFuture;
///
/// /// A provider that confirms nobody (a sketch of the shape).
/// struct Nobody;
///
/// impl Upstream for Nobody {
///     fn name(&self) -> &str { "nobody" }
///     fn title(&self) -> &str { "Confirm at Nobody ID" }
///     fn origin(&self) -> &str { "https://id.example" }
///     fn levels(&self) -> Vec<(u8, Method)> { vec![(2, Method::custom("idp-level-2").unwrap())] }
///     fn linked<'a>(&'a self, _: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
///         Box::pin(async { Ok(true) })
///     }
///     fn start<'a>(&'a self, _: UpstreamStart<'a>) -> BoxFuture<'a, Result<String, UpstreamError>> {
///         Box::pin(async { Ok("https://id.example/authorize?state=…".to_owned()) })
///     }
///     fn finish<'a>(&'a self, _: UpstreamFinish<'a>) -> BoxFuture<'a, Result<UpstreamDone, UpstreamError>> {
///         Box::pin(async { Err(UpstreamError::Refused) })
///     }
/// }
/// assert_eq!(Nobody.levels()[0].0, 2);
/// ```
pub trait Upstream: Send + Sync + 'static {
    /// Its name in the routes' paths (`/upstream/{name}/…`): 1 to 32 of
    /// `a-z`, `0-9` and `-`. Another name is never routed.
    fn name(&self) -> &str;

    /// Its heading on the challenge page ("Confirm at Acme ID").
    fn title(&self) -> &str;

    /// The provider's origin (`https://id.example`): the challenge page's
    /// `form-action` allows the start's redirect to it.
    fn origin(&self) -> &str;

    /// The levels it can prove, each with the method that proves it in
    /// the level table (lowest first): the page offers it when one of
    /// these methods can satisfy the route's policy, and asks for the
    /// lowest such level.
    fn levels(&self) -> Vec<(u8, Method)>;

    /// Whether `subject` has an account at the provider (the page offers
    /// only what the user can use).
    fn linked<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Starts a step-up: keeps what the callback needs (for one use) and
    /// answers the URL to send the browser to.
    fn start<'a>(
        &'a self,
        start: UpstreamStart<'a>,
    ) -> BoxFuture<'a, Result<String, UpstreamError>>;

    /// Finishes the step-up the callback's query answers: verifies it and
    /// mints the assurance token.
    fn finish<'a>(
        &'a self,
        finish: UpstreamFinish<'a>,
    ) -> BoxFuture<'a, Result<UpstreamDone, UpstreamError>>;
}

/// A step-up to start at the provider.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct UpstreamStart<'a> {
    /// The logged-in user and session.
    pub subject: &'a Subject,
    /// The level to ask for.
    pub level: u8,
    /// Where to return afterwards (validated: a local path).
    pub return_to: &'a ReturnTo,
}

impl<'a> UpstreamStart<'a> {
    /// A step-up of `subject` to `level`, returning to `return_to`.
    pub fn new(subject: &'a Subject, level: u8, return_to: &'a ReturnTo) -> Self {
        UpstreamStart {
            subject,
            level,
            return_to,
        }
    }
}

/// The provider's answer, to finish.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct UpstreamFinish<'a> {
    /// The logged-in user and session (must be the ones that started).
    pub subject: &'a Subject,
    /// The callback's query string (without `?`).
    pub query: &'a str,
    /// The assurance token the browser presented: its still-fresh proofs
    /// are kept.
    pub previous: Option<&'a str>,
    /// The client context to mint in (the routes' `ContextSettings`).
    pub context: Option<&'a [u8]>,
}

impl<'a> UpstreamFinish<'a> {
    /// The answer in `query` for `subject`.
    pub fn new(subject: &'a Subject, query: &'a str) -> Self {
        UpstreamFinish {
            subject,
            query,
            previous: None,
            context: None,
        }
    }

    /// Keeping the proofs of `previous`.
    #[must_use]
    pub fn previous(mut self, previous: Option<&'a str>) -> Self {
        self.previous = previous;
        self
    }

    /// Minting in the client context `context`.
    #[must_use]
    pub fn context(mut self, context: Option<&'a [u8]>) -> Self {
        self.context = context;
        self
    }
}

/// A finished upstream step-up.
#[derive(Debug)]
#[non_exhaustive]
pub struct UpstreamDone {
    /// The assurance token.
    pub token: IssuedToken,
    /// The method proven (for events: the level's method).
    pub method: Method,
    /// Where the start said to return.
    pub return_to: ReturnTo,
}

impl UpstreamDone {
    /// `token`, proving `method`, returning to `return_to`.
    pub fn new(token: IssuedToken, method: Method, return_to: ReturnTo) -> Self {
        UpstreamDone {
            token,
            method,
            return_to,
        }
    }
}

/// Why an upstream step-up did not start or finish. The page says each in
/// the user's words; the details are logged, never shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The user has no account at the provider (`403`).
    #[error("not linked to the identity provider")]
    NotLinked,
    /// The provider proves no level the policy accepts (`403`).
    #[error("the identity provider proves no level this needs")]
    NoLevel,
    /// The provider did not confirm the user: cancelled or refused there
    /// (`403`). An answer with too low a level is [`Rejected`](Self::Rejected).
    #[error("the identity provider did not confirm it")]
    Refused,
    /// The request is unknown, used, expired or another session's (`400`).
    #[error("the request expired or was used")]
    Expired,
    /// The answer failed a check (issuer, nonce, `sub`, `acr`,
    /// `auth_time`, code exchange) (`403`): the detail is logged.
    #[error("the answer was rejected: {0}")]
    Rejected(String),
    /// The provider or a store could not be reached (`503`).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl UpstreamError {
    /// Its code in JSON answers and events.
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::NotLinked => "upstream_not_linked",
            UpstreamError::NoLevel => "upstream_no_level",
            UpstreamError::Refused => "upstream_refused",
            UpstreamError::Expired => "upstream_expired",
            UpstreamError::Rejected(_) => "upstream_rejected",
            UpstreamError::Unavailable(_) => "unavailable",
        }
    }

    /// What JSON answers say: a fixed sentence per kind (the detail of
    /// [`Rejected`](Self::Rejected) and [`Unavailable`](Self::Unavailable)
    /// is logged, never sent).
    pub fn sentence(&self) -> &'static str {
        match self {
            UpstreamError::NotLinked => "Your account is not linked to this identity provider.",
            UpstreamError::NoLevel => "This identity provider cannot confirm this.",
            UpstreamError::Refused => "The identity provider did not confirm it.",
            UpstreamError::Expired => "This confirmation expired or was already used.",
            UpstreamError::Rejected(_) => "The identity provider's answer was not accepted.",
            UpstreamError::Unavailable(_) => "The identity provider cannot be reached.",
        }
    }

    /// Its HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            UpstreamError::Expired => 400,
            UpstreamError::Unavailable(_) => 503,
            _ => 403,
        }
    }
}

/// Whether `name` can be an upstream's name in paths.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The upstreams of the routes, by name.
#[derive(Clone, Default)]
pub(crate) struct Upstreams(Vec<std::sync::Arc<dyn Upstream>>);

impl Upstreams {
    pub(crate) fn add(&mut self, upstream: std::sync::Arc<dyn Upstream>) {
        if valid_name(upstream.name()) {
            self.0.retain(|u| u.name() != upstream.name());
            self.0.push(upstream);
        } else {
            tracing::warn!(target: "stepup", name = upstream.name(), "upstream not routed: its name is not 1-32 of a-z, 0-9, -");
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&std::sync::Arc<dyn Upstream>> {
        self.0.iter().find(|u| u.name() == name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &std::sync::Arc<dyn Upstream>> {
        self.0.iter()
    }
}

impl fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|u| u.name()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_path_safe() {
        assert!(valid_name("idp"));
        assert!(valid_name("acme-id-2"));
        for bad in ["", "Idp", "a/b", "a.b", "a b", &"x".repeat(33)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
