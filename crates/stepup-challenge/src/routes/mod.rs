//! The challenge routes without a web framework: what every adapter serves
//! under `/step-up`, written once.
//!
//! An adapter turns its request into an [`Incoming`] (method, path below the
//! mount point, query, the few headers that matter, the subject its login
//! found, the body), calls [`ChallengeRoutes::handle`], and writes the
//! [`Reply`] it gets back (status, headers, body) as its own response. So
//! the axum and actix-web routes answer alike byte for byte: same paths,
//! bodies, statuses, headers and page.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use stepup_core::{ChallengeReason, IssuedToken, Method, Policy, ReturnTo, Subject};
pub use stepup_http::{CONTENT_SECURITY_POLICY, DEFAULT_MOUNT, Reply, Settings};
use stepup_http::{
    CookieName, Found, GENERIC_REASON, Guard, Header, Reason, RequestHead, find_token,
    is_navigation_of,
};

use crate::i18n::{Catalogue, Lang, Text};
use crate::{
    APPROVAL_JS, Attempt, ChallengeError, ChallengePage, ChangeCheck, Channel, Engine, EnrollPage,
    FactorChange, FactorStore, KeptForm, PAGE_CSS, PASSKEY_JS, PasswordVerifier, StateStore,
};

mod actions;
mod changes;
mod custom;
mod forms;
#[cfg(feature = "passkey")]
mod passkey;
mod reply;
mod status;
mod step_up;
mod upstream;

pub use actions::Confirmations;
pub use forms::KeptForms;
use reply::{
    body_bytes, enroll_html, error_code, error_reply, failure_status, html_reply, insert, is_json,
    json_reply, malformed, parse_query, reason_detail, unavailable, unavailable_because,
};

/// The most a challenge POST body may hold; adapters stop reading beyond it
/// and pass [`Body::TooLarge`].
pub const MAX_BODY: usize = 16 * 1024;

/// How many recovery codes a user gets.
const RECOVERY_CODES: usize = 10;

/// An application's own challenge page: gets what the page should show and
/// returns the HTML (escaping is then the application's job).
pub type PageRenderer = Arc<dyn Fn(&ChallengePage) -> String + Send + Sync>;

/// The application's choice of language for a request (the user's
/// setting, a cookie it reads from the subject, one fixed language …):
/// `None` leaves the choice to `Accept-Language`. See
/// [`ChallengeRoutes::with_language`].
pub type LanguageChooser = Arc<dyn Fn(&Incoming<'_>) -> Option<Lang> + Send + Sync>;

/// The body of a request, as far as the adapter read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// All of it (at most [`MAX_BODY`] bytes).
    Read(&'a [u8]),
    /// More than [`MAX_BODY`] bytes: answered with `413`.
    TooLarge,
}

/// What the routes need of a request.
///
/// ```
/// use stepup_challenge::routes::{Body, Incoming};
/// use stepup_http::Found;
///
/// let incoming = Incoming {
///     method: "GET",
///     path: "/status",
///     query: Some("policy=level%3E%3D2"),
///     subject: None,
///     origin: None,
///     sec_fetch_site: None,
///     referer: None,
///     content_type: None,
///     navigation: false,
///     token: Found::None,
///     body: Body::Read(b""),
///     address: None,
///     user_agent: None,
///     context: None,
///     accept_language: Some(b"de-CH, en;q=0.5"),
/// };
/// assert_eq!(incoming.path, "/status");
/// ```
#[derive(Clone, Debug)]
pub struct Incoming<'a> {
    /// The request method (`GET`, `POST`, …).
    pub method: &'a str,
    /// The path below the mount point: `/`, `/totp`, `/enroll/totp`, …
    pub path: &'a str,
    /// The query string, without `?`.
    pub query: Option<&'a str>,
    /// Who is logged in, as the application's login says.
    pub subject: Option<Subject>,
    /// The `Origin` header.
    pub origin: Option<&'a [u8]>,
    /// The `Sec-Fetch-Site` header.
    pub sec_fetch_site: Option<&'a [u8]>,
    /// The `Referer` header: the page a form was on.
    pub referer: Option<&'a [u8]>,
    /// The `Content-Type` header.
    pub content_type: Option<&'a [u8]>,
    /// Whether the request is a browser navigation
    /// ([`stepup_http::is_navigation`]).
    pub navigation: bool,
    /// The assurance cookie ([`CookieName::find`](stepup_http::CookieName::find)
    /// with [`ChallengeRoutes::cookie_name`]).
    pub token: Found<'a>,
    /// The body (empty for `GET`).
    pub body: Body<'a>,
    /// The client's address, for the per-address attempt budget
    /// ([`AttemptLimits::per_address`](crate::AttemptLimits::per_address)).
    /// The adapters give the connection's peer; behind a reverse proxy that
    /// is the proxy, so put a trusted client address there yourself.
    pub address: Option<IpAddr>,
    /// The `User-Agent` header: its browser family is part of the client
    /// context.
    pub user_agent: Option<&'a [u8]>,
    /// The client context tokens are minted in: set by
    /// [`ChallengeRoutes::handle`] from the settings
    /// ([`Settings::with_client_context`](stepup_http::Settings::with_client_context)),
    /// the address and the `User-Agent`; a value given here is replaced.
    pub context: Option<Vec<u8>>,
    /// The `Accept-Language` header: the language of the pages and their
    /// sentences ([`ChallengeRoutes::language`]).
    pub accept_language: Option<&'a [u8]>,
}

