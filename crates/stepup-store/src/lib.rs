//! Where **stepup** keeps state: the storage traits, their in-memory
//! implementations, and a contract suite every backend runs — the way
//! `tower-sessions-core` sits under its session stores. A backend crate
//! (`stepup-redis`, a database crate of your own) depends on this crate
//! alone, not on the challenge engine.
//!
//! # The three traits
//!
//! * **[`StateStore`]** — short-lived server state with expiry and atomic
//!   operations: the last accepted TOTP step, attempt counters and
//!   lockouts, pending one-time codes, enrollments and account recoveries.
//!   One implementation is shared by every instance of an application
//!   (`stepup-redis`'s `RedisStateStore`).
//! * **[`FactorStore`]** — what the application owns per user, in its own
//!   database: the TOTP secret ([`TotpSecret`]), the digests of unused
//!   recovery codes, the registered addresses one-time codes go to per
//!   [`Channel`], and the assurance epoch, bumped to end every outstanding
//!   assurance token when a factor changes.
//! * **`PasskeyStore`** (feature `passkey`) — a [`FactorStore`] that also
//!   keeps passkeys (`StoredPasskey`): list, add (a credential id belongs
//!   to one subject at most), update after a use, remove, rename. A store
//!   without passkeys simply does not implement it.
//!
//! [`Sealer`] seals values before they go into a store (XChaCha20-Poly1305,
//! random nonces, associated data naming where the value belongs): the
//! engine seals the pending TOTP secret it keeps in the state store with
//! it, and `stepup-sqlx` the factors it keeps at rest.
//!
//! Every method is `async` and returns a [`StoreError`] when the store
//! cannot answer; the engine then fails closed. Passwords are not here:
//! they stay in the application's user table, behind `stepup-challenge`'s
//! `PasswordVerifier`.
//!
//! # The in-memory stores
//!
//! [`MemoryStateStore`] (a mutex, expiry on access, time from a
//! [`Clock`](stepup_core::Clock)) is enough for a single instance;
//! [`MemoryFactorStore`] (implementing [`FactorStore`] and, with `passkey`,
//! `PasskeyStore`) is for examples and tests.
//!
//! ```
//! use std::time::Duration;
//! use stepup_core::Subject;
//! use stepup_store::{FactorStore, MemoryFactorStore, MemoryStateStore, StateStore};
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let state = MemoryStateStore::default();
//! assert_eq!(state.increment("attempts", Duration::from_secs(60)).await?, 1);
//!
//! let factors = MemoryFactorStore::new();
//! let alice = Subject::new("alice");
//! let epoch = factors.bump_epoch(&alice).await?;
//! // The application's subject source reads it back for the gate:
//! let alice = alice.with_epoch(factors.epoch("alice"));
//! assert_eq!(alice.epoch(), epoch);
//! # Ok::<(), stepup_store::StoreError>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The contract suite
//!
//! With feature `contract`, the module `contract` holds every rule of
//! the three traits as an async function (expiry, single use under
//! concurrency, one winner of 16 racing recovery-code consumers, epochs
//! that only grow, credential ids unique across subjects, …), and the
//! macros `state_store_contract!`, `factor_store_contract!` and
//! `passkey_store_contract!` stamp one `#[test]` per rule for a backend.
//! The memory stores run it in this crate's tests; a backend crate adds
//! this crate with the feature to its dev-dependencies
//!
//! ```toml
//! [dev-dependencies]
//! stepup-store = { version = "0.1", features = ["contract"] }
//! ```
//!
//! and stamps it in `tests/contract.rs` with a factory: a future of a
//! fresh store (state rules need an empty one; factor and passkey rules
//! make random subjects of their own). A store that needs something alive
//! while it runs (a test server) comes wrapped in a `contract::Guarded`:
//!
//! ```
//! # #[cfg(feature = "contract")]
//! # mod backend {
//! use stepup_store::contract::Guarded;
//! use stepup_store::{MemoryFactorStore, MemoryStateStore};
//!
//! /// The backend's test server: stopped when dropped.
//! struct TestServer;
//!
//! impl TestServer {
//!     fn start() -> TestServer {
//!         TestServer
//!     }
//!
//!     /// A store on this server, every key under `prefix`.
//!     fn store(&self, _prefix: &str) -> MemoryStateStore {
//!         MemoryStateStore::default()
//!     }
//! }
//!
//! // One `#[test]` per StateStore rule, each on a server of its own.
//! stepup_store::state_store_contract!(state, async {
//!     let server = TestServer::start();
//!     let store = server.store("contract:");
//!     Guarded::new(store, server)
//! });
//! // One `#[test]` per FactorStore rule.
//! stepup_store::factor_store_contract!(factors, async { MemoryFactorStore::new() });
//! # }
//! ```
//!
//! # Features
//!
//! | feature | brings |
//! |---|---|
//! | `passkey` | `StoredPasskey`, `PasskeyStore` (with `webauthn-rs`, default features off) |
//! | `contract` | the contract suite (with a tokio runtime) |

pub mod attempts;
mod channel;
mod error;
mod factor;
#[cfg(feature = "passkey")]
mod passkey;
mod seal;
mod secret;
mod state;

#[cfg(feature = "contract")]
pub mod contract;

pub use channel::Channel;
pub use error::StoreError;
#[cfg(feature = "passkey")]
pub use factor::PasskeyStore;
pub use factor::{FactorStore, MemoryFactorStore};
#[cfg(feature = "passkey")]
pub use passkey::StoredPasskey;
pub use seal::Sealer;
pub use secret::TotpSecret;
pub use state::{MemoryStateStore, StateStore};
