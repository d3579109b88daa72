//! The challenge routes: the framework-neutral
//! [`ChallengeRoutes`](stepup_challenge::routes::ChallengeRoutes) behind one
//! actix-web handler.

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, COOKIE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, MAX_BODY, Reply};
use stepup_challenge::{FactorStore, PasswordVerifier, StateStore};
use stepup_core::web::CookieName;

use crate::client::ClientAddress;
use crate::middleware::SubjectFn;
use crate::respond::is_navigation;

pub(crate) async fn handle<F: FactorStore, S: StateStore, P: PasswordVerifier>(
    routes: ChallengeRoutes<F, S, P>,
    subjects: Arc<SubjectFn>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let bytes = if request.method() == Method::POST {
        match payload.to_bytes_limited(MAX_BODY).await {
            Ok(Ok(bytes)) => Some(bytes),
            _ => None,
        }
    } else {
        Some(web::Bytes::new())
    };
    let mount = routes.settings().page().as_str();
    let path = request.path().strip_prefix(mount).unwrap_or("/");
    let headers = request.headers();
    let header = |name: &str| headers.get(name).map(HeaderValue::as_bytes);
    let cookie = CookieName::new(routes.cookie_name());
    let query = request.query_string();
    let reply = routes
        .handle(Incoming {
            method: request.method().as_str(),
            path,
            query: (!query.is_empty()).then_some(query),
            subject: subjects(&request),
            origin: header("origin"),
            sec_fetch_site: header("sec-fetch-site"),
            content_type: headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
            navigation: is_navigation(&request),
            token: cookie.find(headers.get_all(COOKIE).map(HeaderValue::as_bytes)),
            body: match &bytes {
                Some(bytes) => Body::Read(bytes),
                None => Body::TooLarge,
            },
            // What the application says (behind its proxy), else the peer.
            address: ClientAddress::of(&request).map(|ClientAddress(ip)| ip),
        })
        .await;
    into_response(reply)
}

/// Writes a neutral reply as an actix-web response.
pub(crate) fn into_response(reply: Reply) -> HttpResponse {
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
