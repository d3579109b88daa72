//! Slow guessing, method switching and one-time-code guessing: the budgets
//! that no window resets (issue #13, finding 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, AttemptLimits, ChallengeError, Channel, Engine, Event, EventKind,
    InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, Notice, NoticeKind,
    RecordingSender, TotpSecret,
};
use stepup_core::{Key, KeyId, KeyRing, Method, Subject, TestClock, Timestamp, TokenConfig};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

struct Setup {
    engine: Engine<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>,
    clock: TestClock,
    secret: TotpSecret,
    events: Arc<Mutex<Vec<Event>>>,
    notices: Arc<Mutex<Vec<NoticeKind>>>,
    codes: RecordingSender,
}

async fn setup(limits: AttemptLimits) -> Setup {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let alice = Subject::new("alice");
    {
        use stepup_challenge::FactorStore;
        factors
            .set_totp_secret(&alice, secret.clone())
            .await
            .unwrap();
        factors
            .set_recovery_digests(&alice, vec![[1u8; 32]])
            .await
            .unwrap();
    }
    factors
        .set_code_destination(&alice, Channel::Email, "alice@example.com")
        .unwrap();
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let notices: Arc<Mutex<Vec<NoticeKind>>> = Arc::default();
    let (e, n) = (events.clone(), notices.clone());
    let codes = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
    .with_code_sender(codes.clone())
    .with_limits(limits)
    .with_event_sink(move |ev: &Event| e.lock().unwrap().push(ev.clone()))
    .with_notice_sink(move |notice: &Notice<'_>| n.lock().unwrap().push(notice.kind));
    Setup {
        engine,
        clock,
        secret,
        events,
        notices,
        codes,
    }
}

/// Limits where only the consecutive-failure cap (3) can bite.
fn capped_at_three() -> AttemptLimits {
    AttemptLimits::default()
        .consecutive_failures(3)
        .per_subject(50, Duration::from_secs(900))
        .across_methods(50, Duration::from_secs(900))
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

impl Setup {
    fn code(&self) -> String {
        self.engine
            .totp_config()
            .code_at(&self.secret, self.clock.now_secs())
            .unwrap()
    }

    /// A wrong TOTP code for now (not one of the ±1 steps' codes).
    fn wrong(&self) -> String {
        let t = self.clock.now_secs();
        let taken: Vec<String> = [t - 30, t, t + 30]
            .iter()
            .map(|t| self.engine.totp_config().code_at(&self.secret, *t).unwrap())
            .collect();
        (0..1000)
            .map(|n| format!("{n:06}"))
            .find(|c| !taken.contains(c))
            .unwrap()
    }
}

trait Secs {
    fn now_secs(&self) -> u64;
}

impl Secs for TestClock {
    fn now_secs(&self) -> u64 {
        use stepup_core::Clock;
        self.now().as_unix_seconds()
    }
}

/// 101 failures spread over many windows never pass: the 101st attempt is
/// refused even with the right code, the method stays disabled across
/// windows and days, and the user hears of it.
#[tokio::test]
async fn slow_guessing_under_every_window_stops_at_one_hundred() {
    let s = setup(AttemptLimits::default()).await;
    let user = alice();
    let mut failures = 0;
    // Four guesses per 15-minute window: never a window lockout.
    while failures < 100 {
        for _ in 0..4 {
            if failures == 100 {
                break;
            }
            let r = s.engine.step_up_totp(Attempt::new(&user), &s.wrong()).await;
            assert!(matches!(r, Err(ChallengeError::Wrong { .. })), "{r:?}");
            failures += 1;
        }
        s.clock.advance(Duration::from_secs(16 * 60));
    }
    let right = s.engine.step_up_totp(Attempt::new(&user), &s.code()).await;
    assert_eq!(right.unwrap_err(), ChallengeError::Disabled(Method::Totp));
    s.clock.advance(Duration::from_secs(3 * 24 * 3600));
    let later = s.engine.step_up_totp(Attempt::new(&user), &s.code()).await;
    assert_eq!(later.unwrap_err(), ChallengeError::Disabled(Method::Totp));
    assert!(
        s.notices
            .lock()
            .unwrap()
            .contains(&NoticeKind::MethodDisabled)
    );
    let disabled = s
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::Disabled)
        .count();
    assert!(disabled >= 1);
    // Another session is refused too: the count is per subject.
    let other = Subject::new("alice").with_session("s-2");
    assert_eq!(
        s.engine
            .step_up_totp(Attempt::new(&other), &s.code())
            .await
            .unwrap_err(),
        ChallengeError::Disabled(Method::Totp)
    );
    // The application's reset enables it again.
    s.engine.reset_attempts(&user, Method::Totp).await.unwrap();
    s.clock.advance(Duration::from_secs(30));
    s.engine
        .step_up_totp(Attempt::new(&user), &s.code())
        .await
        .unwrap();
}

/// A lower cap may be configured, never a higher one; a success with
/// another method at least as strong enables the method again, a weaker
/// one (the password) does not.
#[tokio::test]
async fn a_disabled_method_comes_back_after_a_success_with_another_as_strong() {
    let s = setup(capped_at_three()).await;
    let user = alice();
    for _ in 0..3 {
        s.engine
            .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
            .await
            .unwrap_err();
    }
    let refused = s
        .engine
        .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
        .await;
    assert_eq!(
        refused.unwrap_err(),
        ChallengeError::Disabled(Method::RecoveryCode)
    );
    // The password (rank 1) does not enable a rank-2 method.
    s.engine
        .step_up_password(Attempt::new(&user), "wonderland")
        .await
        .unwrap();
    assert_eq!(
        s.engine
            .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
            .await
            .unwrap_err(),
        ChallengeError::Disabled(Method::RecoveryCode)
    );
    // TOTP (rank 2) does.
    s.engine
        .step_up_totp(Attempt::new(&user), &s.code())
        .await
        .unwrap();
    assert!(matches!(
        s.engine
            .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
            .await,
        Err(ChallengeError::Wrong { .. })
    ));
    assert_eq!(
        AttemptLimits::default()
            .consecutive_failures(500)
            .consecutive_cap(),
        100
    );
}

/// Switching methods does not multiply the guesses: one budget across all
/// second-factor methods (10 in 15 minutes by default).
#[tokio::test]
async fn switching_methods_shares_one_budget() {
    let s = setup(AttemptLimits::default()).await;
    let user = alice();
    for _ in 0..4 {
        assert!(matches!(
            s.engine.step_up_totp(Attempt::new(&user), &s.wrong()).await,
            Err(ChallengeError::Wrong { .. })
        ));
    }
    for _ in 0..4 {
        assert!(matches!(
            s.engine
                .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
                .await,
            Err(ChallengeError::Wrong { .. })
        ));
    }
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            s.engine
                .step_up_code(
                    Attempt::new(&user),
                    Channel::Email,
                    &sent.challenge_id,
                    "000000"
                )
                .await,
            Err(ChallengeError::Wrong { .. } | ChallengeError::NoPendingCode)
        ));
    }
    // Ten failures across three methods: the eleventh attempt, with any
    // method and even the right code, is locked out.
    let r = s.engine.step_up_totp(Attempt::new(&user), &s.code()).await;
    assert!(matches!(r, Err(ChallengeError::LockedOut { .. })), "{r:?}");
    // The password is not a second factor and has its own budget.
    s.engine
        .step_up_password(Attempt::new(&user), "wonderland")
        .await
        .unwrap();
}

