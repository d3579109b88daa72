//! Sealing at rest, as an attacker with write access to the database (or
//! a backup) would try it, on an SQLite file and on PostgreSQL: rows copied
//! to another user, credential or column, flipped bytes, a store opened
//! with the wrong key, and key rotation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Raw, TempDir, Where, contains, database, keys};
use stepup_core::Subject;
use stepup_sqlx::{SealingKey, SealingKeys, SqlStore};
use stepup_store::contract::passkey::passkey;
use stepup_store::{FactorStore, PasskeyStore, StoreError, TotpSecret};

/// A fresh database: a store on it with `keys`, migrated, and a raw pool.
struct Db {
    url: String,
    raw: Raw,
    _dir: Option<TempDir>,
}

impl Db {
    async fn new(place: Where) -> Db {
        let (url, dir) = database(place);
        let raw = Raw::new(&url).await;
        Db {
            url,
            raw,
            _dir: dir,
        }
    }

    async fn store(&self, keys: SealingKeys) -> SqlStore {
        let store = SqlStore::connect(&self.url, keys).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

/// Runs `test` on an SQLite file and on PostgreSQL.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Where::SqliteFile).await } )* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Where::Postgres).await } )* }
    };
}

on_both!(
    a_totp_row_copied_to_another_user_does_not_open,
    a_passkey_row_copied_to_another_credential_or_user_does_not_open,
    a_sealed_value_moved_to_another_column_does_not_open,
    a_flipped_byte_does_not_open,
    a_store_with_the_wrong_key_is_refused,
    rows_sealed_under_an_old_key_open_and_writes_reseal,
    nothing_is_stored_in_the_clear,
    errors_name_the_operation_and_kind_never_a_user,
    migrations_apply_once_under_concurrency_and_refuse_a_changed_schema,
    reseal_counts_and_passes_rows_that_do_not_open,
);

fn secret(byte: u8) -> TotpSecret {
    TotpSecret::from_bytes(&[byte; 20]).unwrap()
}

/// The error says the value does not open, and names no user.
fn does_not_open(e: &StoreError, who: &[&str]) {
    let text = e.to_string();
    assert!(text.contains("does not open"), "{text}");
    for who in who {
        assert!(!text.contains(who), "names {who}: {text}");
    }
}

async fn a_totp_row_copied_to_another_user_does_not_open(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let (alice, bob) = (Subject::new("alice-a1"), Subject::new("bob-b1"));
    store.set_totp_secret(&alice, secret(1)).await.unwrap();
    store.set_totp_secret(&bob, secret(2)).await.unwrap();
    // Bob's row gets alice's sealed secret: a wrong secret would let alice's
    // authenticator app step up as bob.
    let copied = db
        .raw
        .execute(
            "UPDATE stepup_totp SET sealed = (SELECT sealed FROM stepup_totp WHERE subject = 'alice-a1') \
             WHERE subject = 'bob-b1'",
        )
        .await;
    assert_eq!(copied, 1);
    let e = store.totp_secret(&bob).await.unwrap_err();
    does_not_open(&e, &["alice-a1", "bob-b1"]);
    // A new user given alice's row: the same.
    db.raw
        .execute(
            "INSERT INTO stepup_totp (subject, key_id, sealed, updated_at) \
             SELECT 'carol-c1', key_id, sealed, updated_at FROM stepup_totp WHERE subject = 'alice-a1'",
        )
        .await;
    does_not_open(
        &store
            .totp_secret(&Subject::new("carol-c1"))
            .await
            .unwrap_err(),
        &["carol-c1"],
    );
    // Alice's own row still opens.
    assert_eq!(store.totp_secret(&alice).await.unwrap(), Some(secret(1)));
}

