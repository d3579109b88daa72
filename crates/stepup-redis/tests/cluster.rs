//! `RedisStateStore` on a real three-master Redis Cluster: the store
//! contract, two instances sharing it (a TOTP code used once, one lockout,
//! a passkey ceremony finished once), and a node restarted during traffic
//! (step-ups whose keys it holds fail closed, then recover).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::TEST_TIMEOUT;
use common::cluster::RedisCluster;
use stepup_challenge::webauthn::Url;
use stepup_challenge::{
    Attempt, ChallengeError, Engine, FactorStore, MemoryFactorStore, PasskeyConfig, TotpConfig,
    TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};
use stepup_redis::RedisStateStore;
use stepup_store::contract::Guarded;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

type ClusterEngine = Engine<MemoryFactorStore, RedisStateStore>;

fn store(cluster: &RedisCluster, prefix: &str, timeout: Duration) -> RedisStateStore {
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    RedisStateStore::connect_cluster(&nodes, prefix, timeout).unwrap()
}

// Every rule on a cluster of its own.
stepup_store::state_store_contract!(on_cluster, async {
    let cluster = RedisCluster::start();
    let store = store(&cluster, "contract:", TEST_TIMEOUT);
    Guarded::new(store, cluster)
});

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

fn code() -> String {
    TotpConfig::new("Bank")
        .code_at(&secret(), SystemClock.now().as_unix_seconds())
        .unwrap()
}

/// One instance on the cluster: its own engine and connections; the
/// shared cluster, key ring and factors.
fn instance(
    cluster: &RedisCluster,
    factors: &MemoryFactorStore,
    timeout: Duration,
) -> ClusterEngine {
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ));
    Engine::new(
        tokens.issuer(),
        factors.clone(),
        store(cluster, "bank:", timeout),
    )
    .with_totp(TotpConfig::new("Bank"))
    .with_passkeys(PasskeyConfig::new(
        "bank.example",
        "https://bank.example",
        "Bank",
    ))
    .unwrap()
}

async fn factors(users: &[&str]) -> MemoryFactorStore {
    let factors = MemoryFactorStore::new();
    for user in users {
        factors
            .set_totp_secret(&Subject::new(*user), secret())
            .await
            .unwrap();
    }
    factors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_cluster() {
    let cluster = RedisCluster::start();
    let users: Vec<String> = (0..60).map(|i| format!("user{i}")).collect();
    let mut names: Vec<&str> = users.iter().map(String::as_str).collect();
    names.push("alice");
    let factors = factors(&names).await;
    let (a, b) = (
        instance(&cluster, &factors, TEST_TIMEOUT),
        instance(&cluster, &factors, TEST_TIMEOUT),
    );
    // A code used on A is refused on B (another session too).
    let code = code();
    let user = Subject::new("alice").with_session("s-1");
    a.step_up_totp(Attempt::new(&user), &code).await.unwrap();
    assert_eq!(
        b.step_up_totp(
            Attempt::new(&Subject::new("alice").with_session("s-2")),
            &code
        )
        .await
        .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // Wrong answers on both instances reach one lockout.
    let bob = Subject::new("user0").with_session("s-1");
    for i in 0..5 {
        let engine = if i % 2 == 0 { &a } else { &b };
        let error = engine
            .step_up_totp(Attempt::new(&bob), "000000")
            .await
            .unwrap_err();
        assert!(matches!(error, ChallengeError::Wrong { .. }), "{error:?}");
    }
    for engine in [&a, &b] {
        let error = engine
            .step_up_totp(Attempt::new(&bob), &code)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChallengeError::LockedOut { .. }),
            "{error:?}"
        );
    }
    // One address guessing for many users (keys in many slots) is counted
    // in one place.
    let address = "203.0.113.9".parse().unwrap();
    let mut refused = false;
    for (i, name) in users.iter().enumerate().skip(1) {
        let engine = if i % 2 == 0 { &a } else { &b };
        if let Err(ChallengeError::LockedOut { .. }) = engine
            .step_up_totp(
                Attempt::new(&Subject::new(name.as_str())).from_address(address),
                "000000",
            )
            .await
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the per-address budget (50) is shared");

    // A passkey ceremony started on A finishes on B, once.
    let origin = Url::parse("https://bank.example").unwrap();
    let mut key = SoftPasskey::new(true);
    let (id, options) = a.start_passkey_registration(&user, "alice").await.unwrap();
    let response = key.do_registration(origin.clone(), options).unwrap();
    b.finish_passkey_registration(Attempt::new(&user), &id, &response, "laptop")
        .await
        .unwrap();
    let (id, options) = b.start_passkey_step_up(Attempt::new(&user)).await.unwrap();
    let assertion = key.do_authentication(origin, options).unwrap();
    a.step_up_passkey(Attempt::new(&user), &id, &assertion)
        .await
        .unwrap();
    assert_eq!(
        b.step_up_passkey(Attempt::new(&user), &id, &assertion)
            .await
            .unwrap_err(),
        ChallengeError::NoPendingCeremony
    );
}

/// The node that holds `pattern`'s keys.
fn node_holding(cluster: &RedisCluster, pattern: &str) -> usize {
    (0..3)
        .find(|node| {
            cluster
                .command(*node, &["KEYS", pattern])
                .lines()
                .any(|line| line.contains("stepup:"))
        })
        .expect("a node holds the keys")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_during_traffic_fails_closed_then_recovers() {
    let mut cluster = RedisCluster::start();
    let factors = factors(&["alice"]).await;
    // A short timeout, as production's 500 ms: failing closed is quick.
    let engine = instance(&cluster, &factors, Duration::from_millis(500));
    let alice = |session: &str| Subject::new("alice").with_session(session);
    engine
        .step_up_totp(Attempt::new(&alice("s-1")), &code())
        .await
        .unwrap();
    let node = node_holding(&cluster, "bank:stepup:totp-step:*");
    cluster.stop_node(node);

    // Alice's keys are on the stopped node: her step-ups fail closed (a
    // store error, no token), whatever the code.
    for session in ["s-2", "s-3"] {
        let error = engine
            .step_up_totp(Attempt::new(&alice(session)), &code())
            .await
            .unwrap_err();
        assert!(matches!(error, ChallengeError::Store(_)), "{error:?}");
    }

    cluster.restart_node(node);
    assert!(
        common::step_ups_recover(&engine, &alice("s-4"), &code()).await,
        "step-ups recover once the node is back"
    );
}
