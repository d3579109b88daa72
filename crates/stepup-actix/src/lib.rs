//! Step-up authentication for actix-web: users who are already logged in
//! prove again that it is really them before a sensitive action.
//!
//! The adapter is native actix-web 4 — no tower bridge. It calls the same
//! framework-neutral [`stepup_core`] gate as the tower layer and writes the
//! same answers, byte for byte:
//!
//! - [`RequireStepUp`]: middleware for a resource or scope, with a
//!   [`Policy`](stepup_core::Policy).
//! - [`Assurance`]: the extractor for handlers (and `Option<Assurance>`), with
//!   [`Assurance::require`] for in-handler decisions.
//! - [`StepUp`]: builds both from one configuration and serves the
//!   challenge routes (the page, TOTP, password, recovery codes, e-mail/SMS
//!   codes, passkeys, status, drop, enrollment) with
//!   [`configure`](StepUp::configure) — the same paths, bodies, statuses,
//!   headers and page as the axum adapter, because both serve the
//!   framework-neutral [`stepup_challenge::routes::ChallengeRoutes`].
//!
//! ```
//! use std::time::Duration;
//! use actix_web::{App, HttpRequest, HttpResponse, web};
//! use stepup_actix::{Assurance, RequireStepUp};
//! use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
//!
//! async fn reveal(assurance: Assurance) -> HttpResponse {
//!     HttpResponse::Ok().body(format!("key shown (level {})", assurance.level()))
//! }
//!
//! let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
//! let gate = Gate::new(&ring);
//! let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
//! let app = App::new().service(
//!     web::scope("/api-keys")
//!         .wrap(RequireStepUp::new(gate, Policy::level(2).max_age(Duration::from_secs(300)), who))
//!         .route("/reveal", web::get().to(reveal)),
//! );
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod extract;
mod future;
mod middleware;
mod respond;
mod routes;
mod stepup;

pub use extract::{Assurance, AssuranceRejection, StepUpRequired};
pub use future::StepUpFuture;
pub use middleware::{DEFAULT_CHALLENGE_PATH, RequireStepUp, RequireStepUpMiddleware};
pub use respond::{is_navigation, login_required};
pub use stepup::StepUp;
pub use stepup_challenge::routes::PageRenderer;
pub use stepup_core::web::{DEFAULT_COOKIE_NAME, NoSubject, TOKEN_HEADER};
