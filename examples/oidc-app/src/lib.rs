//! stepup when the identity provider owns the factors: login is OpenID
//! Connect at the provider, and so is the step-up.
//!
//! Alice logs in at the provider. `GET /api-key` and the e-mail form
//! (`POST /email`) need level 2 within five minutes; the challenge page
//! offers "Continue at your identity provider" ([`OidcMethod`]): the
//! provider is asked for `acr` `urn:stepup:loa:2` or more, a login right
//! now (`max_age=0`, `prompt=login`), and its verified answer becomes
//! stepup's assurance token. The e-mail form she typed waits across the
//! trip (stepup's kept forms) and goes ahead once she confirms.
//!
//! `cargo run -p oidc-app` installs and starts the test provider
//! (`tests/oidc-provider`, its pinned npm packages through `scripts/npm-ci`)
//! and the app, and prints the URL; `OIDC_ISSUER`, `OIDC_CLIENT_ID` and `OIDC_CLIENT_SECRET` point
//! it at another provider. Sessions and the state store are in memory: a
//! demo's shortcut.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use stepup_axum::{CookieSettings, FromExtension, StepUp};
use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
use stepup_core::{
    Key, KeyId, KeyRing, LevelTable, Policy, ReturnTo, Subject, SystemClock, TokenConfig,
};
use stepup_oidc::{OidcConfig, OidcError, OidcMethod, OidcStepUp};

/// The upstream's name in the challenge routes' paths.
pub const UPSTREAM: &str = "idp";

/// Where the provider is and who the app is there.
#[derive(Clone)]
pub struct Provider {
    /// The issuer (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    /// The app's client id there.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The redirect URIs to register at the provider for an app at `origin`:
/// the login's callback and the step-up's.
pub fn redirect_uris(origin: &str) -> [String; 2] {
    [
        format!("{origin}/login/callback"),
        format!("{origin}/step-up/upstream/{UPSTREAM}/callback"),
    ]
}

/// The test provider (`tests/oidc-provider`, oidc-provider on a free
/// 127.0.0.1 port), stopped
/// when dropped. It logs everyone in as scripted: alice, the lowest `acr`
/// asked for, `amr` `pwd otp`, just now.
#[derive(Debug)]
pub struct TestProvider {
    child: Child,
    issuer: String,
    /// Its stdin: it exits when this closes (also when this process is
    /// killed, and no `Drop` runs).
    _stdin: Option<ChildStdin>,
}

impl TestProvider {
    /// Starts it for a client with `redirect_uris`, installing its pinned
    /// npm packages first when they are missing or stale
    /// (`scripts/npm-ci`): `cargo run -p oidc-app` is the one command.
    pub fn start(redirect_uris: &[String]) -> Result<TestProvider, Box<dyn std::error::Error>> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        // One install at a time (tests start several providers at once).
        static INSTALL: Mutex<()> = Mutex::new(());
        let _one = INSTALL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let installed = Command::new("bash")
            .args(["scripts/npm-ci", "tests/oidc-provider"])
            .current_dir(root)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("scripts/npm-ci: {e}"))?;
        if !installed.success() {
            return Err("npm ci in tests/oidc-provider failed (see above)".into());
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc-provider");
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .env("REDIRECT_URIS", redirect_uris.join(" "))
            .env("PORT", "0")
            .env("EXIT_WITH_STDIN", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("node {dir}/provider.mjs: {e}"))?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let issuer = line.trim().strip_prefix("READY ").map(str::to_owned);
        let Some(issuer) = issuer.filter(|_| read.is_ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(
                format!("the test provider did not start ({line:?}): is node installed?").into(),
            );
        };
        // Keep reading what it prints (a closed pipe would fail its writes).
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Ok(TestProvider {
            child,
            issuer,
            _stdin: stdin,
        })
    }

