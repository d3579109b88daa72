//! axum-bank: the smallest bank that shows stepup with axum. Alice logs in
//! with her password; moving money or reading statements asks her to confirm
//! it's really her with a TOTP code, for a while.
//!
//! `cargo run -p axum-bank`, then open the printed URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use stepup_axum::{Assurance, CookieSettings, StepUp};
use stepup_challenge::{
    Engine, FactorStore, FixedPasswords, MemoryFactorStore, MemoryStateStore, PasskeyConfig,
    TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Method, Policy, Subject, TokenConfig};
use stepup_tower::FromExtension;

/// The demo users: (name, password).
pub const USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];
const SESSION_COOKIE: &str = "bank_session";

/// What the bank needs to start.
pub struct BankConfig {
    /// The origin the bank is served from (`http://127.0.0.1:3000`).
    pub origin: String,
    /// The 32+ byte stepup key.
    pub key: Vec<u8>,
    /// Alice's TOTP secret.
    pub alice_totp: TotpSecret,
    /// The clock (a `TestClock` in tests).
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for BankConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankConfig")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
struct ClockHandle(Arc<dyn Clock>);

impl Clock for ClockHandle {
    fn now(&self) -> stepup_core::Timestamp {
        self.0.now()
    }
}

#[derive(Clone, Default)]
struct Bank {
    sessions: Arc<Mutex<HashMap<String, String>>>,
    balances: Arc<Mutex<HashMap<String, u64>>>,
}

/// Builds the bank's router.
pub async fn app(config: BankConfig) -> Result<Router, Box<dyn std::error::Error>> {
    let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &config.key)?));
    let clock = ClockHandle(config.clock.clone());
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(&Subject::new("alice"), config.alice_totp.clone())
        .await?;
    let engine = Engine::new(
        tokens.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_totp(TotpConfig::new("axum-bank"))
    .with_passwords(FixedPasswords::new(USERS))
    // Passkeys need a domain as relying party: the demo runs on `localhost`
    // (browsers treat http://localhost as a secure context).
    .with_passkeys(PasskeyConfig::new("localhost", &config.origin, "axum-bank"))?;
    // Plain http on localhost: the `__Host-` prefix and `Secure` need https,
    // so the demo uses the development cookie. Never do this in production.
    let stepup = StepUp::new(
        tokens.gate(),
        engine,
        FromExtension::<Subject>::new(),
        &config.origin,
    )
    .with_clock(clock)
    .with_cookie(CookieSettings::local_development());

    let bank = Bank::default();
    if let Ok(mut balances) = bank.balances.lock() {
        balances.insert("alice".into(), 125_000);
        balances.insert("bob".into(), 900);
    }
    let transfer_policy = Policy::level(2)
        .max_age(Duration::from_secs(300))
        .with_reason("We need to confirm it's really you before moving money.");
    let close_policy = Policy::method(Method::Passkey)
        .max_age(Duration::from_secs(300))
        .with_reason("Closing your account needs a passkey from the last five minutes.");
    let statements_policy = Policy::level(2)
        .max_age(Duration::from_secs(600))
        .with_reason("Statements show sensitive data: please confirm it's you.");
    Ok(Router::new()
        .route("/", get(home))
        .route("/account", get(account))
        .route(
            "/statements",
            get(statements).route_layer(stepup.require(statements_policy)),
        )
        .route(
            "/transfer",
            post(transfer).route_layer(stepup.require(transfer_policy)),
        )
        .route("/settings", get(settings))
        .route(
            "/settings/close-account",
            post(close_account).route_layer(stepup.require(close_policy)),
        )
        .route("/login", post(login))
        .route("/logout", post(logout))
        .nest("/step-up", stepup.routes())
        .layer(stepup.extension())
        .layer(middleware::from_fn_with_state(
            bank.clone(),
            who_is_logged_in,
        ))
        .with_state(bank))
}

/// The bank's own login: a session cookie names the user. It tells stepup
/// the subject *and the session*, so an assurance never outlives the login.
async fn who_is_logged_in(State(bank): State<Bank>, mut request: Request, next: Next) -> Response {
    if let Some(sid) = session_id(request.headers())
        && let Some(user) = bank.sessions.lock().ok().and_then(|s| s.get(&sid).cloned())
    {
        request
            .extensions_mut()
            .insert(Subject::new(user).with_session(sid));
    }
    next.run(request).await
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            kv.trim()
                .strip_prefix(&format!("{SESSION_COOKIE}="))
                .map(str::to_owned)
        })
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>axum-bank</title>\
         <link rel=\"stylesheet\" href=\"/step-up/assets/page.css\"></head><body><main>{body}</main></body></html>"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn home(State(bank): State<Bank>, subject: Option<Extension<Subject>>) -> Html<String> {
    let Some(Extension(subject)) = subject else {
        return page(
            "<h1>axum-bank</h1><form method=\"post\" action=\"/login\">\
             <label for=\"u\">User</label><input id=\"u\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"p\">Password</label><input id=\"p\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button>Log in</button></form><p>Demo: alice / wonderland, bob / builder.</p>",
        );
    };
    let balance = balance_of(&bank, subject.id());
    page(&format!(
        "<h1>Hello, {user}</h1><p>Balance: {balance}</p>\
         <h2>Transfer</h2><form method=\"post\" action=\"/transfer\">\
         <label for=\"to\">To</label><input id=\"to\" name=\"to\" required>\
         <label for=\"amount\">Amount</label><input id=\"amount\" name=\"amount\" inputmode=\"numeric\" required>\
         <button>Send</button></form>\
         <p><a href=\"/statements\">Statements</a> · <a href=\"/settings\">Settings</a></p>\
         <form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
        user = escape(subject.id()),
    ))
}