/// A pending e-mail code survives three wrong guesses, not twenty: then
/// it is void, and even the right code is refused.
#[tokio::test]
async fn a_code_is_void_after_three_wrong_guesses() {
    let s = setup(AttemptLimits::default()).await;
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right = s.codes.last_code_to("alice@example.com").unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        assert!(matches!(
            s.engine
                .step_up_code(
                    Attempt::new(&user),
                    Channel::Email,
                    &sent.challenge_id,
                    wrong
                )
                .await,
            Err(ChallengeError::Wrong { .. })
        ));
    }
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                &right
            )
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCode
    );
}

/// Clients learn only whether few attempts are left, never how many.
#[tokio::test]
async fn the_exact_attempts_left_are_not_told() {
    let s = setup(AttemptLimits::default()).await;
    let user = alice();
    let mut hints = Vec::new();
    for _ in 0..5 {
        match s.engine.step_up_totp(Attempt::new(&user), &s.wrong()).await {
            Err(ChallengeError::Wrong { few_left }) => hints.push(few_left),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(hints, [false, false, true, true, true]);
    let text = ChallengeError::Wrong { few_left: true }.to_string();
    assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
}

/// The per-address budget counts failures: many users behind one address
/// who succeed never lock each other out; failures from one IPv6 /64 count
/// together whatever the interface id.
#[tokio::test]
async fn the_address_budget_counts_failures_by_prefix() {
    let s = setup(AttemptLimits::default().per_address(5, Duration::from_secs(900))).await;
    let nat: IpAddr = "192.0.2.7".parse().unwrap();
    let user = alice();
    for _ in 0..20 {
        s.engine
            .step_up_password(Attempt::new(&user).from_address(nat), "wonderland")
            .await
            .unwrap();
    }
    for i in 0..5u16 {
        let ip: IpAddr = format!("2001:db8:5:6::{:x}", i + 1).parse().unwrap();
        let stranger = Subject::new(format!("stranger-{i}"));
        s.engine
            .step_up_password(Attempt::new(&stranger).from_address(ip), "guess")
            .await
            .unwrap_err();
    }
    let same_64: IpAddr = "2001:db8:5:6:aaaa::1".parse().unwrap();
    assert!(matches!(
        s.engine
            .step_up_password(Attempt::new(&user).from_address(same_64), "wonderland")
            .await,
        Err(ChallengeError::LockedOut { .. })
    ));
    let next_64: IpAddr = "2001:db8:5:7::1".parse().unwrap();
    s.engine
        .step_up_password(Attempt::new(&user).from_address(next_64), "wonderland")
        .await
        .unwrap();
}

/// Another method's success does not reset a method's consecutive count
/// while it is still enabled: a user's daily TOTP never hides an
/// attacker's slow recovery-code guessing.
#[tokio::test]
async fn other_successes_do_not_reset_a_running_count() {
    let s = setup(capped_at_three()).await;
    let user = alice();
    let guess = || {
        s.engine
            .step_up_recovery_code(Attempt::new(&user), "AAAA-AAAA-AAAA-AAAA")
    };
    for _ in 0..2 {
        assert!(matches!(guess().await, Err(ChallengeError::Wrong { .. })));
    }
    s.engine
        .step_up_totp(Attempt::new(&user), &s.code())
        .await
        .unwrap();
    assert!(matches!(guess().await, Err(ChallengeError::Wrong { .. })));
    assert_eq!(
        guess().await.unwrap_err(),
        ChallengeError::Disabled(Method::RecoveryCode)
    );
}

/// Review finding: a password success used to re-enable a disabled e-mail
/// code (ranks tie at 1), so the cap never held. Only a factor of the user's
/// own brings a disabled method back.
#[tokio::test]
async fn the_password_or_a_mailbox_code_never_re_enables_a_method() {
    let s = setup(capped_at_three()).await;
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right = s.codes.last_code_to("alice@example.com").unwrap();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..3 {
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                wrong,
            )
            .await
            .unwrap_err();
    }
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let refused = s
        .engine
        .step_up_code(
            Attempt::new(&user),
            Channel::Email,
            &sent.challenge_id,
            wrong,
        )
        .await;
    assert_eq!(
        refused.unwrap_err(),
        ChallengeError::Disabled(Method::EmailCode)
    );
    s.engine
        .step_up_password(Attempt::new(&user), "wonderland")
        .await
        .unwrap();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right = s.codes.last_code_to("alice@example.com").unwrap();
    assert_eq!(
        s.engine
            .step_up_code(
                Attempt::new(&user),
                Channel::Email,
                &sent.challenge_id,
                &right
            )
            .await
            .unwrap_err(),
        ChallengeError::Disabled(Method::EmailCode),
        "the password does not bring it back"
    );
    // The user is told once, when it was disabled — not on every attempt.
    let told = s
        .notices
        .lock()
        .unwrap()
        .iter()
        .filter(|n| **n == NoticeKind::MethodDisabled)
        .count();
    assert_eq!(told, 1);
    // A disabled password: an e-mail code (the mailbox) does not bring it
    // back; TOTP, a factor of the user's own, does.
    for _ in 0..4 {
        let _ = s.engine.step_up_password(Attempt::new(&user), "nope").await;
    }
    assert_eq!(
        s.engine
            .step_up_password(Attempt::new(&user), "wonderland")
            .await
            .unwrap_err(),
        ChallengeError::Disabled(Method::Password)
    );
    s.engine
        .reset_attempts(&user, Method::EmailCode)
        .await
        .unwrap();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right = s.codes.last_code_to("alice@example.com").unwrap();
    s.engine
        .step_up_code(
            Attempt::new(&user),
            Channel::Email,
            &sent.challenge_id,
            &right,
        )
        .await
        .unwrap();
    assert_eq!(
        s.engine
            .step_up_password(Attempt::new(&user), "wonderland")
            .await
            .unwrap_err(),
        ChallengeError::Disabled(Method::Password),
        "a mailbox code does not bring it back"
    );
    s.engine
        .step_up_totp(Attempt::new(&user), &s.code())
        .await
        .unwrap();
    s.engine
        .step_up_password(Attempt::new(&user), "wonderland")
        .await
        .unwrap();
}

/// Review finding: racing guesses at one code were all compared before the
/// per-code count moved; now the count moves first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_guesses_at_one_code_stay_within_its_allowance() {
    let s = Arc::new(
        setup(
            AttemptLimits::default()
                .per_subject(50, Duration::from_secs(900))
                .across_methods(50, Duration::from_secs(900)),
        )
        .await,
    );
    let user = alice();
    let sent = s
        .engine
        .send_code(Attempt::new(&user), Channel::Email)
        .await
        .unwrap();
    let right: u32 = s
        .codes
        .last_code_to("alice@example.com")
        .unwrap()
        .parse()
        .unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..20u32 {
        let s = s.clone();
        let user = user.clone();
        let id = sent.challenge_id.clone();
        let guess = format!("{:06}", (right + 1 + i) % 1_000_000);
        racers.spawn(async move {
            s.engine
                .step_up_code(Attempt::new(&user), Channel::Email, &id, &guess)
                .await
        });
    }
    let results = racers.join_all().await;
    let compared = results
        .iter()
        .filter(|r| matches!(r, Err(ChallengeError::Wrong { .. })))
        .count();
    assert!(
        compared <= 3,
        "{compared} guesses compared against one code"
    );
}
