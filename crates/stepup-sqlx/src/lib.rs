//! SQL stores for **stepup** on sqlx: the users' factors ([`SqlStore`], a
//! `FactorStore` and `PasskeyStore`) and the short-lived state
//! ([`SqlStateStore`], a `StateStore`), in SQLite or PostgreSQL.
//!
//! TODO crate docs
#![cfg_attr(docsrs, feature(doc_cfg))]

mod db;
mod error;
mod factors;
mod migrate;
mod sealing;
mod state;

pub use factors::{Resealed, SqlStore};
pub use sealing::{KeyError, SealingKey, SealingKeys};
pub use state::{SqlStateStore, Sweeper};

/// Now, in Unix seconds, for the columns that record when a row was written.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
