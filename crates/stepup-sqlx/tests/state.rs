//! What only the SQL state store has: expired rows swept in batches,
//! in the background, while live ones stay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Where, database};
use stepup_core::{TestClock, Timestamp};
use stepup_sqlx::SqlStateStore;
use stepup_store::StateStore;

async fn expired_rows_are_swept_and_live_ones_stay(place: Where) {
    let (url, _dir) = database(place);
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let store = SqlStateStore::connect(&url)
        .await
        .unwrap()
        .with_clock(clock.clone());
    store.migrate().await.unwrap();
    // 1 200 short-lived rows (more than two sweep batches) and one that lives.
    for i in 0..1_200 {
        store
            .put(&format!("short-{i}"), vec![1], Duration::from_secs(10))
            .await
            .unwrap();
    }
    store
        .increment("long", Duration::from_secs(3_600))
        .await
        .unwrap();
    assert_eq!(
        store.sweep_expired().await.unwrap(),
        0,
        "nothing expired yet"
    );
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        store.get("short-0").await.unwrap(),
        None,
        "expired rows are invisible"
    );
    assert_eq!(store.sweep_expired().await.unwrap(), 1_200);
    assert_eq!(
        store
            .increment("long", Duration::from_secs(3_600))
            .await
            .unwrap(),
        2
    );

    // The background sweeper does the same, until dropped.
    store
        .put("soon", vec![2], Duration::from_secs(5))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(5));
    let before = store.statements();
    let sweeper = store.spawn_sweeper(Duration::from_millis(20));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.statements() < before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweeper never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(sweeper);
    assert_eq!(
        store.sweep_expired().await.unwrap(),
        0,
        "the sweeper took it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_expired_rows_are_swept_and_live_ones_stay() {
    expired_rows_are_swept_and_live_ones_stay(Where::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_expired_rows_are_swept_and_live_ones_stay() {
    expired_rows_are_swept_and_live_ones_stay(Where::Postgres).await;
}
