//! The bound path in process: an allowed JSON `POST /transfer` through an
//! axum `Router` driven with `oneshot`, on three routes with the same
//! handler (which reads the body) and the same fresh assurance cookie:
//!
//! - `plain`: `require(level 2)`, not bound: the ordinary step-up path;
//! - `bound_no_grant`: `.bind(spec)` with the same policy: the body read
//!   once, the fields extracted and normalised, the digest computed;
//! - `bound_grant`: `level 2 and bound`: all of that plus taking the
//!   single-use grant from the `StateStore` (in memory). Each iteration's
//!   grant is made beforehand, outside the measurement (a ceremony opened
//!   and confirmed by a password step-up).
//!
//! One run, so the ratios compare.
//!
//! Run: `cargo bench -p stepup-axum --bench bound`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header;
use axum::routing::post;
use axum::{Extension, Router};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use stepup_axum::{StepUp, TrustedHeaders};
use stepup_challenge::{
    ActionLimits, Attempt, Engine, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore,
};
use stepup_core::{
    Clock as _, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, SystemClock, TokenConfig,
};
use stepup_http::{ActionSpec, BoundAction, Normalise, Opening};
use tower::ServiceExt;

const ORIGIN: &str = "http://bank.test";
const BODY: &str = r#"{"to":"bob","amount":12000}"#;

fn spec() -> ActionSpec {
    ActionSpec::builder("payment")
        .field("amount", Normalise::Amount { scale: 2 })
        .field("to", Normalise::Trimmed)
        .summary("Send {amount} to {to}")
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[42u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    )
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
    // Every iteration opens a ceremony: no per-session cap here.
    .with_action_limits(ActionLimits::default().per_session(u32::MAX));
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    );
    let user = Subject::new("alice").with_session("s-1");
    // Level 1 on every arm: the grant's step-up (a password, repeatable
    // in a loop where a TOTP code is not) must meet the policy by itself.
    let level1 = || Policy::level(1).max_age(Duration::from_secs(3600));
    let bound_policy = move || level1().and(Policy::bound());
    // The handler reads the body on the plain route, the action on the
    // bound ones.
    let plain_handler = |body: Bytes| async move { black_box(body.len()).to_string() };
    let bound_handler = |Extension(a): Extension<BoundAction>| async move {
        black_box(a.get("amount").map_or(0, str::len)).to_string()
    };
    let app: Router = Router::new()
        .route(
            "/plain",
            post(plain_handler).route_layer(stepup.require(level1())),
        )
        .route(
            "/bound-no-grant",
            post(bound_handler).route_layer(stepup.require(level1()).bind(spec())),
        )
        .route(
            "/bound-grant",
            post(bound_handler).route_layer(stepup.require(bound_policy()).bind(spec())),
        )
        .layer(stepup.layer());

    // A fresh level-2 assurance (a TOTP proof), minted by the issuer.
    let now = SystemClock.now();
    let token = config
        .issuer()
        .issue(&user, Proof::new(Method::Totp, now), None, now)
        .unwrap();
    let cookie = format!("__Host-stepup={}", token.value());
    let request = |path: &str, grant: Option<&str>| {
        let mut b = Request::builder()
            .method("POST")
            .uri(path)
            .header("x-user", "alice")
            .header("x-session", "s-1")
            .header("origin", ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, &cookie);
        if let Some(g) = grant {
            b = b.header("stepup-grant", g);
        }
        b.body(Body::from(BODY)).unwrap()
    };
    let grants = stepup.settings().grants().unwrap().clone();
    let engine = stepup.engine();
    let action = spec()
        .extract(&stepup_http::ActionInput {
            method: "POST",
            path: "/bound-grant",
            query: None,
            content_type: Some(b"application/json"),
            body: BODY.as_bytes(),
        })
        .unwrap();
    // One grant, made outside the measurement.
    let grant = || {
        rt.block_on(async {
            let Opening::Opened(id) = grants.open(&user, &action, &bound_policy()).await else {
                panic!("a ceremony opens");
            };
            engine
                .step_up_password(Attempt::new(&user).for_action(&id), "wonderland")
                .await
                .unwrap();
            id
        })
    };
    for (path, g) in [
        ("/plain", None),
        ("/bound-no-grant", None),
        ("/bound-grant", Some(grant())),
    ] {
        let r = rt
            .block_on(app.clone().oneshot(request(path, g.as_deref())))
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }

    let mut group = c.benchmark_group("bound_post");
    group.bench_function("plain", |b| {
        b.iter(|| {
            rt.block_on(app.clone().oneshot(request("/plain", None)))
                .unwrap()
        })
    });
    group.bench_function("bound_no_grant", |b| {
        b.iter(|| {
            rt.block_on(app.clone().oneshot(request("/bound-no-grant", None)))
                .unwrap()
        })
    });
    group.bench_function("bound_grant", |b| {
        b.iter_batched(
            || request("/bound-grant", Some(&grant())),
            |r| {
                let response = rt.block_on(app.clone().oneshot(r)).unwrap();
                assert_eq!(response.status(), 200);
                response
            },
            // One grant per action and session: made right before its request.
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
