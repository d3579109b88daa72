//! [`Guard`]: the one decide-and-answer sequence every adapter runs — find
//! the token, refuse an ambiguous one, decide, log, answer.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use stepup_core::{
    Assurance, Challenge, ChallengeReason, Clock, Decision, Facts, Gate, Policy, ReturnTo, Subject,
};

use crate::action::{ActionInput, ActionSpec, BoundAction};
use crate::bound::{Grants, Opening, Taken};
use crate::context::ContextSettings;
use crate::cookie::{DEFAULT_COOKIE_NAME, NoSubject};
use crate::funnel::{Challenged, Funnel, Via};
use crate::read::{CookieName, Found, Header, RequestHead, find_token, is_navigation_of};
use crate::reply::Reply;
use crate::resume::{Interrupting, Interruption, Pickup, Resume, SummaryFn};
use crate::risk::{Risk, RiskFacts, RiskPolicies};
use crate::settings::Settings;
use crate::target::{ChallengeTarget, Hold};
use crate::url::login_location;

type PolicyFn<R> = dyn Fn(&R, Option<&Assurance>) -> Arc<Policy> + Send + Sync;

/// The application's risk hook.
type RiskFn<R> = dyn Fn(&R, &RiskFacts<'_>) -> Risk + Send + Sync;

/// Where the client's address comes from (the adapter's `ClientAddress`).
type AddressFn<R> = dyn Fn(&R) -> Option<IpAddr> + Send + Sync;

/// The matched route's template (`/accounts/{id}`), for funnel events.
type RouteFn<R> = dyn Fn(&R) -> Option<String> + Send + Sync;

/// A bound route's policy for one action (`None`: the route's own).
type ActionPolicyFn = dyn Fn(&BoundAction) -> Option<Arc<Policy>> + Send + Sync;

enum PolicySource<R: ?Sized> {
    Fixed(Policy),
    PerRequest(Arc<PolicyFn<R>>),
    ByRisk(Arc<RiskFn<R>>, RiskPolicies),
}

impl<R: ?Sized> Clone for PolicySource<R> {
    fn clone(&self) -> Self {
        match self {
            PolicySource::Fixed(p) => PolicySource::Fixed(p.clone()),
            PolicySource::PerRequest(f) => PolicySource::PerRequest(f.clone()),
            PolicySource::ByRisk(f, p) => PolicySource::ByRisk(f.clone(), p.clone()),
        }
    }
}

struct Inner<R: ?Sized> {
    gate: Gate,
    policy: PolicySource<R>,
    cookie: CookieName,
    token_header: bool,
    target: Arc<ChallengeTarget>,
    no_subject: NoSubject,
    name: Option<String>,
    resume: Option<Arc<dyn Resume>>,
    summary: Option<Arc<SummaryFn>>,
    binding: Option<Arc<ActionSpec>>,
    action_policy: Option<Arc<ActionPolicyFn>>,
    grants: Option<Arc<dyn Grants>>,
    funnel: Option<Arc<dyn Funnel>>,
    context: Option<ContextSettings>,
    address: Option<Arc<AddressFn<R>>>,
    route: Option<Arc<RouteFn<R>>>,
}

impl<R: ?Sized> Clone for Inner<R> {
    fn clone(&self) -> Self {
        Inner {
            gate: self.gate.clone(),
            policy: self.policy.clone(),
            cookie: self.cookie.clone(),
            token_header: self.token_header,
            target: self.target.clone(),
            no_subject: self.no_subject.clone(),
            name: self.name.clone(),
            resume: self.resume.clone(),
            summary: self.summary.clone(),
            binding: self.binding.clone(),
            action_policy: self.action_policy.clone(),
            grants: self.grants.clone(),
            funnel: self.funnel.clone(),
            context: self.context,
            address: self.address.clone(),
            route: self.route.clone(),
        }
    }
}

/// What the guard says of a request.
#[derive(Debug)]
// The assurance is returned by value: boxing it would allocate on the allow
// path, which must not allocate.
#[allow(clippy::large_enum_variant)]
pub enum Verdict {
    /// The policy is met: run the handler with this assurance.
    Allow(Assurance),
    /// Answer with this instead (a challenge, or "log in first").
    Deny(Reply),
    /// A browser submitted a form (a navigation that is not a `GET`) that
    /// needs a step-up first: keep it and send the browser to the
    /// challenge page ([`Interruption::answer`], after reading the body if
    /// [`Interruption::body_limit`] asks), or just send it there
    /// ([`Interruption::into_reply`]).
    Interrupt(Interruption),
}

/// Requires a step-up before a route runs: the whole sequence every adapter
/// (the tower layer, the actix-web middleware, both extractors) calls, so
/// they decide and answer byte for byte alike.
///
/// For each request: no logged-in subject → the [`NoSubject`] answer;
/// otherwise the assurance token is taken from the cookie (two cookies of
/// that name, or a cookie and the opt-in header, are refused — never
/// guessed between) and checked against the policy (fixed, or chosen per
/// request from the request `R` and the current assurance). Allowed: the
/// [`Assurance`]. Challenged: `303` to the challenge page for a browser
/// navigation, else `401` with the RFC 9470 `WWW-Authenticate` header and an
/// RFC 9457 body. One `tracing` event (target `stepup`) per decision:
/// outcome, reason, policy — never a token or cookie value. The allow path
/// allocates nothing.
///
/// ```
/// use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
/// use stepup_http::{Guard, Header, RequestHead, Verdict};
///
/// struct Get<'a>(&'a str);
/// impl RequestHead for Get<'_> {
///     fn method(&self) -> &str { "GET" }
///     fn path_and_query(&self) -> &str { self.0 }
///     fn values(&self, _: Header) -> impl Iterator<Item = &[u8]> { std::iter::empty() }
/// }
///
/// let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let guard: Guard<()> = Guard::new(tokens.gate(), Policy::level(2));
/// match guard.check(&(), &Get("/keys"), Some(Subject::new("u1"))) {
///     Verdict::Deny(reply) => assert_eq!(reply.status(), 401),
///     Verdict::Allow(_) | Verdict::Interrupt(_) => unreachable!("no token yet; not a form"),
/// }
/// match guard.check(&(), &Get("/keys"), None) {
///     Verdict::Deny(reply) => assert_eq!(reply.body(), stepup_http::LOGIN_REQUIRED_BODY),
///     Verdict::Allow(_) | Verdict::Interrupt(_) => unreachable!("nobody logged in"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Guard<R: ?Sized> {
    inner: Arc<Inner<R>>,
}

