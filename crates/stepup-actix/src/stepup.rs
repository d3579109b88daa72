//! `StepUp`: one value holding the gate, the engine, the subject source and
//! the settings, handing out the middleware, the challenge routes and the
//! extractor's configuration.

use std::fmt;
use std::sync::Arc;

use actix_web::{HttpRequest, Scope, web};
use stepup_challenge::i18n::{Catalogue, Lang};
use stepup_challenge::routes::{
    ChallengeRoutes, Confirmations, Incoming, KeptForms, LanguageChooser, PageRenderer,
};
use stepup_challenge::{
    ChallengePage, Engine, FactorStore, FormLimits, PasswordVerifier, StateStore,
};
use stepup_core::{Assurance, Policy, ReturnTo, Subject};
use stepup_http::{CookieSettings, Settings};

use crate::middleware::{Config, RequireStepUp, StepUpData, SubjectFn};
use crate::routes::handle;
use crate::same_origin::SameOrigin;

/// Step-up for an actix-web application: build it once from the engine (its
/// issuer gives the gate, its clock is the clock: they cannot disagree),
/// then take
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
/// let stepup = StepUp::new(engine, who, "https://bank.example");
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
    renderer: Option<PageRenderer>,
    catalogue: Option<Arc<Catalogue>>,
    language: Option<LanguageChooser>,
    forms: FormLimits,
    upstreams: Vec<Arc<dyn stepup_challenge::Upstream>>,
}

