//! The framework-neutral core of **stepup**: step-up authentication for Rust
//! web services.
//!
//! A user who is already logged in must prove again that it is really them —
//! a TOTP code, a passkey, a password, an e-mail or SMS code, a recovery code —
//! before a sensitive action, and that proof stays fresh only for a while.
//! This crate holds everything that *decides*; the adapter crates only
//! translate HTTP requests and responses. Nothing here depends on an HTTP,
//! cookie or async-runtime type.
//!
//! # The story of one step-up
//!
//! 1. The application says who is logged in: a [`Subject`] (user id, optional
//!    session id, and an epoch it bumps to revoke everything).
//! 2. A route states what it needs: a [`Policy`] — a level of the
//!    [`LevelTable`] (by default NIST SP 800-63B's: `aal2` by TOTP, a
//!    passkey or a recovery code, never by an e-mail or SMS code; `aal3` by
//!    a device-bound passkey), a [`Method`], or an expression such as
//!    `passkey within 5m or (password within 15m and totp within 5m)`.
//! 3. The [`Gate`] checks the request's assurance token against the policy
//!    and returns a [`Decision`]: [`Allow`](Decision::Allow) with the
//!    [`Assurance`], or [`Challenge`](Decision::Challenge) saying why and what
//!    would satisfy it — renderable as an RFC 9470 `WWW-Authenticate` value
//!    and an RFC 9457 problem body.
//! 4. After the user proves a method, the [`Issuer`] mints a new token that
//!    records the [`Proof`] and keeps the still-fresh proofs of the old one.
//! 5. [`ReturnTo`] makes sure the user goes back only to a local path.
//!
//! ```
//! use std::time::Duration;
//! use stepup_core::*;
//!
//! // Once, at start-up.
//! let ring = KeyRing::new(Key::from_base64(KeyId::new(1), "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=")?);
//! let config = TokenConfig::new(ring);
//! let (issuer, gate) = (config.issuer(), config.gate());
//! let transfer: Policy = "level 2 within 5m".parse()?;
//! let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
//!
//! // A request from a logged-in user without a step-up: challenged.
//! let user = Subject::new("user-42").with_session("session-1");
//! let Decision::Challenge(challenge) = gate.check(&user, None, &transfer, clock.now()) else {
//!     unreachable!()
//! };
//! assert_eq!(challenge.reason(), ChallengeReason::NoAssurance);
//!
//! // The user enters a TOTP code; the challenge engine verified it.
//! let token = issuer.issue(&user, Proof::new(Method::Totp, clock.now()), None, clock.now())?;
//!
//! // The retried request carries the new token: allowed, for five minutes.
//! let Decision::Allow(assurance) = gate.check(&user, Some(token.value()), &transfer, clock.now()) else {
//!     unreachable!()
//! };
//! assert_eq!(assurance.level(), 2);
//! clock.advance(Duration::from_secs(301));
//! assert!(matches!(gate.check(&user, Some(token.value()), &transfer, clock.now()), Decision::Challenge(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The token
//!
//! Stateless and small: HMAC-SHA256 over a compact binary body, base64url.
//! The MAC is checked (in constant time, full length) before any field but
//! the version and key id is read; a purpose tag inside the MAC keeps values
//! signed for other cookies out; the subject and session are bound through
//! the MAC without appearing in the token. See the `token` module source for
//! the byte layout.

#![forbid(unsafe_code)]

pub mod action;
mod assurance;
mod base64url;
mod challenge;
mod config;
pub mod ct;
mod error;
mod gate;
mod issuer;
mod json;
mod key;
mod level;
mod method;
mod policy;
mod policy_syntax;
mod return_to;
mod subject;
mod time;
mod token;

pub use action::{ACTION_DIGEST_TAG, Action, ActionDigest, ActionError, DuplicateMember, Jcs};
pub use assurance::{Assurance, MAX_PROOFS, Proof};
pub use challenge::{Challenge, ChallengeReason, ERROR_CODE, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE};
pub use config::{DEFAULT_LIFETIME, DEFAULT_SKEW, MAX_LIFETIME, TokenConfig};
pub use error::{ConfigError, InvalidMethod, InvalidReturnTo, IssueError, KeyError};
pub use gate::{Decision, Gate};
pub use issuer::{IssuedToken, Issuer};
pub use key::{Key, KeyId, KeyRing};
pub use level::{Level, LevelTable};
pub use method::{CustomMethod, Method};
pub use policy::{Facts, Policy, Requirement};
pub use policy_syntax::{PolicyParseError, PolicyParseErrorKind};
pub use return_to::ReturnTo;
pub use subject::Subject;
pub use time::{Clock, SystemClock, TestClock, Timestamp};
pub use token::{DEFAULT_PURPOSE, MAX_PURPOSE_LEN, MAX_TOKEN_LEN};

/// Benchmark support: not part of the public API, no stability promise.
#[doc(hidden)]
pub mod __bench {
    use crate::{Gate, Subject};

    /// The exact bytes the gate's MAC covers for `token` presented by
    /// `subject`, so a benchmark can time one HMAC over them (the floor).
    pub fn signed_input(gate: &Gate, token: &str, subject: &Subject) -> Option<Vec<u8>> {
        gate.codec().signed_input(token, subject)
    }
}
