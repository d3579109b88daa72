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
    CookieName, Found, GENERIC_REASON, Header, Reason, RequestHead, find_token, is_navigation_of,
};

use crate::{
    Attempt, ChallengeError, ChallengePage, ChangeCheck, Channel, Engine, EnrollPage, FactorChange,
    FactorStore, PAGE_CSS, PASSKEY_JS, PasswordVerifier, StateStore,
};

/// The most a challenge POST body may hold; adapters stop reading beyond it
/// and pass [`Body::TooLarge`].
pub const MAX_BODY: usize = 16 * 1024;

/// How many recovery codes a user gets.
const RECOVERY_CODES: usize = 10;

/// An application's own challenge page: gets what the page should show and
/// returns the HTML (escaping is then the application's job).
pub type PageRenderer = Arc<dyn Fn(&ChallengePage) -> String + Send + Sync>;

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
///     content_type: None,
///     navigation: false,
///     token: Found::None,
///     body: Body::Read(b""),
///     address: None,
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
            content_type: head.value(Header::ContentType),
            navigation: is_navigation_of(head),
            token: find_token(head, cookie, false),
            body,
            address,
        }
    }
}

/// The challenge routes: the settings and the engine. Cheap to clone.
///
/// | route | what |
/// |---|---|
/// | `GET /` | the challenge page (`?return_to=…&reason=…&why=…`) |
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
///
/// Every change to the factors needs a fresh proof by the rule of
/// [`FactorChange`] (ranks from the level table; the password for a first
/// factor), checked when the change starts and again when it is
/// confirmed; removing or replacing one bumps the epoch. `POST /drop` only
/// deletes the cookie in this browser: a copy of the token saved elsewhere
/// stays valid until it expires — what ends assurance everywhere is the
/// application's logout (for session-bound tokens) or bumping the
/// subject's epoch. Every POST must come from the configured
/// origin (403 otherwise); no GET changes state. A form POST answers like a
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
    engine: Arc<Engine<F, S, P>>,
    renderer: Option<PageRenderer>,
}

impl<F, S, P> Clone for ChallengeRoutes<F, S, P> {
    fn clone(&self) -> Self {
        ChallengeRoutes {
            settings: self.settings.clone(),
            engine: self.engine.clone(),
            renderer: self.renderer.clone(),
        }
    }
}

impl<F, S, P> fmt::Debug for ChallengeRoutes<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeRoutes")
            .field("settings", &self.settings)
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
}

#[derive(Deserialize, Default)]
struct PageQuery {
    return_to: Option<String>,
    reason: Option<String>,
    why: Option<String>,
}

#[derive(Deserialize, Default)]
struct StatusQuery {
    policy: Option<String>,
}

