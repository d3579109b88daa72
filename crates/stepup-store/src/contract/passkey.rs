//! The rules of [`PasskeyStore`] (feature `passkey`): each makes subjects
//! and credential ids of its own, random, so the store may be shared.

use std::sync::Arc;

use super::{fresh_subject, random};
use crate::{PasskeyStore, StoredPasskey};

/// How many tasks race in the concurrency rule.
const RACERS: usize = 16;

/// A passkey record with credential id `id`, the user's `name` for it and
/// signature counter `counter`, as a store would receive it after a
/// registration (a P-256 public key; the record is never verified here).
///
/// ```
/// use stepup_store::contract::passkey::{counter_of, passkey};
///
/// let key = passkey(b"credential-1", "laptop", 7);
/// assert_eq!(key.id(), b"credential-1");
/// assert_eq!(key.name, "laptop");
/// assert_eq!(counter_of(&key), 7);
/// ```
pub fn passkey(id: &[u8], name: &str, counter: u32) -> StoredPasskey {
    use base64::Engine as _;
    let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
    let record = serde_json::json!({"cred": {
        "cred_id": id,
        "cred": {"type_": "ES256", "key": {"EC_EC2": {
            "curve": "SECP256R1",
            "x": "jrYl7Edv08FI9tCTyWOV_Mk4YQqf_Lqe4BenLORg0gg",
            "y": "Zs54bIqNDOkhOOGgAxk2s-XHvDMT_005rMkCEH65eCM",
        }}},
        "counter": counter,
        "transports": null,
        "user_verified": true,
        "backup_eligible": false,
        "backup_state": false,
        "registration_policy": "required",
        "extensions": {
            "cred_protect": "Ignored",
            "hmac_create_secret": "NotRequested",
            "appid": "NotRequested",
            "cred_props": "Ignored",
        },
        "attestation": {"data": "Self_", "metadata": "None"},
        "attestation_format": "packed",
    }});
    StoredPasskey {
        name: name.to_owned(),
        passkey: serde_json::from_value(record).expect("a passkey record webauthn-rs reads"),
    }
}

/// The signature counter of a stored passkey (what
/// [`update_passkey`](PasskeyStore::update_passkey) moves after a use).
pub fn counter_of(passkey: &StoredPasskey) -> u64 {
    u64::from(passkey.counter().expect("a stored passkey has a counter"))
}

/// A random credential id.
fn fresh_id() -> Vec<u8> {
    random::<16>().to_vec()
}

/// (name, credential id, counter) of each of the subject's passkeys.
async fn listed<S: PasskeyStore>(
    store: &S,
    subject: &stepup_core::Subject,
) -> Vec<(String, Vec<u8>, u64)> {
    store
        .passkeys(subject)
        .await
        .unwrap()
        .iter()
        .map(|p| (p.name.clone(), p.id().to_vec(), counter_of(p)))
        .collect()
}

/// Passkeys are listed in registration order, with their names, ids and
/// counters as added; one subject's are not another's.
pub async fn passkeys_are_listed_in_registration_order<S: PasskeyStore>(store: Arc<S>) {
    let alice = fresh_subject("passkey-alice");
    let bob = fresh_subject("passkey-bob");
    assert!(store.passkeys(&alice).await.unwrap().is_empty());
    let (first, second, third) = (fresh_id(), fresh_id(), fresh_id());
    for (id, name, counter) in [
        (&first, "laptop", 1),
        (&second, "phone", 0),
        (&third, "key", 9),
    ] {
        assert!(
            store
                .add_passkey(&alice, passkey(id, name, counter))
                .await
                .unwrap()
        );
    }
    assert_eq!(
        listed(&*store, &alice).await,
        [
            ("laptop".to_owned(), first, 1),
            ("phone".to_owned(), second, 0),
            ("key".to_owned(), third, 9),
        ]
    );
    assert!(
        store.passkeys(&bob).await.unwrap().is_empty(),
        "subjects are separate"
    );
}

