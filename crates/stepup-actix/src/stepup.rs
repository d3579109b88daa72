//! `StepUp`: one value holding the gate, the engine, the subject source and
//! the settings, handing out the middleware, the challenge routes and the
//! extractor's configuration.

use std::fmt;
use std::sync::Arc;

use actix_web::{HttpRequest, Scope, web};
use stepup_challenge::routes::{ChallengeRoutes, Settings};
use stepup_challenge::{ChallengePage, Engine, FactorStore, PasswordVerifier, StateStore};
use stepup_core::web::CookieSettings;
use stepup_core::{Clock, Gate, Policy, ReturnTo, Subject};

use crate::middleware::{RequireStepUp, SubjectFn};
use crate::routes::handle;
use crate::same_origin::SameOrigin;

/// Step-up for an actix-web application: build it once, then take
/// [`require`](StepUp::require) middleware for resources and scopes,
/// [`configure`](StepUp::configure) (or [`scope`](StepUp::scope)) for the
/// challenge routes, and [`app_data`](StepUp::app_data) for the
/// [`Assurance`](crate::Assurance) extractor on routes without a middleware.
///
/// `origin` is the application's own origin (`https://bank.example`): every
/// challenge POST must come from it (`Origin` header, or
/// `Sec-Fetch-Site: same-origin`), or it is refused with 403.
///
/// The routes are those of the axum adapter — same paths, bodies, statuses,
/// headers and page — because both serve
/// [`ChallengeRoutes`](stepup_challenge::routes::ChallengeRoutes).
///
/// ```
/// use std::time::Duration;
/// use actix_web::{App, HttpRequest, web};
/// use stepup_actix::{Assurance, StepUp};
/// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
/// use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
///
/// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
/// // Who is logged in: usually actix-identity or actix-session.
/// let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
/// let stepup = StepUp::new(config.gate(), engine, who, "https://bank.example");
///
/// async fn transfer(assurance: Assurance) -> String {
///     format!("sent at level {}", assurance.level())
/// }
///
/// let app = App::new()
///     .app_data(stepup.app_data())
///     .configure(|c| stepup.configure(c))
///     .service(
///         web::resource("/transfer")
///             .wrap(stepup.require(Policy::level(2).max_age(Duration::from_secs(300))))
///             .route(web::post().to(transfer)),
///     );
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StepUp<F, S, P> {
    settings: Settings,
    engine: Arc<Engine<F, S, P>>,
    subjects: Arc<SubjectFn>,
}

impl<F, S, P> Clone for StepUp<F, S, P> {
    fn clone(&self) -> Self {
        StepUp {
            settings: self.settings.clone(),
            engine: self.engine.clone(),
            subjects: self.subjects.clone(),
        }
    }
}

impl<F, S, P> fmt::Debug for StepUp<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> StepUp<F, S, P> {
    /// Step-up checked by `gate`, run by `engine`, for the user `subjects`
    /// names, accepting challenge POSTs from `origin`. The gate and the
    /// engine's issuer must come from the same
    /// [`TokenConfig`](stepup_core::TokenConfig).
    pub fn new<W>(gate: Gate, engine: Engine<F, S, P>, subjects: W, origin: &str) -> Self
    where
        W: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        StepUp {
            settings: Settings::new(gate, origin),
            engine: Arc::new(engine),
            subjects: Arc::new(subjects),
        }
    }

    /// The clock (tests use a `TestClock`; give the engine the same one).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.settings = self.settings.with_clock(clock);
        self
    }

    /// How the cookie is written (see [`CookieSettings::local_development`]
    /// for plain-http development).
    pub fn with_cookie(mut self, cookie: CookieSettings) -> Self {
        self.settings = self.settings.with_cookie(cookie);
        self
    }

    /// Where the routes are mounted (default `/step-up`) and where to return
    /// when a return path is refused (default `/`). A path that is not local
    /// keeps the default.
    pub fn mounted_at(mut self, path: &str, fallback: ReturnTo) -> Self {
        self.settings = self.settings.mounted_at(path, fallback);
        self
    }

    /// Renders the challenge page with the application's own template
    /// (escaping every text is then its job).
    pub fn with_page_renderer(
        mut self,
        render: impl Fn(&ChallengePage) -> String + Send + Sync + 'static,
    ) -> Self {
        self.settings = self.settings.with_page_renderer(render);
        self
    }

    /// The middleware requiring `policy`, with this step-up's gate,
    /// subjects, clock, cookie and challenge page. The policy's reason is
    /// what the challenge page says (it gets an identifier of it).
    pub fn require(&self, policy: Policy) -> RequireStepUp {
        let s = &self.settings;
        let note = s.register_policy(&policy);
        let middleware = RequireStepUp::shared(s.gate().clone(), policy, self.subjects.clone())
            .shared_clock(s.clock().clone())
            .cookie_name(s.cookie_name())
            .challenge_page(s.page().as_str())
            .fallback_return(s.fallback().clone());
        match note {
            Some(id) => middleware.page_note(&id),
            None => middleware,
        }
    }

    /// The origin check of the challenge routes for the application's own
    /// state-changing routes (log-in, log-out, transfers), with this
    /// step-up's origin: see [`SameOrigin`]. Wrap it outside
    /// [`require`](StepUp::require), so a foreign request is refused first.
    ///
    /// ```
    /// use actix_web::{App, HttpRequest, web};
    /// use stepup_actix::StepUp;
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let who = |r: &HttpRequest| Some(Subject::new(r.headers().get("x-user")?.to_str().ok()?));
    /// let stepup = StepUp::new(config.gate(), engine, who, "https://bank.example");
    ///
    /// let app = App::new()
    ///     .service(
    ///         web::resource("/transfer")
    ///             .wrap(stepup.require(Policy::level(2)))
    ///             .wrap(stepup.same_origin()) // the last `wrap` runs first
    ///             .route(web::post().to(|| async { "sent" })),
    ///     )
    ///     .service(
    ///         web::resource("/login")
    ///             .wrap(stepup.same_origin())
    ///             .route(web::post().to(|| async { "welcome" })),
    ///     );
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn same_origin(&self) -> SameOrigin {
        SameOrigin::new(self.settings.origin())
    }

    /// What to give `App::app_data` so the [`Assurance`](crate::Assurance)
    /// extractor verifies the cookie on routes without a middleware (any
    /// valid step-up passes; check more with
    /// [`Assurance::require`](crate::Assurance::require)).
    pub fn app_data(&self) -> RequireStepUp {
        self.require(Policy::level(1))
    }

    /// The challenge routes as a scope at the mount path.
    pub fn scope(&self) -> Scope {
        let routes = ChallengeRoutes::new(self.settings.clone(), self.engine.clone());
        let subjects = self.subjects.clone();
        web::scope(self.settings.page().as_str()).default_service(web::to(
            move |request: HttpRequest, payload: web::Payload| {
                handle(routes.clone(), subjects.clone(), request, payload)
            },
        ))
    }

    /// Adds the challenge routes to an app: `App::new().configure(|c|
    /// stepup.configure(c))`.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.service(self.scope());
    }

    /// The settings the routes and the middleware share.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<F, S, P> {
        &self.engine
    }
}