/// Which route a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Page,
    Css,
    Script,
    StepUp(Method),
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
        "/assets/page.css" => (get.then_some(Route::Css), "GET,HEAD"),
        "/assets/passkey.js" => (get.then_some(Route::Script), "GET,HEAD"),
        "/totp" => (post.then_some(Route::StepUp(Method::Totp)), "POST"),
        "/password" => (post.then_some(Route::StepUp(Method::Password)), "POST"),
        "/recovery" => (post.then_some(Route::StepUp(Method::RecoveryCode)), "POST"),
        "/code/verify" => (post.then_some(Route::StepUp(Method::EmailCode)), "POST"),
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
        _ => return Err(Miss::NotFound),
    };
    route.ok_or(Miss::Allow(allow))
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
    /// The routes with `settings`, running `engine`. The gate in the
    /// settings and the engine's issuer must come from the same
    /// [`TokenConfig`](stepup_core::TokenConfig).
    pub fn new(settings: Settings, engine: Arc<Engine<F, S, P>>) -> Self {
        ChallengeRoutes {
            settings: Arc::new(settings),
            engine,
            renderer: None,
        }
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

    /// The cookie's name, to find [`Incoming::token`].
    pub fn cookie_name(&self) -> &str {
        self.settings.cookie_name()
    }

    /// Answers one request.
    pub async fn handle(&self, request: Incoming<'_>) -> Reply {
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
            Route::Status => self.status(&request),
            Route::Drop => self.drop_assurance(&request),
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
            Route::EnrollTotpPage => {
                let subject = request.subject.clone().ok_or_else(Reply::login_required)?;
                let change = self.totp_change(&subject).await?;
                self.fresh_enough(request, &subject, change).await?;
                enroll_html(200, &self.enroll_page().start())
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
                self.changed(
                    request,
                    outcome,
                    "totp",
                    "Your authenticator app was removed.",
                )
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
                self.ceremony_started(
                    self.engine
                        .start_passkey_step_up_dyn(self.attempt(request, &subject))
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
                enroll_html(200, &self.enroll_page().offer_passkey())
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

    /// Adding the first authenticator app, or replacing the one there is.
    async fn totp_change(&self, subject: &Subject) -> Result<FactorChange, Reply> {
        let methods = self
            .engine
            .enrolled_methods(subject)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(if methods.contains(&Method::Totp) {
            FactorChange::Replace(Method::Totp)
        } else {
            FactorChange::Add(Method::Totp)
        })
    }

    /// Whether the request's assurance allows `change` (see
    /// [`Engine::authorize_change`]): `Ok`, or the challenge to answer
    /// with (returning to this route afterwards), or the refusal.
    async fn fresh_enough(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        change: FactorChange,
    ) -> Result<(), Reply> {
        let verified = self.verify(request, subject.clone());
        let check = self
            .engine
            .authorize_change(subject, verified.as_ref().ok(), change)
            .await
            .map_err(|e| unavailable(&e))?;
        let policy = match check {
            ChangeCheck::Allowed => return Ok(()),
            ChangeCheck::Prove(policy) => policy,
            ChangeCheck::Refused(why) => return Err(error_reply(403, "change_refused", why)),
        };
        Err(self.challenge_for(request, verified, &policy))
    }

    /// The challenge for `policy`, coming back to this route afterwards.
    fn challenge_for(
        &self,
        request: &Incoming<'_>,
        verified: Result<stepup_core::Assurance, ChallengeReason>,
        policy: &Policy,
    ) -> Reply {
        let s = &self.settings;
        let challenge = match verified {
            Ok(assurance) => match assurance.require(policy, s.clock().now()) {
                Err(challenge) => challenge,
                // Satisfied but refused (an assurance of an older epoch):
                // ask again all the same.
                Ok(()) => s.gate().challenge(ChallengeReason::Stale, policy),
            },
            Err(reason) => s.gate().challenge(reason, policy),
        };
        let target = s.target();
        let back = target.return_to(&format!("{}{}", s.page().as_str(), request.path));
        target.respond(request.navigation, &back, &challenge, Some(policy))
    }

    /// The answer to a factor removal.
    fn changed(
        &self,
        request: &Incoming<'_>,
        outcome: Result<(), ChallengeError>,
        what: &str,
        done: &str,
    ) -> Reply {
        match outcome {
            Ok(()) if is_json(request) => json_reply(200, &json!({"removed": what})),
            Ok(()) => enroll_html(200, &self.enroll_page().done(done)),
            Err(e) => self.failed_json(&e),
        }
    }

    async fn recovery_status(&self, subject: &Subject) -> Reply {
        match self.engine.pending_recovery(subject).await {
            Ok(Some(pending)) => json_reply(
                200,
                &json!({
                    "pending": true,
                    "requested_at": pending.requested_at.as_unix_seconds(),
                    "ready_at": pending.ready_at.as_unix_seconds(),
                    "ready": pending.is_ready(self.settings.clock().now()),
                }),
            ),
            Ok(None) => json_reply(200, &json!({"pending": false})),
            Err(e) => unavailable(&e),
        }
    }

    async fn recovery_start(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
    ) -> Result<Reply, Reply> {
        let verified = self.verify(request, subject.clone());
        let check = self
            .engine
            .authorize_recovery(subject, verified.as_ref().ok())
            .await
            .map_err(|e| unavailable(&e))?;
        match check {
            ChangeCheck::Allowed => {}
            ChangeCheck::Prove(policy) => {
                return Err(self.challenge_for(request, verified, &policy));
            }
            ChangeCheck::Refused(why) => return Err(error_reply(403, "change_refused", why)),
        }
        match self.engine.start_account_recovery(subject).await {
            Ok(pending) => Ok(json_reply(
                202,
                &json!({
                    "pending": true,
                    "requested_at": pending.requested_at.as_unix_seconds(),
                    "ready_at": pending.ready_at.as_unix_seconds(),
                    "ready": pending.is_ready(self.settings.clock().now()),
                }),
            )),
            // A refusal (no notice sink, too many starts) is said as such;
            // only a store failure is a 503.
            Err(e) => Err(self.failed_json(&e)),
        }
    }

    fn verify(
        &self,
        request: &Incoming<'_>,
        subject: Subject,
    ) -> Result<stepup_core::Assurance, ChallengeReason> {
        let s = &self.settings;
        match request.token {
            Found::None => s.gate().verify(subject, None, s.clock().now()),
            Found::One(token) => s.gate().verify(subject, Some(token), s.clock().now()),
            Found::Ambiguous => Err(ChallengeReason::Invalid),
        }
    }

    /// An attempt by `subject`, from the request's address when known.
    fn attempt<'s>(&self, request: &Incoming<'_>, subject: &'s Subject) -> Attempt<'s> {
        let attempt = Attempt::new(subject);
        match request.address {
            Some(address) => attempt.from_address(address),
            None => attempt,
        }
    }

    fn previous_token<'a>(request: &Incoming<'a>) -> Option<&'a str> {
        match request.token {
            Found::One(token) => Some(token),
            _ => None,
        }
    }

    fn new_page(&self, return_to: &ReturnTo, message: impl Into<String>) -> ChallengePage {
        ChallengePage::new(self.settings.page().as_str(), return_to, message)
    }

    async fn page(&self, request: &Incoming<'_>) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: PageQuery = parse_query(request.query);
        let s = &self.settings;
        let return_to = s.return_path(query.return_to.as_deref());
        // Only configured text: `why` is an identifier, never the sentence.
        let (message, _) = self.reason(query.why.as_deref());
        let mut page = self.new_page(&return_to, message);
        if let Some(detail) = reason_detail(query.reason.as_deref()) {
            page = page.detail(detail);
        }
        self.render_page(subject, page, 200, query.why.as_deref())
            .await
    }

    /// The registered reason `why` names, and the methods that can satisfy
    /// its policy (empty: any).
    fn reason(&self, why: Option<&str>) -> Reason {
        why.and_then(|id| self.settings.reason(id))
            .unwrap_or_else(|| (GENERIC_REASON.to_owned(), Vec::new()))
    }

    /// The page with the subject's methods — only those that can satisfy
    /// the policy `why` names, when it names one.
    async fn render_page(
        &self,
        subject: &Subject,
        mut page: ChallengePage,
        status: u16,
        why: Option<&str>,
    ) -> Reply {
        let methods = match self.engine.enrolled_methods(subject).await {
            Ok(m) => m,
            Err(e) => return unavailable(&e),
        };
        let (_, allowed) = self.reason(why);
        if let Some(id) = why {
            page = page.why(id);
        }
        let offered = methods
            .iter()
            .filter(|m| allowed.is_empty() || allowed.iter().any(|a| m.satisfies(a)));
        for method in offered {
            page = match method {
                Method::Totp => page.with_totp(self.engine.totp_config().digits()),
                Method::Password => page.with_password(),
                Method::RecoveryCode => page.with_recovery_code(),
                Method::Passkey | Method::DeviceBoundPasskey => page.with_passkey(),
                Method::EmailCode => page.with_code_channel(Channel::Email),
                Method::SmsCode => page.with_code_channel(Channel::Sms),
                _ => page,
            };
            self.engine.challenge_issued(subject, *method);
        }
        let rendered = match &self.renderer {
            Some(render) => Ok(render(&page)),
            None => page.html(),
        };
        match rendered {
            Ok(html) => Reply::html(status, html),
            Err(e) => unavailable(&ChallengeError::Store(e)),
        }
    }

    async fn step_up(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        method: Method,
        input: StepUpInput,
    ) -> Reply {
        let json = is_json(request);
        let attempt = self
            .attempt(request, subject)
            .previous_token(Self::previous_token(request));
        let channel = input
            .channel
            .as_deref()
            .and_then(Channel::parse)
            .unwrap_or(Channel::Email);
        let (method, form) = match method {
            Method::Password => (Method::Password, "password"),
            Method::RecoveryCode => (Method::RecoveryCode, "recovery"),
            Method::EmailCode => (channel.method(), "code"),
            _ => (Method::Totp, "totp"),
        };
        let secret = match method {
            Method::Password => input.password.as_deref(),
            _ => input.code.as_deref(),
        }
        .unwrap_or("");
        let engine = &self.engine;
        let outcome = match method {
            Method::Password => engine.step_up_password(attempt, secret).await,
            Method::RecoveryCode => engine.step_up_recovery_code(attempt, secret).await,
            Method::EmailCode | Method::SmsCode => {
                let challenge_id = input.challenge_id.as_deref().unwrap_or("");
                engine
                    .step_up_code(attempt, channel, challenge_id, secret)
                    .await
            }
            _ => engine.step_up_totp(attempt, secret).await,
        };
        let return_to = self.settings.return_path(input.return_to.as_deref());
        match outcome {
            Ok(token) => self.succeeded(&token, json, &return_to),
            Err(error) if json => self.failed_json(&error),
            Err(error) => {
                let status = failure_status(&error);
                if status == 503 {
                    return unavailable(&error);
                }
                let (message, _) = self.reason(input.why.as_deref());
                let mut page = self
                    .new_page(&return_to, message)
                    .error(self.user_message(&error), form);
                // A wrong code keeps the code form up, for the same challenge.
                if let (
                    Method::EmailCode | Method::SmsCode,
                    Some(id),
                    ChallengeError::Wrong { .. },
                ) = (method, input.challenge_id.as_deref(), &error)
                {
                    page = page.awaiting_code(channel, id, "your registered address");
                }
                let reply = self
                    .render_page(subject, page, status, input.why.as_deref())
                    .await;
                self.retry_after(reply, &error)
            }
        }
    }

    async fn send_code(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: StepUpInput,
    ) -> Reply {
        let Some(channel) = input.channel.as_deref().and_then(Channel::parse) else {
            return error_reply(400, "channel", "Choose `email` or `sms`.");
        };
        let return_to = self.settings.return_path(input.return_to.as_deref());
        match self
            .engine
            .send_code(self.attempt(request, subject), channel)
            .await
        {
            Ok(sent) if is_json(request) => json_reply(
                200,
                &json!({
                    "challenge_id": sent.challenge_id,
                    "channel": channel.as_str(),
                    "destination_hint": sent.destination_hint,
                    "expires_at": sent.expires_at.as_unix_seconds(),
                }),
            ),
            Ok(sent) => {
                let (message, _) = self.reason(input.why.as_deref());
                let page = self.new_page(&return_to, message).awaiting_code(
                    channel,
                    &sent.challenge_id,
                    &sent.destination_hint,
                );
                self.render_page(subject, page, 200, input.why.as_deref())
                    .await
            }
            Err(error) if is_json(request) => self.failed_json(&error),
            Err(error) => {
                let status = failure_status(&error);
                if status == 503 {
                    return unavailable(&error);
                }
                let (message, _) = self.reason(input.why.as_deref());
                let page = self
                    .new_page(&return_to, message)
                    .error(self.user_message(&error), "code");
                let reply = self
                    .render_page(subject, page, status, input.why.as_deref())
                    .await;
                self.retry_after(reply, &error)
            }
        }
    }

    /// A successful step-up: the cookie, and `303` back or the JSON summary.
    fn succeeded(&self, token: &IssuedToken, json: bool, return_to: &ReturnTo) -> Reply {
        let reply = if json {
            let a = token.assurance();
            json_reply(
                200,
                &json!({
                    "ok": true,
                    "level": a.level(),
                    "acr": a.acr(),
                    "amr": a.amr(),
                    "expires_at": a.expires_at().as_unix_seconds(),
                    "return_to": return_to.as_str(),
                }),
            )
        } else {
            Reply::see_other(return_to.as_str())
        };
        reply.with_header(
            "set-cookie",
            self.settings
                .cookie()
                .set_cookie(token.value(), token.max_age()),
        )
    }

    /// The error as the page says it: whole sentences, a lockout in minutes
    /// rather than a timestamp.
    fn user_message(&self, error: &ChallengeError) -> String {
        match error {
            ChallengeError::LockedOut { .. } => {
                let minutes = self.wait_seconds(error).div_ceil(60).max(1);
                format!(
                    "Too many attempts. Please wait {minutes} minute{} and try again.",
                    plural(minutes)
                )
            }
            ChallengeError::Wrong { few_left: true } => {
                "That was not right. After a few more failures we will pause this for a while."
                    .to_owned()
            }
            ChallengeError::Wrong { few_left: false } => {
                "That was not right. Please try again.".to_owned()
            }
            other => {
                let text = other.to_string();
                let mut chars = text.chars();
                match chars.next() {
                    Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
                    None => text,
                }
            }
        }
    }

    /// Seconds until a lockout ends (0 for other errors).
    fn wait_seconds(&self, error: &ChallengeError) -> u64 {
        match error {
            ChallengeError::LockedOut { until } => until
                .as_unix_seconds()
                .saturating_sub(self.settings.clock().now().as_unix_seconds()),
            _ => 0,
        }
    }

    /// A JSON-only route's answer: `ok` on success, the refusal as JSON.
    #[cfg(feature = "passkey")]
    fn answer<T>(&self, outcome: Result<T, ChallengeError>, ok: impl FnOnce(T) -> Reply) -> Reply {
        match outcome {
            Ok(value) => ok(value),
            Err(e) => self.failed_json(&e),
        }
    }

    fn failed_json(&self, error: &ChallengeError) -> Reply {
        let status = failure_status(error);
        if status == 503 {
            return unavailable(error);
        }
        let mut body = json!({"error": error_code(error), "message": error.to_string()});
        match error {
            ChallengeError::Wrong { few_left } => {
                insert(&mut body, "few_attempts_left", json!(few_left));
            }
            ChallengeError::LockedOut { until } => {
                insert(&mut body, "locked_until", json!(until.as_unix_seconds()));
            }
            _ => {}
        }
        self.retry_after(json_reply(status, &body), error)
    }

    /// A lockout's answer, page or JSON, says when it ends.
    fn retry_after(&self, reply: Reply, error: &ChallengeError) -> Reply {
        if matches!(error, ChallengeError::LockedOut { .. }) {
            reply.with_header("retry-after", self.wait_seconds(error).max(1).to_string())
        } else {
            reply
        }
    }

    fn status(&self, request: &Incoming<'_>) -> Reply {
        let Some(subject) = &request.subject else {
            return Reply::login_required();
        };
        let query: StatusQuery = parse_query(request.query);
        let policy = match query.policy.as_deref().map(Policy::parse) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => return error_reply(400, "policy", &e.to_string()),
        };
        let now = self.settings.clock().now();
        let (mut body, satisfied) = match self.verify(request, subject.clone()) {
            Ok(a) => {
                let methods: Vec<_> = a
                    .proofs()
                    .iter()
                    .map(|p| {
                        json!({
                            "method": p.method().to_string(),
                            "proven_at": p.at().as_unix_seconds(),
                            "age": now.duration_since(p.at()).as_secs(),
                        })
                    })
                    .collect();
                let satisfied = policy.as_ref().is_some_and(|p| a.satisfies(p, now));
                let body = json!({
                    "assured": true,
                    "level": a.level(),
                    "acr": a.acr(),
                    "methods": methods,
                    "expires_at": a.expires_at().as_unix_seconds(),
                });
                (body, satisfied)
            }
            Err(reason) => (json!({"assured": false, "reason": reason.code()}), false),
        };
        if let Some(policy) = &policy {
            insert(&mut body, "policy", json!(policy.to_string()));
            insert(&mut body, "satisfied", json!(satisfied));
        }
        json_reply(200, &body)
    }

    fn drop_assurance(&self, request: &Incoming<'_>) -> Reply {
        let s = &self.settings;
        if let Err(forbidden) = self.same_origin(request) {
            return forbidden;
        }
        let reply = if is_json(request) {
            json_reply(200, &json!({"dropped": true}))
        } else {
            let input: StepUpInput = match request.body {
                Body::Read(bytes) => serde_urlencoded::from_bytes(bytes).unwrap_or_default(),
                Body::TooLarge => StepUpInput::default(),
            };
            Reply::see_other(s.return_path(input.return_to.as_deref()).as_str())
        };
        reply.with_header("set-cookie", s.cookie().delete_cookie())
    }

    fn enroll_page(&self) -> EnrollPage {
        EnrollPage::new(self.settings.page().as_str(), self.settings.fallback())
    }

    async fn totp_start(&self, request: &Incoming<'_>, subject: &Subject) -> Reply {
        let enrollment = match self
            .engine
            .start_totp_enrollment(subject, subject.id())
            .await
        {
            Ok(e) => e,
            Err(e) => return unavailable(&e),
        };
        let qr = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(enrollment.qr_png())
        );
        if is_json(request) {
            return json_reply(
                200,
                &json!({
                    "otpauth_uri": enrollment.otpauth_uri(),
                    "manual_entry_key": enrollment.manual_entry_key(),
                    "qr_png_data_url": qr,
                }),
            );
        }
        enroll_html(
            200,
            &self
                .enroll_page()
                .scan(qr, enrollment.manual_entry_key().to_owned()),
        )
    }

    async fn totp_confirm(
        &self,
        request: &Incoming<'_>,
        subject: &Subject,
        input: StepUpInput,
    ) -> Reply {
        let code = input.code.as_deref().unwrap_or("");
        let outcome = self
            .engine
            .confirm_totp_enrollment(self.attempt(request, subject), code)
            .await;
        match (outcome, is_json(request)) {
            (Ok(()), true) => json_reply(200, &json!({"enrolled": "totp"})),
            (Ok(()), false) => enroll_html(
                200,
                &self.enroll_page().done("Your authenticator app is set up."),
            ),
            (Err(e), true) => self.failed_json(&e),
            (Err(e), false) => {
                let status = failure_status(&e);
                if status == 503 {
                    return unavailable(&e);
                }
                enroll_html(status, &self.enroll_page().error(e.to_string()).start())
            }
        }
    }

    async fn recovery_codes(&self, request: &Incoming<'_>, subject: &Subject) -> Reply {
        let codes = match self
            .engine
            .generate_recovery_codes(subject, RECOVERY_CODES)
            .await
        {
            Ok(codes) => codes.iter().map(|c| c.grouped()).collect::<Vec<_>>(),
            Err(e) => return unavailable(&e),
        };
        if is_json(request) {
            return json_reply(200, &json!({"recovery_codes": codes}));
        }
        enroll_html(200, &self.enroll_page().codes(codes))
    }
}

