//! `StepUp`: one value holding the gate, the engine, the subject source and
//! the settings, handing out the layer, the routes and the extractor's
//! context.

use std::fmt;
use std::sync::Arc;

use axum::Extension;
use stepup_challenge::{Engine, FactorStore, PasswordVerifier, StateStore};
use stepup_core::{Clock, Gate, Policy, ReturnTo, SystemClock};
use stepup_tower::{ChallengeTarget, RequireStepUpLayer, SubjectSource};

use crate::context::{ContextInner, Reasons, SharedSubjects, StepUpContext};
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
                    gate,
                    subjects: Arc::new(subjects),
                    clock: Arc::new(SystemClock),
                    cookie: CookieSettings::default(),
                    target: ChallengeTarget::default(),
                    origin: origin.trim_end_matches('/').to_owned(),
                    reasons: Reasons::default(),
                    renderer: None,
                }),
            },
            engine: Arc::new(engine),
        }
    }

    fn context_mut(&mut self) -> &mut ContextInner {
        // Settings are applied while building; a clone configured later gets
        // its own copy.
        Arc::make_mut(&mut self.context.inner)
    }

    /// The clock (tests use a `TestClock`; give the engine the same one).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.context_mut().clock = Arc::new(clock);
        self
    }

    /// How the cookie is written (see [`CookieSettings::local_development`]
    /// for plain-http development).
    pub fn with_cookie(mut self, cookie: CookieSettings) -> Self {
        self.context_mut().cookie = cookie;
        self
    }

    /// Where the routes are nested (default `/step-up`; nest them at the
    /// same path) and where to return when a return path is refused
    /// (default `/`). A path that is not local keeps the default.
    pub fn mounted_at(mut self, path: &str, fallback: ReturnTo) -> Self {
        if let Ok(page) = ReturnTo::parse(path)
            && !page.as_str().contains(['?', '#'])
        {
            self.context_mut().target = ChallengeTarget {
                page,
                fallback,
                note: None,
            };
        }
        self
    }

    /// Renders the challenge page with the application's own template instead
    /// of the built-in one. The forms must post `code` (or `password`) and
    /// `return_to` to `<base>/totp`, `<base>/password` and `<base>/recovery`;
    /// escape every text. (Or skip the page: the routes speak JSON too.)
    pub fn with_page_renderer(
        mut self,
        render: impl Fn(&stepup_challenge::ChallengePage) -> String + Send + Sync + 'static,
    ) -> Self {
        self.context_mut().renderer = Some(Arc::new(render));
        self
    }

    /// The layer requiring `policy` on a route, with this step-up's gate,
    /// subjects, clock, cookie and challenge page.
    ///
    /// The policy's reason (see [`Policy::with_reason`]) is what the
    /// challenge page says: the layer passes the page an identifier of it.
    pub fn require(&self, policy: Policy) -> RequireStepUpLayer<SharedSubjects> {
        let c = &self.context.inner;
        let note = policy
            .reason()
            .and_then(|reason| c.reasons.register(reason));
        let layer =
            RequireStepUpLayer::new(c.gate.clone(), policy, SharedSubjects(c.subjects.clone()));
        let layer = match note {
            Some(id) => layer.page_note(&id),
            None => layer,
        };
        layer
            .clock(ClockRef(c.clock.clone()))
            .cookie_name(c.cookie.name())
            .challenge_page(c.target.page.as_str())
            .fallback_return(c.target.fallback.clone())
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
}

/// A clock shared with the layer.
#[derive(Clone, Debug)]
struct ClockRef(Arc<dyn Clock>);

impl Clock for ClockRef {
    fn now(&self) -> stepup_core::Timestamp {
        self.0.now()
    }
}
