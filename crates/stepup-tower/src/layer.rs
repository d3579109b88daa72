//! `RequireStepUpLayer` and the `RequireStepUp` service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, LOCATION, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt as _;
use stepup_core::{Assurance, Clock, Gate, Policy, ReturnTo};
use stepup_http::{Guard, NoSubject, Opened, Pickup, RequestHead as _, Verdict};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::{ResponseFuture, add_no_store};
use crate::head::{HeadAt, OriginalTarget, into_response};
use crate::subject::SubjectSource;

/// Where the challenge page is mounted unless configured otherwise.
pub const DEFAULT_CHALLENGE_PATH: &str = stepup_http::DEFAULT_MOUNT;

struct Config<Src> {
    guard: Guard<Parts>,
    subjects: Src,
    original: Option<OriginalTarget>,
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
/// Challenged: a browser navigation (`Sec-Fetch-Mode: navigate`, whatever
/// the method) gets `303 See Other` to the challenge page with `return_to`
/// and `reason`; everything else gets `401` with the RFC 9470
/// `WWW-Authenticate` header and an RFC 9457 problem body naming the
/// challenge page and the methods that would do. A browser's form POST is
/// kept across the step-up and resumed from a confirmation page, at most
/// once, when the guard has a [`Resume`](stepup_http::Resume) store (the
/// axum `StepUp` sets it up); otherwise the page asks to submit it again.
/// Reading such a form is why the request body must be buildable from
/// [`Bytes`] (axum's `Body` is).
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
        f.debug_struct("RequireStepUpLayer")
            .field("guard", &self.config.guard)
            .finish_non_exhaustive()
    }
}

impl<Src: SubjectSource> RequireStepUpLayer<Src> {
    /// Requires `policy`, checked by `gate`, for the subject `subjects` finds.
    pub fn new(gate: Gate, policy: Policy, subjects: Src) -> Self {
        Self::from_guard(Guard::new(gate, policy), subjects)
    }

    /// The layer running `guard` (as [`Settings::guard`](stepup_http::Settings::guard)
    /// makes it: the application's cookie, clock, page and reasons) for the
    /// subject `subjects` finds.
    pub fn from_guard(guard: Guard<Parts>, subjects: Src) -> Self {
        RequireStepUpLayer {
            config: Arc::new(Config {
                guard,
                subjects,
                original: None,
            }),
        }
    }

    /// The guard.
    pub fn guard(&self) -> &Guard<Parts> {
        &self.config.guard
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
        Self::from_guard(Guard::per_request(gate, choose), subjects)
    }
}

/// Settings. Each returns the layer with the setting changed (clones made
/// earlier keep theirs).
impl<Src: SubjectSource + Clone> RequireStepUpLayer<Src> {
    fn edit(mut self, change: impl FnOnce(Guard<Parts>) -> Guard<Parts>) -> Self {
        let config = Arc::make_mut(&mut self.config);
        config.guard = change(config.guard.clone());
        self
    }

