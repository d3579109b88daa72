//! The `StateStore` contract of `stepup-store` against a real Redis (the
//! in-memory store runs the same rules in `stepup-store`'s own tests),
//! then the rules only Redis has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::RedisServer;
use stepup_store::StateStore;
use stepup_store::contract::Guarded;

// Every rule on a server of its own, kept alive with the store.
stepup_store::state_store_contract!(redis, async {
    let server = RedisServer::start();
    let store = server.store("contract:");
    Guarded::new(store, server)
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_carry_the_prefix_and_a_redis_ttl() {
    // Over TCP (`redis://`), as most deployments connect.
    let server = RedisServer::start_tcp();
    let store = server.store("bank:");
    store
        .advance("s", 3, Duration::from_secs(30))
        .await
        .unwrap();
    store.increment("c", Duration::from_secs(60)).await.unwrap();
    store
        .put("p", b"v".to_vec(), Duration::from_secs(90))
        .await
        .unwrap();
    for (key, ttl) in [("bank:s", 30_000), ("bank:c", 60_000), ("bank:p", 90_000)] {
        let pttl: i64 = server
            .command(&["PTTL", key])
            .trim_start_matches(':')
            .parse()
            .unwrap();
        assert!(pttl > 0 && pttl <= ttl, "{key}: {pttl}");
    }
    assert_eq!(
        server.command(&["EXISTS", "s"]),
        ":0",
        "nothing outside the prefix"
    );
    assert_eq!(server.command(&["DBSIZE"]), ":3");
    // Two prefixes on one server do not see each other.
    let other = server.store("other:");
    assert_eq!(other.get("p").await.unwrap(), None);
    assert!(
        other
            .advance("s", 1, Duration::from_secs(30))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_is_a_clear_error_and_a_restarted_one_works_again() {
    let mut server = RedisServer::start();
    let store = Arc::new(server.store("x:"));
    store
        .put("k", b"v".to_vec(), Duration::from_secs(60))
        .await
        .unwrap();
    server.stop();
    let error = store.get("k").await.unwrap_err().to_string();
    assert!(error.contains("redis"), "{error}");
    assert!(!error.contains("x:k"), "no key in the error: {error}");
    let error = store
        .advance("k2", 1, Duration::from_secs(60))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("redis"), "{error}");
    server.restart();
    let mut ok = false;
    for _ in 0..50 {
        if store
            .put("k", b"again".to_vec(), Duration::from_secs(60))
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the store reconnects");
    assert_eq!(
        store.get("k").await.unwrap().as_deref(),
        Some(&b"again"[..])
    );
}