impl<'a> Incoming<'a> {
    /// What the routes need of a request an adapter exposes as `head`:
    /// `path` is the path below the mount point, `subject` who its login
    /// found, `body` what it read, `address` the client's address. The
    /// token is looked up in the cookie `cookie` only.
    pub fn read(
        head: &'a impl RequestHead,
        path: &'a str,
        cookie: &CookieName,
        subject: Option<Subject>,
        body: Body<'a>,
        address: Option<IpAddr>,
    ) -> Incoming<'a> {
        let query = head
            .path_and_query()
            .split_once('?')
            .map(|(_, q)| q)
            .filter(|q| !q.is_empty());
        Incoming {
            method: head.method(),
            path,
            query,
            subject,
            origin: head.value(Header::Origin),
            sec_fetch_site: head.value(Header::SecFetchSite),
            referer: head.value(Header::Referer),
            content_type: head.value(Header::ContentType),
            navigation: is_navigation_of(head),
            token: find_token(head, cookie, false),
            body,
            address,
            user_agent: head.value(Header::UserAgent),
            context: None,
            accept_language: head.value(Header::AcceptLanguage),
        }
    }
}

/// The challenge routes: the settings and the engine. Cheap to clone.
///
/// | route | what |
/// |---|---|
/// | `GET /` | the challenge page (`?return_to=…&reason=…&why=…`) |
/// | `GET /resume` | the confirmation page of a form kept across the step-up (`?pending=<id>`), see [`KeptForms`] |
/// | `GET /assets/page.css`, `/assets/passkey.js` | its stylesheet and passkey script |
/// | `POST /totp`, `/password`, `/recovery` | a step-up, form (`code` or `password`, `return_to`) or JSON |
/// | `POST /code/send` | send a one-time code (`channel`: `email` or `sms`) |
/// | `POST /code/verify` | a step-up with that code (`channel`, `challenge_id`, `code`) |
/// | `POST /passkey/start`, `/passkey/finish` | a passkey step-up (JSON) |
/// | `GET /status` | the current assurance as JSON; `?policy=<expression>` adds `satisfied` |
/// | `POST /drop` | delete the assurance cookie in this browser (see below) |
/// | `GET`, `POST /enroll/totp`; `POST /enroll/totp/confirm` | set up (or replace) an authenticator app |
/// | `POST /enroll/totp/remove` | remove the authenticator app |
/// | `POST /enroll/recovery-codes` | new recovery codes, shown once |
/// | `GET /enroll/passkey`, `POST /enroll/passkey/start`, `/finish` | register a passkey |
/// | `POST /enroll/passkey/remove` | remove a passkey (`id`: its credential id, base64url) |
/// | `GET`, `POST /account-recovery`; `POST /account-recovery/cancel` | an account recovery: its state, start it, cancel it |
/// | `POST /custom/{name}/verify` | a step-up with an application method's code |
/// | `POST /custom/{name}/start`, `GET /custom/{name}/status`, `POST /custom/{name}/finish` | an approval on another device: send it, poll it, finish it |
/// | `GET`, `POST /custom/{name}/approve` | the approve link's page on the other device, and its button |
/// | `GET /assets/approval.js` | the page's wait for an approval |
/// | `POST /upstream/{name}/start` | a step-up at an identity provider ([`with_upstream`](Self::with_upstream)): `303` there |
/// | `GET /upstream/{name}/callback`, `/upstream/{name}/finish` | back from it: a page that continues to `finish` from this origin; the answer verified, the cookie set, `303` back |
///
/// Every change to the factors needs a fresh proof by the rule of
/// [`FactorChange`] (ranks from the level table; the password for a first
/// factor), checked when the change starts and again when it is
/// confirmed; removing or replacing one bumps the epoch. `POST /drop` only
/// deletes the cookie in this browser: a copy of the token saved elsewhere
/// stays valid until it expires — what ends assurance everywhere is the
/// application's logout (for session-bound tokens) or bumping the
/// subject's epoch. Every POST must come from the configured
/// origin (403 otherwise); no GET changes state but an identity
/// provider's `finish`, which uses up its single-use request (bound to the
/// user, the session and PKCE: nobody else can finish it). A form POST answers like a
/// browser expects (`303` to the validated `return_to`, or the page again
/// with the error); a JSON POST answers with JSON. Another path is `404`,
/// another method `405` with `Allow`; `HEAD` is answered like `GET`.
///
/// The routes need only `F: FactorStore`, with or without feature
/// `passkey`: the passkey routes go through the passkey store the engine
/// captured in `Engine::with_passkeys` (which needs `F: PasskeyStore`),
/// and answer "not set up" on an engine without passkeys.
pub struct ChallengeRoutes<F, S, P> {
    settings: Arc<Settings>,
    guard: Guard<()>,
    engine: Arc<Engine<F, S, P>>,
    renderer: Option<PageRenderer>,
    catalogue: Arc<Catalogue>,
    chooser: Option<LanguageChooser>,
    upstreams: crate::upstream::Upstreams,
}

