//! The responses the layers write themselves: the redirect to the challenge
//! page, the RFC 9470 / RFC 9457 denial for API clients, the "not logged in"
//! answer and the origin check's `403`. All carry `Cache-Control: no-store`;
//! none echoes request data except the validated, percent-encoded return
//! path.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use stepup_core::web::{FORBIDDEN_BODY, LOGIN_REQUIRED_BODY};
use stepup_core::{Challenge, PROBLEM_CONTENT_TYPE};

pub(crate) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

fn with_headers<B>(status: StatusCode, body: B) -> Response<B> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    response
}

/// `303 See Other` to `location` (built from validated parts only).
pub(crate) fn redirect<B: From<String>>(location: &str) -> Response<B> {
    let mut response = with_headers(StatusCode::SEE_OTHER, B::from(String::new()));
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// `401` with the RFC 9470 header and the RFC 9457 body.
pub(crate) fn denial<B: From<String>>(challenge: &Challenge, step_up_url: &str) -> Response<B> {
    let body = challenge.problem_json_with(&[("step_up_url", step_up_url)]);
    let mut response = with_headers(StatusCode::UNAUTHORIZED, B::from(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    if let Ok(value) = HeaderValue::from_str(&challenge.www_authenticate()) {
        headers.insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// `401` for a request without a logged-in user: no step-up challenge,
/// because logging in is the application's job.
pub(crate) fn login_required<B: From<String>>() -> Response<B> {
    let mut response = with_headers(
        StatusCode::UNAUTHORIZED,
        B::from(LOGIN_REQUIRED_BODY.to_owned()),
    );
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    response
}

/// `403` for a state-changing request from another origin: the challenge
/// routes' RFC 9457 body.
pub(crate) fn forbidden<B: From<String>>() -> Response<B> {
    let mut response = with_headers(StatusCode::FORBIDDEN, B::from(FORBIDDEN_BODY.to_owned()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    response
}
