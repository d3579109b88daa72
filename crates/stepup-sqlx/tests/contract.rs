//! `stepup-store`'s contract suite on every database this crate serves:
//! an SQLite file (WAL), an in-memory SQLite database and PostgreSQL (a
//! throwaway cluster the tests start: never skipped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Where, factor_store, state_store};

mod sqlite_file {
    use super::*;
    stepup_store::state_store_contract!(state, state_store(Where::SqliteFile));
    stepup_store::factor_store_contract!(factors, factor_store(Where::SqliteFile));
    stepup_store::passkey_store_contract!(passkeys, factor_store(Where::SqliteFile));
}

mod sqlite_memory {
    use super::*;
    stepup_store::state_store_contract!(state, state_store(Where::SqliteMemory));
    stepup_store::factor_store_contract!(factors, factor_store(Where::SqliteMemory));
    stepup_store::passkey_store_contract!(passkeys, factor_store(Where::SqliteMemory));
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    stepup_store::state_store_contract!(state, state_store(Where::Postgres));
    stepup_store::factor_store_contract!(factors, factor_store(Where::Postgres));
    stepup_store::passkey_store_contract!(passkeys, factor_store(Where::Postgres));
}