    /// Where it is and the client it knows.
    pub fn provider(&self) -> Provider {
        Provider {
            issuer: self.issuer.clone(),
            client_id: "stepup-test".to_owned(),
            client_secret: "stepup-test-secret".to_owned(),
        }
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `acr` values of the test provider and the level each proves.
const ACRS: [(&str, u8); 3] = [
    ("urn:stepup:loa:1", 1),
    ("urn:stepup:loa:2", 2),
    ("urn:stepup:loa:3", 3),
];

/// A login session: the user's `sub` at the provider (before the login
/// nothing is kept: the pre-login cookie's hash is the login request's
/// binding). It ends at `expires`.
#[derive(Clone)]
struct Session {
    user: String,
    email: Option<String>,
    expires: Instant,
}

/// A pre-login cookie lives as long as a login request at the provider.
const PRE_LOGIN: Duration = Duration::from_secs(10 * 60);
/// A login lasts a working day.
const LOGGED_IN: Duration = Duration::from_secs(8 * 3600);
/// The most sessions kept (a demo's memory bound): beyond it, new logins
/// wait for old sessions to expire — nobody is logged out early.
const MAX_SESSIONS: usize = 10_000;

/// Logins started per minute, over all clients (a demo's bound on the
/// requests stored and pushed to the provider).
const LOGINS_PER_MINUTE: u32 = 120;

/// The logins started in the current minute.
#[derive(Clone, Default)]
struct Logins(Arc<Mutex<Option<(Instant, u32)>>>);

impl Logins {
    /// Whether one more login may start now.
    fn admit(&self) -> bool {
        let Ok(mut window) = self.0.lock() else {
            return false;
        };
        let now = Instant::now();
        match &mut *window {
            Some((started, count)) if now.duration_since(*started) < Duration::from_secs(60) => {
                *count += 1;
                *count <= LOGINS_PER_MINUTE
            }
            _ => {
                *window = Some((now, 1));
                true
            }
        }
    }
}

/// The sessions, by the SHA-256 of their cookie (the cookie itself is
/// kept nowhere).
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, Session>>>);

impl Sessions {
    fn get(&self, key: &str) -> Option<Session> {
        let session = self.0.lock().ok()?.get(key).cloned()?;
        (session.expires > Instant::now()).then_some(session)
    }

    /// Keeps `session` under `key`; `false` when full.
    fn put(&self, key: String, session: Session) -> bool {
        let Ok(mut map) = self.0.lock() else {
            return false;
        };
        if map.len() >= MAX_SESSIONS && !map.contains_key(&key) {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                return false;
            }
        }
        map.insert(key, session);
        true
    }

    fn remove(&self, key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}

/// The app's state.
#[derive(Clone)]
pub struct App {
    oidc: Arc<OidcStepUp<MemoryStateStore>>,
    stepup: StepUp<MemoryFactorStore, MemoryStateStore, stepup_challenge::NoPasswords>,
    sessions: Sessions,
    logins: Logins,
    cookie: Cookie,
}

/// The session cookie: `__Host-` and `Secure` over https; on plain http
/// (loopback only, see `main.rs`) neither, which browsers would refuse.
#[derive(Clone, Copy)]
struct Cookie {
    secure: bool,
}

impl Cookie {
    fn name(self) -> &'static str {
        if self.secure {
            "__Host-oidc_app_session"
        } else {
            "oidc_app_session"
        }
    }

