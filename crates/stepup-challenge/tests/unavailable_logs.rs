//! A failing code sender's error text (which may name an address or a
//! host) never reaches the logs: the routes log the kind of failure only.
//! Alone in its binary: it installs a global recording subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
use stepup_challenge::{
    Channel, CodeMessage, CodeSender, Engine, MemoryFactorStore, MemoryStateStore, SendFuture,
    StoreError,
};
use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
use stepup_http::Found;
use stepup_test_support::Recorder;

struct Failing;

impl CodeSender for Failing {
    fn send<'a>(&'a self, message: CodeMessage<'a>) -> SendFuture<'a> {
        let text = format!(
            "mailbox {} is full at smtp.internal:25",
            message.destination
        );
        Box::pin(async move { Err(StoreError::new("send", text)) })
    }
}

#[tokio::test]
async fn a_failed_send_logs_its_kind_not_its_message() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let alice = Subject::new("alice").with_session("s-1");
    factors
        .set_code_destination(&alice, Channel::Email, "alice@example.com")
        .unwrap();
    let engine = Engine::new(config.issuer(), factors, MemoryStateStore::default())
        .with_code_sender(Failing);
    let routes = ChallengeRoutes::new(
        Settings::new(config.gate(), "https://bank.example"),
        Arc::new(engine),
    );
    let reply = routes
        .handle(Incoming {
            accept_language: None,
            method: "POST",
            path: "/code/send",
            query: None,
            subject: Some(alice),
            origin: Some(b"https://bank.example"),
            sec_fetch_site: None,
            referer: None,
            content_type: Some(b"application/json"),
            navigation: false,
            token: Found::None,
            body: Body::Read(br#"{"channel":"email"}"#),
            address: None,
            user_agent: None,
            context: None,
        })
        .await;
    assert_eq!(reply.status(), 503, "{}", reply.body());
    assert!(!reply.body().contains("alice@example.com"));
    let logs = recorder.text();
    assert!(logs.contains("step-up unavailable"), "{logs}");
    assert!(logs.contains("kind=\"send\""), "{logs}");
    for secret in ["alice@example.com", "smtp.internal", "mailbox"] {
        assert!(!logs.contains(secret), "{secret} in {logs}");
    }
}
