//! The rules of [`StateStore`]: each takes a store that starts empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StateStore;
use crate::attempts::{
    Admit, Admitted, Advance, Budget, BudgetKeys, Commit, Committed, Consecutive, Reenable,
};

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

/// The keys of one subject's budget in the admission rules: one hash tag,
/// as the engine writes them (a cluster runs each script in one slot).
fn budget_keys(name: &str) -> BudgetKeys {
    BudgetKeys {
        attempts: format!("{{s}}:{name}:attempts:"),
        lock: format!("{{s}}:{name}:lock"),
        generation: format!("{{s}}:{name}:generation"),
        backoff: format!("{{s}}:{name}:backoff"),
    }
}

fn budget(name: &str, allowed: u64) -> Budget {
    Budget {
        keys: budget_keys(name),
        allowed,
        window: TTL,
        first_lockout: Duration::from_secs(60),
        max_lockout: Duration::from_secs(150),
    }
}

fn admission(now: u64, budgets: Vec<Budget>, cap: Option<u64>) -> Admit {
    Admit {
        now,
        disabled: "{s}:disabled".into(),
        any_disabled: "{s}:any-disabled".into(),
        budgets,
        consecutive: cap.map(|cap| Consecutive {
            key: "{s}:consecutive".into(),
            cap,
        }),
    }
}

/// `admit` counts each budget, locks on the one attempt that crosses it
/// (the lockout doubling, at most the longest, each lockout starting a new
/// generation counted from zero), stops at the first locked budget, and
/// reports the tightest budget's attempts left.
pub async fn admission_counts_and_locks_with_doubling<S: StateStore>(store: Arc<S>) {
    let now = 1_000_000;
    let request = |now| admission(now, vec![budget("own", 2), budget("shared", 10)], None);
    let yes = |left| Admitted::Yes {
        left,
        consecutive: None,
    };
    assert_eq!(store.admit(&request(now)).await.unwrap(), yes(1));
    assert_eq!(store.admit(&request(now)).await.unwrap(), yes(0));
    let locked = Admitted::LockedOut { until: now + 60 };
    assert_eq!(store.admit(&request(now)).await.unwrap(), locked);
    assert_eq!(store.admit(&request(now + 59)).await.unwrap(), locked);
    // After the lockout: a new generation, counted from zero.
    let later = now + 60;
    assert_eq!(store.admit(&request(later)).await.unwrap(), yes(1));
    assert_eq!(store.admit(&request(later)).await.unwrap(), yes(0));
    // The second lockout doubles; the third would be 240 s: at most 150.
    assert_eq!(
        store.admit(&request(later)).await.unwrap(),
        Admitted::LockedOut { until: later + 120 }
    );
    let last = later + 120;
    assert_eq!(store.admit(&request(last)).await.unwrap(), yes(1));
    assert_eq!(store.admit(&request(last)).await.unwrap(), yes(0));
    assert_eq!(
        store.admit(&request(last)).await.unwrap(),
        Admitted::LockedOut { until: last + 150 }
    );
    // The shared budget counted only the attempts the own one let through
    // (6 of 10), and the tightest budget is the one reported.
    let tight = admission(
        last + 150,
        vec![budget("shared", 7), budget("own", 2)],
        None,
    );
    assert_eq!(store.admit(&tight).await.unwrap(), yes(0));
}

/// `admit` counts consecutive attempts; past the cap it disables the
/// method (and marks the subject as having one disabled), says so once as
/// "just now", and from then on stops every attempt before counting.
pub async fn admission_disables_past_the_consecutive_cap<S: StateStore>(store: Arc<S>) {
    let request = admission(1_000_000, vec![budget("own", 100)], Some(2));
    for n in 1..=2 {
        assert_eq!(
            store.admit(&request).await.unwrap(),
            Admitted::Yes {
                left: 100 - n,
                consecutive: Some(n)
            }
        );
    }
    assert_eq!(
        store.admit(&request).await.unwrap(),
        Admitted::Disabled { just_now: true }
    );
    assert_eq!(
        store.admit(&request).await.unwrap(),
        Admitted::Disabled { just_now: false }
    );
    assert!(store.get("{s}:any-disabled").await.unwrap().is_some());
    // Stopped before counting: the budget saw 3 attempts.
    let budget_only = admission(1_000_000, vec![budget("own", 100)], None);
    store.remove("{s}:disabled").await.unwrap();
    assert_eq!(
        store.admit(&budget_only).await.unwrap(),
        Admitted::Yes {
            left: 96,
            consecutive: None
        }
    );
}

