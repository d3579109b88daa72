//! The soak: a bounded load against a release build of an example bank on
//! 127.0.0.1, mixing allowed requests, challenges, successful and failed
//! step-ups across many users, then checking that nothing broke.
//!
//! ```sh
//! scripts/soak                 # 60 s against axum-bank (builds it in release)
//! scripts/soak 20 actix-bank   # 20 s against actix-bank
//! ```
//!
//! The bank inherits this process's environment: `scripts/soak` sets
//! `BANK_DATA_DIR` to a fresh temporary directory, so the bank's factor
//! database is new and seeds the soak users with the secret below (an
//! existing database would keep the factors it has).
//!
//! Checks: zero 5xx, zero transport errors, no panic in the server's log,
//! every successful step-up honoured by the next transfer, every request
//! without assurance to the protected `/statements` challenged (a `200`
//! there means the route is not protected), every `/account` of a
//! logged-in user answered `200`, and the resident
//! size at the end within 1.25× (+8 MiB) of the size after the first fifth
//! of the run (the in-memory stores must not grow without bound). Prints
//! the figures. Each user connects from its own 127.0.x.y address, so the
//! per-address attempt budget sees many clients; one user in five guesses
//! wrong codes (and gets locked out), the others send right ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Client, StatusCode, redirect};
use serde_json::json;
use stepup_challenge::{TotpConfig, TotpSecret};

