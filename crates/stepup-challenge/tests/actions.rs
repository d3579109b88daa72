//! Step-ups bound to an action, in the engine: the ceremony is checked
//! before anything is counted or consumed, allows a few wrong answers,
//! becomes one grant on success, and is capped per session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use stepup_challenge::routes::Confirmations;
use stepup_challenge::{
    ActionLimits, Attempt, AttemptLimits, ChallengeError, Engine, FactorStore,
    InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig, TotpSecret,
};
use stepup_core::{
    Action, Clock, Key, KeyId, KeyRing, Policy, Subject, TestClock, Timestamp, TokenConfig,
};
use stepup_http::{BoundAction, Grants, Opening, Taken};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

type TestEngine = Engine<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>;

struct Setup {
    engine: Arc<TestEngine>,
    grants: Confirmations<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>,
    clock: TestClock,
    secret: TotpSecret,
}

async fn setup(limits: ActionLimits) -> Setup {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    factors
        .set_totp_secret(&Subject::new("alice"), secret.clone())
        .await
        .unwrap();
    let engine = Arc::new(
        Engine::new(
            config.issuer(),
            factors,
            MemoryStateStore::new(clock.clone()),
        )
        .with_clock(clock.clone())
        .with_totp(TotpConfig::new("Example Bank"))
        .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
        // Generous limits: the ceremony's own allowance is what is tested.
        .with_limits(
            AttemptLimits::default()
                .per_subject(100, Duration::from_secs(3600))
                .across_methods(100, Duration::from_secs(3600))
                .consecutive_failures(100),
        )
        .with_action_limits(limits),
    );
    Setup {
        grants: Confirmations::new(engine.clone()),
        engine,
        clock,
        secret,
    }
}