    /// Uses another cookie name (for example without the `__Host-` prefix
    /// during local development over plain HTTP).
    pub fn cookie_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|g| g.cookie_name(&name))
    }

    /// Also accepts the token in the `Stepup-Assurance` request header, for
    /// API clients that keep no cookies. A request carrying both the cookie
    /// and the header is refused. Browsers cannot set this header cross-site
    /// without a CORS preflight, so it does not weaken CSRF protection.
    pub fn accept_token_header(self) -> Self {
        self.edit(Guard::accept_token_header)
    }

    /// Where the challenge page is mounted (default `/step-up`). Must be a
    /// local path without a query; anything else keeps the default.
    pub fn challenge_page(self, path: &str) -> Self {
        self.edit(|g| g.challenge_page(path))
    }

    /// Where to return after a step-up when the original path is refused
    /// (default `/`).
    pub fn fallback_return(self, fallback: ReturnTo) -> Self {
        self.edit(|g| g.fallback_return(fallback))
    }

    /// What to answer when no user is logged in.
    pub fn on_no_subject(self, answer: NoSubject) -> Self {
        self.edit(|g| g.on_no_subject(answer))
    }

    /// The clock (default: the system clock; tests use a `TestClock`).
    pub fn clock(self, clock: impl Clock) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(clock);
        self.edit(|g| g.clock(clock))
    }

    /// An identifier (1–32 of `[A-Za-z0-9_-]`) added to the challenge page
    /// URL as `why=…`, so the page can show this route's reason from
    /// configuration. Other values are ignored.
    pub fn page_note(self, note: &str) -> Self {
        self.edit(|g| g.page_note(note))
    }

    /// Where the client's address comes from, for policies with a
    /// `same_context` term: the same place the challenge routes take it
    /// from (`stepup-axum`'s layers use its `ClientAddress`).
    pub fn client_address<F>(self, address: F) -> Self
    where
        F: Fn(&Parts) -> Option<std::net::IpAddr> + Send + Sync + 'static,
    {
        self.edit(|g| g.client_address(address))
    }

    /// A name for this route's policy in log events (default: the policy
    /// expression).
    pub fn name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.edit(|g| g.name(name))
    }

    /// What a form this route interrupts will do, from its fields ("Send
    /// 25 to bob"): the challenge page and the confirmation button say it
    /// (escaped). See [`Guard::summary`].
    ///
    /// ```
    /// use stepup_core::{Gate, Key, KeyId, KeyRing, Policy, Subject};
    /// use stepup_tower::{FromExtension, RequireStepUpLayer};
    ///
    /// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
    /// let layer = RequireStepUpLayer::new(Gate::new(&ring), Policy::level(2), FromExtension::<Subject>::new())
    ///     .summary(|form| Some(format!("Send {} to {}", form.get("amount")?, form.get("to")?)));
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn summary<F>(self, summary: F) -> Self
    where
        F: Fn(&stepup_http::FormFields) -> Option<String> + Send + Sync + 'static,
    {
        self.edit(|g| g.summary(summary))
    }

    /// Where the router keeps the path and query the client sent when it
    /// rewrote the URI (axum's `Router::nest` strips its prefix; the axum
    /// `StepUp` reads its `OriginalUri`): challenges return there and kept
    /// forms go back there.
    pub fn original_target(mut self, find: OriginalTarget) -> Self {
        Arc::make_mut(&mut self.config).original = Some(find);
        self
    }

    /// Never keeps this route's forms (one with a password or a one-time
    /// token in it): the page asks to submit the form again instead. See
    /// [`Guard::without_kept_forms`].
    pub fn without_kept_forms(self) -> Self {
        self.edit(Guard::without_kept_forms)
    }

    /// Binds this route to the request's exact action (see
    /// [`Guard::bind`]): the body is read once, the handler gets the
    /// [`BoundAction`](stepup_http::BoundAction) in its extensions, and a
    /// `bound` policy term needs a single-use grant for that action.
    pub fn bind(self, spec: stepup_http::ActionSpec) -> Self {
        self.edit(|g| g.bind(spec))
    }

    /// The policy for one bound action, when not the route's own (see
    /// [`Guard::bound_policy`]).
    pub fn bound_policy<F>(self, choose: F) -> Self
    where
        F: Fn(&stepup_http::BoundAction) -> Option<Arc<stepup_core::Policy>>
            + Send
            + Sync
            + 'static,
    {
        self.edit(|g| g.bound_policy(choose))
    }
}

