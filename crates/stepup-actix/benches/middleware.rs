//! The middleware in process: an actix-web service driven with
//! `test::call_service`, the same resource without the middleware, behind a
//! middleware that does nothing (actix's own per-middleware cost), and behind
//! `RequireStepUp` with a valid assurance cookie in a realistic ~500-byte
//! `Cookie` header. One run, so ratios compare.
//!
//! Run: `cargo bench -p stepup-actix --bench middleware`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use actix_web::dev::Service;
use actix_web::{App, HttpMessage, HttpRequest, test, web};
use criterion::{Criterion, criterion_group, criterion_main};
use stepup_actix::RequireStepUp;
use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let (subject, cookie) = stepup_test_support::bench_request(&config).unwrap();

    let rt = actix_web::rt::Runtime::new().unwrap();
    // The application's login, standing in: the subject is in the request
    // extensions, put there by a wrapping middleware in every arm.
    let logged_in = subject.clone();
    let who = |r: &HttpRequest| r.extensions().get::<Subject>().cloned();
    let handler = || async { "ok" };
    let stepup = RequireStepUp::new(
        config.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
        who,
    );
    macro_rules! arm {
        ($resource:expr) => {{
            let login = logged_in.clone();
            rt.block_on(test::init_service(App::new().service($resource).wrap_fn(
                move |req, srv| {
                    req.extensions_mut().insert(login.clone());
                    srv.call(req)
                },
            )))
        }};
    }
    let plain = arm!(web::resource("/").route(web::get().to(handler)));
    let identity = arm!(
        web::resource("/")
            .wrap_fn(|req, srv| srv.call(req))
            .route(web::get().to(handler))
    );
    let guarded = arm!(
        web::resource("/")
            .wrap(stepup.clone())
            .route(web::get().to(handler))
    );
    let request = || {
        test::TestRequest::get()
            .uri("/")
            .insert_header(("cookie", cookie.as_str()))
            .insert_header(("accept", "application/json"))
            .to_request()
    };

    let mut group = c.benchmark_group("actix_call_service");
    macro_rules! measure {
        ($name:expr, $app:expr) => {{
            let status = rt.block_on(test::call_service(&$app, request())).status();
            assert_eq!(status, 200, $name);
            group.bench_function($name, |b| {
                b.iter_batched(
                    request,
                    |req| black_box(rt.block_on(test::call_service(&$app, req)).status()),
                    criterion::BatchSize::SmallInput,
                )
            });
        }};
    }
    measure!("plain", plain);
    measure!("identity_middleware", identity);
    measure!("require_step_up", guarded);
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
