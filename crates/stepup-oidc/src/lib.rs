//! Step-up at an upstream OpenID Provider.
//!
//! Many applications do not own their users' factors: login is OpenID
//! Connect against Keycloak, Auth0, Okta, Entra ID or Zitadel, and the
//! provider must do the step-up. [`OidcStepUp`] closes the loop:
//!
//! 1. [`OidcStepUp::start`] turns what the policy needs into an
//!    authorization request — `acr_values` and an essential `acr` claim
//!    (OIDC Core §5.5.1.1) for the level's accepted values, `max_age` (0
//!    for "right now") and `prompt=login` when freshness is required,
//!    `login_hint`, PKCE S256, a nonce and a state — pushed to the provider
//!    first (PAR, RFC 9126) when it offers it, so the browser cannot edit
//!    it. What the callback needs is kept in one single-use record of the
//!    [`StateStore`].
//! 2. [`OidcStepUp::finish`] takes that record (a replayed state finds
//!    nothing), checks the RFC 9207 `iss` response parameter, exchanges the
//!    code with the PKCE verifier, and verifies the ID token beyond what the
//!    `openidconnect` crate checks by default: the `acr` is one the request
//!    accepts, `auth_time` is not older than the request (minus the allowed
//!    skew), the nonce is the request's, and **`sub` is the logged-in
//!    user's provider id** (no stepping up as someone else). It then mints
//!    stepup's ordinary assurance token: a proof of the `acr`'s level and
//!    one per RFC 8176 `amr` value it knows, each dated at `auth_time`.
//!
//! The level proof is a custom method per level (`idp-level-2`, …, see
//! [`level_method`]); [`OidcConfig::place_levels`] places them in the
//! application's [`LevelTable`], so a policy such as "level 2 within 5
//! minutes" is met by a local TOTP code or by the provider alike.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AsyncHttpClient, AuthenticationContextClass, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, HttpRequest, HttpResponse, IdTokenVerifier, IssuerUrl, JsonWebKeySetUrl,
    LoginHint, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    SignatureVerificationError, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stepup_core::{
    Clock, IssuedToken, Issuer, LevelTable, Method, Proof, ReturnTo, Subject, SystemClock,
    Timestamp, ct,
};
use stepup_store::StateStore;

/// The provider's signing keys, and when they were last read again.
struct Keys {
    set: openidconnect::core::CoreJsonWebKeySet,
    refreshed_at: Option<u64>,
}

/// At most one reading of the keys per this many seconds after discovery
/// (an ID token naming an unknown key triggers one).
const KEYS_REFRESH_EVERY: u64 = 60;

/// The verified claims of an ID token.
type IdTokenClaims = openidconnect::IdTokenClaims<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreGenderClaim,
>;

mod method;
pub use method::{OidcMethod, ProviderSubject};

/// The provider metadata stepup reads beyond the standard fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StepUpMetadata {
    /// RFC 9126: where authorization requests are pushed.
    #[serde(default)]
    pushed_authorization_request_endpoint: Option<String>,
    /// RFC 9126: the provider takes pushed requests only.
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    /// RFC 9207: the provider sends `iss` in every authorization response.
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl AdditionalProviderMetadata for StepUpMetadata {}

type Metadata = ProviderMetadata<
    StepUpMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// The custom method that records a step-up to level `level` at the
/// provider (`idp-level-2`): an `acr` the configuration maps to that level.
///
/// ```
/// assert_eq!(stepup_oidc::level_method(2).to_string(), "custom:idp-level-2");
/// ```
pub fn level_method(level: u8) -> Method {
    // Lower-case letters, digits and dashes, at most 14 characters: always
    // a valid custom method name.
    #[allow(clippy::expect_used)]
    Method::custom(&format!("idp-level-{level}")).expect("a valid custom method name")
}

/// The RFC 8176 `amr` values stepup maps by default, and the method each
/// proves: `pwd` the password, `otp` a one-time code (TOTP), `sms` an SMS
/// code. Key-based values (`hwk`, `swk`) mean different things at
/// different providers (a push approval may say `swk`): map them yourself
/// with [`OidcConfig::amr`] if your provider's meaning is a passkey's.
/// Whatever is mapped, the minted token never reaches a higher level than
/// the `acr` proves (see [`OidcStepUp::finish`]).
pub const DEFAULT_AMR: [(&str, Method); 3] = [
    ("pwd", Method::Password),
    ("otp", Method::Totp),
    ("sms", Method::SmsCode),
];

/// How the required `acr` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcrRequest {
    /// Both `acr_values` and an essential `acr` claim in the `claims`
    /// parameter (the default: providers honour one or the other).
    Both,
    /// `acr_values` only (voluntary: the provider may answer with less,
    /// which [`OidcStepUp::finish`] refuses).
    Values,
    /// An essential `acr` claim only (some providers let `acr_values`
    /// override an essential claim).
    EssentialClaim,
    /// Microsoft Entra ID's authentication contexts: the `acr` values of
    /// the configuration are context ids (`c1` … `c99`), asked for as an
    /// essential `acrs` claim (`"value"`: the level's lowest) in the
    /// `claims` parameter, and read from the ID token's `acrs` array
    /// (Entra's own `acr` is ignored). The level is the highest mapped
    /// context in it; none of the accepted ones is a refusal.
    EntraAcrs,
}