impl<R: ?Sized> Clone for Guard<R> {
    fn clone(&self) -> Self {
        Guard {
            inner: self.inner.clone(),
        }
    }
}

impl<R: ?Sized> fmt::Debug for Guard<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &PolicyName(&self.inner).to_string())
            .field("cookie", &self.inner.cookie.as_str())
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

impl<R: ?Sized> Guard<R> {
    /// Requires `policy`, checked by `gate`.
    pub fn new(gate: Gate, policy: Policy) -> Self {
        Self::build(gate, PolicySource::Fixed(policy))
    }

    /// Chooses the policy per request from the request and the current
    /// assurance (if the token verified) — "a `DELETE` needs a passkey".
    /// Return shared policies (`Arc`) built once.
    pub fn per_request<F>(gate: Gate, choose: F) -> Self
    where
        F: Fn(&R, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
    {
        Self::build(gate, PolicySource::PerRequest(Arc::new(choose)))
    }

    /// Asks the application's `assess` hook how risky each request is
    /// (given the current assurance and whether the request comes from
    /// the client context of its token), then requires that risk's policy
    /// from `policies`.
    pub fn by_risk<F>(gate: Gate, assess: F, policies: RiskPolicies) -> Self
    where
        F: Fn(&R, &RiskFacts<'_>) -> Risk + Send + Sync + 'static,
    {
        Self::build(gate, PolicySource::ByRisk(Arc::new(assess), policies))
    }

    /// Where the client's address comes from: the same place the challenge
    /// routes take it from (the adapters set this to their
    /// `ClientAddress`), so a `same_context` term compares like with like.
    #[must_use]
    pub fn client_address<F>(self, address: F) -> Self
    where
        F: Fn(&R) -> Option<IpAddr> + Send + Sync + 'static,
    {
        let address: Arc<AddressFn<R>> = Arc::new(address);
        self.edit(|c| c.address = Some(address))
    }

    /// The template of the route a request matched (`/accounts/{id}`):
    /// funnel events name it instead of the path, which may carry ids or
    /// secrets. The adapters set it (axum's `MatchedPath`, actix-web's
    /// `match_pattern`); without it, or when it says nothing, the path.
    #[must_use]
    pub fn route_template<F>(self, route: F) -> Self
    where
        F: Fn(&R) -> Option<String> + Send + Sync + 'static,
    {
        let route: Arc<RouteFn<R>> = Arc::new(route);
        self.edit(|c| c.route = Some(route))
    }

    /// How the client context is taken (what
    /// [`Settings::with_client_context`](crate::Settings::with_client_context)
    /// does for guards made from the settings); `None`: `same_context`
    /// terms are never met.
    #[must_use]
    pub fn client_context(self, context: Option<ContextSettings>) -> Self {
        self.edit(|c| c.context = context)
    }

    /// Whether `request` comes from the client context `assurance`'s token
    /// was minted in: `None` when the token has no context or the guard
    /// takes none.
    fn context_matches(
        &self,
        request: &R,
        head: &impl RequestHead,
        assurance: &Assurance,
    ) -> Option<bool> {
        let c = &*self.inner;
        let settings = c.context.as_ref()?;
        let address = c.address.as_ref().and_then(|address| address(request));
        // No address (when the network counts): no context, never the same.
        let Some(context) = settings.context(address, head.value(Header::UserAgent)) else {
            return Some(false);
        };
        c.gate.same_context(assurance, context.as_bytes())
    }

    /// The `same_context` fact for `policy`: looked at only when the policy
    /// has the term (no digest otherwise).
    fn same_context_for(
        &self,
        request: &R,
        head: &impl RequestHead,
        assurance: &Assurance,
        policy: &Policy,
    ) -> bool {
        policy.needs_context() && self.context_matches(request, head, assurance) == Some(true)
    }

    /// Whether `assurance` meets `policy` for `request` (`granted`: a grant
    /// for its action was taken).
    fn require(
        &self,
        request: &R,
        head: &impl RequestHead,
        assurance: &Assurance,
        policy: &Policy,
        now: stepup_core::Timestamp,
        granted: bool,
    ) -> Result<(), Challenge> {
        let same = self.same_context_for(request, head, assurance, policy);
        let facts = Facts::default()
            .with_granted(granted)
            .with_same_context(same);
        assurance.require_with(policy, now, facts)
    }

    /// The policy the risk hook picks for `request`.
    fn by_risk_policy(
        &self,
        request: &R,
        head: &impl RequestHead,
        assess: &RiskFn<R>,
        policies: &RiskPolicies,
        assurance: Option<&Assurance>,
    ) -> Arc<Policy> {
        let same = assurance.and_then(|a| self.context_matches(request, head, a));
        let risk = assess(request, &RiskFacts::new(assurance, same));
        tracing::debug!(target: "stepup", risk = risk.as_str(), "the application's risk hook");
        policies.policy(risk).clone()
    }

    fn build(gate: Gate, policy: PolicySource<R>) -> Self {
        Guard {
            inner: Arc::new(Inner {
                gate,
                policy,
                cookie: CookieName::new(DEFAULT_COOKIE_NAME),
                token_header: false,
                target: Arc::new(ChallengeTarget::default()),
                no_subject: NoSubject::default(),
                name: None,
                resume: None,
                summary: None,
                binding: None,
                action_policy: None,
                grants: None,
                funnel: None,
                context: Some(ContextSettings::default()),
                address: None,
                route: None,
            }),
        }
    }

    /// Builders run at start-up, before the guard is shared.
    fn edit(mut self, change: impl FnOnce(&mut Inner<R>)) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => change(inner),
            None => {
                let mut inner = Inner::clone(&self.inner);
                change(&mut inner);
                self.inner = Arc::new(inner);
            }
        }
        self
    }

