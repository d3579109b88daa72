//! Secrets the engine keeps in the state store are sealed: a reader of the
//! store (a shared Redis, a database backup of `SqlStateStore`) never sees
//! a pending TOTP secret, and a sealed value moved to another entry does
//! not open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, ChallengeError, Engine, MemoryFactorStore, MemoryStateStore, StateStore, StoreError,
    TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};

/// Every (key, value) written.
type Written = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// The memory store, recording every value written.
#[derive(Clone, Default)]
struct Recording {
    inner: MemoryStateStore,
    written: Written,
}

impl StateStore for Recording {
    async fn advance(&self, key: &str, step: u64, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.advance(key, step, ttl).await
    }
    async fn increment(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        self.inner.increment(key, window).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        self.written
            .lock()
            .unwrap()
            .push((key.to_owned(), value.clone()));
        self.inner.put(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key).await
    }
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.take(key).await
    }
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.inner.remove(key).await
    }
}

fn code(secret: &TotpSecret) -> String {
    TotpConfig::new("Bank")
        .code_at(secret, SystemClock.now().as_unix_seconds())
        .unwrap()
}

#[tokio::test]
async fn a_pending_totp_secret_is_sealed_and_bound_to_its_session() {
    let state = Recording::default();
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    let engine = Engine::new(tokens.issuer(), MemoryFactorStore::new(), state.clone())
        .with_totp(TotpConfig::new("Bank"))
        .dangerously_allow_first_factor_without_password();
    let one = Subject::new("alice").with_session("s-1");
    let two = Subject::new("alice").with_session("s-2");
    let first = engine.start_totp_enrollment(&one, "alice").await.unwrap();
    let second = engine.start_totp_enrollment(&two, "alice").await.unwrap();
    let first = TotpSecret::from_base32(first.manual_entry_key()).unwrap();
    let second = TotpSecret::from_base32(second.manual_entry_key()).unwrap();

    let written = state.written.lock().unwrap().clone();
    assert_eq!(written.len(), 2);
    for (_, value) in &written {
        for secret in [&first, &second] {
            assert!(
                !value
                    .windows(secret.as_bytes().len())
                    .any(|w| w == secret.as_bytes()),
                "a pending secret in the clear"
            );
        }
    }

    // Session two's entry given session one's sealed value: it does not
    // open there, whichever code is typed.
    let (one_key, one_value) = written[0].clone();
    let (two_key, _) = written[1].clone();
    state
        .inner
        .put(&two_key, one_value.clone(), Duration::from_secs(600))
        .await
        .unwrap();
    for secret in [&first, &second] {
        assert_eq!(
            engine
                .confirm_totp_enrollment(Attempt::new(&two), &code(secret))
                .await
                .unwrap_err(),
            ChallengeError::NoPendingEnrollment
        );
    }
    // In its own entry it opens, and the enrollment completes.
    assert_eq!(state.inner.get(&one_key).await.unwrap(), Some(one_value));
    engine
        .confirm_totp_enrollment(Attempt::new(&one), &code(&first))
        .await
        .unwrap();
}
