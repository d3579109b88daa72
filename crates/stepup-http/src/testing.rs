//! Test helpers for applications (feature `testing`): the assurance a
//! request would carry after the user stepped up with these methods at
//! these times, without driving a TOTP or passkey flow.
//!
//! **For tests only.** Turn the feature on in `[dev-dependencies]`, never
//! in `[dependencies]`:
//!
//! ```toml
//! [dev-dependencies]
//! stepup = { version = "0.1", features = ["axum", "testing"] }
//! ```
//!
//! Cargo then enables it for test, example and bench builds only, so a
//! production build does not contain this module. Nothing here bypasses a
//! check: [`TestAssurance`] mints a genuine token with the application's own
//! [`Issuer`] — its key ring, purpose, level table and lifetime — exactly as
//! the challenge engine does after each successful step-up, and the request
//! then goes through the real gate, cookie lookup and policy. Whoever holds
//! the key can mint tokens anyway; a test that has no key cannot use this.
//! Every token minted here is also logged (`warn`, target `stepup`), so one
//! minted in a running service does not go unnoticed.
//!
//! The adapters plug it into a request in one call: `stepup-axum`'s
//! `SteppedUpRequest` (on `http::request::Builder` and `http::Request`, for
//! `Router::oneshot`) and `stepup-actix`'s `SteppedUpTestRequest` (on
//! `actix_web::test::TestRequest`, for `test::call_service`), both behind
//! their own `testing` feature.
//!
//! ```
//! use std::time::Duration;
//! use stepup_core::{Decision, Key, KeyId, KeyRing, Policy, TokenConfig};
//! use stepup_http::Settings;
//! use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp, ago};
//!
//! let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
//! let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
//! let settings = Settings::new(config.gate(), "https://bank.example").with_clock(clock.clone());
//!
//! let alice = TestAssurance::for_subject("alice")
//!     .session("session-1")
//!     .with(Method::Password, ago(Duration::from_secs(600)))
//!     .with(Method::Totp, ago(Duration::from_secs(30)));
//! let token = alice.token(&config.issuer(), &settings)?;
//! assert_eq!(token.cookie_name(), "__Host-stepup");
//! assert!(token.cookie().starts_with("__Host-stepup="));
//!
//! // The real gate decides, for the subject the request is made by.
//! let transfer: Policy = "level 2 within 5m".parse()?;
//! let now = clock.now();
//! let gate = settings.gate();
//! assert!(matches!(gate.check(alice.subject(), Some(token.value()), &transfer, now), Decision::Allow(_)));
//! clock.advance(Duration::from_secs(300)); // the TOTP proof is now 5m30s old
//! assert!(matches!(gate.check(alice.subject(), Some(token.value()), &transfer, clock.now()), Decision::Challenge(_)));
//! # use stepup_core::Clock as _;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use stepup_core::{Assurance, IssueError, IssuedToken, Issuer, Proof, Subject};
pub use stepup_core::{Method, TestClock, Timestamp};

use crate::cookie::TOKEN_HEADER;
use crate::settings::Settings;

/// When a method of a [`TestAssurance`] was proven: some time before the
/// token is minted ([`ago`]), or at a fixed time (a [`Timestamp`], for
/// tests on a [`TestClock`]).
///
/// ```
/// use std::time::Duration;
/// use stepup_http::testing::{ProvenAt, Timestamp, ago};
///
/// assert_eq!(ago(Duration::from_secs(60)), ProvenAt::Ago(Duration::from_secs(60)));
/// let t = Timestamp::from_unix_seconds(1_700_000_000);
/// assert_eq!(ProvenAt::from(t), ProvenAt::At(t));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvenAt {
    /// This long (whole seconds) before the token is minted.
    Ago(Duration),
    /// At this time.
    At(Timestamp),
}

impl ProvenAt {
    fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            ProvenAt::Ago(age) => now.saturating_sub(age),
            ProvenAt::At(at) => at,
        }
    }
}

impl From<Timestamp> for ProvenAt {
    fn from(at: Timestamp) -> ProvenAt {
        ProvenAt::At(at)
    }
}

/// Proven `age` before the token is minted (whole seconds).
///
/// ```
/// use std::time::Duration;
/// use stepup_http::testing::{Method, TestAssurance, ago};
///
/// let assurance = TestAssurance::for_subject("alice").with(Method::Totp, ago(Duration::from_secs(90)));
/// # let _ = assurance;
/// ```
pub fn ago(age: Duration) -> ProvenAt {
    ProvenAt::Ago(age)
}

