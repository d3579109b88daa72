//! Token verification against its floor (one pre-keyed HMAC-SHA256 over the
//! same bytes) and against `jsonwebtoken` HS256 with equivalent claims, in
//! one run so the ratios are comparable on a noisy machine.
//!
//! Run: `cargo bench -p stepup-core --bench token`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use stepup_core::{
    Clock, Decision, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, Timestamp, TokenConfig,
};

const SECRET: [u8; 32] = *b"bench-secret-0123456789abcdefghi";
const NOW: u64 = 1_700_000_000;

/// The same facts a stepup token carries, as JWT claims.
#[derive(Serialize, Deserialize)]
struct JwtClaims {
    sub: String,
    sid: String,
    epoch: u64,
    iat: u64,
    exp: u64,
    auth_times: std::collections::BTreeMap<String, u64>,
}

fn bench(c: &mut Criterion) {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &SECRET).unwrap());
    let config = TokenConfig::new(ring);
    let (issuer, gate) = (config.issuer(), config.gate());
    // A realistic subject: a UUID user id and a 43-character session id.
    let subject = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw")
        .with_epoch(7);
    let now = Timestamp::from_unix_seconds(NOW);
    let mut token = None;
    for (m, ago) in [
        (Method::Password, 900),
        (Method::Totp, 240),
        (Method::Passkey, 30),
    ] {
        let at = now - Duration::from_secs(ago);
        let t = issuer
            .issue(&subject, Proof::new(m, at), token.as_deref(), at)
            .unwrap();
        token = Some(t.into_value());
    }
    let token = token.unwrap();
    let policy = Policy::level(2).max_age(Duration::from_secs(300));
    assert!(matches!(
        gate.check(&subject, Some(&token), &policy, now),
        Decision::Allow(_)
    ));

    // The floor: the exact bytes verify MACs, with a state keyed once.
    let signed = stepup_core::__bench::signed_input(&gate, &token, &subject).unwrap();
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&SECRET).unwrap();

    // jsonwebtoken validates `exp` against the wall clock.
    let wall = stepup_core::SystemClock.now().as_unix_seconds();
    let jwt_claims = JwtClaims {
        sub: subject.id().to_owned(),
        sid: subject.session().unwrap().to_owned(),
        epoch: 7,
        iat: wall - 30,
        exp: wall + 3570,
        auth_times: [
            ("pwd", wall - 900),
            ("totp", wall - 240),
            ("passkey", wall - 30),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &jwt_claims,
        &jsonwebtoken::EncodingKey::from_secret(&SECRET),
    )
    .unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_secret(&SECRET);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub"]);
    assert!(jsonwebtoken::decode::<JwtClaims>(&jwt, &decoding, &validation).is_ok());

    println!(
        "token: {} chars; MAC input: {} bytes; JWT: {} chars",
        token.len(),
        signed.len(),
        jwt.len()
    );

    let mut group = c.benchmark_group("token_verify");
    group.bench_function("hmac_floor", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&signed));
            black_box(mac.finalize().into_bytes())
        })
    });
    // The adapters hand the gate the subject their subject source produced,
    // by value; making that value (cloning two reference-counted strings) is
    // the subject source's cost, so the clones are made before the clock
    // starts. The result is forgotten, not dropped or copied into a buffer:
    // dropping it is the request's business (and `stepup_verify_by_ref`
    // below times clone + verify + drop together).
    group.bench_function("stepup_verify", |b| {
        b.iter_custom(|iters| {
            let subjects: Vec<Subject> = (0..iters).map(|_| subject.clone()).collect();
            let start = Instant::now();
            for s in subjects {
                let r = gate.verify(s, Some(black_box(&token)), now);
                std::mem::forget(black_box(r));
            }
            start.elapsed()
        })
    });
    group.bench_function("stepup_verify_by_ref", |b| {
        b.iter(|| {
            black_box(
                gate.verify(black_box(&subject), Some(black_box(&token)), now)
                    .is_ok(),
            )
        })
    });
    group.bench_function("stepup_check_level2_5m", |b| {
        b.iter_custom(|iters| {
            let subjects: Vec<Subject> = (0..iters).map(|_| subject.clone()).collect();
            let start = Instant::now();
            for s in subjects {
                let d = gate.check(s, Some(black_box(&token)), &policy, now);
                std::mem::forget(black_box(d));
            }
            start.elapsed()
        })
    });
    group.bench_function("jsonwebtoken_hs256", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::decode::<JwtClaims>(black_box(&jwt), &decoding, &validation).is_ok(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
