//! The pass path allocates once per request beyond what the plain service
//! does: the box holding the `Assurance` in the request extensions (adding
//! `Cache-Control: no-store` to the handler's response allocates nothing). (When the
//! request's extension map is full — three entries — inserting also grows
//! the map: that is `http::Extensions` itself, and shows up as a second
//! allocation.) One test in this binary, so no other test thread allocates
//! while it counts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::convert::Infallible;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use stepup_core::{
    Key, KeyId, KeyRing, Method, Policy, Proof, Subject, TestClock, Timestamp, TokenConfig,
};
use stepup_tower::{FromExtension, RequireStepUpLayer};
use tower::{Layer, Service, service_fn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

#[derive(Clone)]
struct OtherExtension;

/// A kept-forms store that must never be called here.
struct NoForms;

impl stepup_http::Resume for NoForms {
    fn limit(&self) -> usize {
        8192
    }
    fn stash<'a>(
        &'a self,
        _: stepup_http::Interrupted<'a>,
    ) -> stepup_http::BoxFuture<'a, stepup_http::Stashed> {
        unreachable!("no form is kept on the pass path")
    }
    fn arrive<'a>(
        &'a self,
        _: stepup_http::Arrival<'a>,
    ) -> stepup_http::BoxFuture<'a, Result<stepup_http::Resumed, stepup_http::Reply>> {
        unreachable!("no form comes back on the pass path")
    }
    fn went<'a>(&'a self, _: &'a str, _: &'a str) -> stepup_http::BoxFuture<'a, ()> {
        unreachable!()
    }
    fn again<'a>(
        &'a self,
        _: &'a Subject,
        _: &'a str,
    ) -> stepup_http::BoxFuture<'a, stepup_http::Again> {
        unreachable!()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_pass_path_allocates_once_beyond_the_plain_service() {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[1u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let subject = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw");
    let token = config
        .issuer()
        .issue(&subject, Proof::new(Method::Totp, T0), None, T0)
        .unwrap();
    // With kept forms on, as `StepUp` makes every layer: a request that is
    // no form POST never touches them.
    let guard = stepup_http::Guard::new(config.gate(), Policy::level(2))
        .with_resume(std::sync::Arc::new(NoForms));
    let layer = RequireStepUpLayer::from_guard(guard, FromExtension::<Subject>::new())
        .clock(TestClock::new(T0));
    // A handler's response carries headers (axum's `String` answer has a
    // `Content-Type`), so the map has room for the layer's `Cache-Control`:
    // adding it allocates nothing. (Into a response without any header, the
    // first insert allocates the map itself — `http::HeaderMap`'s cost.)
    let handler = service_fn(
        |_: http::Request<http_body_util::Full<bytes::Bytes>>| async {
            let mut response = http::Response::new(String::new());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            Ok::<_, Infallible>(response)
        },
    );
    let mut plain = handler;
    let mut wrapped = layer.layer(handler);
    // A realistic Cookie header (~500 bytes) with the assurance cookie in it.
    let cookie = format!(
        "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; \
         lang=en-GB; consent=analytics%3Dfalse%26ads%3Dfalse; session=0123456789abcdef0123456789abcdef; \
         csrftoken=Zx7Qw1Lp9Ks3Vb5Nm8Jh2Gf4Dd6Ss0Aa1Qq3Ww5Ee7Rr9Tt1Yy3Uu5Ii7Oo9Pp; \
         __Host-stepup={}; recent=%5B%22acct-1%22%2C%22acct-2%22%5D",
        token.value()
    );
    // The login layer has put the subject (and, in the second case, one more
    // extension) in the request.
    // A GET, the same with one more extension, and an API client's JSON
    // POST.
    for (method, others) in [("GET", 0), ("GET", 1), ("POST", 0)] {
        let request = || {
            let mut r = http::Request::builder()
                .method(method)
                .header("content-type", "application/json")
                .header("content-length", "0")
                .header("cookie", cookie.as_str())
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap();
            r.extensions_mut().insert(subject.clone());
            if others > 0 {
                r.extensions_mut().insert(OtherExtension);
            }
            r
        };
        // Warm up (lazy statics, first-use allocations).
        assert_eq!(wrapped.call(request()).await.unwrap().status(), 200);

        let req = request();
        let region = Region::new(GLOBAL);
        let _ = plain.call(req).await.unwrap();
        let baseline = region.change().allocations;

        let req = request();
        let region = Region::new(GLOBAL);
        let response = wrapped.call(req).await.unwrap();
        let with_layer = region.change().allocations;

        assert_eq!(response.status(), 200, "the request must pass");
        assert_eq!(response.headers()[http::header::CACHE_CONTROL], "no-store");
        assert_eq!(
            with_layer,
            baseline + 1,
            "the layer's pass path must allocate exactly once (the extensions insert): {method}"
        );
    }
}
