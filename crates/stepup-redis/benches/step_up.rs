//! One TOTP step-up, in-memory state vs Redis on loopback: latency per
//! step-up (criterion) and Redis round trips per step-up (the server's
//! `total_commands_processed` over 1 000 step-ups).
//!
//! `cargo bench -p stepup-redis --bench step_up` (needs `redis-server`;
//! `scripts/test` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use criterion::{Criterion, criterion_group, criterion_main};
use stepup_challenge::{
    Attempt, Engine, FactorStore, MemoryFactorStore, MemoryStateStore, StateStore, TotpConfig,
    TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

/// An engine whose clock moves one TOTP step per step-up, so every step-up
/// is a fresh, successful one (never a replay).
async fn engine<S: StateStore>(state: S, clock: TestClock) -> Engine<MemoryFactorStore, S> {
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(&Subject::new("alice"), secret())
        .await
        .unwrap();
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    Engine::new(tokens.issuer(), factors, state)
        .with_clock(clock)
        .with_totp(TotpConfig::new("Bank"))
}

async fn step_up<S: StateStore>(engine: &Engine<MemoryFactorStore, S>, clock: &TestClock) {
    let user = Subject::new("alice").with_session("s-1");
    // About once in a million steps a code equals its neighbour's and
    // matches the step just used ("already used"): take the next step then.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(30));
        let code = TotpConfig::new("Bank")
            .code_at(&secret(), clock.now().as_unix_seconds())
            .unwrap();
        match engine.step_up_totp(Attempt::new(&user), &code).await {
            Ok(_) => return,
            Err(stepup_challenge::ChallengeError::AlreadyUsed) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("three neighbouring codes collided");
}

fn commands_processed(server: &RedisServer) -> u64 {
    server
        .info("stats")
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // On loopback TCP, with the production connection settings.
    let server = RedisServer::start_tcp();
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let memory = runtime.block_on(engine(MemoryStateStore::new(clock.clone()), clock.clone()));
    let redis = runtime.block_on(async {
        let store = stepup_redis::RedisStateStore::connect(&server.url(), "bench:").unwrap();
        engine(store, clock.clone()).await
    });

    // Round trips: one warm-up step-up (loads the scripts), then 1 000.
    runtime.block_on(step_up(&redis, &clock));
    let before = commands_processed(&server);
    let started = Instant::now();
    runtime.block_on(async {
        for _ in 0..1000 {
            step_up(&redis, &clock).await;
        }
    });
    let elapsed = started.elapsed();
    let after = commands_processed(&server);
    // The INFO call itself is one command.
    let per = (after - before - 1) as f64 / 1000.0;
    println!(
        "redis round trips per TOTP step-up: {per:.2} ({} commands for 1000 step-ups, {:.1} µs each in that loop)",
        after - before - 1,
        elapsed.as_secs_f64() * 1e6 / 1000.0
    );

    let mut group = c.benchmark_group("totp_step_up");
    group.bench_function("memory", |b| {
        b.iter(|| runtime.block_on(step_up(&memory, &clock)));
    });
    group.bench_function("redis_loopback", |b| {
        b.iter(|| runtime.block_on(step_up(&redis, &clock)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