impl<F, S, P> Clone for ChallengeRoutes<F, S, P> {
    fn clone(&self) -> Self {
        ChallengeRoutes {
            settings: self.settings.clone(),
            guard: self.guard.clone(),
            engine: self.engine.clone(),
            renderer: self.renderer.clone(),
            catalogue: self.catalogue.clone(),
            chooser: self.chooser.clone(),
            upstreams: self.upstreams.clone(),
        }
    }
}

impl<F, S, P> fmt::Debug for ChallengeRoutes<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeRoutes")
            .field("settings", &self.settings)
            .field("upstreams", &self.upstreams)
            .finish_non_exhaustive()
    }
}

/// The form or JSON body of a step-up POST.
#[derive(Deserialize, Default)]
struct StepUpInput {
    code: Option<String>,
    password: Option<String>,
    return_to: Option<String>,
    channel: Option<String>,
    challenge_id: Option<String>,
    /// A passkey's credential id (base64url), for removal.
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    id: Option<String>,
    why: Option<String>,
    /// The bound action's ceremony the step-up is made for.
    confirmation: Option<String>,
    /// A custom method's approval (its id), to finish.
    approval: Option<String>,
}

#[derive(Deserialize, Default)]
struct PageQuery {
    return_to: Option<String>,
    reason: Option<String>,
    why: Option<String>,
    resubmit: Option<String>,
    confirmation: Option<String>,
}

#[derive(Deserialize, Default)]
struct StatusQuery {
    policy: Option<String>,
}