    fn edit_target(self, change: impl FnOnce(ChallengeTarget) -> ChallengeTarget) -> Self {
        self.edit(|c| c.target = Arc::new(change(ChallengeTarget::clone(&c.target))))
    }

    /// The cookie, clock, challenge page and reasons of `settings`.
    #[must_use]
    pub fn with_settings(self, settings: &Settings) -> Self {
        let target = settings.target().clone();
        let cookie = CookieName::new(settings.cookie_name());
        let resume = settings.resume().cloned();
        let grants = settings.grants().cloned();
        let funnel = settings.funnel().cloned();
        let context = settings.client_context().copied();
        self.edit(|c| {
            c.funnel = funnel;
            c.context = context;
            c.cookie = cookie;
            c.target = Arc::new(target);
            c.resume = resume;
            c.grants = grants;
        })
    }

    /// Another cookie name (for example without the `__Host-` prefix during
    /// local development over plain HTTP).
    #[must_use]
    pub fn cookie_name(self, name: &str) -> Self {
        let cookie = CookieName::new(name);
        self.edit(|c| c.cookie = cookie)
    }

    /// Also accepts the token in the `Stepup-Assurance` request header, for
    /// API clients that keep no cookies. A request carrying both the cookie
    /// and the header is refused. Browsers cannot set this header
    /// cross-site without a CORS preflight.
    #[must_use]
    pub fn accept_token_header(self) -> Self {
        self.edit(|c| c.token_header = true)
    }

    /// Where the challenge page is mounted (default `/step-up`): a local
    /// path without a query; anything else keeps the current one.
    #[must_use]
    pub fn challenge_page(self, path: &str) -> Self {
        self.edit_target(|t| t.with_page(path))
    }

    /// Where to return after a step-up when the original path is refused
    /// (default `/`).
    #[must_use]
    pub fn fallback_return(self, fallback: ReturnTo) -> Self {
        self.edit_target(|t| t.with_fallback(fallback))
    }

    /// What to answer when no user is logged in.
    #[must_use]
    pub fn on_no_subject(self, answer: NoSubject) -> Self {
        self.edit(|c| c.no_subject = answer)
    }

