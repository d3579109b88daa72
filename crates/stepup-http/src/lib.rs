//! Framework-neutral HTTP for **stepup**: bytes in, strings out, no
//! framework types — so the tower layer, the actix-web middleware, both
//! extractors and the challenge routes read requests and write answers
//! byte for byte alike, for `http` 1 and actix-web's `http` 0.2 the same.
//!
//! * **Reading** — [`RequestHead`] (what an adapter exposes of its request),
//!   the assurance token among the cookies ([`CookieName`], [`Found`],
//!   [`find_token`]), browser navigations ([`is_navigation`]), same-origin
//!   checks ([`same_origin`]), JSON bodies ([`is_json`]).
//! * **Writing** — [`Reply`] (status, headers, body), challenge and login
//!   URLs ([`challenge_url`], [`login_location`]), the cookie
//!   ([`CookieSettings`]).
//! * **Deciding** — [`Guard`]: find the token, refuse an ambiguous one,
//!   decide (a fixed policy or one chosen per request), log, answer; and
//!   [`Hold`], which lets a handler's own `require` answer the same way.
//! * **Resuming** — a browser's form that needs a step-up is kept
//!   ([`Interruption`]) and comes back once from the confirmation page
//!   ([`Pickup`], [`Resumed`]), through the engine's [`Resume`] store.
//! * **Sharing** — [`Settings`]: the gate, clock, cookie, mount path,
//!   origin and the reasons the challenge page may show ([`Reasons`]).
//! * **Testing** (feature `testing`, for `[dev-dependencies]` only) —
//!   `testing::TestAssurance`: the genuine token a request carries after
//!   given step-ups, minted with the application's own issuer, for tests of
//!   the application's protected handlers.
//!
//! ```
//! use stepup_core::ReturnTo;
//! use stepup_http::{CookieName, Found, accepts_html, challenge_location};
//!
//! let cookie = CookieName::new("__Host-stepup");
//! let headers: [&[u8]; 1] = [b"theme=dark; __Host-stepup=abc"];
//! assert_eq!(cookie.find(headers), Found::One("abc"));
//!
//! assert!(accepts_html(b"text/html,*/*;q=0.8"));
//! let page = ReturnTo::parse("/step-up")?;
//! let back = ReturnTo::parse("/transfer?to=DE89")?;
//! assert_eq!(
//!     challenge_location(&page, &back, "stale"),
//!     "/step-up?return_to=/transfer%3Fto%3DDE89&reason=stale"
//! );
//! # Ok::<(), stepup_core::InvalidReturnTo>(())
//! ```

mod action;
mod bound;
mod context;
mod cookie;
mod funnel;
mod guard;
mod login;
mod read;
mod reply;
mod resume;
mod risk;
mod settings;
mod target;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod url;

pub use action::{
    ActionInput, ActionRefusal, ActionSpec, ActionSpecBuilder, BoundAction, Normalise, Source,
    SpecError,
};
pub use bound::{GRANT_HEADER, Grants, Opening, Taken};
pub use context::{ContextSettings, browser_family, network_prefix};
pub use cookie::{CookieSettings, DEFAULT_COOKIE_NAME, NoSubject, TOKEN_HEADER};
pub use funnel::{Challenged, Funnel, Via};
pub use guard::{Guard, Verdict};
pub use login::{LOGIN_SESSION_KEY, LoginBinding, login_epoch};
pub use read::{
    CookieName, Found, Header, RequestHead, accepts_html, find_token, is_json, is_navigation,
    is_navigation_of, is_urlencoded_form, same_origin,
};
pub use reply::{CONTENT_SECURITY_POLICY, FORBIDDEN_BODY, LOGIN_REQUIRED_BODY, Reply, escape_html};
pub use resume::{
    Again, Arrival, BoxFuture, DEFAULT_STASH_LIMIT, FormFields, Interrupted, Interruption, NotKept,
    Opened, Pickup, RESUME_FIELD, Resume, Resumed, Stashed, SummaryFn, Went,
};
pub use risk::{Risk, RiskFacts, RiskPolicies};
pub use settings::Settings;
pub use target::{
    CONFIRM_PATH, ChallengeTarget, DEFAULT_MOUNT, GENERIC_REASON, Hold, Reason, Reasons, Refusal,
};
pub use url::{challenge_location, challenge_url, is_random_id, login_location, valid_note};