fn balance_of(bank: &Bank, user: &str) -> u64 {
    bank.balances
        .lock()
        .ok()
        .and_then(|b| b.get(user).copied())
        .unwrap_or(0)
}

async fn account(State(bank): State<Bank>, subject: Option<Extension<Subject>>) -> Response {
    match subject {
        Some(Extension(s)) => {
            Json(json!({"user": s.id(), "balance": balance_of(&bank, s.id())})).into_response()
        }
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "log in first"})),
        )
            .into_response(),
    }
}

async fn statements(assurance: Assurance) -> Html<String> {
    page(&format!(
        "<h1>Statements</h1><p>(Confirmed at level {}.)</p><ul><li>2026-11-01 salary +4,200</li>\
         <li>2026-11-03 rent -1,350</li></ul><p><a href=\"/\">Back</a></p>",
        assurance.level()
    ))
}

#[derive(Deserialize)]
struct TransferInput {
    to: String,
    amount: u64,
}

async fn transfer(
    State(bank): State<Bank>,
    Extension(subject): Extension<Subject>,
    assurance: Assurance,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let input: Option<TransferInput> = if json {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    };
    let Some(input) = input else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "send `to` and `amount`"})),
        )
            .into_response();
    };
    if input.amount > 10_000 {
        let big = Policy::method(Method::Passkey)
            .or(Policy::method(Method::Totp))
            .max_age(Duration::from_secs(60))
            .with_reason("Transfers over 10,000 need a second factor from the last minute.");
        if let Err(required) = assurance.require(&big) {
            return required.into_response();
        }
    }
    let moved = bank.balances.lock().ok().map(|mut b| {
        let from = b.get(subject.id()).copied().unwrap_or(0);
        if from < input.amount || !b.contains_key(&input.to) {
            return None;
        }
        b.insert(subject.id().to_owned(), from - input.amount);
        *b.entry(input.to.clone()).or_default() += input.amount;
        Some(from - input.amount)
    });
    match moved.flatten() {
        Some(balance) if json => Json(json!({"ok": true, "balance": balance})).into_response(),
        Some(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unknown recipient or not enough money"})),
        )
            .into_response(),
    }
}

async fn settings(subject: Option<Extension<Subject>>) -> Response {
    if subject.is_none() {
        return (
            StatusCode::SEE_OTHER,
            [(LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response();
    }
    page(
        "<h1>Settings</h1>\
         <p><a href=\"/step-up/enroll/passkey\">Set up a passkey</a></p>\
         <p><a href=\"/step-up/enroll/totp\">Set up an authenticator app</a></p>\
         <form method=\"post\" action=\"/step-up/enroll/recovery-codes\"><button>New recovery codes</button></form>\
         <h2>Danger zone</h2>\
         <form method=\"post\" action=\"/settings/close-account\"><button>Close my account</button></form>\
         <p><a href=\"/\">Back</a></p>",
    )
    .into_response()
}

async fn close_account(
    State(bank): State<Bank>,
    Extension(subject): Extension<Subject>,
    headers: HeaderMap,
) -> Response {
    if let Ok(mut balances) = bank.balances.lock() {
        balances.remove(subject.id());
    }
    if let (Some(sid), Ok(mut sessions)) = (session_id(&headers), bank.sessions.lock()) {
        sessions.remove(&sid);
    }
    (StatusCode::OK, Json(json!({"closed": true}))).into_response()
}

#[derive(Deserialize)]
struct LoginInput {
    username: String,
    password: String,
}

async fn login(
    State(bank): State<Bank>,
    axum::extract::Form(input): axum::extract::Form<LoginInput>,
) -> Response {
    let ok = USERS
        .iter()
        .any(|(u, p)| *u == input.username && *p == input.password);
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            page("<p>Wrong user or password. <a href=\"/\">Try again</a></p>"),
        )
            .into_response();
    }
    let mut raw = [0u8; 16];
    if getrandom::fill(&mut raw).is_err() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let sid: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    if let Ok(mut sessions) = bank.sessions.lock() {
        sessions.insert(sid.clone(), input.username);
    }
    let cookie = format!("{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax");
    let mut response = (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static("/"))],
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, v);
    }
    response
}

async fn logout(State(bank): State<Bank>, headers: HeaderMap) -> Response {
    if let (Some(sid), Ok(mut sessions)) = (session_id(&headers), bank.sessions.lock()) {
        sessions.remove(&sid);
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_static("/"))],
    )
        .into_response();
    response.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("bank_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

/// The workspace README's examples, compiled and run as doctests here, the
/// one crate that depends on all the others.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
