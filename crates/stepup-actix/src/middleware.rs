//! `RequireStepUp`: the actix-web middleware.

use std::fmt;
use std::future::{Ready, ready};
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{CONTENT_LENGTH, HeaderValue, LOCATION, TRANSFER_ENCODING};
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpRequest};
use stepup_core::{Assurance, Clock, Gate, Policy, ReturnTo, Subject};
use stepup_http::{Guard, NoSubject, Opened, Pickup, RequestHead as _, Verdict};

use crate::future::{StepUpFuture, add_no_store};
use crate::head::{Granted, Head, into_response};

/// Where the challenge page is unless configured otherwise.
pub const DEFAULT_CHALLENGE_PATH: &str = stepup_http::DEFAULT_MOUNT;

/// Who is logged in, as the application's login says.
pub(crate) type SubjectFn = dyn Fn(&HttpRequest) -> Option<Subject> + Send + Sync;

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) guard: Guard<HttpRequest>,
    pub(crate) subjects: Arc<SubjectFn>,
}

/// What the [`Assurance`](crate::Assurance) extractor needs on routes no
/// [`RequireStepUp`] wraps — plain app data, not a middleware:
/// `App::new().app_data(stepup.app_data())`. On such a route the
/// extractor verifies the token itself and asks for any step-up at all
/// (level 1).
#[derive(Clone)]
pub struct StepUpData(pub(crate) Config);

impl fmt::Debug for StepUpData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpData")
            .field("guard", &self.0.guard)
            .finish_non_exhaustive()
    }
}

impl StepUpData {
    /// The extractor's data from `guard` (its cookie, clock, challenge page
    /// and reasons — not its policy: a bare extractor asks for any step-up
    /// at all) and the subject source.
    /// [`StepUp::app_data`](crate::StepUp::app_data) makes it from the
    /// application's settings.
    ///
    /// ```
    /// use actix_web::{App, HttpRequest};
    /// use stepup_actix::StepUpData;
    /// use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
    /// use stepup_http::Guard;
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
    /// let app = App::new().app_data(StepUpData::new(Guard::new(Gate::new(&ring), Policy::level(1)), who));
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<F>(guard: Guard<HttpRequest>, subjects: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        StepUpData(Config {
            guard,
            subjects: Arc::new(subjects),
        })
    }

    pub(crate) fn subject(&self, request: &HttpRequest) -> Option<Subject> {
        (self.0.subjects)(request)
    }

    pub(crate) fn guard(&self) -> &Guard<HttpRequest> {
        &self.0.guard
    }
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
            .field("guard", &self.config.guard)
            .finish_non_exhaustive()
    }
}

impl RequireStepUp {
    /// Requires `policy`, checked by `gate`, of the user `subjects` names.
    pub fn new<F>(gate: Gate, policy: Policy, subjects: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        RequireStepUp::from_guard(Guard::new(gate, policy), subjects)
    }

    /// Chooses the policy per request from the request and the current
    /// assurance (if the token verified) — contextual step-up, such as "a
    /// `DELETE` needs a passkey". Return shared policies (`Arc`) built once.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use actix_web::{HttpRequest, http::Method};
    /// use stepup_actix::RequireStepUp;
    /// use stepup_core::{Gate, Key, KeyId, KeyRing, Method as Factor, Policy, Subject};
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let read = Arc::new(Policy::level(2).max_age(Duration::from_secs(3600)));
    /// let delete = Arc::new(Policy::method(Factor::Passkey).max_age(Duration::from_secs(300)));
    /// let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
    /// let middleware = RequireStepUp::per_request(
    ///     Gate::new(&ring),
    ///     move |request: &HttpRequest, _assurance| {
    ///         if request.method() == Method::DELETE { delete.clone() } else { read.clone() }
    ///     },
    ///     who,
    /// );
    /// # let _ = middleware;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn per_request<C, F>(gate: Gate, choose: C, subjects: F) -> Self
    where
        C: Fn(&HttpRequest, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
        F: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        RequireStepUp::from_guard(Guard::per_request(gate, choose), subjects)
    }