/// The assurance a request should carry in a test: for this subject (user
/// id, session, epoch — exactly what the application's subject source
/// returns for the request), these methods proven at these times.
///
/// [`mint`](TestAssurance::mint) replays the step-ups the way the challenge
/// engine would have made them: oldest proof first, each one a call to
/// [`Issuer::issue`] (or [`Issuer::issue_in_context`]) at the time of that
/// proof, carrying over the previous token. The result is the token the
/// real flow leaves in the cookie — same key, binding, epoch, issue time,
/// lifetime — so every rule the gate applies holds: a proof older than a
/// policy's window is stale, a token older than the lifetime has expired,
/// another user's or session's token is refused, a bumped epoch revokes it.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
/// use stepup_http::testing::{Method, TestAssurance, Timestamp, ago};
///
/// let issuer = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?)).issuer();
/// let now = Timestamp::from_unix_seconds(1_700_000_000);
/// let token = TestAssurance::for_subject("alice")
///     .session("session-1")
///     .epoch(3)
///     .with(Method::Password, ago(Duration::from_secs(600)))
///     .with(Method::Totp, ago(Duration::from_secs(60)))
///     .mint(&issuer, now)?;
///
/// assert_eq!(token.assurance().level(), 2);
/// assert_eq!(token.assurance().age_of(Method::Password, now), Some(Duration::from_secs(600)));
/// // Issued when the last step-up happened, as the engine would have.
/// assert_eq!(token.expires_at(), now - Duration::from_secs(60) + token.max_age());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TestAssurance {
    subject: Subject,
    proofs: Vec<(Method, ProvenAt)>,
    context: Option<Vec<u8>>,
}

impl TestAssurance {
    /// For the user `id`, without a session and at epoch 0 (add them with
    /// [`session`](TestAssurance::session) and [`epoch`](TestAssurance::epoch)).
    ///
    /// ```
    /// use stepup_http::testing::TestAssurance;
    /// assert_eq!(TestAssurance::for_subject("alice").subject().id(), "alice");
    /// ```
    pub fn for_subject(id: impl Into<Arc<str>>) -> TestAssurance {
        TestAssurance::new(Subject::new(id))
    }

    /// For `subject` as the application's subject source returns it.
    ///
    /// ```
    /// use stepup_core::Subject;
    /// use stepup_http::testing::TestAssurance;
    ///
    /// let bob = Subject::new("bob").with_session("s-2").with_epoch(7);
    /// assert_eq!(TestAssurance::new(bob).subject().epoch(), 7);
    /// ```
    pub fn new(subject: Subject) -> TestAssurance {
        TestAssurance {
            subject,
            proofs: Vec::new(),
            context: None,
        }
    }

    /// Bound to this session: the session part of the
    /// [`Subject`] the application's subject source returns (a session id,
    /// or the login binding of the login-crate integrations).
    ///
    /// ```
    /// use stepup_http::testing::TestAssurance;
    /// let a = TestAssurance::for_subject("alice").session("session-1");
    /// assert_eq!(a.subject().session(), Some("session-1"));
    /// ```
    #[must_use]
    pub fn session(mut self, session: impl Into<Arc<str>>) -> TestAssurance {
        self.subject = self.subject.with_session(session);
        self
    }

    /// At this epoch (the subject's current one, unless the test checks
    /// that an old epoch is revoked).
    ///
    /// ```
    /// use stepup_http::testing::TestAssurance;
    /// assert_eq!(TestAssurance::for_subject("alice").epoch(2).subject().epoch(), 2);
    /// ```
    #[must_use]
    pub fn epoch(mut self, epoch: u64) -> TestAssurance {
        self.subject = self.subject.with_epoch(epoch);
        self
    }

    /// `method` proven `when`: [`ago`]`(duration)` or a [`Timestamp`]. A
    /// method given twice keeps its latest proof, as in a token.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_http::testing::{Method, TestAssurance, Timestamp, ago};
    ///
    /// let a = TestAssurance::for_subject("alice")
    ///     .with(Method::Passkey, ago(Duration::from_secs(30)))
    ///     .with(Method::Password, Timestamp::from_unix_seconds(1_700_000_000));
    /// # let _ = a;
    /// ```
    #[must_use]
    pub fn with(mut self, method: Method, when: impl Into<ProvenAt>) -> TestAssurance {
        self.proofs.push((method, when.into()));
        self
    }

