//! `RequireStepUpLayer` and the `RequireStepUp` service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::request::Parts;
use http::{HeaderName, Request, Response};
use stepup_core::{
    Assurance, ChallengeReason, Clock, Decision, Gate, Policy, ReturnTo, SystemClock,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use stepup_core::web::{self, CookieName, DEFAULT_COOKIE_NAME, Found, NoSubject, TOKEN_HEADER};

use crate::render;
use crate::respond::{ChallengeTarget, find_cookie, find_header, is_navigation};
use crate::subject::SubjectSource;

/// Where the challenge routes are mounted unless configured otherwise.
pub const DEFAULT_CHALLENGE_PATH: &str = "/step-up";

type PolicyFn = dyn Fn(&Parts, Option<&Assurance>) -> Arc<Policy> + Send + Sync;

#[derive(Clone)]
enum PolicySource {
    Fixed(Policy),
    PerRequest(Arc<PolicyFn>),
}

#[derive(Clone)]
struct Config<Src> {
    gate: Gate,
    policy: PolicySource,
    subjects: Src,
    clock: Arc<dyn Clock>,
    cookie_name: CookieName,
    token_header: Option<HeaderName>,
    challenge_page: ReturnTo,
    fallback: ReturnTo,
    no_subject: NoSubject,
    name: Option<String>,
    page_note: Option<String>,
}

/// Requires a step-up before the wrapped service runs.
///
/// Holds the shared configuration (one `Arc`): the [`Gate`], the route's
/// [`Policy`] (or a function choosing it per request), the
/// [`SubjectSource`], the clock, the cookie name and the challenge page path.
///
/// For each request: no logged-in subject → [`NoSubject`] answer; otherwise
/// the assurance token is taken from the `__Host-stepup` cookie (two cookies
/// of that name, or a cookie and the opt-in header, are refused, never
/// guessed between) and checked with [`Gate::check`]. Allowed: the
/// [`Assurance`] goes into the request extensions and the inner service runs;
/// its response gets `Cache-Control: no-store` unless it has a
/// `Cache-Control` of its own (what only a step-up shows must not be cached).
/// Challenged: a browser navigation (`GET`/`HEAD` for HTML) gets `303 See
/// Other` to the challenge page with `return_to` and `reason`; everything
/// else gets `401` with the RFC 9470 `WWW-Authenticate` header and an RFC 9457
/// problem body naming the challenge page and the methods that would do.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::post};
/// use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
/// use stepup_tower::{FromExtension, RequireStepUpLayer};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let transfer_policy = Policy::level(2)
///     .max_age(Duration::from_secs(300))
///     .with_reason("We need to confirm it's really you before moving money.");
///
/// let app: Router = Router::new()
///     .route("/transfer", post(|| async { "sent" }))
///     .route_layer(RequireStepUpLayer::new(
///         Gate::new(&ring),
///         transfer_policy,
///         FromExtension::<Subject>::new(), // inserted by the app's login layer
///     ));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RequireStepUpLayer<Src> {
    config: Arc<Config<Src>>,
}

impl<Src> Clone for RequireStepUpLayer<Src> {
    fn clone(&self) -> Self {
        RequireStepUpLayer {
            config: self.config.clone(),
        }
    }
}

impl<Src> fmt::Debug for RequireStepUpLayer<Src> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = match &self.config.policy {
            PolicySource::Fixed(p) => p.to_string(),
            PolicySource::PerRequest(_) => "<per request>".to_owned(),
        };
        f.debug_struct("RequireStepUpLayer")
            .field("policy", &policy)
            .field("cookie_name", &self.config.cookie_name.as_str())
            .field("challenge_page", &self.config.challenge_page)
            .finish_non_exhaustive()
    }
}

impl<Src: SubjectSource> RequireStepUpLayer<Src> {
    /// Requires `policy`, checked by `gate`, for the subject `subjects` finds.
    pub fn new(gate: Gate, policy: Policy, subjects: Src) -> Self {
        Self::build(gate, PolicySource::Fixed(policy), subjects)
    }