    /// The middleware running `guard` (as
    /// [`Settings::guard`](stepup_http::Settings::guard) makes it) for the
    /// user `subjects` names.
    pub fn from_guard<F>(guard: Guard<HttpRequest>, subjects: F) -> Self
    where
        F: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        RequireStepUp::shared(guard, Arc::new(subjects))
    }

    /// [`from_guard`](RequireStepUp::from_guard) with a subject source
    /// shared with other middleware and the routes.
    pub(crate) fn shared(guard: Guard<HttpRequest>, subjects: Arc<SubjectFn>) -> Self {
        // The client context's address is the one the routes use.
        let guard = guard
            .client_address(|request: &HttpRequest| {
                crate::ClientAddress::of(request).map(|crate::ClientAddress(ip)| ip)
            })
            .route_template(HttpRequest::match_pattern);
        RequireStepUp {
            config: Arc::new(Config { guard, subjects }),
        }
    }

    /// The guard.
    pub fn guard(&self) -> &Guard<HttpRequest> {
        &self.config.guard
    }

    /// Builders run at start-up, before the middleware is shared.
    fn edit(mut self, change: impl FnOnce(Guard<HttpRequest>) -> Guard<HttpRequest>) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.guard = change(config.guard.clone());
        self
    }

    /// The assurance cookie's name (default `__Host-stepup`).
    #[must_use]
    pub fn cookie_name(self, name: &str) -> Self {
        self.edit(|g| g.cookie_name(name))
    }

    /// Also accept the token in the `Stepup-Assurance` header, for API
    /// clients that keep no cookies. A request carrying both the header and
    /// the cookie is refused (challenged), never guessed between.
    #[must_use]
    pub fn accept_token_header(self) -> Self {
        self.edit(Guard::accept_token_header)
    }

    /// What to answer when nobody is logged in (default: `401`, no
    /// challenge). [`NoSubject::RedirectToLogin`] sends browsers navigating
    /// to the login page with `?return_to=…`.
    #[must_use]
    pub fn on_no_subject(self, answer: NoSubject) -> Self {
        self.edit(|g| g.on_no_subject(answer))
    }

    /// Where the challenge page is (default `/step-up`): a local path
    /// without a query; anything else is ignored.
    #[must_use]
    pub fn challenge_page(self, path: &str) -> Self {
        self.edit(|g| g.challenge_page(path))
    }

    /// Where to come back to when the request's own path is not a valid
    /// return path (default `/`).
    #[must_use]
    pub fn fallback_return(self, fallback: ReturnTo) -> Self {
        self.edit(|g| g.fallback_return(fallback))
    }

    /// The clock (tests pass a `TestClock`).
    #[must_use]
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.edit(|g| g.clock(clock))
    }

    /// An identifier (1–32 of `[A-Za-z0-9_-]`) of this route's reason, sent
    /// to the page as `why=…`; anything else is ignored.
    #[must_use]
    pub fn page_note(self, note: &str) -> Self {
        self.edit(|g| g.page_note(note))
    }

    /// A name for this route's policy in log events (default: the policy
    /// expression).
    #[must_use]
    pub fn name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|g| g.name(name))
    }

    /// What a form this route interrupts will do, from its fields ("Send
    /// 25 to bob"): the challenge page and the confirmation button say it
    /// (escaped). See [`Guard::summary`].
    #[must_use]
    pub fn summary<F>(self, summary: F) -> Self
    where
        F: Fn(&stepup_http::FormFields) -> Option<String> + Send + Sync + 'static,
    {
        self.edit(|g| g.summary(summary))
    }

    /// Never keeps this route's forms (one with a password or a one-time
    /// token in it): the page asks to submit the form again instead. See
    /// [`Guard::without_kept_forms`].
    #[must_use]
    pub fn without_kept_forms(self) -> Self {
        self.edit(Guard::without_kept_forms)
    }

    /// Binds this route to the request's exact action (see
    /// [`Guard::bind`]): the body is read once, the handler gets the
    /// [`BoundAction`](stepup_http::BoundAction) (`web::ReqData<BoundAction>`),
    /// and a `bound` policy term needs a single-use grant for that action.
    pub fn bind(self, spec: stepup_http::ActionSpec) -> Self {
        self.edit(|g| g.bind(spec))
    }

    /// The policy for one bound action, when not the route's own (see
    /// [`Guard::bound_policy`]).
    pub fn bound_policy<F>(self, choose: F) -> Self
    where
        F: Fn(&stepup_http::BoundAction) -> Option<std::sync::Arc<stepup_core::Policy>>
            + Send
            + Sync
            + 'static,
    {
        self.edit(|g| g.bound_policy(choose))
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireStepUp
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = RequireStepUpMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireStepUpMiddleware {
            service: Rc::new(service),
            config: self.config.clone(),
        }))
    }
}

/// The service [`RequireStepUp`] wraps around a resource or scope.
pub struct RequireStepUpMiddleware<S> {
    // Shared with a form's future, which calls it after reading the body.
    service: Rc<S>,
    config: Arc<Config>,
}

impl<S> fmt::Debug for RequireStepUpMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireStepUpMiddleware")
            .field("guard", &self.config.guard)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for RequireStepUpMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = StepUpFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let config = &*self.config;
        let http = request.request();
        let subject = (config.subjects)(http);
        if config.guard.binding().is_some() {
            // A bound route: its body is read once, here.
            return StepUpFuture::boxed(Box::pin(bound(
                self.service.clone(),
                self.config.clone(),
                request,
                subject,
            )));
        }
        let pickup = config.guard.pickup(&Head(http), subject.as_ref());
        let verdict = config.guard.check(http, &Head(http), subject);
        match verdict {
            Verdict::Allow(assurance) => {
                // One insert (one allocation): the assurance with its target.
                request.extensions_mut().insert(Granted {
                    assurance,
                    target: config.guard.target().clone(),
                });
                match pickup {
                    None => StepUpFuture::inner_no_store(self.service.call(request)),
                    // A form POST: it may be coming back from the
                    // confirmation page.
                    Some(pickup) => StepUpFuture::boxed(Box::pin(pick_up(
                        self.service.clone(),
                        request,
                        pickup,
                    ))),
                }
            }
            Verdict::Deny(reply) => StepUpFuture::ready(
                request
                    .into_response(into_response(reply))
                    .map_into_right_body(),
            ),
            Verdict::Interrupt(interruption) => match interruption.body_limit() {
                None => StepUpFuture::ready(
                    request
                        .into_response(into_response(interruption.into_reply()))
                        .map_into_right_body(),
                ),
                Some(limit) => StepUpFuture::boxed(Box::pin(async move {
                    let (http, payload) = request.into_parts();
                    let body = read(payload, limit).await;
                    let reply = interruption.answer(body.as_deref()).await;
                    Ok(ServiceResponse::new(http, into_response(reply)).map_into_right_body())
                })),
            },
        }
    }
}

