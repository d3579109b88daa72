//! The challenge engine's rules, each with a test that fails if it breaks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, AttemptLimits, ChallengeError, Engine, Event, EventKind, InsecureFixedPasswords,
    MemoryFactorStore, MemoryStateStore, StateStore, StoreError, TotpConfig, TotpSecret,
};
use stepup_core::{
    Clock, Decision, Key, KeyId, KeyRing, Method, Policy, Subject, TestClock, Timestamp,
    TokenConfig,
};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

type TestEngine<S = MemoryStateStore> = Engine<MemoryFactorStore, S, InsecureFixedPasswords>;

struct Setup<S: StateStore = MemoryStateStore> {
    engine: Arc<TestEngine<S>>,
    config: TokenConfig,
    clock: TestClock,
    secret: TotpSecret,
    events: Arc<Mutex<Vec<Event>>>,
    factors: MemoryFactorStore,
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

fn setup() -> Setup {
    let clock = TestClock::new(T0);
    setup_with(MemoryStateStore::new(clock.clone()), clock)
}

fn setup_with<S: StateStore>(state: S, clock: TestClock) -> Setup<S> {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = events.clone();
    let engine = Engine::new(config.issuer(), factors.clone(), state)
        .with_passwords(InsecureFixedPasswords::new([(
            "alice",
            "correct horse battery staple",
        )]))
        .with_clock(clock.clone())
        .with_totp(TotpConfig::new("Example Bank"))
        .with_event_sink(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    Setup {
        engine: Arc::new(engine),
        config,
        clock,
        secret,
        events,
        factors,
    }
}

impl<S: StateStore> Setup<S> {
    async fn enroll(&self, subject: &Subject) {
        use stepup_challenge::FactorStore;
        self.factors
            .set_totp_secret(subject, self.secret.clone())
            .await
            .unwrap();
    }

    fn code(&self, offset_secs: i64) -> String {
        let t = (self.clock.now().as_unix_seconds() as i64 + offset_secs) as u64;
        self.engine.totp_config().code_at(&self.secret, t).unwrap()
    }

    async fn totp(
        &self,
        user: &Subject,
        code: &str,
    ) -> Result<stepup_core::IssuedToken, ChallengeError> {
        self.engine.step_up_totp(Attempt::new(user), code).await
    }

    fn count(&self, kind: EventKind, reason: Option<&str>) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == kind && (reason.is_none() || e.reason == reason))
            .count()
    }
}

#[tokio::test]
async fn a_totp_step_up_passes_the_gate_at_level_two() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let token = s.totp(&user, &s.code(0)).await.unwrap();
    let policy = Policy::level(2).max_age(Duration::from_secs(300));
    let decision = s
        .config
        .gate()
        .check(&user, Some(token.value()), &policy, s.clock.now());
    let Decision::Allow(a) = decision else {
        panic!("{decision:?}")
    };
    assert_eq!(a.proven_at(Method::Totp), Some(s.clock.now()));
    assert_eq!(s.count(EventKind::Succeeded, None), 1);
}

#[tokio::test]
async fn still_fresh_proofs_are_kept() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let first = s
        .engine
        .step_up_password(Attempt::new(&user), "correct horse battery staple")
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(60));
    let second = s
        .engine
        .step_up_totp(
            Attempt::new(&user).previous_token(Some(first.value())),
            &s.code(0),
        )
        .await
        .unwrap();
    let methods: Vec<Method> = second.assurance().methods().collect();
    assert!(methods.contains(&Method::Password) && methods.contains(&Method::Totp));
}