impl Setup {
    fn code(&self) -> String {
        TotpConfig::new("Example Bank")
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn open(&self, subject: &Subject, action: &BoundAction) -> String {
        match self.grants.open(subject, action, &big()).await {
            Opening::Opened(id) => id,
            other => panic!("{other:?}"),
        }
    }
}

/// A bound policy one level-2 step-up meets.
fn big() -> Policy {
    Policy::level(2).and(Policy::bound())
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

fn send(amount: &str) -> BoundAction {
    BoundAction::new(
        Action::new("payment", "POST", "/transfer")
            .unwrap()
            .with_detail("amount", amount)
            .unwrap()
            .with_detail("to", "bob")
            .unwrap(),
        format!("Send {amount} to bob"),
    )
}

#[tokio::test]
async fn a_ceremony_allows_a_few_wrong_answers_then_is_void() {
    let s = setup(ActionLimits::default().attempts(3)).await;
    let user = alice();
    let action = send("12000.00");
    let id = s.open(&user, &action).await;
    for _ in 0..2 {
        let e = s
            .engine
            .step_up_totp(Attempt::new(&user).for_action(&id), "000000")
            .await;
        assert!(matches!(e, Err(ChallengeError::Wrong { .. })), "{e:?}");
    }
    assert!(s.engine.pending_action(&user, &id).await.unwrap().is_some());
    let e = s
        .engine
        .step_up_totp(Attempt::new(&user).for_action(&id), "000000")
        .await;
    assert!(matches!(e, Err(ChallengeError::Wrong { .. })), "{e:?}");
    // Void: the right code now confirms nothing, and is not used up by it.
    assert!(s.engine.pending_action(&user, &id).await.unwrap().is_none());
    let code = s.code();
    let e = s
        .engine
        .step_up_totp(Attempt::new(&user).for_action(&id), &code)
        .await;
    assert_eq!(e.unwrap_err(), ChallengeError::NoPendingAction);
    assert_eq!(s.grants.take(&user, &action, None).await, Taken::Missing);
    s.engine
        .step_up_totp(Attempt::new(&user), &code)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_gone_ceremony_consumes_no_recovery_code() {
    let s = setup(ActionLimits::default()).await;
    let user = alice();
    let codes = s.engine.generate_recovery_codes(&user, 10).await.unwrap();
    let before = s.engine.recovery_codes_left(&user).await.unwrap();
    let gone = "0123456789abcdef0123456789abcdef";
    let e = s
        .engine
        .step_up_recovery_code(Attempt::new(&user).for_action(gone), &codes[0].grouped())
        .await;
    assert_eq!(e.unwrap_err(), ChallengeError::NoPendingAction);
    assert_eq!(s.engine.recovery_codes_left(&user).await.unwrap(), before);
    // Made for a waiting ceremony, it confirms it (and is used).
    let action = send("500.00");
    let id = s.open(&user, &action).await;
    s.engine
        .step_up_recovery_code(Attempt::new(&user).for_action(&id), &codes[0].grouped())
        .await
        .unwrap();
    assert_eq!(
        s.engine.recovery_codes_left(&user).await.unwrap(),
        before - 1
    );
    // The grant carries the proof it was made with.
    match s.grants.take(&user, &action, Some(&id)).await {
        Taken::Granted(proofs) => {
            assert_eq!(
                proofs,
                [stepup_core::Proof::new(
                    stepup_core::Method::RecoveryCode,
                    s.clock.now()
                )]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.grants.take(&user, &action, Some(&id)).await,
        Taken::Missing
    );
}

#[tokio::test]
async fn a_session_opens_a_bounded_number_of_ceremonies() {
    let s = setup(ActionLimits::default().per_session(2)).await;
    let user = alice();
    s.open(&user, &send("1.00")).await;
    s.open(&user, &send("2.00")).await;
    assert_eq!(
        s.grants.open(&user, &send("3.00"), &big()).await,
        Opening::TooMany
    );
    // Another session has its own; after the window, this one again.
    let other = Subject::new("alice").with_session("s-2");
    s.open(&other, &send("3.00")).await;
    s.clock.advance(Duration::from_secs(301));
    s.open(&user, &send("3.00")).await;
}

#[tokio::test]
async fn the_grant_lifetime_is_configured() {
    let s = setup(ActionLimits::default().grant_ttl(Duration::from_secs(30))).await;
    let user = alice();
    let action = send("12000.00");
    let id = s.open(&user, &action).await;
    s.engine
        .step_up_totp(Attempt::new(&user).for_action(&id), &s.code())
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(31));
    assert_eq!(s.grants.take(&user, &action, None).await, Taken::Missing);
}

/// The page shows the summary from the record: what the engine keeps for a
/// pending action is what was opened, never anything from a later request.
#[tokio::test]
async fn the_pending_action_is_the_opened_one() {
    let s = setup(ActionLimits::default()).await;
    let user = alice();
    let action = send("12000.00");
    let id = s.open(&user, &action).await;
    let pending = s.engine.pending_action(&user, &id).await.unwrap().unwrap();
    assert_eq!(pending.summary(), "Send 12000.00 to bob");
    assert_eq!(pending.digest(), action.digest());
    let other = Subject::new("alice").with_session("s-2");
    assert!(
        s.engine
            .pending_action(&other, &id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.engine
            .pending_action(&user, "../x")
            .await
            .unwrap()
            .is_none()
    );
}

/// A policy that needs two methods is met by two step-ups made for the
/// ceremony: the first is recorded and keeps it open, the second makes the
/// grant — and a proof made before the ceremony (an earlier TOTP in the
/// token) never counts for it.
#[tokio::test]
async fn a_two_method_policy_is_confirmed_by_two_step_ups_made_for_it() {
    let s = setup(ActionLimits::default()).await;
    let (engine, grants, clock) = (&s.engine, &s.grants, &s.clock);
    let code = || s.code();
    let user = alice();
    let both: Policy = "password within 15m and totp within 5m and bound"
        .parse()
        .unwrap();
    // A TOTP before the ceremony: in the token, not for the action.
    engine
        .step_up_totp(Attempt::new(&user), &code())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(30));
    let action = send("12000.00");
    let Opening::Opened(id) = grants.open(&user, &action, &both).await else {
        panic!("opens");
    };
    engine
        .step_up_password(Attempt::new(&user).for_action(&id), "wonderland")
        .await
        .unwrap();
    // Recorded, still open; no grant yet.
    assert!(engine.pending_action(&user, &id).await.unwrap().is_some());
    assert_eq!(grants.take(&user, &action, None).await, Taken::Missing);
    // The same action asked again waits on the same ceremony.
    assert_eq!(
        grants.open(&user, &action, &both).await,
        Opening::Opened(id.clone())
    );
    engine
        .step_up_totp(Attempt::new(&user).for_action(&id), &code())
        .await
        .unwrap();
    assert!(engine.pending_action(&user, &id).await.unwrap().is_none());
    let Taken::Granted(proofs) = grants.take(&user, &action, Some(&id)).await else {
        panic!("granted");
    };
    let methods: Vec<_> = proofs.iter().map(|p| p.method()).collect();
    assert_eq!(
        methods,
        [stepup_core::Method::Password, stepup_core::Method::Totp]
    );
    assert!(
        both.met_by(&proofs, engine.issuer().levels(), clock.now(), true)
            .is_ok()
    );
}