async fn a_passkey_row_copied_to_another_credential_or_user_does_not_open(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let (alice, bob) = (Subject::new("alice-a2"), Subject::new("bob-b2"));
    store
        .add_passkey(&alice, passkey(b"alice-laptop", "laptop", 3))
        .await
        .unwrap();
    store
        .add_passkey(&alice, passkey(b"alice-phone", "phone", 0))
        .await
        .unwrap();
    store
        .add_passkey(&bob, passkey(b"bob-key", "key", 0))
        .await
        .unwrap();
    assert_eq!(store.passkeys(&alice).await.unwrap().len(), 2);

    // Bob's credential row gets alice's sealed record: alice's
    // authenticator would then sign in as bob.
    db.raw
        .execute(
            "UPDATE stepup_passkeys SET sealed = (SELECT sealed FROM stepup_passkeys WHERE name = 'laptop'), \
             key_id = (SELECT key_id FROM stepup_passkeys WHERE name = 'laptop') WHERE name = 'key'",
        )
        .await;
    // A record that does not open is skipped, never read as another's.
    assert!(store.passkeys(&bob).await.unwrap().is_empty());

    // Within one user: the phone's row gets the laptop's record.
    db.raw
        .execute(
            "UPDATE stepup_passkeys SET sealed = (SELECT sealed FROM stepup_passkeys WHERE name = 'laptop') \
             WHERE name = 'phone'",
        )
        .await;
    assert_eq!(
        names(&store, &alice).await,
        ["laptop"],
        "the phone's row is skipped"
    );

    // Moving a whole row (credential id and all) to bob does not open either.
    db.raw
        .execute("DELETE FROM stepup_passkeys WHERE name IN ('phone', 'key')")
        .await;
    db.raw
        .execute("UPDATE stepup_passkeys SET subject = 'bob-b2' WHERE name = 'laptop'")
        .await;
    assert!(store.passkeys(&bob).await.unwrap().is_empty());
    assert!(store.passkeys(&alice).await.unwrap().is_empty());
    // The rows that do not open are counted for the operator.
    let report = store.reseal().await.unwrap();
    assert_eq!(
        report.unreadable, 0,
        "reseal looks at rows under older keys only"
    );
}