impl<Src: Clone> Clone for Config<Src> {
    fn clone(&self) -> Self {
        Config {
            guard: self.guard.clone(),
            subjects: self.subjects.clone(),
            original: self.original,
        }
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
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    Src: SubjectSource,
    ReqBody: http_body::Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        let config = &*self.config;
        let subject = config.subjects.subject(&parts);
        if config.guard.binding().is_some() {
            // A bound route: its body is read once, here. The service that
            // was polled ready runs it; a clone stays for the next request.
            let ready = self.inner.clone();
            let inner = std::mem::replace(&mut self.inner, ready);
            return ResponseFuture::boxed(Box::pin(bound(
                inner,
                self.config.clone(),
                parts,
                body,
                subject,
            )));
        }
        let (pickup, verdict) = {
            let head = HeadAt::of(&parts, config.original);
            let pickup = config
                .guard
                .pickup(&head, subject.as_ref())
                .map(|p| (p, head.path_and_query().to_owned()));
            (pickup, config.guard.check(&parts, &head, subject))
        };
        match verdict {
            Verdict::Allow(assurance) => {
                parts.extensions.insert(assurance);
                match pickup {
                    None => ResponseFuture::inner_no_store(
                        self.inner.call(Request::from_parts(parts, body)),
                    ),
                    // A form POST: it may be coming back from the
                    // confirmation page. The service that was polled ready
                    // runs it; a clone stays for the next request.
                    Some((pickup, target)) => {
                        let ready = self.inner.clone();
                        let inner = std::mem::replace(&mut self.inner, ready);
                        ResponseFuture::boxed(Box::pin(pick_up(inner, parts, target, body, pickup)))
                    }
                }
            }
            Verdict::Deny(reply) => ResponseFuture::ready(into_response(reply)),
            Verdict::Interrupt(interruption) => match interruption.body_limit() {
                None => ResponseFuture::ready(into_response(interruption.into_reply())),
                Some(limit) => ResponseFuture::boxed(Box::pin(async move {
                    let body = read(body, limit).await;
                    Ok(into_response(interruption.answer(body.as_deref()).await))
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
async fn bound<S, Src, ReqBody, ResBody>(
    inner: S,
    config: Arc<Config<Src>>,
    mut parts: Parts,
    body: ReqBody,
    subject: Option<stepup_core::Subject>,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    Src: SubjectSource,
    ReqBody: http_body::Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<String>,
{
    let guard = &config.guard;
    let limit = guard
        .binding()
        .map_or(0, stepup_http::ActionSpec::body_limit);
    let Some(bytes) = read(body, limit).await else {
        let head = HeadAt::of(&parts, config.original);
        return Ok(into_response(guard.body_too_large(&head)));
    };
    let (action, pickup, target) = {
        let head = HeadAt::of(&parts, config.original);
        let action = match guard.read_action(&head, &bytes) {
            Ok(action) => action,
            Err(reply) => return Ok(into_response(reply)),
        };
        let pickup = guard.pickup(&head, subject.as_ref());
        (action, pickup, head.path_and_query().to_owned())
    };
    let verdict = {
        let head = HeadAt::of(&parts, config.original);
        guard.check_action(&parts, &head, subject, &action).await
    };
    match verdict {
        Verdict::Allow(assurance) => {
            parts.extensions.insert(assurance);
            parts.extensions.insert(action);
            match pickup {
                None => {
                    let mut response = call(inner, parts, ReqBody::from(bytes)).await?;
                    add_no_store(&mut response);
                    Ok(response)
                }
                Some(pickup) => open_read(inner, parts, target, bytes, pickup).await,
            }
        }
        Verdict::Deny(reply) => Ok(into_response(reply)),
        Verdict::Interrupt(interruption) => {
            Ok(into_response(interruption.answer(Some(&bytes)).await))
        }
    }
}

async fn call<S, ReqBody>(
    mut inner: S,
    parts: Parts,
    body: ReqBody,
) -> Result<S::Response, S::Error>
where
    S: Service<Request<ReqBody>>,
{
    inner.call(Request::from_parts(parts, body)).await
}

/// The body, if it has at most `limit` bytes and reads without error.
async fn read<B>(body: B, limit: usize) -> Option<Bytes>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collected = http_body_util::Limited::new(body, limit).collect().await;
    collected.ok().map(http_body_util::Collected::to_bytes)
}

/// An allowed form POST: a resumed form goes to `inner` with the marker
/// stripped and [`Resumed`](stepup_http::Resumed) in its extensions; a
/// second arrival gets its page; any other form goes on unchanged.
async fn pick_up<S, ReqBody, ResBody>(
    inner: S,
    parts: Parts,
    target: String,
    body: ReqBody,
    pickup: Pickup,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: http_body::Body + From<Bytes>,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<String>,
{
    let Some(bytes) = read(body, pickup.limit()).await else {
        return Ok(into_response(pickup.unreadable()));
    };
    open_read(inner, parts, target, bytes, pickup).await
}

/// [`pick_up`] once the body is read.
async fn open_read<S, ReqBody, ResBody>(
    mut inner: S,
    mut parts: Parts,
    target: String,
    bytes: Bytes,
    pickup: Pickup,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: http_body::Body + From<Bytes>,
    ResBody: From<String>,
{
    let method = parts.method.as_str().to_owned();
    match pickup.open(&method, &target, &bytes).await {
        Opened::Pass => {
            let mut response = inner
                .call(Request::from_parts(parts, ReqBody::from(bytes)))
                .await?;
            add_no_store(&mut response);
            Ok(response)
        }
        Opened::Resume {
            body,
            resumed,
            went,
        } => {
            parts.extensions.insert(resumed);
            // The body now has this length, whatever framing it came in.
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let body = ReqBody::from(Bytes::from(body));
            let mut response = inner.call(Request::from_parts(parts, body)).await?;
            add_no_store(&mut response);
            if let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                went.to(location).await;
            }
            Ok(response)
        }
        Opened::Answer(reply) => Ok(into_response(reply)),
    }
}