#[cfg(feature = "passkey")]
mod passkey_routes {
    use super::*;
    use crate::webauthn::{PublicKeyCredential, RegisterPublicKeyCredential};

    #[derive(Deserialize)]
    struct Finish<C> {
        ceremony: String,
        credential: C,
        return_to: Option<String>,
        name: Option<String>,
    }

    fn read<T: serde::de::DeserializeOwned>(request: &Incoming<'_>) -> Result<T, Reply> {
        serde_json::from_slice(body_bytes(request)?).map_err(|_| malformed())
    }

    impl<F: FactorStore, S: StateStore, P: PasswordVerifier> ChallengeRoutes<F, S, P> {
        /// The answer to a ceremony start: its id and the options for
        /// `navigator.credentials`, or the refusal as JSON.
        pub(super) fn ceremony_started<O: serde::Serialize>(
            &self,
            started: Result<(String, O), ChallengeError>,
        ) -> Reply {
            self.answer(started, |(ceremony, options)| {
                json_reply(200, &json!({"ceremony": ceremony, "options": options}))
            })
        }

        pub(super) async fn passkey_finish(
            &self,
            request: &Incoming<'_>,
            subject: &Subject,
        ) -> Result<Reply, Reply> {
            let input: Finish<PublicKeyCredential> = read(request)?;
            let attempt = self
                .attempt(request, subject)
                .previous_token(Self::previous_token(request));
            let outcome = self
                .engine
                .step_up_passkey_dyn(attempt, &input.ceremony, &input.credential)
                .await;
            let back = self.settings.return_path(input.return_to.as_deref());
            Ok(self.answer(outcome, |token| self.succeeded(&token, true, &back)))
        }

