//! One-time codes by e-mail and SMS: send, verify, and every way to misuse them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use stepup_challenge::{
    Attempt, ChallengeError, Channel, CodeSettings, Engine, MemoryFactorStore, MemoryStateStore,
    NoPasswords, RecordingSender,
};
use stepup_core::{
    Clock, Decision, Key, KeyId, KeyRing, Method, Policy, Subject, TestClock, Timestamp,
    TokenConfig,
};

struct Setup {
    engine: Arc<Engine<MemoryFactorStore, MemoryStateStore, NoPasswords>>,
    sender: RecordingSender,
    clock: TestClock,
    config: TokenConfig,
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

fn setup() -> Setup {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    factors
        .set_code_destination(&alice(), Channel::Email, "alice@example.com")
        .unwrap();
    factors
        .set_code_destination(&alice(), Channel::Sms, "+44 7700 900123")
        .unwrap();
    let sender = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_code_sender(sender.clone());
    Setup {
        engine: Arc::new(engine),
        sender,
        clock,
        config,
    }
}

#[tokio::test]
async fn a_code_sent_by_email_steps_up_once() {
    let s = setup();
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    assert_eq!(sent.destination_hint, "a•••@example.com");
    let code = s.sender.last_code_to("alice@example.com").unwrap();
    assert_eq!(code.len(), 6);
    let token = s
        .engine
        .step_up_code(
            Attempt::new(&user),
            Channel::Email,
            &sent.challenge_id,
            &code,
        )
        .await
        .unwrap();
    assert_eq!(
        token.assurance().proven_at(Method::EmailCode),
        Some(s.clock.now())
    );
    let decision =
        s.config
            .gate()
            .check(&user, Some(token.value()), &Policy::level(1), s.clock.now());
    assert!(matches!(decision, Decision::Allow(_)));
    // NIST SP 800-63B: e-mail is no out-of-band authenticator, so level 1 only.
    let decision =
        s.config
            .gate()
            .check(&user, Some(token.value()), &Policy::level(2), s.clock.now());
    assert!(matches!(decision, Decision::Challenge(_)), "{decision:?}");
    // Used once, gone.
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                &code
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
}

#[tokio::test]
async fn codes_expire_and_stay_with_their_session_and_challenge() {
    let s = setup();
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Sms)
        .await
        .unwrap();
    assert_eq!(sent.destination_hint, "•••• 0123");
    let code = s.sender.last_code_to("+44 7700 900123").unwrap();
    let other_session = Subject::new("alice").with_session("s-2");
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&other_session),
                Channel::Sms,
                &sent.challenge_id,
                &code
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Sms,
                "0000000000000000000000000000000",
                &code
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                &code
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode,
        "an SMS code is not an e-mail code"
    );
    s.clock.advance(Duration::from_secs(601));
    assert_eq!(
        s.engine
            .step_up_code(Attempt::new(&user), Channel::Sms, &sent.challenge_id, &code)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
}

