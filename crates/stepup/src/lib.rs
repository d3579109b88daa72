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
//! | (always) | [`core`]: assurance, policies, the signed token, the gate; [`http`]: the framework-neutral request reading, replies and the `Guard` |
//! | `tower` | `tower`: the `RequireStepUp` layer for any tower service |
//! | `engine` | `challenge`: the engine — TOTP, passwords, recovery and e-mail/SMS codes, limits, events, the challenge routes; `store`: the store traits and memory stores |
//! | `passkey` | passkeys in the engine (with `webauthn-rs`; brings `engine`) |
//! | `axum` (default) | `axum`: `StepUp`, the extractor, the challenge routes and the layer for axum (brings `tower`, `passkey`) |
//! | `actix` | `actix`: `StepUp`, the `RequireStepUp` middleware and the `Assurance` extractor for actix-web 4 (brings `passkey`) |
//! | `axum-login` | `axum::login`: the subject from axum-login 0.18 / tower-sessions 0.14 (brings `axum`) |
//! | `actix-identity` | `actix::identity`: the subject from actix-identity 0.9 / actix-session 0.11 (brings `actix`) |
//! | `redis` | `redis`: the Redis `StateStore` for deployments with several instances |
//! | `oidc` | `oidc`: step-up at an upstream OpenID Provider (`OidcStepUp`) |
//! | `sqlite` | `sqlx`: `SqlStore` (factors sealed at rest, passkeys with `passkey`) and `SqlStateStore` on SQLite |
//! | `postgres` | `sqlx`: the same on PostgreSQL (rustls) |
//! | `testing` | `testing`: test helpers for your own tests — in `[dev-dependencies]` only |
//!
//! Preludes: [`prelude`] has the framework-neutral names (core, and the
//! engine's with `engine`); `stepup::axum::prelude::*` and
//! `stepup::actix::prelude::*` add each adapter's (`StepUp`, `Assurance`,
//! `StepUpRequired`, …) on top of it. They are additive: turning on
//! another feature never changes what a prelude you use names.
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
pub use stepup_http as http;

#[cfg(feature = "tower")]
pub use stepup_tower as tower;

#[cfg(feature = "engine")]
pub use stepup_challenge as challenge;

#[cfg(feature = "engine")]
pub use stepup_store as store;

#[cfg(feature = "redis")]
pub use stepup_redis as redis;

#[cfg(feature = "oidc")]
pub use stepup_oidc as oidc;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use stepup_sqlx as sqlx;

/// The framework-neutral names most applications use, in one import: the
/// core (keys, policies, subjects, the gate) and, with the `engine`
/// feature, the engine and its stores.
pub mod prelude {
    pub use stepup_core::{
        Challenge, ChallengeReason, Clock, Decision, Gate, Issuer, Key, KeyId, KeyRing, Level,
        LevelTable, Method, Policy, Proof, ReturnTo, Subject, SystemClock, Timestamp, TokenConfig,
    };
    pub use stepup_http::{
        ActionSpec, BoundAction, CookieSettings, FormFields, NoSubject, Normalise, Resumed,
    };

    #[cfg(feature = "engine")]
    pub use stepup_challenge::{
        ActionLimits, Attempt, AttemptLimits, ChallengeError, Channel, Engine, FactorStore,
        FormLimits, MemoryFactorStore, MemoryStateStore, PasswordVerifier, StateStore, TotpConfig,
    };

    #[cfg(feature = "passkey")]
    pub use stepup_challenge::{PasskeyConfig, PasskeyStore};

    #[cfg(feature = "redis")]
    pub use stepup_redis::RedisStateStore;

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub use stepup_sqlx::{SealingKey, SealingKeys, SqlStateStore, SqlStore};
}

/// The axum adapter ([`stepup_axum`]) and its prelude.
#[cfg(feature = "axum")]
pub mod axum {
    pub use stepup_axum::*;