        pub(super) async fn passkey_remove(
            &self,
            request: &Incoming<'_>,
            subject: &Subject,
            input: StepUpInput,
        ) -> Result<Reply, Reply> {
            use base64::Engine as _;
            let id = input
                .id
                .as_deref()
                .and_then(|id| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(id)
                        .ok()
                })
                .ok_or_else(|| error_reply(400, "id", "Name the passkey by its `id`."))?;
            let method = self
                .engine
                .passkey_method_dyn(subject, &id)
                .await
                .map_err(|e| self.failed_json(&e))?
                .ok_or_else(|| self.failed_json(&ChallengeError::NotEnrolled(Method::Passkey)))?;
            self.fresh_enough(request, subject, FactorChange::Remove(method))
                .await?;
            let outcome = self.engine.remove_passkey_dyn(subject, &id).await;
            Ok(self.changed(request, outcome, "passkey", "The passkey was removed."))
        }

        pub(super) async fn passkey_enroll_finish(
            &self,
            request: &Incoming<'_>,
            subject: &Subject,
        ) -> Result<Reply, Reply> {
            let input: Finish<RegisterPublicKeyCredential> = read(request)?;
            let name = input.name.as_deref().unwrap_or("Passkey");
            let outcome = self
                .engine
                .finish_passkey_registration_dyn(
                    self.attempt(request, subject),
                    &input.ceremony,
                    &input.credential,
                    name,
                )
                .await;
            let back = self.settings.return_path(input.return_to.as_deref());
            Ok(self.answer(outcome, |()| {
                json_reply(
                    200,
                    &json!({"enrolled": "passkey", "return_to": back.as_str()}),
                )
            }))
        }
    }
}