    /// Chooses the policy per request from the request parts and the current
    /// assurance (if the token verified) — contextual step-up, such as "a
    /// `DELETE` needs a passkey". Return shared policies (`Arc`) built once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use http::Method;
    /// use stepup_core::{Gate, Key, KeyId, KeyRing, Method as Factor, Policy, Subject};
    /// use stepup_tower::{FromExtension, RequireStepUpLayer};
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let read = Arc::new(Policy::level(2).max_age(Duration::from_secs(3600)));
    /// let delete = Arc::new(Policy::method(Factor::Passkey).max_age(Duration::from_secs(300)));
    /// let layer = RequireStepUpLayer::per_request(
    ///     Gate::new(&ring),
    ///     move |parts, _assurance| {
    ///         if parts.method == Method::DELETE { delete.clone() } else { read.clone() }
    ///     },
    ///     FromExtension::<Subject>::new(),
    /// );
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn per_request<F>(gate: Gate, choose: F, subjects: Src) -> Self
    where
        F: Fn(&Parts, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
    {
        Self::build(gate, PolicySource::PerRequest(Arc::new(choose)), subjects)
    }

    fn build(gate: Gate, policy: PolicySource, subjects: Src) -> Self {
        RequireStepUpLayer {
            config: Arc::new(Config {
                gate,
                policy,
                subjects,
                clock: Arc::new(SystemClock),
                cookie_name: CookieName::new(DEFAULT_COOKIE_NAME),
                token_header: None,
                challenge_page: ReturnTo::parse(DEFAULT_CHALLENGE_PATH)
                    .unwrap_or_else(|_| ReturnTo::root()),
                fallback: ReturnTo::root(),
                no_subject: NoSubject::default(),
                name: None,
                page_note: None,
            }),
        }
    }
}

/// Settings. Each returns the layer with the setting changed (clones made
/// earlier keep theirs).
impl<Src: SubjectSource + Clone> RequireStepUpLayer<Src> {
    fn config_mut(&mut self) -> &mut Config<Src> {
        Arc::make_mut(&mut self.config)
    }

    /// Uses another cookie name (for example without the `__Host-` prefix
    /// during local development over plain HTTP).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        let c = self.config_mut();
        c.cookie_name = CookieName::new(&name.into());
        self
    }

    /// Also accepts the token in the `Stepup-Assurance` request header, for
    /// API clients that keep no cookies. A request carrying both the cookie
    /// and the header is refused. Browsers cannot set this header cross-site
    /// without a CORS preflight, so it does not weaken CSRF protection.
    pub fn accept_token_header(mut self) -> Self {
        let c = self.config_mut();
        c.token_header = Some(HeaderName::from_static(TOKEN_HEADER));
        self
    }

    /// Where the challenge page is mounted (default `/step-up`). Must be a
    /// local path without a query; anything else keeps the default.
    pub fn challenge_page(mut self, path: &str) -> Self {
        if let Ok(page) = ReturnTo::parse(path)
            && !page.as_str().contains(['?', '#'])
        {
            self.config_mut().challenge_page = page;
        }
        self
    }

    /// Where to return after a step-up when the original path is refused
    /// (default `/`).
    pub fn fallback_return(mut self, fallback: ReturnTo) -> Self {
        let c = self.config_mut();
        c.fallback = fallback;
        self
    }

    /// What to answer when no user is logged in.
    pub fn on_no_subject(mut self, answer: NoSubject) -> Self {
        let c = self.config_mut();
        c.no_subject = answer;
        self
    }

    /// The clock (default: the system clock; tests use a `TestClock`).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        let c = self.config_mut();
        c.clock = Arc::new(clock);
        self
    }

    /// An identifier (1–32 of `[A-Za-z0-9_-]`) added to the challenge page
    /// URL as `why=…`, so the page can show this route's reason from
    /// configuration. Other values are ignored.
    pub fn page_note(mut self, note: &str) -> Self {
        if web::valid_note(note) {
            self.config_mut().page_note = Some(note.to_owned());
        }
        self
    }

    /// A name for this route's policy in log events (default: the policy
    /// expression).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        let c = self.config_mut();
        c.name = Some(name.into());
        self
    }
}

