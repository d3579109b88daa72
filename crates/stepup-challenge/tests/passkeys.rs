//! Passkeys end to end with a software authenticator: registration, step-up
//! to level 3, and the ways a ceremony must not be reused or redirected.
#![cfg(feature = "passkey")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stepup_challenge::webauthn::Url;
use stepup_challenge::{
    Attempt, ChallengeError, Engine, MemoryFactorStore, MemoryStateStore, PasskeyConfig,
};
use stepup_core::{
    Clock, Decision, Key, KeyId, KeyRing, Policy, Subject, TestClock, Timestamp, TokenConfig,
};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const ORIGIN: &str = "https://bank.example";

struct Setup {
    engine: Engine<MemoryFactorStore, MemoryStateStore>,
    clock: TestClock,
    config: TokenConfig,
}

fn setup() -> Setup {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_passkeys(PasskeyConfig::new("bank.example", ORIGIN, "Bank"))
    .unwrap();
    Setup {
        engine,
        clock,
        config,
    }
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

async fn register(s: &Setup, user: &Subject, authenticator: &mut SoftPasskey) {
    let (id, options) = s
        .engine
        .start_passkey_registration(user, user.id())
        .await
        .unwrap();
    let response = authenticator.do_registration(origin(), options).unwrap();
    s.engine
        .finish_passkey_registration(Attempt::new(user), &id, &response, "laptop")
        .await
        .unwrap();
}

#[tokio::test]
async fn register_then_step_up_to_level_three() {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let mut key = SoftPasskey::new(true);
    register(&s, &alice, &mut key).await;
    assert_eq!(s.engine.passkey_names(&alice).await.unwrap(), ["laptop"]);
    s.engine
        .rename_passkey(&alice, 0, "work laptop\u{7}")
        .await
        .unwrap();
    assert_eq!(
        s.engine.passkey_names(&alice).await.unwrap(),
        ["work laptop"]
    );

    let (id, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), options).unwrap();
    let token = s
        .engine
        .step_up_passkey(Attempt::new(&alice), &id, &assertion)
        .await
        .unwrap();
    let decision = s.config.gate().check(
        &alice,
        Some(token.value()),
        &Policy::level(3),
        s.clock.now(),
    );
    let Decision::Allow(a) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(a.acr(), Some("aal3"));

    // Removing it leaves nothing to step up with.
    s.engine.remove_passkey(&alice, 0).await.unwrap();
    assert_eq!(
        s.engine
            .start_passkey_step_up(Attempt::new(&alice))
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(stepup_core::Method::Passkey)
    );
    // The finished ceremony cannot be replayed.
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
}

#[tokio::test]
async fn ceremonies_belong_to_their_session_and_user_and_expire() {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let mut key = SoftPasskey::new(true);
    register(&s, &alice, &mut key).await;

    let (id, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), options).unwrap();
    let other_session = Subject::new("alice").with_session("s-2");
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&other_session), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
    // Taken once, even by the wrong session: the ceremony is gone.
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );

    let (id, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), options).unwrap();
    s.clock.advance(Duration::from_secs(301));
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
}

#[tokio::test]
async fn another_origin_is_refused_by_the_server() {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let mut key = SoftPasskey::new(true);
    register(&s, &alice, &mut key).await;
    // A subdomain the authenticator accepts for the rp id, but that is not
    // one of the configured origins.
    let (id, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let assertion = key
        .do_authentication(Url::parse("https://login.bank.example").unwrap(), options)
        .expect("the client accepts a subdomain of the rp id");
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::PasskeyRejected
    );
}

#[tokio::test]
async fn another_users_credential_is_refused() {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let bob = Subject::new("bob").with_session("s-9");
    let mut alices_key = SoftPasskey::new(true);
    let mut bobs_key = SoftPasskey::new(true);
    register(&s, &alice, &mut alices_key).await;
    register(&s, &bob, &mut bobs_key).await;
    // Bob's genuine assertion (for his own ceremony) presented on Alice's.
    let (alices_id, _) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let (_, bobs_options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&bob))
        .await
        .unwrap();
    let bobs_assertion = bobs_key.do_authentication(origin(), bobs_options).unwrap();
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &alices_id, &bobs_assertion)
            .await
            .unwrap_err(),
        ChallengeError::PasskeyRejected
    );
}

#[tokio::test]
async fn a_registration_without_user_verification_is_refused_by_the_server() {
    let s = setup();
    let carol = Subject::new("carol").with_session("s-3");
    let (id, options) = s
        .engine
        .start_passkey_registration(&carol, "carol")
        .await
        .unwrap();
    // A tampering client relaxes the requirement before asking an
    // authenticator that cannot verify the user.
    let mut json = serde_json::to_value(&options).unwrap();
    json["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged".into();
    let options = serde_json::from_value(json).unwrap();
    let mut no_uv = SoftPasskey::new(false);
    let response = no_uv
        .do_registration(origin(), options)
        .expect("without the requirement the authenticator answers");
    assert_eq!(
        s.engine
            .finish_passkey_registration(Attempt::new(&carol), &id, &response, "no uv")
            .await
            .unwrap_err(),
        ChallengeError::PasskeyRejected
    );
    assert!(s.engine.passkey_names(&carol).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_configuration_fails_at_start_up() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let engine = || {
        Engine::new(
            config.issuer(),
            MemoryFactorStore::new(),
            MemoryStateStore::default(),
        )
    };
    assert!(matches!(
        engine().with_passkeys(PasskeyConfig::new("other.example", ORIGIN, "Bank")),
        Err(ChallengeError::PasskeyConfig(_))
    ));
    assert!(matches!(
        engine().with_passkeys(PasskeyConfig::new("bank.example", "not a url", "Bank")),
        Err(ChallengeError::PasskeyConfig(_))
    ));
    let s = setup();
    assert_eq!(
        s.engine
            .start_passkey_step_up(Attempt::new(&Subject::new("nobody")))
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(stepup_core::Method::Passkey)
    );
}
