//! actix-web requests as [`stepup_http::RequestHead`], and [`Reply`]s as
//! actix-web responses.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT, ACCEPT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HeaderName, HeaderValue, ORIGIN,
    REFERER, USER_AGENT,
};
use actix_web::{HttpRequest, HttpResponse};
use stepup_http::{ChallengeTarget, Header, Reply, RequestHead};

static SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
static TOKEN: HeaderName = HeaderName::from_static(stepup_http::TOKEN_HEADER);
static GRANT: HeaderName = HeaderName::from_static(stepup_http::GRANT_HEADER);

/// An actix-web request as stepup reads it.
///
/// ```
/// use stepup_actix::Head;
/// use stepup_http::is_navigation_of;
///
/// let request = actix_web::test::TestRequest::get()
///     .uri("/statements")
///     .insert_header(("accept", "text/html"))
///     .to_http_request();
/// assert!(is_navigation_of(&Head(&request)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Head<'a>(pub &'a HttpRequest);

impl RequestHead for Head<'_> {
    fn method(&self) -> &str {
        self.0.method().as_str()
    }

    fn path_and_query(&self) -> &str {
        self.0.uri().path_and_query().map_or("/", |pq| pq.as_str())
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
            .flat_map(|name| self.0.headers().get_all(name))
            .map(HeaderValue::as_bytes)
    }
}

/// `reply` as an actix-web response.
///
/// ```
/// use stepup_http::Reply;
/// let response = stepup_actix::into_response(Reply::see_other("/a"));
/// assert_eq!(response.status(), 303);
/// ```
pub fn into_response(reply: Reply) -> HttpResponse {
    let (status, headers, body) = reply.into_parts();
    let mut response = HttpResponse::build(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.append_header((name, value));
        }
    }
    response.body(body.into_owned())
}

/// What the middleware leaves for the extractor: the verified assurance and
/// where its challenges go (one insert, one allocation).
#[derive(Debug)]
pub(crate) struct Granted {
    pub(crate) assurance: stepup_core::Assurance,
    pub(crate) target: Arc<ChallengeTarget>,
}
