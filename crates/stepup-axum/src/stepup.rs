//! `StepUp`: one value holding the gate, the engine, the subject source and
//! the settings, handing out the layer, the routes and the extractor's
//! context.

use std::fmt;
use std::sync::Arc;

use axum::Extension;
use stepup_challenge::routes::{ChallengeRoutes, Settings};
use stepup_challenge::{Engine, FactorStore, PasswordVerifier, StateStore};
use stepup_core::{Clock, Gate, Policy, ReturnTo};
use stepup_tower::{RequireStepUpLayer, SameOriginLayer, SubjectSource};

use crate::context::{ContextInner, SharedSubjects, StepUpContext};
use stepup_core::web::CookieSettings;

/// Step-up for an axum application: build it once, then take
/// [`require`](StepUp::require) layers for routes, [`routes`](StepUp::routes)
/// to nest at `/step-up`, and [`extension`](StepUp::extension) for the
/// [`Assurance`](crate::Assurance) extractor.
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
/// let stepup = StepUp::new(config.gate(), engine, FromExtension::<Subject>::new(), "https://bank.example");
///
/// async fn transfer(assurance: Assurance) -> String {
///     format!("sent at level {}", assurance.level())
/// }
///
/// let app: Router = Router::new()
///     .route("/transfer", post(transfer)
///         .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(300)))))
///     .nest("/step-up", stepup.routes())
///     .layer(stepup.extension());
///     // … and your login layer, which inserts the `Subject`.
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct StepUp<F, S, P> {
    pub(crate) context: StepUpContext,
    pub(crate) engine: Arc<Engine<F, S, P>>,
}

impl<F, S, P> Clone for StepUp<F, S, P> {
    fn clone(&self) -> Self {
        StepUp {
            context: self.context.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<F, S, P> fmt::Debug for StepUp<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> StepUp<F, S, P> {
    /// Step-up checked by `gate`, run by `engine`, for the subjects
    /// `subjects` finds, accepting challenge POSTs from `origin`. The gate
    /// and the engine's issuer must come from the same
    /// [`TokenConfig`](stepup_core::TokenConfig).
    pub fn new(
        gate: Gate,
        engine: Engine<F, S, P>,
        subjects: impl SubjectSource,
        origin: &str,
    ) -> Self {
        StepUp {
            context: StepUpContext {
                inner: Arc::new(ContextInner {
                    subjects: Arc::new(subjects),
                    settings: Settings::new(gate, origin),
                }),
            },
            engine: Arc::new(engine),
        }
    }

    /// Changes the settings while building; a clone configured later gets
    /// its own copy.
    fn configure(mut self, change: impl FnOnce(Settings) -> Settings) -> Self {
        let inner = Arc::make_mut(&mut self.context.inner);
        inner.settings = change(inner.settings.clone());
        self
    }

    /// The clock (tests use a `TestClock`; give the engine the same one).
    pub fn with_clock(self, clock: impl Clock) -> Self {
        self.configure(|s| s.with_clock(clock))
    }

    /// How the cookie is written (see [`CookieSettings::local_development`]
    /// for plain-http development).
    pub fn with_cookie(self, cookie: CookieSettings) -> Self {
        self.configure(|s| s.with_cookie(cookie))
    }

    /// Where the routes are nested (default `/step-up`; nest them at the
    /// same path) and where to return when a return path is refused
    /// (default `/`). A path that is not local keeps the default.
    pub fn mounted_at(self, path: &str, fallback: ReturnTo) -> Self {
        self.configure(|s| s.mounted_at(path, fallback))
    }

    /// Renders the challenge page with the application's own template instead
    /// of the built-in one. The forms must post `code` (or `password`) and
    /// `return_to` to `<base>/totp`, `<base>/password` and `<base>/recovery`;
    /// escape every text. (Or skip the page: the routes speak JSON too.)
    pub fn with_page_renderer(
        self,
        render: impl Fn(&stepup_challenge::ChallengePage) -> String + Send + Sync + 'static,
    ) -> Self {
        self.configure(|s| s.with_page_renderer(render))
    }

    /// The layer requiring `policy` on a route, with this step-up's gate,
    /// subjects, clock, cookie and challenge page.
    ///
    /// The policy's reason (see [`Policy::with_reason`]) is what the
    /// challenge page says: the layer passes the page an identifier of it.
    pub fn require(&self, policy: Policy) -> RequireStepUpLayer<SharedSubjects> {
        let c = &self.context.inner;
        let s = &c.settings;
        let note = s.register_policy(&policy);
        let layer =
            RequireStepUpLayer::new(s.gate().clone(), policy, SharedSubjects(c.subjects.clone()));
        let layer = match note {
            Some(id) => layer.page_note(&id),
            None => layer,
        };
        layer
            .clock(ClockRef(s.clock().clone()))
            .cookie_name(s.cookie_name())
            .challenge_page(s.page().as_str())
            .fallback_return(s.fallback().clone())
    }

    /// The origin check of the challenge routes for the application's own
    /// state-changing routes (log-in, log-out, transfers), with this
    /// step-up's origin: see [`SameOriginLayer`]. Put it outside
    /// [`require`](StepUp::require) (added after it), so a foreign request
    /// is refused first.
    ///
    /// ```
    /// use axum::{Router, routing::post};
    /// use stepup_axum::StepUp;
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
    /// use stepup_tower::FromExtension;
    ///
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default());
    /// let stepup = StepUp::new(config.gate(), engine, FromExtension::<Subject>::new(), "https://bank.example");
    ///
    /// let app: Router = Router::new()
    ///     .route("/transfer", post(|| async { "sent" }).route_layer(stepup.require(Policy::level(2))))
    ///     .route("/login", post(|| async { "welcome" }))
    ///     .route("/logout", post(|| async { "bye" }))
    ///     .route_layer(stepup.same_origin())
    ///     .nest("/step-up", stepup.routes()) // checks its own POSTs
    ///     .layer(stepup.extension());
    /// # let _ = app;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn same_origin(&self) -> SameOriginLayer {
        SameOriginLayer::new(self.context.inner.settings.origin())
    }

    /// The extension layer that lets the [`Assurance`](crate::Assurance)
    /// extractor verify the cookie on routes without a `require` layer.
    pub fn extension(&self) -> Extension<StepUpContext> {
        Extension(self.context.clone())
    }

    /// The context the extractor and the routes use.
    pub fn context(&self) -> &StepUpContext {
        &self.context
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<F, S, P> {
        &self.engine
    }

    /// The framework-neutral challenge routes these settings serve.
    pub fn challenge_routes(&self) -> ChallengeRoutes<F, S, P> {
        ChallengeRoutes::new(self.context.inner.settings.clone(), self.engine.clone())
    }
}

/// A clock shared with the layer.
#[derive(Clone, Debug)]
struct ClockRef(Arc<dyn Clock>);

impl Clock for ClockRef {
    fn now(&self) -> stepup_core::Timestamp {
        self.0.now()
    }
}
