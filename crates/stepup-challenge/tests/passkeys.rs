//! Passkeys end to end with a software authenticator: registration, step-up
//! to level 3, and the ways a ceremony must not be reused or redirected.
#![cfg(feature = "passkey")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stepup_challenge::webauthn::Url;
use stepup_challenge::{
    Attempt, ChallengeError, Engine, MemoryFactorStore, MemoryStateStore, PasskeyConfig,
    PasskeyStore, StoredPasskey,
};
use stepup_core::{
    Clock, Decision, Key, KeyId, KeyRing, Method, Policy, Subject, TestClock, Timestamp,
    TokenConfig,
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
    setup_with(PasskeyConfig::new("bank.example", ORIGIN, "Bank"))
}

/// An engine that believes authenticators' device-binding claims.
fn setup_trusting() -> Setup {
    setup_with(PasskeyConfig::new("bank.example", ORIGIN, "Bank").trust_unattested_device_binding())
}

fn setup_with(passkeys: PasskeyConfig) -> Setup {
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
    .with_passkeys(passkeys)
    .unwrap();
    Setup {
        engine,
        clock,
        config,
    }
}

async fn names(s: &Setup, user: &Subject) -> Vec<String> {
    s.engine
        .passkeys(user)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

async fn first_id(s: &Setup, user: &Subject) -> Vec<u8> {
    s.engine.passkeys(user).await.unwrap()[0].id().to_vec()
}

/// Starts a passkey step-up for `user` and lets `key` answer it from the
/// bank's origin: the ceremony id and the assertion.
async fn answer_step_up(
    s: &Setup,
    user: &Subject,
    key: &mut SoftPasskey,
) -> (String, stepup_challenge::webauthn::PublicKeyCredential) {
    let (id, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(user))
        .await
        .unwrap();
    (id, key.do_authentication(origin(), options).unwrap())
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

/// An engine, alice in session `s-1`, and her registered passkey.
async fn alice_with_a_passkey() -> (Setup, Subject, SoftPasskey) {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let mut key = SoftPasskey::new(true);
    register(&s, &alice, &mut key).await;
    (s, alice, key)
}

/// A passkey step-up for `user`, start to finish, succeeds.
async fn steps_up(s: &Setup, user: &Subject, key: &mut SoftPasskey) {
    let (id, assertion) = answer_step_up(s, user, key).await;
    s.engine
        .step_up_passkey(Attempt::new(user), &id, &assertion)
        .await
        .unwrap();
}

#[tokio::test]
async fn register_then_step_up_to_level_three() {
    let s = setup_trusting();
    let alice = Subject::new("alice").with_session("s-1");
    let mut key = SoftPasskey::new(true);
    register(&s, &alice, &mut key).await;
    assert_eq!(names(&s, &alice).await, ["laptop"]);
    let key_id = first_id(&s, &alice).await;
    s.engine
        .rename_passkey(&alice, &key_id, "work laptop\u{7}")
        .await
        .unwrap();
    assert_eq!(names(&s, &alice).await, ["work laptop"]);
    // An unknown credential id is not enrolled (no index to run past).
    assert_eq!(
        s.engine
            .rename_passkey(&alice, b"no such id", "x")
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(Method::Passkey)
    );
    assert_eq!(
        s.engine
            .remove_passkey(&alice, b"no such id")
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(Method::Passkey)
    );

    let (id, assertion) = answer_step_up(&s, &alice, &mut key).await;
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
    // The software authenticator is not backup-eligible: device-bound.
    assert_eq!(a.acr(), Some("aal3"));
    assert_eq!(a.amr(), ["hwk", "user"]);
    assert!(a.satisfies(&Policy::method(Method::Passkey), s.clock.now()));

    // Removing it leaves nothing to step up with.
    s.engine.remove_passkey(&alice, &key_id).await.unwrap();
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
    let (s, alice, mut key) = alice_with_a_passkey().await;

    let (id, assertion) = answer_step_up(&s, &alice, &mut key).await;
    let other_session = Subject::new("alice").with_session("s-2");
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&other_session), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
    // Another session's try left it for its owner, who finishes it once.
    s.engine
        .step_up_passkey(Attempt::new(&alice), &id, &assertion)
        .await
        .unwrap();
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );

    let (id, assertion) = answer_step_up(&s, &alice, &mut key).await;
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
    let (s, alice, mut key) = alice_with_a_passkey().await;
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
    assert!(names(&s, &carol).await.is_empty());
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

/// A credential id is registered once, to one subject (WebAuthn §7.1 step
/// 22); a use racing with a removal never brings the credential back; a
/// backup-eligible passkey proves only `Method::Passkey` (level 2, `swk`).
#[tokio::test]
async fn credentials_are_unique_removals_stick_and_synced_passkeys_rank_lower() {
    let (s, alice, _key) = alice_with_a_passkey().await;
    let stored = s.engine.passkeys(&alice).await.unwrap().remove(0);
    assert!(stored.is_device_bound());
    assert_eq!(stored.claimed_method(), Method::DeviceBoundPasskey);

    let store = MemoryFactorStore::new();
    let bob = Subject::new("bob");
    assert!(store.add_passkey(&alice, stored.clone()).await.unwrap());
    assert!(!store.add_passkey(&alice, stored.clone()).await.unwrap());
    assert!(!store.add_passkey(&bob, stored.clone()).await.unwrap());
    assert!(store.passkeys(&bob).await.unwrap().is_empty());

    // Removed, then a step-up that read the list before the removal saves
    // its counter: the credential stays removed.
    assert!(store.remove_passkey(&alice, stored.id()).await.unwrap());
    assert!(!store.update_passkey(&alice, stored.clone()).await.unwrap());
    assert!(store.passkeys(&alice).await.unwrap().is_empty());

    // The same credential, had its authenticator said "backup eligible".
    let mut json = serde_json::to_value(&stored.passkey).unwrap();
    json["cred"]["backup_eligible"] = true.into();
    let synced = StoredPasskey {
        name: "phone".into(),
        passkey: serde_json::from_value(json).unwrap(),
    };
    assert!(!synced.is_device_bound());
    assert_eq!(synced.claimed_method(), Method::Passkey);
    let levels = s.config.levels();
    assert_eq!(levels.rank_of(Method::Passkey), 2);
    assert_eq!(levels.rank_of(Method::DeviceBoundPasskey), 3);
}

/// Ceremonies are capped per subject (newest replaces oldest) and starts
/// are counted: a subject cannot fill the server with ceremonies.
#[tokio::test]
async fn ceremony_starts_are_counted() {
    let s = setup();
    let alice = Subject::new("alice").with_session("s-1");
    let mut refused = None;
    for i in 0..25 {
        if let Err(e) = s.engine.start_passkey_registration(&alice, "alice").await {
            refused = Some((i, e));
            break;
        }
    }
    let (i, e) = refused.expect("starts are limited");
    assert_eq!(i, 20, "20 starts in 15 minutes by default");
    assert!(matches!(e, ChallengeError::LockedOut { .. }), "{e:?}");
    s.clock.advance(Duration::from_secs(15 * 60 + 1));
    s.engine
        .start_passkey_registration(&alice, "alice")
        .await
        .unwrap();
}

/// An authenticator's "device-bound" claim is not attested: software can
/// make it. By default it is not believed, so a passkey registered with a
/// phished TOTP code proves `passkey` (level 2, `swk`), never level 3, and
/// never outranks the user's own factors.
#[tokio::test]
async fn an_unattested_device_binding_claim_is_not_believed_by_default() {
    let (s, alice, mut key) = alice_with_a_passkey().await;
    assert!(s.engine.passkeys(&alice).await.unwrap()[0].is_device_bound());
    assert_eq!(
        s.engine.enrolled_methods(&alice).await.unwrap(),
        [Method::Passkey]
    );
    let (id, assertion) = answer_step_up(&s, &alice, &mut key).await;
    let token = s
        .engine
        .step_up_passkey(Attempt::new(&alice), &id, &assertion)
        .await
        .unwrap();
    assert_eq!(token.assurance().acr(), Some("aal2"));
    assert_eq!(token.assurance().amr(), ["swk", "user"]);
    assert!(matches!(
        s.config.gate().check(
            &alice,
            Some(token.value()),
            &Policy::level(3),
            s.clock.now()
        ),
        Decision::Challenge(_)
    ));
}

/// Review finding: 100 finishes with a made-up ceremony id disabled the
/// user's passkey for a year. A request without a pending ceremony is no
/// guess (not counted), and passkeys have no consecutive-failure cap (an
/// assertion cannot be guessed; a cap would only be a lever to disable the
/// strongest factor).
#[tokio::test]
async fn made_up_ceremonies_never_disable_a_passkey() {
    let (s, alice, mut key) = alice_with_a_passkey().await;
    let (_, options) = s
        .engine
        .start_passkey_step_up(Attempt::new(&alice))
        .await
        .unwrap();
    let assertion = key.do_authentication(origin(), options).unwrap();
    for _ in 0..150 {
        assert_eq!(
            s.engine
                .step_up_passkey(
                    Attempt::new(&alice),
                    "00000000000000000000000000000000",
                    &assertion
                )
                .await
                .unwrap_err(),
            ChallengeError::NoPendingCeremony
        );
    }
    steps_up(&s, &alice, &mut key).await;
}

#[tokio::test]
async fn a_subject_has_at_most_three_ceremonies_newest_replacing_oldest() {
    let (s, alice, mut key) = alice_with_a_passkey().await;
    let mut started = Vec::new();
    for _ in 0..4 {
        started.push(answer_step_up(&s, &alice, &mut key).await);
    }
    // The fourth replaced the first; the second to fourth are in flight.
    let (first, assertion) = &started[0];
    assert_eq!(
        s.engine
            .step_up_passkey(Attempt::new(&alice), first, assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
    for (id, assertion) in &started[1..] {
        s.engine
            .step_up_passkey(Attempt::new(&alice), id, assertion)
            .await
            .unwrap();
    }
    // Another user's ceremonies are theirs: alice's starts replaced none.
    let bob = Subject::new("bob").with_session("s-9");
    let mut bobs = SoftPasskey::new(true);
    let (bob_id, options) = s
        .engine
        .start_passkey_registration(&bob, "bob")
        .await
        .unwrap();
    for _ in 0..3 {
        answer_step_up(&s, &alice, &mut key).await;
    }
    let response = bobs.do_registration(origin(), options).unwrap();
    s.engine
        .finish_passkey_registration(Attempt::new(&bob), &bob_id, &response, "phone")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_registration_ceremony_finishes_no_step_up_and_is_not_counted() {
    let (s, alice, mut key) = alice_with_a_passkey().await;
    let (_, assertion) = answer_step_up(&s, &alice, &mut key).await;
    // More registration ids than the attempt budget (5), each presented
    // once as a step-up's ceremony.
    for _ in 0..6 {
        let (registration, _) = s
            .engine
            .start_passkey_registration(&alice, "alice")
            .await
            .unwrap();
        assert_eq!(
            s.engine
                .step_up_passkey(Attempt::new(&alice), &registration, &assertion)
                .await
                .unwrap_err(),
            ChallengeError::NoPendingCeremony
        );
    }
    // Nothing was counted: a real step-up goes through.
    steps_up(&s, &alice, &mut key).await;
}

#[tokio::test]
async fn made_up_and_malformed_ceremony_ids_are_refused_uncounted() {
    let (s, alice, mut key) = alice_with_a_passkey().await;
    let (id, assertion) = answer_step_up(&s, &alice, &mut key).await;
    let nonce = &id[1..];
    for bad in [
        String::new(),
        "0".into(),
        format!("3{nonce}"),
        format!("9{nonce}"),
        format!("-{nonce}"),
        format!("{}{}", &id[..1], nonce.to_uppercase()),
        format!("{id}0"),
        // The right slot with another nonce: sealed to the real nonce.
        format!("{}{}", &id[..1], "0".repeat(32)),
    ] {
        assert_eq!(
            s.engine
                .step_up_passkey(Attempt::new(&alice), &bad, &assertion)
                .await
                .unwrap_err(),
            ChallengeError::NoPendingCeremony,
            "{bad:?}"
        );
    }
}
