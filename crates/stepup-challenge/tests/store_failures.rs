//! What the engine does when something it depends on fails: a state store
//! that cannot read, count, write or take, and a code sender that cannot
//! deliver. The rule: a failure is a clear error (`ChallengeError::Store`,
//! `503 unavailable` over the routes), never a pass, and nothing waits for
//! a code nobody received.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Reply, Settings};
use stepup_challenge::{
    Attempt, ChallengeError, Channel, CodeMessage, CodeSender, Engine, FactorStore,
    InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, RecordingSender, SendFuture,
    StateStore, StoreError, TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};
use stepup_http::Found;

const ORIGIN: &str = "https://bank.example";
const EMAIL: &str = "alice@example.com";
const PASSWORD: &str = "correct horse";

/// A state store that fails the operations it is told to, and remembers
/// which keys were written.
#[derive(Clone)]
struct Flaky {
    inner: MemoryStateStore,
    failing: Arc<Mutex<Vec<&'static str>>>,
    written: Arc<Mutex<Vec<String>>>,
}

impl Flaky {
    fn new(clock: TestClock) -> Flaky {
        Flaky {
            inner: MemoryStateStore::new(clock),
            failing: Arc::default(),
            written: Arc::default(),
        }
    }

    /// From now on, `operation` fails.
    fn fail(&self, operation: &'static str) {
        self.failing.lock().unwrap().push(operation);
    }

    /// Every operation works again.
    fn heal(&self) {
        self.failing.lock().unwrap().clear();
    }

    fn check(&self, operation: &'static str) -> Result<(), StoreError> {
        if self.failing.lock().unwrap().contains(&operation) {
            return Err(StoreError::new(
                "state",
                format!("{operation} failed (test)"),
            ));
        }
        Ok(())
    }

    /// The keys written with `put` since the last call.
    fn written(&self) -> Vec<String> {
        std::mem::take(&mut *self.written.lock().unwrap())
    }
}

impl StateStore for Flaky {
    async fn advance(&self, key: &str, step: u64, ttl: Duration) -> Result<bool, StoreError> {
        self.check("advance")?;
        self.inner.advance(key, step, ttl).await
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        self.check("increment")?;
        self.inner.increment(key, window).await
    }

    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        self.check("put")?;
        self.written.lock().unwrap().push(key.to_owned());
        self.inner.put(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check("get")?;
        self.inner.get(key).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check("take")?;
        self.inner.take(key).await
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.check("remove")?;
        self.inner.remove(key).await
    }
}

/// A mailer that is down: it is handed the code (kept, to try it) and
/// fails with an error naming the address, as real mailers' errors do.
#[derive(Clone, Default)]
struct DownMailer {
    handed: Arc<Mutex<Vec<String>>>,
}

impl CodeSender for DownMailer {
    fn send<'a>(&'a self, message: CodeMessage<'a>) -> SendFuture<'a> {
        self.handed.lock().unwrap().push(message.code.to_owned());
        let error = StoreError::new(
            "sender",
            format!("SMTP 451: mailbox {} unavailable", message.destination),
        );
        Box::pin(async move { Err(error) })
    }
}

type FlakyEngine = Engine<MemoryFactorStore, Flaky, InsecureFixedPasswords>;

struct Setup {
    engine: Arc<FlakyEngine>,
    routes: ChallengeRoutes<MemoryFactorStore, Flaky, InsecureFixedPasswords>,
    store: Flaky,
    clock: TestClock,
}

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

async fn setup_with(sender: impl CodeSender) -> Setup {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    factors.set_totp_secret(&alice(), secret()).await.unwrap();
    factors
        .set_code_destination(&alice(), Channel::Email, EMAIL)
        .unwrap();
    let store = Flaky::new(clock.clone());
    let engine = Arc::new(
        Engine::new(config.issuer(), factors, store.clone())
            .with_clock(clock.clone())
            .with_totp(TotpConfig::new("Bank"))
            .with_code_sender(sender)
            .with_passwords(InsecureFixedPasswords::new([("alice", PASSWORD)])),
    );
    let settings = Settings::new(config.gate(), ORIGIN).with_clock(clock.clone());
    Setup {
        routes: ChallengeRoutes::new(settings, engine.clone()),
        engine,
        store,
        clock,
    }
}

