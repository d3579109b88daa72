//! A code-shaped custom method at the engine: counted before the factor
//! checks it, locked out like any method, listed among the enrolled ones,
//! minted with its own method, its level and `amr` from the level table.
//! An approval-shaped one: a wrong number on the other device refuses it
//! (told to the event and notice sinks), three suspend the method's
//! approvals for a day, and a link posted to another method's route is
//! refused without being used up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use std::time::Duration;

use stepup_challenge::{
    Approval, ApprovalRequest, ApprovalState, Attempt, AttemptLimits, ChallengeError, CustomFactor,
    CustomKind, Engine, Event, EventKind, MemoryFactorStore, MemoryStateStore, Notice, NoticeKind,
    StoreError,
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
#[derive(Clone)]
struct Phone {
    links: Arc<Mutex<Vec<String>>>,
    name: &'static str,
}

impl Default for Phone {
    fn default() -> Self {
        Phone {
            links: Arc::default(),
            name: "phone",
        }
    }
}

fn phone_method() -> Method {
    Method::custom("phone").unwrap()
}

impl CustomFactor for Phone {
    fn method(&self) -> Method {
        Method::custom(self.name).unwrap()
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
async fn three_wrong_numbers_suspend_approvals_and_each_is_told() {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let heard = events.clone();
    let notices: Arc<Mutex<Vec<(NoticeKind, String)>>> = Arc::default();
    let told = notices.clone();
    let phone = Phone::default();
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_event_sink(move |e: &Event| heard.lock().unwrap().push(e.clone()))
    .with_notice_sink(move |n: &Notice<'_>| {
        told.lock()
            .unwrap()
            .push((n.kind, n.subject.id().to_owned()))
    })
    .with_custom_factor(phone.clone())
    .with_custom_factor(Phone {
        // A second approval method, for links posted to the wrong one.
        links: phone.links.clone(),
        name: "tablet",
    });
    let alice = Subject::new("alice").with_session("s1");
    let method = phone_method();
    let wrong = |n: u8| if n == 42 { "43" } else { "42" };
    let refuse = async || {
        let started = engine
            .start_approval(Attempt::new(&alice), method, "/step-up")
            .await?;
        let secret = phone.last_secret();
        // Posted to another approval method's route, the link is refused
        // and stays usable for its own.
        let tablet = Method::custom("tablet").unwrap();
        assert_eq!(
            engine.approve(tablet, &secret, "42").await.unwrap(),
            Approval::Gone
        );
        let approval = engine
            .approve(method, &secret, wrong(started.number))
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
        // Continuing a refused approval: refused, not counted again.
        assert_eq!(
            engine
                .finish_approval(Attempt::new(&alice), method, &started.id)
                .await
                .err(),
            Some(ChallengeError::ApprovalRefused)
        );
        Ok::<_, ChallengeError>(())
    };
    for _ in 0..3 {
        refuse().await.unwrap();
    }
    // Three refusals: no more pushes (for a day), whatever the session.
    let sent = phone.sent();
    for session in ["s1", "s2"] {
        let other = Subject::new("alice").with_session(session);
        let suspended = engine
            .start_approval(Attempt::new(&other), method, "/step-up")
            .await;
        assert!(
            matches!(suspended, Err(ChallengeError::LockedOut { .. })),
            "{suspended:?}"
        );
    }
    assert_eq!(phone.sent(), sent, "no push while suspended");
    clock.advance(Duration::from_secs(3600));
    assert!(
        engine
            .start_approval(Attempt::new(&alice), method, "/step-up")
            .await
            .is_err()
    );
    // The application's reset (after a support call) ends it.
    engine.reset_attempts(&alice, method).await.unwrap();
    engine
        .start_approval(Attempt::new(&alice), method, "/step-up")
        .await
        .unwrap();
    // Each refusal was told: an event naming the subject by its digest,
    // a notice naming the user; the third, also a lockout.
    let events = events.lock().unwrap();
    let wrong_numbers: Vec<&Event> = events
        .iter()
        .filter(|e| e.reason == Some("wrong_number"))
        .collect();
    assert_eq!(
        wrong_numbers.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [
            EventKind::Failed,
            EventKind::Failed,
            EventKind::Failed,
            EventKind::LockedOut
        ]
    );
    assert!(
        wrong_numbers
            .iter()
            .all(|e| e.method == Some(method) && !e.subject.contains("alice"))
    );
    assert_eq!(
        *notices.lock().unwrap(),
        vec![(NoticeKind::ApprovalRefused, "alice".to_owned()); 3]
    );
}
