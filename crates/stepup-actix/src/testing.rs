//! Test helpers for applications (feature `testing`): call your own
//! actix-web service as if the user had just stepped up, without driving a
//! TOTP or passkey flow.
//!
//! **For tests only.** Enable the feature in `[dev-dependencies]`
//! (`stepup = { …, features = ["actix", "testing"] }`), never in
//! `[dependencies]`; Cargo then leaves it out of production builds.
//! Nothing is bypassed: [`SteppedUpTestRequest::stepped_up`] mints a
//! genuine token with your [`StepUp`]'s own engine issuer (its key ring,
//! purpose, levels, lifetime) at your `StepUp`'s clock, and puts it in your
//! assurance cookie; the request then goes through the real middleware,
//! gate and policy. See [`stepup_http::testing`] for what
//! [`TestAssurance`] mints.
//!
//! ```
//! use std::time::Duration;
//! use actix_web::{App, HttpRequest, test, web};
//! use stepup_actix::{Assurance, StepUp};
//! use stepup_actix::testing::{Method, SteppedUpTestRequest, TestAssurance, TestClock, Timestamp, ago};
//! use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
//! use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
//!
//! # actix_web::rt::System::new().block_on(async {
//! let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
//! let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
//! let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::new(clock.clone()))
//!     .with_clock(clock.clone());
//! let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
//! let stepup = StepUp::new(engine, who, "https://bank.example");
//! let app = test::init_service(App::new().service(
//!     web::resource("/transfer")
//!         .wrap(stepup.require("level 2 within 5m".parse::<Policy>()?))
//!         .route(web::post().to(|a: Assurance| async move { format!("level {}", a.level()) })),
//! ))
//! .await;
//!
//! let alice = TestAssurance::for_subject("alice").with(Method::Totp, ago(Duration::from_secs(60)));
//! let request = test::TestRequest::post()
//!     .uri("/transfer")
//!     .insert_header(("x-user", "alice")) // what the login would find
//!     .stepped_up(&stepup, &alice)
//!     .to_request();
//! assert_eq!(test::call_service(&app, request).await.status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use actix_web::cookie::Cookie;
use actix_web::test::TestRequest;
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
    /// use actix_web::HttpRequest;
    /// use stepup_actix::StepUp;
    /// use stepup_actix::testing::{Method, TestAssurance, ago};
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let stepup = StepUp::new(engine, |_: &HttpRequest| None::<Subject>, "https://bank.example");
    /// let token = stepup.test_token(&TestAssurance::for_subject("alice").with(Method::Passkey, ago(Duration::ZERO)))?;
    /// assert!(token.cookie().starts_with("__Host-stepup="));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn test_token(&self, assurance: &TestAssurance) -> Result<TestToken, TestAssuranceError> {
        assurance.token(self.engine().issuer(), self.settings())
    }
}

/// Puts a [`TestAssurance`] on an [`actix_web::test::TestRequest`] in one
/// call, for `test::call_service` (feature `testing`; tests only).
///
/// The request must also be made by the same subject — what your subject
/// closure finds for it: the same user id, session and epoch. A request
/// that already carries an assurance cookie of that name keeps only one
/// (actix-web's test cookie jar), so step up once per request.
///
/// # Panics
///
/// When the assurance cannot be minted — no method, a proof after the
/// clock's time, a clock before September 2020: a mistake in the test.
/// [`StepUp::test_token`] returns the error instead.
///
/// ```
/// use std::time::Duration;
/// use actix_web::{HttpMessage as _, HttpRequest, test::TestRequest};
/// use stepup_actix::StepUp;
/// use stepup_actix::testing::{Method, SteppedUpTestRequest, TestAssurance, ago};
/// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
/// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
///
/// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
/// let stepup = StepUp::new(engine, |_: &HttpRequest| None::<Subject>, "https://bank.example");
/// let alice = TestAssurance::for_subject("alice").with(Method::Totp, ago(Duration::from_secs(30)));
///
/// let by_cookie = TestRequest::get().stepped_up(&stepup, &alice).to_request();
/// let by_header = TestRequest::get().stepped_up_by_header(&stepup, &alice).to_request();
/// assert!(by_cookie.headers().get("cookie").unwrap().to_str()?.starts_with("__Host-stepup="));
/// assert!(by_header.headers().contains_key("stepup-assurance"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SteppedUpTestRequest: Sized {
    /// Adds the assurance cookie holding `assurance`'s token, minted by
    /// `step_up` (its issuer, clock and cookie name).
    fn stepped_up<F, S, P>(self, step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier;

    /// Adds the `Stepup-Assurance` header instead, for routes whose
    /// middleware accepts it (`accept_token_header`).
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

fn minted<F, S, P>(step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> TestToken
where
    F: FactorStore,
    S: StateStore,
    P: PasswordVerifier,
{
    match step_up.test_token(assurance) {
        Ok(token) => token,
        // A test helper: the test is wrong, say so where it runs.
        #[allow(clippy::panic)]
        Err(e) => panic!("stepped_up: {e}"),
    }
}

impl SteppedUpTestRequest for TestRequest {
    fn stepped_up<F, S, P>(self, step_up: &StepUp<F, S, P>, assurance: &TestAssurance) -> Self
    where
        F: FactorStore,
        S: StateStore,
        P: PasswordVerifier,
    {
        let token = minted(step_up, assurance);
        self.cookie(Cookie::new(
            token.cookie_name().to_owned(),
            token.value().to_owned(),
        ))
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
        let token = minted(step_up, assurance);
        let (name, value) = token.header();
        self.append_header((name, value.to_owned()))
    }
}

#[cfg(test)]
mod tests;