/// Which route a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Page,
    Confirm,
    Css,
    Script,
    StepUp(Factor),
    CodeSend,
    PasskeyStart,
    PasskeyFinish,
    Status,
    Drop,
    EnrollTotpPage,
    EnrollTotpStart,
    EnrollTotpConfirm,
    RemoveTotp,
    EnrollRecovery,
    EnrollPasskeyPage,
    EnrollPasskeyStart,
    EnrollPasskeyFinish,
    RemovePasskey,
    RecoveryStatus,
    RecoveryStart,
    RecoveryCancel,
    /// `POST /custom/{name}/start`: an approval sent to the other device.
    ApprovalStart(Method),
    /// `GET /custom/{name}/status?approval=…`: where it stands (JSON).
    ApprovalStatus(Method),
    /// `GET /custom/{name}/approve?secret=…`: the other device's page.
    ApprovalPage(Method),
    /// `POST /custom/{name}/approve`: the other device approves.
    Approve(Method),
    /// `GET /assets/approval.js`: the page's wait for an approval.
    ApprovalScript,
    /// `POST /upstream/{name}/start`: off to the identity provider.
    UpstreamStart(UpstreamName),
    /// `GET /upstream/{name}/callback`: back from it (a page that goes on
    /// to `finish` from this origin).
    UpstreamCallback(UpstreamName),
    /// `GET /upstream/{name}/finish`: its answer verified, the token set.
    UpstreamFinish(UpstreamName),
}

/// An upstream's name from a path (at most 32 bytes, checked).
#[derive(Clone, Copy, PartialEq, Eq)]
struct UpstreamName {
    bytes: [u8; 32],
    len: u8,
}