    /// Minted in this client context, as by
    /// [`Issuer::issue_in_context`] (the challenge routes mint every token
    /// in the request's context): for routes whose policy has a
    /// `same_context` term, give the context of the test request,
    /// [`ContextSettings::context`](crate::ContextSettings::context) of its
    /// client address and `User-Agent` (a test request without an address
    /// has no context: such a term is never met for it).
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// use stepup_http::testing::{Method, TestAssurance, Timestamp};
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// let token = TestAssurance::for_subject("alice")
    ///     .with(Method::Totp, now)
    ///     .in_context(b"203.0.113 Firefox")
    ///     .mint(&config.issuer(), now)?;
    /// assert_eq!(config.gate().same_context(token.assurance(), b"203.0.113 Firefox"), Some(true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn in_context(mut self, context: &[u8]) -> TestAssurance {
        self.context = Some(context.to_vec());
        self
    }

    /// The subject the token is bound to.
    ///
    /// ```
    /// use stepup_http::testing::TestAssurance;
    /// assert_eq!(TestAssurance::for_subject("alice").subject().session(), None);
    /// ```
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The token the step-ups would have left, minted by `issuer` (the
    /// application's: `step_up.engine().issuer()`) with the clock standing
    /// at `now`.
    ///
    /// Errors: no method ([`TestAssuranceError::NoMethods`]), a proof after
    /// `now`, or the issuer's own refusal (a proof before September 2020,
    /// an issuer without keys).
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// use stepup_http::testing::{TestAssurance, TestAssuranceError, Timestamp};
    ///
    /// let issuer = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?)).issuer();
    /// let nothing = TestAssurance::for_subject("alice").mint(&issuer, Timestamp::from_unix_seconds(1_700_000_000));
    /// assert!(matches!(nothing, Err(TestAssuranceError::NoMethods)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mint(&self, issuer: &Issuer, now: Timestamp) -> Result<IssuedToken, TestAssuranceError> {
        let mut proofs: Vec<Proof> = self
            .proofs
            .iter()
            .map(|(method, when)| Proof::new(*method, when.resolve(now)))
            .collect();
        if proofs.iter().any(|p| p.at() > now) {
            return Err(TestAssuranceError::Issue(IssueError::ProofInFuture));
        }
        // Oldest first, as the step-ups happened (stable: equal times keep
        // the order given).
        proofs.sort_by_key(Proof::at);
        let mut token: Option<IssuedToken> = None;
        for proof in proofs {
            let at = proof.at();
            let previous = token.as_ref().map(IssuedToken::value);
            let issued = match &self.context {
                Some(context) => {
                    issuer.issue_in_context(&self.subject, proof, previous, context, at)
                }
                None => issuer.issue(&self.subject, proof, previous, at),
            };
            token = Some(issued.map_err(TestAssuranceError::Issue)?);
        }
        let token = token.ok_or(TestAssuranceError::NoMethods)?;
        tracing::warn!(target: "stepup", outcome = "test_assurance", level = token.assurance().level(), "an assurance token was minted by the test helpers (feature `testing`): never in production");
        Ok(token)
    }

    /// [`mint`](TestAssurance::mint) at the time of `settings`' clock (the
    /// one the guards read), named as `settings`' cookie: what a request
    /// carries.
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// use stepup_http::{CookieSettings, Settings, TOKEN_HEADER};
    /// use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    /// let settings = Settings::new(config.gate(), "http://127.0.0.1:3000")
    ///     .with_clock(clock.clone())
    ///     .with_cookie(CookieSettings::insecure_local_development());
    /// let token = TestAssurance::for_subject("alice")
    ///     .with(Method::Totp, Timestamp::from_unix_seconds(1_700_000_000))
    ///     .token(&config.issuer(), &settings)?;
    /// assert_eq!(token.cookie(), format!("stepup={}", token.value()));
    /// assert_eq!(token.header(), (TOKEN_HEADER, token.value()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn token(
        &self,
        issuer: &Issuer,
        settings: &Settings,
    ) -> Result<TestToken, TestAssuranceError> {
        let issued = self.mint(issuer, settings.clock().now())?;
        Ok(TestToken {
            cookie_name: settings.cookie_name().to_owned(),
            issued,
        })
    }
}