/// Adds a field to a JSON object.
fn insert(body: &mut Value, key: &str, value: Value) {
    if let Some(object) = body.as_object_mut() {
        object.insert(key.to_owned(), value);
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn parse_query<T: serde::de::DeserializeOwned + Default>(query: Option<&str>) -> T {
    query
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default()
}

fn is_json(request: &Incoming<'_>) -> bool {
    request.content_type.is_some_and(stepup_http::is_json)
}

fn body_bytes<'a>(request: &Incoming<'a>) -> Result<&'a [u8], Reply> {
    match request.body {
        Body::Read(bytes) => Ok(bytes),
        Body::TooLarge => Err(error_reply(413, "too_large", "The request is too large.")),
    }
}

/// A JSON answer with `Cache-Control: no-store`.
fn json_reply(status: u16, value: &Value) -> Reply {
    Reply::json(status, value.to_string())
}

/// `{"error": code, "message": message}`.
fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    json_reply(status, &json!({"error": code, "message": message}))
}

fn malformed() -> Reply {
    error_reply(400, "malformed", "The request body could not be read.")
}

fn enroll_html(status: u16, page: &EnrollPage) -> Reply {
    match page.html() {
        Ok(body) => Reply::html(status, body),
        Err(e) => unavailable(&ChallengeError::Store(e)),
    }
}

