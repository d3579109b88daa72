//! Step-up authentication for actix-web: users who are already logged in
//! prove again that it is really them before a sensitive action.
//!
//! The adapter is native actix-web 4 — no tower bridge. Every decision is
//! the same framework-neutral [`stepup_http::Guard`] the tower layer runs,
//! so it writes the same answers, byte for byte; this crate only puts
//! actix-web's types around it ([`Head`], [`into_response`]):
//!
//! - [`RequireStepUp`]: middleware for a resource or scope, with a
//!   [`Policy`](stepup_core::Policy) or one chosen per request
//!   ([`RequireStepUp::per_request`]).
//! - [`Assurance`]: the extractor for handlers (and `Option<Assurance>`), with
//!   [`Assurance::require`] for in-handler decisions.
//! - [`StepUp`]: builds both from one configuration and serves the
//!   challenge routes (the page, TOTP, password, recovery codes, e-mail/SMS
//!   codes, passkeys, status, drop, enrollment) with
//!   [`configure`](StepUp::configure) — the same paths, bodies, statuses,
//!   headers and page as the axum adapter, because both serve the
//!   framework-neutral [`stepup_challenge::routes::ChallengeRoutes`].
//! - [`SameOrigin`] (or [`StepUp::same_origin`]): the challenge routes'
//!   origin check for your own state-changing routes (log-in, log-out,
//!   transfers): a `POST`/`PUT`/`PATCH`/`DELETE` whose `Origin` is not yours
//!   (or that has none and no `Sec-Fetch-Site: same-origin`) gets `403`
//!   before the handler runs. `SameSite` cookies alone let a sibling
//!   subdomain through.
//! - [`ClientAddress`]: the client's address for the per-address attempt
//!   budget, when a proxy stands in between (below).
//! - `testing` (feature `testing`, for `[dev-dependencies]` only): tests of
//!   your own protected handlers without a TOTP flow:
//!   `TestRequest::post().stepped_up(&stepup, &assurance)` puts a genuine
//!   token, minted with your `StepUp`'s key ring, in the cookie.
//!
//! Responses of the routes a [`RequireStepUp`] protects get
//! `Cache-Control: no-store` unless the handler set its own `Cache-Control`.
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
//!
//! # Behind a reverse proxy
//!
//! The per-address attempt budget keys on the client's address: by default
//! the connection's `peer_addr`. Behind a load balancer or reverse proxy the
//! peer is the proxy: every user would share one budget, and one of them
//! could spend it and block step-ups for everybody. Tell stepup the real
//! address with a [`ClientAddress`] in the request extensions, from a
//! middleware of yours that trusts forwarding headers **only as written by
//! your own proxy**:
//!
//! - only when the socket peer is one of your proxies (otherwise the client
//!   is talking to you directly, and its headers are its own);
//! - in `X-Forwarded-For` (or the `for=` of `Forwarded`, RFC 7239), take the
//!   **right-most** address that is not one of your proxies: your proxy
//!   appended it; everything to its left was sent by the client and proves
//!   nothing. Never the left-most, never a header a client can set alone
//!   (`X-Real-IP`, `True-Client-IP`) unless your proxy overwrites it.
//!
//! (actix-web's `ConnectionInfo::realip_remote_addr` takes the *left-most*
//! `Forwarded`/`X-Forwarded-For` value, which the client chooses: do not
//! use it for this.)
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use actix_web::dev::Service as _;
//! use actix_web::{App, HttpMessage};
//! use stepup_actix::ClientAddress;
//!
//! /// Your own proxies: the only peers whose forwarding headers count.
//! fn is_our_proxy(ip: IpAddr) -> bool {
//!     ip == IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
//! }
//!
//! let app = App::new()
//!     // .configure(|c| stepup.configure(c)) …
//!     .wrap_fn(|request, service| {
//!         if request.peer_addr().is_some_and(|peer| is_our_proxy(peer.ip())) {
//!             let client = request
//!                 .headers()
//!                 .get_all("x-forwarded-for")
//!                 .filter_map(|v| v.to_str().ok())
//!                 .flat_map(|v| v.split(','))
//!                 .map(|hop| hop.trim().parse::<IpAddr>())
//!                 .rev() // right to left: the first hop that is not ours
//!                 .find(|hop| !matches!(hop, Ok(ip) if is_our_proxy(*ip)));
//!             if let Some(Ok(ip)) = client {
//!                 request.extensions_mut().insert(ClientAddress(ip));
//!             }
//!         }
//!         service.call(request)
//!     });
//! # let _ = app;
//! ```

mod client;
mod extract;
mod future;
mod head;
#[cfg(feature = "actix-identity")]
pub mod identity;
mod middleware;
mod routes;
mod same_origin;
mod stepup;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use client::ClientAddress;
pub use extract::{Assurance, AssuranceRejection, StepUpRequired};
pub use future::StepUpFuture;
pub use head::{Head, into_response};
pub use middleware::{DEFAULT_CHALLENGE_PATH, RequireStepUp, RequireStepUpMiddleware, StepUpData};
pub use same_origin::{SameOrigin, SameOriginMiddleware};
pub use stepup::StepUp;
pub use stepup_challenge::i18n;
pub use stepup_challenge::routes::{LanguageChooser, PageRenderer};
pub use stepup_challenge::{ActionLimits, FormLimits};
pub use stepup_http::{ActionSpec, BoundAction, FormFields, Normalise, Resumed};
pub use stepup_http::{CookieSettings, DEFAULT_COOKIE_NAME, Guard, NoSubject, TOKEN_HEADER};
