//! A factor store that keeps no passkeys (a `FactorStore`, not a
//! `PasskeyStore`) runs the whole engine and the routes: passkey requests
//! are answered as "not set up" (there are no passkey routes without
//! feature `passkey`), everything else works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
use stepup_challenge::{
    Attempt, Channel, Engine, FactorStore, MemoryFactorStore, MemoryStateStore, StoreError,
    TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Method, Subject, TestClock, Timestamp, TokenConfig};
use stepup_http::Found;

const ORIGIN: &str = "https://bank.example";

/// TOTP and recovery codes only: no passkey methods at all.
struct NoPasskeys(MemoryFactorStore);

impl FactorStore for NoPasskeys {
    async fn totp_secret(&self, subject: &Subject) -> Result<Option<TotpSecret>, StoreError> {
        self.0.totp_secret(subject).await
    }

    async fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> Result<(), StoreError> {
        self.0.set_totp_secret(subject, secret).await
    }

    async fn remove_totp_secret(&self, subject: &Subject) -> Result<(), StoreError> {
        self.0.remove_totp_secret(subject).await
    }

    async fn set_recovery_digests(
        &self,
        subject: &Subject,
        digests: Vec<[u8; 32]>,
    ) -> Result<(), StoreError> {
        self.0.set_recovery_digests(subject, digests).await
    }

    async fn consume_recovery_digest(
        &self,
        subject: &Subject,
        digest: &[u8; 32],
    ) -> Result<bool, StoreError> {
        self.0.consume_recovery_digest(subject, digest).await
    }

    async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, StoreError> {
        self.0.recovery_codes_left(subject).await
    }

    async fn bump_epoch(&self, subject: &Subject) -> Result<u64, StoreError> {
        self.0.bump_epoch(subject).await
    }
}

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

#[tokio::test]
async fn an_engine_and_routes_without_a_passkey_store() {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[6u8; 32]).unwrap(),
    ));
    let alice = Subject::new("alice").with_session("s-1");
    let factors = NoPasskeys(MemoryFactorStore::new());
    factors.set_totp_secret(&alice, secret()).await.unwrap();
    let engine = Arc::new(
        Engine::new(
            config.issuer(),
            factors,
            MemoryStateStore::new(clock.clone()),
        )
        .with_clock(clock.clone())
        .with_totp(TotpConfig::new("Bank")),
    );
    assert_eq!(
        engine.enrolled_methods(&alice).await.unwrap(),
        [Method::Totp]
    );
    assert_eq!(
        engine
            .factors()
            .code_destination(&alice, Channel::Email)
            .await
            .unwrap(),
        None,
        "the default: no code destinations"
    );
    let code = TotpConfig::new("Bank")
        .code_at(&secret(), clock.now().as_unix_seconds())
        .unwrap();
    engine
        .step_up_totp(Attempt::new(&alice), &code)
        .await
        .unwrap();

    let routes = ChallengeRoutes::new(
        Settings::new(config.gate(), ORIGIN).with_clock(clock.clone()),
        engine,
    );
    let reply = routes
        .handle(Incoming {
            accept_language: None,
            method: "POST",
            path: "/passkey/start",
            query: None,
            subject: Some(alice.clone()),
            origin: Some(ORIGIN.as_bytes()),
            sec_fetch_site: None,
            referer: None,
            content_type: Some(b"application/json"),
            navigation: false,
            token: Found::None,
            body: Body::Read(b"{}"),
            address: None,
            user_agent: None,
            context: None,
        })
        .await;
    if cfg!(feature = "passkey") {
        let body: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
        assert_eq!(body["error"], "not_enrolled", "{body}");
    } else {
        assert_eq!(reply.status(), 404, "no passkey routes");
    }
}
