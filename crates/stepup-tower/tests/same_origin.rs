//! `SameOriginLayer`: state-changing requests from anywhere but the
//! application's own origin are refused before the handler runs, with the
//! challenge routes' 403; safe methods pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use stepup_http::FORBIDDEN_BODY;
use stepup_tower::SameOriginLayer;
use tower::{Layer, ServiceExt, service_fn};

const ORIGIN: &str = "https://bank.example";

/// Sends one request through the layer: the response and whether the
/// handler ran.
async fn send(method: Method, headers: &[(&str, &str)]) -> (Response<String>, bool) {
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    let inner = service_fn(move |_: Request<String>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new("done".to_owned())) }
    });
    let mut request = Request::builder().method(method).uri("/transfer");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = SameOriginLayer::new("https://bank.example/")
        .layer(inner)
        .oneshot(request.body(String::new()).unwrap())
        .await
        .unwrap();
    (response, ran.load(Ordering::SeqCst) == 1)
}

#[tokio::test]
async fn state_changing_requests_from_elsewhere_are_refused() {
    let refused: [&[(&str, &str)]; 7] = [
        &[("origin", "https://evil.example")],
        // The same site, another origin: a sibling subdomain, another port,
        // plain http.
        &[("origin", "https://pay.bank.example")],
        &[("origin", "https://bank.example:8443")],
        &[("origin", "http://bank.example")],
        &[("origin", "null")],
        // No `Origin`: only a browser's `Sec-Fetch-Site: same-origin` will do.
        &[],
        &[("sec-fetch-site", "same-site")],
    ];
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for headers in refused {
            let (response, ran) = send(method.clone(), headers).await;
            assert!(!ran, "{method} {headers:?}: the handler must not run");
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{method} {headers:?}"
            );
            assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
            assert_eq!(response.body(), FORBIDDEN_BODY);
        }
    }
    // An `Origin` from elsewhere wins over a `Sec-Fetch-Site` that says
    // same-origin.
    let (response, ran) = send(
        Method::POST,
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert!(!ran);
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_applications_own_origin_and_safe_methods_pass() {
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for headers in [
            &[("origin", ORIGIN)][..],
            &[("sec-fetch-site", "same-origin")][..],
        ] {
            let (response, ran) = send(method.clone(), headers).await;
            assert!(ran, "{method} {headers:?}");
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.body(), "done");
            assert!(
                response.headers().get(CACHE_CONTROL).is_none(),
                "the handler's response is untouched"
            );
        }
    }
    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
        let (response, ran) = send(method.clone(), &[("origin", "https://evil.example")]).await;
        assert!(ran, "{method} is not checked");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
