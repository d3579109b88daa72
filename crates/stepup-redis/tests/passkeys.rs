//! Passkey ceremonies on a shared Redis: started on one instance, finished
//! on another, exactly once; sealed in the store (a party who can write to
//! Redis cannot forge, alter or move one), and bound to their session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::RedisServer;
use stepup_challenge::webauthn::{PublicKeyCredential, Url};
use stepup_challenge::{Attempt, ChallengeError, Engine, MemoryFactorStore, PasskeyConfig};
use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
use stepup_redis::RedisStateStore;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

type RedisEngine = Engine<MemoryFactorStore, RedisStateStore>;

const ORIGIN: &str = "https://bank.example";

/// One instance: its own engine and Redis connection; the shared Redis,
/// key ring and factor store (the application's database).
fn instance(server: &RedisServer, factors: &MemoryFactorStore) -> RedisEngine {
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    Engine::new(tokens.issuer(), factors.clone(), server.store("bank:"))
        .with_passkeys(PasskeyConfig::new("bank.example", ORIGIN, "Bank"))
        .unwrap()
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

fn alice(session: &str) -> Subject {
    Subject::new("alice").with_session(session)
}

/// Two instances on one Redis, with alice's passkey registered (started
/// on B, finished on A).
async fn two_instances(server: &RedisServer) -> (RedisEngine, RedisEngine, SoftPasskey) {
    let factors = MemoryFactorStore::new();
    let (a, b) = (instance(server, &factors), instance(server, &factors));
    let user = alice("s-1");
    let mut key = SoftPasskey::new(true);
    let (id, options) = b.start_passkey_registration(&user, "alice").await.unwrap();
    let response = key.do_registration(origin(), options).unwrap();
    a.finish_passkey_registration(Attempt::new(&user), &id, &response, "laptop")
        .await
        .unwrap();
    (a, b, key)
}

/// A step-up started on `engine`: the ceremony id and the authenticator's
/// assertion.
async fn started(
    engine: &RedisEngine,
    user: &Subject,
    key: &mut SoftPasskey,
) -> (String, PublicKeyCredential) {
    let (id, options) = engine
        .start_passkey_step_up(Attempt::new(user))
        .await
        .unwrap();
    (id, key.do_authentication(origin(), options).unwrap())
}

/// The raw ceremony entries in Redis, by key.
async fn ceremonies(server: &RedisServer) -> Vec<(String, Vec<u8>)> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("bank:stepup:passkey-ceremony:*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let value: Vec<u8> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push((key, value));
    }
    out
}

async fn set_raw(server: &RedisServer, key: &str, value: &[u8]) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("EX")
        .arg(300)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_ceremony_started_on_a_finishes_on_b_exactly_once() {
    let server = RedisServer::start();
    let (a, b, mut key) = two_instances(&server).await;
    let user = alice("s-1");
    let (id, assertion) = started(&a, &user, &mut key).await;
    let token = b
        .step_up_passkey(Attempt::new(&user), &id, &assertion)
        .await
        .unwrap();
    assert!(
        token
            .assurance()
            .proofs()
            .iter()
            .any(|p| p.method() == stepup_core::Method::Passkey)
    );
    // Replayed on either instance: gone.
    for engine in [&a, &b] {
        assert_eq!(
            engine
                .step_up_passkey(Attempt::new(&user), &id, &assertion)
                .await
                .unwrap_err(),
            ChallengeError::NoPendingCeremony
        );
    }
    // Eight finishes of one ceremony at once on both: exactly one wins.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let (id, assertion) = started(&b, &user, &mut key).await;
    let mut racers = tokio::task::JoinSet::new();
    for engine in [a.clone(), b.clone()].into_iter().cycle().take(8) {
        let (user, id, assertion) = (user.clone(), id.clone(), assertion.clone());
        racers.spawn(async move {
            engine
                .step_up_passkey(Attempt::new(&user), &id, &assertion)
                .await
        });
    }
    let outcomes = racers.join_all().await;
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(ChallengeError::NoPendingCeremony))),
        "{outcomes:?}"
    );
    assert!(ceremonies(&server).await.is_empty(), "nothing left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceremony_of_another_session_is_refused_and_stays_for_its_owner() {
    let server = RedisServer::start();
    let (a, b, mut key) = two_instances(&server).await;
    let user = alice("s-1");
    let (id, assertion) = started(&a, &user, &mut key).await;
    for other in [alice("s-2"), Subject::new("mallory").with_session("s-1")] {
        assert_eq!(
            b.step_up_passkey(Attempt::new(&other), &id, &assertion)
                .await
                .unwrap_err(),
            ChallengeError::NoPendingCeremony
        );
    }
    b.step_up_passkey(Attempt::new(&user), &id, &assertion)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_ceremony_is_sealed_and_a_tampered_one_is_refused() {
    let server = RedisServer::start();
    let (a, b, mut key) = two_instances(&server).await;
    let user = alice("s-1");

    // The challenge the browser signs is not readable in the store.
    let (id, options) = a.start_passkey_step_up(Attempt::new(&user)).await.unwrap();
    let challenge = serde_json_challenge(&options);
    let stored = ceremonies(&server).await;
    assert_eq!(stored.len(), 1);
    let (entry, sealed) = &stored[0];
    assert!(
        !sealed
            .windows(challenge.len())
            .any(|w| w == challenge.as_bytes()),
        "the challenge is sealed"
    );
    assert!(
        !sealed.windows(9).any(|w| w == b"challenge"),
        "no state in the clear"
    );
    let assertion = key.do_authentication(origin(), options).unwrap();

    // One flipped byte: refused, on either instance, and the step-up is no proof.
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    set_raw(&server, entry, &altered).await;
    assert_eq!(
        b.step_up_passkey(Attempt::new(&user), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
    // The original put back under another slot (a moved value): refused.
    let slot = &id[..1];
    let other_slot = if slot == "0" { "1" } else { "0" };
    let moved = format!("{}{other_slot}", &entry[..entry.len() - 1]);
    set_raw(&server, &moved, sealed).await;
    let moved_id = format!("{other_slot}{}", &id[1..]);
    assert_eq!(
        b.step_up_passkey(Attempt::new(&user), &moved_id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
    // The original back in place: it finishes, once.
    set_raw(&server, entry, sealed).await;
    b.step_up_passkey(Attempt::new(&user), &id, &assertion)
        .await
        .unwrap();
    assert_eq!(
        a.step_up_passkey(Attempt::new(&user), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
}

/// The challenge of a ceremony's options, as the browser gets it (base64url).
fn serde_json_challenge(options: &stepup_challenge::webauthn::RequestChallengeResponse) -> String {
    let json = serde_json::to_value(options).unwrap();
    json["publicKey"]["challenge"].as_str().unwrap().to_owned()
}
