//! The actix middleware and extractor: who gets through, what the others are
//! told, and that the answers are the tower layer's, byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, test, web};
use stepup_actix::{Assurance, RequireStepUp, StepUpRequired};
use stepup_core::{
    Challenge, ChallengeReason, Gate, Issuer, Key, KeyId, KeyRing, Method, Policy, Proof, ReturnTo,
    Subject, TestClock, Timestamp,
};

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

struct World {
    gate: Gate,
    issuer: Issuer,
    clock: TestClock,
    calls: web::Data<AtomicUsize>,
}

fn world() -> World {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap());
    World {
        gate: Gate::new(&ring),
        issuer: Issuer::new(&ring),
        clock: TestClock::new(Timestamp::from_unix_seconds(1_800_000_000)),
        calls: web::Data::new(AtomicUsize::new(0)),
    }
}

fn who(request: &HttpRequest) -> Option<Subject> {
    let user = request.headers().get("x-user")?.to_str().ok()?;
    Some(Subject::new(user).with_session("s1"))
}

fn transfer_policy() -> Policy {
    Policy::level(2).max_age(Duration::from_secs(300))
}

impl World {
    fn token(&self, user: &str, method: Method) -> String {
        let subject = Subject::new(user).with_session("s1");
        let now = stepup_core::Clock::now(&self.clock);
        self.issuer
            .issue(&subject, Proof::new(method, now), None, now)
            .unwrap()
            .value()
            .to_owned()
    }

    fn data(&self) -> stepup_actix::StepUpData {
        let clock: std::sync::Arc<dyn stepup_core::Clock> = std::sync::Arc::new(self.clock.clone());
        stepup_actix::StepUpData::new(
            stepup_http::Guard::new(self.gate.clone(), Policy::level(1)).clock(clock),
            who,
        )
    }

    fn middleware(&self) -> RequireStepUp {
        RequireStepUp::new(self.gate.clone(), transfer_policy(), who).clock(self.clock.clone())
    }
}

