//! A code-shaped custom method at the engine: counted before the factor
//! checks it, locked out like any method, listed among the enrolled ones,
//! minted with its own method, its level and `amr` from the level table.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use stepup_challenge::{
    Attempt, AttemptLimits, ChallengeError, CustomFactor, CustomKind, Engine, MemoryFactorStore,
    MemoryStateStore, StoreError,
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
