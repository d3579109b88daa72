//! The challenge routes: the framework-neutral
//! [`ChallengeRoutes`](stepup_challenge::routes::ChallengeRoutes) behind one
//! actix-web handler.

use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, MAX_BODY};
use stepup_challenge::{FactorStore, PasswordVerifier, StateStore};

use crate::client::ClientAddress;
use crate::head::{Head, into_response};
use crate::middleware::SubjectFn;

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
    let head = Head(&request);
    let body = match &bytes {
        Some(bytes) => Body::Read(bytes),
        None => Body::TooLarge,
    };
    // The client's address: what the application says (behind its
    // proxy), else the peer.
    let address = ClientAddress::of(&request).map(|ClientAddress(ip)| ip);
    let incoming = Incoming::read(
        &head,
        path,
        routes.cookie(),
        subjects(&request),
        body,
        address,
    );
    into_response(routes.handle(incoming).await)
}