/// Whether authorization requests are pushed (RFC 9126).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Par {
    /// When the provider offers a pushed-request endpoint (the default).
    Auto,
    /// Never (the request goes in the URL).
    Never,
}

/// What [`OidcStepUp`] needs to know about the provider and the
/// application.
///
/// ```
/// use std::time::Duration;
/// use stepup_oidc::OidcConfig;
/// let config = OidcConfig::new(
///     "https://id.example.com/realms/bank",
///     "bank-web",
///     "https://bank.example.com/step-up/oidc/callback",
/// )
/// .client_secret("from the environment")
/// .acr("urn:example:loa:1", 1)
/// .acr("urn:example:loa:2", 2)
/// .skew(Duration::from_secs(30));
/// assert_eq!(config.level_of_acr("urn:example:loa:2"), Some(2));
/// ```
#[derive(Clone)]
pub struct OidcConfig {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_url: String,
    acr_levels: Vec<(String, u8)>,
    amr_methods: Vec<(String, Method)>,
    skew: Duration,
    lifetime: Duration,
    timeout: Duration,
    acr_request: AcrRequest,
    par: Par,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("redirect_url", &self.redirect_url)
            .field("acr_levels", &self.acr_levels)
            .field("amr_methods", &self.amr_methods)
            .finish_non_exhaustive()
    }
}

impl OidcConfig {
    /// The provider `issuer` (its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`), this application's
    /// `client_id` there, and the full URL of the callback route.
    pub fn new(issuer: &str, client_id: &str, redirect_url: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: None,
            redirect_url: redirect_url.to_owned(),
            acr_levels: Vec::new(),
            amr_methods: DEFAULT_AMR
                .iter()
                .map(|(amr, m)| ((*amr).to_owned(), *m))
                .collect(),
            skew: Duration::from_secs(60),
            lifetime: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
            acr_request: AcrRequest::Both,
            par: Par::Auto,
        }
    }

    /// The client secret (`client_secret_basic`).
    #[must_use]
    pub fn client_secret(mut self, secret: &str) -> OidcConfig {
        self.client_secret = Some(secret.to_owned());
        self
    }

    /// The provider's `acr` value `acr` proves level `level` (several
    /// values may prove one level; a request for a level accepts every
    /// value of that level and above).
    #[must_use]
    pub fn acr(mut self, acr: &str, level: u8) -> OidcConfig {
        self.acr_levels.retain(|(a, _)| a != acr);
        self.acr_levels.push((acr.to_owned(), level));
        self
    }

    /// The `amr` value `amr` proves `method` (replacing the default
    /// mapping of that value; see [`DEFAULT_AMR`]).
    #[must_use]
    pub fn amr(mut self, amr: &str, method: Method) -> OidcConfig {
        self.amr_methods.retain(|(a, _)| a != amr);
        self.amr_methods.push((amr.to_owned(), method));
        self
    }

    /// No `amr` value maps to a method: tokens carry the `acr`'s level
    /// only.
    #[must_use]
    pub fn without_amr(mut self) -> OidcConfig {
        self.amr_methods.clear();
        self
    }

    /// How far the provider's clock may be behind (default 60 s): an
    /// `auth_time` this much before the request is still fresh.
    #[must_use]
    pub fn skew(mut self, skew: Duration) -> OidcConfig {
        self.skew = skew;
        self
    }

    /// How long a started request waits for its callback (default 10 min).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> OidcConfig {
        self.lifetime = lifetime.max(Duration::from_secs(30));
        self
    }

    /// The timeout of each call to the provider (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> OidcConfig {
        self.timeout = timeout;
        self
    }

    /// How the `acr` is asked for (default [`AcrRequest::Both`]).
    #[must_use]
    pub fn acr_request(mut self, how: AcrRequest) -> OidcConfig {
        self.acr_request = how;
        self
    }

    /// Whether requests are pushed (default [`Par::Auto`]).
    #[must_use]
    pub fn par(mut self, par: Par) -> OidcConfig {
        self.par = par;
        self
    }

    /// The level an `acr` value proves, if the configuration maps it.
    pub fn level_of_acr(&self, acr: &str) -> Option<u8> {
        self.acr_levels
            .iter()
            .find(|(a, _)| a == acr)
            .map(|(_, level)| *level)
    }

    /// The `acr` values that prove `level` or more, lowest level first.
    pub fn acrs_for(&self, level: u8) -> Vec<&str> {
        let mut acrs: Vec<&(String, u8)> = self
            .acr_levels
            .iter()
            .filter(|(_, l)| *l >= level)
            .collect();
        acrs.sort_by_key(|(_, l)| *l);
        acrs.into_iter().map(|(a, _)| a.as_str()).collect()
    }

    /// The levels the mapped `acr` values prove, lowest first, each once.
    ///
    /// ```
    /// # use stepup_oidc::OidcConfig;
    /// let config = OidcConfig::new("https://id.example", "bank", "https://bank.example/cb")
    ///     .acr("silver", 2).acr("gold", 3).acr("mfa", 2);
    /// assert_eq!(config.levels(), [2, 3]);
    /// ```
    pub fn levels(&self) -> Vec<u8> {
        let mut levels: Vec<u8> = self.acr_levels.iter().map(|(_, l)| *l).collect();
        levels.sort_unstable();
        levels.dedup();
        levels
    }

    /// `table` with each mapped level's [`level_method`] placed at its
    /// level (a provider step-up to level 2 meets what a TOTP code meets).
    pub fn place_levels(&self, table: LevelTable) -> LevelTable {
        self.levels().into_iter().fold(table, |t, level| {
            t.with_custom_method(level_method(level), level, &[])
        })
    }
}

