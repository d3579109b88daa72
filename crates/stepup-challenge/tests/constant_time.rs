//! Every secret the engine checks — TOTP codes, recovery codes, e-mail/SMS
//! codes, passwords — is compared through `stepup_core::ct`, asserted
//! through the code path, not by timing: the per-thread tally of
//! constant-time comparisons in debug builds, by label, says exactly
//! *which* comparisons ran (counted once each comparison has run), so a
//! secret compared with `==` next to some other constant-time comparison
//! does not pass unnoticed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stepup_challenge::{
    Attempt, Channel, Engine, FactorStore, InsecureFixedPasswords, MemoryFactorStore,
    MemoryStateStore, RecordingSender, TotpConfig, TotpSecret,
};
use stepup_core::ct::{Comparison, comparisons_of};
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

async fn engine() -> (
    Engine<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>,
    RecordingSender,
) {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let alice = Subject::new("alice");
    factors
        .set_totp_secret(
            &alice,
            TotpSecret::from_bytes(b"12345678901234567890").unwrap(),
        )
        .await
        .unwrap();
    factors
        .set_code_destination(&alice, Channel::Email, "alice@example.com")
        .unwrap();
    let sender = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock)
    .with_totp(TotpConfig::new("Bank"))
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
    .with_code_sender(sender.clone());
    (engine, sender)
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

/// The per-label tally of constant-time comparisons on this thread.
fn tally() -> Vec<u64> {
    Comparison::ALL.into_iter().map(comparisons_of).collect()
}

/// Which comparisons ran since `before`, and how many of each.
fn ran_since(before: &[u64]) -> Vec<(&'static str, u64)> {
    Comparison::ALL
        .into_iter()
        .zip(tally())
        .zip(before)
        .filter(|((_, now), then)| now > then)
        .map(|((what, now), then)| (what.name(), now - then))
        .collect()
}

#[test]
fn the_tally_is_kept_in_debug_builds() {
    // Every assertion below relies on it; in a release build they would
    // compare zeros with zeros.
    let debug_build = cfg!(debug_assertions);
    assert!(debug_build, "run these tests in a debug build");
}

#[tokio::test]
async fn totp_codes_are_compared_in_constant_time_at_every_step_of_the_window() {
    let (engine, _) = engine().await;
    let before = tally();
    let user = alice();
    assert!(
        engine
            .step_up_totp(Attempt::new(&user), "000000")
            .await
            .is_err()
    );
    // ±1 step: three codes generated, three constant-time comparisons.
    assert_eq!(ran_since(&before), [("totp_code", 3)]);
}

#[tokio::test]
async fn passwords_are_compared_in_constant_time() {
    let (engine, _) = engine().await;
    let user = alice();
    let before = tally();
    assert!(
        engine
            .step_up_password(Attempt::new(&user), "wonderlant")
            .await
            .is_err()
    );
    assert_eq!(ran_since(&before), [("password", 1)]);
}

#[tokio::test]
async fn recovery_codes_are_compared_in_constant_time() {
    let (engine, _) = engine().await;
    let user = alice();
    engine.generate_recovery_codes(&user, 10).await.unwrap();
    let before = tally();
    assert!(
        engine
            .step_up_recovery_code(Attempt::new(&user), "ABCD-EFGH-JKMN-PQRS")
            .await
            .is_err()
    );
    // Against every stored digest.
    assert_eq!(ran_since(&before), [("recovery_code", 10)]);
}

#[tokio::test]
async fn one_time_codes_are_compared_in_constant_time() {
    let (engine, sender) = engine().await;
    let user = alice();
    let sent = engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let code = sender.last_code_to("alice@example.com").unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let before = tally();
    assert!(
        engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                wrong
            )
            .await
            .is_err()
    );
    // The challenge id, the session digest and the code digest.
    assert_eq!(
        ran_since(&before),
        [
            ("code_digest", 1),
            ("challenge_id", 1),
            ("session_digest", 1)
        ]
    );
    // The right code: the same three, then the record taken (single use)
    // against the one checked.
    let before = tally();
    engine
        .step_up_code(
            Attempt::new(&user),
            Channel::Email,
            &sent.challenge_id,
            &code,
        )
        .await
        .unwrap();
    assert_eq!(
        ran_since(&before),
        [
            ("code_digest", 1),
            ("challenge_id", 1),
            ("session_digest", 1),
            ("pending_record", 1)
        ]
    );
}