fn unavailable(error: &ChallengeError) -> Reply {
    // The kind only: a store's message may carry what an application put in
    // its error (an address, a host name).
    let kind = match error {
        ChallengeError::Store(e) => e.store(),
        ChallengeError::Issue(_) => "issue",
        ChallengeError::Busy => "busy",
        _ => "other",
    };
    tracing::warn!(target: "stepup", kind, "step-up unavailable");
    error_reply(
        503,
        "unavailable",
        "Confirming is not possible right now; please try again in a moment.",
    )
}

fn failure_status(error: &ChallengeError) -> u16 {
    match error {
        ChallengeError::LockedOut { .. } | ChallengeError::Disabled(_) => 429,
        ChallengeError::Store(_) | ChallengeError::Issue(_) | ChallengeError::Busy => 503,
        ChallengeError::Recovery(_) => 409,
        _ => 400,
    }
}

fn error_code(error: &ChallengeError) -> &'static str {
    match error {
        ChallengeError::Wrong { .. } => "wrong",
        ChallengeError::LockedOut { .. } => "locked_out",
        ChallengeError::AlreadyUsed => "already_used",
        ChallengeError::Format(_) => "format",
        ChallengeError::NotEnrolled(_) => "not_enrolled",
        ChallengeError::NoPendingCode => "no_pending_code",
        ChallengeError::NoPendingCeremony => "no_pending_ceremony",
        ChallengeError::PasskeyRejected => "passkey_rejected",
        ChallengeError::NoPendingEnrollment => "no_pending_enrollment",
        ChallengeError::Disabled(_) => "method_disabled",
        ChallengeError::Recovery(_) => "recovery",
        _ => "failed",
    }
}

fn reason_detail(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "stale" | "expired" => "Your last confirmation was a while ago.",
        "insufficient_level" | "missing_method" => {
            "This needs a stronger confirmation than the last one."
        }
        "revoked" => "Your earlier confirmations were reset.",
        "other_binding" => "Your earlier confirmation belongs to another sign-in.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_path_has_its_methods() {
        assert_eq!(route("GET", "/"), Ok(Route::Page));
        assert_eq!(route("HEAD", "/status"), Ok(Route::Status));
        assert_eq!(route("POST", "/totp"), Ok(Route::StepUp(Method::Totp)));
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
