//! Passkeys through the axum routes: register (no second factor yet, so no
//! step-up needed), then step up to level 3 with the passkey.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use stepup_axum::{StepUp, TrustedHeaders};
use stepup_challenge::webauthn::Url;
use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore, PasskeyConfig};
use stepup_core::{Key, KeyId, KeyRing, TestClock, Timestamp, TokenConfig};
use tower::ServiceExt;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ORIGIN: &str = "https://bank.test";

async fn call(
    router: &Router,
    path: &str,
    body: Value,
    cookie: Option<&str>,
) -> (StatusCode, Value, Option<String>) {
    let mut b = Request::builder()
        .method("POST")
        .uri(path)
        .header("x-user", "bob")
        .header("x-session", "b-1")
        .header("origin", ORIGIN)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    let r = router
        .clone()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let cookie = r
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        cookie,
    )
}

#[tokio::test]
async fn register_then_step_up_to_level_three_through_the_routes() {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_passkeys(PasskeyConfig::new("bank.test", ORIGIN, "Bank"))
    .unwrap();
    let stepup = StepUp::new(
        config.gate(),
        engine,
        TrustedHeaders::new("x-user").with_session("x-session"),
        ORIGIN,
    )
    .with_clock(clock.clone());
    let router: Router = Router::new().nest("/step-up", stepup.routes());
    let origin = Url::parse(ORIGIN).unwrap();
    let mut key = SoftPasskey::new(true);

    // Register.
    let (status, start, _) = call(&router, "/step-up/enroll/passkey/start", json!({}), None).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let options = serde_json::from_value(start["options"].clone()).unwrap();
    let credential = key.do_registration(origin.clone(), options).unwrap();
    let (status, done, _) = call(
        &router,
        "/step-up/enroll/passkey/finish",
        json!({"ceremony": start["ceremony"], "credential": credential, "name": "phone"}),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");

    // Step up.
    let (status, start, _) = call(&router, "/step-up/passkey/start", json!({}), None).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let options = serde_json::from_value(start["options"].clone()).unwrap();
    let assertion = key.do_authentication(origin.clone(), options).unwrap();
    let finish = json!({"ceremony": start["ceremony"], "credential": assertion, "return_to": "/close-account"});
    let (status, ok, cookie) = call(&router, "/step-up/passkey/finish", finish.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["level"], 3);
    assert_eq!(ok["acr"], "aal3");
    assert_eq!(ok["return_to"], "/close-account");
    let cookie = cookie.unwrap();
    assert!(cookie.starts_with("__Host-stepup="));

    // Replaying the finished ceremony is refused.
    let (status, err, _) = call(&router, "/step-up/passkey/finish", finish, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"], "no_pending_ceremony", "{err}");

    // Now that Bob has a passkey, registering another needs a fresh step-up;
    // the one he just made counts.
    let (status, _, _) = call(&router, "/step-up/enroll/passkey/start", json!({}), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &router,
        "/step-up/enroll/passkey/start",
        json!({}),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // The page offers the passkey, through the served script.
    let r = router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/step-up")
                .header("x-user", "bob")
                .header("x-session", "b-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let html =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(
        html.contains(r#"id="passkey-button""#) && html.contains("/step-up/assets/passkey.js"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let r = router
        .oneshot(
            Request::builder()
                .uri("/step-up/assets/passkey.js")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
}