async fn names(store: &SqlStore, who: &Subject) -> Vec<String> {
    store
        .passkeys(who)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

async fn a_sealed_value_moved_to_another_column_does_not_open(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let alice = Subject::new("alice-a3");
    store.set_totp_secret(&alice, secret(1)).await.unwrap();
    store
        .add_passkey(&alice, passkey(b"cred", "laptop", 0))
        .await
        .unwrap();
    let totp = db
        .raw
        .bytes("SELECT sealed FROM stepup_totp WHERE subject = 'alice-a3'")
        .await;
    let record = db
        .raw
        .bytes("SELECT sealed FROM stepup_passkeys WHERE subject = 'alice-a3'")
        .await;
    db.raw
        .set_bytes(
            "UPDATE stepup_totp SET sealed = $1 WHERE subject = 'alice-a3'",
            record,
        )
        .await;
    db.raw
        .set_bytes(
            "UPDATE stepup_passkeys SET sealed = $1 WHERE subject = 'alice-a3'",
            totp,
        )
        .await;
    does_not_open(&store.totp_secret(&alice).await.unwrap_err(), &["alice-a3"]);
    assert!(
        store.passkeys(&alice).await.unwrap().is_empty(),
        "skipped, not misread"
    );
}

async fn a_flipped_byte_does_not_open(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let alice = Subject::new("alice-a4");
    store.set_totp_secret(&alice, secret(1)).await.unwrap();
    let sealed = db
        .raw
        .bytes("SELECT sealed FROM stepup_totp WHERE subject = 'alice-a4'")
        .await;
    // The format byte, the nonce, the ciphertext, the tag.
    for at in [0, 1, 24, 25, sealed.len() / 2, sealed.len() - 1] {
        let mut flipped = sealed.clone();
        flipped[at] ^= 0x01;
        db.raw
            .set_bytes(
                "UPDATE stepup_totp SET sealed = $1 WHERE subject = 'alice-a4'",
                flipped,
            )
            .await;
        does_not_open(&store.totp_secret(&alice).await.unwrap_err(), &["alice-a4"]);
    }
    // Truncated, and empty.
    for cut in [sealed[..sealed.len() - 1].to_vec(), Vec::new()] {
        db.raw
            .set_bytes(
                "UPDATE stepup_totp SET sealed = $1 WHERE subject = 'alice-a4'",
                cut,
            )
            .await;
        does_not_open(&store.totp_secret(&alice).await.unwrap_err(), &["alice-a4"]);
    }
    // The key id relabelled: a key the ring does not hold.
    db.raw
        .set_bytes(
            "UPDATE stepup_totp SET sealed = $1 WHERE subject = 'alice-a4'",
            sealed,
        )
        .await;
    db.raw
        .execute("UPDATE stepup_totp SET key_id = 9 WHERE subject = 'alice-a4'")
        .await;
    let e = store.totp_secret(&alice).await.unwrap_err().to_string();
    assert!(
        e.contains("key id 9, which the sealing keys do not hold"),
        "{e}"
    );
}

async fn a_store_with_the_wrong_key_is_refused(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let alice = Subject::new("alice-a5");
    store.set_totp_secret(&alice, secret(1)).await.unwrap();

    // Another key under the same id: refused at start, before any use.
    let wrong = SqlStore::connect(&db.url, keys(1, 8)).await.unwrap();
    let e = wrong.migrate().await.unwrap_err().to_string();
    assert!(
        e.contains("the sealing key with id 1 is not the key this database knows"),
        "{e}"
    );
    // If it is used anyway, nothing opens (an error, never a secret), and it
    // seals nothing the right key could not open.
    does_not_open(&wrong.totp_secret(&alice).await.unwrap_err(), &["alice-a5"]);
    let e = wrong
        .set_totp_secret(&Subject::new("bob-a5"), secret(2))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not the key this database knows"), "{e}");

    // A new id is not refused (rotation), but alone it opens nothing old.
    let other = SqlStore::connect(&db.url, keys(2, 8)).await.unwrap();
    other.migrate().await.unwrap();
    let e = other.totp_secret(&alice).await.unwrap_err().to_string();
    assert!(
        e.contains("key id 1, which the sealing keys do not hold"),
        "{e}"
    );
}

async fn rows_sealed_under_an_old_key_open_and_writes_reseal(place: Where) {
    let db = Db::new(place).await;
    let old = SealingKey::new(1, [1; 32]);
    let new = SealingKey::new(2, [2; 32]);
    let before = db.store(SealingKeys::new(old.clone())).await;
    let (alice, bob, carol) = (
        Subject::new("alice-r"),
        Subject::new("bob-r"),
        Subject::new("carol-r"),
    );
    for (who, byte) in [(&alice, 1), (&bob, 2), (&carol, 3)] {
        before.set_totp_secret(who, secret(byte)).await.unwrap();
    }
    before
        .add_passkey(&alice, passkey(b"alice-key", "key", 1))
        .await
        .unwrap();
    before
        .add_passkey(&bob, passkey(b"bob-key", "key", 1))
        .await
        .unwrap();
    before
        .set_recovery_digests(&alice, vec![[1; 32], [2; 32]])
        .await
        .unwrap();

    // The new key first, the old one kept: everything still opens.
    let ring = SealingKeys::new(new.clone()).with_old(old.clone()).unwrap();
    let rotated = db.store(ring).await;
    assert_eq!(rotated.totp_secret(&alice).await.unwrap(), Some(secret(1)));
    assert_eq!(rotated.passkeys(&bob).await.unwrap().len(), 1);
    assert!(
        rotated
            .consume_recovery_digest(&alice, &[1; 32])
            .await
            .unwrap(),
        "a code digested under the old key works"
    );

    // Writes seal under the new key.
    rotated.set_totp_secret(&alice, secret(9)).await.unwrap();
    assert!(
        rotated
            .update_passkey(&alice, passkey(b"alice-key", "key", 2))
            .await
            .unwrap()
    );
    let key_of = |table: &str, subject: &str| {
        format!("SELECT key_id FROM {table} WHERE subject = '{subject}'")
    };
    assert_eq!(db.raw.number(&key_of("stepup_totp", "alice-r")).await, 2);
    assert_eq!(
        db.raw.number(&key_of("stepup_passkeys", "alice-r")).await,
        2
    );
    assert_eq!(db.raw.number(&key_of("stepup_totp", "bob-r")).await, 1);

    // Reseal moves the rest; the recovery code left under the old key is
    // counted (it cannot be re-keyed).
    let report = rotated.reseal().await.unwrap();
    assert_eq!(
        (
            report.totp,
            report.passkeys,
            report.recovery_codes_under_old_keys
        ),
        (2, 1, 1)
    );
    assert_eq!(rotated.reseal().await.unwrap().totp, 0, "nothing left");

    // Without the old key now: every TOTP secret and passkey opens.
    let after = db.store(SealingKeys::new(new)).await;
    for (who, byte) in [(&alice, 9), (&bob, 2), (&carol, 3)] {
        assert_eq!(after.totp_secret(who).await.unwrap(), Some(secret(byte)));
    }
    assert_eq!(after.passkeys(&alice).await.unwrap().len(), 1);
    assert_eq!(after.passkeys(&bob).await.unwrap().len(), 1);
    // A set of codes made now is digested under the new key.
    after
        .set_recovery_digests(&alice, vec![[3; 32]])
        .await
        .unwrap();
    assert_eq!(
        db.raw
            .number(&key_of("stepup_recovery_codes", "alice-r"))
            .await,
        2
    );
    assert!(
        after
            .consume_recovery_digest(&alice, &[3; 32])
            .await
            .unwrap()
    );
}

async fn nothing_is_stored_in_the_clear(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let alice = Subject::new("alice-a6");
    let totp = TotpSecret::from_bytes(b"TOTP-SECRET-BYTES-0123").unwrap();
    store.set_totp_secret(&alice, totp).await.unwrap();
    let digest = [0xabu8; 32];
    store
        .set_recovery_digests(&alice, vec![digest])
        .await
        .unwrap();
    store
        .add_passkey(&alice, passkey(b"cred-a6", "laptop", 0))
        .await
        .unwrap();

    let sealed = db
        .raw
        .bytes("SELECT sealed FROM stepup_totp WHERE subject = 'alice-a6'")
        .await;
    assert!(
        !contains(&sealed, b"TOTP-SECRET"),
        "the secret in the clear"
    );
    let stored = db
        .raw
        .bytes("SELECT digest FROM stepup_recovery_codes WHERE subject = 'alice-a6'")
        .await;
    assert_eq!(stored.len(), 32);
    assert_ne!(
        stored, digest,
        "the engine's plain digest stored as it came"
    );
    let record = db
        .raw
        .bytes("SELECT sealed FROM stepup_passkeys WHERE subject = 'alice-a6'")
        .await;
    // The public key of the record, as webauthn-rs serialises it.
    assert!(
        !contains(&record, b"jrYl7Edv08FI9tCTyWOV"),
        "the record in the clear"
    );
    assert!(!contains(&record, b"SECP256R1"));
}

async fn errors_name_the_operation_and_kind_never_a_user(place: Where) {
    let db = Db::new(place).await;
    let store = db.store(keys(1, 7)).await;
    let alice = Subject::new("alice-secret-id");
    db.raw.execute("DROP TABLE stepup_totp").await;
    let e = store.totp_secret(&alice).await.unwrap_err();
    assert_eq!(e.store(), "factor");
    assert_eq!(
        e.to_string(),
        "the factor store failed: totp secret: a table is missing (run SqlStore::migrate first)"
    );
    let e = store
        .set_totp_secret(&alice, secret(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the factor store failed: set totp secret: "),
        "{e}"
    );
    assert!(!e.contains("alice"), "{e}");
    // A constraint violation quotes no value either.
    db.raw
        .execute("CREATE TABLE stepup_totp (subject TEXT PRIMARY KEY NOT NULL, key_id BIGINT NOT NULL CHECK (key_id < 0), sealed BYTEA NOT NULL, updated_at BIGINT NOT NULL)")
        .await;
    let e = store
        .set_totp_secret(&alice, secret(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("set totp secret: check violation"), "{e}");
    assert!(!e.contains("alice"), "{e}");
}

async fn migrations_apply_once_under_concurrency_and_refuse_a_changed_schema(place: Where) {
    let (url, _dir) = database(place);
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let url = url.clone();
        starting.spawn(async move {
            let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
            store.migrate().await.unwrap()
        });
    }
    let applied: Vec<Vec<i64>> = starting.join_all().await;
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "one instance applies the schema: {applied:?}"
    );
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    assert!(
        store.migrate().await.unwrap().is_empty(),
        "nothing left to apply"
    );

    let raw = Raw::new(&url).await;
    let original = raw
        .text("SELECT checksum FROM stepup_schema WHERE version = 1")
        .await;
    raw.execute("UPDATE stepup_schema SET checksum = 'edited' WHERE version = 1")
        .await;
    let e = store.migrate().await.unwrap_err().to_string();
    assert!(
        e.contains("schema version 1 in the database differs"),
        "{e}"
    );
    raw.execute(&format!(
        "UPDATE stepup_schema SET checksum = '{original}' WHERE version = 1"
    ))
    .await;
    assert!(store.migrate().await.unwrap().is_empty());
    raw.execute(
        "INSERT INTO stepup_schema (version, description, checksum, applied_at) VALUES (99, 'future', 'x', 0)",
    )
    .await;
    let e = store.migrate().await.unwrap_err().to_string();
    assert!(
        e.contains("schema version 99, newer than this stepup-sqlx knows"),
        "{e}"
    );
}

async fn reseal_counts_and_passes_rows_that_do_not_open(place: Where) {
    let db = Db::new(place).await;
    let old = SealingKey::new(1, [1; 32]);
    let before = db.store(SealingKeys::new(old.clone())).await;
    for i in 0..150 {
        before
            .set_totp_secret(&Subject::new(format!("user-{i:03}")), secret(1))
            .await
            .unwrap();
    }
    // Two rows damaged: one in the first batch of 100, one in the second.
    for who in ["user-010", "user-120"] {
        let sealed = db
            .raw
            .bytes(&format!(
                "SELECT sealed FROM stepup_totp WHERE subject = '{who}'"
            ))
            .await;
        let mut damaged = sealed;
        damaged[30] ^= 1;
        db.raw
            .set_bytes(
                &format!("UPDATE stepup_totp SET sealed = $1 WHERE subject = '{who}'"),
                damaged,
            )
            .await;
    }
    let ring = SealingKeys::new(SealingKey::new(2, [2; 32]))
        .with_old(old)
        .unwrap();
    let after = db.store(ring).await;
    let report = after.reseal().await.unwrap();
    assert_eq!((report.totp, report.unreadable), (148, 2));
    let again = after.reseal().await.unwrap();
    assert_eq!(
        (again.totp, again.unreadable),
        (0, 2),
        "met once per run, never looped on"
    );
}
