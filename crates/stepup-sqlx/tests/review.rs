//! The independent security review of stepup-sqlx (#15), as tests: each
//! `finding n` reproduced a weakness and failed on the code as reviewed;
//! they pass since the fixes (and stay as regression tests). The `sound_…`
//! tests are what the review checked and found sound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Raw, Where, contains, database, keys};
use stepup_challenge::{Attempt, Engine, PasskeyConfig, TotpConfig};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};
use stepup_sqlx::{SqlStateStore, SqlStore};
use stepup_store::contract::passkey::passkey;
use stepup_store::{FactorStore, MemoryStateStore, PasskeyStore, StateStore, TotpSecret};

fn tokens() -> TokenConfig {
    TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ))
}

macro_rules! on {
    ($name:ident: $($place:ident),*) => {
        mod $name {
            $(
                #[allow(non_snake_case)]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $place() {
                    super::$name(super::Where::$place).await
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------
// finding 1: a pending TOTP enrollment's secret is stored in the clear in
// `stepup_state.value` when the state store is `SqlStateStore` (the crate
// recommends it "on the same database"), and after confirmation that very
// secret is the user's live TOTP secret. A leaked backup / WAL archive /
// SQLite file taken while an enrollment is pending (or its freed pages /
// dead tuples afterwards) gives the TOTP secret that "sealed at rest" is
// meant to protect.
// ---------------------------------------------------------------------------
on!(pending_totp_secret_is_not_stored_in_the_clear: SqliteFile, Postgres);

async fn pending_totp_secret_is_not_stored_in_the_clear(place: Where) {
    let (url, _dir) = database(place);
    let factors = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    factors.migrate().await.unwrap();
    let engine = Engine::new(tokens().issuer(), factors.clone(), factors.state())
        .with_totp(TotpConfig::new("Bank"));
    let alice = Subject::new("alice-f1").with_session("s-1");
    let enrollment = engine.start_totp_enrollment(&alice, "alice").await.unwrap();

    // What a reader of the database (a backup taken now) sees.
    let raw = Raw::new(&url).await;
    let leaked = raw.blobs("SELECT value FROM stepup_state").await;

    // The user confirms: the pending secret becomes the live one.
    let pending = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    let code = TotpConfig::new("Bank")
        .code_at(&pending, SystemClock.now().as_unix_seconds())
        .unwrap();
    engine
        .confirm_totp_enrollment(Attempt::new(&alice), &code)
        .await
        .unwrap();
    let live = factors.totp_secret(&alice).await.unwrap().unwrap();

    assert!(
        !leaked.iter().any(|v| contains(v, live.as_bytes())),
        "the user's live TOTP secret was readable in the clear in stepup_state"
    );
}

/// finding 1 (continued): even after the enrollment is confirmed and its
/// state row taken (deleted), the SQLite files on disk still hold the live
/// secret in the clear (the WAL now; freed pages of the main file after a
/// checkpoint, as `secure_delete` is off). A copy of the data directory
/// (`bank-data/…`) leaks it with no timing luck needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_hold_no_confirmed_totp_secret() {
    let (url, dir) = database(Where::SqliteFile);
    let factors = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    factors.migrate().await.unwrap();
    let engine = Engine::new(tokens().issuer(), factors.clone(), factors.state())
        .with_totp(TotpConfig::new("Bank"));
    let alice = Subject::new("alice-f1b").with_session("s-1");
    let enrollment = engine.start_totp_enrollment(&alice, "alice").await.unwrap();
    let pending = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
    let code = TotpConfig::new("Bank")
        .code_at(&pending, SystemClock.now().as_unix_seconds())
        .unwrap();
    engine
        .confirm_totp_enrollment(Attempt::new(&alice), &code)
        .await
        .unwrap();
    let live = factors.totp_secret(&alice).await.unwrap().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir.as_ref().unwrap().0).unwrap() {
        let path = entry.unwrap().path();
        if contains(&std::fs::read(&path).unwrap(), live.as_bytes()) {
            found.push(path.display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "the live TOTP secret is in the clear on disk after enrollment: {found:?}"
    );
}

// ---------------------------------------------------------------------------
// finding 2: on PostgreSQL the sweeper can delete a *live* row.
// `DELETE … WHERE state_key IN (SELECT … WHERE expires_at <= now LIMIT n)`
// re-checks, after waiting for a concurrent writer, only the target's own
// quals (state_key = …), not `expires_at`: a row that was expired when the
// sweep's snapshot was taken and re-set concurrently (an `advance` of the
// TOTP replay state, a `put` of a lockout flag) is deleted although live.
// Deleting the TOTP replay entry lets the same code be accepted again.
// ---------------------------------------------------------------------------
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sweeper_never_deletes_a_live_row() {
    let (url, _dir) = database(Where::Postgres);
    let state = SqlStateStore::connect(&url).await.unwrap();
    state.migrate().await.unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let ttl = Duration::from_secs(300);

    // An expired replay entry (step 4, expired long ago).
    sqlx::query(
        "INSERT INTO stepup_state (state_key, kind, number, value, expires_at) \
         VALUES ('totp-replay', 1, 4, NULL, 0)",
    )
    .execute(&raw)
    .await
    .unwrap();

    // A request accepts step 5: exactly the statement `advance` sends, in
    // flight (not yet committed) when the sweep starts.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut request = raw.begin().await.unwrap();
    let accepted = sqlx::query(
        "INSERT INTO stepup_state (state_key, kind, number, value, expires_at) \
         VALUES ($1, 1, $2, NULL, $3) \
         ON CONFLICT (state_key) DO UPDATE SET kind = 1, number = excluded.number, \
         value = NULL, expires_at = excluded.expires_at \
         WHERE stepup_state.expires_at <= $4 OR stepup_state.kind <> 1 \
         OR stepup_state.number < excluded.number \
         RETURNING kind",
    )
    .bind("totp-replay")
    .bind(5_i64)
    .bind(now_ms + 300_000)
    .bind(now_ms)
    .fetch_optional(&mut *request)
    .await
    .unwrap();
    assert!(accepted.is_some());

    let sweeper = {
        let state = state.clone();
        tokio::spawn(async move { state.sweep_expired().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    request.commit().await.unwrap();
    let swept = sweeper.await.unwrap();

    // Step 5 was accepted: it must not be accepted a second time.
    let replay = state.advance("totp-replay", 5, ttl).await.unwrap();
    assert!(
        !replay,
        "the sweeper deleted a live replay entry (swept {swept}); step 5 accepted twice"
    );
}

// ---------------------------------------------------------------------------
// finding 3: `set_recovery_digests` is not a replacement under concurrency
// on PostgreSQL (READ COMMITTED). Two racing replacements each DELETE what
// their snapshot saw and INSERT their own set: both sets stay valid (20
// codes where the user saw 10, or a set nobody was shown). The contract
// says "replaces … the earlier ones stop working".
// ---------------------------------------------------------------------------
fn set_of(tag: u8) -> Vec<[u8; 32]> {
    (0..10u8)
        .map(|i| {
            let mut d = [tag; 32];
            d[0] = i;
            d
        })
        .collect()
}

/// Deterministic: a third transaction holds the old rows' locks so the two
/// replacements start together; whichever goes second cannot see the
/// first one's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_racing_recovery_code_replacements_leave_one_set() {
    let (url, _dir) = database(Where::Postgres);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let alice = Subject::new("alice-f3");
    store.set_recovery_digests(&alice, set_of(0)).await.unwrap();

    let mut holder = raw.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM stepup_recovery_codes WHERE subject = 'alice-f3' FOR UPDATE")
        .fetch_all(&mut *holder)
        .await
        .unwrap();
    let mut racers = tokio::task::JoinSet::new();
    for tag in [1u8, 2] {
        let (store, alice) = (store.clone(), alice.clone());
        racers.spawn(async move { store.set_recovery_digests(&alice, set_of(tag)).await });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.commit().await.unwrap();
    for done in racers.join_all().await {
        done.unwrap();
    }
    let left = store.recovery_codes_left(&alice).await.unwrap();
    let first = store
        .consume_recovery_digest(&alice, &set_of(1)[0])
        .await
        .unwrap();
    let second = store
        .consume_recovery_digest(&alice, &set_of(2)[0])
        .await
        .unwrap();
    assert!(
        left == 10 && !(first && second),
        "after two racing replacements {left} codes are left and both sets work \
         (set 1: {first}, set 2: {second})"
    );
}

/// The same through the API alone: two replacements at once, 30 rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_recovery_code_replacements_leave_one_set() {
    let (url, _dir) = database(Where::Postgres);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    let alice = Subject::new("alice-f3b");
    let mut doubled = 0;
    for round in 0..30u8 {
        let (a, b) = (store.clone(), store.clone());
        let (x, y) = (alice.clone(), alice.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.set_recovery_digests(&x, set_of(2 * round + 1)).await }),
            tokio::spawn(async move { b.set_recovery_digests(&y, set_of(2 * round + 2)).await }),
        );
        ra.unwrap().unwrap();
        rb.unwrap().unwrap();
        if store.recovery_codes_left(&alice).await.unwrap() != 10 {
            doubled += 1;
        }
    }
    assert_eq!(
        doubled, 0,
        "{doubled} of 30 rounds of two concurrent replacements left both sets"
    );
}

// ---------------------------------------------------------------------------
// finding 4: one row that does not open (a byte flipped, a row left under
// a sealing key that was dropped before `reseal` finished, a partial
// restore) fails `totp_secret` / `passkeys()` as a whole, and the engine
// reads both for every page: `enrolled_methods` fails, so the user can no
// longer step up with *any* method (the challenge page), nor start an
// account recovery (the path for lost factors), nor remove the bad factor
// (`remove_totp` / `remove_passkey` open it first). Fail-closed, but a
// whole-account lockout that only an operator with SQL can lift.
// ---------------------------------------------------------------------------
on!(one_unopenable_row_does_not_lock_the_user_out: SqliteFile, Postgres);

async fn one_unopenable_row_does_not_lock_the_user_out(place: Where) {
    let (url, _dir) = database(place);
    let factors = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    factors.migrate().await.unwrap();
    let engine = Engine::new(
        tokens().issuer(),
        factors.clone(),
        MemoryStateStore::default(),
    )
    .with_totp(TotpConfig::new("Bank"))
    .with_passkeys(PasskeyConfig::new(
        "localhost",
        "http://localhost:3000",
        "Bank",
    ))
    .unwrap();
    let alice = Subject::new("alice-f4").with_session("s-1");
    factors
        .set_totp_secret(&alice, TotpSecret::generate().unwrap())
        .await
        .unwrap();
    factors
        .add_passkey(&alice, passkey(b"alice-f4-good", "good", 1))
        .await
        .unwrap();
    factors
        .add_passkey(&alice, passkey(b"alice-f4-bad", "bad", 1))
        .await
        .unwrap();
    assert!(engine.enrolled_methods(&alice).await.is_ok());

    // One passkey row no longer opens (here: its sealed bytes altered).
    let raw = Raw::new(&url).await;
    let sealed = raw
        .blobs("SELECT sealed FROM stepup_passkeys WHERE name = 'bad'")
        .await
        .remove(0);
    let mut damaged = sealed.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    raw.set_bytes(
        "UPDATE stepup_passkeys SET sealed = $1 WHERE name = 'bad'",
        damaged,
    )
    .await;

    // The damaged passkey is skipped (it cannot be used); the rest works.
    let listed = PasskeyStore::passkeys(&factors, &alice).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["good"]
    );
    assert_eq!(
        engine.enrolled_methods(&alice).await.unwrap(),
        [stepup_core::Method::Passkey, stepup_core::Method::Totp]
    );
    assert!(engine.authorize_recovery(&alice, None).await.is_ok());
    // Invisible to the user, so not removable by them (the operator deletes
    // it: `reseal` counts it as unreadable).
    assert_eq!(
        engine
            .remove_passkey(&alice, b"alice-f4-bad")
            .await
            .unwrap_err(),
        stepup_challenge::ChallengeError::NotEnrolled(stepup_core::Method::Passkey)
    );

    // A damaged TOTP row: still enrolled (no downgrade to "no factor"), its
    // step-ups fail closed, and it can be removed without opening it.
    raw.execute("UPDATE stepup_totp SET key_id = 9").await;
    assert!(
        engine
            .enrolled_methods(&alice)
            .await
            .unwrap()
            .contains(&stepup_core::Method::Totp)
    );
    assert!(matches!(
        engine
            .step_up_totp(Attempt::new(&alice), "123456")
            .await
            .unwrap_err(),
        stepup_challenge::ChallengeError::Store(_)
    ));
    engine.remove_totp(&alice).await.unwrap();
    assert!(
        !engine
            .enrolled_methods(&alice)
            .await
            .unwrap()
            .contains(&stepup_core::Method::Totp)
    );
}

// ---------------------------------------------------------------------------
// finding 5: the wrong-key check runs only in `migrate()`. A store that is
// not migrated by this process (migrations run by a deploy job, or applied
// by a DBA from `migrations/` as the docs invite; `SqlStore::sqlite(pool,
// keys)` on a shared pool) and has a wrong key under a known id is not
// refused: its writes seal under the wrong key, so every TOTP secret or
// passkey it enrolls can never be opened by the correctly keyed instances
// (and, per finding 4, then locks those users out).
// ---------------------------------------------------------------------------
on!(a_wrong_key_is_refused_before_it_seals_anything: SqliteFile, Postgres);

async fn a_wrong_key_is_refused_before_it_seals_anything(place: Where) {
    let (url, _dir) = database(place);
    let right = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    right.migrate().await.unwrap();

    // Another instance, same id 1, another key; no migrate() in this process.
    let wrong = SqlStore::connect(&url, keys(1, 8)).await.unwrap();
    let bob = Subject::new("bob-f5");
    let written = wrong
        .set_totp_secret(&bob, TotpSecret::generate().unwrap())
        .await;
    let readable = right.totp_secret(&bob).await;
    assert!(
        written.is_err() || readable.is_ok(),
        "a store with the wrong key under a known id sealed bob's new secret; \
         the right key cannot open it: {:?}",
        readable.map(|_| ())
    );
}

// ---------------------------------------------------------------------------
// Checks that passed (kept as regression guards, not findings).
// ---------------------------------------------------------------------------

// A recovery code sealed for one user never verifies for another, even
// with the digest row copied over by a database writer.
on!(sound_recovery_digest_rows_copied_to_another_user_do_not_verify: SqliteFile, Postgres);

async fn sound_recovery_digest_rows_copied_to_another_user_do_not_verify(place: Where) {
    let (url, _dir) = database(place);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    let raw = Raw::new(&url).await;
    let (alice, bob) = (Subject::new("alice-s1"), Subject::new("bob-s1"));
    store
        .set_recovery_digests(&alice, vec![[5; 32]])
        .await
        .unwrap();
    raw.execute(
        "INSERT INTO stepup_recovery_codes (subject, digest, key_id) \
         SELECT 'bob-s1', digest, key_id FROM stepup_recovery_codes WHERE subject = 'alice-s1'",
    )
    .await;
    assert!(!store.consume_recovery_digest(&bob, &[5; 32]).await.unwrap());
    assert!(
        store
            .consume_recovery_digest(&alice, &[5; 32])
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_recovery_digest(&alice, &[5; 32])
            .await
            .unwrap()
    );
}

/// Racing updates of one passkey on PostgreSQL: a stale counter never
/// overwrites a newer one, and a removal racing with an update wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_postgres_passkey_update_loses_to_removal() {
    let (url, _dir) = database(Where::Postgres);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    let alice = Subject::new("alice-s2");
    for round in 0..20u8 {
        let id = [b'k', round];
        assert!(
            store
                .add_passkey(&alice, passkey(&id, "k", 1))
                .await
                .unwrap()
        );
        let (a, b) = (store.clone(), store.clone());
        let (x, y) = (alice.clone(), alice.clone());
        let (updated, removed) = tokio::join!(
            tokio::spawn(async move { a.update_passkey(&x, passkey(&id, "k", 2)).await }),
            tokio::spawn(async move { b.remove_passkey(&y, &id).await }),
        );
        assert!(removed.unwrap().unwrap());
        let _ = updated.unwrap().unwrap();
        assert!(
            PasskeyStore::passkeys(&store, &alice)
                .await
                .unwrap()
                .iter()
                .all(|p| p.id() != id),
            "an update brought a removed credential back"
        );
    }
}

/// The state store's atomic operations under contention on PostgreSQL:
/// 16 concurrent `advance`s of one step from an *expired* entry, one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_postgres_advance_over_an_expired_entry_has_one_winner() {
    let (url, _dir) = database(Where::Postgres);
    let state = SqlStateStore::connect(&url).await.unwrap();
    state.migrate().await.unwrap();
    for round in 0..10 {
        let key = format!("k{round}");
        state
            .advance(&key, 9, Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (state, key) = (state.clone(), key.clone());
            racers.spawn(async move { state.advance(&key, 3, Duration::from_secs(60)).await });
        }
        let won = racers
            .join_all()
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(won, 1);
    }
}

/// On SQLite (writes serialised) two concurrent replacements do leave one set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sound_sqlite_concurrent_recovery_code_replacements_leave_one_set() {
    let (url, _dir) = database(Where::SqliteFile);
    let store = SqlStore::connect(&url, keys(1, 7)).await.unwrap();
    store.migrate().await.unwrap();
    let alice = Subject::new("alice-s4");
    for round in 0..30u8 {
        let (a, b) = (store.clone(), store.clone());
        let (x, y) = (alice.clone(), alice.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.set_recovery_digests(&x, set_of(2 * round + 1)).await }),
            tokio::spawn(async move { b.set_recovery_digests(&y, set_of(2 * round + 2)).await }),
        );
        ra.unwrap().unwrap();
        rb.unwrap().unwrap();
        assert_eq!(store.recovery_codes_left(&alice).await.unwrap(), 10);
    }
}
