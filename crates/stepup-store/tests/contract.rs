//! The contract suite, run against the in-memory stores: every rule of
//! `StateStore`, `FactorStore` and `PasskeyStore`.
#![cfg(feature = "contract")]

use stepup_store::{MemoryFactorStore, MemoryStateStore};

stepup_store::state_store_contract!(memory_state, async { MemoryStateStore::default() });
stepup_store::factor_store_contract!(memory_factors, async { MemoryFactorStore::new() });
#[cfg(feature = "passkey")]
stepup_store::passkey_store_contract!(memory_passkeys, async { MemoryFactorStore::new() });

/// A store wrapped with a guard passes the same rules.
mod guarded {
    use stepup_store::contract::Guarded;
    use stepup_store::{MemoryFactorStore, MemoryStateStore};

    stepup_store::state_store_contract!(state, async {
        Guarded::new(MemoryStateStore::default(), ())
    });
    stepup_store::factor_store_contract!(factors, async {
        Guarded::new(MemoryFactorStore::new(), ())
    });
    #[cfg(feature = "passkey")]
    stepup_store::passkey_store_contract!(passkeys, async {
        Guarded::new(MemoryFactorStore::new(), ())
    });
}