impl UpstreamName {
    fn parse(name: &str) -> Option<UpstreamName> {
        if !crate::upstream::valid_name(name) {
            return None;
        }
        let mut bytes = [0; 32];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(UpstreamName {
            bytes,
            len: name.len() as u8,
        })
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for UpstreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a step-up POST proves: one route each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Factor {
    Totp,
    Password,
    RecoveryCode,
    /// An e-mail or SMS code (the `channel` field says which).
    Code,
    /// A custom method's code (`/custom/{name}/verify`).
    Custom(Method),
    /// A custom method's approval, finished (`/custom/{name}/finish`).
    Approval(Method),
}

impl Factor {
    /// The page's form for this factor.
    fn form(self) -> crate::Form {
        match self {
            Factor::Totp => crate::Form::Totp,
            Factor::Password => crate::Form::Password,
            Factor::RecoveryCode => crate::Form::RecoveryCode,
            Factor::Code => crate::Form::Code,
            Factor::Custom(_) | Factor::Approval(_) => crate::Form::Custom,
        }
    }
}

/// Why no route answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Miss {
    /// No such path: `404`.
    NotFound,
    /// The path exists for these methods only: `405` with `Allow`.
    Allow(&'static str),
}

/// The route for `method` and `path`, or why there is none.
fn route(method: &str, path: &str) -> Result<Route, Miss> {
    let get = matches!(method, "GET" | "HEAD");
    let post = method == "POST";
    let (route, allow) = match path {
        "" | "/" => (get.then_some(Route::Page), "GET,HEAD"),
        stepup_http::CONFIRM_PATH => (get.then_some(Route::Confirm), "GET,HEAD"),
        "/assets/page.css" => (get.then_some(Route::Css), "GET,HEAD"),
        "/assets/passkey.js" => (get.then_some(Route::Script), "GET,HEAD"),
        "/totp" => (post.then_some(Route::StepUp(Factor::Totp)), "POST"),
        "/password" => (post.then_some(Route::StepUp(Factor::Password)), "POST"),
        "/recovery" => (post.then_some(Route::StepUp(Factor::RecoveryCode)), "POST"),
        "/code/verify" => (post.then_some(Route::StepUp(Factor::Code)), "POST"),
        "/code/send" => (post.then_some(Route::CodeSend), "POST"),
        "/passkey/start" => (post.then_some(Route::PasskeyStart), "POST"),
        "/passkey/finish" => (post.then_some(Route::PasskeyFinish), "POST"),
        "/status" => (get.then_some(Route::Status), "GET,HEAD"),
        "/drop" => (post.then_some(Route::Drop), "POST"),
        "/enroll/totp" => (
            if get {
                Some(Route::EnrollTotpPage)
            } else {
                post.then_some(Route::EnrollTotpStart)
            },
            "GET,HEAD,POST",
        ),
        "/enroll/totp/confirm" => (post.then_some(Route::EnrollTotpConfirm), "POST"),
        "/enroll/totp/remove" => (post.then_some(Route::RemoveTotp), "POST"),
        "/enroll/passkey/remove" => (post.then_some(Route::RemovePasskey), "POST"),
        "/account-recovery" => (
            if get {
                Some(Route::RecoveryStatus)
            } else {
                post.then_some(Route::RecoveryStart)
            },
            "GET,HEAD,POST",
        ),
        "/account-recovery/cancel" => (post.then_some(Route::RecoveryCancel), "POST"),
        "/enroll/recovery-codes" => (post.then_some(Route::EnrollRecovery), "POST"),
        "/enroll/passkey" => (get.then_some(Route::EnrollPasskeyPage), "GET,HEAD"),
        "/enroll/passkey/start" => (post.then_some(Route::EnrollPasskeyStart), "POST"),
        "/enroll/passkey/finish" => (post.then_some(Route::EnrollPasskeyFinish), "POST"),
        "/assets/approval.js" => (get.then_some(Route::ApprovalScript), "GET,HEAD"),
        _ if path.starts_with("/upstream/") => return upstream_route(method, path),
        _ => return custom_route(get, post, path),
    };
    route.ok_or(Miss::Allow(allow))
}

/// `/upstream/{name}/{action}`: an identity provider's routes.
fn upstream_route(method: &str, path: &str) -> Result<Route, Miss> {
    let get = matches!(method, "GET" | "HEAD");
    let post = method == "POST";
    let rest = path.strip_prefix("/upstream/").ok_or(Miss::NotFound)?;
    let (name, action) = rest.split_once('/').ok_or(Miss::NotFound)?;
    let name = UpstreamName::parse(name).ok_or(Miss::NotFound)?;
    let (route, allow) = match action {
        "start" => (post.then_some(Route::UpstreamStart(name)), "POST"),
        "callback" => (get.then_some(Route::UpstreamCallback(name)), "GET,HEAD"),
        // GET only: a HEAD would finish (and use up) the answer too.
        "finish" => (
            (method == "GET").then_some(Route::UpstreamFinish(name)),
            "GET",
        ),
        _ => return Err(Miss::NotFound),
    };
    route.ok_or(Miss::Allow(allow))
}

/// `/custom/{name}/{action}`: a custom method's routes.
fn custom_route(get: bool, post: bool, path: &str) -> Result<Route, Miss> {
    let rest = path.strip_prefix("/custom/").ok_or(Miss::NotFound)?;
    let (name, action) = rest.split_once('/').ok_or(Miss::NotFound)?;
    let method = Method::custom(name).map_err(|_| Miss::NotFound)?;
    let (route, allow) = match action {
        "verify" => (
            post.then_some(Route::StepUp(Factor::Custom(method))),
            "POST",
        ),
        "start" => (post.then_some(Route::ApprovalStart(method)), "POST"),
        "finish" => (
            post.then_some(Route::StepUp(Factor::Approval(method))),
            "POST",
        ),
        "status" => (get.then_some(Route::ApprovalStatus(method)), "GET,HEAD"),
        "approve" => (
            if get {
                Some(Route::ApprovalPage(method))
            } else {
                post.then_some(Route::Approve(method))
            },
            "GET,HEAD,POST",
        ),
        _ => return Err(Miss::NotFound),
    };
    route.ok_or(Miss::Allow(allow))
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// The routes with `settings`, running `engine`. The gate in the
    /// settings and the engine's issuer must come from the same
    /// [`TokenConfig`](stepup_core::TokenConfig).
    pub fn new(settings: Settings, engine: Arc<Engine<F, S, P>>) -> Self {
        // What reads tokens and answers challenges here is the guard every
        // adapter protects routes with (its policy is not used).
        let guard = Guard::new(settings.gate().clone(), Policy::level(1)).with_settings(&settings);
        ChallengeRoutes {
            settings: Arc::new(settings),
            guard,
            engine,
            renderer: None,
            catalogue: Catalogue::built_in(),
            chooser: None,
            upstreams: Default::default(),
        }
    }

    /// The texts of the pages and their sentences: the built-in English
    /// and German unless told, with the application's additions (see
    /// [`Catalogue::insert`]).
    #[must_use]
    pub fn with_catalogue(mut self, catalogue: impl Into<Arc<Catalogue>>) -> Self {
        self.catalogue = catalogue.into();
        self
    }

    /// Lets the application choose each request's language (`None`:
    /// `Accept-Language` chooses). For one language for everyone:
    /// `Arc::new(|_: &Incoming<'_>| Some(Lang::DE))`.
    #[must_use]
    pub fn with_language(mut self, choose: LanguageChooser) -> Self {
        self.chooser = Some(choose);
        self
    }

    /// The catalogue the pages' texts come from.
    pub fn catalogue(&self) -> &Arc<Catalogue> {
        &self.catalogue
    }

    /// The language of the answer to `request`: the application's choice
    /// ([`with_language`](Self::with_language)), else the most preferred
    /// language of its `Accept-Language` the catalogue has, else English.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
    /// # use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// # use stepup_challenge::i18n::Lang;
    /// # use stepup_core::{Key, KeyId, KeyRing, SystemClock, TokenConfig};
    /// # let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// # let engine = Arc::new(Engine::new(config.issuer(), MemoryFactorStore::new(),
    /// #     MemoryStateStore::new(SystemClock)));
    /// let routes = ChallengeRoutes::new(Settings::new(config.gate(), "https://bank.example"), engine);
    /// let mut request = Incoming {
    ///     method: "GET", path: "/", query: None, subject: None, origin: None,
    ///     sec_fetch_site: None, referer: None, content_type: None, navigation: true,
    ///     token: stepup_http::Found::None, body: Body::Read(b""), address: None,
    ///     accept_language: Some(b"de-AT, en;q=0.5"), user_agent: None, context: None,
    /// };
    /// assert_eq!(routes.language(&request), Lang::DE);
    /// request.accept_language = Some(b"xx");
    /// assert_eq!(routes.language(&request), Lang::EN);
    /// let routes = routes.with_language(Arc::new(|_: &Incoming<'_>| Some(Lang::DE)));
    /// assert_eq!(routes.language(&request), Lang::DE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn language(&self, request: &Incoming<'_>) -> Lang {
        self.chooser
            .as_ref()
            .and_then(|choose| choose(request))
            .unwrap_or_else(|| self.catalogue.negotiate(request.accept_language))
    }

    /// `text` in `lang`.
    pub(crate) fn t(&self, lang: Lang, text: Text) -> &str {
        self.catalogue.get(lang, text)
    }

    /// Renders the challenge page with the application's own template
    /// (escaping is then the application's job).
    #[must_use]
    pub fn with_page_renderer(mut self, render: PageRenderer) -> Self {
        self.renderer = Some(render);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The engine.
    pub fn engine(&self) -> &Engine<F, S, P> {
        &self.engine
    }

    /// The cookie's name.
    pub fn cookie_name(&self) -> &str {
        self.settings.cookie_name()
    }

    /// The cookie's searcher (built once), to find [`Incoming::token`]
    /// with [`Incoming::read`].
    pub fn cookie(&self) -> &CookieName {
        self.guard.cookie()
    }

    /// Answers one request.
    pub async fn handle(&self, mut request: Incoming<'_>) -> Reply {
        // Every token is minted in the request's client context.
        request.context = self
            .settings()
            .client_context()
            .and_then(|c| c.context(request.address, request.user_agent))
            .map(String::into_bytes);
        // Journeys past their window end here when nothing else ends them.
        self.engine.sweep_some().await;
        let route = match route(request.method, request.path) {
            Ok(route) => route,
            Err(Miss::NotFound) => return Reply::new(404, None, ""),
            Err(Miss::Allow(allow)) => {
                return Reply::new(405, None, "").with_header("allow", allow);
            }
        };
        match route {
            Route::Css => Reply::asset("text/css; charset=utf-8", PAGE_CSS),
            Route::Script => Reply::asset("text/javascript; charset=utf-8", PASSKEY_JS),
            Route::Page => self.page(&request).await,
            Route::Confirm => self.confirm_page(&request).await,
            Route::Status => self.status(&request),
            Route::ApprovalScript => Reply::asset("text/javascript; charset=utf-8", APPROVAL_JS),
            Route::ApprovalStatus(method) => self.approval_status(&request, method).await,
            Route::ApprovalPage(method) => self.approval_page(&request, method).await,
            Route::Drop => self.drop_assurance(&request),
            Route::UpstreamCallback(name) => self.upstream_callback(&request, name.as_str()),
            Route::UpstreamFinish(name) => self.upstream_finish(&request, name.as_str()).await,
            _ => self
                .post(route, &request)
                .await
                .unwrap_or_else(|reply| reply),
        }
    }

    /// The POST routes (and the enrollment pages): each opens with the
    /// checks it needs and answers with the error reply if one fails.
    async fn post(&self, route: Route, request: &Incoming<'_>) -> Result<Reply, Reply> {
        Ok(match route {
            Route::StepUp(method) => {
                let (subject, input) = self.open_form(request)?;
                self.step_up(request, &subject, method, input).await
            }
            Route::CodeSend => {
                let (subject, input) = self.open_form(request)?;
                self.send_code(request, &subject, input).await
            }
            Route::ApprovalStart(method) => {
                let (subject, input) = self.open_form(request)?;
                self.approval_start(request, &subject, method, input).await
            }
            Route::Approve(method) => self.approve(request, method).await?,
            Route::UpstreamStart(name) => {
                let (subject, input) = self.open_form(request)?;
                self.upstream_start(request, &subject, name.as_str(), input)
                    .await
            }
            Route::EnrollTotpPage => {
                let subject = request.subject.clone().ok_or_else(Reply::login_required)?;
                let change = self.totp_change(&subject).await?;
                self.fresh_enough(request, &subject, change).await?;
                enroll_html(200, &self.enroll_page(request).start())
            }
            Route::EnrollTotpStart => {
                let subject = self.open_post(request)?;
                let change = self.totp_change(&subject).await?;
                self.fresh_enough(request, &subject, change).await?;
                self.totp_start(request, &subject).await
            }
            Route::EnrollTotpConfirm => {
                let (subject, input) = self.open_form(request)?;
                let change = self.totp_change(&subject).await?;
                self.fresh_enough(request, &subject, change).await?;
                self.totp_confirm(request, &subject, input).await
            }
            Route::RemoveTotp => {
                let subject = self.open_post(request)?;
                self.fresh_enough(request, &subject, FactorChange::Remove(Method::Totp))
                    .await?;
                let outcome = self.engine.remove_totp(&subject).await;
                self.changed(request, outcome, "totp", Text::TotpRemoved)
            }
            Route::EnrollRecovery => {
                let subject = self.open_post(request)?;
                let codes_left = self
                    .engine
                    .recovery_codes_left(&subject)
                    .await
                    .map_err(|e| unavailable(&e))?;
                let change = if codes_left > 0 {
                    FactorChange::Replace(Method::RecoveryCode)
                } else {
                    FactorChange::Add(Method::RecoveryCode)
                };
                self.fresh_enough(request, &subject, change).await?;
                self.recovery_codes(request, &subject).await
            }
            Route::RecoveryStatus => {
                let subject = request.subject.clone().ok_or_else(Reply::login_required)?;
                self.recovery_status(&subject).await
            }
            Route::RecoveryStart => {
                let subject = self.open_post(request)?;
                self.recovery_start(request, &subject).await?
            }
            Route::RecoveryCancel => {
                let subject = self.open_post(request)?;
                match self.engine.cancel_account_recovery(&subject).await {
                    Ok(cancelled) => json_reply(200, &json!({"cancelled": cancelled})),
                    Err(e) => unavailable(&e),
                }
            }
            #[cfg(feature = "passkey")]
            Route::PasskeyStart => {
                let subject = self.open_post(request)?;
                let start = passkey::start_input(request)?;
                self.ceremony_started(
                    self.engine
                        .start_passkey_step_up_dyn(self.attempt_for(
                            request,
                            &subject,
                            start.confirmation.as_deref(),
                        ))
                        .await,
                )
            }
            #[cfg(feature = "passkey")]
            Route::PasskeyFinish => {
                let subject = self.open_post(request)?;
                self.passkey_finish(request, &subject).await?
            }
            #[cfg(feature = "passkey")]
            Route::EnrollPasskeyPage => {
                let subject = request.subject.clone().ok_or_else(Reply::login_required)?;
                self.fresh_enough(request, &subject, FactorChange::Add(Method::Passkey))
                    .await?;
                enroll_html(200, &self.enroll_page(request).offer_passkey())
            }
            #[cfg(feature = "passkey")]
            Route::EnrollPasskeyStart => {
                let subject = self.open_post(request)?;
                self.fresh_enough(request, &subject, FactorChange::Add(Method::Passkey))
                    .await?;
                self.ceremony_started(
                    self.engine
                        .start_passkey_registration_dyn(&subject, subject.id())
                        .await,
                )
            }
            #[cfg(feature = "passkey")]
            Route::EnrollPasskeyFinish => {
                let subject = self.open_post(request)?;
                self.fresh_enough(request, &subject, FactorChange::Add(Method::Passkey))
                    .await?;
                self.passkey_enroll_finish(request, &subject).await?
            }
            #[cfg(feature = "passkey")]
            Route::RemovePasskey => {
                let (subject, input) = self.open_form(request)?;
                self.passkey_remove(request, &subject, input).await?
            }
            _ => Reply::new(404, None, ""),
        })
    }

    /// Refuses a POST from another origin (`Origin`, or `Sec-Fetch-Site`
    /// for browsers that send no `Origin`; neither is refused too).
    fn same_origin(&self, request: &Incoming<'_>) -> Result<(), Reply> {
        if stepup_http::same_origin(
            self.settings.origin(),
            request.origin,
            request.sec_fetch_site,
        ) {
            return Ok(());
        }
        Err(Reply::forbidden())
    }

    /// Opens a POST: the origin check and the logged-in subject.
    fn open_post(&self, request: &Incoming<'_>) -> Result<Subject, Reply> {
        self.same_origin(request)?;
        request.subject.clone().ok_or_else(Reply::login_required)
    }

    /// Opens a form POST: origin, subject, and the form or JSON body.
    fn open_form(&self, request: &Incoming<'_>) -> Result<(Subject, StepUpInput), Reply> {
        let subject = self.open_post(request)?;
        let bytes = body_bytes(request)?;
        let input = if is_json(request) {
            serde_json::from_slice(bytes).map_err(|_| malformed())?
        } else {
            serde_urlencoded::from_bytes(bytes).map_err(|_| malformed())?
        };
        Ok((subject, input))
    }

    fn verify(
        &self,
        request: &Incoming<'_>,
        subject: Subject,
    ) -> Result<stepup_core::Assurance, ChallengeReason> {
        self.guard.verify_found(subject, request.token)
    }

    /// An attempt by `subject`, from the request's address when known.
    /// Its token is minted in the request's client context.
    fn attempt<'s>(&self, request: &'s Incoming<'_>, subject: &'s Subject) -> Attempt<'s> {
        let mut attempt = Attempt::new(subject).in_language(self.language(request));
        if let Some(address) = request.address {
            attempt = attempt.from_address(address);
        }
        if let Some(context) = &request.context {
            attempt = attempt.in_context(context);
        }
        if let Some(user_agent) = request.user_agent {
            attempt = attempt.from_user_agent(user_agent);
        }
        attempt
    }

