//! The rules of [`FactorStore`]: each makes subjects of its own
//! ([`fresh_subject`]), so the store may be shared.

use std::sync::Arc;

use super::{fresh_subject, random};
use crate::{Channel, FactorStore, TotpSecret};

/// How many tasks race in the concurrency rules.
const RACERS: usize = 16;

/// A TOTP secret is absent until set, read back as set, replaced by a new
/// one, removed (removing again is no error), and one subject's secret is
/// not another's; `has_totp_secret` agrees.
pub async fn totp_secret_is_set_replaced_and_removed<S: FactorStore>(store: Arc<S>) {
    let alice = fresh_subject("totp-alice");
    let bob = fresh_subject("totp-bob");
    assert_eq!(store.totp_secret(&alice).await.unwrap(), None);
    assert!(!store.has_totp_secret(&alice).await.unwrap());
    let first = TotpSecret::from_bytes(&random::<20>()).unwrap();
    store.set_totp_secret(&alice, first.clone()).await.unwrap();
    assert_eq!(store.totp_secret(&alice).await.unwrap(), Some(first));
    let second = TotpSecret::from_bytes(&random::<32>()).unwrap();
    store.set_totp_secret(&alice, second.clone()).await.unwrap();
    assert_eq!(
        store.totp_secret(&alice).await.unwrap(),
        Some(second.clone()),
        "replaced, every byte kept"
    );
    assert_eq!(
        store.totp_secret(&bob).await.unwrap(),
        None,
        "subjects are separate"
    );
    store.remove_totp_secret(&bob).await.unwrap();
    assert_eq!(
        store.totp_secret(&alice).await.unwrap(),
        Some(second),
        "removing bob's leaves alice's"
    );
    assert!(store.has_totp_secret(&alice).await.unwrap());
    assert!(!store.has_totp_secret(&bob).await.unwrap());
    store.remove_totp_secret(&alice).await.unwrap();
    assert_eq!(store.totp_secret(&alice).await.unwrap(), None);
    assert!(!store.has_totp_secret(&alice).await.unwrap());
    store.remove_totp_secret(&alice).await.unwrap();
}

/// Recovery digests: none at first; each consumed once; a new set replaces
/// the old one (whose digests stop working); `recovery_codes_left` counts
/// what is left; one subject's digests are not another's.
pub async fn recovery_digests_are_replaced_and_consumed_once<S: FactorStore>(store: Arc<S>) {
    let alice = fresh_subject("recovery-alice");
    let bob = fresh_subject("recovery-bob");
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 0);
    let [a, b, c, d] = [[1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]];
    assert!(!store.consume_recovery_digest(&alice, &a).await.unwrap());
    store
        .set_recovery_digests(&alice, vec![a, b, c])
        .await
        .unwrap();
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 3);
    assert_eq!(
        store.recovery_codes_left(&bob).await.unwrap(),
        0,
        "subjects are separate"
    );
    assert!(
        !store.consume_recovery_digest(&bob, &b).await.unwrap(),
        "bob cannot use alice's code"
    );
    assert!(store.consume_recovery_digest(&alice, &b).await.unwrap());
    assert!(
        !store.consume_recovery_digest(&alice, &b).await.unwrap(),
        "used once"
    );
    assert!(!store.consume_recovery_digest(&alice, &d).await.unwrap());
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 2);

    store.set_recovery_digests(&alice, vec![d]).await.unwrap();
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 1);
    assert!(
        !store.consume_recovery_digest(&alice, &a).await.unwrap(),
        "replaced codes stop working"
    );
    assert!(store.consume_recovery_digest(&alice, &d).await.unwrap());
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 0);

    store.set_recovery_digests(&alice, vec![a]).await.unwrap();
    store
        .set_recovery_digests(&alice, Vec::new())
        .await
        .unwrap();
    assert_eq!(
        store.recovery_codes_left(&alice).await.unwrap(),
        0,
        "an empty set clears them"
    );
}

/// Of 16 concurrent consumers of one recovery digest, exactly one gets it
/// (5 rounds); 16 concurrent consumers of 16 different digests all get
/// theirs, and none is left.
pub async fn a_recovery_digest_is_consumed_once_by_16_concurrent_consumers<S: FactorStore>(
    store: Arc<S>,
) {
    let alice = Arc::new(fresh_subject("race-recovery"));
    for round in 0..5u8 {
        let digests: Vec<[u8; 32]> = (0..4u8).map(|i| [round * 4 + i; 32]).collect();
        store
            .set_recovery_digests(&alice, digests.clone())
            .await
            .unwrap();
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..RACERS {
            let (store, alice) = (Arc::clone(&store), Arc::clone(&alice));
            let digest = digests[1];
            racers.spawn(async move { store.consume_recovery_digest(&alice, &digest).await });
        }
        let won = racers
            .join_all()
            .await
            .into_iter()
            .filter(|won| *won.as_ref().unwrap())
            .count();
        assert_eq!(won, 1, "round {round}: one consumer wins");
        assert_eq!(
            store.recovery_codes_left(&alice).await.unwrap(),
            3,
            "round {round}: one code gone"
        );
    }
    let digests: Vec<[u8; 32]> = (0..RACERS).map(|_| random::<32>()).collect();
    store
        .set_recovery_digests(&alice, digests.clone())
        .await
        .unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for digest in digests {
        let (store, alice) = (Arc::clone(&store), Arc::clone(&alice));
        racers.spawn(async move { store.consume_recovery_digest(&alice, &digest).await });
    }
    let won = racers
        .join_all()
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(won, RACERS, "no consume is lost");
    assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 0);
}

