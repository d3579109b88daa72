//! The axum adapter end to end in process: a small app with the layer, the
//! extractor, in-handler `require` and the challenge routes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::Value;
use stepup_axum::{Assurance, StepUp, StepUpRequired, TrustedHeaders};
use stepup_challenge::{
    Engine, FactorStore, FixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig,
    TotpSecret,
};
use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Subject, TestClock, Timestamp, TokenConfig,
};
use tower::ServiceExt;

const ORIGIN: &str = "http://bank.test";
const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);
const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

struct App {
    router: Router,
    clock: TestClock,
    secret: TotpSecret,
    totp: TotpConfig,
}

async fn transfer(assurance: Assurance, Json(body): Json<Value>) -> Result<String, StepUpRequired> {
    let amount = body["amount"].as_u64().unwrap_or(0);
    if amount > 10_000 {
        let big = Policy::method(Method::Passkey)
            .or(Policy::method(Method::Totp))
            .max_age(Duration::from_secs(60))
            .with_reason("Transfers over 10,000 need a fresh second factor.");
        assurance.require(&big)?;
    }
    Ok(format!("sent {amount} at level {}", assurance.level()))
}

async fn app() -> App {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    factors
        .set_totp_secret(&Subject::new("alice"), secret.clone())
        .await
        .unwrap();
    let totp = TotpConfig::new("Bank");
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_totp(totp.clone())
    .with_passwords(FixedPasswords::new([
        ("alice", "wonderland"),
        ("bob", "builder"),
    ]));
    let stepup = StepUp::new(
        config.gate(),
        engine,
        TrustedHeaders::new("x-user").with_session("x-session"),
        ORIGIN,
    )
    .with_clock(clock.clone());
    let router = Router::new()
        .route(
            "/transfer",
            post(transfer)
                .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(300)))),
        )
        .route(
            "/statements",
            get(|| async { "statements" })
                .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(600)))),
        )
        .route(
            "/whoami",
            get(|a: Option<Assurance>| async move {
                a.map_or("no assurance".to_owned(), |a| {
                    format!("level {}", a.level())
                })
            }),
        )
        .route(
            "/strict",
            get(|a: Assurance| async move { format!("level {}", a.level()) }),
        )
        .nest("/step-up", stepup.routes())
        .layer(stepup.extension());
    App {
        router,
        clock,
        secret,
        totp,
    }
}

