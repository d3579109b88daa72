//! The answers the middleware and the extractor write, built from the same
//! neutral pieces as the tower layer (`stepup_core::web`), so both adapters
//! answer byte for byte alike.

use std::sync::Arc;

use actix_web::HttpRequest;
use actix_web::HttpResponse;
use actix_web::http::header::{ACCEPT, COOKIE, HeaderName, HeaderValue};
use stepup_challenge::routes::Reply;
use stepup_core::web::{self, CookieName, Found, TOKEN_HEADER};
use stepup_core::{Challenge, Clock, ReturnTo};

use crate::routes::into_response;

const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

/// Where to step up, where to come back to, and the clock of a route.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub(crate) page: ReturnTo,
    pub(crate) fallback: ReturnTo,
    pub(crate) note: Option<String>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// What the middleware leaves for the extractor: the verified assurance and
/// the route's answers.
#[derive(Debug)]
pub(crate) struct Granted {
    pub(crate) assurance: stepup_core::Assurance,
    pub(crate) route: Arc<Route>,
}

impl Route {
    /// The validated path and query of the request, or the fallback.
    pub(crate) fn return_to(&self, request: &HttpRequest) -> ReturnTo {
        let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        ReturnTo::parse_or(path, &self.fallback)
    }

    /// `303` to the challenge page for a browser navigation, `401` with the
    /// RFC 9470 header and the RFC 9457 body otherwise.
    pub(crate) fn respond(
        &self,
        navigation: bool,
        return_to: &ReturnTo,
        challenge: &Challenge,
    ) -> HttpResponse {
        let location = web::challenge_url(
            &self.page,
            return_to,
            challenge.reason().code(),
            self.note.as_deref(),
        );
        into_response(Reply::challenge(navigation, &location, challenge))
    }
}

/// `303 See Other` to `location` (built from validated parts only).
pub(crate) fn see_other(location: &str) -> HttpResponse {
    into_response(Reply::see_other(location))
}

/// `401` for a request without a logged-in user (no step-up challenge:
/// logging in is the application's job).
pub fn login_required() -> HttpResponse {
    into_response(Reply::login_required())
}

/// Whether the request is a browser navigation (see
/// [`stepup_core::web::is_navigation`]).
pub fn is_navigation(request: &HttpRequest) -> bool {
    let headers = request.headers();
    web::is_navigation(
        request.method().as_str(),
        headers.get(SEC_FETCH_MODE).map(HeaderValue::as_bytes),
        headers.get_all(ACCEPT).map(HeaderValue::as_bytes),
    )
}

/// The assurance token: the cookie among every `Cookie` header, and the
/// opt-in header when `header` is on — at most one of them may speak.
pub(crate) fn find_token<'a>(
    request: &'a HttpRequest,
    cookie: &CookieName,
    header: bool,
) -> Found<'a> {
    let headers = request.headers();
    let found = cookie.find(headers.get_all(COOKIE).map(HeaderValue::as_bytes));
    if header {
        found.or_only(Found::from_header(
            headers.get_all(TOKEN_HEADER).map(HeaderValue::as_bytes),
        ))
    } else {
        found
    }
}