impl From<Subject> for TestAssurance {
    fn from(subject: Subject) -> TestAssurance {
        TestAssurance::new(subject)
    }
}

/// A token minted by [`TestAssurance::token`], ready for a request: as the
/// cookie (what browsers send) or as the `Stepup-Assurance` header (for
/// routes that accept it). `Debug` does not show the token.
///
/// ```
/// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
/// use stepup_http::Settings;
/// use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
///
/// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let now = Timestamp::from_unix_seconds(1_700_000_000);
/// let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
/// let token = TestAssurance::for_subject("alice").with(Method::Passkey, now).token(&config.issuer(), &settings)?;
/// assert_eq!(token.assurance().level(), 2);
/// assert_eq!(token.cookie(), format!("{}={}", token.cookie_name(), token.value()));
/// assert!(!format!("{token:?}").contains(token.value()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TestToken {
    cookie_name: String,
    issued: IssuedToken,
}

impl TestToken {
    /// The token text (the cookie's value).
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert!(token.value().len() > 40);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn value(&self) -> &str {
        self.issued.value()
    }

    /// The name of the application's assurance cookie.
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert_eq!(token.cookie_name(), "__Host-stepup");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// `name=value`, for a request's `Cookie` header.
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert_eq!(token.cookie(), format!("__Host-stepup={}", token.value()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cookie(&self) -> String {
        format!("{}={}", self.cookie_name, self.issued.value())
    }

    /// The opt-in request header and its value: `(`[`TOKEN_HEADER`]`, token)`.
    /// Only routes that accept it (`accept_token_header`) read it; a request
    /// carrying both the header and the cookie is refused.
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert_eq!(token.header(), ("stepup-assurance", token.value()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn header(&self) -> (&'static str, &str) {
        (TOKEN_HEADER, self.issued.value())
    }

    /// What the token asserts.
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert_eq!(token.assurance().amr(), ["otp"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn assurance(&self) -> &Assurance {
        self.issued.assurance()
    }

    /// The minted token itself (its lifetime, expiry).
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    /// # use stepup_http::Settings;
    /// # use stepup_http::testing::{Method, TestAssurance, TestClock, Timestamp};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// # let settings = Settings::new(config.gate(), "https://bank.example").with_clock(TestClock::new(now));
    /// let token = TestAssurance::for_subject("alice").with(Method::Totp, now).token(&config.issuer(), &settings)?;
    /// assert_eq!(token.issued().expires_at(), now + token.issued().max_age());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn issued(&self) -> &IssuedToken {
        &self.issued
    }
}

impl fmt::Debug for TestToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestToken")
            .field("cookie_name", &self.cookie_name)
            .field("issued", &self.issued)
            .finish()
    }
}

/// Why a [`TestAssurance`] could not be minted: a mistake in the test.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{IssueError, Key, KeyId, KeyRing, TokenConfig};
/// use stepup_http::testing::{Method, TestAssurance, TestAssuranceError, Timestamp};
///
/// let issuer = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?)).issuer();
/// let now = Timestamp::from_unix_seconds(1_700_000_000);
/// let tomorrow = TestAssurance::for_subject("alice").with(Method::Totp, now + Duration::from_secs(86_400));
/// let error = tomorrow.mint(&issuer, now).unwrap_err();
/// assert_eq!(error, TestAssuranceError::Issue(IssueError::ProofInFuture));
/// assert!(error.to_string().starts_with("the test assurance was not minted"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TestAssuranceError {
    /// No method was given ([`TestAssurance::with`]): no step-up, no
    /// token. Send the request without one instead.
    NoMethods,
    /// The issuer refused (a proof after the clock's time, a clock before
    /// September 2020, an issuer without keys).
    Issue(IssueError),
}

impl fmt::Display for TestAssuranceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestAssuranceError::NoMethods => {
                f.write_str("a test assurance needs at least one method (`with`)")
            }
            TestAssuranceError::Issue(e) => write!(f, "the test assurance was not minted: {e}"),
        }
    }
}