/// Replacing recovery codes is a replacement under concurrency too: after
/// 8 concurrent replacements (each a set of 4), exactly 4 codes are left,
/// all from one set (5 rounds).
pub async fn concurrent_replacements_leave_one_set_of_recovery_codes<S: FactorStore>(
    store: Arc<S>,
) {
    let alice = Arc::new(fresh_subject("race-replace"));
    for round in 0..5 {
        let sets: Vec<Vec<[u8; 32]>> = (0..8)
            .map(|_| (0..4).map(|_| random::<32>()).collect())
            .collect();
        let mut racers = tokio::task::JoinSet::new();
        for set in &sets {
            let (store, alice, set) = (Arc::clone(&store), Arc::clone(&alice), set.clone());
            racers.spawn(async move { store.set_recovery_digests(&alice, set).await });
        }
        for done in racers.join_all().await {
            done.unwrap();
        }
        assert_eq!(
            store.recovery_codes_left(&alice).await.unwrap(),
            4,
            "round {round}: one set of 4 left"
        );
        let mut winners = 0;
        for set in &sets {
            let mut used = 0;
            for digest in set {
                if store.consume_recovery_digest(&alice, digest).await.unwrap() {
                    used += 1;
                }
            }
            assert!(
                used == 0 || used == 4,
                "round {round}: a set half replaced ({used} of 4)"
            );
            winners += usize::from(used == 4);
        }
        assert_eq!(winners, 1, "round {round}: codes of one set only");
    }
}

/// A subject who registered no address has no code destination on either
/// channel.
pub async fn code_destinations_are_none_unless_registered<S: FactorStore>(store: Arc<S>) {
    let nobody = fresh_subject("destination-nobody");
    for channel in [Channel::Email, Channel::Sms] {
        assert_eq!(
            store.code_destination(&nobody, channel).await.unwrap(),
            None,
            "{channel:?}"
        );
    }
}

/// Each bump of a subject's epoch returns a larger one than the last, the
/// first one above 0 (a subject never bumped is at 0).
pub async fn epochs_only_grow_per_subject<S: FactorStore>(store: Arc<S>) {
    let alice = fresh_subject("epoch-alice");
    let mut last = 0;
    for bump in 0..10 {
        let epoch = store.bump_epoch(&alice).await.unwrap();
        assert!(epoch > last, "bump {bump}: {epoch} after {last}");
        last = epoch;
    }
}

/// A bump of one subject's epoch leaves every other subject's alone: two
/// subjects bumped the same way get the same epochs, however often a third
/// is bumped in between.
pub async fn epochs_of_subjects_are_independent<S: FactorStore>(store: Arc<S>) {
    let alice = fresh_subject("epoch-alice");
    let bob = fresh_subject("epoch-bob");
    let carol = fresh_subject("epoch-carol");
    let bob_first = store.bump_epoch(&bob).await.unwrap();
    for _ in 0..5 {
        store.bump_epoch(&alice).await.unwrap();
    }
    let bob_second = store.bump_epoch(&bob).await.unwrap();
    let carol_first = store.bump_epoch(&carol).await.unwrap();
    let carol_second = store.bump_epoch(&carol).await.unwrap();
    assert_eq!(
        (bob_first, bob_second),
        (carol_first, carol_second),
        "alice's bumps moved bob's epoch"
    );
}

/// 16 concurrent bumps of one subject's epoch are all counted: 16
/// different epochs, each above the one before the race, and the next bump
/// above them all.
pub async fn concurrent_epoch_bumps_are_all_counted<S: FactorStore>(store: Arc<S>) {
    let alice = Arc::new(fresh_subject("epoch-race"));
    let before = store.bump_epoch(&alice).await.unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..RACERS {
        let (store, alice) = (Arc::clone(&store), Arc::clone(&alice));
        racers.spawn(async move { store.bump_epoch(&alice).await });
    }
    let mut seen: Vec<u64> = racers
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), RACERS, "two bumps returned one epoch");
    assert!(seen.iter().all(|e| *e > before));
    let after = store.bump_epoch(&alice).await.unwrap();
    assert!(seen.iter().all(|e| *e < after));
}
