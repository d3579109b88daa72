//! The answers the layer writes, for adapters and handlers that need to give
//! the same ones (an extractor's rejection, an in-handler `require`).

use http::header::{ACCEPT, COOKIE};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use stepup_core::web::{self, CookieName, Found};
use stepup_core::{Challenge, ReturnTo};

use crate::render;

static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// Where to step up and where to come back to, for rendering a challenge.
#[derive(Clone, Debug)]
pub struct ChallengeTarget {
    /// The challenge page (default `/step-up`).
    pub page: ReturnTo,
    /// Where to return when the request's own path is refused (default `/`).
    pub fallback: ReturnTo,
    /// An identifier of the route's reason, passed to the page as `why=…`
    /// so it can show the configured sentence (never text from the request).
    pub note: Option<String>,
}

impl Default for ChallengeTarget {
    fn default() -> Self {
        ChallengeTarget {
            page: ReturnTo::parse(crate::DEFAULT_CHALLENGE_PATH)
                .unwrap_or_else(|_| ReturnTo::root()),
            fallback: ReturnTo::root(),
            note: None,
        }
    }
}

impl ChallengeTarget {
    /// The validated path of the request, or the fallback.
    pub fn return_to(&self, parts: &Parts) -> ReturnTo {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        ReturnTo::parse_or(path, &self.fallback)
    }

    /// The answer to a request that did not meet its policy, exactly as the
    /// layer gives it: `303` to the challenge page for a browser navigation,
    /// `401` with the RFC 9470 header and problem body otherwise.
    pub fn respond<B: From<String>>(&self, parts: &Parts, challenge: &Challenge) -> Response<B> {
        self.respond_to(is_navigation(parts), &self.return_to(parts), challenge)
    }

    /// [`respond`](ChallengeTarget::respond) from what was noted of a request
    /// earlier: whether it was a navigation, and its validated return path.
    pub fn respond_to<B: From<String>>(
        &self,
        navigation: bool,
        return_to: &ReturnTo,
        challenge: &Challenge,
    ) -> Response<B> {
        let location = web::challenge_url(
            &self.page,
            return_to,
            challenge.reason().code(),
            self.note.as_deref(),
        );
        if navigation {
            render::redirect(&location)
        } else {
            render::denial(challenge, &location)
        }
    }

    /// The challenge page URL for `return_to` and a reason code.
    pub fn location(&self, return_to: &ReturnTo, reason: &str) -> String {
        web::challenge_location(&self.page, return_to, reason)
    }
}

/// Whether the request is a browser navigation (see the layer's rules and
/// [`stepup_core::web::is_navigation`]).
pub fn is_navigation(parts: &Parts) -> bool {
    web::is_navigation(
        parts.method.as_str(),
        parts
            .headers
            .get(&SEC_FETCH_MODE)
            .map(HeaderValue::as_bytes),
        parts
            .headers
            .get_all(ACCEPT)
            .iter()
            .map(HeaderValue::as_bytes),
    )
}

/// The assurance cookie among every `Cookie` header.
pub(crate) fn find_cookie<'a>(headers: &'a HeaderMap, cookie: &CookieName) -> Found<'a> {
    cookie.find(headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes))
}

/// The token from an opt-in header.
pub(crate) fn find_header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Found<'a> {
    Found::from_header(headers.get_all(name).iter().map(HeaderValue::as_bytes))
}

/// The assurance token in the cookie `cookie_name`: `Ok(None)` without one,
/// `Err(())` when two cookies of that name (or a non-text value) make it
/// ambiguous — refuse, never guess.
#[allow(clippy::result_unit_err)]
pub fn find_token<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Result<Option<&'a str>, ()> {
    match find_cookie(headers, &CookieName::new(cookie_name)) {
        Found::None => Ok(None),
        Found::One(token) => Ok(Some(token)),
        Found::Ambiguous => Err(()),
    }
}

/// `401` for a request without a logged-in user (no step-up challenge).
pub fn login_required<B: From<String>>() -> Response<B> {
    render::login_required()
}
