//! [`Settings`]: what the challenge routes and every guard of one
//! application share.

use std::fmt;
use std::sync::Arc;

use stepup_core::{Assurance, Clock, Gate, Policy, ReturnTo};

use crate::bound::Grants;
use crate::context::ContextSettings;
use crate::cookie::CookieSettings;
use crate::funnel::Funnel;
use crate::guard::Guard;
use crate::resume::Resume;
use crate::risk::{Risk, RiskFacts, RiskPolicies};
use crate::target::{ChallengeTarget, Reason, Reasons};

/// What the challenge routes and the guards of one application share: the
/// gate, the clock, the cookie, where the routes are mounted, the accepted
/// origin and the registered reasons. Cheap to clone (the reasons are
/// shared between clones).
///
/// ```
/// use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, ReturnTo};
/// use stepup_http::Settings;
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let settings = Settings::new(Gate::new(&ring), "https://bank.example/")
///     .mounted_at("/verify", ReturnTo::root());
/// assert_eq!(settings.origin(), "https://bank.example");
/// assert_eq!(settings.page().as_str(), "/verify");
/// let why = settings.register_policy(&Policy::level(2).with_reason("Moving money"));
/// assert!(why.starts_with('r') && why.len() == 25);
/// assert_eq!(settings.reason(&why).map(|r| r.0), Some("Moving money".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Settings {
    gate: Gate,
    cookie: CookieSettings,
    origin: String,
    reasons: Reasons,
    target: ChallengeTarget,
    resume: Option<Arc<dyn Resume>>,
    grants: Option<Arc<dyn Grants>>,
    funnel: Option<Arc<dyn Funnel>>,
    context: Option<ContextSettings>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("cookie", &self.cookie)
            .field("page", self.target.page())
            .field("fallback", self.target.fallback())
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Verifying with `gate` and accepting POSTs from `origin` (the
    /// application's own, `https://bank.example`; a trailing `/` is
    /// dropped). Mounted at `/step-up`, falling back to `/`, with the
    /// default cookie and the system clock.
    pub fn new(gate: Gate, origin: &str) -> Settings {
        let reasons = Reasons::default();
        let origin = origin.trim_end_matches('/');
        let target = ChallengeTarget::default()
            .with_reasons(reasons.clone(), gate.levels().clone())
            .with_origin(origin);
        Settings {
            gate,
            cookie: CookieSettings::default(),
            origin: origin.trim_end_matches('/').to_owned(),
            reasons,
            target,
            resume: None,
            grants: None,
            funnel: None,
            context: Some(ContextSettings::default()),
        }
    }

    /// Keeps interrupted forms in `resume` (the engine's store) so they
    /// are resumed after the step-up; every guard made from these settings
    /// afterwards does. Without it, a form that needs a step-up is not
    /// kept: the page asks to submit it again.
    #[must_use]
    pub fn with_resume(mut self, resume: Arc<dyn Resume>) -> Settings {
        self.resume = Some(resume);
        self
    }

    /// Where interrupted forms are kept, if anywhere.
    pub fn resume(&self) -> Option<&Arc<dyn Resume>> {
        self.resume.as_ref()
    }

    /// Keeps bound actions' ceremonies and grants in `grants` (the
    /// engine); every guard made from these settings afterwards uses it.
    /// Without it, a bound route's `bound` term can never be met.
    #[must_use]
    pub fn with_grants(mut self, grants: Arc<dyn Grants>) -> Settings {
        self.grants = Some(grants);
        self
    }

    /// Where bound actions' grants are kept, if anywhere.
    pub fn grants(&self) -> Option<&Arc<dyn Grants>> {
        self.grants.as_ref()
    }

    /// Tells `funnel` (the engine) of every refusal for want of a step-up,
    /// the first step of the funnel; every guard made from these settings
    /// afterwards does.
    #[must_use]
    pub fn with_funnel(mut self, funnel: Arc<dyn Funnel>) -> Settings {
        self.funnel = Some(funnel);
        self
    }

    /// Who hears of refusals, if anyone.
    pub fn funnel(&self) -> Option<&Arc<dyn Funnel>> {
        self.funnel.as_ref()
    }

    /// How the client context of a request is taken (default:
    /// [`ContextSettings::default`], an IPv4 /24 or IPv6 /48 and the
    /// browser family): the challenge routes mint every token in it, and
    /// guards check it for policies with a `same_context` term.
    #[must_use]
    pub fn with_client_context(mut self, context: ContextSettings) -> Settings {
        self.context = Some(context);
        self
    }

    /// Tokens without a client context: `same_context` terms are never
    /// met (and proofs carry over whatever the network).
    #[must_use]
    pub fn without_client_context(mut self) -> Settings {
        self.context = None;
        self
    }

    /// How the client context is taken, if at all.
    pub fn client_context(&self) -> Option<&ContextSettings> {
        self.context.as_ref()
    }

    /// The clock (tests use a `TestClock`; give the engine the same one).
    #[must_use]
    pub fn with_clock(self, clock: impl Clock) -> Settings {
        self.with_shared_clock(Arc::new(clock))
    }

    /// The clock, shared.
    #[must_use]
    pub fn with_shared_clock(mut self, clock: Arc<dyn Clock>) -> Settings {
        self.target = self.target.with_clock(clock);
        self
    }

    /// How the cookie is written.
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieSettings) -> Settings {
        self.cookie = cookie;
        self
    }

    /// Where the routes are mounted and where to return when a return path
    /// is refused. A path that is not local, carries a query, or is the
    /// site's root (the routes would answer every unmatched path) keeps the
    /// default.
    #[must_use]
    pub fn mounted_at(mut self, path: &str, fallback: ReturnTo) -> Settings {
        if let Ok(page) = ReturnTo::parse(path)
            && !page.as_str().contains(['?', '#'])
            && page.as_str() != "/"
        {
            self.target = self.target.with_page(path).with_fallback(fallback);
        }
        self
    }

    /// The identifier under which the page finds `reason`, adding it if
    /// new.
    pub fn register_reason(&self, reason: &str) -> String {
        self.reasons.register(reason, Vec::new())
    }

    /// The identifier under which the page finds `policy`'s reason (or a
    /// generic sentence) and the methods that can satisfy it, which are the
    /// only ones the page then offers. The same policy gets the same
    /// identifier on every instance.
    pub fn register_policy(&self, policy: &Policy) -> String {
        self.reasons.register_policy(policy, self.gate.levels())
    }

    /// The reason registered under `id`.
    pub fn reason(&self, id: &str) -> Option<Reason> {
        self.reasons.get(id)
    }

    /// A guard of `policy` with these settings (its reason registered, so
    /// the page can show it).
    pub fn guard<R: ?Sized>(&self, policy: Policy) -> Guard<R> {
        self.register_policy(&policy);
        Guard::new(self.gate.clone(), policy).with_settings(self)
    }

    /// A guard choosing its policy per request (each challenged policy is
    /// registered when it is first challenged).
    pub fn guard_per_request<R: ?Sized, F>(&self, choose: F) -> Guard<R>
    where
        F: Fn(&R, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
    {
        Guard::per_request(self.gate.clone(), choose).with_settings(self)
    }

    /// A guard asking the application's `assess` hook how risky each
    /// request is, then requiring that risk's policy from `policies`
    /// (every one registered now, so the page offers the right methods).
    pub fn guard_by_risk<R: ?Sized, F>(&self, assess: F, policies: RiskPolicies) -> Guard<R>
    where
        F: Fn(&R, &RiskFacts<'_>) -> Risk + Send + Sync + 'static,
    {
        for policy in policies.all() {
            self.register_policy(policy);
        }
        Guard::by_risk(self.gate.clone(), assess, policies).with_settings(self)
    }

    /// The gate.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.target.clock()
    }

    /// The cookie settings.
    pub fn cookie(&self) -> &CookieSettings {
        &self.cookie
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        self.cookie.name()
    }

    /// Where the routes (and so the challenge page) are mounted.
    pub fn page(&self) -> &ReturnTo {
        self.target.page()
    }

    /// Where to return when a return path is refused.
    pub fn fallback(&self) -> &ReturnTo {
        self.target.fallback()
    }

    /// The accepted origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where challenges send browsers, with the reasons registered.
    pub fn target(&self) -> &ChallengeTarget {
        &self.target
    }

    /// The validated return path from a request parameter, or the fallback.
    pub fn return_path(&self, input: Option<&str>) -> ReturnTo {
        input.map_or_else(
            || self.target.fallback().clone(),
            |p| self.target.return_to(p),
        )
    }
}