impl App {
    fn code(&self) -> String {
        self.totp
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn send(&self, request: Request) -> (Response, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }
}

fn as_alice(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-user", "alice")
        .header("x-session", "s-1")
}

fn form(uri: &str, body: &str, cookie: Option<&str>) -> Request {
    let mut b = as_alice("POST", uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", ORIGIN);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn json_post(uri: &str, body: &str, cookie: Option<&str>) -> Request {
    let mut b = as_alice("POST", uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header("origin", ORIGIN);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn cookie_of(response: &Response) -> String {
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_browser_is_sent_to_the_page_steps_up_and_comes_back() {
    let app = app().await;
    let nav = as_alice("GET", "/statements?month=2026-10")
        .header("accept", HTML)
        .body(Body::empty())
        .unwrap();
    let (r, _) = app.send(nav).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        "/step-up?return_to=/statements%3Fmonth%3D2026-10&reason=no_assurance"
    );

    let (r, html) = app
        .send(as_alice("GET", &location).body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert!(html.contains(r#"action="/step-up/totp""#), "{html}");
    assert!(html.contains(r#"action="/step-up/password""#));
    assert!(
        !html.contains(r#"action="/step-up/recovery""#),
        "no recovery codes yet"
    );
    assert!(
        html.contains(r#"value="/statements?month=2026-10""#),
        "{html}"
    );

    let body = format!(
        "code={}&return_to=%2Fstatements%3Fmonth%3D2026-10",
        app.code()
    );
    let (r, _) = app.send(form("/step-up/totp", &body, None)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/statements?month=2026-10");
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-stepup="), "{set}");
    assert!(
        set.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"),
        "{set}"
    );
    let cookie = cookie_of(&r);

    let back = as_alice("GET", "/statements?month=2026-10")
        .header("accept", HTML)
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (r, text) = app.send(back).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text, "statements");

    // 600 s later the statement page asks again.
    app.clock.advance(Duration::from_secs(601));
    let again = as_alice("GET", "/statements")
        .header("accept", HTML)
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (r, _) = app.send(again).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .ends_with("reason=stale")
    );
}

#[tokio::test]
async fn an_api_client_gets_rfc9470_then_steps_up_with_json() {
    let app = app().await;
    let (r, body) = app
        .send(json_post("/transfer", r#"{"to":"bob","amount":100}"#, None))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["reason"], "no_assurance");

    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{}"}}"#, app.code()),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ok["level"], 2);
    let cookie = cookie_of(&r);

    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":100}"#,
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body, "sent 100 at level 2");

    // Over 10,000: a TOTP proof within 60 s (in-handler require).
    app.clock.advance(Duration::from_secs(61));
    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":20000}"#,
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["reason"], "stale");
    assert_eq!(
        problem["detail"],
        "Transfers over 10,000 need a fresh second factor."
    );
    // The replayed code is refused; a new one works and keeps the old proof.
    app.clock.advance(Duration::from_secs(30));
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{}"}}"#, app.code()),
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let fresh = cookie_of(&r);
    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":20000}"#,
            Some(&fresh),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    // 300 s later, even a small transfer is challenged again.
    app.clock.advance(Duration::from_secs(301));
    let (r, _) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":1}"#,
            Some(&fresh),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_codes_lock_out_and_replays_are_refused() {
    let app = app().await;
    // A browser gets whole sentences.
    let (r, html) = app.send(form("/step-up/totp", "code=000000", None)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        html.contains("That was not right. You can try 4 more times."),
        "{html}"
    );
    for left in (0..4).rev() {
        let (r, body) = app
            .send(json_post("/step-up/totp", r#"{"code":"000000"}"#, None))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "wrong", "{body}");
        assert_eq!(v["attempts_left"], left);
    }
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{}"}}"#, app.code()),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "locked_out");

    // A browser form gets the page back with the error.
    let (r, html) = app.send(form("/step-up/totp", "code=000000", None)).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        html.contains("Too many attempts. Please wait 1 minute and try again."),
        "{html}"
    );
    assert!(html.contains("autofocus"));

    // After the lockout, a code works once.
    app.clock.advance(Duration::from_secs(61));
    let code = app.code();
    let (r, _) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{code}"}}"#),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{code}"}}"#),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("already_used"), "{body}");
}

#[tokio::test]
async fn cross_origin_posts_are_refused() {
    let app = app().await;
    let code = app.code();
    for (origin, fetch_site) in [
        (Some("http://evil.test"), None),
        (Some("null"), None),
        (Some("http://bank.test.evil.test"), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
        (None, None),
    ] {
        let mut b = as_alice("POST", "/step-up/totp")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        if let Some(s) = fetch_site {
            b = b.header("sec-fetch-site", s);
        }
        let (r, _) = app
            .send(b.body(Body::from(format!("code={code}"))).unwrap())
            .await;
        assert_eq!(
            r.status(),
            StatusCode::FORBIDDEN,
            "{origin:?} {fetch_site:?}"
        );
        assert!(!r.headers().contains_key(header::SET_COOKIE));
    }
    // Drop is a POST too.
    let r = app
        .router
        .clone()
        .oneshot(
            as_alice("POST", "/step-up/drop")
                .header("origin", "http://evil.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A same-origin browser without Origin (Sec-Fetch-Site) is fine.
    let (r, _) = app
        .send(
            as_alice("POST", "/step-up/totp")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("sec-fetch-site", "same-origin")
                .body(Body::from(format!("code={code}")))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn hostile_return_paths_fall_back_to_root() {
    let app = app().await;
    for hostile in [
        "https%3A%2F%2Fevil.test%2F",
        "%2F%2Fevil.test",
        "%2F%5Cevil.test",
        "%2F%250d%250aSet-Cookie%3Ax",
        "javascript%3Aalert(1)",
        "%2F..%2Fadmin",
    ] {
        let (r, _) = app
            .send(form(
                "/step-up/password",
                &format!("password=wonderland&return_to={hostile}"),
                None,
            ))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{hostile}");
        assert_eq!(r.headers()[header::LOCATION], "/", "{hostile}");
        app.clock.advance(Duration::from_secs(1));
    }
    let (_, html) = app
        .send(
            as_alice(
                "GET",
                "/step-up?return_to=%2F%2Fevil.test&reason=%3Cscript%3E",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await;
    assert!(!html.contains("evil.test"), "{html}");
    assert!(!html.contains("<script>"));
}

#[tokio::test]
async fn status_and_drop() {
    let app = app().await;
    let status = |cookie: Option<String>, q: &str| {
        let mut b = as_alice("GET", &format!("/step-up/status{q}"));
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        b.body(Body::empty()).unwrap()
    };
    let (_, body) = app.send(status(None, "")).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["assured"], false);
    assert_eq!(v["reason"], "no_assurance");

    let (r, _) = app
        .send(json_post(
            "/step-up/password",
            r#"{"password":"wonderland"}"#,
            None,
        ))
        .await;
    let cookie = cookie_of(&r);
    app.clock.advance(Duration::from_secs(10));
    let (_, body) = app
        .send(status(
            Some(cookie.clone()),
            "?policy=level%201%20within%205m",
        ))
        .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["assured"], true, "{body}");
    assert_eq!(v["level"], 1);
    assert_eq!(v["methods"][0]["method"], "password");
    assert_eq!(v["methods"][0]["age"], 10);
    assert_eq!(v["satisfied"], true);
    let (_, body) = app.send(status(Some(cookie.clone()), "?policy=totp")).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["satisfied"], false);
    let (r, body) = app
        .send(status(Some(cookie.clone()), "?policy=level%20banana"))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("level"), "{body}");

    let (r, _) = app
        .send(form("/step-up/drop", "return_to=%2Faccount", Some(&cookie)))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/account");
    assert_eq!(
        r.headers()[header::SET_COOKIE],
        "__Host-stepup=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
    );
}

#[tokio::test]
async fn the_extractor_works_without_the_layer_and_says_when_unconfigured() {
    let app = app().await;
    let (_, text) = app
        .send(as_alice("GET", "/whoami").body(Body::empty()).unwrap())
        .await;
    assert_eq!(text, "no assurance");
    let (r, _) = app
        .send(
            as_alice("GET", "/strict")
                .header("accept", "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (r, _) = app
        .send(json_post(
            "/step-up/password",
            r#"{"password":"wonderland"}"#,
            None,
        ))
        .await;
    let cookie = cookie_of(&r);
    let (_, text) = app
        .send(
            as_alice("GET", "/whoami")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(text, "level 1");
    // Not logged in: 401, no challenge.
    let r = app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/strict")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));

    // A router without the extension: the extractor is a 500 that says why.
    let bare: Router = Router::new().route(
        "/strict",
        get(|a: Assurance| async move { a.level().to_string() }),
    );
    let r = bare
        .oneshot(as_alice("GET", "/strict").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("stepup.extension()"), "{text}");
}

#[tokio::test]
async fn bad_bodies_are_clear_errors() {
    let app = app().await;
    let (r, _) = app
        .send(json_post("/step-up/totp", "{not json", None))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (r, _) = app
        .send(json_post("/step-up/totp", &"x".repeat(20_000), None))
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            r#"{"code":"１２３４５６"}"#,
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("format"), "{body}");
    let (r, body) = app
        .send(json_post(
            "/step-up/recovery",
            r#"{"code":"ABCD-EFGH-JKMN-PQRS"}"#,
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("not_enrolled"), "{body}");
}

fn as_bob(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-user", "bob")
        .header("x-session", "b-1")
        .header("origin", ORIGIN)
}

#[tokio::test]
async fn enrollment_needs_a_fresh_step_up_once_a_second_factor_exists() {
    let app = app().await;
    // Alice has TOTP: the enrollment page first sends her to step up.
    let (r, _) = app
        .send(
            as_alice("GET", "/step-up/enroll/totp")
                .header("accept", HTML)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("return_to=/step-up/enroll/totp")
    );

    // Bob has none: he may enroll his first one directly.
    let (r, html) = app
        .send(
            as_bob("GET", "/step-up/enroll/totp")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(html.contains(r#"action="/step-up/enroll/totp""#), "{html}");
    let (r, html) = app
        .send(
            as_bob("POST", "/step-up/enroll/totp")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        html.contains("data:image/png;base64,") && html.contains("enroll/totp/confirm"),
        "{html}"
    );
    let (r, body) = app
        .send(
            as_bob("POST", "/step-up/enroll/totp")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let secret = TotpSecret::from_base32(v["manual_entry_key"].as_str().unwrap()).unwrap();
    assert!(
        v["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let code = app
        .totp
        .code_at(&secret, app.clock.now().as_unix_seconds())
        .unwrap();
    let confirm = |code: &str| {
        as_bob("POST", "/step-up/enroll/totp/confirm")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"code":"{code}"}}"#)))
            .unwrap()
    };
    let (r, body) = app.send(confirm(&code)).await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");

    // Now recovery codes need a fresh step-up; the confirming code cannot be it.
    let codes_request = || {
        as_bob("POST", "/step-up/enroll/recovery-codes")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap()
    };
    let (r, _) = app.send(codes_request()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (r, body) = app
        .send(
            as_bob("POST", "/step-up/totp")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(r#"{{"code":"{code}"}}"#)))
                .unwrap(),
        )
        .await;
    assert!(body.contains("already_used"), "{body}");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.clock.advance(Duration::from_secs(30));
    let next = app
        .totp
        .code_at(&secret, app.clock.now().as_unix_seconds())
        .unwrap();
    let (r, _) = app
        .send(
            as_bob("POST", "/step-up/totp")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(r#"{{"code":"{next}"}}"#)))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = cookie_of(&r);
    let mut request = codes_request();
    request
        .headers_mut()
        .insert(header::COOKIE, cookie.parse().unwrap());
    let (r, body) = app.send(request).await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["recovery_codes"].as_array().unwrap().len(), 10);
    // Enrollment POSTs are origin-checked too.
    let (r, _) = app
        .send(
            Request::builder()
                .method("POST")
                .uri("/step-up/enroll/recovery-codes")
                .header("x-user", "bob")
                .header("x-session", "b-1")
                .header("origin", "http://evil.test")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_page_can_be_replaced_and_never_shows_request_text() {
    let app = app().await;
    // A hostile `why` is an unknown identifier: the generic sentence.
    let (_, html) = app
        .send(
            as_alice("GET", "/step-up?why=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(html.contains("We need to confirm it"), "{html}");
    assert!(!html.contains("alert(1)"));

    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    )
    .with_passwords(FixedPasswords::new([("alice", "wonderland")]));
    let stepup = StepUp::new(
        config.gate(),
        engine,
        TrustedHeaders::new("x-user").with_session("x-session"),
        ORIGIN,
    )
    .with_page_renderer(|page| {
        format!(
            "custom page for {} with password form: {}",
            page.return_to(),
            page.offers_password()
        )
    });
    let router: Router = Router::new().nest("/step-up", stepup.routes());
    let r = router
        .oneshot(
            as_alice("GET", "/step-up?return_to=%2Fx")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(text, "custom page for /x with password form: true");
}

#[tokio::test]
async fn codes_by_email_through_the_routes() {
    use stepup_challenge::{Channel, RecordingSender};
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    factors
        .set_code_destination(&Subject::new("alice"), Channel::Email, "alice@example.com")
        .unwrap();
    let sender = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_code_sender(sender.clone());
    let stepup = StepUp::new(
        config.gate(),
        engine,
        TrustedHeaders::new("x-user").with_session("x-session"),
        ORIGIN,
    )
    .with_clock(clock.clone());
    let router: Router = Router::new().nest("/step-up", stepup.routes());
    let send = |req: Request| {
        let router = router.clone();
        async move {
            let r = router.oneshot(req).await.unwrap();
            let (parts, body) = r.into_parts();
            let text =
                String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
            (Response::from_parts(parts, Body::empty()), text)
        }
    };
    // The page offers the e-mail code.
    let (_, html) = send(as_alice("GET", "/step-up").body(Body::empty()).unwrap()).await;
    assert!(html.contains("Send me a code by e-mail"), "{html}");
    assert!(html.contains(r#"action="/step-up/code/send""#));

    // JSON.
    let (r, body) = send(json_post(
        "/step-up/code/send",
        r#"{"channel":"email"}"#,
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["destination_hint"], "a•••@example.com");
    assert!(!body.contains("alice@example.com"), "the address is masked");
    let id = v["challenge_id"].as_str().unwrap().to_owned();
    let code = sender.last_code_to("alice@example.com").unwrap();
    let (r, body) = send(json_post(
        "/step-up/code/verify",
        &format!(r#"{{"channel":"email","challenge_id":"{id}","code":"{code}"}}"#),
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    assert!(r.headers().contains_key(header::SET_COOKIE));
    let (r, body) = send(json_post(
        "/step-up/code/verify",
        &format!(r#"{{"channel":"email","challenge_id":"{id}","code":"{code}"}}"#),
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body.contains("no_pending_code"), "{body}");

    // A browser: the send answers with the code form; the code brings it back.
    let (r, html) = send(form(
        "/step-up/code/send",
        "channel=email&return_to=%2Fstatements",
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        html.contains(r#"action="/step-up/code/verify""#)
            && html.contains(r#"name="challenge_id""#),
        "{html}"
    );
    let id = html
        .split(r#"name="challenge_id" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let code = sender.last_code_to("alice@example.com").unwrap();
    let (r, _) = send(form(
        "/step-up/code/verify",
        &format!("channel=email&challenge_id={id}&code={code}&return_to=%2Fstatements"),
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/statements");
    // An unknown channel is a clear error.
    let (r, _) = send(json_post(
        "/step-up/code/send",
        r#"{"channel":"pigeon"}"#,
        None,
    ))
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