impl<F, S, P> Clone for StepUp<F, S, P> {
    fn clone(&self) -> Self {
        StepUp {
            settings: self.settings.clone(),
            engine: self.engine.clone(),
            subjects: self.subjects.clone(),
            renderer: self.renderer.clone(),
            catalogue: self.catalogue.clone(),
            language: self.language.clone(),
            forms: self.forms,
            upstreams: self.upstreams.clone(),
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
    /// Step-up running `engine`, for the user `subjects` names, accepting
    /// challenge POSTs from `origin`. The gate is the engine issuer's
    /// ([`Issuer::gate`](stepup_core::Issuer::gate)) and the clock the
    /// engine's ([`Engine::with_clock`]).
    pub fn new<W>(engine: Engine<F, S, P>, subjects: W, origin: &str) -> Self
    where
        W: Fn(&HttpRequest) -> Option<Subject> + Send + Sync + 'static,
    {
        let settings =
            Settings::new(engine.issuer().gate(), origin).with_shared_clock(engine.clock().clone());
        let engine = Arc::new(engine);
        let forms = FormLimits::default();
        let settings = KeptForms::attach(settings, &engine, forms);
        let settings = Confirmations::attach(settings, &engine);
        // The guards' refusals open the engine's funnel journeys.
        let settings = settings.with_funnel(engine.clone());
        StepUp {
            settings,
            engine,
            subjects: Arc::new(subjects),
            renderer: None,
            catalogue: None,
            language: None,
            forms,
            upstreams: Vec::new(),
        }
    }

    /// How the cookie is written (see
    /// [`CookieSettings::insecure_local_development`] for plain-http local
    /// development).
    #[must_use]
    pub fn with_cookie(mut self, cookie: CookieSettings) -> Self {
        self.settings = self.settings.with_cookie(cookie);
        self
    }

    /// How the client context of a request is taken (default: the
    /// client address's IPv4 /24 or IPv6 /48 and the browser family): the
    /// challenge routes mint every token in it, and policies with a
    /// `same_context` term compare it.
    ///
    /// ```
    /// # use stepup_core::{Key, KeyId, KeyRing, TokenConfig, Subject};
    /// # use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_http::ContextSettings;
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// # use stepup_actix::StepUp;
    /// # let stepup = StepUp::new(engine, |_: &actix_web::HttpRequest| None::<Subject>, "https://bank.example");
    /// let stepup = stepup.with_client_context(ContextSettings::default().ipv4_prefix(16));
    /// assert_eq!(stepup.settings().client_context(), Some(&ContextSettings::default().ipv4_prefix(16)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_client_context(mut self, context: stepup_http::ContextSettings) -> Self {
        self.settings = self.settings.clone().with_client_context(context);
        self
    }

    /// Tokens without a client context: `same_context` terms are never met.
    #[must_use]
    pub fn without_client_context(mut self) -> Self {
        self.settings = self.settings.clone().without_client_context();
        self
    }

    /// Where the challenge routes are mounted (default `/step-up`) and
    /// where to return when a return path is refused (default `/`):
    /// [`configure`](StepUp::configure) mounts them there, and every
    /// middleware sends browsers there. A path that is not local, or
    /// carries a query, keeps the default.
    #[must_use]
    pub fn mounted_at(mut self, path: &str, fallback: ReturnTo) -> Self {
        let settings = self.settings.clone().mounted_at(path, fallback);
        self.settings = KeptForms::attach(settings, &self.engine, self.forms);
        self
    }

    /// How forms interrupted by a step-up are kept (default: at most
    /// 8 KiB, for 5 minutes, at most 3 per login session within that
    /// time). A browser's same-origin form POST that needs a step-up is
    /// kept and comes back once from a confirmation page; see
    /// [`KeptForms`].
    #[must_use]
    pub fn with_form_limits(mut self, limits: FormLimits) -> Self {
        self.forms = limits;
        self.settings = KeptForms::attach(self.settings.clone(), &self.engine, limits);
        self
    }

    /// Renders the challenge page with the application's own template
    /// (escaping is then the application's job).
    #[must_use]
    pub fn with_page_renderer(
        mut self,
        render: impl Fn(&ChallengePage) -> String + Send + Sync + 'static,
    ) -> Self {
        self.renderer = Some(Arc::new(render));
        self
    }

    /// Offers a step-up at an upstream identity provider on the challenge
    /// page, beside the local methods (stepup-oidc's `OidcMethod`; see
    /// [`ChallengeRoutes::with_upstream`]). Its callback is
    /// `{origin}{mount}/upstream/{name}/callback`.
    #[must_use]
    pub fn with_upstream(mut self, upstream: Arc<dyn stepup_challenge::Upstream>) -> Self {
        self.upstreams.push(upstream);
        self
    }

    /// The texts of the challenge pages and their sentences: English and
    /// German built in, with the application's additions and replacements
    /// (see [`Catalogue::insert`]).
    #[must_use]
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Self {
        self.catalogue = Some(Arc::new(catalogue));
        self
    }

    /// Chooses the language of the challenge pages per request (the
    /// user's setting, one language for everyone …); `None` leaves it to
    /// `Accept-Language`, then English.
    ///
    /// ```
    /// use actix_web::HttpRequest;
    /// use stepup_actix::StepUp;
    /// use stepup_actix::i18n::{Catalogue, Lang, Text};
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
    ///
    /// fn who(_: &HttpRequest) -> Option<Subject> { None }
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let stepup = StepUp::new(engine, who, "https://bank.example")
    ///     .with_catalogue(Catalogue::new().with(Lang::DE, Text::Confirm, "Weiter"))
    ///     // Everyone reads German.
    ///     .with_language(|_| Some(Lang::DE));
    /// # let _ = stepup;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn with_language(
        mut self,
        choose: impl Fn(&Incoming<'_>) -> Option<Lang> + Send + Sync + 'static,
    ) -> Self {
        self.language = Some(Arc::new(choose));
        self
    }

    /// Middleware requiring `policy`; the page shows the policy's reason
    /// and offers only the methods that can satisfy it.
    pub fn require(&self, policy: Policy) -> RequireStepUp {
        RequireStepUp::shared(self.settings.guard(policy), self.subjects.clone())
    }

    /// Middleware choosing its policy per request from the request and the
    /// current assurance — "a `DELETE` needs a passkey". Return shared
    /// policies (`Arc`) built once.
    pub fn require_per_request<C>(&self, choose: C) -> RequireStepUp
    where
        C: Fn(&HttpRequest, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
    {
        RequireStepUp::shared(
            self.settings.guard_per_request(choose),
            self.subjects.clone(),
        )
    }

    /// Middleware asking the application's `assess` hook how risky each
    /// request is — a new device cookie, its own geo-IP database,
    /// impossible travel; [`RiskFacts`](stepup_http::RiskFacts) say whether
    /// the request comes from the network and browser of the last step-up
    /// — then requiring that risk's policy from `policies`.
    pub fn require_by_risk<A>(
        &self,
        assess: A,
        policies: stepup_http::RiskPolicies,
    ) -> RequireStepUp
    where
        A: Fn(&HttpRequest, &stepup_http::RiskFacts<'_>) -> stepup_http::Risk
            + Send
            + Sync
            + 'static,
    {
        RequireStepUp::shared(
            self.settings.guard_by_risk(assess, policies),
            self.subjects.clone(),
        )
    }

    /// The origin check of the challenge routes, for the application's own
    /// state-changing routes.
    pub fn same_origin(&self) -> SameOrigin {
        SameOrigin::new(self.settings.origin())
    }

    /// What the [`Assurance`](crate::Assurance) extractor needs on routes
    /// without a middleware: `App::new().app_data(stepup.app_data())`.
    pub fn app_data(&self) -> StepUpData {
        StepUpData(Config {
            guard: self.settings.guard(Policy::level(1)),
            subjects: self.subjects.clone(),
        })
    }

    /// The challenge routes as a scope at the mount path.
    pub fn scope(&self) -> Scope {
        let mut routes = ChallengeRoutes::new(self.settings.clone(), self.engine.clone());
        if let Some(render) = &self.renderer {
            routes = routes.with_page_renderer(render.clone());
        }
        if let Some(catalogue) = &self.catalogue {
            routes = routes.with_catalogue(catalogue.clone());
        }
        if let Some(choose) = &self.language {
            routes = routes.with_language(choose.clone());
        }
        for upstream in &self.upstreams {
            routes = routes.with_upstream(upstream.clone());
        }
        let subjects = self.subjects.clone();
        web::scope(self.settings.page().as_str()).default_service(web::to(
            move |request: HttpRequest, payload: web::Payload| {
                handle(routes.clone(), subjects.clone(), request, payload)
            },
        ))
    }

    /// Mounts the challenge routes: `App::new().configure(|c| stepup.configure(c))`.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        config.service(self.scope());
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<F, S, P> {
        &self.engine
    }
}
