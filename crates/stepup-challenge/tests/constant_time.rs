//! Every secret the engine checks — TOTP codes, recovery codes, e-mail/SMS
//! codes, passwords — is compared with `stepup_core::ct::eq`, asserted
//! through the code path (the per-thread count of constant-time comparisons
//! in debug builds), not by timing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stepup_challenge::{
    Attempt, Channel, Engine, FactorStore, FixedPasswords, MemoryFactorStore, MemoryStateStore,
    RecordingSender, TotpConfig, TotpSecret,
};
use stepup_core::ct::comparisons;
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

async fn engine() -> (
    Engine<MemoryFactorStore, MemoryStateStore, FixedPasswords>,
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
    .with_passwords(FixedPasswords::new([("alice", "wonderland")]))
    .with_code_sender(sender.clone());
    (engine, sender)
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

#[tokio::test]
async fn totp_codes_are_compared_in_constant_time_at_every_step_of_the_window() {
    let (engine, _) = engine().await;
    let before = comparisons();
    let user = alice();
    assert!(
        engine
            .step_up_totp(Attempt::new(&user), "000000")
            .await
            .is_err()
    );
    // ±1 step: three codes generated, three constant-time comparisons.
    assert_eq!(comparisons(), before + 3);
}

#[tokio::test]
async fn passwords_are_compared_in_constant_time() {
    let (engine, _) = engine().await;
    let user = alice();
    let before = comparisons();
    assert!(
        engine
            .step_up_password(Attempt::new(&user), "wonderlant")
            .await
            .is_err()
    );
    assert_eq!(comparisons(), before + 1);
}

#[tokio::test]
async fn recovery_codes_are_compared_in_constant_time() {
    let (engine, _) = engine().await;
    let user = alice();
    engine.generate_recovery_codes(&user, 10).await.unwrap();
    let before = comparisons();
    assert!(
        engine
            .step_up_recovery_code(Attempt::new(&user), "ABCD-EFGH-JKMN-PQRS")
            .await
            .is_err()
    );
    // Against every stored digest.
    assert_eq!(comparisons(), before + 10);
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
    let before = comparisons();
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
    assert_eq!(comparisons(), before + 3);
}
