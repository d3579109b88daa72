//! Factors on SQL vs in memory, through the engine: one TOTP step-up
//! (reads the sealed secret) and a read of a user's enrolled methods
//! (passkeys, TOTP, recovery codes left), on
//! an SQLite file (WAL), on PostgreSQL over loopback TCP (a throwaway
//! cluster, as the tests start it) and in memory. Reports p50/p99 latency
//! and statements per operation; the variants take turns in rounds, so
//! the ratios come from one run on the same machine state.
//!
//! `cargo bench -p stepup-sqlx --features postgres --bench factors`
//! (`-- ITERATIONS` to change the 2 000 per variant and operation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::{Duration, Instant};

use stepup_challenge::{
    Attempt, ChallengeError, Engine, FactorStore, MemoryFactorStore, MemoryStateStore,
    PasskeyConfig, PasskeyStore, TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};
use stepup_sqlx::{SealingKey, SealingKeys, SqlStore};

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

fn user() -> Subject {
    Subject::new("alice").with_session("s-1")
}

/// An engine on `factors` whose clock moves one TOTP step per step-up, so
/// every step-up is a fresh, successful one.
async fn engine<F: PasskeyStore>(factors: F, clock: TestClock) -> Engine<F, MemoryStateStore> {
    factors.set_totp_secret(&user(), secret()).await.unwrap();
    factors
        .set_recovery_digests(&user(), vec![[1; 32], [2; 32]])
        .await
        .unwrap();
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    Engine::new(
        tokens.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock)
    .with_totp(TotpConfig::new("Bank"))
    .with_passkeys(PasskeyConfig::new(
        "localhost",
        "http://localhost:3000",
        "Bank",
    ))
    .unwrap()
}

async fn step_up<F: FactorStore>(engine: &Engine<F, MemoryStateStore>, clock: &TestClock) {
    for _ in 0..3 {
        clock.advance(Duration::from_secs(30));
        let code = TotpConfig::new("Bank")
            .code_at(&secret(), clock.now().as_unix_seconds())
            .unwrap();
        match engine.step_up_totp(Attempt::new(&user()), &code).await {
            Ok(_) => return,
            // A code equal to its neighbour's: take the next step.
            Err(ChallengeError::AlreadyUsed) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("three neighbouring codes collided");
}

/// One variant: a name, an engine, and the statement counter of its store.
struct Variant<F: FactorStore> {
    name: &'static str,
    engine: Engine<F, MemoryStateStore>,
    clock: TestClock,
    statements: Box<dyn Fn() -> u64>,
    step_ups: Vec<Duration>,
    reads: Vec<Duration>,
    step_up_statements: u64,
    read_statements: u64,
}

impl<F: PasskeyStore> Variant<F> {
    async fn new(name: &'static str, factors: F, statements: Box<dyn Fn() -> u64>) -> Self {
        let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
        Variant {
            name,
            engine: engine(factors, clock.clone()).await,
            clock,
            statements,
            step_ups: Vec::new(),
            reads: Vec::new(),
            step_up_statements: 0,
            read_statements: 0,
        }
    }

    async fn round(&mut self, n: usize) {
        let before = (self.statements)();
        for _ in 0..n {
            let started = Instant::now();
            step_up(&self.engine, &self.clock).await;
            self.step_ups.push(started.elapsed());
        }
        self.step_up_statements += (self.statements)() - before;
        let before = (self.statements)();
        for _ in 0..n {
            let started = Instant::now();
            let methods = self.engine.enrolled_methods(&user()).await.unwrap();
            assert!(!methods.is_empty());
            self.reads.push(started.elapsed());
        }
        self.read_statements += (self.statements)() - before;
    }

    fn report(&mut self) {
        let n = self.step_ups.len() as f64;
        println!(
            "{:<14} totp step-up p50 {:>8} p99 {:>8} ({:.2} statements) | enrolled methods p50 {:>8} p99 {:>8} ({:.2} statements)",
            self.name,
            micros(percentile(&mut self.step_ups, 0.50)),
            micros(percentile(&mut self.step_ups, 0.99)),
            self.step_up_statements as f64 / n,
            micros(percentile(&mut self.reads, 0.50)),
            micros(percentile(&mut self.reads, 0.99)),
            self.read_statements as f64 / n,
        );
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let at = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[at]
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo bench` passes `--bench`; a number is the iteration count.
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = || SealingKeys::new(SealingKey::new(1, [7; 32]));
    let dir = std::env::temp_dir().join(format!("stepup-sqlx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = stepup_test_support::postgres::start();
    runtime.block_on(async {
        let sqlite = SqlStore::connect(
            &format!("sqlite://{}", dir.join("bench.db").display()),
            keys(),
        )
        .await
        .unwrap();
        sqlite.migrate().await.unwrap();
        let postgres = SqlStore::connect(&cluster.fresh_database(), keys())
            .await
            .unwrap();
        postgres.migrate().await.unwrap();
        let mut memory = Variant::new("memory", MemoryFactorStore::new(), Box::new(|| 0)).await;
        let counted = sqlite.clone();
        let mut sqlite = Variant::new(
            "sqlite (WAL)",
            sqlite,
            Box::new(move || counted.statements()),
        )
        .await;
        let counted = postgres.clone();
        let mut postgres = Variant::new(
            "postgres (tcp)",
            postgres,
            Box::new(move || counted.statements()),
        )
        .await;
        // Warm up each, then take turns.
        memory.round(50).await;
        sqlite.round(50).await;
        postgres.round(50).await;
        for v in [
            &mut memory.step_ups,
            &mut sqlite.step_ups,
            &mut postgres.step_ups,
        ] {
            v.clear();
        }
        for v in [&mut memory.reads, &mut sqlite.reads, &mut postgres.reads] {
            v.clear();
        }
        (memory.step_up_statements, memory.read_statements) = (0, 0);
        (sqlite.step_up_statements, sqlite.read_statements) = (0, 0);
        (postgres.step_up_statements, postgres.read_statements) = (0, 0);
        let rounds = 10;
        for _ in 0..rounds {
            memory.round(iterations / rounds).await;
            sqlite.round(iterations / rounds).await;
            postgres.round(iterations / rounds).await;
        }
        println!("{iterations} of each, in {rounds} rounds taking turns:");
        memory.report();
        sqlite.report();
        postgres.report();
    });
    std::fs::remove_dir_all(&dir).ok();
}
