//! The rules of [`StateStore`]: each takes a store that starts empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StateStore;

/// Long enough that nothing expires while a rule that is not about expiry
/// runs, however loaded the machine.
const TTL: Duration = Duration::from_secs(60);
/// What [`entries_expire`] gives its entries. Whole seconds: the memory
/// store keeps time in whole seconds (an entry made at 10.9 s for 3 s ends
/// at 13 s: it lives between 2 and 3 s), Redis in milliseconds.
const EXPIRY: Duration = Duration::from_secs(3);
/// The counter window [`entries_expire`] checks.
const WINDOW: Duration = Duration::from_secs(4);

/// `advance` sets a step only if it is newer than the one recorded; keys
/// are separate.
pub async fn advance_only_moves_forward<S: StateStore>(store: Arc<S>) {
    assert!(store.advance("step", 10, TTL).await.unwrap());
    assert!(!store.advance("step", 10, TTL).await.unwrap(), "same step");
    assert!(!store.advance("step", 9, TTL).await.unwrap(), "older step");
    assert!(store.advance("step", 11, TTL).await.unwrap());
    assert!(
        store.advance("other", 1, TTL).await.unwrap(),
        "keys are separate"
    );
}

/// `increment` counts from 1, per key.
pub async fn increment_counts_from_one<S: StateStore>(store: Arc<S>) {
    assert_eq!(store.increment("count", TTL).await.unwrap(), 1);
    assert_eq!(store.increment("count", TTL).await.unwrap(), 2);
    assert_eq!(store.increment("count", TTL).await.unwrap(), 3);
    assert_eq!(store.increment("count2", TTL).await.unwrap(), 1);
}

/// `put` replaces (binary values), `get` reads, `take` removes once,
/// `remove` removes (an absent key too).
pub async fn put_get_take_remove<S: StateStore>(store: Arc<S>) {
    assert_eq!(store.get("v").await.unwrap(), None);
    store.put("v", b"one".to_vec(), TTL).await.unwrap();
    assert_eq!(store.get("v").await.unwrap().as_deref(), Some(&b"one"[..]));
    store.put("v", vec![0, 255, 1], TTL).await.unwrap();
    assert_eq!(
        store.get("v").await.unwrap(),
        Some(vec![0, 255, 1]),
        "binary, replaced"
    );
    assert_eq!(store.take("v").await.unwrap(), Some(vec![0, 255, 1]));
    assert_eq!(store.take("v").await.unwrap(), None, "taken once");
    store.put("w", b"x".to_vec(), TTL).await.unwrap();
    store.remove("w").await.unwrap();
    assert_eq!(store.get("w").await.unwrap(), None);
    store.remove("never-there").await.unwrap();
}

/// Sleeps until `at` (now if it has passed).
async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// Steps, counters and values expire after their time (real time: about
/// 4.5 s), and a counter's window is fixed at its first increment.
pub async fn entries_expire<S: StateStore>(store: Arc<S>) {
    let start = Instant::now();
    let at = |millis: u64| start + Duration::from_millis(millis);
    assert!(store.advance("e-step", 5, EXPIRY).await.unwrap());
    assert_eq!(store.increment("e-count", EXPIRY).await.unwrap(), 1);
    store.put("e-value", b"v".to_vec(), EXPIRY).await.unwrap();
    // The counter whose window is checked below opens now.
    assert_eq!(store.increment("window", WINDOW).await.unwrap(), 1);
    // Every bound below leaves this much slack (the memory store's entries
    // end up to a second early, at a whole second).
    assert!(start.elapsed() < Duration::from_millis(400), "slow setup");

    // One second in, everything is still there (every store keeps an entry
    // made for 3 s at least 2 s).
    sleep_until(at(1_000)).await;
    assert!(
        !store.advance("e-step", 5, EXPIRY).await.unwrap(),
        "the step is still recorded"
    );
    assert_eq!(
        store.get("e-value").await.unwrap().as_deref(),
        Some(&b"v"[..]),
        "the value is still there"
    );
    assert_eq!(
        store.increment("e-count", EXPIRY).await.unwrap(),
        2,
        "the counter still counts"
    );
    // Its window is still open after 2.5 s: this increment counts in it.
    sleep_until(at(2_500)).await;
    assert_eq!(store.increment("window", WINDOW).await.unwrap(), 2);

    // Past 3 s, all three have expired.
    sleep_until(at(3_400)).await;
    assert!(
        store.advance("e-step", 1, EXPIRY).await.unwrap(),
        "the step expired"
    );
    assert_eq!(
        store.increment("e-count", EXPIRY).await.unwrap(),
        1,
        "the counter expired"
    );
    assert_eq!(
        store.get("e-value").await.unwrap(),
        None,
        "the value expired"
    );

    // A counter's window starts at its first increment: later increments
    // do not extend it. 4.4 s after the first increment the window is over;
    // a window that slid with the increment at 2.5 s would last until at
    // least 5.5 s (6.5 s on Redis) and still count.
    sleep_until(at(4_400)).await;
    assert_eq!(
        store.increment("window", WINDOW).await.unwrap(),
        1,
        "the window is fixed: it ended 4 s after its first increment"
    );
    assert!(
        start.elapsed() < Duration::from_millis(5_400),
        "too slow to tell a fixed window from a sliding one"
    );
}

/// Of 8 concurrent takes of one value, one gets it (20 rounds); of 8
/// concurrent advances to one step, one wins; 50 concurrent increments
/// lose no count.
pub async fn takes_race_to_one_winner<S: StateStore>(store: Arc<S>) {
    for round in 0..20 {
        let key = format!("race-{round}");
        store.put(&key, b"once".to_vec(), TTL).await.unwrap();
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let store = Arc::clone(&store);
            let key = key.clone();
            racers.spawn(async move { store.take(&key).await.unwrap() });
        }
        let won = racers.join_all().await.into_iter().flatten().count();
        assert_eq!(won, 1, "round {round}");
    }
    // Racing advances of one step: one wins.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        racers.spawn(async move { store.advance("race-step", 77, TTL).await.unwrap() });
    }
    let won = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
    // Racing increments lose no count.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = Arc::clone(&store);
        racers.spawn(async move { store.increment("race-count", TTL).await.unwrap() });
    }
    let mut seen = racers.join_all().await;
    seen.sort_unstable();
    assert_eq!(seen, (1..=50).collect::<Vec<u64>>());
}
