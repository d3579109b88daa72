//! The helpers against the real middleware and extractor: what they let
//! through is what a real step-up lets through, and no more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::{App, HttpRequest, web};
use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore, NoPasswords};
use stepup_core::{Clock, Key, KeyId, KeyRing, Policy, Subject, TokenConfig};

use super::{Method, SteppedUpTestRequest, TestAssurance, TestClock, Timestamp, ago};
use crate::{Assurance, StepUp};

type Bank = StepUp<MemoryFactorStore, MemoryStateStore, NoPasswords>;

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

fn minutes(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// The application's login: the user and session from test headers, the
/// epoch from another (as a session store would give them).
fn who(request: &HttpRequest) -> Option<Subject> {
    let header = |name| request.headers().get(name)?.to_str().ok();
    let mut subject = Subject::new(header("x-user")?);
    if let Some(session) = header("x-session") {
        subject = subject.with_session(session);
    }
    let epoch = header("x-epoch").and_then(|e| e.parse().ok()).unwrap_or(0);
    Some(subject.with_epoch(epoch))
}

fn stepup(clock: &TestClock) -> Bank {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[7u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone());
    StepUp::new(engine, who, "https://bank.example")
}

async fn handler(a: Assurance) -> String {
    format!("sent at level {}", a.level())
}

/// The application: `/transfer` needs level 2 within 5 minutes (cookie),
/// `/api/transfer` the same by cookie or header, `/profile` only the
/// extractor.
macro_rules! app {
    ($stepup:expr) => {{
        let stepup = &$stepup;
        let policy: Policy = "level 2 within 5m".parse().unwrap();
        test::init_service(
            App::new()
                .app_data(stepup.app_data())
                .configure(|c| stepup.configure(c))
                .service(
                    web::resource("/transfer")
                        .wrap(stepup.require(policy.clone()))
                        .route(web::post().to(handler)),
                )
                .service(
                    web::resource("/api/transfer")
                        .wrap(stepup.require(policy).accept_token_header())
                        .route(web::post().to(handler)),
                )
                .route("/profile", web::get().to(handler)),
        )
        .await
    }};
}

fn alice() -> TestAssurance {
    TestAssurance::for_subject("alice").session("session-1")
}

/// A request made by `who` (the subject the login finds).
fn as_user(request: TestRequest, who: &TestAssurance) -> TestRequest {
    let subject = who.subject();
    let mut request = request
        .insert_header(("x-user", subject.id().to_owned()))
        .insert_header(("x-epoch", subject.epoch().to_string()));
    if let Some(session) = subject.session() {
        request = request.insert_header(("x-session", session.to_owned()));
    }
    request
}

fn post_as(path: &str, who: &TestAssurance) -> TestRequest {
    as_user(TestRequest::post().uri(path), who)
}

#[actix_web::test]
async fn refused_without_the_helper_passed_with_it() {
    let clock = TestClock::new(T0);
    let stepup = stepup(&clock);
    let app = app!(stepup);
    let alice = alice().with(Method::Totp, ago(minutes(1)));

    let api = post_as("/transfer", &alice).to_request();
    assert_eq!(
        test::call_service(&app, api).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let browser = post_as("/transfer", &alice)
        .insert_header(("sec-fetch-mode", "navigate"))
        .insert_header(("sec-fetch-site", "same-origin"))
        .insert_header(("origin", "https://bank.example"))
        .to_request();
    assert_eq!(
        test::call_service(&app, browser).await.status(),
        StatusCode::SEE_OTHER
    );

    let request = post_as("/transfer", &alice)
        .stepped_up(&stepup, &alice)
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&test::read_body(response).await[..], b"sent at level 2");

    // For the extractor alone.
    let request = as_user(TestRequest::get().uri("/profile"), &alice)
        .stepped_up(&stepup, &alice)
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn ages_are_honoured() {
    let clock = TestClock::new(T0);
    let stepup = stepup(&clock);
    let app = app!(stepup);
    for (age, expected) in [
        (minutes(10), StatusCode::UNAUTHORIZED),
        (minutes(1), StatusCode::OK),
    ] {
        let alice = alice().with(Method::Totp, ago(age));
        let request = post_as("/transfer", &alice)
            .stepped_up(&stepup, &alice)
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            expected,
            "TOTP {age:?} ago"
        );
    }
    // A password is level 1, however fresh.
    let alice = alice().with(Method::Password, ago(Duration::ZERO));
    let request = post_as("/transfer", &alice)
        .stepped_up(&stepup, &alice)
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn another_subject_or_session_is_refused() {
    let clock = TestClock::new(T0);
    let stepup = stepup(&clock);
    let app = app!(stepup);
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
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            StatusCode::UNAUTHORIZED,
            "{:?}",
            who.subject()
        );
    }
}

#[actix_web::test]
async fn advancing_the_test_clock_expires_the_assurance() {
    let clock = TestClock::new(T0);
    let stepup = stepup(&clock);
    let app = app!(stepup);
    let alice = alice().with(Method::Totp, clock.now());
    let request = || {
        post_as("/transfer", &alice)
            .stepped_up(&stepup, &alice)
            .to_request()
    };
    assert_eq!(
        test::call_service(&app, request()).await.status(),
        StatusCode::OK
    );
    clock.advance(minutes(5) + Duration::from_secs(1));
    // Minted again at the new time: the TOTP proof is as old as the clock says.
    assert_eq!(
        test::call_service(&app, request()).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_token_header_where_the_route_accepts_it() {
    let clock = TestClock::new(T0);
    let stepup = stepup(&clock);
    let app = app!(stepup);
    let alice = alice().with(Method::Passkey, ago(minutes(2)));
    let by_header = || post_as("/api/transfer", &alice).stepped_up_by_header(&stepup, &alice);
    assert_eq!(
        test::call_service(&app, by_header().to_request())
            .await
            .status(),
        StatusCode::OK
    );
    // The cookie route does not read the header.
    let request = post_as("/transfer", &alice)
        .stepped_up_by_header(&stepup, &alice)
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Both at once: ambiguous, refused.
    let both = by_header().stepped_up(&stepup, &alice).to_request();
    assert_eq!(
        test::call_service(&app, both).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
#[should_panic(expected = "at least one method")]
fn an_assurance_without_methods_is_a_mistake() {
    let stepup = stepup(&TestClock::new(T0));
    let _ = TestRequest::get().stepped_up(&stepup, &alice());
}
