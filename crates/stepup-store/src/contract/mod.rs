//! The contract suite (feature `contract`): every rule of [`StateStore`],
//! [`FactorStore`] and [`PasskeyStore`](crate::PasskeyStore) as a plain
//! async function, and macros that stamp one `#[test]` per rule for a
//! backend.
//!
//! * [`state_store_contract!`](crate::state_store_contract)`(name, factory)`
//!   — the rules of [`state`];
//! * [`factor_store_contract!`](crate::factor_store_contract)`(name, factory)`
//!   — the rules of [`factor`];
//! * `passkey_store_contract!(name, factory)` (with feature `passkey`) —
//!   the rules of `passkey`.
//!
//! Each macro makes a module `name` (which sees its parent's names) with
//! one `#[test]` per rule. Every test runs on its own multi-thread tokio
//! runtime ([`run`]) and awaits `factory` — an expression that is a future
//! of the store — once, so every rule gets a store of its own. State rules
//! use fixed keys: their store must start empty (a fresh server, database
//! or key prefix). Factor and passkey rules make subjects and credential
//! ids of their own, random, so a shared database is fine. When the store
//! needs something kept alive while the rule runs (the server a test
//! started), wrap both in a [`Guarded`].
//!
//! The rules panic when a store breaks one: they are for tests.
//!
//! ```
//! use stepup_store::contract::{self, Guarded};
//! use stepup_store::{MemoryFactorStore, MemoryStateStore};
//!
//! /// What a backend's test server would be: kept alive with the store.
//! struct Server;
//!
//! // In the backend's `tests/contract.rs`: one `#[test]` per rule.
//! stepup_store::state_store_contract!(memory_state, async {
//!     Guarded::new(MemoryStateStore::default(), Server)
//! });
//! stepup_store::factor_store_contract!(memory_factors, async { MemoryFactorStore::new() });
//!
//! fn main() {
//!     // Or drive one rule from a test of your own.
//!     contract::run(contract::state::advance_only_moves_forward(
//!         std::sync::Arc::new(MemoryStateStore::default()),
//!     ));
//! }
//! ```

// The rules are assertions: a broken rule panics, as in any test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use stepup_core::Subject;

use crate::{Channel, FactorStore, StateStore, StoreError, TotpSecret};

pub mod factor;
#[cfg(feature = "passkey")]
pub mod passkey;
pub mod state;

/// Runs `future` to completion on a fresh multi-thread tokio runtime with
/// two workers and every driver enabled (time, and I/O when tokio is built
/// with it): what each stamped test does, for driving a rule from a test of
/// your own.
///
/// ```
/// use std::sync::Arc;
/// use stepup_store::{MemoryFactorStore, contract};
///
/// contract::run(contract::factor::epochs_only_grow_per_subject(Arc::new(
///     MemoryFactorStore::new(),
/// )));
/// ```
pub fn run<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the contract")
        .block_on(future)
}

/// A store and something kept alive as long as it is (a test's server):
/// the store's traits, delegated. The contract macros take one where a
/// store alone would be dropped too early.
///
/// ```
/// use stepup_store::MemoryStateStore;
/// use stepup_store::contract::Guarded;
///
/// let store = Guarded::new(MemoryStateStore::default(), "the server");
/// assert!(store.store().is_empty());
/// ```
#[derive(Debug)]
pub struct Guarded<S, G> {
    store: S,
    guard: G,
}

impl<S, G> Guarded<S, G> {
    /// `store`, keeping `guard` alive with it.
    pub fn new(store: S, guard: G) -> Guarded<S, G> {
        Guarded { store, guard }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// What is kept alive.
    pub fn guard(&self) -> &G {
        &self.guard
    }
}

impl<S: StateStore, G: Send + Sync + 'static> StateStore for Guarded<S, G> {
    fn advance(
        &self,
        key: &str,
        step: u64,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.advance(key, step, ttl)
    }

    fn increment(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.store.increment(key, window)
    }

    fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.put(key, value, ttl)
    }

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.store.get(key)
    }

    fn take(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        self.store.take(key)
    }

    fn admit(
        &self,
        request: &crate::attempts::Admit,
    ) -> impl Future<Output = Result<crate::attempts::Admitted, StoreError>> + Send {
        self.store.admit(request)
    }

    fn commit(
        &self,
        request: &crate::attempts::Commit,
    ) -> impl Future<Output = Result<crate::attempts::Committed, StoreError>> + Send {
        self.store.commit(request)
    }

    fn remove(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.remove(key)
    }
}

