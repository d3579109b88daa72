//! `http` 1 requests as [`stepup_http::RequestHead`], and [`Reply`]s as
//! `http` 1 responses.

use http::header::{
    ACCEPT, ACCEPT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, ORIGIN, REFERER, USER_AGENT,
};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use stepup_http::{Header, Reply, RequestHead};

static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
static TOKEN: HeaderName = HeaderName::from_static(stepup_http::TOKEN_HEADER);
static GRANT: HeaderName = HeaderName::from_static(stepup_http::GRANT_HEADER);

/// An `http` 1 request head as stepup reads it.
///
/// ```
/// use stepup_http::is_navigation_of;
/// use stepup_tower::Head;
///
/// let (parts, ()) = http::Request::get("/statements")
///     .header("accept", "text/html")
///     .body(())
///     .unwrap()
///     .into_parts();
/// assert!(is_navigation_of(&Head(&parts)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Head<'a>(pub &'a Parts);

impl RequestHead for Head<'_> {
    fn method(&self) -> &str {
        self.0.method.as_str()
    }

    fn path_and_query(&self) -> &str {
        self.0.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
        let name = match header {
            Header::Cookie => Some(&COOKIE),
            Header::Accept => Some(&ACCEPT),
            Header::SecFetchMode => Some(&SEC_FETCH_MODE),
            Header::SecFetchSite => Some(&SEC_FETCH_SITE),
            Header::Origin => Some(&ORIGIN),
            Header::ContentType => Some(&CONTENT_TYPE),
            Header::Token => Some(&TOKEN),
            Header::Referer => Some(&REFERER),
            Header::ContentLength => Some(&CONTENT_LENGTH),
            Header::Grant => Some(&GRANT),
            Header::UserAgent => Some(&USER_AGENT),
            Header::AcceptLanguage => Some(&ACCEPT_LANGUAGE),
            // A header this adapter does not know yet: none.
            _ => None,
        };
        name.into_iter()
            .flat_map(|name| self.0.headers.get_all(name).iter())
            .map(HeaderValue::as_bytes)
    }
}

/// An `http` 1 request head with the path and query the client sent given
/// apart: a router that rewrote `parts.uri` (axum's `Router::nest` strips
/// its prefix) keeps the original elsewhere, and a challenge must send the
/// browser back to — and a kept form must go back to — the real one.
///
/// ```
/// use stepup_http::RequestHead;
/// use stepup_tower::HeadAt;
///
/// let (parts, ()) = http::Request::post("/pay").body(()).unwrap().into_parts();
/// assert_eq!(HeadAt::new(&parts, "/admin/pay").path_and_query(), "/admin/pay");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HeadAt<'a> {
    head: Head<'a>,
    target: Target<'a>,
}

/// The path and query of a [`HeadAt`]: given, or looked up only when asked
/// for (a challenge, a form) — never on the allow path.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    Given(&'a str),
    Found(Option<OriginalTarget>),
}

impl<'a> HeadAt<'a> {
    /// `parts`, sent to `target` (path and query).
    pub fn new(parts: &'a Parts, target: &'a str) -> HeadAt<'a> {
        HeadAt {
            head: Head(parts),
            target: Target::Given(target),
        }
    }

    /// `parts` at the target `original` finds (looked up when asked for),
    /// else at its own URI.
    pub fn of(parts: &'a Parts, original: Option<OriginalTarget>) -> HeadAt<'a> {
        HeadAt {
            head: Head(parts),
            target: Target::Found(original),
        }
    }
}

/// Where a router keeps the path and query the client sent, when it
/// rewrote the URI (see [`HeadAt`]).
pub type OriginalTarget = fn(&Parts) -> Option<&str>;

impl RequestHead for HeadAt<'_> {
    fn method(&self) -> &str {
        self.head.method()
    }

    fn path_and_query(&self) -> &str {
        match self.target {
            Target::Given(target) => target,
            Target::Found(original) => original
                .and_then(|find| find(self.head.0))
                .unwrap_or_else(|| self.head.path_and_query()),
        }
    }

    fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
        self.head.values(header)
    }
}

/// `reply` as an `http` 1 response (headers that are not valid header
/// values are left out; every value stepup writes is).
///
/// ```
/// use stepup_http::Reply;
/// let response: http::Response<String> = stepup_tower::into_response(Reply::see_other("/a"));
/// assert_eq!(response.status(), 303);
/// assert_eq!(response.headers()["location"], "/a");
/// ```
pub fn into_response<B: From<String>>(reply: Reply) -> Response<B> {
    let (status, headers, body) = reply.into_parts();
    let mut response = Response::new(B::from(body.into_owned()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.append(name, value);
        }
    }
    response
}