async fn setup() -> (Setup, RecordingSender) {
    let sender = RecordingSender::new();
    (setup_with(sender.clone()).await, sender)
}

impl Setup {
    fn code(&self) -> String {
        TotpConfig::new("Bank")
            .code_at(&secret(), self.clock.now().as_unix_seconds())
            .unwrap()
    }

    /// A JSON POST from the right origin, by alice.
    async fn post(&self, path: &str, body: &str) -> Reply {
        self.routes
            .handle(Incoming {
                accept_language: None,
                method: "POST",
                path,
                query: None,
                subject: Some(alice()),
                origin: Some(ORIGIN.as_bytes()),
                sec_fetch_site: None,
                referer: None,
                content_type: Some(b"application/json"),
                navigation: false,
                token: Found::None,
                body: Body::Read(body.as_bytes()),
                address: None,
                user_agent: None,
                context: None,
            })
            .await
    }
}

/// The refusal a store failure must be over HTTP: `503`, error
/// `unavailable`, no cookie.
fn assert_unavailable(reply: &Reply, what: &str) {
    assert_eq!(reply.status(), 503, "{what}: {}", reply.body());
    let body: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
    assert_eq!(body["error"], "unavailable", "{what}: {body}");
    assert!(reply.header_value("set-cookie").is_none(), "{what}");
}

fn assert_store_error<T: std::fmt::Debug>(outcome: Result<T, ChallengeError>, what: &str) {
    let error = outcome.unwrap_err();
    assert!(
        matches!(error, ChallengeError::Store(_)),
        "{what}: {error:?}"
    );
}