async fn handler(
    assurance: Assurance,
    calls: web::Data<AtomicUsize>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, StepUpRequired> {
    calls.fetch_add(1, Ordering::SeqCst);
    if query.contains_key("big") {
        assurance.require(&Policy::method(Method::Passkey))?;
    }
    Ok(HttpResponse::Ok().body(format!("level {}", assurance.level())))
}

macro_rules! app {
    ($world:expr, $middleware:expr) => {
        test::init_service(
            App::new().app_data($world.calls.clone()).service(
                web::resource("/transfer")
                    .wrap($middleware)
                    .route(web::get().to(handler))
                    .route(web::post().to(handler)),
            ),
        )
        .await
    };
}

fn cookie(token: &str) -> (header::HeaderName, String) {
    (header::COOKIE, format!("theme=dark; __Host-stepup={token}"))
}

#[actix_web::test]
async fn nobody_logged_in_gets_401_without_a_challenge() {
    let w = world();
    let app = app!(w, w.middleware());
    let response = test::call_service(
        &app,
        test::TestRequest::post().uri("/transfer").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    let body = test::read_body(response).await;
    assert_eq!(body, stepup_http::LOGIN_REQUIRED_BODY.as_bytes());
    assert_eq!(w.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn a_browser_without_assurance_is_sent_to_the_page() {
    let w = world();
    let app = app!(w, w.middleware().page_note("r1"));
    let request = test::TestRequest::get()
        .uri("/transfer?to=DE89&amount=5")
        .insert_header(("x-user", "alice"))
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers().get(header::LOCATION).unwrap();
    assert_eq!(
        location,
        &format!(
            "/step-up?return_to=/transfer%3Fto%3DDE89%26amount%3D5&reason={}&why=r1",
            ChallengeReason::NoAssurance.code()
        )
    );
    assert_eq!(
        response.headers().get(header::CACHE_CONTROL).unwrap(),
        "no-store"
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn an_api_client_gets_the_same_bytes_as_from_the_tower_layer() {
    let w = world();
    let app = app!(w, w.middleware());
    let request = test::TestRequest::post()
        .uri("/transfer")
        .insert_header(("x-user", "alice"))
        .insert_header((header::ACCEPT, "application/json"))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let headers = response.headers().clone();
    let body = test::read_body(response).await;

    // The tower adapter's answer to the same request and challenge.
    let challenge: Challenge = w
        .gate
        .challenge(ChallengeReason::NoAssurance, &transfer_policy());
    let parts = http::Request::post("/transfer")
        .header("accept", "application/json")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let target = stepup_http::ChallengeTarget::default();
    let head = stepup_tower::Head(&parts);
    let tower: http::Response<String> = stepup_tower::into_response(target.respond(
        stepup_http::is_navigation_of(&head),
        &target.return_to("/transfer"),
        &challenge,
        None,
    ));
    assert_eq!(body, tower.body().as_bytes());
    for name in ["www-authenticate", "content-type", "cache-control"] {
        assert_eq!(
            headers.get(name).map(|v| v.as_bytes()),
            tower.headers().get(name).map(|v| v.as_bytes()),
            "{name}"
        );
    }
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        problem["step_up_url"],
        format!(
            "/step-up?return_to=/transfer&reason={}",
            ChallengeReason::NoAssurance.code()
        )
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn a_fresh_step_up_lets_the_handler_run_until_it_is_stale() {
    let w = world();
    let app = app!(w, w.middleware());
    let token = w.token("alice", Method::Totp);
    let call = || {
        test::TestRequest::post()
            .uri("/transfer")
            .insert_header(("x-user", "alice"))
            .insert_header(cookie(&token))
            .to_request()
    };
    let response = test::call_service(&app, call()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "level 2");
    assert_eq!(w.calls.load(Ordering::SeqCst), 1);

    w.clock.advance(Duration::from_secs(301));
    let response = test::call_service(&app, call()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem: serde_json::Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_eq!(
        problem["reason"],
        ChallengeReason::Stale.code(),
        "{problem}"
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn another_users_token_and_tossed_cookies_are_refused() {
    let w = world();
    let app = app!(w, w.middleware());
    let bobs = w.token("bob", Method::Totp);
    let request = test::TestRequest::post()
        .uri("/transfer")
        .insert_header(("x-user", "alice"))
        .insert_header(cookie(&bobs))
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Two cookies of the name, even both valid: a challenge, never a guess.
    let alices = w.token("alice", Method::Totp);
    let request = test::TestRequest::post()
        .uri("/transfer")
        .insert_header(("x-user", "alice"))
        .insert_header((
            header::COOKIE,
            format!("__Host-stepup={alices}; __Host-stepup={alices}"),
        ))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem: serde_json::Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_eq!(problem["reason"], ChallengeReason::Invalid.code());

    // A forged value is a challenge too, not an error.
    let request = test::TestRequest::post()
        .uri("/transfer")
        .insert_header(("x-user", "alice"))
        .insert_header(cookie("%%%not-a-token"))
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn in_handler_require_answers_like_the_middleware() {
    let w = world();
    let app = app!(w, w.middleware());
    let token = w.token("alice", Method::Totp);
    let request = test::TestRequest::post()
        .uri("/transfer?big=1")
        .insert_header(("x-user", "alice"))
        .insert_header(cookie(&token))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_some());

    let request = test::TestRequest::get()
        .uri("/transfer?big=1")
        .insert_header(("x-user", "alice"))
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
        .insert_header(cookie(&token))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        location.starts_with("/step-up?return_to=/transfer%3Fbig%3D1&reason="),
        "{location}"
    );

    let passkey = w.token("alice", Method::Passkey);
    let request = test::TestRequest::post()
        .uri("/transfer?big=1")
        .insert_header(("x-user", "alice"))
        .insert_header(cookie(&passkey))
        .to_request();
    assert_eq!(
        test::call_service(&app, request).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn the_extractor_without_the_middleware_is_a_clear_wiring_error() {
    let app = test::init_service(
        App::new()
            .route(
                "/bare",
                web::get().to(|_: Assurance| async { "unreachable" }),
            )
            .route(
                "/optional",
                web::get().to(|a: Option<Assurance>| async move {
                    if a.is_some() { "some" } else { "none" }
                }),
            ),
    )
    .await;
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/bare").to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = test::read_body(response).await;
    assert!(String::from_utf8_lossy(&body).contains("stepup.app_data()"));
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/optional").to_request()).await;
    assert_eq!(test::read_body(response).await, "none");
}

#[actix_web::test]
async fn hostile_paths_and_notes_never_reach_the_location() {
    let w = world();
    let app = test::init_service(
        App::new().app_data(w.calls.clone()).service(
            web::scope("")
                .wrap(
                    w.middleware()
                        .page_note("x&reason=forged")
                        .challenge_page("https://evil.example/")
                        .fallback_return(ReturnTo::parse("/home").unwrap()),
                )
                .default_service(web::to(|| async { "inner" })),
        ),
    )
    .await;
    let request = test::TestRequest::get()
        .uri("//evil.example/%2e%2e")
        .insert_header(("x-user", "alice"))
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        location,
        format!(
            "/step-up?return_to=/home&reason={}",
            ChallengeReason::NoAssurance.code()
        )
    );
}

#[actix_web::test]
async fn browsers_without_a_login_can_be_sent_to_the_login_page() {
    let w = world();
    let login = ReturnTo::parse("/login").unwrap();
    let app = app!(
        w,
        w.middleware()
            .on_no_subject(stepup_actix::NoSubject::RedirectToLogin(login))
    );
    let request = test::TestRequest::get()
        .uri("/transfer?to=DE89")
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers().get(header::LOCATION).unwrap(),
        "/login?return_to=/transfer%3Fto%3DDE89"
    );
    // API clients still get the 401.
    let request = test::TestRequest::post().uri("/transfer").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(w.calls.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn the_token_header_is_opt_in_and_never_combined_with_the_cookie() {
    let w = world();
    let token = w.token("alice", Method::Totp);
    let with_header = || {
        test::TestRequest::post()
            .uri("/transfer")
            .insert_header(("x-user", "alice"))
            .insert_header((stepup_actix::TOKEN_HEADER, token.as_str()))
    };
    // Off by default: the header is ignored.
    let app = app!(w, w.middleware());
    let response = test::call_service(&app, with_header().to_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let app = app!(w, w.middleware().accept_token_header());
    let response = test::call_service(&app, with_header().to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(w.calls.load(Ordering::SeqCst), 1);

    // Both sources at once, even the same token: refused.
    let request = with_header().insert_header(cookie(&token)).to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem: serde_json::Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_eq!(problem["reason"], ChallengeReason::Invalid.code());
    assert_eq!(w.calls.load(Ordering::SeqCst), 1);
}

#[actix_web::test]
async fn with_app_data_the_extractor_verifies_on_routes_without_the_middleware() {
    let w = world();
    let app = test::init_service(
        App::new()
            .app_data(w.data())
            .route(
                "/profile",
                web::get().to(|a: Assurance| async move { format!("level {}", a.level()) }),
            )
            .route(
                "/maybe",
                web::get().to(|a: Option<Assurance>| async move {
                    if a.is_some() { "some" } else { "none" }
                }),
            ),
    )
    .await;
    let get = |uri: &str| {
        test::TestRequest::get()
            .uri(uri)
            .insert_header(("x-user", "alice"))
    };
    // No token: the challenge, for any step-up at all.
    let response = test::call_service(&app, get("/profile").to_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem: serde_json::Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_eq!(problem["reason"], ChallengeReason::NoAssurance.code());
    let response = test::call_service(&app, get("/maybe").to_request()).await;
    assert_eq!(test::read_body(response).await, "none");

    let token = w.token("alice", Method::Password);
    let response = test::call_service(
        &app,
        get("/profile").insert_header(cookie(&token)).to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(test::read_body(response).await, "level 1");
    let response = test::call_service(
        &app,
        get("/maybe").insert_header(cookie(&token)).to_request(),
    )
    .await;
    assert_eq!(test::read_body(response).await, "some");

    // Another user's token is no assurance for this one.
    let bobs = w.token("bob", Method::Passkey);
    let response = test::call_service(
        &app,
        get("/profile").insert_header(cookie(&bobs)).to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Nobody logged in: the "log in first" answer, not a challenge.
    let request = test::TestRequest::get().uri("/profile").to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(header::WWW_AUTHENTICATE).is_none());
    assert_eq!(
        test::read_body(response).await,
        stepup_http::LOGIN_REQUIRED_BODY.as_bytes()
    );
}

#[actix_web::test]
async fn protected_responses_are_not_stored_unless_the_handler_says_otherwise() {
    let w = world();
    let app = test::init_service(
        App::new()
            .app_data(w.calls.clone())
            .service(
                web::resource("/transfer")
                    .wrap(w.middleware())
                    .route(web::post().to(handler)),
            )
            .service(
                web::resource("/avatar")
                    .wrap(w.middleware())
                    .route(web::get().to(|| async {
                        HttpResponse::Ok()
                            .insert_header((header::CACHE_CONTROL, "private, max-age=60"))
                            .body("png")
                    })),
            ),
    )
    .await;
    let token = w.token("alice", Method::Totp);
    let call = |request: test::TestRequest| {
        request
            .insert_header(("x-user", "alice"))
            .insert_header(cookie(&token))
            .to_request()
    };
    let cache_control = |response: &actix_web::dev::ServiceResponse| -> Vec<String> {
        response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    let response = test::call_service(&app, call(test::TestRequest::post().uri("/transfer"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(cache_control(&response), ["no-store"], "added");
    let response = test::call_service(&app, call(test::TestRequest::get().uri("/avatar"))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        cache_control(&response),
        ["private, max-age=60"],
        "the handler's own is kept"
    );
}

#[actix_web::test]
async fn a_per_request_policy_chooses_by_the_request_as_on_tower() {
    let w = world();
    let read = std::sync::Arc::new(Policy::level(1));
    let write = std::sync::Arc::new(Policy::method(Method::Passkey));
    let middleware = RequireStepUp::per_request(
        w.gate.clone(),
        move |request: &HttpRequest, _| {
            if request.method() == actix_web::http::Method::POST {
                write.clone()
            } else {
                read.clone()
            }
        },
        who,
    )
    .clock(w.clock.clone());
    let app = app!(w, middleware);
    let token = w.token("alice", Method::Totp);
    let call = |method: actix_web::http::Method| {
        test::TestRequest::default()
            .method(method)
            .uri("/transfer")
            .insert_header(("x-user", "alice"))
            .insert_header(cookie(&token))
            .to_request()
    };
    let response = test::call_service(&app, call(actix_web::http::Method::GET)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = test::call_service(&app, call(actix_web::http::Method::POST)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem: serde_json::Value =
        serde_json::from_slice(&test::read_body(response).await).unwrap();
    assert_eq!(problem["reason"], "missing_method");
    assert_eq!(
        problem["methods"],
        serde_json::json!(["device_bound_passkey", "passkey"])
    );
    assert_eq!(w.calls.load(Ordering::SeqCst), 1, "only the GET ran");
}