/// A bound route's request: the body read once (at most the spec's
/// limit: more is `413`), the action read from it, the decision taken with
/// the action's grant; an allowed request goes on with the
/// [`BoundAction`](stepup_http::BoundAction) in its extensions (and, for a
/// form coming back from the confirmation page, as a resumed form).
async fn bound<S, B>(
    service: Rc<S>,
    config: Arc<Config>,
    request: ServiceRequest,
    subject: Option<stepup_core::Subject>,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let guard = &config.guard;
    let limit = guard
        .binding()
        .map_or(0, stepup_http::ActionSpec::body_limit);
    let (http, payload) = request.into_parts();
    let answer =
        |http, reply| Ok(ServiceResponse::new(http, into_response(reply)).map_into_right_body());
    let Some(bytes) = read(payload, limit).await else {
        let reply = guard.body_too_large(&Head(&http));
        return answer(http, reply);
    };
    let head = Head(&http);
    let action = match guard.read_action(&head, &bytes) {
        Ok(action) => action,
        Err(reply) => return answer(http, reply),
    };
    let pickup = guard.pickup(&head, subject.as_ref());
    match guard.check_action(&http, &head, subject, &action).await {
        Verdict::Allow(assurance) => {
            http.extensions_mut().insert(Granted {
                assurance,
                target: guard.target().clone(),
            });
            http.extensions_mut().insert(action);
            match pickup {
                None => {
                    let request = ServiceRequest::from_parts(http, Payload::from(bytes));
                    let mut response = service.call(request).await?;
                    add_no_store(&mut response);
                    Ok(response.map_into_left_body())
                }
                Some(pickup) => open_read(service, http, bytes, pickup).await,
            }
        }
        Verdict::Deny(reply) => answer(http, reply),
        Verdict::Interrupt(interruption) => {
            let reply = interruption.answer(Some(&bytes)).await;
            answer(http, reply)
        }
    }
}

/// The body, if it has at most `limit` bytes and reads without error.
async fn read(payload: Payload, limit: usize) -> Option<Bytes> {
    let stream = actix_web::body::BodyStream::new(payload);
    match actix_web::body::to_bytes_limited(stream, limit).await {
        Ok(Ok(bytes)) => Some(bytes),
        _ => None,
    }
}

/// An allowed form POST: a resumed form goes to the service with the marker
/// stripped and [`Resumed`](stepup_http::Resumed) in its extensions; a
/// second arrival gets its page; any other form goes on unchanged.
async fn pick_up<S, B>(
    service: Rc<S>,
    request: ServiceRequest,
    pickup: Pickup,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let (http, payload) = request.into_parts();
    let Some(bytes) = read(payload, pickup.limit()).await else {
        let reply = into_response(pickup.unreadable());
        return Ok(ServiceResponse::new(http, reply).map_into_right_body());
    };
    open_read(service, http, bytes, pickup).await
}

/// [`pick_up`] once the body is read.
async fn open_read<S, B>(
    service: Rc<S>,
    http: actix_web::HttpRequest,
    bytes: Bytes,
    pickup: Pickup,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    let (method, target) = {
        let head = Head(&http);
        (head.method().to_owned(), head.path_and_query().to_owned())
    };
    match pickup.open(&method, &target, &bytes).await {
        Opened::Pass => {
            let request = ServiceRequest::from_parts(http, Payload::from(bytes));
            let mut response = service.call(request).await?;
            add_no_store(&mut response);
            Ok(response.map_into_left_body())
        }
        Opened::Resume {
            body,
            resumed,
            went,
        } => {
            http.extensions_mut().insert(resumed);
            let length = HeaderValue::from(body.len());
            let mut request = ServiceRequest::from_parts(http, Payload::from(Bytes::from(body)));
            // The body now has this length, whatever framing it came in.
            request.headers_mut().remove(TRANSFER_ENCODING);
            request.headers_mut().insert(CONTENT_LENGTH, length);
            let mut response = service.call(request).await?;
            add_no_store(&mut response);
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(location) = location {
                went.to(&location).await;
            }
            Ok(response.map_into_left_body())
        }
        Opened::Answer(reply) => {
            Ok(ServiceResponse::new(http, into_response(reply)).map_into_right_body())
        }
    }
}