#[tokio::test]
async fn a_new_send_invalidates_the_previous_code() {
    let s = setup();
    let user = alice();
    let first = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let first_code = s.sender.last_code_to("alice@example.com").unwrap();
    let second = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    assert_ne!(first.challenge_id, second.challenge_id);
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &first.challenge_id,
                &first_code
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
    let second_code = s.sender.last_code_to("alice@example.com").unwrap();
    s.engine
        .step_up_code(
            Attempt::new(&user),
            Channel::Email,
            &second.challenge_id,
            &second_code,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sends_are_rationed() {
    let s = setup();
    let user = alice();
    for _ in 0..5 {
        s.engine
            .send_code(Attempt::new(&user), Channel::Email)
            .await
            .unwrap();
    }
    assert!(matches!(
        s.engine
            .send_code(Attempt::new(&user), Channel::Email)
            .await,
        Err(ChallengeError::LockedOut { .. })
    ));
    assert_eq!(s.sender.count(), 5);
    // Per address, across subjects.
    let s = setup();
    let engine = Engine::new(
        s.config.issuer(),
        {
            let f = MemoryFactorStore::new();
            for i in 0..30 {
                f.set_code_destination(
                    &Subject::new(format!("u{i}")),
                    Channel::Email,
                    format!("u{i}@example.com"),
                )
                .unwrap();
            }
            f
        },
        MemoryStateStore::new(s.clock.clone()),
    )
    .with_clock(s.clock.clone())
    .with_code_sender(RecordingSender::new())
    .with_code_settings(CodeSettings::default().send_limits(5, 10, Duration::from_secs(900)));
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    let mut refused = 0;
    for i in 0..30 {
        let u = Subject::new(format!("u{i}"));
        if engine
            .send_code(Attempt::new(&u).from_address(ip), Channel::Email)
            .await
            .is_err()
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 20);
}

/// Why alice's e-mail `code` for `challenge_id` does not step her up.
async fn refused(s: &Setup, challenge_id: &str, code: &str) -> ChallengeError {
    s.engine
        .step_up_code(Attempt::new(&alice()), Channel::Email, challenge_id, code)
        .await
        .unwrap_err()
}

/// Input that is not a six-digit code: refused before it is checked.
const MALFORMED: [&str; 5] = ["", "12345", "1234567", "12345a", "１２３４５６"];

#[tokio::test]
async fn wrong_codes_count_against_the_budget() {
    let s = setup();
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right = s.sender.last_code_to("alice@example.com").unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    // Malformed input is a format error and not an attempt: the whole
    // budget is still there after it.
    for bad in MALFORMED {
        let error = refused(&s, &sent.challenge_id, bad).await;
        assert!(
            matches!(error, ChallengeError::Format(_)),
            "{bad:?}: {error:?}"
        );
    }
    // Five wrong codes (the default budget) … the code itself is void
    // after three, so a new one is sent for the last two.
    let mut challenge_id = sent.challenge_id.clone();
    for i in 0..5 {
        if i == 3 {
            challenge_id = s
                .engine
                .send_code(Attempt::new(&user), Channel::Email)
                .await
                .unwrap()
                .challenge_id;
        }
        let error = refused(&s, &challenge_id, wrong).await;
        assert!(
            matches!(error, ChallengeError::Wrong { .. }),
            "{i}: {error:?}"
        );
    }
    let sent = stepup_challenge::CodeSent {
        challenge_id,
        ..sent
    };
    let right = s.sender.last_code_to("alice@example.com").unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    // … and the right one is refused like any other.
    let error = refused(&s, &sent.challenge_id, &right).await;
    assert!(
        matches!(error, ChallengeError::LockedOut { .. }),
        "{error:?}"
    );
    let error = refused(&s, &sent.challenge_id, wrong).await;
    assert!(
        matches!(error, ChallengeError::LockedOut { .. }),
        "{error:?}"
    );
    // Locked or not, malformed input never reaches the check: still a
    // format error (it says nothing about the code).
    for bad in MALFORMED {
        let error = refused(&s, &sent.challenge_id, bad).await;
        assert!(
            matches!(error, ChallengeError::Format(_)),
            "{bad:?}: {error:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_right_answers_give_one_token() {
    let s = setup();
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let code = s.sender.last_code_to("alice@example.com").unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (engine, user, id, code) = (
                s.engine.clone(),
                user.clone(),
                sent.challenge_id.clone(),
                code.clone(),
            );
            tokio::spawn(async move {
                engine
                    .step_up_code(Attempt::new(&user), Channel::Email, &id, &code)
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn no_destination_or_sender_is_not_enrolled() {
    let s = setup();
    let bob = Subject::new("bob");
    assert_eq!(
        s.engine
            .send_code(Attempt::new(&bob), Channel::Email)
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(Method::EmailCode)
    );
    let without_sender: Engine<_, _> = Engine::new(
        s.config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    );
    assert!(matches!(
        without_sender
            .send_code(Attempt::new(&alice()), Channel::Sms)
            .await,
        Err(ChallengeError::NotEnrolled(Method::SmsCode))
    ));
    let methods = s.engine.enrolled_methods(&alice()).await.unwrap();
    assert_eq!(methods, [Method::EmailCode, Method::SmsCode]);
}
