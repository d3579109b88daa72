//! The responses the layer writes itself: the redirect to the challenge page,
//! the RFC 9470 / RFC 9457 denial for API clients, and the "not logged in"
//! answer. All carry `Cache-Control: no-store`; none echoes request data
//! except the validated, percent-encoded return path.

use std::fmt::Write as _;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use stepup_core::{Challenge, PROBLEM_CONTENT_TYPE, ReturnTo};

const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// The body of the "not logged in" answer.
const LOGIN_REQUIRED: &str = r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"Log in first: this route needs a logged-in user before any step-up."}"#;

/// `path?return_to=…&reason=…`: where a browser is sent to step up.
pub(crate) fn challenge_location(page: &ReturnTo, return_to: &ReturnTo, reason: &str) -> String {
    let mut out = String::with_capacity(page.as_str().len() + return_to.as_str().len() + 40);
    out.push_str(page.as_str());
    out.push_str("?return_to=");
    encode_query_value(&mut out, return_to.as_str());
    out.push_str("&reason=");
    encode_query_value(&mut out, reason);
    out
}

/// `login?return_to=…` (or `&return_to=…` when the login path has a query).
pub(crate) fn login_location(login: &ReturnTo, return_to: &ReturnTo) -> String {
    let mut out = login.as_str().to_owned();
    out.push_str(if out.contains('?') {
        "&return_to="
    } else {
        "?return_to="
    });
    encode_query_value(&mut out, return_to.as_str());
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn encode_query_value(out: &mut String, value: &str) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

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
    let mut response = with_headers(StatusCode::UNAUTHORIZED, B::from(LOGIN_REQUIRED.to_owned()));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_encode_the_return_path() {
        let page = ReturnTo::parse("/step-up").unwrap();
        let back = ReturnTo::parse("/transfer?amount=10&to=DE89#x").unwrap();
        assert_eq!(
            challenge_location(&page, &back, "stale"),
            "/step-up?return_to=/transfer%3Famount%3D10%26to%3DDE89%23x&reason=stale"
        );
    }
}