/// Why a step-up at the provider did not happen. Each is a refusal: no
/// token is minted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The provider's discovery document could not be read or is invalid.
    #[error("provider discovery failed: {0}")]
    Discovery(String),
    /// The configuration cannot be used (a URL, an empty `acr` map).
    #[error("the OIDC configuration is unusable: {0}")]
    Config(String),
    /// No `acr` value of the configuration proves the level asked for.
    #[error("no acr value proves level {0}")]
    NoAcrForLevel(u8),
    /// The callback's state is unknown: never started, expired, or used
    /// already (a replay).
    #[error("unknown or used state")]
    UnknownState,
    /// The callback reached another login session than the one that
    /// started the request.
    #[error("the request was started in another session")]
    OtherSession,
    /// The provider answered with an error (`access_denied`, …).
    #[error("the provider refused: {0}")]
    Refused(String),
    /// The `iss` response parameter is missing (the provider says it sends
    /// it) or names another issuer (RFC 9207: a mix-up).
    #[error("the authorization response's iss is missing or wrong")]
    IssuerMismatch,
    /// The callback has no code.
    #[error("the callback has no code")]
    NoCode,
    /// The code exchange failed (a wrong PKCE verifier, a used code, …).
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    /// The token response has no ID token.
    #[error("the token response has no ID token")]
    NoIdToken,
    /// The ID token did not verify: signature, issuer, audience, expiry,
    /// nonce, `acr` not accepted, `auth_time` missing or stale.
    #[error("the ID token did not verify: {0}")]
    IdToken(String),
    /// The ID token is another user's (`sub` is not the logged-in user's
    /// provider id).
    #[error("the ID token is another user's")]
    OtherSubject,
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] stepup_store::StoreError),
    /// The assurance token could not be issued.
    #[error(transparent)]
    Issue(#[from] stepup_core::IssueError),
}

/// A step-up to ask the provider for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StepUpRequest<'a> {
    /// The logged-in user (and session) the step-up is for.
    pub subject: &'a Subject,
    /// The user's subject identifier at the provider (the `sub` of their
    /// login): the ID token must carry this one.
    pub provider_subject: &'a str,
    /// The level needed: the `acr` values of this level and above are
    /// asked for and accepted.
    pub level: u8,
    /// How recent the authentication must be (`max_age`; zero is "right
    /// now", sent with `prompt=login`). `None`: any age the provider
    /// gives (its `auth_time` is still required: proofs are dated at it).
    pub max_age: Option<Duration>,
    /// Where the callback sends the user back to (a local path).
    pub return_to: &'a ReturnTo,
    /// A `login_hint` (the user's e-mail at the provider, say).
    pub login_hint: Option<&'a str>,
}

impl<'a> StepUpRequest<'a> {
    /// A step-up of `subject` (`provider_subject` at the provider) to
    /// `level`, returning to `return_to`.
    pub fn new(
        subject: &'a Subject,
        provider_subject: &'a str,
        level: u8,
        return_to: &'a ReturnTo,
    ) -> StepUpRequest<'a> {
        StepUpRequest {
            subject,
            provider_subject,
            level,
            max_age: None,
            return_to,
            login_hint: None,
        }
    }

    /// Within `max_age` (zero: right now).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// With a `login_hint`.
    #[must_use]
    pub fn login_hint(mut self, hint: &'a str) -> Self {
        self.login_hint = Some(hint);
        self
    }
}

/// What the callback needs, kept under the state's digest for one use.
#[derive(Serialize, Deserialize)]
struct Pending {
    nonce: String,
    verifier: String,
    subject: String,
    session: Option<String>,
    provider_subject: String,
    started_at: u64,
    /// `max_age` in seconds, when the request had one.
    max_age: Option<u64>,
    accepted: Vec<String>,
    return_to: String,
    /// A login (no subject yet; `session` is the browser binding), not a
    /// step-up: one is never finished as the other.
    #[serde(default)]
    login: bool,
    /// The provider and client that asked: another one's callback never
    /// finishes it.
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client: String,
}

/// A finished step-up: the new assurance token and where to go.
#[derive(Debug)]
#[non_exhaustive]
pub struct Finished {
    /// The assurance token, with the provider's proofs (and the still-fresh
    /// proofs of the previous token).
    pub token: IssuedToken,
    /// The level the `acr` proved (the token's level: `amr` never adds
    /// to it).
    pub level: u8,
    /// The methods the `amr` proved (those the configuration maps; none
    /// when together they would reach above the `acr`'s level).
    pub methods: Vec<Method>,
    /// When the user authenticated at the provider.
    pub auth_time: Timestamp,
    /// The `return_to` of the request.
    pub return_to: ReturnTo,
}

/// A finished login at the provider ([`OidcStepUp::finish_login`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Login {
    /// The user's subject identifier at the provider (`sub`).
    pub provider_subject: String,
    /// The `acr` of the login, if the provider said.
    pub acr: Option<String>,
    /// When the user authenticated, if the provider said.
    pub auth_time: Option<Timestamp>,
    /// The `return_to` of the start.
    pub return_to: ReturnTo,
}