impl<S: FactorStore, G: Send + Sync + 'static> FactorStore for Guarded<S, G> {
    fn totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Option<TotpSecret>, StoreError>> + Send {
        self.store.totp_secret(subject)
    }

    fn has_totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.has_totp_secret(subject)
    }

    fn set_totp_secret(
        &self,
        subject: &Subject,
        secret: TotpSecret,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.set_totp_secret(subject, secret)
    }

    fn remove_totp_secret(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.remove_totp_secret(subject)
    }

    fn set_recovery_digests(
        &self,
        subject: &Subject,
        digests: Vec<[u8; 32]>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.store.set_recovery_digests(subject, digests)
    }

    fn consume_recovery_digest(
        &self,
        subject: &Subject,
        digest: &[u8; 32],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.consume_recovery_digest(subject, digest)
    }

    fn recovery_codes_left(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        self.store.recovery_codes_left(subject)
    }

    fn code_destination(
        &self,
        subject: &Subject,
        channel: Channel,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        self.store.code_destination(subject, channel)
    }

    fn bump_epoch(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.store.bump_epoch(subject)
    }
}

#[cfg(feature = "passkey")]
impl<S: crate::PasskeyStore, G: Send + Sync + 'static> crate::PasskeyStore for Guarded<S, G> {
    fn passkeys(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = Result<Vec<crate::StoredPasskey>, StoreError>> + Send {
        self.store.passkeys(subject)
    }

    fn add_passkey(
        &self,
        subject: &Subject,
        passkey: crate::StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.add_passkey(subject, passkey)
    }

    fn update_passkey(
        &self,
        subject: &Subject,
        passkey: crate::StoredPasskey,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.update_passkey(subject, passkey)
    }

    fn remove_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.remove_passkey(subject, id)
    }

    fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        self.store.rename_passkey(subject, id, name)
    }
}

/// A subject of its own for one rule: `name` and a random suffix, so rules
/// sharing a database (or re-run against one) never meet.
pub fn fresh_subject(name: &str) -> Subject {
    Subject::new(format!("{name}-{}", hex(&random::<8>())))
}

pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("randomness for the contract");
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stamps one `#[test]` per [`StateStore`] rule ([`contract::state`](crate::contract::state))
/// in a module `$name`: `state_store_contract!(name, factory)`, where
/// `factory` is a future of an empty store (see [`contract`](crate::contract)).
///
/// ```
/// stepup_store::state_store_contract!(memory, async {
///     stepup_store::MemoryStateStore::default()
/// });
/// ```
#[macro_export]
macro_rules! state_store_contract {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::__stamp_contract!(
            $name,
            $factory,
            state,
            [
                advance_only_moves_forward,
                increment_counts_from_one,
                put_get_take_remove,
                entries_expire,
                takes_race_to_one_winner,
                admission_counts_and_locks_with_doubling,
                admission_disables_past_the_consecutive_cap,
                commit_records_the_step_then_starts_counters_over,
                admissions_race_to_the_budget,
            ]
        );
    };
}

/// Stamps one `#[test]` per [`FactorStore`] rule ([`contract::factor`](crate::contract::factor))
/// in a module `$name`: `factor_store_contract!(name, factory)`, where
/// `factory` is a future of the store (see [`contract`](crate::contract)).
///
/// ```
/// stepup_store::factor_store_contract!(memory, async {
///     stepup_store::MemoryFactorStore::new()
/// });
/// ```
#[macro_export]
macro_rules! factor_store_contract {
    ($name:ident, $factory:expr $(,)?) => {
        $crate::__stamp_contract!(
            $name,
            $factory,
            factor,
            [
                totp_secret_is_set_replaced_and_removed,
                recovery_digests_are_replaced_and_consumed_once,
                a_recovery_digest_is_consumed_once_by_16_concurrent_consumers,
                concurrent_replacements_leave_one_set_of_recovery_codes,
                code_destinations_are_none_unless_registered,
                epochs_only_grow_per_subject,
                epochs_of_subjects_are_independent,
                concurrent_epoch_bumps_are_all_counted,
            ]
        );
    };
}

/// One `#[test]` per rule, in a module of its own.
#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_contract {
    ($name:ident, $factory:expr, $rules:ident, [$($rule:ident),* $(,)?]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $rule() {
                    $crate::contract::run(async {
                        let store = $factory.await;
                        $crate::contract::$rules::$rule(::std::sync::Arc::new(store)).await;
                    });
                }
            )*
        }
    };
}
