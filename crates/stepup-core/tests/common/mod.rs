//! Fixtures shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use stepup_core::{
    Assurance, Challenge, ChallengeReason, Decision, Gate, Issuer, Key, KeyId, KeyRing, Method,
    Policy, Proof, Subject, Timestamp, TokenConfig,
};

pub(crate) const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(crate) fn key(id: u16, byte: u8) -> Key {
    Key::from_bytes(KeyId::new(id), &[byte; 32]).unwrap()
}

pub(crate) fn ring() -> KeyRing {
    KeyRing::new(key(1, 0x11))
}

pub(crate) fn config() -> TokenConfig {
    TokenConfig::new(ring())
}

pub(crate) fn pair() -> (Issuer, Gate) {
    let c = config();
    (c.issuer(), c.gate())
}

pub(crate) fn alice() -> Subject {
    Subject::new("alice")
        .with_session("session-a")
        .with_epoch(1)
}

/// A token for `subject` proving `methods` (all at `at`), issued at `at`.
pub(crate) fn token_for(
    issuer: &Issuer,
    subject: &Subject,
    methods: &[Method],
    at: Timestamp,
) -> String {
    let mut previous: Option<String> = None;
    for m in methods {
        let t = issuer
            .issue(subject, Proof::new(*m, at), previous.as_deref(), at)
            .unwrap();
        previous = Some(t.into_value());
    }
    previous.unwrap()
}

pub(crate) fn reason(
    gate: &Gate,
    subject: &Subject,
    token: Option<&str>,
    now: Timestamp,
) -> ChallengeReason {
    match gate.verify(subject, token, now) {
        Ok(a) => panic!("expected a rejection, got {a:?}"),
        Err(r) => r,
    }
}

pub(crate) fn allow(decision: Decision) -> Assurance {
    match decision {
        Decision::Allow(a) => a,
        Decision::Challenge(c) => panic!("expected Allow, got {c:?}"),
    }
}

pub(crate) fn challenge(decision: Decision) -> Challenge {
    match decision {
        Decision::Challenge(c) => c,
        Decision::Allow(a) => panic!("expected a challenge, got {a:?}"),
    }
}

pub(crate) fn any_policy() -> Policy {
    Policy::level(1)
}