impl<S, Src> Layer<S> for RequireStepUpLayer<Src> {
    type Service = RequireStepUp<S, Src>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireStepUp {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`RequireStepUpLayer`]: the inner service plus the
/// shared configuration.
pub struct RequireStepUp<S, Src> {
    inner: S,
    config: Arc<Config<Src>>,
}

impl<S: Clone, Src> Clone for RequireStepUp<S, Src> {
    fn clone(&self) -> Self {
        RequireStepUp {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug, Src> fmt::Debug for RequireStepUp<S, Src> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireStepUp")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, Src, ReqBody, ResBody> Service<Request<ReqBody>> for RequireStepUp<S, Src>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    Src: SubjectSource,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let config = &*self.config;
        let Some(subject) = config.subjects.subject(&parts) else {
            tracing::info!(target: "stepup", outcome = "no_subject", policy = %PolicyName(config), "no logged-in user");
            return ResponseFuture::ready(config.no_subject_response(&parts));
        };
        let found = config.find_token(&parts);
        let now = config.clock.now();
        let decision = match found {
            Found::Ambiguous => {
                // Cookie tossing or mixed sources: a challenge, never a guess.
                let policy = config.policy_for(&parts, None);
                Decision::Challenge(config.gate.challenge(ChallengeReason::Invalid, &policy))
            }
            Found::One(token) => config.decide(&parts, subject, Some(token), now),
            Found::None => config.decide(&parts, subject, None, now),
        };
        match decision {
            Decision::Allow(assurance) => {
                tracing::debug!(target: "stepup", outcome = "allow", policy = %PolicyName(config), level = assurance.level());
                parts.extensions.insert(assurance);
                ResponseFuture::inner_no_store(self.inner.call(Request::from_parts(parts, body)))
            }
            Decision::Challenge(challenge) => {
                let reason = if found == Found::Ambiguous {
                    "ambiguous_token"
                } else {
                    challenge.reason().code()
                };
                tracing::info!(target: "stepup", outcome = "challenge", reason, policy = %PolicyName(config));
                ResponseFuture::ready(config.challenge_response(&parts, &challenge))
            }
        }
    }
}

/// Displays the policy name or expression only when a log event is written.
struct PolicyName<'a, Src>(&'a Config<Src>);

impl<Src> fmt::Display for PolicyName<'_, Src> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.0.name, &self.0.policy) {
            (Some(name), _) => f.write_str(name),
            (None, PolicySource::Fixed(policy)) => write!(f, "{policy}"),
            (None, PolicySource::PerRequest(_)) => f.write_str("<per request>"),
        }
    }
}

impl<Src> Config<Src> {
    fn find_token<'a>(&self, parts: &'a Parts) -> Found<'a> {
        let cookie = find_cookie(&parts.headers, &self.cookie_name);
        match &self.token_header {
            Some(name) => cookie.or_only(find_header(&parts.headers, name)),
            None => cookie,
        }
    }

    fn policy_for(&self, parts: &Parts, assurance: Option<&Assurance>) -> PolicyRef<'_> {
        match &self.policy {
            PolicySource::Fixed(policy) => PolicyRef::Borrowed(policy),
            PolicySource::PerRequest(choose) => PolicyRef::Shared(choose(parts, assurance)),
        }
    }

    fn decide(
        &self,
        parts: &Parts,
        subject: stepup_core::Subject,
        token: Option<&str>,
        now: stepup_core::Timestamp,
    ) -> Decision {
        match &self.policy {
            PolicySource::Fixed(policy) => self.gate.check(subject, token, policy, now),
            PolicySource::PerRequest(choose) => match self.gate.verify(subject, token, now) {
                Ok(assurance) => {
                    let policy = choose(parts, Some(&assurance));
                    match assurance.require(&policy, now) {
                        Ok(()) => Decision::Allow(assurance),
                        Err(challenge) => Decision::Challenge(challenge),
                    }
                }
                Err(reason) => {
                    let policy = choose(parts, None);
                    Decision::Challenge(self.gate.challenge(reason, &policy))
                }
            },
        }
    }

    fn target(&self) -> ChallengeTarget {
        ChallengeTarget {
            page: self.challenge_page.clone(),
            fallback: self.fallback.clone(),
            note: self.page_note.clone(),
        }
    }

    fn return_to(&self, parts: &Parts) -> ReturnTo {
        let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        ReturnTo::parse_or(path, &self.fallback)
    }

    fn challenge_response<B: From<String>>(
        &self,
        parts: &Parts,
        challenge: &stepup_core::Challenge,
    ) -> Response<B> {
        self.target().respond(parts, challenge)
    }

    fn no_subject_response<B: From<String>>(&self, parts: &Parts) -> Response<B> {
        match &self.no_subject {
            NoSubject::RedirectToLogin(login) if is_navigation(parts) => {
                render::redirect(&web::login_location(login, &self.return_to(parts)))
            }
            _ => render::login_required(),
        }
    }
}

enum PolicyRef<'a> {
    Borrowed(&'a Policy),
    Shared(Arc<Policy>),
}

impl std::ops::Deref for PolicyRef<'_> {
    type Target = Policy;
    fn deref(&self) -> &Policy {
        match self {
            PolicyRef::Borrowed(p) => p,
            PolicyRef::Shared(p) => p,
        }
    }
}
