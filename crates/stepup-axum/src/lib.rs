//! Step-up authentication for [axum](https://docs.rs/axum): wrap a route,
//! extract the assurance, merge the challenge routes.
//!
//! * [`StepUp`] — built once from the challenge engine (its issuer gives the
//!   gate, its clock is the clock), your subject source and your origin;
//!   hands out [`require`](StepUp::require) layers (fixed or
//!   [per request](StepUp::require_per_request)), the
//!   [`routes`](StepUp::routes), which mount themselves, and the
//!   [`layer`](StepUp::layer) for the extractor. Each decision is
//!   `stepup_http::Guard`'s, as on actix-web.
//! * [`Assurance`] — the extractor (and `Option<Assurance>`), with
//!   [`Assurance::require`] for decisions that depend on the request body.
//! * The challenge routes — the page (shared with the actix adapter, from
//!   `stepup-challenge`), TOTP / password / recovery-code step-ups by form or
//!   JSON, `status` and `drop`; every POST checked against your origin.
//! * [`CookieSettings`] — `__Host-stepup; Secure; HttpOnly; SameSite=Strict;
//!   Path=/`, or the plain-http variant for local development.
//! * [`StepUp::same_origin`] ([`SameOriginLayer`]) — the challenge routes'
//!   origin check for your own state-changing routes (log-in, log-out,
//!   transfers): a `POST`/`PUT`/`PATCH`/`DELETE` whose `Origin` is not
//!   yours (or that has none and no `Sec-Fetch-Site: same-origin`) gets
//!   `403` before the handler runs. `SameSite` cookies alone let a sibling
//!   subdomain through.
//! * [`ClientAddress`] — the client's address for the per-address attempt
//!   budget, when a proxy stands in between (below).
//! * `testing` (feature `testing`, for `[dev-dependencies]` only) — tests
//!   of your own protected handlers without a TOTP flow:
//!   `Request::post("/transfer").stepped_up(&stepup, &assurance)` puts a
//!   genuine token, minted with your `StepUp`'s key ring, in the cookie.
//!
//! Responses of the routes a [`require`](StepUp::require) layer protects get
//! `Cache-Control: no-store` unless the handler set its own `Cache-Control`.
//!
//! See [`StepUp`] for a complete router.
//!
//! # Behind a reverse proxy
//!
//! The per-address attempt budget keys on the client's address. Served
//! directly (`into_make_service_with_connect_info::<SocketAddr>()`), that is
//! the socket peer. Behind a load balancer or reverse proxy the peer is the
//! proxy: every user would share one budget, and one of them could spend it
//! and block step-ups for everybody. Tell stepup the real address with a
//! [`ClientAddress`] in the request extensions, from a middleware of yours
//! that trusts forwarding headers **only as written by your own proxy**:
//!
//! * only when the socket peer is one of your proxies (otherwise the
//!   client is talking to you directly, and its headers are its own);
//! * in `X-Forwarded-For` (or the `for=` of `Forwarded`, RFC 7239), take
//!   the **right-most** address that is not one of your proxies: your proxy
//!   appended it; everything to its left was sent by the client and proves
//!   nothing. Never the left-most, never a header a client can set alone
//!   (`X-Real-IP`, `True-Client-IP`) unless your proxy overwrites it.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use axum::Router;
//! use axum::extract::{ConnectInfo, Request};
//! use axum::middleware::{self, Next};
//! use axum::response::Response;
//! use stepup_axum::ClientAddress;
//!
//! /// Your own proxies: the only peers whose forwarding headers count.
//! fn is_our_proxy(ip: IpAddr) -> bool {
//!     ip == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
//! }
//!
//! async fn real_client(mut request: Request, next: Next) -> Response {
//!     let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
//!     if peer.is_some_and(is_our_proxy) {
//!         let client = request
//!             .headers()
//!             .get_all("x-forwarded-for")
//!             .iter()
//!             .filter_map(|v| v.to_str().ok())
//!             .flat_map(|v| v.split(','))
//!             .map(|hop| hop.trim().parse::<IpAddr>())
//!             .rev() // right to left: the first hop that is not ours
//!             .find(|hop| !matches!(hop, Ok(ip) if is_our_proxy(*ip)));
//!         if let Some(Ok(ip)) = client {
//!             request.extensions_mut().insert(ClientAddress(ip));
//!         }
//!     }
//!     next.run(request).await
//! }
//!
//! let app: Router = Router::new()
//!     // .merge(stepup.routes()) …
//!     .layer(middleware::from_fn(real_client));
//! // axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
//! # let _ = app;
//! ```

mod client;
mod context;
mod extract;
#[cfg(feature = "axum-login")]
pub mod login;
mod routes;
mod stepup;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// tower-sessions as axum-login uses it (0.14), for the session layer and
/// store (feature `axum-login`).
#[cfg(feature = "axum-login")]
pub use axum_login::tower_sessions;
pub use client::ClientAddress;
pub use context::{SharedSubjects, StepUpContext};
pub use extract::{Assurance, AssuranceRejection, StepUpRequired};
pub use stepup::StepUp;
pub use stepup_challenge::i18n;
pub use stepup_challenge::routes::{LanguageChooser, PageRenderer};
pub use stepup_challenge::{ActionLimits, FormLimits};
pub use stepup_http::CookieSettings;
pub use stepup_http::{ActionSpec, BoundAction, FormFields, Normalise, Resumed};
pub use stepup_tower::{
    FromExtension, RequireStepUpLayer, SameOriginLayer, SubjectSource, TrustedHeaders,
};