#[tokio::test]
async fn a_failing_increment_is_never_a_pass() {
    let (s, sender) = setup().await;
    s.store.fail("increment");
    // The attempt counter cannot count: nothing is checked.
    assert_store_error(
        s.engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await,
        "totp",
    );
    assert_store_error(
        s.engine
            .step_up_password(Attempt::new(&alice()), PASSWORD)
            .await,
        "password",
    );
    // Sends cannot be rationed: nothing is sent.
    assert_store_error(
        s.engine
            .send_code(Attempt::new(&alice()), Channel::Email)
            .await,
        "send",
    );
    assert_eq!(sender.count(), 0, "no code was sent");
    let reply = s
        .post("/totp", &format!(r#"{{"code":"{}"}}"#, s.code()))
        .await;
    assert_unavailable(&reply, "POST /totp");
    let reply = s
        .post("/password", &format!(r#"{{"password":"{PASSWORD}"}}"#))
        .await;
    assert_unavailable(&reply, "POST /password");
    let reply = s.post("/code/send", r#"{"channel":"email"}"#).await;
    assert_unavailable(&reply, "POST /code/send");
    assert_eq!(sender.count(), 0, "no code was sent");
    // The same requests pass once the store answers: the failure was the
    // only reason for the refusals.
    s.store.heal();
    s.engine
        .step_up_totp(Attempt::new(&alice()), &s.code())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failing_get_is_never_a_pass() {
    let (s, _) = setup().await;
    s.store.fail("get");
    assert_store_error(
        s.engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await,
        "totp",
    );
    let reply = s
        .post("/totp", &format!(r#"{{"code":"{}"}}"#, s.code()))
        .await;
    assert_unavailable(&reply, "POST /totp");
}

#[tokio::test]
async fn a_failing_replay_guard_is_never_a_pass() {
    let (s, _) = setup().await;
    s.store.fail("advance");
    // The right code, but its step cannot be recorded as used.
    assert_store_error(
        s.engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await,
        "totp",
    );
    let reply = s
        .post("/totp", &format!(r#"{{"code":"{}"}}"#, s.code()))
        .await;
    assert_unavailable(&reply, "POST /totp");
    s.store.heal();
    s.engine
        .step_up_totp(Attempt::new(&alice()), &s.code())
        .await
        .unwrap();
    assert_eq!(
        s.engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
}

#[tokio::test]
async fn a_failing_put_is_never_a_pass() {
    let (s, sender) = setup().await;
    s.store.fail("put");
    // A code that cannot be stored is not sent.
    assert_store_error(
        s.engine
            .send_code(Attempt::new(&alice()), Channel::Email)
            .await,
        "send",
    );
    let reply = s.post("/code/send", r#"{"channel":"email"}"#).await;
    assert_unavailable(&reply, "POST /code/send");
    assert_eq!(sender.count(), 0, "no code was sent");

    // A lockout that cannot be written still locks: the budget of five
    // wrong codes is used up …
    s.store.heal();
    let wrong = if s.code() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for i in 0..5 {
        let error = s
            .engine
            .step_up_totp(Attempt::new(&alice()), wrong)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChallengeError::Wrong { .. }),
            "{i}: {error:?}"
        );
    }
    // … the attempt that should write the lock cannot …
    s.store.fail("put");
    assert_store_error(
        s.engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await,
        "the attempt that locks",
    );
    // … and the right code is still refused after it, failing store or not.
    for healed in [false, true] {
        if healed {
            s.store.heal();
        }
        let error = s
            .engine
            .step_up_totp(Attempt::new(&alice()), &s.code())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChallengeError::LockedOut { .. }),
            "healed {healed}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_take_is_never_a_pass() {
    let (s, sender) = setup().await;
    let sent = s
        .engine
        .send_code(Attempt::new(&alice()), Channel::Email)
        .await
        .unwrap();
    let code = sender.last_code_to(EMAIL).unwrap();
    s.store.fail("take");
    // The right code, but it cannot be used up: no step-up.
    assert_store_error(
        s.engine
            .step_up_code(
                Attempt::new(&alice()),
                Channel::Email,
                &sent.challenge_id,
                &code,
            )
            .await,
        "code",
    );
    let reply = s
        .post(
            "/code/verify",
            &format!(
                r#"{{"channel":"email","challenge_id":"{}","code":"{code}"}}"#,
                sent.challenge_id
            ),
        )
        .await;
    assert_unavailable(&reply, "POST /code/verify");
    // Back up: the code, never used, steps up once.
    s.store.heal();
    s.engine
        .step_up_code(
            Attempt::new(&alice()),
            Channel::Email,
            &sent.challenge_id,
            &code,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_delivery_is_a_clear_error_and_leaves_no_code_waiting() {
    let mailer = DownMailer::default();
    let s = setup_with(mailer.clone()).await;
    s.store.written();
    let error = s
        .engine
        .send_code(Attempt::new(&alice()), Channel::Email)
        .await
        .unwrap_err();
    assert!(matches!(error, ChallengeError::Store(_)), "{error:?}");
    let handed = mailer.handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 1, "the mailer was asked once");
    // Whatever the send stored for the code is gone again: no code waits
    // that nobody received. (A send that stores nothing until the mailer
    // succeeds passes this too.)
    for key in s.store.written() {
        assert_eq!(s.store.inner.get(&key).await.unwrap(), None, "{key}");
    }
    // Over HTTP: 503 "unavailable", and neither the mailer's error (with
    // the address) nor the code reaches the client.
    let reply = s.post("/code/send", r#"{"channel":"email"}"#).await;
    assert_unavailable(&reply, "POST /code/send");
    let code = mailer.handed.lock().unwrap().last().cloned().unwrap();
    for secret in [EMAIL, "SMTP", code.as_str()] {
        assert!(!reply.body().contains(secret), "{secret}: {}", reply.body());
    }
}
