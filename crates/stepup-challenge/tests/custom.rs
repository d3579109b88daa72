//! A code-shaped custom method at the engine: counted before the factor
//! checks it, locked out like any method, listed among the enrolled ones,
//! minted with its own method, its level and `amr` from the level table.
//! An approval-shaped one: a wrong number on the other device is a failed
//! attempt (locked out, then disabled, told to the event sink), and nothing
//! is pushed while the method is locked out or disabled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use std::time::Duration;

use stepup_challenge::{
    Approval, ApprovalRequest, ApprovalState, Attempt, AttemptLimits, ChallengeError, CustomFactor,
    CustomKind, Engine, Event, EventKind, MemoryFactorStore, MemoryStateStore, StoreError,
};
use stepup_core::{
    Key, KeyId, KeyRing, LevelTable, Method, Subject, TestClock, Timestamp, TokenConfig,
};
use stepup_http::BoxFuture;

/// A hardware token whose code is always 424242; remembers what it was
/// asked.
#[derive(Clone, Default)]
struct Token {
    asked: Arc<Mutex<Vec<String>>>,
}

fn token_method() -> Method {
    Method::custom("token").unwrap()
}

impl CustomFactor for Token {
    fn method(&self) -> Method {
        token_method()
    }
    fn title(&self) -> &str {
        "Your hardware token"
    }
    fn kind(&self) -> CustomKind {
        CustomKind::Code { max_len: 8 }
    }
    fn enrolled<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(subject.id() == "alice") })
    }
    fn verify<'a>(
        &'a self,
        _: &'a Subject,
        code: &'a str,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(code.to_owned());
            Ok(code == "424242")
        })
    }
}

fn engine(token: Token) -> Engine<MemoryFactorStore, MemoryStateStore> {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let levels = LevelTable::nist().with_custom_method(token_method(), 3, &["hwk"]);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ))
    .with_levels(levels);
    Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock)
    .with_limits(AttemptLimits::default())
    .with_custom_factor(token)
}

#[tokio::test]
async fn a_custom_code_is_counted_then_checked_and_minted_as_its_method() {
    let token = Token::default();
    let engine = engine(token.clone());
    let alice = Subject::new("alice").with_session("s1");
    assert!(
        engine
            .enrolled_methods(&alice)
            .await
            .unwrap()
            .contains(&token_method())
    );
    assert!(
        engine
            .enrolled_methods(&Subject::new("bob"))
            .await
            .unwrap()
            .is_empty()
    );

    let issued = engine
        .step_up_custom_code(Attempt::new(&alice), token_method(), "424242")
        .await
        .unwrap();
    let assurance = issued.assurance();
    assert_eq!(assurance.methods().collect::<Vec<_>>(), [token_method()]);
    assert_eq!(assurance.level(), 3, "its level from the table");
    assert_eq!(assurance.amr(), ["hwk"]);

    // Too long: refused before counting or asking the factor.
    let asked = token.asked.lock().unwrap().len();
    assert!(matches!(
        engine
            .step_up_custom_code(Attempt::new(&alice), token_method(), "123456789")
            .await,
        Err(ChallengeError::Format(_))
    ));
    assert_eq!(token.asked.lock().unwrap().len(), asked);
    // Wrong codes are counted like any method's: then a lockout, and the
    // factor is not asked any more.
    let mut locked = false;
    for _ in 0..10 {
        match engine
            .step_up_custom_code(Attempt::new(&alice), token_method(), "000000")
            .await
        {
            Err(ChallengeError::Wrong { .. }) => {}
            Err(ChallengeError::LockedOut { .. }) => {
                locked = true;
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(locked, "locked out after the method's budget");
    let asked = token.asked.lock().unwrap().len();
    assert!(matches!(
        engine
            .step_up_custom_code(Attempt::new(&alice), token_method(), "424242")
            .await,
        Err(ChallengeError::LockedOut { .. })
    ));
    assert_eq!(
        token.asked.lock().unwrap().len(),
        asked,
        "a locked-out user never reaches the factor"
    );
}

#[tokio::test]
async fn a_custom_method_is_only_for_whom_it_is_set_up() {
    let engine = engine(Token::default());
    let bob = Subject::new("bob");
    assert_eq!(
        engine
            .step_up_custom_code(Attempt::new(&bob), token_method(), "424242")
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(token_method())
    );
    let other = Method::custom("other").unwrap();
    assert_eq!(
        engine
            .step_up_custom_code(Attempt::new(&bob), other, "424242")
            .await
            .unwrap_err(),
        ChallengeError::NotEnrolled(other)
    );
    // A code factor starts no approval.
    assert!(
        engine
            .start_approval(
                Attempt::new(&Subject::new("alice")),
                token_method(),
                "/step-up"
            )
            .await
            .is_err()
    );
}

/// An approval on another device; remembers the links it delivered.
#[derive(Clone, Default)]
struct Phone {
    links: Arc<Mutex<Vec<String>>>,
}

fn phone_method() -> Method {
    Method::custom("phone").unwrap()
}

impl CustomFactor for Phone {
    fn method(&self) -> Method {
        phone_method()
    }
    fn title(&self) -> &str {
        "Approve on your phone"
    }
    fn kind(&self) -> CustomKind {
        CustomKind::Approval {
            lifetime: Duration::from_secs(120),
        }
    }
    fn enrolled<'a>(&'a self, _: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async { Ok(true) })
    }
    fn request_approval<'a>(
        &'a self,
        request: ApprovalRequest<'a>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.links.lock().unwrap().push(request.approve_url);
            Ok(())
        })
    }
}

