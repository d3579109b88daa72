//! The engine on SQL factors, as an application runs it: TOTP step-ups
//! read the sealed secret, recovery codes are used once (also across a
//! restart of the store), and a factor change moves the epoch the subject
//! source reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Where, database, keys};
use stepup_challenge::{Attempt, ChallengeError, Engine, MemoryStateStore, TotpConfig};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};
use stepup_sqlx::SqlStore;
use stepup_store::{FactorStore, TotpSecret};

async fn engine(url: &str) -> Engine<SqlStore, MemoryStateStore> {
    let factors = SqlStore::connect(url, keys(1, 7)).await.unwrap();
    factors.migrate().await.unwrap();
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    Engine::new(tokens.issuer(), factors, MemoryStateStore::default())
        .with_totp(TotpConfig::new("Bank"))
}

async fn step_ups_survive_a_restart_of_the_store(place: Where) {
    let (url, _dir) = database(place);
    let alice = Subject::new("alice").with_session("s-1");
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let codes = {
        let first = engine(&url).await;
        first
            .factors()
            .set_totp_secret(&alice, secret.clone())
            .await
            .unwrap();
        let codes = first.generate_recovery_codes(&alice, 10).await.unwrap();
        let code = codes[0].to_string();
        first
            .step_up_recovery_code(Attempt::new(&alice), &code)
            .await
            .unwrap();
        codes
    };

    // Another process on the same database: the same factors.
    let second = engine(&url).await;
    let code = TotpConfig::new("Bank")
        .code_at(&secret, SystemClock.now().as_unix_seconds())
        .unwrap();
    second
        .step_up_totp(Attempt::new(&alice), &code)
        .await
        .unwrap();
    assert!(
        matches!(
            second
                .step_up_recovery_code(Attempt::new(&alice), &codes[0].to_string())
                .await
                .unwrap_err(),
            ChallengeError::Wrong { .. }
        ),
        "a code used before the restart stays used"
    );
    second
        .step_up_recovery_code(Attempt::new(&alice), &codes[1].to_string())
        .await
        .unwrap();
    assert_eq!(second.recovery_codes_left(&alice).await.unwrap(), 8);

    // Replacing the codes bumps the epoch the subject source reads.
    let before = second.factors().epoch("alice").await.unwrap();
    second.generate_recovery_codes(&alice, 10).await.unwrap();
    assert_eq!(second.factors().epoch("alice").await.unwrap(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_step_ups_survive_a_restart_of_the_store() {
    step_ups_survive_a_restart_of_the_store(Where::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_step_ups_survive_a_restart_of_the_store() {
    step_ups_survive_a_restart_of_the_store(Where::Postgres).await;
}

/// Two instances of an application sharing one PostgreSQL for factors and
/// state (no Redis): a TOTP code used on one is refused on the other, and
/// wrong codes on both count toward one lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_share_replays_and_lockouts() {
    let (url, _dir) = database(Where::Postgres);
    let instance = || async {
        let factors = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
        factors.migrate().await.unwrap();
        let state = factors.state();
        let tokens = TokenConfig::new(KeyRing::new(
            Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
        ));
        Engine::new(tokens.issuer(), factors, state).with_totp(TotpConfig::new("Bank"))
    };
    let (a, b) = (instance().await, instance().await);
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let alice = Subject::new("alice").with_session("s-1");
    let bob = Subject::new("bob").with_session("s-2");
    for who in [&alice, &bob] {
        a.factors()
            .set_totp_secret(who, secret.clone())
            .await
            .unwrap();
    }
    let code = TotpConfig::new("Bank")
        .code_at(&secret, SystemClock.now().as_unix_seconds())
        .unwrap();
    a.step_up_totp(Attempt::new(&alice), &code).await.unwrap();
    assert_eq!(
        b.step_up_totp(Attempt::new(&alice), &code)
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    for i in 0..5 {
        let engine = if i % 2 == 0 { &a } else { &b };
        let e = engine
            .step_up_totp(Attempt::new(&bob), "000000")
            .await
            .unwrap_err();
        assert!(matches!(e, ChallengeError::Wrong { .. }), "{e:?}");
    }
    for engine in [&a, &b] {
        let e = engine
            .step_up_totp(Attempt::new(&bob), &code)
            .await
            .unwrap_err();
        assert!(matches!(e, ChallengeError::LockedOut { .. }), "{e:?}");
    }
}
