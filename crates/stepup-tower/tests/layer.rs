//! Every branch of the layer, driven with `oneshot` over a `service_fn`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, StatusCode};
use stepup_core::{Method as Factor, Policy, ReturnTo, Subject};
use stepup_tower::NoSubject;

async fn api_reason(f: &Fixture, who: &Subject, cookie: Option<&str>) -> String {
    let (response, ran) = f.run(api(Some(who), cookie)).await;
    assert!(!ran, "the handler must not run on a challenge");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    problem(&response)["reason"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_fresh_step_up_is_allowed_and_the_handler_gets_the_assurance() {
    let f = fixture();
    let token = f.token(&alice(), &[Factor::Totp], T0);
    f.clock.advance(secs(60));
    let (response, ran) = f.run(api(Some(&alice()), Some(&token))).await;
    assert!(ran);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "handler ran, level Some(2)");
}

#[tokio::test]
async fn the_protected_response_is_not_stored() {
    let f = fixture();
    let token = f.token(&alice(), &[Factor::Totp], T0);
    let (response, ran) = f.run(api(Some(&alice()), Some(&token))).await;
    assert!(ran);
    assert_eq!(response.status(), StatusCode::OK);
    let values: Vec<_> = response.headers().get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(
        values,
        ["no-store"],
        "a page shown only after a step-up must not be kept by any cache"
    );
}

#[tokio::test]
async fn the_handlers_own_cache_control_is_kept() {
    let f = fixture();
    let token = f.token(&alice(), &[Factor::Totp], T0);
    let inner = tower::service_fn(|_: http::Request<axum::body::Body>| async {
        let mut response = http::Response::new(String::from("private"));
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=0"),
        );
        Ok::<_, std::convert::Infallible>(response)
    });
    let response = tower::ServiceExt::oneshot(
        tower::Layer::layer(&f.layer, inner),
        api(Some(&alice()), Some(&token)),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let values: Vec<_> = response.headers().get_all(CACHE_CONTROL).iter().collect();
    assert_eq!(values, ["private, max-age=0"]);
}

#[tokio::test]
async fn every_challenge_reason_reaches_the_client() {
    let f = fixture();
    let user = alice();
    assert_eq!(api_reason(&f, &user, None).await, "no_assurance");
    assert_eq!(
        api_reason(&f, &user, Some("garbage")).await,
        "invalid_token"
    );

    let pwd = f.token(&user, &[Factor::Password], T0);
    assert_eq!(
        api_reason(&f, &user, Some(&pwd)).await,
        "insufficient_level"
    );

    let totp = f.token(&user, &[Factor::Totp], T0);
    let bob = Subject::new("bob").with_session("s-9").with_epoch(1);
    assert_eq!(api_reason(&f, &bob, Some(&totp)).await, "other_binding");
    let bumped = user.clone().with_epoch(2);
    assert_eq!(api_reason(&f, &bumped, Some(&totp)).await, "revoked");

    f.clock.advance(secs(301));
    assert_eq!(api_reason(&f, &user, Some(&totp)).await, "stale");
    f.clock.advance(secs(3600));
    assert_eq!(api_reason(&f, &user, Some(&totp)).await, "expired");

    let g = fixture_with(Policy::method(Factor::Passkey));
    let totp = g.token(&user, &[Factor::Totp], T0);
    assert_eq!(api_reason(&g, &user, Some(&totp)).await, "missing_method");
}

#[tokio::test]
async fn api_clients_get_rfc9470_and_a_problem_body() {
    let f = fixture();
    let (response, _) = f.run(api(Some(&alice()), None)).await;
    let h = response.headers();
    assert_eq!(h[CACHE_CONTROL], "no-store");
    assert_eq!(h[CONTENT_TYPE], "application/problem+json");
    assert_eq!(
        h[WWW_AUTHENTICATE],
        r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="aal2 aal3", max_age="300""#
    );
    let body = problem(&response);
    assert_eq!(body["status"], 401);
    assert_eq!(
        body["detail"],
        "We need to confirm it's really you before moving money."
    );
    assert_eq!(
        body["step_up_url"],
        "/step-up?return_to=/transfer&reason=no_assurance"
    );
    // Strongest first: a device-bound passkey (level 3 under NIST).
    assert_eq!(body["methods"][0], "device_bound_passkey");
}

#[tokio::test]
async fn browsers_are_redirected_to_the_challenge_page() {
    let f = fixture();
    let req = request(Method::GET, "/transfer?amount=10&to=DE89", Some(&alice()))
        .header("accept", HTML)
        .body(axum::body::Body::empty())
        .unwrap();
    let (response, ran) = f.run(req).await;
    assert!(!ran);
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(
        response.headers()[LOCATION],
        "/step-up?return_to=/transfer%3Famount%3D10%26to%3DDE89&reason=no_assurance"
    );
    assert!(response.body().is_empty());
}

#[tokio::test]
async fn accept_changes_the_form_of_the_denial_never_the_decision() {
    let f = fixture();
    let user = alice();
    let pwd = f.token(&user, &[Factor::Password], T0);
    for (method, accept, fetch_mode) in [
        (Method::GET, HTML, None),
        (Method::GET, "application/json", None),
        (Method::GET, "*/*", None),
        (Method::GET, HTML, Some("cors")),
        (Method::POST, HTML, None),
        (Method::DELETE, "text/html", Some("navigate")),
        (Method::HEAD, HTML, None),
    ] {
        let mut b = request(method.clone(), "/transfer", Some(&user))
            .header("accept", accept)
            .header(COOKIE, format!("__Host-stepup={pwd}"));
        if let Some(mode) = fetch_mode {
            b = b.header("sec-fetch-mode", mode);
        }
        let (response, ran) = f.run(b.body(axum::body::Body::empty()).unwrap()).await;
        assert!(!ran, "{method} {accept} {fetch_mode:?}");
        // Navigation is about the browser, not the method: Fetch Metadata
        // says so for any method; without it, a GET/HEAD for HTML (a POST
        // without a form body is no form submission).
        let navigation = fetch_mode == Some("navigate")
            || (fetch_mode.is_none()
                && matches!(method, Method::GET | Method::HEAD)
                && accept.contains("text/html"));
        let expected = if navigation {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            response.status(),
            expected,
            "{method} {accept} {fetch_mode:?}"
        );
    }
}

#[tokio::test]
async fn hostile_return_paths_fall_back() {
    let f = fixture();
    for uri in [
        "//evil.example/x",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/a/../admin",
        "/%0d%0aSet-Cookie:%20x=1",
        "/ok?next=%0D%0ALocation:evil",
    ] {
        let req = request(Method::GET, uri, Some(&alice()))
            .header("accept", HTML)
            .body(axum::body::Body::empty())
            .unwrap();
        let (response, _) = f.run(req).await;
        assert_eq!(
            response.headers()[LOCATION],
            "/step-up?return_to=/&reason=no_assurance",
            "{uri}"
        );
    }
}

#[tokio::test]
async fn the_fallback_and_challenge_page_are_configurable() {
    let f = fixture();
    let layer = f
        .layer
        .clone()
        .challenge_page("/verify")
        .fallback_return(ReturnTo::parse("/home").unwrap());
    let g = Fixture { layer, ..f };
    let req = request(Method::GET, "//evil.example", Some(&alice()))
        .header("accept", HTML)
        .body(axum::body::Body::empty())
        .unwrap();
    let (response, _) = g.run(req).await;
    assert_eq!(
        response.headers()[LOCATION],
        "/verify?return_to=/home&reason=no_assurance"
    );
}

#[tokio::test]
async fn without_a_logged_in_user_there_is_no_step_up_challenge() {
    let f = fixture();
    let (response, ran) = f.run(api(None, None)).await;
    assert!(!ran);
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(problem(&response)["status"], 401);

    let login = ReturnTo::parse("/login").unwrap();
    let g = Fixture {
        layer: f
            .layer
            .clone()
            .on_no_subject(NoSubject::RedirectToLogin(login)),
        ..f
    };
    let browser = request(Method::GET, "/transfer", None)
        .header("accept", HTML)
        .body(axum::body::Body::empty())
        .unwrap();
    let (response, _) = g.run(browser).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/login?return_to=/transfer");
    let (response, _) = g.run(api(None, None)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn duplicate_cookies_are_refused_even_when_both_are_valid() {
    let f = fixture();
    let user = alice();
    let token = f.token(&user, &[Factor::Totp], T0);
    for cookies in [
        vec![format!("__Host-stepup={token}; __Host-stepup={token}")],
        vec![
            format!("__Host-stepup={token}"),
            format!("__Host-stepup={token}"),
        ],
        vec![format!("__Host-stepup=garbage; __Host-stepup={token}")],
    ] {
        let mut b = request(Method::POST, "/transfer", Some(&user));
        for c in &cookies {
            b = b.header(COOKIE, c);
        }
        let (response, ran) = f.run(b.body(axum::body::Body::empty()).unwrap()).await;
        assert!(!ran);
        assert_eq!(problem(&response)["reason"], "invalid_token");
    }
}

#[tokio::test]
async fn hostile_headers_give_a_deterministic_challenge() {
    let f = fixture();
    let user = alice();
    let token = f.token(&user, &[Factor::Totp], T0);
    let many: String = (0..200).map(|i| format!("c{i}=v{i}; ")).collect();
    let huge = format!("{}; __Host-stepup={token}", "x".repeat(64 * 1024));
    let dup_flood: String = (0..1000).map(|_| "__Host-stepup=a; ").collect();
    let cases: Vec<(HeaderValue, &str)> = vec![
        (
            HeaderValue::from_bytes(b"__Host-stepup=\xff\xfe\xfd").unwrap(),
            "invalid_token",
        ),
        (
            HeaderValue::from_str(";;;==;=;__Host-stepup;;=").unwrap(),
            "no_assurance",
        ),
        (
            HeaderValue::from_str("=;=;__Host-stepup=;").unwrap(),
            "invalid_token",
        ),
        (
            HeaderValue::from_str(&format!("{many}__Host-stepup=x")).unwrap(),
            "invalid_token",
        ),
        (HeaderValue::from_str(&dup_flood).unwrap(), "invalid_token"),
        (
            HeaderValue::from_str(&format!("__Host-stepup={}", "A".repeat(60_000))).unwrap(),
            "invalid_token",
        ),
    ];
    for (value, reason) in cases {
        let mut req = api(Some(&user), None);
        req.headers_mut().insert(COOKIE, value);
        let (response, ran) = f.run(req).await;
        assert!(!ran);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(problem(&response)["reason"], reason);
    }
    // A huge header that still holds exactly one valid token is fine.
    let mut req = api(Some(&user), None);
    req.headers_mut()
        .insert(COOKIE, HeaderValue::from_str(&huge).unwrap());
    assert!(f.run(req).await.1);
    // 200 other cookies and the token: allowed.
    let mut req = api(Some(&user), None);
    req.headers_mut().insert(
        COOKIE,
        HeaderValue::from_str(&format!("{many}__Host-stepup={token}")).unwrap(),
    );
    assert!(f.run(req).await.1);
}

#[tokio::test]
async fn the_token_header_is_opt_in_and_exclusive() {
    let f = fixture();
    let user = alice();
    let token = f.token(&user, &[Factor::Totp], T0);
    let with_header = || {
        request(Method::POST, "/transfer", Some(&user))
            .header("stepup-assurance", token.as_str())
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert!(!f.run(with_header()).await.1, "ignored unless enabled");
    let g = Fixture {
        layer: f.layer.clone().accept_token_header(),
        ..f
    };
    assert!(g.run(with_header()).await.1);
    let mut both = with_header();
    both.headers_mut().insert(
        COOKIE,
        HeaderValue::from_str(&format!("__Host-stepup={token}")).unwrap(),
    );
    let (response, ran) = g.run(both).await;
    assert!(!ran);
    assert_eq!(problem(&response)["reason"], "invalid_token");
}

#[tokio::test]
async fn contextual_policies_follow_the_request() {
    let normal = Arc::new(Policy::level(2));
    let delete = Arc::new(Policy::method(Factor::Passkey).max_age(secs(300)));
    let f = fixture_per_request(|_| {
        move |parts: &http::request::Parts, _: Option<&stepup_core::Assurance>| {
            if parts.method == Method::DELETE {
                delete.clone()
            } else {
                normal.clone()
            }
        }
    });
    let user = alice();
    let totp = f.token(&user, &[Factor::Totp], T0);
    let call = |method: Method, token: &str| {
        request(method, "/keys/1", Some(&user))
            .header(COOKIE, format!("__Host-stepup={token}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert!(f.run(call(Method::GET, &totp)).await.1);
    let (response, ran) = f.run(call(Method::DELETE, &totp)).await;
    assert!(!ran);
    assert_eq!(problem(&response)["reason"], "missing_method");
    // A device-bound passkey satisfies "a passkey" too.
    assert_eq!(
        problem(&response)["methods"],
        serde_json::json!(["device_bound_passkey", "passkey"])
    );
    let passkey = f.token(&user, &[Factor::Passkey], T0);
    assert!(f.run(call(Method::DELETE, &passkey)).await.1);
}

/// The client's address in the context tests.
const PEER: &str = "203.0.113.9";

#[tokio::test]
async fn a_new_browser_since_the_step_up_needs_a_fresh_one() {
    let usual = Arc::new(Policy::level(2).max_age(secs(900)));
    let moved = Arc::new(Policy::level(2).max_age(Duration::ZERO));
    let f = fixture_per_request(|checker| {
        move |parts: &http::request::Parts, assurance: Option<&stepup_core::Assurance>| {
            let here = stepup_tower::client_context(parts, Some(PEER.parse().unwrap()));
            match assurance
                .zip(here)
                .and_then(|(a, here)| checker.same_context(a, &here))
            {
                Some(false) => moved.clone(),
                _ => usual.clone(),
            }
        }
    });
    let user = alice();
    let firefox = request(Method::POST, "/transfer", Some(&user))
        .header("user-agent", "Firefox/133.0")
        .body(axum::body::Body::empty())
        .unwrap();
    let context =
        stepup_tower::client_context(&firefox.into_parts().0, Some(PEER.parse().unwrap())).unwrap();
    let token = f
        .issuer
        .issue_in_context(
            &user,
            stepup_core::Proof::new(Factor::Totp, T0),
            None,
            &context,
            T0,
        )
        .unwrap();
    f.clock.advance(secs(60));
    let call = |agent: &str| {
        request(Method::POST, "/transfer", Some(&user))
            .header("user-agent", agent)
            .header(COOKIE, format!("__Host-stepup={}", token.value()))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    assert!(
        f.run(call("Firefox/133.0")).await.1,
        "same browser: the step-up still counts"
    );
    let (response, ran) = f.run(call("curl/8.5")).await;
    assert!(!ran, "another browser: step up again");
    assert_eq!(problem(&response)["reason"], "stale");
}
