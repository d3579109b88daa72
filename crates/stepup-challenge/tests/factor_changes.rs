//! Factor changes at the engine: what removing and replacing do (epoch,
//! notices, events), racing enrollment confirmations, account recovery,
//! and the limiter's lockout cap, window expiry and per-method separation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, AttemptLimits, ChallengeError, ChangeCheck, Engine, Event, EventKind, FactorChange,
    FactorStore, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, Notice, NoticeKind,
    TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Method, Subject, TestClock, Timestamp, TokenConfig};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

type TestEngine = Engine<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>;

struct Setup {
    engine: Arc<TestEngine>,
    factors: MemoryFactorStore,
    clock: TestClock,
    config: TokenConfig,
    events: Arc<Mutex<Vec<(EventKind, Method)>>>,
    notices: Arc<Mutex<Vec<(NoticeKind, Method, String)>>>,
}

fn setup(limits: AttemptLimits) -> Setup {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let events: Arc<Mutex<Vec<(EventKind, Method)>>> = Arc::default();
    let notices: Arc<Mutex<Vec<(NoticeKind, Method, String)>>> = Arc::default();
    let (e, n) = (events.clone(), notices.clone());
    let engine = Engine::new(
        config.issuer(),
        factors.clone(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
    .with_limits(limits)
    .with_code_sender(stepup_challenge::RecordingSender::new())
    .with_event_sink(move |ev: &Event| {
        e.lock()
            .unwrap()
            .push((ev.kind, ev.method.expect("a factor event names its method")))
    })
    .with_notice_sink(move |notice: &Notice<'_>| {
        n.lock()
            .unwrap()
            .push((notice.kind, notice.method, notice.subject.id().to_owned()))
    });
    Setup {
        engine: Arc::new(engine),
        factors,
        clock,
        config,
        events,
        notices,
    }
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

impl Setup {
    fn code(&self, secret: &TotpSecret) -> String {
        self.engine
            .totp_config()
            .code_at(secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn enroll_totp(&self, user: &Subject) -> TotpSecret {
        let enrollment = self
            .engine
            .start_totp_enrollment(user, "alice")
            .await
            .unwrap();
        let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
        self.engine
            .confirm_totp_enrollment(Attempt::new(user), &self.code(&secret))
            .await
            .unwrap();
        secret
    }

    fn noticed(&self, kind: NoticeKind, method: Method) -> bool {
        self.notices
            .lock()
            .unwrap()
            .iter()
            .any(|(k, m, who)| *k == kind && *m == method && who == "alice")
    }
}

#[tokio::test]
async fn remove_totp_removes_the_secret_bumps_the_epoch_and_notifies() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    let secret = s.enroll_totp(&user).await;
    assert!(s.noticed(NoticeKind::FactorAdded, Method::Totp));
    assert_eq!(s.factors.epoch("alice"), 0, "adding bumps nothing");
    s.clock.advance(Duration::from_secs(30));
    let token = s
        .engine
        .step_up_totp(Attempt::new(&user), &s.code(&secret))
        .await
        .unwrap();
    s.engine.remove_totp(&user).await.unwrap();
    assert!(s.factors.totp_secret(&user).await.unwrap().is_none());
    assert_eq!(s.factors.epoch("alice"), 1);
    assert!(s.noticed(NoticeKind::FactorRemoved, Method::Totp));
    assert!(
        s.events
            .lock()
            .unwrap()
            .contains(&(EventKind::Removed, Method::Totp))
    );
    // The token from before is revoked under the new epoch.
    let now_user = user.clone().with_epoch(s.factors.epoch("alice"));
    assert!(
        s.config
            .gate()
            .verify(now_user, Some(token.value()), s.clock.now())
            .is_err()
    );
    // Removing again: nothing to remove, and no second bump.
    assert_eq!(
        s.engine.remove_totp(&user).await.unwrap_err(),
        ChallengeError::NotEnrolled(Method::Totp)
    );
    assert_eq!(s.factors.epoch("alice"), 1);
    s.clock.advance(Duration::from_secs(30));
    assert_eq!(
        s.engine
            .step_up_totp(Attempt::new(&user), &s.code(&secret))
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(Method::Totp)
    );
}

#[tokio::test]
async fn replacing_totp_and_recovery_codes_bumps_the_epoch() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    s.enroll_totp(&user).await;
    s.clock.advance(Duration::from_secs(60));
    s.enroll_totp(&user).await;
    assert_eq!(s.factors.epoch("alice"), 1);
    assert!(s.noticed(NoticeKind::FactorReplaced, Method::Totp));
    s.engine.generate_recovery_codes(&user, 10).await.unwrap();
    assert_eq!(s.factors.epoch("alice"), 1, "first codes: an addition");
    s.engine.generate_recovery_codes(&user, 10).await.unwrap();
    assert_eq!(s.factors.epoch("alice"), 2);
    assert!(s.noticed(NoticeKind::FactorReplaced, Method::RecoveryCode));
}

/// Ten confirmations of one pending enrollment race: exactly one enrolls.
#[tokio::test]
async fn racing_enrollment_confirmations_enroll_once() {
    let s = setup(AttemptLimits::default().per_subject(50, Duration::from_secs(900)));
    let user = alice();
    let enrollment = s
        .engine
        .start_totp_enrollment(&user, "alice")
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    let code = s.code(&secret);
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let engine = s.engine.clone();
        let user = user.clone();
        let code = code.clone();
        racers.spawn(async move {
            engine
                .confirm_totp_enrollment(Attempt::new(&user), &code)
                .await
        });
    }
    let results = racers.join_all().await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                r,
                Err(ChallengeError::AlreadyUsed | ChallengeError::NoPendingEnrollment)
            ),
            "{r:?}"
        );
    }
    let enrolled = s
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == (EventKind::Enrolled, Method::Totp))
        .count();
    assert_eq!(enrolled, 1);
}

