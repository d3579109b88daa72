//! `RequireStepUp`: the actix-web middleware.

use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::{Error, HttpMessage, HttpRequest};
use stepup_core::web::{self, CookieName, DEFAULT_COOKIE_NAME, Found, NoSubject, valid_note};
use stepup_core::{ChallengeReason, Clock, Decision, Gate, Policy, ReturnTo, Subject, SystemClock};

use crate::extract::{AssuranceRejection, StepUpRequired};
use crate::future::StepUpFuture;
use crate::respond::{Granted, Route, find_token, is_navigation, login_required, see_other};

/// Where the challenge page is unless configured otherwise.
pub const DEFAULT_CHALLENGE_PATH: &str = "/step-up";

/// Who is logged in, as the application's login says.
pub(crate) type SubjectFn = dyn Fn(&HttpRequest) -> Option<Subject> + Send + Sync;

#[derive(Clone)]
struct Config {
    gate: Gate,
    policy: Policy,
    subjects: Arc<SubjectFn>,
    cookie: CookieName,
    token_header: bool,
    no_subject: NoSubject,
    route: Arc<Route>,
}

/// Requires a step-up before the wrapped resource or scope runs.
///
/// For each request: the subject closure says who is logged in (from
/// actix-identity, actix-session or your own login); nobody → `401` with a
/// small problem body and no step-up challenge. Otherwise the assurance token
/// is taken from the `__Host-stepup` cookie (two cookies of that name are
/// refused, never guessed between) and checked against the policy. Allowed:
/// the [`Assurance`](crate::Assurance) is available to the handler.
/// Its response gets `Cache-Control: no-store` unless the handler set a
/// `Cache-Control` of its own (what only a step-up shows must not be cached).
/// Challenged: the handler does not run; a browser navigation (`GET`/`HEAD`
/// for HTML) gets `303 See Other` to the challenge page with `return_to` and
/// `reason`, everything else `401` with the RFC 9470 `WWW-Authenticate`
/// header and an RFC 9457 problem body — the same bytes the tower layer
/// writes.
///
/// ```
/// use std::time::Duration;
/// use actix_web::{App, HttpRequest, web};
/// use stepup_actix::RequireStepUp;
/// use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
///
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let transfer = Policy::level(2)
///     .max_age(Duration::from_secs(300))
///     .with_reason("We need to confirm it's really you before moving money.");
/// // Who is logged in: here a header set by a trusted front proxy; usually
/// // actix-identity or actix-session.
/// let who = |request: &HttpRequest| {
///     let user = request.headers().get("x-user")?.to_str().ok()?;
///     Some(Subject::new(user))
/// };
///
/// let app = App::new().service(
///     web::resource("/transfer")
///         .wrap(RequireStepUp::new(Gate::new(&ring), transfer, who))
///         .route(web::post().to(|| async { "sent" })),
/// );
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RequireStepUp {
    config: Arc<Config>,
}

impl fmt::Debug for RequireStepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireStepUp")
            .field("policy", &self.config.policy)
            .field("cookie", &self.config.cookie.as_str())
            .finish_non_exhaustive()
    }
}

impl RequireStepUp {
    /// Requires `policy`, checked by `gate`, of the user `subjects` names.
    pub fn new<F>(gate: Gate, policy: Policy, subjects: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        RequireStepUp::shared(gate, policy, Arc::new(subjects))
    }

    /// [`new`](RequireStepUp::new) with a subject source shared with other
    /// middleware and the routes.
    pub(crate) fn shared(gate: Gate, policy: Policy, subjects: Arc<SubjectFn>) -> Self {
        RequireStepUp {
            config: Arc::new(Config {
                gate,
                policy,
                subjects,
                cookie: CookieName::new(DEFAULT_COOKIE_NAME),
                token_header: false,
                no_subject: NoSubject::default(),
                route: Arc::new(Route {
                    page: ReturnTo::parse(DEFAULT_CHALLENGE_PATH)
                        .unwrap_or_else(|_| ReturnTo::root()),
                    fallback: ReturnTo::root(),
                    note: None,
                    clock: Arc::new(SystemClock),
                }),
            }),
        }
    }

    /// The assurance of `request` against no particular policy (any valid
    /// step-up), for the extractor on routes without the middleware.
    pub(crate) fn verify_any(
        &self,
        request: &HttpRequest,
    ) -> Result<stepup_core::Assurance, AssuranceRejection> {
        let c = &*self.config;
        let subject = (c.subjects)(request).ok_or(AssuranceRejection::NotLoggedIn)?;
        let now = c.route.clock.now();
        let outcome = match find_token(request, &c.cookie, c.token_header) {
            Found::One(token) => c.gate.verify(subject, Some(token), now),
            Found::None => c.gate.verify(subject, None, now),
            Found::Ambiguous => Err(ChallengeReason::Invalid),
        };
        outcome.map_err(|reason| {
            AssuranceRejection::StepUpRequired(StepUpRequired::new(
                c.gate.challenge(reason, &Policy::level(1)),
                is_navigation(request),
                c.route.return_to(request),
                c.route.clone(),
            ))
        })
    }

