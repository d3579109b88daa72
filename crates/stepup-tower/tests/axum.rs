//! The layer composes with axum: `route_layer` on one route of a `Router`,
//! under the application's own login middleware, with the handler reading the
//! `Assurance` from the request extensions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use stepup_core::{
    Assurance, Issuer, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, TestClock, Timestamp,
    TokenConfig,
};
use stepup_tower::{FromExtension, RequireStepUpLayer};
use tower::ServiceExt;

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

/// Stands in for the application's login: a session cookie names the user.
async fn login(mut request: Request, next: Next) -> Response {
    let user = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split("; ").find_map(|kv| kv.strip_prefix("session=")))
        .map(|id| Subject::new("alice").with_session(id.to_owned()));
    if let Some(subject) = user {
        request.extensions_mut().insert(subject);
    }
    next.run(request).await
}

fn app() -> (Router, Issuer) {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[1u8; 32]).unwrap(),
    ));
    let layer = RequireStepUpLayer::new(
        config.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
        FromExtension::<Subject>::new(),
    )
    .clock(TestClock::new(T0));
    let router = Router::new()
        .route("/account", get(|| async { "account" }))
        .route(
            "/transfer",
            post(
                |axum::Extension(a): axum::Extension<Assurance>| async move {
                    format!("sent at level {}", a.level())
                },
            )
            .route_layer(layer),
        )
        .layer(middleware::from_fn(login));
    (router, config.issuer())
}

async fn body(response: Response) -> String {
    String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

fn req(method: &str, uri: &str, cookie: &str) -> Request {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn one_route_is_protected_and_the_others_are_not() {
    let (app, issuer) = app();
    let r = app
        .clone()
        .oneshot(req("GET", "/account", "session=s1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = app
        .clone()
        .oneshot(req("POST", "/transfer", "session=s1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));

    let alice = Subject::new("alice").with_session("s1");
    let token = issuer
        .issue(&alice, Proof::new(Method::Totp, T0), None, T0)
        .unwrap();
    let cookie = format!("session=s1; __Host-stepup={}", token.value());
    let r = app
        .clone()
        .oneshot(req("POST", "/transfer", &cookie))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await, "sent at level 2");

    // The same token in another session of the same user is refused.
    let other = format!("session=s2; __Host-stepup={}", token.value());
    let r = app
        .clone()
        .oneshot(req("POST", "/transfer", &other))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Not logged in: 401 without a step-up challenge.
    let r = app.oneshot(req("POST", "/transfer", "")).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn protected_routes_answer_no_store_unless_the_handler_says_otherwise() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[1u8; 32]).unwrap(),
    ));
    let layer = RequireStepUpLayer::new(
        config.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
        FromExtension::<Subject>::new(),
    )
    .clock(TestClock::new(T0));
    let app = Router::new()
        .route("/statements", get(|| async { "statements" }))
        .route(
            "/avatar",
            get(|| async { ([(header::CACHE_CONTROL, "private, max-age=60")], "png") }),
        )
        .route_layer(layer)
        .route("/public", get(|| async { "public" }))
        .layer(middleware::from_fn(login));
    let alice = Subject::new("alice").with_session("s1");
    let token = config
        .issuer()
        .issue(&alice, Proof::new(Method::Totp, T0), None, T0)
        .unwrap();
    let cookie = format!("session=s1; __Host-stepup={}", token.value());
    let cache_control = |r: &Response| -> Vec<String> {
        r.headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .clone()
        .oneshot(req("GET", "/statements", &cookie))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(cache_control(&r), ["no-store"], "added to a protected page");
    let r = app
        .clone()
        .oneshot(req("GET", "/avatar", &cookie))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        cache_control(&r),
        ["private, max-age=60"],
        "the handler's own is kept"
    );
    let r = app.oneshot(req("GET", "/public", &cookie)).await.unwrap();
    assert!(cache_control(&r).is_empty(), "unprotected routes untouched");
}
