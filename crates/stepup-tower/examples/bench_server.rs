//! The server behind `scripts/bench-layer`: one process, three routes that
//! differ only in what guards them, so a load generator can compare them.
//!
//! * `GET /plain` — the handler alone;
//! * `GET /stepup` — behind `RequireStepUp` (level 2 within 5 minutes);
//! * `GET /session` — reading the user from a `tower-sessions` `MemoryStore`.
//!
//! All three sit behind the same stand-in login middleware, which puts the
//! subject in the request as an application's login layer would.
//!
//! Usage: `bench_server 127.0.0.1:0` — prints `listening <addr>`, then the
//! `Cookie` header values a client must send to `/stepup` and `/session`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::get;
use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, SystemClock, TokenConfig,
};
use stepup_tower::{FromExtension, RequireStepUpLayer};
use tower::ServiceExt;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(serve(addr));
}

async fn serve(addr: String) {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let subject = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw");
    let now = SystemClock.now();
    let token = config
        .issuer()
        .issue(&subject, Proof::new(Method::Totp, now), None, now)
        .unwrap();

    let login_subject = subject.clone();
    let login = middleware::from_fn(move |mut req: Request, next: Next| {
        req.extensions_mut().insert(login_subject.clone());
        next.run(req)
    });
    let step_up = RequireStepUpLayer::new(
        config.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
        FromExtension::<Subject>::new(),
    );
    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let app = Router::new()
        .route("/plain", get(|| async { "ok" }))
        .route("/stepup", get(|| async { "ok" }).route_layer(step_up))
        .route(
            "/session",
            get(|session: Session| async move {
                match session.get::<String>("user").await {
                    Ok(Some(_)) => "ok",
                    _ => "no session",
                }
            }),
        )
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert("user", "alice").await.unwrap();
                "logged in"
            }),
        )
        .layer(sessions)
        .layer(login);

    // Log in once, in process, to get a session cookie for the load client.
    let response = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/login")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let session_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();

    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    // A realistic Cookie header: analytics and preference cookies around ours.
    let common = "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; \
                  lang=en-GB; consent=analytics%3Dfalse%26ads%3Dfalse; \
                  csrftoken=Zx7Qw1Lp9Ks3Vb5Nm8Jh2Gf4Dd6Ss0Aa1Qq3Ww5Ee7Rr9Tt1Yy3Uu5Ii7Oo9Pp; \
                  recent=%5B%22acct-1%22%2C%22acct-2%22%2C%22acct-3%22%5D; tz=Europe%2FBerlin; \
                  sidebar=collapsed; ab_test=checkout-v2%3Avariant-b; last_seen=1700000000";
    println!(
        "cookie {common}; {session_cookie}; __Host-stepup={}",
        token.value()
    );
    axum::serve(listener, app).await.unwrap();
}