    /// `SameSite=Lax`: it comes along when the provider sends the browser
    /// back (a top-level GET).
    fn set(self, value: &str, max_age: Duration) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age={}",
            self.name(),
            max_age.as_secs()
        )
    }

    /// Its value in `headers`.
    fn find(self, headers: &HeaderMap) -> Option<&str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name())
            .map(|(_, value)| value)
    }
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// The app served from `origin`, logging in and stepping up at
    /// `provider` (discovered now).
    pub async fn new(origin: &str, provider: &Provider) -> Result<App, OidcError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| OidcError::Config(e.to_string()))?;
        let key =
            Key::from_bytes(KeyId::new(1), &key).map_err(|e| OidcError::Config(e.to_string()))?;
        let [login_callback, step_up_callback] = redirect_uris(origin);
        let config = |redirect: &str| {
            ACRS.iter().fold(
                OidcConfig::new(&provider.issuer, &provider.client_id, redirect)
                    .client_secret(&provider.client_secret),
                |config, (acr, level)| config.acr(acr, *level),
            )
        };
        // The provider's levels beside the local ones: `idp-level-2`
        // meets what a TOTP code meets.
        let levels = config(&step_up_callback).place_levels(LevelTable::nist());
        let tokens = TokenConfig::new(KeyRing::new(key)).with_levels(levels);
        let state = MemoryStateStore::new(SystemClock);
        let login =
            OidcStepUp::discover(config(&login_callback), tokens.issuer(), state.clone()).await?;
        let step_up =
            OidcStepUp::discover(config(&step_up_callback), tokens.issuer(), state.clone()).await?;
        let engine = Engine::new(tokens.issuer(), MemoryFactorStore::new(), state);
        let cookie = Cookie {
            secure: origin.starts_with("https://"),
        };
        let mut stepup = StepUp::new(engine, FromExtension::<Subject>::new(), origin);
        if !cookie.secure {
            // Plain http on loopback: the development cookie.
            stepup = stepup.with_cookie(CookieSettings::insecure_local_development());
        }
        let stepup = stepup.with_upstream(Arc::new(OidcMethod::new(
            step_up,
            UPSTREAM,
            "Confirm at your identity provider",
            // The login is the provider's: a subject id is the `sub`.
            Arc::new(|subject: &Subject| Some(subject.id().to_owned())),
        )));
        Ok(App {
            oidc: Arc::new(login),
            stepup,
            sessions: Sessions::default(),
            logins: Logins::default(),
            cookie,
        })
    }

    /// The app's routes with stepup's.
    pub fn router(&self) -> Router {
        let sensitive = Policy::level(2)
            .max_age(Duration::from_secs(300))
            .with_reason("This needs a fresh confirmation at your identity provider.");
        let from_us = self.stepup.same_origin();
        Router::new()
            .route("/", get(home))
            .route("/login", post(login).route_layer(from_us.clone()))
            .route("/login/callback", get(login_callback))
            .route("/logout", post(logout).route_layer(from_us))
            .route(
                "/api-key",
                get(api_key).route_layer(self.stepup.require(sensitive.clone())),
            )
            .route(
                "/email",
                post(change_email).route_layer(self.stepup.require(sensitive).summary(
                    |form: &stepup_axum::FormFields| {
                        form.get("email")
                            .map(|email| format!("Change your e-mail to {email}"))
                    },
                )),
            )
            .merge(self.stepup.routes())
            .layer(self.stepup.layer())
            .layer(middleware::from_fn_with_state(self.clone(), subjects))
            .with_state(self.clone())
    }
}