const USERS: usize = 200;
const WORKERS: usize = 16;
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    allowed: AtomicU64,
    challenged: AtomicU64,
    step_ups_ok: AtomicU64,
    honoured: AtomicU64,
    step_ups_refused: AtomicU64,
    locked: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    not_honoured: AtomicU64,
    /// `/statements` answered 200 without any assurance.
    unprotected: AtomicU64,
    /// `/account` of a logged-in user answered other than 200.
    account_refused: AtomicU64,
    unexpected: AtomicU64,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct User {
    name: String,
    /// The TOTP step of this user's last successful step-up.
    last_step: AtomicU64,
    client: Client,
    fresh: Client,
    session: String,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let binary = args
        .next()
        .unwrap_or_else(|| "target/release/axum-bank".to_owned());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = std::env::temp_dir().join(format!("stepup-soak-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(&binary)
        .env("BANK_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "BANK_STEPUP_KEY",
            "c291cC1rZXktZm9yLXRoZS1zb2FrLWxvYWQtdGVzdCEhISE=",
        )
        .env("BANK_DEMO_TOTP_SECRET", SECRET_B32)
        .env("BANK_SOAK_USERS", USERS.to_string())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let pid = server.id();
    let base = format!("http://127.0.0.1:{port}");
    let origin = format!("http://localhost:{port}");
    let totp = TotpConfig::new(bank_core::TOTP_ISSUER);
    let secret = TotpSecret::from_base32(SECRET_B32).unwrap();

    // Wait for it, then log everyone in.
    let probe = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.get(format!("{base}/")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut users = Vec::new();
    for i in 1..=USERS {
        let name = format!("user{i}");
        // Each user from its own loopback address (127.0.x.y): the server's
        // per-address budget sees many clients, as in production.
        let address = std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            127,
            0,
            (i / 250) as u8,
            (i % 250 + 2) as u8,
        ));
        let client = Client::builder()
            .cookie_store(true)
            .redirect(redirect::Policy::none())
            .local_address(address)
            // Drop idle connections before the server's keep-alive (5 s for
            // actix-web) closes them, so no request races a closing socket.
            .pool_idle_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let r = client
            .post(format!("{base}/login"))
            .header("origin", &origin)
            .form(&[
                ("username", name.as_str()),
                ("password", &format!("pw-{name}")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login {name}");
        let session = r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        users.push(User {
            name,
            last_step: AtomicU64::new(0),
            client,
            fresh: Client::builder()
                .local_address(address)
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            session,
        });
    }
    let rss_login = rss_kib(pid);
    let stats = Arc::new(Stats::default());
    let users = Arc::new(users);
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let users = users.clone();
        let stats = stats.clone();
        let base = base.clone();
        let origin = origin.clone();
        let totp = totp.clone();
        let secret = secret.clone();
        workers.spawn(async move {
            let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            while Instant::now() < end {
                let index = (next() as usize) % users.len();
                let user = &users[index];
                // One user in five is an attacker guessing codes; the others
                // only ever send the right one.
                let attacker = index.is_multiple_of(5);
                let roll = next() % 100;
                count(&stats.requests);
                let stepped_up = user.last_step.load(Ordering::Relaxed) >= now() / 30;
                let outcome = if roll < 40 || (roll >= 65 && !attacker && stepped_up) {
                    // An allowed request (honest users who already stepped
                    // up in this TOTP step read their account too).
                    user.client
                        .get(format!("{base}/account"))
                        .send()
                        .await
                        .map(|r| {
                            if r.status() == StatusCode::OK {
                                count(&stats.allowed);
                            } else {
                                eprintln!("{}: /account answered {}", user.name, r.status());
                                count(&stats.account_refused);
                            }
                            r.status()
                        })
                } else if roll < 65 {
                    // A challenge: the session without any assurance.
                    user.fresh
                        .get(format!("{base}/statements"))
                        .header("cookie", &user.session)
                        .send()
                        .await
                        .map(|r| {
                            match r.status() {
                                StatusCode::UNAUTHORIZED => count(&stats.challenged),
                                StatusCode::OK => {
                                    eprintln!("{}: /statements without assurance: 200", user.name);
                                    count(&stats.unprotected)
                                }
                                _ => count(&stats.unexpected),
                            }
                            r.status()
                        })
                } else if !attacker {
                    // A step-up with the right code, then the transfer it allows.
                    let code = totp.code_at(&secret, now()).unwrap();
                    match user
                        .client
                        .post(format!("{base}/step-up/totp"))
                        .header("origin", &origin)
                        .json(&json!({"code": code}))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == StatusCode::OK => {
                            count(&stats.step_ups_ok);
                            user.last_step.store(now() / 30, Ordering::Relaxed);
                            count(&stats.requests);
                            let t = user
                                .client
                                .post(format!("{base}/transfer"))
                                .header("origin", &origin)
                                .json(&json!({"to": "alice", "amount": 1}))
                                .send()
                                .await;
                            match t {
                                Ok(t) if t.status() == StatusCode::OK => count(&stats.honoured),
                                Ok(t) if t.status() == StatusCode::BAD_REQUEST => {
                                    // Out of money: the step-up was honoured.
                                    count(&stats.honoured)
                                }
                                Ok(t) => {
                                    eprintln!(
                                        "{}: step-up not honoured: {}",
                                        user.name,
                                        t.status()
                                    );
                                    count(&stats.not_honoured)
                                }
                                Err(e) => {
                                    eprintln!("soak: transport error: {e:?}");
                                    count(&stats.transport_errors)
                                }
                            }
                            Ok(StatusCode::OK)
                        }
                        Ok(r) => {
                            // Already used this step, or locked out.
                            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                                count(&stats.locked);
                            } else {
                                count(&stats.step_ups_refused);
                            }
                            Ok(r.status())
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    // A wrong code.
                    user.client
                        .post(format!("{base}/step-up/totp"))
                        .header("origin", &origin)
                        .json(&json!({"code": "000000"}))
                        .send()
                        .await
                        .map(|r| {
                            match r.status() {
                                StatusCode::TOO_MANY_REQUESTS => count(&stats.locked),
                                StatusCode::BAD_REQUEST => count(&stats.step_ups_refused),
                                _ => count(&stats.unexpected),
                            }
                            r.status()
                        })
                };
                match outcome {
                    Ok(status) if status.is_server_error() => count(&stats.server_errors),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("soak: transport error: {e:?}");
                        count(&stats.transport_errors)
                    }
                }
            }
        });
    }
    // The resident size once the load has run a fifth of the time (buffers
    // and caches warm), then every few seconds to the end.
    let mut samples = Vec::new();
    tokio::time::sleep(Duration::from_secs(seconds / 5)).await;
    let rss_start = rss_kib(pid);
    while Instant::now() < end {
        samples.push(rss_kib(pid));
        tokio::time::sleep(Duration::from_secs((seconds / 6).max(1))).await;
    }
    workers.join_all().await;
    let elapsed = started.elapsed().as_secs_f64();
    let rss_end = rss_kib(pid);
    server.kill().ok();
    server.wait().ok();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let panics = log.matches("panicked").count();
    let s = &stats;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!("soak: {binary}, {seconds} s, {USERS} users, {WORKERS} workers");
    println!(
        "soak: {} requests ({:.0}/s): {} allowed, {} challenged, {} step-ups ok ({} honoured), {} refused, {} locked out",
        get(&s.requests),
        get(&s.requests) as f64 / elapsed,
        get(&s.allowed),
        get(&s.challenged),
        get(&s.step_ups_ok),
        get(&s.honoured),
        get(&s.step_ups_refused),
        get(&s.locked),
    );
    println!(
        "soak: 5xx {}, transport errors {}, not honoured {}, unprotected {}, account refused {}, unexpected {}, panics in log {}",
        get(&s.server_errors),
        get(&s.transport_errors),
        get(&s.not_honoured),
        get(&s.unprotected),
        get(&s.account_refused),
        get(&s.unexpected),
        panics
    );
    println!(
        "soak: resident size {rss_login} KiB after log-in, {rss_start} KiB after a fifth of the run, {rss_end} KiB at the end (samples {samples:?})"
    );
    let mut failed = Vec::new();
    if get(&s.server_errors) > 0 {
        failed.push("5xx answers");
    }
    if get(&s.transport_errors) > 0 {
        failed.push("transport errors");
    }
    if get(&s.not_honoured) > 0 || get(&s.honoured) != get(&s.step_ups_ok) {
        failed.push("a successful step-up was not honoured");
    }
    if get(&s.unprotected) > 0 {
        failed.push("/statements answered 200 without assurance");
    }
    if get(&s.account_refused) > 0 {
        failed.push("/account refused a logged-in user");
    }
    if get(&s.unexpected) > 0 {
        failed.push("unexpected answers");
    }
    if panics > 0 {
        failed.push("panics in the server log");
    }
    if get(&s.step_ups_ok) == 0 || get(&s.challenged) == 0 || get(&s.allowed) == 0 {
        failed.push("the mix did not happen");
    }
    if rss_start == 0 || rss_end > rss_start * 5 / 4 + 8 * 1024 {
        failed.push("resident size grew");
    }
    if failed.is_empty() {
        println!("soak: ok");
    } else {
        println!("soak: FAILED: {}", failed.join(", "));
        std::process::exit(1);
    }
}
