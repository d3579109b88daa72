//! The layer in process: an axum `Router` driven with `oneshot`, the same
//! route without the layer, behind a layer that does nothing (axum's own
//! per-layer cost), and behind `RequireStepUp` with a valid assurance cookie
//! in a realistic ~500-byte `Cookie` header. One run, so ratios compare.
//!
//! Run: `cargo bench -p stepup-tower --bench layer`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::routing::get;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
use stepup_tower::{FromExtension, RequireStepUpLayer};
use tower::ServiceExt;

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let (subject, cookie) = stepup_test_support::bench_request(&config).unwrap();
    println!("Cookie header: {} bytes", cookie.len());

    // The application's login, standing in: it puts the subject in the request.
    let login_subject = subject.clone();
    let login = middleware::from_fn(move |mut req: Request, next: Next| {
        req.extensions_mut().insert(login_subject.clone());
        next.run(req)
    });
    let handler = || async { "ok" };
    let plain: Router = Router::new().route("/", get(handler)).layer(login.clone());
    let identity: Router = Router::new()
        .route(
            "/",
            get(handler).route_layer(tower::layer::util::Identity::new()),
        )
        .layer(login.clone());
    let layer = RequireStepUpLayer::new(
        config.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
        FromExtension::<Subject>::new(),
    );
    let stepup: Router = Router::new()
        .route("/", get(handler).route_layer(layer.clone()))
        .layer(login.clone());
    // The layer around a whole router, as tower composes it (no axum
    // per-route boxing): the layer's own cost over `plain`.
    let outer = tower::Layer::layer(
        &login,
        tower::Layer::layer(&layer, Router::new().route("/", get(handler))),
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let request = || {
        Request::builder()
            .uri("/")
            .header("cookie", cookie.as_str())
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap()
    };
    for app in [&plain, &identity, &stepup] {
        let r = rt.block_on(app.clone().oneshot(request())).unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(
        rt.block_on(outer.clone().oneshot(request()))
            .unwrap()
            .status(),
        200
    );

    let mut group = c.benchmark_group("axum_oneshot");
    for (name, app) in [
        ("plain", &plain),
        ("identity_layer", &identity),
        ("require_step_up", &stepup),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                request,
                |req| black_box(rt.block_on(app.clone().oneshot(req)).unwrap().status()),
                BatchSize::SmallInput,
            )
        });
    }
    group.bench_function("require_step_up_around_router", |b| {
        b.iter_batched(
            request,
            |req| black_box(rt.block_on(outer.clone().oneshot(req)).unwrap().status()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
