//! Two engine instances sharing one Redis, as two servers of one
//! application would: a TOTP code used on one is refused on the other,
//! attempts on both count toward one lockout, and with Redis gone a step-up
//! fails closed while valid assurance still passes the gate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
use stepup_challenge::{
    Attempt, ChallengeError, Engine, FactorStore, MemoryFactorStore, TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};
use stepup_http::Found;
use stepup_redis::RedisStateStore;

type RedisEngine = Engine<MemoryFactorStore, RedisStateStore>;

fn tokens() -> TokenConfig {
    TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ))
}

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

/// One instance: its own engine and connection, the shared Redis (and the
/// application's own factor data, the same on every instance).
async fn instance(server: &RedisServer) -> RedisEngine {
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(&Subject::new("alice"), secret())
        .await
        .unwrap();
    for i in 0..60 {
        factors
            .set_totp_secret(&Subject::new(format!("user{i}")), secret())
            .await
            .unwrap();
    }
    Engine::new(tokens().issuer(), factors, server.store("bank:"))
        .with_totp(TotpConfig::new("Bank"))
}

fn code() -> String {
    TotpConfig::new("Bank")
        .code_at(&secret(), SystemClock.now().as_unix_seconds())
        .unwrap()
}

fn alice(session: &str) -> Subject {
    Subject::new("alice").with_session(session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_used_on_one_instance_is_refused_on_another() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let code = code();
    let user = alice("s-1");
    a.step_up_totp(Attempt::new(&user), &code).await.unwrap();
    assert_eq!(
        b.step_up_totp(Attempt::new(&user), &code)
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // Another session of the same user on the other instance: still used.
    let other = alice("s-2");
    assert_eq!(
        b.step_up_totp(Attempt::new(&other), &code)
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_on_both_instances_reach_one_lockout() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let user = alice("s-1");
    for i in 0..5 {
        let engine = if i % 2 == 0 { &a } else { &b };
        let error = engine
            .step_up_totp(Attempt::new(&user), "000000")
            .await
            .unwrap_err();
        assert!(matches!(error, ChallengeError::Wrong { .. }), "{error:?}");
    }
    // Five wrong answers spread over two instances: locked on both, right
    // code or not.
    for engine in [&a, &b] {
        let error = engine
            .step_up_totp(Attempt::new(&user), &code())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChallengeError::LockedOut { .. }),
            "{error:?}"
        );
    }
    // Per address too: one address guessing for many users across instances.
    let address = "203.0.113.9".parse().unwrap();
    let mut refused = false;
    for i in 0..60 {
        let user = Subject::new(format!("user{i}"));
        let engine = if i % 2 == 0 { &a } else { &b };
        if let Err(ChallengeError::LockedOut { .. }) = engine
            .step_up_totp(Attempt::new(&user).from_address(address), "000000")
            .await
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the per-address budget (50) is shared too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_step_ups_fail_closed_and_valid_assurance_still_passes() {
    let mut server = RedisServer::start();
    let engine = Arc::new(instance(&server).await);
    let gate = tokens().gate();
    let user = alice("s-1");
    let token = engine
        .step_up_totp(Attempt::new(&user), &code())
        .await
        .unwrap();
    server.stop();

    // The step-up fails closed: a store error, no token.
    let error = engine
        .step_up_totp(Attempt::new(&alice("s-2")), &code())
        .await
        .unwrap_err();
    assert!(matches!(error, ChallengeError::Store(_)), "{error:?}");
    // Through the routes: 503, "try again", no cookie.
    let routes = ChallengeRoutes::new(
        Settings::new(gate.clone(), "https://bank.example"),
        engine.clone(),
    );
    let reply = routes
        .handle(Incoming {
            method: "POST",
            path: "/totp",
            query: None,
            subject: Some(alice("s-3")),
            origin: Some(b"https://bank.example"),
            sec_fetch_site: None,
            referer: None,
            content_type: Some(b"application/json"),
            navigation: false,
            token: Found::None,
            body: Body::Read(format!(r#"{{"code":"{}"}}"#, code()).as_bytes()),
            address: None,
        })
        .await;
    assert_eq!(reply.status(), 503);
    assert!(reply.body().contains("try again"), "{}", reply.body());
    assert!(reply.header_value("set-cookie").is_none());

    // The gate needs no store: the assurance minted before still passes.
    let assurance = gate
        .verify(&user, Some(token.value()), SystemClock.now())
        .unwrap();
    assert_eq!(assurance.level(), 2);

    // Back up: step-ups work again (the lost state was short-lived only).
    server.restart();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ok = false;
    for _ in 0..30 {
        match engine
            .step_up_totp(Attempt::new(&alice("s-4")), &code())
            .await
        {
            Ok(_) | Err(ChallengeError::AlreadyUsed) => {
                ok = true;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert!(ok, "step-ups recover when Redis is back");
}