/// A pending enrollment belongs to the session that started it.
#[tokio::test]
async fn a_pending_enrollment_is_confirmed_only_by_its_session() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    let enrollment = s
        .engine
        .start_totp_enrollment(&user, "alice")
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    let other = Subject::new("alice").with_session("s-2");
    assert_eq!(
        s.engine
            .confirm_totp_enrollment(Attempt::new(&other), &s.code(&secret))
            .await
            .unwrap_err(),
        ChallengeError::NoPendingEnrollment
    );
    s.engine
        .confirm_totp_enrollment(Attempt::new(&user), &s.code(&secret))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_account_recovery_waits_then_accepts_weaker_proofs_for_a_day() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    s.enroll_totp(&user).await;
    s.factors
        .set_code_destination(&user, stepup_challenge::Channel::Email, "a@example.com")
        .unwrap();
    // Without a pending recovery, replacing TOTP needs TOTP.
    let check = s
        .engine
        .authorize_change(&user, None, FactorChange::Replace(Method::Totp))
        .await
        .unwrap();
    let ChangeCheck::Prove(policy) = check else {
        panic!("{check:?}")
    };
    assert_eq!(policy.to_string(), "totp within 5m");
    let pending = s.engine.start_account_recovery(&user).await.unwrap();
    assert_eq!(pending.ready_at, T0 + Duration::from_secs(24 * 3600));
    assert!(s.noticed(NoticeKind::RecoveryStarted, Method::RecoveryCode));
    // Starting again keeps the first: the wait does not restart.
    s.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        s.engine.start_account_recovery(&user).await.unwrap(),
        pending
    );
    s.clock.advance(Duration::from_secs(23 * 3600));
    let ChangeCheck::Prove(policy) = s
        .engine
        .authorize_change(&user, None, FactorChange::Replace(Method::Totp))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(policy.to_string(), "totp within 5m or email_code within 5m");
    // A day after it is ready, it is gone.
    s.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(s.engine.pending_recovery(&user).await.unwrap(), None);
    // Cancelling tells the user and ends it.
    s.engine.start_account_recovery(&user).await.unwrap();
    assert!(s.engine.cancel_account_recovery(&user).await.unwrap());
    assert!(!s.engine.cancel_account_recovery(&user).await.unwrap());
    assert!(s.noticed(NoticeKind::RecoveryCancelled, Method::RecoveryCode));
}