/// The callback's query.
#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Step-up at an upstream OpenID Provider: see the [crate docs](crate).
pub struct OidcStepUp<S> {
    config: OidcConfig,
    client: Client,
    issuer_url: String,
    par_endpoint: Option<url::Url>,
    iss_required: bool,
    /// The provider takes the `claims` parameter.
    claims_parameter: bool,
    /// The origin of the authorization endpoint (where browsers go).
    authorize_origin: String,
    /// The provider's keys (read at discovery; read again when an ID
    /// token names a key they lack: the provider rotated its keys).
    keys: std::sync::RwLock<Keys>,
    jwks_uri: JsonWebKeySetUrl,
    /// The issuer ID tokens must name (the discovery document's).
    provider_issuer: IssuerUrl,
    /// The ID token signing algorithms the provider names.
    signing_algs: Vec<openidconnect::core::CoreJwsSigningAlgorithm>,
    http: Http,
    state: S,
    issuer: Issuer,
    clock: std::sync::Arc<dyn Clock>,
}

impl<S> fmt::Debug for OidcStepUp<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcStepUp")
            .field("config", &self.config)
            .field("par", &self.par_endpoint.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: StateStore> OidcStepUp<S> {
    /// Reads the provider's discovery document and keys (through a client
    /// that follows no redirect), ready to start step-ups that `issuer`
    /// mints tokens for, keeping requests in `state`.
    pub async fn discover(config: OidcConfig, issuer: Issuer, state: S) -> Result<Self, OidcError> {
        if config.acr_levels.is_empty() {
            return Err(OidcError::Config(
                "map at least one acr value to a level".into(),
            ));
        }
        let http = Http::new(config.timeout)?;
        let issuer_url = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer: {e}")))?;
        // The client secret and the codes travel to the provider: HTTPS,
        // except on this machine (tests, a provider in a sidecar).
        let parsed = issuer_url.url();
        let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
            || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
            || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
        if parsed.scheme() != "https" && !loopback {
            return Err(OidcError::Config(
                "the issuer must be https (http only on loopback)".into(),
            ));
        }
        let metadata = Metadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| OidcError::Discovery(error_chain(&e)))?;
        let extra = metadata.additional_metadata().clone();
        let claims_parameter = metadata.claims_parameter_supported() == Some(true);
        if config.acr_request == AcrRequest::EssentialClaim && !claims_parameter {
            return Err(OidcError::Config(
                "AcrRequest::EssentialClaim needs a provider that takes the claims parameter"
                    .into(),
            ));
        }
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| OidcError::Discovery("no token endpoint".into()))?;
        let redirect = RedirectUrl::new(config.redirect_url.clone())
            .map_err(|e| OidcError::Config(format!("redirect URL: {e}")))?;
        let issuer_url = metadata.issuer().as_str().to_owned();
        let keys = std::sync::RwLock::new(Keys {
            set: metadata.jwks().clone(),
            refreshed_at: None,
        });
        let jwks_uri = metadata.jwks_uri().clone();
        let provider_issuer = metadata.issuer().clone();
        let signing_algs = metadata.id_token_signing_alg_values_supported().clone();
        let authorize_origin = metadata
            .authorization_endpoint()
            .url()
            .origin()
            .ascii_serialization();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(config.client_id.clone()),
            config.client_secret.clone().map(ClientSecret::new),
        )
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
        let par_endpoint = match (config.par, &extra.pushed_authorization_request_endpoint) {
            (Par::Auto, Some(endpoint)) => Some(
                url::Url::parse(endpoint)
                    .map_err(|e| OidcError::Discovery(format!("PAR endpoint: {e}")))?,
            ),
            _ => None,
        };
        if extra.require_pushed_authorization_requests && par_endpoint.is_none() {
            return Err(OidcError::Config(
                "the provider takes pushed requests only: use Par::Auto".into(),
            ));
        }
        Ok(OidcStepUp {
            config,
            client,
            issuer_url,
            par_endpoint,
            iss_required: extra.authorization_response_iss_parameter_supported,
            claims_parameter,
            authorize_origin,
            keys,
            jwks_uri,
            provider_issuer,
            signing_algs,
            http,
            state,
            issuer,
            clock: std::sync::Arc::new(SystemClock),
        })
    }

    /// Reads time from `clock` (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The origin browsers are sent to (the authorization endpoint's):
    /// a challenge page's `form-action` must allow it.
    pub fn authorization_origin(&self) -> &str {
        &self.authorize_origin
    }

    /// Starts a step-up at the provider: the URL to redirect the browser
    /// to. The request (nonce, PKCE verifier, who asked, when, what is
    /// accepted, where to return) waits in the state store for its
    /// callback, once.
    pub async fn start(&self, request: StepUpRequest<'_>) -> Result<url::Url, OidcError> {
        let accepted: Vec<String> = self
            .config
            .acrs_for(request.level)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if accepted.is_empty() {
            return Err(OidcError::NoAcrForLevel(request.level));
        }
        let (url, state, nonce, verifier) =
            self.authorization(&accepted, request.max_age, request.login_hint);
        let pending = Pending {
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            subject: request.subject.id().to_owned(),
            session: request.subject.session().map(str::to_owned),
            provider_subject: request.provider_subject.to_owned(),
            started_at: self.clock.now().as_unix_seconds(),
            max_age: request.max_age.map(|m| m.as_secs()),
            accepted,
            return_to: request.return_to.as_str().to_owned(),
            login: false,
            issuer: self.issuer_url.clone(),
            client: self.config.client_id.clone(),
        };
        self.keep_and_send(&state, &pending, url).await
    }

    /// Starts a login at the provider (not a step-up: nothing is asked of
    /// the `acr`): the URL to redirect the browser to. `binding` ties the
    /// request to the browser that starts it — a value only that browser
    /// has, such as the hash of its pre-login session cookie — and must
    /// be given again to [`finish_login`](Self::finish_login): a callback
    /// URL sent to someone else logs nobody in as its starter (login
    /// CSRF).
    pub async fn start_login(
        &self,
        binding: &str,
        return_to: &ReturnTo,
    ) -> Result<url::Url, OidcError> {
        if binding.is_empty() {
            return Err(OidcError::Config("a login needs a browser binding".into()));
        }
        let (url, state, nonce, verifier) = self.authorization(&[], None, None);
        let pending = Pending {
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            subject: String::new(),
            session: Some(binding.to_owned()),
            provider_subject: String::new(),
            started_at: self.clock.now().as_unix_seconds(),
            max_age: None,
            accepted: Vec::new(),
            return_to: return_to.as_str().to_owned(),
            login: true,
            issuer: self.issuer_url.clone(),
            client: self.config.client_id.clone(),
        };
        self.keep_and_send(&state, &pending, url).await
    }

    /// The authorization request: PKCE, nonce, state; the `accepted` acr
    /// values (none: no acr asked), `amr` and `auth_time` through the
    /// claims parameter, `max_age` (0: with `prompt=login`), `login_hint`.
    fn authorization(
        &self,
        accepted: &[String],
        max_age: Option<Duration>,
        login_hint: Option<&str>,
    ) -> (url::Url, CsrfToken, Nonce, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut auth = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        let how = self.config.acr_request;
        if matches!(how, AcrRequest::Both | AcrRequest::Values) {
            for acr in accepted {
                auth = auth.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
        }
        // The claims parameter asks for `amr` and `auth_time` always, and
        // for an essential `acr` unless only `acr_values` are wanted.
        let mut id_token = serde_json::json!({
            "amr": null,
            "auth_time": {"essential": true},
        });
        match (how, accepted.first()) {
            (AcrRequest::Both | AcrRequest::EssentialClaim, Some(_)) => {
                id_token["acr"] = serde_json::json!({"essential": true, "values": accepted});
            }
            // Entra ID takes one context per request.
            (AcrRequest::EntraAcrs, Some(lowest)) => {
                id_token["acrs"] = serde_json::json!({"essential": true, "value": lowest});
            }
            _ => {}
        }
        let claims = serde_json::json!({ "id_token": id_token }).to_string();
        // Entra ID takes the claims parameter without announcing it.
        if self.claims_parameter || how == AcrRequest::EntraAcrs {
            auth = auth.add_extra_param("claims", claims.as_str());
        }
        if let Some(max_age) = max_age {
            auth = auth.set_max_age(max_age);
            if max_age.is_zero() {
                auth = auth.add_prompt(CoreAuthPrompt::Login);
            }
        }
        if let Some(hint) = login_hint {
            auth = auth.set_login_hint(LoginHint::new(hint.to_owned()));
        }
        let (url, state, nonce) = auth.url();
        (url, state, nonce, verifier)
    }

    /// Keeps `pending` under `state` for one use, and pushes the request
    /// when the provider takes pushed requests: the URL for the browser.
    async fn keep_and_send(
        &self,
        state: &CsrfToken,
        pending: &Pending,
        url: url::Url,
    ) -> Result<url::Url, OidcError> {
        let record =
            serde_json::to_vec(pending).map_err(|e| OidcError::Config(format!("encode: {e}")))?;
        self.state
            .put(&state_key(state.secret()), record, self.config.lifetime)
            .await?;
        match &self.par_endpoint {
            Some(endpoint) => self.pushed(endpoint, &url).await,
            None => Ok(url),
        }
    }

    /// Pushes the request `url` carries (RFC 9126): the browser gets only
    /// `client_id` and the provider's `request_uri`.
    async fn pushed(&self, endpoint: &url::Url, url: &url::Url) -> Result<url::Url, OidcError> {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(url.query_pairs())
            .finish();
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(endpoint.as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some(secret) = &self.config.client_secret {
            request = request.header(
                http::header::AUTHORIZATION,
                basic_auth(&self.config.client_id, secret),
            );
        }
        let request = request
            .body(body.into_bytes())
            .map_err(|e| OidcError::Config(format!("PAR request: {e}")))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| OidcError::Refused(format!("PAR: {e}")))?;
        #[derive(Deserialize)]
        struct Pushed {
            request_uri: String,
        }
        if response.status() != http::StatusCode::CREATED && !response.status().is_success() {
            return Err(OidcError::Refused(format!(
                "PAR answered {}: {}",
                response.status(),
                String::from_utf8_lossy(&response.body()[..response.body().len().min(200)])
            )));
        }
        let pushed: Pushed = serde_json::from_slice(response.body())
            .map_err(|e| OidcError::Refused(format!("PAR answer: {e}")))?;
        let mut to = url.clone();
        to.set_query(None);
        to.query_pairs_mut()
            .append_pair("client_id", &self.config.client_id)
            .append_pair("request_uri", &pushed.request_uri);
        Ok(to)
    }

    /// Finishes the step-up the callback with `query` (the callback URL's
    /// query string) answers, for the logged-in `subject`: the request is
    /// taken (once), the response's `iss` checked, the code exchanged, the
    /// ID token verified (`acr`, `auth_time`, nonce, `sub`), and the
    /// assurance token minted — keeping the still-fresh proofs of
    /// `previous`, the token the client presented.
    ///
    /// The `auth_time` must be no older than the request's start minus its
    /// `max_age` (and the skew), and not in the future (beyond the skew).
    /// The token's level is the `acr`'s: the `amr` methods are recorded
    /// too, unless together they would reach a higher level, then none is.
    /// Tokens minted here carry no client context: use
    /// [`finish_in_context`](Self::finish_in_context) where the challenge
    /// routes mint in context (their proofs are kept only then).
    pub async fn finish(
        &self,
        subject: &Subject,
        query: &str,
        previous: Option<&str>,
    ) -> Result<Finished, OidcError> {
        self.finish_in_context(subject, query, previous, None).await
    }

    /// [`finish`](Self::finish), minting in the client context `context`
    /// (the bytes [`Issuer::issue_in_context`] records; the challenge
    /// routes' `ContextSettings` computes them): the presented token's
    /// proofs made in the same context are kept, and `same_context` policy
    /// terms can be met.
    pub async fn finish_in_context(
        &self,
        subject: &Subject,
        query: &str,
        previous: Option<&str>,
        context: Option<&[u8]>,
    ) -> Result<Finished, OidcError> {
        let (pending, claims, acr) = self
            .answer(query, |pending| {
                !pending.login
                    && ct::eq(pending.subject.as_bytes(), subject.id().as_bytes())
                    && pending.session.as_deref() == subject.session()
            })
            .await?;
        let now = self.clock.now().as_unix_seconds();
        if !ct::eq(
            claims.subject().as_str().as_bytes(),
            pending.provider_subject.as_bytes(),
        ) {
            return Err(OidcError::OtherSubject);
        }
        let acr = acr.unwrap_or_default();
        let level = self
            .config
            .level_of_acr(&acr)
            .ok_or_else(|| OidcError::IdToken(format!("acr {acr} is not mapped")))?;
        let auth_time = claims
            .auth_time()
            .map(|t| Timestamp::from_unix_seconds(t.timestamp().max(0) as u64))
            .ok_or_else(|| OidcError::IdToken("no auth_time".into()))?;
        let mut methods: Vec<Method> = Vec::new();
        for amr in claims.auth_method_refs().into_iter().flatten() {
            if let Some((_, method)) = self
                .config
                .amr_methods
                .iter()
                .find(|(a, _)| a == amr.as_str())
                && !methods.contains(method)
            {
                methods.push(*method);
            }
        }
        // The `amr` methods never lift the token above the `acr`'s level
        // (a provider's `swk` may be a push approval, its `hwk` not what
        // the local table ranks): then only the level is recorded.
        let levels = self.issuer.levels();
        let proven = levels.level_of(&[level_method(level)]);
        let mut all = methods.clone();
        all.push(level_method(level));
        if levels.level_of(&all) > proven {
            tracing::warn!(target: "stepup::oidc", acr = %acr, "the amr methods would reach above the acr's level: recording the level only");
            methods.clear();
        }
        // Within the skew of now (checked above); never dated after now.
        let at = Timestamp::from_unix_seconds(auth_time.as_unix_seconds().min(now));
        let mint = |proof: Proof, previous: Option<&str>| match context {
            Some(context) => {
                self.issuer
                    .issue_in_context(subject, proof, previous, context, self.clock.now())
            }
            None => self
                .issuer
                .issue(subject, proof, previous, self.clock.now()),
        };
        let mut token = mint(Proof::new(level_method(level), at), previous)?;
        for method in &methods {
            token = mint(Proof::new(*method, at), Some(token.value()))?;
        }
        Ok(Finished {
            token,
            level,
            methods,
            auth_time: at,
            return_to: ReturnTo::parse_or(&pending.return_to, &ReturnTo::root()),
        })
    }

    /// Finishes the login the callback with `query` answers, for the
    /// browser whose `binding` started it ([`start_login`](Self::start_login)):
    /// the request taken (once), `iss` checked, the code exchanged, the ID
    /// token verified (signature, audience, expiry, nonce). The user is
    /// [`Login::provider_subject`]: log them in with it. No assurance
    /// token is minted: a login is not a step-up.
    pub async fn finish_login(&self, query: &str, binding: &str) -> Result<Login, OidcError> {
        let (pending, claims, acr) = self
            .answer(query, |pending| {
                pending.login
                    && pending
                        .session
                        .as_deref()
                        .is_some_and(|b| ct::eq(b.as_bytes(), binding.as_bytes()))
            })
            .await?;
        Ok(Login {
            provider_subject: claims.subject().as_str().to_owned(),
            acr,
            auth_time: claims
                .auth_time()
                .map(|t| Timestamp::from_unix_seconds(t.timestamp().max(0) as u64)),
            return_to: ReturnTo::parse_or(&pending.return_to, &ReturnTo::root()),
        })
    }

    /// The ID token verifier for `pending` at `now` (seconds): the
    /// provider's current keys and algorithms, this client, the issuer;
    /// for a step-up the `acr` accepted and `auth_time` within the
    /// request's bounds, for a login an `auth_time` (if any) not in the
    /// future; the expiry with the skew.
    fn verifier(&self, pending: &Pending, now: u64) -> IdTokenVerifier<'static, CoreJsonWebKey> {
        let skew = self.config.skew.as_secs();
        let not_before = pending
            .started_at
            .saturating_sub(pending.max_age.unwrap_or(u64::MAX / 2))
            .saturating_sub(skew);
        let not_after = now.saturating_add(skew);
        let accepted = pending.accepted.clone();
        let login = pending.login;
        // Entra ID's level is in `acrs`, checked after the signature.
        let any_acr = login || self.config.acr_request == AcrRequest::EntraAcrs;
        let keys = self
            .keys
            .read()
            .map(|k| k.set.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().set.clone());
        let client_id = ClientId::new(self.config.client_id.clone());
        let issuer = self.provider_issuer.clone();
        let verifier = match &self.config.client_secret {
            Some(secret) => IdTokenVerifier::new_confidential_client(
                client_id,
                ClientSecret::new(secret.clone()),
                issuer,
                keys,
            ),
            None => IdTokenVerifier::new_public_client(client_id, issuer, keys),
        };
        verifier
            .set_allowed_algs(self.signing_algs.clone())
            .set_auth_context_verifier_fn(move |acr| match acr {
                // A login asks nothing of the acr.
                _ if any_acr => Ok(()),
                Some(acr) if accepted.iter().any(|a| a == acr.as_str()) => Ok(()),
                Some(acr) => Err(format!("acr {} is not accepted", acr.as_str())),
                None => Err("no acr".to_owned()),
            })
            .set_auth_time_verifier_fn(move |at| {
                let at = at.map(|t| u64::try_from(t.timestamp()).unwrap_or(0));
                match at {
                    Some(at) if at > not_after => Err("auth_time is in the future".to_owned()),
                    _ if login => Ok(()),
                    Some(at) if at >= not_before => Ok(()),
                    Some(_) => Err("auth_time is older than the request allows".to_owned()),
                    None => Err("no auth_time".to_owned()),
                }
            })
            // The provider's clock may run behind or ahead by the skew.
            .set_time_fn(move || {
                let secs = i64::try_from(now.saturating_sub(skew)).unwrap_or(i64::MAX);
                // Out of chrono's range only past the year 262 143: then
                // every token has expired.
                chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
            })
    }

    /// Reads the provider's keys again, unless that was done less than
    /// [`KEYS_REFRESH_EVERY`] seconds ago: whether there are new keys.
    async fn refresh_keys(&self, now: u64) -> bool {
        // Checked and marked under one lock: of concurrent callers, one
        // reads the keys. A poisoned lock reads nothing.
        {
            let Ok(mut keys) = self.keys.write() else {
                return false;
            };
            if keys
                .refreshed_at
                .is_some_and(|at| now < at.saturating_add(KEYS_REFRESH_EVERY))
            {
                return false;
            }
            // One reading per minute, even when it fails.
            keys.refreshed_at = Some(now);
        }
        match openidconnect::core::CoreJsonWebKeySet::fetch_async(&self.jwks_uri, &self.http).await
        {
            Ok(set) => {
                tracing::info!(target: "stepup::oidc", keys = set.keys().len(), "the provider's keys were read again");
                if let Ok(mut keys) = self.keys.write() {
                    keys.set = set;
                }
                true
            }
            Err(e) => {
                tracing::warn!(target: "stepup::oidc", error = %error_chain(&e), "the provider's keys could not be read again");
                false
            }
        }
    }

    /// The provider's answer in the callback's `query`: the request it
    /// answers taken (once) and `owned` by the caller, the `iss` checked,
    /// the code exchanged with the PKCE verifier, and the ID token
    /// verified (signature, audience, expiry, nonce; for a step-up the
    /// `acr` accepted and `auth_time` within the request's bounds; for a
    /// login an `auth_time`, if any, not in the future).
    async fn answer(
        &self,
        query: &str,
        owned: impl FnOnce(&Pending) -> bool,
    ) -> Result<(Pending, IdTokenClaims, Option<String>), OidcError> {
        let callback: Callback =
            serde_urlencoded::from_str(query).map_err(|_| OidcError::UnknownState)?;
        let state = callback.state.ok_or(OidcError::UnknownState)?;
        // Whose it is first (another session's attempt leaves it), then
        // taken: of two answers, one finds it.
        let key = state_key(&state);
        let read = |bytes: Option<Vec<u8>>| {
            bytes
                .and_then(|bytes| serde_json::from_slice::<Pending>(&bytes).ok())
                .ok_or(OidcError::UnknownState)
        };
        let pending = read(self.state.get(&key).await?)?;
        // Another provider's or client's request (one state store shared
        // by several) is nobody's here.
        let ours = pending.issuer == self.issuer_url && pending.client == self.config.client_id;
        if !ours || !owned(&pending) {
            return Err(OidcError::OtherSession);
        }
        let pending = read(self.state.take(&key).await?)?;
        // RFC 9207: the response names its issuer (a mix-up attack sends
        // the code of another provider here).
        match &callback.iss {
            Some(iss) if iss == &self.issuer_url => {}
            None if !self.iss_required => {}
            _ => return Err(OidcError::IssuerMismatch),
        }
        if let Some(error) = callback.error {
            return Err(OidcError::Refused(error));
        }
        let code = callback.code.ok_or(OidcError::NoCode)?;
        let response = self
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(error_chain(&e)))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let now = self.clock.now().as_unix_seconds();
        let nonce = Nonce::new(pending.nonce.clone());
        let verified = id_token
            .claims(&self.verifier(&pending, now), &nonce)
            .cloned();
        let claims = match verified {
            // A key the provider did not have at discovery: it rotated
            // them. Read them again (at most once a minute) and retry.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refresh_keys(now).await => id_token
                .claims(&self.verifier(&pending, now), &nonce)
                .cloned(),
            verified => verified,
        }
        .map_err(|e| OidcError::IdToken(error_chain(&e)))?;
        // The value that proves the level: the (verified) `acr`, or for
        // Entra ID the highest accepted context of the `acrs` array read
        // from the same verified token.
        let proving = if self.config.acr_request == AcrRequest::EntraAcrs {
            let acrs = entra_acrs(&id_token.to_string());
            let best = acrs
                .iter()
                .filter(|a| pending.accepted.contains(a))
                .max_by_key(|a| self.config.level_of_acr(a))
                .cloned();
            if best.is_none() && !pending.login {
                return Err(OidcError::IdToken(format!(
                    "acrs {acrs:?} has no accepted context"
                )));
            }
            best
        } else {
            claims.auth_context_ref().map(|a| a.as_str().to_owned())
        };
        Ok((pending, claims, proving))
    }
}

