//! `StepUp`: one value holding the gate, the engine, the subject source and
//! the settings, handing out the layer, the routes and the extractor's
//! context.

use std::fmt;
use std::sync::Arc;

use axum::Extension;
use axum::http::request::Parts;
use stepup_challenge::i18n::{Catalogue, Lang};
use stepup_challenge::routes::{
    ChallengeRoutes, Confirmations, Incoming, KeptForms, LanguageChooser, PageRenderer,
};
use stepup_challenge::{
    ChallengePage, Engine, FactorStore, FormLimits, PasswordVerifier, StateStore,
};
use stepup_core::{Assurance, Policy, ReturnTo};
use stepup_http::{CookieSettings, Settings};
use stepup_tower::{RequireStepUpLayer, SameOriginLayer, SubjectSource};

use crate::context::{ContextInner, SharedSubjects, StepUpContext};

/// Step-up for an axum application: build it once, then take
/// [`require`](StepUp::require) layers for routes, [`routes`](StepUp::routes)
/// to merge (they mount themselves at `/step-up`, or where
/// [`mounted_at`](StepUp::mounted_at) says), and [`layer`](StepUp::layer)
/// for the [`Assurance`](crate::Assurance) extractor. Built from the
/// engine: its issuer gives the gate and its clock is the clock, so they
/// cannot disagree.
///
/// `origin` is the application's own origin (`https://bank.example`): every
/// challenge POST must come from it (`Origin` header, or
/// `Sec-Fetch-Site: same-origin`), or it is refused with 403.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::post};
/// use stepup_axum::{Assurance, StepUp};
/// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
/// use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
/// use stepup_tower::FromExtension;
///
/// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
/// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
/// let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example");
///
/// async fn transfer(assurance: Assurance) -> String {
///     format!("sent at level {}", assurance.level())
/// }
///
/// let app: Router = Router::new()
///     .route("/transfer", post(transfer)
///         .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(300)))))
///     .merge(stepup.routes())
///     .layer(stepup.layer());
///     // … and your login layer, which inserts the `Subject`.
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StepUp<F, S, P> {
    pub(crate) settings: Settings,
    pub(crate) subjects: Arc<dyn SubjectSource>,
    pub(crate) engine: Arc<Engine<F, S, P>>,
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
            subjects: self.subjects.clone(),
            engine: self.engine.clone(),
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
    /// Step-up run by `engine`, for the subjects `subjects` finds, accepting
    /// challenge POSTs from `origin`. The gate is the engine issuer's
    /// ([`Issuer::gate`](stepup_core::Issuer::gate)) and the clock the
    /// engine's ([`Engine::with_clock`]).
    pub fn new(engine: Engine<F, S, P>, subjects: impl SubjectSource, origin: &str) -> Self {
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
            subjects: Arc::new(subjects),
            engine,
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
    /// # use stepup_axum::StepUp;
    /// # let stepup = StepUp::new(engine, stepup_tower::FromExtension::<Subject>::new(), "https://bank.example");
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
    /// [`routes`](StepUp::routes) mount themselves there and every layer
    /// sends browsers there. A path that is not local, or carries a query,
    /// keeps the default.
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
    /// use stepup_axum::StepUp;
    /// use stepup_axum::i18n::{Catalogue, Lang, Text};
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore, TotpConfig};
    /// use stepup_core::{Key, KeyId, KeyRing, Subject, TokenConfig};
    /// use stepup_tower::FromExtension;
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default())
    ///     .with_totp(TotpConfig::new("Example Bank").with_digits(8));
    /// let fr = Lang::parse("fr").ok_or("not a language")?;
    /// let catalogue = Catalogue::new()
    ///     .with(fr, Text::ChallengeTitle, "Confirmez qu'il s'agit bien de vous")
    ///     .with(Lang::DE, Text::Confirm, "Weiter");
    /// let stepup = StepUp::new(engine, FromExtension::<Subject>::new(), "https://bank.example")
    ///     .with_catalogue(catalogue)
    ///     .with_language(move |request| match request.subject.as_ref().map(|s| s.id()) {
    ///         Some("jacques") => Some(fr),
    ///         _ => None,
    ///     });
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

    /// A layer requiring `policy` (for `route_layer`); the page shows the
    /// policy's reason and offers only the methods that can satisfy it.
    pub fn require(&self, policy: Policy) -> RequireStepUpLayer<SharedSubjects> {
        self.layer_of(self.settings.guard(policy))
    }

    /// The layer running `guard` for the application's subjects, with the
    /// client address the routes use and the original URI.
    fn layer_of(&self, guard: stepup_http::Guard<Parts>) -> RequireStepUpLayer<SharedSubjects> {
        RequireStepUpLayer::from_guard(
            guard
                .client_address(client_ip)
                .route_template(|parts: &Parts| {
                    parts
                        .extensions
                        .get::<axum::extract::MatchedPath>()
                        .map(|m| m.as_str().to_owned())
                }),
            SharedSubjects(self.subjects.clone()),
        )
        .original_target(crate::extract::original_uri)
    }

    /// A layer asking the application's `assess` hook how risky each
    /// request is — a new device cookie, its own geo-IP database,
    /// impossible travel; [`RiskFacts`](stepup_http::RiskFacts) say whether
    /// the request comes from the network and browser of the last step-up
    /// — then requiring that risk's policy from `policies`.
    pub fn require_by_risk<A>(
        &self,
        assess: A,
        policies: stepup_http::RiskPolicies,
    ) -> RequireStepUpLayer<SharedSubjects>
    where
        A: Fn(&Parts, &stepup_http::RiskFacts<'_>) -> stepup_http::Risk + Send + Sync + 'static,
    {
        self.layer_of(self.settings.guard_by_risk(assess, policies))
    }

    /// A layer choosing its policy per request from the request parts and
    /// the current assurance — "a `DELETE` needs a passkey". Return shared
    /// policies (`Arc`) built once.
    pub fn require_per_request<C>(&self, choose: C) -> RequireStepUpLayer<SharedSubjects>
    where
        C: Fn(&Parts, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
    {
        self.layer_of(self.settings.guard_per_request(choose))
    }

    /// The origin check of the challenge routes, for the application's own
    /// state-changing routes.
    pub fn same_origin(&self) -> SameOriginLayer {
        SameOriginLayer::new(self.settings.origin())
    }

    /// The layer that gives the [`Assurance`](crate::Assurance) extractor
    /// its configuration: `.layer(stepup.layer())` on the router.
    pub fn layer(&self) -> Extension<StepUpContext> {
        Extension(self.context())
    }

    /// The extractor's configuration.
    pub fn context(&self) -> StepUpContext {
        StepUpContext {
            inner: Arc::new(ContextInner {
                subjects: self.subjects.clone(),
                guard: self
                    .settings
                    .guard(Policy::level(1))
                    .client_address(client_ip),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<F, S, P> {
        &self.engine
    }

    /// The framework-neutral challenge routes.
    pub fn challenge_routes(&self) -> ChallengeRoutes<F, S, P> {
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
        routes
    }
}

/// The client's address as the challenge routes take it.
fn client_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    crate::ClientAddress::of(parts).map(|crate::ClientAddress(ip)| ip)
}