/// Lockouts double up to the configured cap, windows expire on their own,
/// and one method's lockout leaves the others usable.
#[tokio::test]
async fn lockouts_are_capped_windows_expire_and_methods_are_separate() {
    let limits = AttemptLimits::default()
        .per_subject(2, Duration::from_secs(600))
        .lockout(Duration::from_secs(60), Duration::from_secs(150))
        .across_methods(100, Duration::from_secs(600));
    let s = setup(limits);
    let user = alice();
    let secret = s.enroll_totp(&user).await;
    let wrong = |s: &Setup| {
        let code = s.code(&secret);
        if code == "000000" { "000001" } else { "000000" }.to_owned()
    };
    // Window expiry: two failures, then the window passes, two more are fine.
    for _ in 0..2 {
        assert!(matches!(
            s.engine.step_up_totp(Attempt::new(&user), &wrong(&s)).await,
            Err(ChallengeError::Wrong { .. })
        ));
    }
    s.clock.advance(Duration::from_secs(601));
    let mut lockouts = Vec::new();
    for _ in 0..3 {
        for _ in 0..2 {
            assert!(matches!(
                s.engine.step_up_totp(Attempt::new(&user), &wrong(&s)).await,
                Err(ChallengeError::Wrong { .. })
            ));
        }
        let now = s.clock.now();
        match s.engine.step_up_totp(Attempt::new(&user), &wrong(&s)).await {
            Err(ChallengeError::LockedOut { until }) => {
                lockouts.push(until.duration_since(now).as_secs());
                s.clock
                    .advance(until.duration_since(now) + Duration::from_secs(1));
            }
            other => panic!("{other:?}"),
        }
        // Per-method separation: the password is not locked by TOTP.
        assert!(matches!(
            s.engine.step_up_password(Attempt::new(&user), "nope").await,
            Err(ChallengeError::Wrong { .. })
        ));
        s.engine
            .step_up_password(Attempt::new(&user), "wonderland")
            .await
            .unwrap();
    }
    assert_eq!(lockouts, [60, 120, 150], "doubling, capped at 150 s");
}

/// Review findings: a ready recovery allowed every change, repeatedly, for
/// a day, and the owner's own TOTP successes during the wait did not stop
/// it. Now a success with a factor of the user's own cancels it (with a
/// notice), and a ready recovery is used up by the first change.
#[tokio::test]
async fn a_recovery_ends_with_the_owners_own_factor_and_serves_one_change() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    let secret = s.enroll_totp(&user).await;
    s.factors
        .set_code_destination(&user, stepup_challenge::Channel::Email, "a@example.com")
        .unwrap();
    s.engine.start_account_recovery(&user).await.unwrap();
    s.clock.advance(Duration::from_secs(8 * 3600));
    s.engine
        .step_up_totp(Attempt::new(&user), &s.code(&secret))
        .await
        .unwrap();
    assert_eq!(s.engine.pending_recovery(&user).await.unwrap(), None);
    assert!(s.noticed(NoticeKind::RecoveryCancelled, Method::RecoveryCode));
    // Started again and waited out: one change, then it is gone.
    s.engine.start_account_recovery(&user).await.unwrap();
    s.clock.advance(Duration::from_secs(24 * 3600 + 1));
    let user = user.with_epoch(s.factors.epoch("alice"));
    s.enroll_totp(&user).await;
    assert_eq!(s.engine.pending_recovery(&user).await.unwrap(), None);
    let ChangeCheck::Prove(policy) = s
        .engine
        .authorize_change(&user, None, FactorChange::Replace(Method::Totp))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(policy.to_string(), "totp within 5m");
}

/// Review findings: without a notice sink a recovery ran silently; starts
/// could be repeated forever after each cancel; a huge wait panicked.
#[tokio::test]
async fn a_recovery_is_announced_limited_and_bounded() {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let silent = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone());
    let user = alice();
    assert!(matches!(
        silent.start_account_recovery(&user).await,
        Err(ChallengeError::Recovery(_))
    ));
    let s = setup(AttemptLimits::default());
    let engine = Engine::new(
        s.config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(s.clock.clone()),
    )
    .with_clock(s.clock.clone())
    .with_recovery_wait(Duration::MAX)
    .with_notice_sink(|_: &Notice<'_>| {});
    let pending = engine.start_account_recovery(&user).await.unwrap();
    assert_eq!(pending.ready_at, T0 + Duration::from_secs(30 * 24 * 3600));
    for _ in 0..2 {
        assert!(engine.cancel_account_recovery(&user).await.unwrap());
        engine.start_account_recovery(&user).await.unwrap();
    }
    assert!(engine.cancel_account_recovery(&user).await.unwrap());
    assert!(matches!(
        engine.start_account_recovery(&user).await,
        Err(ChallengeError::LockedOut { .. })
    ));
}

/// Review finding: after the last strong factor was removed, recovery codes
/// stayed and still reached level 2. They are a backup: they go with it.
#[tokio::test]
async fn recovery_codes_go_with_the_last_factor_they_back() {
    let s = setup(AttemptLimits::default());
    let user = alice();
    s.enroll_totp(&user).await;
    s.engine.generate_recovery_codes(&user, 10).await.unwrap();
    assert_eq!(s.engine.recovery_codes_left(&user).await.unwrap(), 10);
    s.engine.remove_totp(&user).await.unwrap();
    assert_eq!(s.engine.recovery_codes_left(&user).await.unwrap(), 0);
    assert!(s.noticed(NoticeKind::FactorRemoved, Method::RecoveryCode));
}
