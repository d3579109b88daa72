//! Test helpers for applications (feature `testing`): send a request to
//! your own [`Router`](axum::Router) as if the user had just stepped up,
//! without driving a TOTP or passkey flow.
//!
//! **For tests only.** Enable the feature in `[dev-dependencies]`
//! (`stepup = { …, features = ["axum", "testing"] }`), never in
//! `[dependencies]`; Cargo then leaves it out of production builds.
//! Nothing is bypassed: [`SteppedUpRequest::stepped_up`] mints a genuine
//! token with your [`StepUp`]'s own engine issuer (its key ring, purpose,
//! levels, lifetime) at your `StepUp`'s clock, and puts it in your
//! assurance cookie; the request then goes through the real layer, gate
//! and policy. See [`stepup_http::testing`] for what [`TestAssurance`]
//! mints.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, body::Body, http::Request, routing::post};
//! use stepup_axum::{Assurance, StepUp};
//! use stepup_axum::testing::{Method, SteppedUpRequest, TestAssurance, TestClock, Timestamp, ago};
//! use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
//! use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
//! use stepup_tower::FromExtension;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
//! let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
//! let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::new(clock.clone()))
//!     .with_clock(clock.clone());
//! let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example");
//! let app: Router = Router::new()
//!     .route("/transfer", post(|a: Assurance| async move { format!("level {}", a.level()) })
//!         .route_layer(stepup.require("level 2 within 5m".parse::<Policy>()?)))
//!     .layer(stepup.layer());
//!
//! let alice = TestAssurance::for_subject("alice").with(Method::Totp, ago(Duration::from_secs(60)));
//! let request = Request::post("/transfer")
//!     .extension(alice.subject().clone()) // what the login layer would insert
//!     .stepped_up(&stepup, &alice)
//!     .body(Body::empty())?;
//! assert_eq!(app.oneshot(request).await?.status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use axum::http::header::COOKIE;
use axum::http::{HeaderName, HeaderValue, Request, request};
use stepup_challenge::{FactorStore, PasswordVerifier, StateStore};

pub use stepup_http::testing::{
    Method, ProvenAt, TestAssurance, TestAssuranceError, TestClock, TestToken, Timestamp, ago,
};

use crate::StepUp;

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> StepUp<F, S, P> {
    /// The token `assurance` would have left in the cookie, minted by this
    /// `StepUp`'s engine issuer at its clock's time (feature `testing`;
    /// tests only).
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_axum::StepUp;
    /// use stepup_axum::testing::{Method, TestAssurance, ago};
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
    /// use stepup_tower::FromExtension;
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example");
    /// let token = stepup.test_token(&TestAssurance::for_subject("alice").with(Method::Passkey, ago(Duration::ZERO)))?;
    /// assert!(token.cookie().starts_with("__Host-stepup="));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn test_token(&self, assurance: &TestAssurance) -> Result<TestToken, TestAssuranceError> {
        assurance.token(self.engine.issuer(), &self.settings)
    }
}

/// Puts a [`TestAssurance`] on a request in one call, for
/// `Router::oneshot`: implemented for [`http::request::Builder`](request::Builder)
/// and [`http::Request`](Request) (feature `testing`; tests only).
///
/// The request must also be made by the same subject — what your subject
/// source (your login layer) finds for it: the same user id, session and
/// epoch. A request that already carries an assurance cookie then has two,
/// and is refused as ambiguous, as it would be from a browser.
///
/// # Panics
///
/// When the assurance cannot be minted — no method, a proof after the
/// clock's time, a clock before September 2020: a mistake in the test.
/// [`StepUp::test_token`] returns the error instead.
///
/// ```
/// use std::time::Duration;
/// use axum::{body::Body, http::Request};
/// use stepup_axum::StepUp;
/// use stepup_axum::testing::{Method, SteppedUpRequest, TestAssurance, ago};
/// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
/// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
/// use stepup_tower::FromExtension;
///
/// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
/// let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example");
/// let alice = TestAssurance::for_subject("alice").with(Method::Totp, ago(Duration::from_secs(30)));
///
/// let built = Request::get("/").stepped_up(&stepup, &alice).body(Body::empty())?;
/// let later = Request::new(Body::empty()).stepped_up_by_header(&stepup, &alice);
/// assert!(built.headers()["cookie"].to_str()?.starts_with("__Host-stepup="));
/// assert!(later.headers().contains_key("stepup-assurance"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SteppedUpRequest: Sized {
    /// Adds the assurance cookie holding `assurance`'s token, minted by
    /// `step_up` (its issuer, clock and cookie name).
    fn stepped_up<F, S, P>(self, step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier;

    /// Adds the `Stepup-Assurance` header instead, for routes whose layer
    /// accepts it (`accept_token_header`).
    fn stepped_up_by_header<F, S, P>(
        self,
        step_up: &StepUp<F, S, P>,
        assurance: &TestAssurance,
    ) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier;
}

/// The header to add: the cookie pair or the token header.
fn minted<F, S, P>(
    step_up: &StepUp<F, S, P>,
    assurance: &TestAssurance,
    by_header: bool,
) -> (HeaderName, HeaderValue)
where
    F: FactorStore,
    S: StateStore,
    P: PasswordVerifier,
{
    let token = match step_up.test_token(assurance) {
        Ok(token) => token,
        // A test helper: the test is wrong, say so where it runs.
        #[allow(clippy::panic)]
        Err(e) => panic!("stepped_up: {e}"),
    };
    let (name, value) = if by_header {
        (
            HeaderName::from_static(stepup_http::TOKEN_HEADER),
            token.value().to_owned(),
        )
    } else {
        (COOKIE, token.cookie())
    };
    match HeaderValue::try_from(value) {
        Ok(value) => (name, value),
        // The token is base64url and cookie names are tokens: unreachable.
        #[allow(clippy::panic)]
        Err(e) => panic!("stepped_up: the token is not a header value: {e}"),
    }
}

impl SteppedUpRequest for request::Builder {
    fn stepped_up<F, S, P>(self, step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier,
    {
        let (name, value) = minted(step_up, assurance, false);
        self.header(name, value)
    }

    fn stepped_up_by_header<F, S, P>(
        self,
        step_up: &StepUp<F, S, P>,
        assurance: &TestAssurance,
    ) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier,
    {
        let (name, value) = minted(step_up, assurance, true);
        self.header(name, value)
    }
}

impl<B> SteppedUpRequest for Request<B> {
    fn stepped_up<F, S, P>(mut self, step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier,
    {
        let (name, value) = minted(step_up, assurance, false);
        self.headers_mut().append(name, value);
        self
    }

    fn stepped_up_by_header<F, S, P>(
        mut self,
        step_up: &StepUp<F, S, P>,
        assurance: &TestAssurance,
    ) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier,
    {
        let (name, value) = minted(step_up, assurance, true);
        self.headers_mut().append(name, value);
        self
    }
}

#[cfg(test)]
mod tests;