/// The state store key of a request, by the SHA-256 of its state (the
/// state itself never reaches the store).
fn state_key(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("stepup:oidc:{hex}")
}

/// The `acrs` claim (Entra ID's authentication contexts) of the compact
/// JWT `jwt`, whose signature was verified: its payload's array (or a
/// single string); none when absent or unreadable.
fn entra_acrs(jwt: &str) -> Vec<String> {
    let payload = jwt.split('.').nth(1).unwrap_or("");
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return Vec::new();
    };
    match serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|mut v| v.get_mut("acrs").map(serde_json::Value::take))
    {
        Some(serde_json::Value::Array(values)) => values
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(value)) => vec![value],
        _ => Vec::new(),
    }
}

/// `client_secret_basic` (RFC 6749 §2.3.1: both parts form-encoded).
fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!("Basic {}", STANDARD.encode(pair.as_bytes()))
}

/// An error and its sources, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// The HTTP client for the provider: the application's reqwest, following
/// no redirect (openidconnect's advice: a redirect is an SSRF vector),
/// with a timeout and a cap on response bodies.
#[derive(Clone, Debug)]
struct Http {
    client: reqwest::Client,
}

/// The largest response body read from the provider.
const MAX_BODY: usize = 1 << 20;

/// Why a call to the provider failed.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error(transparent)]
    Reqwest(#[from] reqwest::Error),
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error("the response is larger than 1 MiB")]
    TooLarge,
}