    /// Everything an axum application needs: [`crate::prelude`] plus
    /// `StepUp`, `Assurance`, `StepUpRequired` and the subject sources.
    ///
    /// ```
    /// use stepup::axum::prelude::*;
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example");
    /// let app: axum::Router = axum::Router::new().merge(stepup.routes()).layer(stepup.layer());
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub mod prelude {
        pub use crate::prelude::*;
        pub use stepup_axum::{Assurance, StepUp, StepUpRequired};
        pub use stepup_tower::{FromExtension, RequireStepUpLayer, SubjectSource};
    }
}

/// The actix-web adapter ([`stepup_actix`]) and its prelude.
#[cfg(feature = "actix")]
pub mod actix {
    pub use stepup_actix::*;

    /// Everything an actix-web application needs: [`crate::prelude`] plus
    /// `StepUp`, `Assurance`, `StepUpRequired` and `RequireStepUp`.
    ///
    /// ```
    /// use stepup::actix::prelude::*;
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let who = |r: &actix_web::HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
    /// let stepup = StepUp::new(engine, who, "https://bank.example");
    /// let app = actix_web::App::new()
    ///     .app_data(stepup.app_data())
    ///     .configure(|c| stepup.configure(c));
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub mod prelude {
        pub use crate::prelude::*;
        pub use stepup_actix::{Assurance, RequireStepUp, StepUp, StepUpData, StepUpRequired};
    }
}

#[cfg(feature = "testing")]
pub mod testing {
    //! Test helpers for the application's own tests (feature `testing`):
    //! requests that carry the assurance of given step-ups, without driving a
    //! TOTP or passkey flow.
    //!
    //! **Never in production.** Turn the feature on in `[dev-dependencies]`
    //! only; Cargo then builds it into tests, examples and benches, never into
    //! the application's binary:
    //!
    //! ```toml
    //! [dependencies]
    //! stepup = { version = "0.1", features = ["axum"] }
    //!
    //! [dev-dependencies]
    //! stepup = { version = "0.1", features = ["axum", "testing"] }
    //! ```
    //!
    //! Nothing here skips a check. A [`TestAssurance`] — a subject (user id,
    //! session, epoch) and the methods proven at given times ([`ago`], or a
    //! [`Timestamp`] on a [`TestClock`]) — is minted
    //! into the genuine token the real step-ups would have left, by your
    //! `StepUp`'s own engine issuer and key ring, at your `StepUp`'s clock; the
    //! request then goes through the real gate and policy. A stale method, an
    //! expired token, another user's or session's token, an old epoch: all
    //! refused, as in production. Every token minted this way is logged
    //! (`warn`, target `stepup`).
    //!
    //! One call puts it on a request: `SteppedUpRequest::stepped_up` on an
    //! `http::request::Builder` or `http::Request` for axum's
    //! `Router::oneshot` (with `axum`), `SteppedUpTestRequest::stepped_up` on
    //! actix-web's `test::TestRequest` for `test::call_service` (with
    //! `actix`); `stepped_up_by_header` sends the `Stepup-Assurance` header
    //! instead, for routes that accept it. The README's "Testing your
    //! handlers" has a whole test for each framework.
    //!
    //! ```
    //! use std::time::Duration;
    //! use stepup::testing::{Method, TestAssurance, ago};
    //!
    //! let alice = TestAssurance::for_subject("alice")
    //!     .session("session-1")
    //!     .with(Method::Totp, ago(Duration::from_secs(60)));
    //! assert_eq!(alice.subject().id(), "alice");
    //! ```

    pub use stepup_http::testing::*;

    #[cfg(feature = "axum")]
    pub use stepup_axum::testing::SteppedUpRequest;

    #[cfg(feature = "actix")]
    pub use stepup_actix::testing::SteppedUpTestRequest;
}

/// The README's examples, compiled as doctests (with the `axum`, `actix`,
/// `redis`, `sqlite`, `oidc` and `testing` features, as the workspace's
/// test run builds this crate).
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "actix",
    feature = "redis",
    feature = "sqlite",
    feature = "oidc",
    feature = "testing"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