    pub(crate) fn route(&self) -> &Arc<Route> {
        &self.config.route
    }

    /// Builders run at start-up, before the middleware is shared, so the
    /// copies `make_mut` might make cost nothing in practice.
    fn edit(mut self, change: impl FnOnce(&mut Config, &mut Route)) -> Self {
        let config = Arc::make_mut(&mut self.config);
        let mut route = Route::clone(&config.route);
        change(config, &mut route);
        config.route = Arc::new(route);
        self
    }

    /// The assurance cookie's name (default `__Host-stepup`).
    #[must_use]
    pub fn cookie_name(self, name: &str) -> Self {
        self.edit(|c, _| c.cookie = CookieName::new(name))
    }

    /// Also accept the token in the `Stepup-Assurance` header, for API
    /// clients that keep no cookies. A request carrying both the header and
    /// the cookie is refused (challenged), never guessed between.
    #[must_use]
    pub fn accept_token_header(self) -> Self {
        self.edit(|c, _| c.token_header = true)
    }

    /// What to answer when nobody is logged in (default: `401`, no
    /// challenge). [`NoSubject::RedirectToLogin`] sends browsers navigating
    /// to the login page with `?return_to=…`.
    #[must_use]
    pub fn on_no_subject(self, answer: NoSubject) -> Self {
        self.edit(|c, _| c.no_subject = answer)
    }

    /// Where the challenge page is (default `/step-up`); a path that is not
    /// a local path is ignored.
    #[must_use]
    pub fn challenge_page(self, path: &str) -> Self {
        self.edit(|_, r| {
            if let Ok(page) = ReturnTo::parse(path) {
                r.page = page;
            }
        })
    }

    /// Where to come back to when the request's own path is not a valid
    /// return path (default `/`).
    #[must_use]
    pub fn fallback_return(self, fallback: ReturnTo) -> Self {
        self.edit(|_, r| r.fallback = fallback)
    }

    /// The clock (tests pass a `TestClock`).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        self.edit(|_, r| r.clock = Arc::new(clock))
    }

    /// The clock, shared with the routes.
    pub(crate) fn shared_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.edit(|_, r| r.clock = clock)
    }

    /// An identifier (1–32 of `[A-Za-z0-9_-]`) of this route's reason, sent
    /// to the page as `why=…`; anything else is ignored.
    #[must_use]
    pub fn page_note(self, note: &str) -> Self {
        self.edit(|_, r| {
            if valid_note(note) {
                r.note = Some(note.to_owned());
            }
        })
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireStepUp
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireStepUpMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireStepUpMiddleware {
            service,
            config: self.config.clone(),
        }))
    }
}

/// The service [`RequireStepUp`] wraps around a resource or scope.
pub struct RequireStepUpMiddleware<S> {
    service: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for RequireStepUpMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireStepUpMiddleware")
            .field("policy", &self.config.policy)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RequireStepUpMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = StepUpFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let config = &*self.config;
        let Some(subject) = (config.subjects)(request.request()) else {
            tracing::info!(target: "stepup", outcome = "no_subject", policy = %config.policy, "no logged-in user");
            let http = request.request();
            let answer = match &config.no_subject {
                NoSubject::RedirectToLogin(login) if is_navigation(http) => {
                    see_other(&web::login_location(login, &config.route.return_to(http)))
                }
                _ => login_required(),
            };
            let response = request.into_response(answer).map_into_right_body();
            return StepUpFuture::ready(response);
        };
        let now = config.route.clock.now();
        let found = find_token(request.request(), &config.cookie, config.token_header);
        let decision = match found {
            // Cookie tossing: a challenge, never a guess.
            Found::Ambiguous => Decision::Challenge(
                config
                    .gate
                    .challenge(ChallengeReason::Invalid, &config.policy),
            ),
            Found::One(token) => config.gate.check(subject, Some(token), &config.policy, now),
            Found::None => config.gate.check(subject, None, &config.policy, now),
        };
        match decision {
            Decision::Allow(assurance) => {
                tracing::debug!(target: "stepup", outcome = "allow", policy = %config.policy, level = assurance.level());
                // One insert (one allocation): the assurance with its route.
                request.extensions_mut().insert(Granted {
                    assurance,
                    route: config.route.clone(),
                });
                StepUpFuture::inner_no_store(self.service.call(request))
            }
            Decision::Challenge(challenge) => {
                let reason = if found == Found::Ambiguous {
                    "ambiguous_token"
                } else {
                    challenge.reason().code()
                };
                tracing::info!(target: "stepup", outcome = "challenge", reason, policy = %config.policy);
                let http = request.request();
                let answer = config.route.respond(
                    is_navigation(http),
                    &config.route.return_to(http),
                    &challenge,
                );
                StepUpFuture::ready(request.into_response(answer).map_into_right_body())
            }
        }
    }
}
