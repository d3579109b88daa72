//! `SameOrigin`: state-changing requests from anywhere but the application's
//! own origin are refused before the handler runs, with the challenge
//! routes' 403 (same status, headers and body); safe methods pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpRequest, HttpResponse, test, web};
use stepup_actix::{SameOrigin, StepUp};
use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
use stepup_http::FORBIDDEN_BODY;

const ORIGIN: &str = "https://bank.example";

async fn handler(calls: web::Data<AtomicUsize>) -> HttpResponse {
    calls.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok().body("done")
}

#[actix_web::test]
async fn state_changing_requests_from_elsewhere_are_refused_and_ours_pass() {
    let calls = web::Data::new(AtomicUsize::new(0));
    let app = test::init_service(
        App::new().app_data(calls.clone()).service(
            web::resource("/transfer")
                .wrap(SameOrigin::new("https://bank.example/"))
                .to(handler),
        ),
    )
    .await;
    let send = |method: Method, headers: &[(&'static str, &'static str)]| {
        let mut request = test::TestRequest::default().method(method).uri("/transfer");
        for header in headers {
            request = request.insert_header(*header);
        }
        request.to_request()
    };
    let refused: [&[(&str, &str)]; 7] = [
        &[("origin", "https://evil.example")],
        &[("origin", "https://pay.bank.example")],
        &[("origin", "https://bank.example:8443")],
        &[("origin", "http://bank.example")],
        &[("origin", "null")],
        &[],
        &[("sec-fetch-site", "same-site")],
    ];
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for headers in refused {
            let response = test::call_service(&app, send(method.clone(), headers)).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{method} {headers:?}"
            );
            assert_eq!(
                response.headers().get(CONTENT_TYPE).unwrap(),
                "application/problem+json"
            );
            assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
            assert_eq!(test::read_body(response).await, FORBIDDEN_BODY.as_bytes());
        }
        let response = test::call_service(
            &app,
            send(
                method.clone(),
                &[
                    ("origin", "https://evil.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
            ),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the handler never ran");

    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for headers in [
            &[("origin", ORIGIN)][..],
            &[("sec-fetch-site", "same-origin")][..],
        ] {
            let response = test::call_service(&app, send(method.clone(), headers)).await;
            assert_eq!(response.status(), StatusCode::OK, "{method} {headers:?}");
            assert!(response.headers().get(CACHE_CONTROL).is_none());
        }
    }
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let response = test::call_service(
            &app,
            send(method.clone(), &[("origin", "https://evil.example")]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{method} is not checked");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 8 + 3);
}

#[actix_web::test]
async fn the_refusal_is_the_challenge_routes_own() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    );
    let who = |_: &HttpRequest| Some(Subject::new("alice").with_session("s-1"));
    let stepup = StepUp::new(engine, who, ORIGIN);
    assert_eq!(stepup.same_origin().origin(), ORIGIN);
    let app = test::init_service(
        App::new().configure(|c| stepup.configure(c)).service(
            web::resource("/login")
                .wrap(stepup.same_origin())
                .route(web::post().to(|| async { "welcome" })),
        ),
    )
    .await;
    let mut answers = Vec::new();
    for path in ["/step-up/totp", "/login"] {
        let request = test::TestRequest::post()
            .uri(path)
            .insert_header(("origin", "https://evil.example"))
            .set_json(serde_json::json!({"code": "123456"}))
            .to_request();
        let response = test::call_service(&app, request).await;
        let mut headers: Vec<String> = ["content-type", "cache-control"]
            .iter()
            .map(|name| format!("{name}: {:?}", response.headers().get(*name)))
            .collect();
        headers.insert(0, response.status().to_string());
        answers.push((headers, test::read_body(response).await));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1].0[0], "403 Forbidden");
}