    /// [`attempt`](Self::attempt), made for the bound action of the
    /// ceremony `confirmation` when there is one.
    fn attempt_for<'s>(
        &self,
        request: &'s Incoming<'_>,
        subject: &'s Subject,
        confirmation: Option<&'s str>,
    ) -> Attempt<'s> {
        let attempt = self.attempt(request, subject);
        match confirmation {
            Some(id) => attempt.for_action(id),
            None => attempt,
        }
    }

    fn previous_token<'a>(request: &Incoming<'a>) -> Option<&'a str> {
        match request.token {
            Found::One(token) => Some(token),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_path_has_its_methods() {
        assert_eq!(route("GET", "/"), Ok(Route::Page));
        assert_eq!(route("HEAD", "/status"), Ok(Route::Status));
        assert_eq!(route("POST", "/totp"), Ok(Route::StepUp(Factor::Totp)));
        assert_eq!(route("GET", "/totp"), Err(Miss::Allow("POST")));
        assert_eq!(route("POST", "/enroll/totp"), Ok(Route::EnrollTotpStart));
        assert_eq!(
            route("DELETE", "/enroll/totp"),
            Err(Miss::Allow("GET,HEAD,POST"))
        );
        assert_eq!(route("GET", "/nothing"), Err(Miss::NotFound));
        assert_eq!(route("GET", "/status/"), Err(Miss::NotFound));
    }
}
