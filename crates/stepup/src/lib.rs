//! **stepup** — step-up authentication for Rust web services.
//!
//! Your users are already logged in. Before a wire transfer, an e-mail
//! change or an API-key reveal, ask them to prove again that it is really
//! them — a passkey, a TOTP code, an e-mail or SMS code, their password, a
//! recovery code — and let that proof count for a while.
//!
//! This crate gathers the workspace behind features:
//!
//! | feature | brings |
//! |---|---|
//! | (always) | [`core`]: assurance, policies, the signed token, the gate |
//! | `tower` | [`tower`]: the `RequireStepUp` layer for any tower service |
//! | `totp` | [`challenge`]: the engine — TOTP, passwords, recovery and e-mail/SMS codes, limits, events |
//! | `passkey` | passkeys in the engine (with `webauthn-rs`) |
//! | `axum` (default) | [`axum`]: the extractor, the challenge routes and the layer for axum |
//! | `redis` | `redis`: the Redis `StateStore` for deployments with several instances |
//! | `actix` | `actix`: `StepUp` with the challenge routes, the `RequireStepUp` middleware and the `Assurance` extractor for actix-web 4 (brings `totp` and `passkey`) |
//!
//! The prelude brings the adapter's `StepUp`, `Assurance` and
//! `StepUpRequired`; with both `axum` and `actix` on, it brings axum's, and
//! actix's stay under `stepup::actix`.
//!
//! ```
//! use stepup::prelude::*;
//!
//! let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
//! let policy: Policy = "passkey within 5m or (password within 15m and totp within 5m)".parse()?;
//! let gate = Gate::new(&ring);
//! let user = Subject::new("user-1");
//! assert!(matches!(gate.check(&user, None, &policy, SystemClock.now()), Decision::Challenge(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use stepup_core as core;

#[cfg(feature = "tower")]
pub use stepup_tower as tower;

#[cfg(feature = "totp")]
pub use stepup_challenge as challenge;

#[cfg(feature = "axum")]
pub use stepup_axum as axum;

#[cfg(feature = "actix")]
pub use stepup_actix as actix;

#[cfg(feature = "redis")]
pub use stepup_redis as redis;

/// The names most applications use, in one import.
pub mod prelude {
    pub use stepup_core::{
        Assurance as CoreAssurance, Challenge, ChallengeReason, Clock, Decision, Gate, Issuer, Key,
        KeyId, KeyRing, Level, LevelTable, Method, Policy, Proof, ReturnTo, Subject, SystemClock,
        Timestamp, TokenConfig,
    };

    #[cfg(feature = "tower")]
    pub use stepup_tower::{FromExtension, RequireStepUpLayer, SubjectSource, TrustedHeaders};

    #[cfg(feature = "totp")]
    pub use stepup_challenge::{
        Attempt, AttemptLimits, ChallengeError, Channel, Engine, FactorStore, MemoryFactorStore,
        MemoryStateStore, PasswordVerifier, StateStore, TotpConfig,
    };

    #[cfg(feature = "passkey")]
    pub use stepup_challenge::{PasskeyConfig, PasskeyStore};

    #[cfg(feature = "redis")]
    pub use stepup_redis::RedisStateStore;

    #[cfg(feature = "axum")]
    pub use stepup_axum::{Assurance, CookieSettings, StepUp, StepUpRequired};

    #[cfg(feature = "actix")]
    pub use stepup_actix::RequireStepUp;
    #[cfg(all(feature = "actix", not(feature = "axum")))]
    pub use stepup_actix::{Assurance, StepUp, StepUpRequired};
    #[cfg(all(feature = "actix", not(feature = "axum")))]
    pub use stepup_core::web::CookieSettings;
}