#[tokio::test]
async fn a_used_code_and_older_codes_are_refused() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let now_code = s.code(0);
    s.totp(&user, &now_code).await.unwrap();
    assert_eq!(
        s.totp(&user, &now_code).await.unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // The previous step's code is still inside the window, but older.
    let older = s.code(-30);
    assert_eq!(
        s.totp(&user, &older).await.unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // A newer one is fine.
    s.clock.advance(Duration::from_secs(30));
    s.totp(&user, &s.code(0)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_racing_submissions_of_one_code_give_one_token() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let code = s.code(0);
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let engine = s.engine.clone();
            let (user, code) = (user.clone(), code.clone());
            tokio::spawn(async move { engine.step_up_totp(Attempt::new(&user), &code).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ChallengeError::AlreadyUsed | ChallengeError::LockedOut { .. }) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_wrong_codes_are_mostly_never_evaluated() {
    // Several rounds, as races are timing-dependent.
    for _ in 0..5 {
        thousand_wrong_codes().await;
    }
}

async fn thousand_wrong_codes() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let right = s.code(0);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let engine = s.engine.clone();
            let user = user.clone();
            let ip: IpAddr = format!("10.0.{}.{}", i / 250, i % 250).parse().unwrap();
            tokio::spawn(async move {
                engine
                    .step_up_totp(Attempt::new(&user).from_address(ip), wrong)
                    .await
            })
        })
        .collect();
    let mut locked = 0;
    for t in tasks {
        match t.await.unwrap() {
            Err(ChallengeError::LockedOut { .. }) => locked += 1,
            Err(ChallengeError::Wrong { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    let evaluated = s.count(EventKind::Failed, Some("wrong"));
    assert!(evaluated <= 5, "{evaluated} wrong codes were checked");
    assert_eq!(locked + evaluated, 1000);
}

#[tokio::test]
async fn a_lockout_answers_right_and_wrong_codes_alike_then_lifts() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    for left in (0..5).rev() {
        assert_eq!(
            s.totp(&user, "000000").await.unwrap_err(),
            ChallengeError::Wrong {
                few_left: left <= 2
            }
        );
    }
    let locked_wrong = s.totp(&user, "000000").await.unwrap_err();
    let locked_right = s.totp(&user, &s.code(0)).await.unwrap_err();
    let until = T0 + Duration::from_secs(60);
    assert_eq!(locked_wrong, ChallengeError::LockedOut { until });
    assert_eq!(
        locked_right, locked_wrong,
        "a right code gets the same answer"
    );
    // Across sessions: another session of the same user is locked too.
    let other_session = Subject::new("alice").with_session("s-2");
    assert!(matches!(
        s.totp(&other_session, &s.code(0)).await,
        Err(ChallengeError::LockedOut { .. })
    ));
    s.clock.advance(Duration::from_secs(61));
    s.totp(&user, &s.code(0)).await.unwrap();
    assert!(s.count(EventKind::LockedOut, None) >= 2);
}

#[tokio::test]
async fn lockouts_double_and_success_resets() {
    let s = setup();
    let user = alice();
    let wrong = |s: &Setup| {
        let engine = s.engine.clone();
        let user = user.clone();
        async move { engine.step_up_password(Attempt::new(&user), "nope").await }
    };
    for _ in 0..5 {
        wrong(&s).await.unwrap_err();
    }
    assert_eq!(
        wrong(&s).await.unwrap_err(),
        ChallengeError::LockedOut {
            until: T0 + Duration::from_secs(60)
        }
    );
    s.clock.advance(Duration::from_secs(61));
    for _ in 0..5 {
        wrong(&s).await.unwrap_err();
    }
    let second = s.clock.now() + Duration::from_secs(120);
    assert_eq!(
        wrong(&s).await.unwrap_err(),
        ChallengeError::LockedOut { until: second }
    );
    s.clock.advance(Duration::from_secs(121));
    s.engine
        .step_up_password(Attempt::new(&user), "correct horse battery staple")
        .await
        .unwrap();
    // After a success the budget and the backoff start over.
    for left in (0..5).rev() {
        assert_eq!(
            wrong(&s).await.unwrap_err(),
            ChallengeError::Wrong {
                few_left: left <= 2
            }
        );
    }
    assert_eq!(
        wrong(&s).await.unwrap_err(),
        ChallengeError::LockedOut {
            until: s.clock.now() + Duration::from_secs(60)
        }
    );
}

#[tokio::test]
async fn one_address_cannot_lock_out_many_users_quietly() {
    let s = setup();
    let limits = AttemptLimits::default().per_address(20, Duration::from_secs(900));
    let engine = Engine::new(
        s.config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(s.clock.clone()),
    )
    .with_clock(s.clock.clone())
    .with_limits(limits)
    .with_passwords(InsecureFixedPasswords::new([]));
    let ip: IpAddr = "192.0.2.66".parse().unwrap();
    let mut locked_at = None;
    for i in 0..30 {
        let victim = Subject::new(format!("user-{i}"));
        let r = engine
            .step_up_password(Attempt::new(&victim).from_address(ip), "guess")
            .await;
        if matches!(r, Err(ChallengeError::LockedOut { .. })) && locked_at.is_none() {
            locked_at = Some(i);
        }
    }
    assert_eq!(
        locked_at,
        Some(20),
        "the 21st attempt from one address is refused"
    );
    // The victims themselves are not locked out from elsewhere.
    let r = engine
        .step_up_password(Attempt::new(&Subject::new("user-3")), "guess")
        .await;
    assert_eq!(r.unwrap_err(), ChallengeError::Wrong { few_left: false });
}

#[tokio::test]
async fn the_enrollment_code_cannot_be_replayed_as_a_step_up() {
    let s = setup();
    let user = alice();
    let enrollment = s
        .engine
        .start_totp_enrollment(&user, "alice@example.com")
        .await
        .unwrap();
    assert!(
        enrollment.otpauth_uri().contains("Example%20Bank")
            || enrollment.otpauth_uri().contains("Example")
    );
    assert_eq!(&enrollment.qr_png()[..4], b"\x89PNG");
    let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    let code = s
        .engine
        .totp_config()
        .code_at(&secret, s.clock.now().as_unix_seconds())
        .unwrap();
    s.engine
        .confirm_totp_enrollment(Attempt::new(&user), &code)
        .await
        .unwrap();
    assert_eq!(
        s.totp(&user, &code).await.unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // The enrollment is used up.
    assert_eq!(
        s.engine
            .confirm_totp_enrollment(Attempt::new(&user), &code)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingEnrollment
    );
    assert_eq!(s.count(EventKind::Enrolled, None), 1);
    s.clock.advance(Duration::from_secs(30));
    let next = s
        .engine
        .totp_config()
        .code_at(&secret, s.clock.now().as_unix_seconds())
        .unwrap();
    s.totp(&user, &next).await.unwrap();
}

#[tokio::test]
async fn a_pending_enrollment_expires() {
    let s = setup();
    let user = alice();
    let enrollment = s
        .engine
        .start_totp_enrollment(&user, "alice")
        .await
        .unwrap();
    let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    s.clock.advance(Duration::from_secs(601));
    let code = s
        .engine
        .totp_config()
        .code_at(&secret, s.clock.now().as_unix_seconds())
        .unwrap();
    assert_eq!(
        s.engine
            .confirm_totp_enrollment(Attempt::new(&user), &code)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingEnrollment
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_code_works_once_even_when_raced() {
    let s = setup();
    let user = alice();
    let codes = s.engine.generate_recovery_codes(&user, 10).await.unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(s.engine.recovery_codes_left(&user).await.unwrap(), 10);
    let typed = codes[3].grouped().to_lowercase();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let engine = s.engine.clone();
            let (user, typed) = (user.clone(), typed.clone());
            tokio::spawn(async move {
                engine
                    .step_up_recovery_code(Attempt::new(&user), &typed)
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
    assert_eq!(s.engine.recovery_codes_left(&user).await.unwrap(), 9);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_never_counted() {
    let s = setup();
    let user = alice();
    s.enroll(&user).await;
    let huge = "9".repeat(100_000);
    for bad in [
        "",
        "12345",
        "1234567",
        "+12345",
        "12 345",
        "１２３４５６",
        huge.as_str(),
        "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
    ] {
        assert!(
            matches!(s.totp(&user, bad).await, Err(ChallengeError::Format(_))),
            "{bad:?}"
        );
    }
    for bad in [
        "",
        "ABCD EFGH JKMN PQRS",
        huge.as_str(),
        "ÄBCD-EFGH-JKMN-PQRS",
    ] {
        assert!(matches!(
            s.engine
                .step_up_recovery_code(Attempt::new(&user), bad)
                .await,
            Err(ChallengeError::Format(_))
        ));
    }
    assert!(matches!(
        s.engine.step_up_password(Attempt::new(&user), "").await,
        Err(ChallengeError::Format(_))
    ));
    // None of that used up the budget.
    assert_eq!(
        s.totp(&user, "000000").await.unwrap_err(),
        ChallengeError::Wrong { few_left: false }
    );
    let stranger = Subject::new("nobody");
    assert_eq!(
        s.totp(&stranger, "123456").await.unwrap_err(),
        ChallengeError::NotEnrolled(Method::Totp)
    );
    assert_eq!(
        s.engine
            .step_up_recovery_code(Attempt::new(&stranger), "ABCD-EFGH-JKMN-PQRS")
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(Method::RecoveryCode)
    );
}

/// A state store whose writes fail: a step-up must fail closed.
#[derive(Clone)]
struct BrokenStore(MemoryStateStore);

impl StateStore for BrokenStore {
    async fn advance(&self, _: &str, _: u64, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError::new("state", "connection refused"))
    }
    async fn increment(&self, k: &str, w: Duration) -> Result<u64, StoreError> {
        self.0.increment(k, w).await
    }
    async fn put(&self, k: &str, v: Vec<u8>, t: Duration) -> Result<(), StoreError> {
        self.0.put(k, v, t).await
    }
    async fn get(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(k).await
    }
    async fn take(&self, k: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.take(k).await
    }
    async fn remove(&self, k: &str) -> Result<(), StoreError> {
        self.0.remove(k).await
    }
}

#[tokio::test]
async fn a_failed_store_write_never_records_a_proof() {
    let clock = TestClock::new(T0);
    let s = setup_with(BrokenStore(MemoryStateStore::new(clock.clone())), clock);
    let user = alice();
    s.enroll(&user).await;
    let err = s.totp(&user, &s.code(0)).await.unwrap_err();
    assert!(matches!(err, ChallengeError::Store(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the state store failed: connection refused"
    );
    assert_eq!(s.count(EventKind::Succeeded, None), 0);
    assert_eq!(s.count(EventKind::Failed, Some("store")), 1);
}

#[tokio::test]
async fn the_memory_store_expires_entries() {
    let clock = TestClock::new(T0);
    let store = MemoryStateStore::new(clock.clone());
    store
        .put("k", b"v".to_vec(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        store
            .advance("s", 5, Duration::from_secs(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance("s", 5, Duration::from_secs(10))
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance("s", 4, Duration::from_secs(10))
            .await
            .unwrap()
    );
    assert_eq!(
        store.increment("c", Duration::from_secs(10)).await.unwrap(),
        1
    );
    assert_eq!(
        store.increment("c", Duration::from_secs(10)).await.unwrap(),
        2
    );
    assert_eq!(store.len(), 3);
    clock.advance(Duration::from_secs(10));
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(
        store
            .advance("s", 1, Duration::from_secs(10))
            .await
            .unwrap(),
        "an expired step no longer blocks"
    );
    assert_eq!(
        store.increment("c", Duration::from_secs(10)).await.unwrap(),
        1
    );
    assert_eq!(store.take("k").await.unwrap(), None);
}
