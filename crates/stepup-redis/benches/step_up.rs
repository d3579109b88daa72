//! One TOTP step-up, in-memory state vs Redis on loopback — with the
//! store's one-script admission and commit, and (the "before") with the
//! same operations made of single commands (`StateStore`'s defaults):
//! latency per step-up (criterion), and per step-up over 1 000: the round
//! trips (requests a client sent, counted with `MONITOR`, where a
//! script's own commands show as `[… lua]`) and the commands Redis ran
//! (`total_commands_processed`, script commands included).
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

/// The `StateStore` defaults on Redis: every operation of an admission or
/// a commit is a command of its own (the way before the scripts).
#[derive(Clone)]
struct SingleCommands(stepup_redis::RedisStateStore);

impl StateStore for SingleCommands {
    async fn advance(
        &self,
        key: &str,
        step: u64,
        ttl: Duration,
    ) -> Result<bool, stepup_challenge::StoreError> {
        self.0.advance(key, step, ttl).await
    }
    async fn increment(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<u64, stepup_challenge::StoreError> {
        self.0.increment(key, window).await
    }
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), stepup_challenge::StoreError> {
        self.0.put(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, stepup_challenge::StoreError> {
        self.0.get(key).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, stepup_challenge::StoreError> {
        self.0.take(key).await
    }
    async fn remove(&self, key: &str) -> Result<(), stepup_challenge::StoreError> {
        self.0.remove(key).await
    }
}

/// Counts the requests clients send to the server at `port` while it
/// runs: `MONITOR` lines from a client address (a script's own commands
/// show as `[0 lua]`), `INFO` excluded.
struct Monitor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Monitor {
    fn start(port: u16) -> Monitor {
        use std::io::{BufRead, BufReader, Write};
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        stream.write_all(b"*1\r\n$7\r\nMONITOR\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim_end(), "+OK");
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut requests = 0;
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) => break,
                    Ok(_) => {
                        if !line.contains(" lua]") && !line.contains("\"INFO\"") {
                            requests += 1;
                        }
                    }
                    Err(_) if flag.load(std::sync::atomic::Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
            requests
        });
        Monitor { stop, thread }
    }

    fn stop(self) -> u64 {
        // Let the last lines arrive, then stop at the next read timeout.
        std::thread::sleep(Duration::from_millis(300));
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
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
    let single = runtime.block_on(async {
        let store = stepup_redis::RedisStateStore::connect(&server.url(), "bench-single:").unwrap();
        engine(SingleCommands(store), clock.clone()).await
    });
    let port: u16 = server
        .url()
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap();

    // Per step-up: one warm-up step-up (loads the scripts), then 1 000.
    let count = |name: &str, run: &dyn Fn()| {
        run();
        let before = commands_processed(&server);
        let monitor = Monitor::start(port);
        let started = Instant::now();
        for _ in 0..1000 {
            run();
        }
        let elapsed = started.elapsed();
        let requests = monitor.stop();
        // The INFO call itself is one command.
        let commands = commands_processed(&server) - before - 1;
        println!(
            "{name}: {:.2} round trips and {:.2} Redis commands per TOTP step-up ({requests} requests, {commands} commands for 1000 step-ups; {:.1} µs each in that loop, MONITOR on)",
            requests as f64 / 1000.0,
            commands as f64 / 1000.0,
            elapsed.as_secs_f64() * 1e6 / 1000.0
        );
    };
    count("redis (scripts)", &|| {
        runtime.block_on(step_up(&redis, &clock))
    });
    count("redis (single commands)", &|| {
        runtime.block_on(step_up(&single, &clock))
    });

    let mut group = c.benchmark_group("totp_step_up");
    group.bench_function("memory", |b| {
        b.iter(|| runtime.block_on(step_up(&memory, &clock)));
    });
    group.bench_function("redis_loopback", |b| {
        b.iter(|| runtime.block_on(step_up(&redis, &clock)));
    });
    group.bench_function("redis_loopback_single_commands", |b| {
        b.iter(|| runtime.block_on(step_up(&single, &clock)));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