/// The SHA-256 of a cookie value, hex: the session's key and its stepup
/// binding.
fn digest(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new random cookie value.
fn fresh_cookie() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Tells stepup who is logged in: the provider's `sub`, bound to this
/// login session (logging out ends its assurance).
async fn subjects(State(app): State<App>, mut request: Request, next: Next) -> Response {
    if let Some((key, session)) = logged_in(&app, request.headers()) {
        request
            .extensions_mut()
            .insert(Subject::new(session.user).with_session(key));
    }
    next.run(request).await
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>oidc-app</title></head><body>{body}</body></html>"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The logged-in session (its key and record), if any.
fn logged_in(app: &App, headers: &HeaderMap) -> Option<(String, Session)> {
    let key = digest(app.cookie.find(headers)?);
    let session = app.sessions.get(&key)?;
    Some((key, session))
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Html<String> {
    match logged_in(&app, &headers) {
        Some((_, session)) => page(&format!(
            "<h1>Hello, {}</h1><p id=\"email\">Your e-mail: {}</p>\
             <p><a href=\"/api-key\">Show my API key</a></p>\
             <form method=\"post\" action=\"/email\"><label>New e-mail <input name=\"email\" type=\"email\" required></label> <button>Change e-mail</button></form>\
             <form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
            escape(&session.user),
            escape(session.email.as_deref().unwrap_or("(none)")),
        )),
        None => page(
            "<h1>oidc-app</h1><form method=\"post\" action=\"/login\"><button>Log in at your identity provider</button></form>",
        ),
    }
}

/// `POST /login`: a fresh pre-login cookie (any earlier session of this
/// browser ends), whose hash binds the login request at the provider —
/// nothing is kept here until the login succeeds; `303` there. Logins
/// are rationed (each stores a request and pushes it to the provider).
async fn login(State(app): State<App>, headers: HeaderMap) -> Response {
    if !app.logins.admit() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many logins: try again in a minute",
        )
            .into_response();
    }
    if let Some(old) = app.cookie.find(&headers).map(digest) {
        app.sessions.remove(&old);
    }
    let Some(cookie) = fresh_cookie() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let key = digest(&cookie);
    match app.oidc.start_login(&key, &ReturnTo::root()).await {
        Ok(url) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, url.to_string()),
                (header::SET_COOKIE, app.cookie.set(&cookie, PRE_LOGIN)),
            ],
        )
            .into_response(),
        Err(e) => {
            eprintln!("oidc-app: login start: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the identity provider cannot be reached",
            )
                .into_response()
        }
    }
}

/// `GET /login/callback`: the provider's answer, for the browser that
/// started; the session id is replaced at login.
async fn login_callback(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(key) = app.cookie.find(&headers).map(digest) else {
        return (
            StatusCode::BAD_REQUEST,
            page("<p>Start the login here. <a href=\"/\">Home</a></p>"),
        )
            .into_response();
    };
    match app
        .oidc
        .finish_login(query.as_deref().unwrap_or(""), &key)
        .await
    {
        Ok(login) => {
            app.sessions.remove(&key);
            let Some(cookie) = fresh_cookie() else {
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            };
            let session = Session {
                user: login.provider_subject,
                email: None,
                expires: Instant::now() + LOGGED_IN,
            };
            if !app.sessions.put(digest(&cookie), session) {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many sessions: try again later",
                )
                    .into_response();
            }
            (
                StatusCode::SEE_OTHER,
                [
                    (header::LOCATION, login.return_to.as_str().to_owned()),
                    (header::SET_COOKIE, app.cookie.set(&cookie, LOGGED_IN)),
                ],
            )
                .into_response()
        }
        Err(e) => {
            eprintln!("oidc-app: login refused: {e}");
            (
                StatusCode::FORBIDDEN,
                page("<p>The login did not complete. <a href=\"/\">Try again</a></p>"),
            )
                .into_response()
        }
    }
}

async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(key) = app.cookie.find(&headers).map(digest) {
        app.sessions.remove(&key);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            (header::SET_COOKIE, app.cookie.set("", Duration::ZERO)),
        ],
    )
        .into_response()
}

async fn api_key(State(app): State<App>, headers: HeaderMap) -> Html<String> {
    let user = logged_in(&app, &headers)
        .map(|(_, s)| s.user)
        .unwrap_or_default();
    page(&format!(
        "<h1>API key</h1><p>{}'s key: <code id=\"api-key\">ak_live_0123456789</code></p><p><a href=\"/\">Home</a></p>",
        escape(&user)
    ))
}

#[derive(Deserialize)]
struct NewEmail {
    email: String,
}

/// `POST /email` (level 2 within five minutes): a form kept across the
/// step-up and sent on once confirmed.
async fn change_email(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<NewEmail>,
) -> Response {
    let Some((key, mut session)) = logged_in(&app, &headers) else {
        return Redirect::to("/").into_response();
    };
    if form.email.len() > 254 || !form.email.contains('@') {
        return (StatusCode::BAD_REQUEST, "an e-mail address, please").into_response();
    }
    session.email = Some(form.email);
    app.sessions.put(key, session);
    Redirect::to("/").into_response()
}