    /// The clock (default: the system clock; tests use a `TestClock`).
    #[must_use]
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.edit_target(|t| t.with_clock(clock))
    }

    /// An identifier (1–32 of `[A-Za-z0-9_-]`) added to the challenge page
    /// URL as `why=…`, so the page can show this route's reason from
    /// configuration. Other values are ignored. (Guards made by
    /// [`Settings`] send each policy's registered identifier instead.)
    #[must_use]
    pub fn page_note(self, note: &str) -> Self {
        self.edit_target(|t| t.with_note(note))
    }

    /// A name for this route's policy in log events (default: the policy
    /// expression).
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|c| c.name = Some(name))
    }

    /// What this route's interrupted forms will do, from their fields
    /// ("Send 25 to bob"), for the challenge page and the confirmation
    /// button; `None` (or no summary) says "Continue: POST /transfer".
    /// The text is escaped where it is shown.
    ///
    /// ```
    /// use stepup_core::{Key, KeyId, KeyRing, Policy, TokenConfig};
    /// use stepup_http::Guard;
    ///
    /// let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let guard: Guard<()> = Guard::new(tokens.gate(), Policy::level(2)).summary(|form| {
    ///     Some(format!("Send {} to {}", form.get("amount")?, form.get("to")?))
    /// });
    /// # let _ = guard;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn summary<F>(self, summary: F) -> Self
    where
        F: Fn(&crate::FormFields) -> Option<String> + Send + Sync + 'static,
    {
        let summary: Arc<SummaryFn> = Arc::new(summary);
        self.edit(|c| c.summary = Some(summary))
    }

    /// Never keeps this route's forms (a form with a password or a
    /// one-time token in it, say): a browser's form that needs a step-up
    /// gets the challenge page asking to submit it again.
    #[must_use]
    pub fn without_kept_forms(self) -> Self {
        self.edit(|c| c.resume = None)
    }

    /// Keeps interrupted forms in `resume` (as
    /// [`Settings::with_resume`](crate::Settings::with_resume) does for
    /// every guard it makes).
    #[must_use]
    pub fn with_resume(self, resume: Arc<dyn Resume>) -> Self {
        self.edit(|c| c.resume = Some(resume))
    }

    /// Binds this route to the request's exact action, declared by
    /// `spec`: the adapter reads the body once (up to the spec's limit),
    /// the fields are extracted and normalised (a missing, duplicated or
    /// malformed field is a `400`), and the handler gets the
    /// [`BoundAction`] — the values to use, never parsing the body again.
    /// A policy with a `bound` term (`level 2 and bound`, or one
    /// [`bound_policy`](Guard::bound_policy) picks) then needs a
    /// single-use grant for exactly this action, made by a step-up for it.
    #[must_use]
    pub fn bind(self, spec: ActionSpec) -> Self {
        let spec = Arc::new(spec);
        self.edit(|c| c.binding = Some(spec))
    }

    /// The policy for one bound action, when it is not the route's own:
    /// "transfers over 10,000 need a bound confirmation". Return the
    /// whole policy (`None`: the route's).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use stepup_core::{Key, KeyId, KeyRing, Policy, TokenConfig};
    /// use stepup_http::{ActionSpec, Guard, Normalise};
    ///
    /// let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let big = Arc::new(Policy::level(2).and(Policy::bound()));
    /// let spec = ActionSpec::builder("payment")
    ///     .field("amount", Normalise::Amount { scale: 2 })
    ///     .field("to", Normalise::Trimmed)
    ///     .summary("Send {amount} to {to}")
    ///     .build()?;
    /// let guard: Guard<()> = Guard::new(tokens.gate(), Policy::level(2))
    ///     .bind(spec)
    ///     .bound_policy(move |action| {
    ///         // Fail closed: an amount that does not read as small is big.
    ///         let cents = action.get("amount").and_then(|a| a.replace('.', "").parse::<u128>().ok());
    ///         match cents {
    ///             Some(cents) if cents <= 1_000_000 => None,
    ///             _ => Some(big.clone()),
    ///         }
    ///     });
    /// assert!(guard.binding().is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn bound_policy<F>(self, choose: F) -> Self
    where
        F: Fn(&BoundAction) -> Option<Arc<Policy>> + Send + Sync + 'static,
    {
        let choose: Arc<ActionPolicyFn> = Arc::new(choose);
        self.edit(|c| c.action_policy = Some(choose))
    }

    /// Keeps bound actions' ceremonies and grants in `grants` (as
    /// [`Settings::with_grants`](crate::Settings::with_grants) does for
    /// every guard it makes).
    #[must_use]
    pub fn with_grants(self, grants: Arc<dyn Grants>) -> Self {
        self.edit(|c| c.grants = Some(grants))
    }

    /// The action this route is bound to, if it is: the adapter then reads
    /// the body (at most [`ActionSpec::body_limit`] bytes; more is `413`),
    /// calls [`read_action`](Guard::read_action) and
    /// [`check_action`](Guard::check_action) instead of
    /// [`check`](Guard::check).
    pub fn binding(&self) -> Option<&ActionSpec> {
        self.inner.binding.as_deref()
    }

    /// The action of the request whose head is `head` and whose body is
    /// `body`, parsed once; or the answer (`400` naming the field, `415`):
    /// a page for a browser, an RFC 9457 body otherwise.
    pub fn read_action(&self, head: &impl RequestHead, body: &[u8]) -> Result<BoundAction, Reply> {
        let Some(spec) = self.binding() else {
            return Err(Reply::new(500, None, "").no_store());
        };
        let (path, query) = match head.path_and_query().split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (head.path_and_query(), None),
        };
        let input = ActionInput {
            method: head.method(),
            path,
            query,
            content_type: head.value(Header::ContentType),
            body,
        };
        spec.extract(&input)
            .map_err(|refusal| self.refuse(head, &refusal))
    }

    /// The answer when a bound route's body is longer than
    /// [`ActionSpec::body_limit`] (or unreadable): `413`, a page for a
    /// browser, an RFC 9457 body otherwise.
    pub fn body_too_large(&self, head: &impl RequestHead) -> Reply {
        let limit = self.binding().map_or(0, ActionSpec::body_limit);
        self.refuse(head, &crate::ActionRefusal::too_large(limit))
    }

    /// A bound request whose action cannot be read: a page for a browser,
    /// an RFC 9457 body otherwise.
    #[cold]
    fn refuse(&self, head: &impl RequestHead, refusal: &crate::ActionRefusal) -> Reply {
        tracing::info!(target: "stepup", outcome = "action_refused", status = refusal.status(), field = refusal.field().unwrap_or(""), "a bound request's action could not be read");
        if is_navigation_of(head) {
            crate::bound::refusal_page(refusal, &self.inner.target.return_for(head))
        } else {
            refusal.reply()
        }
    }

    /// [`check`](Guard::check) for a bound route, whose request's action
    /// is `action`: the policy is the route's (or the one
    /// [`bound_policy`](Guard::bound_policy) picks for the action). When
    /// everything but the `bound` term holds, the grant for this exact
    /// action in this session is taken (one request ever gets it); when
    /// the policy is not met, a confirmation ceremony for the action is
    /// opened and the challenge names it (the challenge page confirms
    /// "Send 12,000.00 to bob"; an API's `401` carries the RFC 9396
    /// `authorization_details`, the `action_digest` and the ceremony id
    /// as `confirmation`).
    pub async fn check_action(
        &self,
        request: &R,
        head: &impl RequestHead,
        subject: Option<Subject>,
        action: &BoundAction,
    ) -> Verdict {
        let c = &*self.inner;
        let Some(subject) = subject else {
            tracing::info!(target: "stepup", outcome = "no_subject", policy = %PolicyName(c), "no logged-in user");
            return Verdict::Deny(self.no_subject(head));
        };
        let found = find_token(head, &c.cookie, c.token_header);
        let now = c.target.now();
        let verified = verify(&c.gate, subject.clone(), found, now);
        let policy = match c.action_policy.as_ref().and_then(|choose| choose(action)) {
            Some(policy) => policy,
            None => match &c.policy {
                PolicySource::Fixed(policy) => Arc::new(policy.clone()),
                PolicySource::PerRequest(choose) => choose(request, verified.as_ref().ok()),
                PolicySource::ByRisk(assess, policies) => {
                    self.by_risk_policy(request, head, &**assess, policies, verified.as_ref().ok())
                }
            },
        };
        // A bound policy needs the grant store; another one never asks it.
        if policy.is_bound() && c.grants.is_none() {
            return Verdict::Deny(no_grants());
        }
        let challenge = match verified {
            Ok(assurance) => match self.require(request, head, &assurance, &policy, now, false) {
                Ok(()) => return self.allow(assurance),
                // Everything holds but the grant: use it, if there is one.
                Err(challenge) if challenge.reason() == ChallengeReason::Unconfirmed => {
                    // (Only a bound policy says so: its store is there.)
                    let Some(grants) = &c.grants else {
                        return Verdict::Deny(no_grants());
                    };
                    let presented = head
                        .value(Header::Grant)
                        .and_then(|v| std::str::from_utf8(v).ok())
                        .map(str::trim);
                    match grants.take(&subject, action, presented).await {
                        Taken::Granted(proofs) => {
                            let same = self.same_context_for(request, head, &assurance, &policy);
                            match granted(&assurance, &proofs, &policy, now, &c.gate, same) {
                                Ok(()) => return self.allow(assurance),
                                Err(challenge) => challenge,
                            }
                        }
                        Taken::Missing => challenge,
                        Taken::Unavailable => return Verdict::Deny(unavailable()),
                    }
                }
                Err(challenge) => challenge,
            },
            Err(reason) => c.gate.challenge(reason, &policy),
        };
        // A ceremony for a bound policy only — and none for a request from
        // another site (a link or a form elsewhere, an attacker's page
        // filling the session's quota): the challenge alone; once back from
        // the page, the request comes from here and opens its ceremony.
        let (true, Some(grants), false) = (
            policy.is_bound(),
            &c.grants,
            from_elsewhere(head, c.target.origin()),
        ) else {
            return self.deny_action(
                request, head, found, &challenge, &policy, &subject, action, None,
            );
        };
        match grants.open(&subject, action, &policy).await {
            Opening::Opened(id) => self.deny_action(
                request,
                head,
                found,
                &challenge,
                &policy,
                &subject,
                action,
                Some(id),
            ),
            Opening::TooMany => Verdict::Deny(
                Reply::new(429, None, "")
                    .no_store()
                    .with_header("retry-after", "60"),
            ),
            Opening::Unavailable => Verdict::Deny(unavailable()),
        }
    }

    /// [`deny`](Self::deny) for a bound route's `action`, naming the
    /// ceremony `id` when one was opened.
    #[allow(clippy::too_many_arguments)]
    fn deny_action(
        &self,
        request: &R,
        head: &impl RequestHead,
        found: Found<'_>,
        challenge: &Challenge,
        policy: &Policy,
        subject: &Subject,
        action: &BoundAction,
        id: Option<String>,
    ) -> Verdict {
        let sender = sender(head, subject);
        self.deny(
            head,
            found,
            challenge,
            policy,
            sender,
            Some((subject, request)),
            Some((action, id)),
        )
    }

    /// For a form POST that may be coming back from the confirmation
    /// page: what to read and check once the request is allowed. `None`
    /// (nothing to do) for every other request, without allocating.
    #[inline]
    pub fn pickup(&self, head: &impl RequestHead, subject: Option<&Subject>) -> Option<Pickup> {
        match head.method() {
            "GET" | "HEAD" => None,
            _ => Pickup::new(
                self.inner.resume.as_ref(),
                self.inner.target.origin(),
                head,
                subject,
            ),
        }
    }

    /// The gate.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// Where challenges send browsers.
    pub fn target(&self) -> &Arc<ChallengeTarget> {
        &self.inner.target
    }

    /// The cookie it reads the token from.
    pub fn cookie(&self) -> &CookieName {
        &self.inner.cookie
    }

    /// The fixed policy, if it is not chosen per request.
    pub fn policy(&self) -> Option<&Policy> {
        match &self.inner.policy {
            PolicySource::Fixed(p) => Some(p),
            PolicySource::PerRequest(_) | PolicySource::ByRisk(..) => None,
        }
    }

    /// Decides `request` (whose head is `head`) for `subject`, the user the
    /// application's login found.
    #[inline]
    pub fn check(&self, request: &R, head: &impl RequestHead, subject: Option<Subject>) -> Verdict {
        let c = &*self.inner;
        let Some(subject) = subject else {
            tracing::info!(target: "stepup", outcome = "no_subject", policy = %PolicyName(c), "no logged-in user");
            return Verdict::Deny(self.no_subject(head));
        };
        // A form may have to be kept for later: who sent it.
        let sender = sender(head, &subject);
        // Who is refused, for the funnel (only when one listens).
        let watched = c.funnel.as_ref().map(|_| subject.clone());
        let watched = watched.as_ref().map(|s| (s, request));
        let found = find_token(head, &c.cookie, c.token_header);
        let now = c.target.now();
        match &c.policy {
            PolicySource::Fixed(policy) if policy.needs_context() => {
                match verify(&c.gate, subject, found, now) {
                    Ok(assurance) => {
                        match self.require(request, head, &assurance, policy, now, false) {
                            Ok(()) => self.allow(assurance),
                            Err(challenge) => {
                                self.deny(head, found, &challenge, policy, sender, watched, None)
                            }
                        }
                    }
                    Err(reason) => {
                        let challenge = c.gate.challenge(reason, policy);
                        self.deny(head, found, &challenge, policy, sender, watched, None)
                    }
                }
            }
            PolicySource::Fixed(policy) => {
                let decision = match found {
                    // Cookie tossing or mixed sources: a challenge, never a guess.
                    Found::Ambiguous => {
                        Decision::Challenge(c.gate.challenge(ChallengeReason::Invalid, policy))
                    }
                    Found::One(token) => c.gate.check(subject, Some(token), policy, now),
                    Found::None => c.gate.check(subject, None, policy, now),
                };
                match decision {
                    Decision::Allow(assurance) => self.allow(assurance),
                    Decision::Challenge(challenge) => {
                        self.deny(head, found, &challenge, policy, sender, watched, None)
                    }
                }
            }
            PolicySource::PerRequest(choose) => match verify(&c.gate, subject, found, now) {
                Ok(assurance) => {
                    let policy = choose(request, Some(&assurance));
                    match self.require(request, head, &assurance, &policy, now, false) {
                        Ok(()) => self.allow(assurance),
                        Err(challenge) => {
                            self.deny(head, found, &challenge, &policy, sender, watched, None)
                        }
                    }
                }
                Err(reason) => {
                    let policy = choose(request, None);
                    let challenge = c.gate.challenge(reason, &policy);
                    self.deny(head, found, &challenge, &policy, sender, watched, None)
                }
            },
            PolicySource::ByRisk(assess, policies) => match verify(&c.gate, subject, found, now) {
                Ok(assurance) => {
                    let policy =
                        self.by_risk_policy(request, head, &**assess, policies, Some(&assurance));
                    match self.require(request, head, &assurance, &policy, now, false) {
                        Ok(()) => self.allow(assurance),
                        Err(challenge) => {
                            self.deny(head, found, &challenge, &policy, sender, watched, None)
                        }
                    }
                }
                Err(reason) => {
                    let policy = self.by_risk_policy(request, head, &**assess, policies, None);
                    let challenge = c.gate.challenge(reason, &policy);
                    self.deny(head, found, &challenge, &policy, sender, watched, None)
                }
            },
        }
    }

    #[inline]
    fn allow(&self, assurance: Assurance) -> Verdict {
        tracing::debug!(target: "stepup", outcome = "allow", policy = %PolicyName(&self.inner), level = assurance.level());
        Verdict::Allow(assurance)
    }

    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn deny(
        &self,
        head: &impl RequestHead,
        found: Found<'_>,
        challenge: &Challenge,
        policy: &Policy,
        sender: Option<Subject>,
        watched: Option<(&Subject, &R)>,
        bound: Option<(&BoundAction, Option<String>)>,
    ) -> Verdict {
        let reason = if found == Found::Ambiguous {
            "ambiguous_token"
        } else {
            challenge.reason().code()
        };
        tracing::info!(target: "stepup", outcome = "challenge", reason, policy = %PolicyName(&self.inner));
        let c = &*self.inner;
        let target = &c.target;
        let navigation = is_navigation_of(head);
        if let (Some(funnel), Some((subject, request))) = (&c.funnel, watched) {
            let route = c.route.as_ref().and_then(|route| route(request));
            tell_funnel(
                &**funnel, c, head, route, subject, policy, reason, navigation,
            );
        }
        if let (true, Some(subject)) = (navigation, sender) {
            return Verdict::Interrupt(Interruption::new(
                head,
                Interrupting {
                    resume: c.resume.clone(),
                    summary: c.summary.clone(),
                    target: target.clone(),
                    subject,
                    reason: challenge.reason().code(),
                    note: target.note_for(Some(policy)),
                    // A bound route's kept form says what its action does.
                    action_summary: bound
                        .as_ref()
                        .map(|(action, _)| action.summary().to_owned()),
                    confirmation: bound.and_then(|(_, id)| id),
                },
            ));
        }
        let return_to = target.return_to(head.path_and_query());
        match bound {
            None | Some((_, None)) => {
                Verdict::Deny(target.respond(navigation, &return_to, challenge, Some(policy)))
            }
            Some((action, Some(id))) => {
                let mut location = target.location(&return_to, challenge, Some(policy));
                crate::url::add_confirmation(&mut location, &id);
                Verdict::Deny(if navigation {
                    Reply::see_other(&location)
                } else {
                    Reply::bound_challenge(&location, challenge, &id, action.action())
                })
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn no_subject(&self, head: &impl RequestHead) -> Reply {
        match &self.inner.no_subject {
            NoSubject::RedirectToLogin(login) if is_navigation_of(head) => {
                let back = self.inner.target.return_for(head);
                Reply::see_other(&login_location(login, &back))
            }
            _ => Reply::login_required(),
        }
    }

    /// The assurance of `head` for `subject`, against no particular policy
    /// (an ambiguous token is [`ChallengeReason::Invalid`]).
    pub fn verify(
        &self,
        head: &impl RequestHead,
        subject: Subject,
    ) -> Result<Assurance, ChallengeReason> {
        let c = &*self.inner;
        let found = find_token(head, &c.cookie, c.token_header);
        verify(&c.gate, subject, found, c.target.now())
    }

    /// The assurance of a token an adapter looked up earlier
    /// ([`find_token`](crate::find_token)) for `subject`: an ambiguous one
    /// is [`ChallengeReason::Invalid`].
    pub fn verify_found(
        &self,
        subject: Subject,
        found: Found<'_>,
    ) -> Result<Assurance, ChallengeReason> {
        verify(&self.inner.gate, subject, found, self.inner.target.now())
    }

    /// The answer when `policy` must be proven first — a factor change, an
    /// account recovery — given what the request's token said
    /// (`verified`), sending a browser back to `return_to` afterwards. An
    /// assurance that meets the policy but was refused all the same (of an
    /// older epoch, say) is asked again as stale.
    pub fn challenge_for(
        &self,
        navigation: bool,
        return_to: &ReturnTo,
        verified: Result<Assurance, ChallengeReason>,
        policy: &Policy,
    ) -> Reply {
        let challenge = self.challenge_of(verified, policy);
        self.inner
            .target
            .respond(navigation, return_to, &challenge, Some(policy))
    }

    /// [`challenge_for`](Self::challenge_for) a browser's form that is not
    /// kept: the page asks to submit it again, then returns to `return_to`
    /// (the page the form was on).
    pub fn challenge_to_resubmit(
        &self,
        return_to: &ReturnTo,
        verified: Result<Assurance, ChallengeReason>,
        policy: &Policy,
    ) -> Reply {
        let challenge = self.challenge_of(verified, policy);
        self.inner
            .target
            .respond_resubmit(return_to, &challenge, Some(policy))
    }

    fn challenge_of(
        &self,
        verified: Result<Assurance, ChallengeReason>,
        policy: &Policy,
    ) -> Challenge {
        let gate = &self.inner.gate;
        let challenge = match verified {
            Ok(assurance) => match assurance.require(policy, self.inner.target.now()) {
                Err(challenge) => challenge,
                Ok(()) => gate.challenge(ChallengeReason::Stale, policy),
            },
            Err(reason) => gate.challenge(reason, policy),
        };
        tracing::info!(target: "stepup", outcome = "challenge", reason = challenge.reason().code(), policy = %policy);
        challenge
    }

    /// Any valid step-up at all (level 1) for `subject`, for an extractor on
    /// a route the guard does not wrap: the assurance, or the refusal to
    /// answer with.
    pub fn verify_any(
        &self,
        head: &impl RequestHead,
        subject: Subject,
    ) -> Result<Assurance, Box<crate::Refusal>> {
        self.verify(head, subject).map_err(|reason| {
            let any = Policy::level(1);
            let challenge = self.inner.gate.challenge(reason, &any);
            self.hold(head).refuse(challenge, Some(&any))
        })
    }

    /// What an extractor keeps of `head` to answer an in-handler `require`
    /// as this guard would.
    pub fn hold(&self, head: &impl RequestHead) -> Hold {
        Hold::new(self.inner.target.clone(), head)
    }
}

/// Who sent `head`, when it may be a form to keep for later (not a
/// `GET`/`HEAD`). Clones of a subject share its text: no allocation.
#[inline]
fn sender(head: &impl RequestHead, subject: &Subject) -> Option<Subject> {
    match head.method() {
        "GET" | "HEAD" => None,
        _ => Some(subject.clone()),
    }
}

/// Whether the `proofs` of the step-ups made for a bound action meet
/// `policy` by themselves — an earlier, stronger proof in the token never
/// lends a weaker confirmation (a password) its strength — and the
/// assurance meets it with the grant: else the challenge to answer (the
/// grant is used up; the action is asked again).
fn granted(
    assurance: &Assurance,
    proofs: &[stepup_core::Proof],
    policy: &Policy,
    now: stepup_core::Timestamp,
    gate: &Gate,
    same_context: bool,
) -> Result<(), Challenge> {
    let facts = Facts::default()
        .with_granted(true)
        .with_same_context(same_context);
    let outcome = policy
        .met_with(proofs, assurance.level_table(), now, facts)
        .map_err(|reason| gate.challenge(reason, policy))
        .and_then(|()| assurance.require_with(policy, now, facts));
    match &outcome {
        Ok(()) => {
            tracing::info!(target: "stepup", outcome = "granted", policy = %policy, "a bound action's grant was used")
        }
        Err(challenge) => {
            tracing::info!(target: "stepup", outcome = "grant_too_weak", reason = challenge.reason().code(), policy = %policy, "a bound action's grant was made with step-ups that do not meet the policy: used up, asked again")
        }
    }
    outcome
}

/// Whether `head` says it comes from another site: `Sec-Fetch-Site` of
/// `cross-site` or `same-site` (a sibling subdomain is not this origin), or
/// an `Origin` that is not `origin`. A request saying nothing (an API
/// client, an old browser, a typed URL) is not.
fn from_elsewhere(head: &impl RequestHead, origin: Option<&str>) -> bool {
    let site = head.value(Header::SecFetchSite);
    if matches!(site, Some(b"cross-site" | b"same-site")) {
        return true;
    }
    match (head.value(Header::Origin), origin) {
        (Some(b"null") | None, _) | (_, None) => false,
        (Some(sent), Some(ours)) => sent != ours.as_bytes(),
    }
}

/// A bound route with no grant store: its `bound` term can never be met.
#[cold]
fn no_grants() -> Reply {
    tracing::error!(target: "stepup", "a bound route has no grant store: give the guard the engine's (Settings::with_grants)");
    unavailable()
}

/// `503`: the store failed.
fn unavailable() -> Reply {
    Reply::new(503, None, "")
        .no_store()
        .with_header("retry-after", "5")
}

fn verify(
    gate: &Gate,
    subject: Subject,
    found: Found<'_>,
    now: stepup_core::Timestamp,
) -> Result<Assurance, ChallengeReason> {
    match found {
        Found::None => gate.verify(subject, None, now),
        Found::One(token) => gate.verify(subject, Some(token), now),
        Found::Ambiguous => Err(ChallengeReason::Invalid),
    }
}

/// Tells `funnel` of a refusal of `subject` on `route` (the matched route's
/// template), else on `head`'s path.
#[cold]
#[allow(clippy::too_many_arguments)]
fn tell_funnel<R: ?Sized>(
    funnel: &dyn Funnel,
    c: &Inner<R>,
    head: &impl RequestHead,
    route: Option<String>,
    subject: &Subject,
    policy: &Policy,
    reason: &'static str,
    navigation: bool,
) {
    let path = head.path_and_query();
    let route = route
        .as_deref()
        .unwrap_or_else(|| path.split(['?', '#']).next().unwrap_or(path));
    let text;
    let policy = match &c.name {
        Some(name) => name.as_str(),
        None => {
            text = policy.to_string();
            text.as_str()
        }
    };
    let via = if navigation { Via::Browser } else { Via::Api };
    funnel.challenged(&Challenged::new(subject, route, policy, reason, via));
}

/// Displays the policy name or expression only when a log event is written.
struct PolicyName<'a, R: ?Sized>(&'a Inner<R>);

impl<R: ?Sized> fmt::Display for PolicyName<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.name, &self.0.policy) {
            (Some(name), _) => f.write_str(name),
            (None, PolicySource::Fixed(policy)) => write!(f, "{policy}"),
            (None, PolicySource::PerRequest(_)) => f.write_str("<per request>"),
            (None, PolicySource::ByRisk(..)) => f.write_str("<by risk>"),
        }
    }
}
