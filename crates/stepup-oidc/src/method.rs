//! The challenge page's "confirm at your identity provider": an
//! [`OidcStepUp`] as an [`Upstream`] of the challenge routes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use stepup_challenge::{
    StoreError, Upstream, UpstreamDone, UpstreamError, UpstreamFinish, UpstreamStart,
};
use stepup_core::{Method, Subject};
use stepup_http::BoxFuture;
use stepup_store::StateStore;

use crate::{OidcError, OidcStepUp, StepUpRequest, level_method};

/// The user's subject identifier at the provider (the `sub` of their
/// login there), or `None` when they have no account there.
pub type ProviderSubject = Arc<dyn Fn(&Subject) -> Option<String> + Send + Sync>;

/// An [`OidcStepUp`] offered on the challenge page: "Continue at your
/// identity provider", routed under `/upstream/{name}/` by
/// [`ChallengeRoutes::with_upstream`](stepup_challenge::routes::ChallengeRoutes::with_upstream).
///
/// Each step-up asks for a login right now (`max_age=0`,
/// `prompt=login`): a provider session from this morning proves nothing
/// about who is at the keyboard now; [`max_age`](Self::max_age) relaxes
/// it.
///
/// ```no_run
/// # async fn wire(engine: std::sync::Arc<stepup_challenge::Engine<stepup_challenge::MemoryFactorStore, stepup_challenge::MemoryStateStore>>,
/// #     settings: stepup_challenge::routes::Settings, issuer: stepup_core::Issuer,
/// #     state: stepup_challenge::MemoryStateStore) -> Result<(), stepup_oidc::OidcError> {
/// use std::sync::Arc;
/// use stepup_challenge::routes::ChallengeRoutes;
/// use stepup_oidc::{OidcConfig, OidcMethod, OidcStepUp};
///
/// let config = OidcConfig::new(
///     "https://id.example",
///     "bank",
///     // The routes' callback: {origin}{mount}/upstream/{name}/callback
///     "https://bank.example/step-up/upstream/acme/callback",
/// )
/// .client_secret("s3cret")
/// .acr("urn:example:loa:2", 2);
/// // The gate's level table must place the provider's levels (`idp-level-2`
/// // at level 2): `TokenConfig::with_levels(config.place_levels(…))`.
/// let oidc = OidcStepUp::discover(config, issuer, state).await?;
/// // This application logs in at the provider: its subject ids are the `sub`s.
/// let linked = Arc::new(|subject: &stepup_core::Subject| Some(subject.id().to_owned()));
/// let routes = ChallengeRoutes::new(settings, engine)
///     .with_upstream(Arc::new(OidcMethod::new(oidc, "acme", "Confirm at Acme ID", linked)));
/// # Ok(()) }
/// ```
pub struct OidcMethod<S> {
    step_up: OidcStepUp<S>,
    name: String,
    title: String,
    max_age: Option<Duration>,
    provider_subject: ProviderSubject,
}

impl<S> fmt::Debug for OidcMethod<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcMethod")
            .field("name", &self.name)
            .field("step_up", &self.step_up)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl<S: StateStore> OidcMethod<S> {
    /// `step_up` as the upstream `name` (in paths: 1 to 32 of `a-z`,
    /// `0-9`, `-`), offered under `title` to the users `provider_subject`
    /// finds a `sub` at the provider for (`None`: not linked, not
    /// offered). The ID token must carry exactly that `sub`, so say where
    /// it really is: an application that logs in at this provider and
    /// uses its `sub` as the subject id answers `Some(subject.id())`; one
    /// with ids of its own looks up the link it stored at login.
    pub fn new(
        step_up: OidcStepUp<S>,
        name: &str,
        title: &str,
        provider_subject: ProviderSubject,
    ) -> Self {
        OidcMethod {
            step_up,
            name: name.to_owned(),
            title: title.to_owned(),
            max_age: Some(Duration::ZERO),
            provider_subject,
        }
    }

    /// How recent the login at the provider must be (`None`: any age; the
    /// proofs are dated at it, so a policy's freshness still decides).
    #[must_use]
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_age = max_age;
        self
    }

    /// The step-up it runs.
    pub fn step_up(&self) -> &OidcStepUp<S> {
        &self.step_up
    }
}

/// What the routes say of an [`OidcError`].
fn upstream_error(error: OidcError) -> UpstreamError {
    match error {
        OidcError::UnknownState | OidcError::OtherSession => UpstreamError::Expired,
        OidcError::Refused(_) => UpstreamError::Refused,
        OidcError::NoAcrForLevel(_) => UpstreamError::NoLevel,
        OidcError::IssuerMismatch
        | OidcError::NoCode
        | OidcError::Exchange(_)
        | OidcError::NoIdToken
        | OidcError::IdToken(_)
        | OidcError::OtherSubject => UpstreamError::Rejected(error.to_string()),
        OidcError::Discovery(_)
        | OidcError::Config(_)
        | OidcError::Store(_)
        | OidcError::Issue(_) => UpstreamError::Unavailable(error.to_string()),
    }
}

impl<S: StateStore> Upstream for OidcMethod<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn title(&self) -> &str {
        &self.title
    }

    fn origin(&self) -> &str {
        self.step_up.authorization_origin()
    }

    fn levels(&self) -> Vec<(u8, Method)> {
        self.step_up
            .config()
            .levels()
            .into_iter()
            .map(|level| (level, level_method(level)))
            .collect()
    }

    fn linked<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
        let linked = (self.provider_subject)(subject).is_some();
        Box::pin(async move { Ok(linked) })
    }

    fn start<'a>(
        &'a self,
        start: UpstreamStart<'a>,
    ) -> BoxFuture<'a, Result<String, UpstreamError>> {
        Box::pin(async move {
            let provider_subject =
                (self.provider_subject)(start.subject).ok_or(UpstreamError::NotLinked)?;
            let mut request = StepUpRequest::new(
                start.subject,
                &provider_subject,
                start.level,
                start.return_to,
            );
            if let Some(max_age) = self.max_age {
                request = request.max_age(max_age);
            }
            match self.step_up.start(request).await {
                Ok(url) => Ok(url.to_string()),
                // Before the browser left, a refusal is the provider's
                // pushed-request endpoint failing: nothing the user did.
                Err(OidcError::Refused(e)) => Err(UpstreamError::Unavailable(e)),
                Err(e) => Err(upstream_error(e)),
            }
        })
    }

    fn finish<'a>(
        &'a self,
        finish: UpstreamFinish<'a>,
    ) -> BoxFuture<'a, Result<UpstreamDone, UpstreamError>> {
        Box::pin(async move {
            let finished = self
                .step_up
                .finish_in_context(
                    finish.subject,
                    finish.query,
                    finish.previous,
                    finish.context,
                )
                .await
                .map_err(upstream_error)?;
            Ok(UpstreamDone::new(
                finished.token,
                level_method(finished.level),
                finished.return_to,
            ))
        })
    }
}
