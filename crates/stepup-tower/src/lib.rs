//! `RequireStepUp`: a [tower](https://docs.rs/tower) layer that asks an already logged-in user to
//! step up — prove again that it is really them — before a sensitive route
//! runs. Works with any `Service<http::Request<B>>`: axum, tonic, hyper.
//!
//! The decision and the answer are [`stepup_http::Guard`]'s — the same
//! sequence the actix-web middleware and both extractors run, so they
//! answer byte for byte alike; this crate only puts tower's types around
//! it ([`Head`], [`into_response`]):
//!
//! * allowed — the [`Assurance`](stepup_core::Assurance) goes into the request
//!   extensions and the inner service runs (no allocation besides that insert);
//! * a browser navigating — `303 See Other` to the challenge page with a
//!   validated `return_to` and the `reason`;
//! * anything else — `401` with the RFC 9470 `WWW-Authenticate` challenge and
//!   an RFC 9457 `application/problem+json` body;
//! * nobody logged in — `401` without a step-up challenge (configurable).
//!
//! Every response it writes carries `Cache-Control: no-store`, and so does
//! the response of the route it protects unless the handler set its own
//! `Cache-Control`: a page shown only after a step-up must not be kept by a
//! browser or a shared cache. One `tracing` event (target `stepup`) per
//! decision: outcome, reason, policy — never a token or cookie value.
//!
//! [`SameOriginLayer`] is the challenge routes' origin check for the
//! application's own state-changing routes (log-in, log-out, transfers): a
//! `POST`, `PUT`, `PATCH` or `DELETE` from another origin — even one of the
//! same site, which `SameSite` cookies let through — gets `403` before the
//! handler runs.
//!
//! # Wrapping an axum route
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::{get, post}};
//! use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
//! use stepup_tower::{FromExtension, RequireStepUpLayer};
//!
//! let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
//! let gate = Gate::new(&ring);
//!
//! let app: Router = Router::new()
//!     .route("/account", get(|| async { "account" }))          // no step-up
//!     .route(
//!         "/transfer",
//!         post(|| async { "sent" }).route_layer(RequireStepUpLayer::new(
//!             gate.clone(),
//!             Policy::level(2).max_age(Duration::from_secs(300)),
//!             FromExtension::<Subject>::new(),
//!         )),
//!     );
//! // … then `.layer(your_login_layer)`, which inserts the `Subject`.
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where the token is
//!
//! The `__Host-stepup` cookie ([`DEFAULT_COOKIE_NAME`]), read from every
//! `Cookie` header by a linear scan for that one name. Two cookies of that
//! name (cookie tossing from a sibling domain) are refused, not guessed
//! between. API clients that keep no cookies can send the token in the
//! `Stepup-Assurance` header ([`TOKEN_HEADER`]) once
//! [`accept_token_header`](RequireStepUpLayer::accept_token_header) is on;
//! a request carrying both is refused.
//!
//! # The application's own routes
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::post};
//! use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
//! use stepup_tower::{FromExtension, RequireStepUpLayer, SameOriginLayer};
//!
//! let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
//! let app: Router = Router::new()
//!     .route(
//!         "/transfer",
//!         post(|| async { "sent" }).route_layer(RequireStepUpLayer::new(
//!             Gate::new(&ring),
//!             Policy::level(2).max_age(Duration::from_secs(300)),
//!             FromExtension::<Subject>::new(),
//!         )),
//!     )
//!     .route("/login", post(|| async { "welcome" }))
//!     .route("/logout", post(|| async { "bye" }))
//!     // Outermost on these routes: a foreign request is refused first.
//!     .route_layer(SameOriginLayer::new("https://bank.example"));
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Contextual step-up
//!
//! [`RequireStepUpLayer::per_request`] chooses the policy from the request
//! and the current assurance: "`DELETE` needs a passkey", "exports need a
//! step-up within the last minute" — or "a new network or browser since the
//! step-up needs a fresh one". For that last one, write `same_context` in
//! the policy and say where the client's address comes from: tokens the
//! challenge routes mint record the [`client_context`] (a keyed digest of
//! the network prefix and browser family), and the guard compares it per
//! request:
//!
//! ```
//! use std::net::SocketAddr;
//! use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
//! use stepup_tower::{FromExtension, RequireStepUpLayer};
//!
//! let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
//! // An hour on the same network and browser, else five minutes.
//! let policy: Policy = "level 2 within 1h and same_context or level 2 within 5m".parse()?;
//! let layer = RequireStepUpLayer::new(Gate::new(&ring), policy, FromExtension::<Subject>::new())
//!     // The same address the challenge routes are given (here the peer).
//!     .client_address(|parts| parts.extensions.get::<SocketAddr>().map(|a| a.ip()));
//! # let _ = layer;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod future;
mod head;
mod layer;
mod same_origin;
mod subject;

pub use client::{client_context, client_context_with};
pub use future::ResponseFuture;
pub use head::{Head, HeadAt, OriginalTarget, into_response};
pub use layer::{DEFAULT_CHALLENGE_PATH, RequireStepUp, RequireStepUpLayer};
pub use same_origin::{SameOrigin, SameOriginLayer};
pub use stepup_http::{ChallengeTarget, DEFAULT_COOKIE_NAME, Guard, NoSubject, TOKEN_HEADER};
pub use subject::{FromExtension, SubjectSource, TrustedHeaders};