/// A credential id is registered once across all subjects: adding it again
/// — to the same subject or another — is refused and changes nothing.
/// Once removed, it may be registered again.
pub async fn a_credential_id_is_registered_to_one_subject<S: PasskeyStore>(store: Arc<S>) {
    let alice = fresh_subject("unique-alice");
    let bob = fresh_subject("unique-bob");
    let id = fresh_id();
    assert!(
        store
            .add_passkey(&alice, passkey(&id, "laptop", 0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_passkey(&alice, passkey(&id, "again", 5))
            .await
            .unwrap(),
        "the same subject"
    );
    assert!(
        !store
            .add_passkey(&bob, passkey(&id, "stolen", 5))
            .await
            .unwrap(),
        "another subject"
    );
    assert_eq!(
        listed(&*store, &alice).await,
        [("laptop".to_owned(), id.clone(), 0)]
    );
    assert!(store.passkeys(&bob).await.unwrap().is_empty());
    assert!(store.remove_passkey(&alice, &id).await.unwrap());
    assert!(
        store
            .add_passkey(&bob, passkey(&id, "bob's now", 0))
            .await
            .unwrap(),
        "a removed credential id is free again"
    );
}

/// Of 16 concurrent adds of one credential id, to 16 subjects, exactly one
/// succeeds and only that subject holds it.
pub async fn concurrent_adds_of_one_credential_have_one_winner<S: PasskeyStore>(store: Arc<S>) {
    let id = fresh_id();
    let subjects: Vec<_> = (0..RACERS)
        .map(|_| Arc::new(fresh_subject("race-passkey")))
        .collect();
    let mut racers = tokio::task::JoinSet::new();
    for subject in &subjects {
        let (store, subject, id) = (Arc::clone(&store), Arc::clone(subject), id.clone());
        racers.spawn(async move { store.add_passkey(&subject, passkey(&id, "racer", 0)).await });
    }
    let won = racers
        .join_all()
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(won, 1, "one add wins");
    let mut holders = 0;
    for subject in &subjects {
        holders += store.passkeys(subject).await.unwrap().len();
    }
    assert_eq!(holders, 1, "one subject holds the credential");
}

/// `update_passkey` replaces the stored credential (its counter moves; its
/// name stays) only while it is registered to that subject: not for
/// another subject, and never after a removal (it does not come back).
pub async fn update_replaces_only_a_registered_credential<S: PasskeyStore>(store: Arc<S>) {
    let alice = fresh_subject("update-alice");
    let bob = fresh_subject("update-bob");
    let id = fresh_id();
    assert!(
        !store
            .update_passkey(&alice, passkey(&id, "laptop", 1))
            .await
            .unwrap(),
        "never registered"
    );
    assert!(store.passkeys(&alice).await.unwrap().is_empty());
    assert!(
        store
            .add_passkey(&alice, passkey(&id, "laptop", 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .update_passkey(&alice, passkey(&id, "laptop", 5))
            .await
            .unwrap()
    );
    assert_eq!(
        listed(&*store, &alice).await,
        [("laptop".to_owned(), id.clone(), 5)]
    );
    assert!(
        !store
            .update_passkey(&bob, passkey(&id, "laptop", 6))
            .await
            .unwrap(),
        "not bob's"
    );
    assert!(store.passkeys(&bob).await.unwrap().is_empty());
    assert_eq!(
        listed(&*store, &alice).await,
        [("laptop".to_owned(), id.clone(), 5)]
    );
    assert!(store.rename_passkey(&alice, &id, "work").await.unwrap());
    let mut used = store.passkeys(&alice).await.unwrap().remove(0);
    used.name = "ignored".to_owned();
    used = StoredPasskey {
        passkey: passkey(&id, "", 8).passkey,
        ..used
    };
    assert!(store.update_passkey(&alice, used).await.unwrap());
    assert_eq!(
        listed(&*store, &alice).await,
        [("work".to_owned(), id.clone(), 8)],
        "an update keeps the stored name"
    );
    assert!(store.remove_passkey(&alice, &id).await.unwrap());
    assert!(
        !store
            .update_passkey(&alice, passkey(&id, "work", 9))
            .await
            .unwrap(),
        "removed"
    );
    assert!(
        store.passkeys(&alice).await.unwrap().is_empty(),
        "an update never brings a removed credential back"
    );
}

/// `update_passkey` never moves a signature counter back: an update whose
/// counter is not above the stored one is refused (`false`, nothing
/// changes) unless both are 0 (an authenticator that keeps no counter); of
/// 16 concurrent updates with counters 1 to 16, the stored counter ends at
/// 16, whatever order they land in.
pub async fn a_signature_counter_never_moves_back<S: PasskeyStore>(store: Arc<S>) {
    let alice = Arc::new(fresh_subject("counter-alice"));
    let id = fresh_id();
    assert!(
        store
            .add_passkey(&alice, passkey(&id, "key", 5))
            .await
            .unwrap()
    );
    for stale in [3, 5] {
        assert!(
            !store
                .update_passkey(&alice, passkey(&id, "key", stale))
                .await
                .unwrap(),
            "counter {stale} after 5"
        );
    }
    assert_eq!(
        listed(&*store, &alice).await[0].2,
        5,
        "a stale update changes nothing"
    );
    assert!(
        store
            .update_passkey(&alice, passkey(&id, "key", 6))
            .await
            .unwrap()
    );
    assert_eq!(listed(&*store, &alice).await[0].2, 6);

    let without = fresh_id();
    assert!(
        store
            .add_passkey(&alice, passkey(&without, "synced", 0))
            .await
            .unwrap()
    );
    assert!(
        store
            .update_passkey(&alice, passkey(&without, "synced", 0))
            .await
            .unwrap(),
        "no counter: every use updates (its backup state)"
    );
    assert!(
        store
            .update_passkey(&alice, passkey(&without, "synced", 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_passkey(&alice, passkey(&without, "synced", 0))
            .await
            .unwrap(),
        "back to 0 after 2"
    );

    let raced = fresh_id();
    assert!(
        store
            .add_passkey(&alice, passkey(&raced, "raced", 0))
            .await
            .unwrap()
    );
    let mut racers = tokio::task::JoinSet::new();
    for counter in 1..=RACERS as u32 {
        let (store, alice, raced) = (Arc::clone(&store), Arc::clone(&alice), raced.clone());
        racers.spawn(async move {
            store
                .update_passkey(&alice, passkey(&raced, "raced", counter))
                .await
        });
    }
    let won = racers
        .join_all()
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert!(won >= 1, "the highest counter always lands");
    let stored = listed(&*store, &alice)
        .await
        .into_iter()
        .find(|(_, id, _)| *id == raced)
        .unwrap();
    assert_eq!(stored.2, RACERS as u64, "the counter ends at the highest");
}

/// `remove_passkey` and `rename_passkey` say whether the subject had the
/// passkey, and touch nothing of another subject's.
pub async fn remove_and_rename_say_whether_it_was_there<S: PasskeyStore>(store: Arc<S>) {
    let alice = fresh_subject("remove-alice");
    let bob = fresh_subject("remove-bob");
    let (kept, removed) = (fresh_id(), fresh_id());
    for (id, name) in [(&kept, "laptop"), (&removed, "phone")] {
        assert!(
            store
                .add_passkey(&alice, passkey(id, name, 0))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .rename_passkey(&alice, &kept, "work laptop")
            .await
            .unwrap()
    );
    assert!(
        !store
            .rename_passkey(&alice, &fresh_id(), "nothing")
            .await
            .unwrap(),
        "no such passkey"
    );
    assert!(
        !store.rename_passkey(&bob, &kept, "bob's").await.unwrap(),
        "not bob's"
    );
    assert!(
        !store.remove_passkey(&bob, &kept).await.unwrap(),
        "not bob's"
    );
    assert!(store.remove_passkey(&alice, &removed).await.unwrap());
    assert!(
        !store.remove_passkey(&alice, &removed).await.unwrap(),
        "already removed"
    );
    assert!(
        !store
            .rename_passkey(&alice, &removed, "gone")
            .await
            .unwrap(),
        "removed"
    );
    assert_eq!(
        listed(&*store, &alice).await,
        [("work laptop".to_owned(), kept, 0)]
    );
}

/// Stamps one `#[test]` per [`PasskeyStore`] rule
/// ([`contract::passkey`](crate::contract::passkey)) in a module `$name`:
/// `passkey_store_contract!(name, factory)`, where `factory` is a future of
/// the store (see [`contract`](crate::contract)). Features `contract` and
/// `passkey`.
///
/// ```
/// stepup_store::passkey_store_contract!(memory, async {
///     stepup_store::MemoryFactorStore::new()
/// });
/// ```
#[macro_export]
macro_rules! passkey_store_contract {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::__stamp_contract!(
            $name,
            $factory,
            passkey,
            [
                passkeys_are_listed_in_registration_order,
                a_credential_id_is_registered_to_one_subject,
                concurrent_adds_of_one_credential_have_one_winner,
                update_replaces_only_a_registered_credential,
                a_signature_counter_never_moves_back,
                remove_and_rename_say_whether_it_was_there,
            ]
        );
    };
}
