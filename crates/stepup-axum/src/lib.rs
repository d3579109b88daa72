//! Step-up authentication for [axum](https://docs.rs/axum): wrap a route,
//! extract the assurance, nest the challenge routes.
//!
//! * [`StepUp`] — built once from the gate, the challenge engine, your
//!   subject source and your origin; hands out [`require`](StepUp::require)
//!   layers, the [`routes`](StepUp::routes) and the
//!   [`extension`](StepUp::extension) for the extractor.
//! * [`Assurance`] — the extractor (and `Option<Assurance>`), with
//!   [`Assurance::require`] for decisions that depend on the request body.
//! * The challenge routes — the page (shared with the actix adapter, from
//!   `stepup-challenge`), TOTP / password / recovery-code step-ups by form or
//!   JSON, `status` and `drop`; every POST checked against your origin.
//! * [`CookieSettings`] — `__Host-stepup; Secure; HttpOnly; SameSite=Strict;
//!   Path=/`, or the plain-http variant for local development.
//!
//! See [`StepUp`] for a complete router.

mod context;
mod extract;
mod routes;
mod stepup;

pub use context::{SharedSubjects, StepUpContext};
pub use extract::{Assurance, AssuranceRejection, StepUpRequired};
pub use routes::ClientAddress;
pub use stepup::StepUp;
pub use stepup_challenge::routes::PageRenderer;
pub use stepup_core::web::CookieSettings;
pub use stepup_tower::{FromExtension, RequireStepUpLayer, SubjectSource, TrustedHeaders};