impl Phone {
    fn sent(&self) -> usize {
        self.links.lock().unwrap().len()
    }
    fn last_secret(&self) -> String {
        let links = self.links.lock().unwrap();
        links
            .last()
            .unwrap()
            .split("secret=")
            .nth(1)
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn wrong_numbers_lock_then_disable_an_approval_and_stop_the_pushes() {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let heard = events.clone();
    let phone = Phone::default();
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_limits(
        AttemptLimits::default()
            .per_subject(2, Duration::from_secs(900))
            .consecutive_failures(3),
    )
    .with_event_sink(move |e: &Event| heard.lock().unwrap().push(e.clone()))
    .with_custom_factor(phone.clone());
    let alice = Subject::new("alice").with_session("s1");
    let method = phone_method();
    // One push answered with a wrong number: void, a failed attempt.
    let wrong = |n: u8| if n == 42 { "43" } else { "42" };
    let answer = async |engine: &Engine<MemoryFactorStore, MemoryStateStore>| {
        let started = engine
            .start_approval(Attempt::new(&alice), method, "/step-up")
            .await?;
        let approval = engine
            .approve(method, &phone.last_secret(), wrong(started.number))
            .await
            .unwrap();
        assert_eq!(approval, Approval::WrongNumber);
        assert_eq!(
            engine
                .approval_state(&alice, method, &started.id)
                .await
                .unwrap(),
            ApprovalState::Refused
        );
        Ok::<_, ChallengeError>(started)
    };
    // Counted like wrong codes: two are allowed, the third locks.
    for _ in 0..3 {
        answer(&engine).await.unwrap();
    }
    // So the next start finds the method locked, and nothing is pushed.
    let sent = phone.sent();
    let locked = engine
        .start_approval(Attempt::new(&alice), method, "/step-up")
        .await;
    assert!(
        matches!(locked, Err(ChallengeError::LockedOut { .. })),
        "{locked:?}"
    );
    assert_eq!(phone.sent(), sent, "no push while locked out");
    // After the lockout, more wrong numbers in a row (past three) disable it.
    clock.advance(Duration::from_secs(61));
    answer(&engine).await.unwrap();
    answer(&engine).await.unwrap();
    let disabled = engine
        .start_approval(Attempt::new(&alice), method, "/step-up")
        .await;
    assert_eq!(disabled, Err(ChallengeError::Disabled(method)));
    assert_eq!(phone.sent(), sent + 2, "no push while disabled");
    // The application heard each wrong number, named by the subject's
    // digest like every event.
    let events = events.lock().unwrap();
    let wrong_numbers: Vec<&Event> = events
        .iter()
        .filter(|e| e.reason == Some("wrong_number"))
        .collect();
    assert_eq!(wrong_numbers.len(), 5);
    assert!(wrong_numbers.iter().all(|e| e.kind == EventKind::Failed
        && e.method == Some(method)
        && e.subject == events[0].subject
        && !e.subject.contains("alice")));
}