impl Http {
    fn new(timeout: Duration) -> Result<Http, OidcError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| OidcError::Config(format!("HTTP client: {e}")))?;
        Ok(Http { client })
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let mut response = self.client.execute(request).await?;
        let mut builder = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(builder.body(body)?)
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_basic_form_encodes_then_base64s() {
        // RFC 6749 §2.3.1: "a b" is form-encoded first ("a+b").
        assert_eq!(basic_auth("rp", "a b"), "Basic cnA6YSti");
        assert_eq!(basic_auth("rp", "secret"), "Basic cnA6c2VjcmV0");
    }

    #[test]
    fn entra_acrs_are_read_from_the_payload() {
        let jwt = |payload: &str| {
            format!(
                "e30.{}.sig",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
            )
        };
        assert_eq!(entra_acrs(&jwt(r#"{"acrs":["c1","c2"]}"#)), ["c1", "c2"]);
        assert_eq!(entra_acrs(&jwt(r#"{"acrs":"c3"}"#)), ["c3"]);
        assert_eq!(entra_acrs(&jwt(r#"{"acrs":[1,"c4"]}"#)), ["c4"]);
        assert!(entra_acrs(&jwt(r#"{"acr":"c1"}"#)).is_empty());
        assert!(entra_acrs("not-a-jwt").is_empty());
        assert!(entra_acrs("a.!!!.b").is_empty());
    }

    #[test]
    fn acrs_of_a_level_and_above() {
        let config = OidcConfig::new("https://id.example", "c", "https://app.example/cb")
            .acr("loa1", 1)
            .acr("loa3", 3)
            .acr("loa2", 2);
        assert_eq!(config.acrs_for(2), ["loa2", "loa3"]);
        assert_eq!(config.acrs_for(4), Vec::<&str>::new());
        let table = config.place_levels(LevelTable::nist());
        assert_eq!(table.level_of(&[level_method(2)]), 2);
        assert_eq!(table.level_of(&[level_method(3)]), 3);
    }
}