/// `commit` records the step first (a step not newer changes nothing
/// else), starts budgets and the consecutive count over, enables disabled
/// methods again only while the subject is marked, and takes an entry
/// once.
pub async fn commit_records_the_step_then_starts_counters_over<S: StateStore>(store: Arc<S>) {
    let now = 1_000_000;
    let request = admission(now, vec![budget("own", 3)], Some(10));
    store.admit(&request).await.unwrap();
    store.admit(&request).await.unwrap();
    store
        .put("{s}:recovery", b"pending".to_vec(), TTL)
        .await
        .unwrap();
    let commit = |step| Commit {
        advance: Some(Advance {
            key: "{s}:step".into(),
            step,
            ttl: TTL,
        }),
        reset: vec![budget_keys("own")],
        consecutive: Some("{s}:consecutive".into()),
        any_disabled: "{s}:any-disabled".into(),
        reenable: vec![Reenable {
            disabled: "{s}:other-disabled".into(),
            consecutive: Some("{s}:other-consecutive".into()),
        }],
        take: Some("{s}:recovery".into()),
    };
    assert!(store.advance("{s}:step", 7, TTL).await.unwrap());
    assert_eq!(
        store.commit(&commit(7)).await.unwrap(),
        Committed {
            advanced: false,
            taken: false
        },
        "a used step"
    );
    // Nothing else changed: the count goes on, the entry is still there.
    assert_eq!(
        store.admit(&request).await.unwrap(),
        Admitted::Yes {
            left: 0,
            consecutive: Some(3)
        }
    );
    assert!(store.get("{s}:recovery").await.unwrap().is_some());

    // Another method disabled, but the subject not marked: it stays.
    store
        .put("{s}:other-disabled", b"1".to_vec(), TTL)
        .await
        .unwrap();
    store.increment("{s}:other-consecutive", TTL).await.unwrap();
    assert_eq!(
        store.commit(&commit(8)).await.unwrap(),
        Committed {
            advanced: true,
            taken: true
        }
    );
    assert!(store.get("{s}:other-disabled").await.unwrap().is_some());
    assert_eq!(
        store.admit(&request).await.unwrap(),
        Admitted::Yes {
            left: 2,
            consecutive: Some(1)
        },
        "started over"
    );
    // Marked: enabled again, its consecutive count gone; taken once.
    store
        .put("{s}:any-disabled", b"1".to_vec(), TTL)
        .await
        .unwrap();
    assert_eq!(
        store.commit(&commit(9)).await.unwrap(),
        Committed {
            advanced: true,
            taken: false
        }
    );
    assert_eq!(store.get("{s}:other-disabled").await.unwrap(), None);
    assert_eq!(
        store.increment("{s}:other-consecutive", TTL).await.unwrap(),
        1
    );
    // A commit without a step or anything to take.
    let plain = Commit {
        advance: None,
        take: None,
        ..commit(0)
    };
    assert_eq!(
        store.commit(&plain).await.unwrap(),
        Committed {
            advanced: true,
            taken: false
        }
    );
}

/// Of 20 concurrent admissions to a budget of 5, exactly 5 are let
/// through and the rest are locked out; of 8 concurrent commits of one
/// step, one records it.
pub async fn admissions_race_to_the_budget<S: StateStore>(store: Arc<S>) {
    let request = Arc::new(admission(1_000_000, vec![budget("race", 5)], None));
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (store, request) = (Arc::clone(&store), Arc::clone(&request));
        racers.spawn(async move { store.admit(&request).await.unwrap() });
    }
    let outcomes = racers.join_all().await;
    let through = outcomes
        .iter()
        .filter(|o| matches!(o, Admitted::Yes { .. }))
        .count();
    assert_eq!(through, 5, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Admitted::Yes { .. } | Admitted::LockedOut { .. })),
        "{outcomes:?}"
    );
    let commit = Arc::new(Commit {
        advance: Some(Advance {
            key: "{s}:race-step".into(),
            step: 42,
            ttl: TTL,
        }),
        reset: vec![budget_keys("race")],
        consecutive: None,
        any_disabled: "{s}:any-disabled".into(),
        reenable: Vec::new(),
        take: None,
    });
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, commit) = (Arc::clone(&store), Arc::clone(&commit));
        racers.spawn(async move { store.commit(&commit).await.unwrap().advanced });
    }
    let won = racers.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
}
