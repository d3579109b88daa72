//! The helpers against the real layer and extractor: what they let through
//! is what a real step-up lets through, and no more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore, NoPasswords};
use stepup_core::{Clock, Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
use stepup_tower::FromExtension;
use tower::ServiceExt;

use super::{Method, SteppedUpRequest, TestAssurance, TestClock, Timestamp, ago};
use crate::{Assurance, StepUp};

type Bank = StepUp<MemoryFactorStore, MemoryStateStore, NoPasswords>;

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

fn minutes(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// An application: `/transfer` needs level 2 within 5 minutes (cookie),
/// `/api/transfer` the same by cookie or header, `/profile` only the
/// extractor (any step-up).
fn app(clock: &TestClock) -> (Router, Bank) {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[7u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone());
    let stepup = StepUp::new(
        engine,
        FromExtension::<Subject>::new(),
        "https://bank.example",
    );
    let policy: Policy = "level 2 within 5m".parse().unwrap();
    let handler = |a: Assurance| async move { format!("sent at level {}", a.level()) };
    let router = Router::new()
        .route(
            "/transfer",
            post(handler).route_layer(stepup.require(policy.clone())),
        )
        .route(
            "/api/transfer",
            post(handler).route_layer(stepup.require(policy).accept_token_header()),
        )
        .route("/profile", get(handler))
        .merge(stepup.routes())
        .layer(stepup.layer());
    (router, stepup)
}

fn alice() -> TestAssurance {
    TestAssurance::for_subject("alice").session("session-1")
}

/// A `POST` by `who` (the subject the login layer found).
fn post_as(path: &str, who: &TestAssurance) -> axum::http::request::Builder {
    Request::post(path).extension(who.subject().clone())
}

async fn status(router: &Router, request: Request<Body>) -> StatusCode {
    router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn refused_without_the_helper_passed_with_it() {
    let clock = TestClock::new(T0);
    let (router, stepup) = app(&clock);
    let alice = alice().with(Method::Totp, ago(minutes(1)));

    let api = post_as("/transfer", &alice).body(Body::empty()).unwrap();
    assert_eq!(status(&router, api).await, StatusCode::UNAUTHORIZED);
    let browser = post_as("/transfer", &alice)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "same-origin")
        .header("origin", "https://bank.example")
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&router, browser).await, StatusCode::SEE_OTHER);

    let request = post_as("/transfer", &alice)
        .stepped_up(&stepup, &alice)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"sent at level 2");

    // On a built request, and for the extractor alone.
    let request = Request::get("/profile")
        .extension(alice.subject().clone())
        .body(Body::empty())
        .unwrap()
        .stepped_up(&stepup, &alice);
    assert_eq!(status(&router, request).await, StatusCode::OK);
}

#[tokio::test]
async fn ages_are_honoured() {
    let clock = TestClock::new(T0);
    let (router, stepup) = app(&clock);
    for (age, expected) in [
        (minutes(10), StatusCode::UNAUTHORIZED),
        (minutes(1), StatusCode::OK),
    ] {
        let alice = alice().with(Method::Totp, ago(age));
        let request = post_as("/transfer", &alice)
            .stepped_up(&stepup, &alice)
            .body(Body::empty())
            .unwrap();
        assert_eq!(status(&router, request).await, expected, "TOTP {age:?} ago");
    }
    // A password is level 1, however fresh.
    let alice = alice().with(Method::Password, ago(Duration::ZERO));
    let request = post_as("/transfer", &alice)
        .stepped_up(&stepup, &alice)
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&router, request).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_subject_or_session_is_refused() {
    let clock = TestClock::new(T0);
    let (router, stepup) = app(&clock);
    let alice = alice().with(Method::Totp, ago(minutes(1)));
    for who in [
        TestAssurance::for_subject("bob").session("session-1"),
        TestAssurance::for_subject("alice").session("session-2"),
        TestAssurance::for_subject("alice"),
        TestAssurance::for_subject("alice")
            .session("session-1")
            .epoch(1),
    ] {
        let request = post_as("/transfer", &who)
            .stepped_up(&stepup, &alice)
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            status(&router, request).await,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            who.subject()
        );
    }
}

#[tokio::test]
async fn advancing_the_test_clock_expires_the_assurance() {
    let clock = TestClock::new(T0);
    let (router, stepup) = app(&clock);
    let alice = alice().with(Method::Totp, clock.now());
    let request = || {
        post_as("/transfer", &alice)
            .stepped_up(&stepup, &alice)
            .body(Body::empty())
            .unwrap()
    };
    let token = request();
    assert_eq!(status(&router, token).await, StatusCode::OK);
    clock.advance(minutes(5) + Duration::from_secs(1));
    // Minted again at the new time: the TOTP proof is as old as the clock says.
    assert_eq!(status(&router, request()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_header_where_the_route_accepts_it() {
    let clock = TestClock::new(T0);
    let (router, stepup) = app(&clock);
    let alice = alice().with(Method::Passkey, ago(minutes(2)));
    let by_header = || {
        post_as("/api/transfer", &alice)
            .stepped_up_by_header(&stepup, &alice)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(status(&router, by_header()).await, StatusCode::OK);
    // The cookie route does not read the header.
    let request = post_as("/transfer", &alice)
        .stepped_up_by_header(&stepup, &alice)
        .body(Body::empty())
        .unwrap();
    assert_eq!(status(&router, request).await, StatusCode::UNAUTHORIZED);
    // Both at once: ambiguous, refused.
    let both = by_header().stepped_up(&stepup, &alice);
    assert_eq!(status(&router, both).await, StatusCode::UNAUTHORIZED);
}

#[test]
#[should_panic(expected = "at least one method")]
fn an_assurance_without_methods_is_a_mistake() {
    let (_, stepup) = app(&TestClock::new(T0));
    let _ = Request::get("/").stepped_up(&stepup, &alice());
}