impl std::error::Error for TestAssuranceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TestAssuranceError::NoMethods => None,
            TestAssuranceError::Issue(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepup_core::{ChallengeReason, Clock, Decision, Key, KeyId, KeyRing, Policy, TokenConfig};

    const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

    fn config() -> TokenConfig {
        TokenConfig::new(KeyRing::new(
            Key::from_bytes(KeyId::new(1), &[7u8; 32]).unwrap(),
        ))
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_token_is_what_the_step_ups_would_have_left() -> Result<(), TestAssuranceError> {
        let config = config();
        let issuer = config.issuer();
        let user = Subject::new("alice").with_session("s-1").with_epoch(4);
        let minted = TestAssurance::new(user.clone())
            .with(Method::Totp, ago(secs(60)))
            .with(Method::Password, ago(secs(900)))
            .mint(&issuer, NOW)?;
        // The engine's sequence: password at -900 s, then TOTP at -60 s.
        let first = issuer
            .issue(
                &user,
                Proof::new(Method::Password, NOW - secs(900)),
                None,
                NOW - secs(900),
            )
            .map_err(TestAssuranceError::Issue)?;
        let second = issuer
            .issue(
                &user,
                Proof::new(Method::Totp, NOW - secs(60)),
                Some(first.value()),
                NOW - secs(60),
            )
            .map_err(TestAssuranceError::Issue)?;
        assert_eq!(minted.value(), second.value());
        Ok(())
    }

    #[test]
    fn ages_binding_and_epoch_are_honoured() -> Result<(), Box<dyn std::error::Error>> {
        let config = config();
        let gate = config.gate();
        let policy: Policy = "level 2 within 5m".parse()?;
        let alice = TestAssurance::for_subject("alice").session("s-1").epoch(1);
        let fresh = alice
            .clone()
            .with(Method::Totp, ago(secs(60)))
            .mint(&config.issuer(), NOW)?;
        let stale = alice
            .clone()
            .with(Method::Totp, ago(secs(600)))
            .mint(&config.issuer(), NOW)?;
        let decide = |subject: &Subject, token: &IssuedToken| match gate.check(
            subject,
            Some(token.value()),
            &policy,
            NOW,
        ) {
            Decision::Allow(_) => None,
            Decision::Challenge(c) => Some(c.reason()),
        };
        assert_eq!(decide(alice.subject(), &fresh), None);
        assert_eq!(
            decide(alice.subject(), &stale),
            Some(ChallengeReason::Stale)
        );
        let other_session = Subject::new("alice").with_session("s-2").with_epoch(1);
        let other_user = Subject::new("bob").with_session("s-1").with_epoch(1);
        let next_epoch = Subject::new("alice").with_session("s-1").with_epoch(2);
        assert!(decide(&other_session, &fresh).is_some());
        assert!(decide(&other_user, &fresh).is_some());
        assert_eq!(decide(&next_epoch, &fresh), Some(ChallengeReason::Revoked));
        Ok(())
    }

    #[test]
    fn mistakes_are_errors() {
        let issuer = config().issuer();
        let nobody = TestAssurance::for_subject("alice");
        assert_eq!(
            nobody.mint(&issuer, NOW).err(),
            Some(TestAssuranceError::NoMethods)
        );
        let future = nobody.clone().with(Method::Totp, NOW + secs(1));
        assert_eq!(
            future.mint(&issuer, NOW).err(),
            Some(TestAssuranceError::Issue(IssueError::ProofInFuture))
        );
        let too_early = nobody.with(Method::Totp, Timestamp::from_unix_seconds(1_000));
        assert_eq!(
            too_early.mint(&issuer, NOW).err(),
            Some(TestAssuranceError::Issue(IssueError::ClockOutOfRange))
        );
    }

    #[test]
    fn the_token_follows_the_settings_clock_and_cookie() -> Result<(), TestAssuranceError> {
        let config = config();
        let clock = TestClock::new(NOW);
        let settings = Settings::new(config.gate(), "https://bank.example")
            .with_clock(clock.clone())
            .with_cookie(crate::CookieSettings::insecure_local_development());
        clock.advance(secs(100));
        let token = TestAssurance::for_subject("alice")
            .with(Method::Totp, ago(secs(10)))
            .token(&config.issuer(), &settings)?;
        assert_eq!(token.cookie_name(), "stepup");
        assert_eq!(
            token.assurance().proven_at(Method::Totp),
            Some(clock.now() - secs(10))
        );
        Ok(())
    }
}
