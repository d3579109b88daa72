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
use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, SystemClock, TokenConfig,
};

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[42u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let subject = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw");
    let now = SystemClock.now();
    let mut token: Option<String> = None;
    for (m, ago) in [
        (Method::Password, 900),
        (Method::Totp, 240),
        (Method::Passkey, 30),
    ] {
        let at = now - Duration::from_secs(ago);
        let t = config
            .issuer()
            .issue(&subject, Proof::new(m, at), token.as_deref(), at)
            .unwrap();
        token = Some(t.into_value());
    }
    let token = token.unwrap();
    let cookie = format!(
        "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; \
         lang=en-GB; consent=analytics%3Dfalse%26ads%3Dfalse; session=0123456789abcdef0123456789abcdef; \
         csrftoken=Zx7Qw1Lp9Ks3Vb5Nm8Jh2Gf4Dd6Ss0Aa1Qq3Ww5Ee7Rr9Tt1Yy3Uu5Ii7Oo9Pp; \
         __Host-stepup={token}; recent=%5B%22acct-1%22%2C%22acct-2%22%2C%22acct-3%22%5D; \
         tz=Europe%2FBerlin; sidebar=collapsed; ab_test=checkout-v2%3Avariant-b; last_seen=1700000000"
    );

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
