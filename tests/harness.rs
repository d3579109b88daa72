//! The harness of the conformance suite: starts one of the example banks on
//! `127.0.0.1:0` with a test clock, a fixed key and TOTP secret and a
//! recording code sender, and gives the scenarios a cookie-keeping HTTP
//! client. The scenarios themselves (`conformance.rs`) are written once and
//! stamped out per adapter. [`restart`] runs a bank's binary as a process
//! instead, for the banks' own restart tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use bank_core::BankConfig;
use reqwest::{Client, StatusCode, redirect};
use serde_json::Value;
use stepup_challenge::webauthn::Url;
use stepup_challenge::{AttemptLimits, RecordingSender, TotpConfig, TotpSecret};
use stepup_core::{Clock, TestClock, Timestamp};
use webauthn_authenticator_rs::WebauthnAuthenticator;
pub use webauthn_authenticator_rs::softpasskey::SoftPasskey;

pub mod restart;

/// Stamps every scenario — an `async fn(Bank)` — out once per adapter: a
/// test `axum::<scenario>` against axum-bank and `actix::<scenario>` against
/// actix-bank, each on a fresh bank.
#[macro_export]
macro_rules! per_adapter {
    ($($scenario:ident),* $(,)?) => {
        mod axum {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::start($crate::Adapter::Axum).await).await;
                }
            )*
        }
        mod actix {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::start($crate::Adapter::Actix).await).await;
                }
            )*
        }
    };
}

/// `Accept` of a browser navigation.
pub const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";
/// When every bank's clock starts.
pub const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

/// Which example bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// `axum-bank`.
    Axum,
    /// `actix-bank`.
    Actix,
}

/// A running bank and a client with its own cookie jar.
#[derive(Debug)]
pub struct Bank {
    /// Which adapter serves it.
    pub adapter: Adapter,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The origin the bank accepts challenge POSTs from.
    pub origin: String,
    /// The bank's clock.
    pub clock: TestClock,
    /// Alice's TOTP secret.
    pub secret: TotpSecret,
    /// Where one-time codes go.
    pub codes: RecordingSender,
    /// The step-up events it emitted.
    pub events: Events,
    /// The approve links it sent to "the other device".
    pub approvals: bank_core::Approvals,
    /// A client keeping cookies and not following redirects.
    pub client: Client,
}

/// `name=value` of a `Set-Cookie` value.
pub fn first_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").to_owned()
}

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts a bank served by `adapter`.
pub async fn start(adapter: Adapter) -> Bank {
    start_with(adapter, None).await
}

/// Starts a bank served by `adapter` with other attempt limits.
pub async fn start_with(adapter: Adapter, limits: Option<AttemptLimits>) -> Bank {
    start_configured(adapter, limits, None).await
}

/// Starts a bank served by `adapter` with other attempt limits and another
/// level table.
pub async fn start_configured(
    adapter: Adapter,
    limits: Option<AttemptLimits>,
    levels: Option<stepup_core::LevelTable>,
) -> Bank {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let origin = format!("http://localhost:{port}");
    let clock = TestClock::new(T0);
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let codes = RecordingSender::new();
    let events = Events::default();
    let approvals = bank_core::Approvals::default();
    let config = BankConfig {
        origin: origin.clone(),
        key: vec![9u8; 32],
        alice_totp: secret.clone(),
        // A database of the bank's own, in memory, sealed under a fixed key.
        database_url: "sqlite::memory:".to_owned(),
        sealing_keys: bank_core::SealingKeys::new(bank_core::SealingKey::new(1, [7u8; 32])),
        print_startup: false,
        clock: Arc::new(clock.clone()),
        codes: Arc::new(codes.clone()),
        limits,
        extra_users: 0,
        levels,
        events: Some(Arc::new(events.clone())),
        approvals: approvals.clone(),
    };
    match adapter {
        Adapter::Axum => {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum_bank::app(config).await.unwrap();
            let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
        }
        Adapter::Actix => {
            let server = actix_bank::serve(config, listener, 1).await.unwrap();
            tokio::spawn(server);
        }
    }
    Bank {
        adapter,
        base,
        origin,
        clock,
        secret,
        codes,
        events,
        approvals,
        client: client(),
    }
}

/// The step-up events a bank emitted, in order.
#[derive(Clone, Debug, Default)]
pub struct Events(Arc<std::sync::Mutex<Vec<stepup_challenge::Event>>>);

impl stepup_challenge::EventSink for Events {
    fn record(&self, event: &stepup_challenge::Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Events {
    /// Every event so far.
    pub fn all(&self) -> Vec<stepup_challenge::Event> {
        self.0.lock().unwrap().clone()
    }

    /// How many events of each kind (by name), sorted by name.
    pub fn counts(&self) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for event in self.0.lock().unwrap().iter() {
            *counts.entry(event.kind.as_str()).or_insert(0) += 1;
        }
        counts
    }

    /// Forgets the events so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Bank {
    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Alice's current TOTP code.
    pub fn code(&self) -> String {
        TotpConfig::new(bank_core::TOTP_ISSUER)
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    /// A second client (its own cookies) for the same bank.
    pub fn other_client(&self) -> Client {
        client()
    }

    /// Logs in with the form.
    pub async fn login(&self, user: &str, password: &str) -> StatusCode {
        self.client
            .post(self.url("/login"))
            .header("origin", &self.origin)
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `POST /transfer` of `amount` to bob, as JSON.
    pub async fn transfer(&self, amount: u64) -> reqwest::Response {
        self.client
            .post(self.url("/transfer"))
            .header("origin", &self.origin)
            .json(&serde_json::json!({"to": "bob", "amount": amount}))
            .send()
            .await
            .unwrap()
    }

    /// `POST /transfer` of `amount` to bob, as JSON, with the grant of the
    /// bound step-up made for ceremony `grant` (`Stepup-Grant`).
    pub async fn transfer_granted(&self, amount: u64, grant: &str) -> reqwest::Response {
        self.client
            .post(self.url("/transfer"))
            .header("origin", &self.origin)
            .header("stepup-grant", grant)
            .json(&serde_json::json!({"to": "bob", "amount": amount}))
            .send()
            .await
            .unwrap()
    }

    /// Alice's balance (`GET /account`).
    pub async fn balance(&self) -> u64 {
        let (status, account) = self.get_json("/account").await;
        assert_eq!(status, StatusCode::OK, "{account}");
        account["balance"].as_u64().unwrap()
    }

    /// `POST /transfer` of `amount`, which must be challenged: the problem
    /// body (RFC 9457).
    pub async fn transfer_challenge(&self, amount: u64) -> Value {
        let r = self.transfer(amount).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        r.json().await.unwrap()
    }

    /// Steps up with TOTP by JSON: the assurance cookie's `name=value`.
    pub async fn step_up_cookie(&self) -> String {
        let r = self
            .post_json("/step-up/totp", serde_json::json!({"code": self.code()}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        first_pair(r.headers().get("set-cookie").unwrap().to_str().unwrap())
    }

    /// A TOTP step-up from a fresh client carrying only the login cookie
    /// `session` (`name=value`): the assurance cookie's `name=value`.
    pub async fn step_up_session(&self, session: &str) -> String {
        let r = client()
            .post(self.url("/step-up/totp"))
            .header("origin", &self.origin)
            .header("cookie", session)
            .json(&serde_json::json!({"code": self.code()}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        first_pair(r.headers().get("set-cookie").unwrap().to_str().unwrap())
    }

    /// Logs in with a fresh client: the session cookie's `name=value`.
    pub async fn session_cookie(&self, user: &str, password: &str) -> String {
        let r = client()
            .post(self.url("/login"))
            .header("origin", &self.origin)
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        first_pair(r.headers().get("set-cookie").unwrap().to_str().unwrap())
    }

    /// `POST /transfer` of 1 from a fresh client with exactly `cookie`.
    pub async fn transfer_with_cookie(&self, cookie: &[u8]) -> reqwest::Response {
        self.transfer_with_cookies(&[cookie]).await
    }

    /// `POST /transfer` of 1 from a fresh client with exactly these `Cookie`
    /// headers.
    pub async fn transfer_with_cookies(&self, cookies: &[&[u8]]) -> reqwest::Response {
        let mut request = client()
            .post(self.url("/transfer"))
            .header("origin", &self.origin)
            .json(&serde_json::json!({"to": "bob", "amount": 1}));
        for cookie in cookies {
            request = request.header(
                "cookie",
                reqwest::header::HeaderValue::from_bytes(cookie).unwrap(),
            );
        }
        request.send().await.unwrap()
    }

    /// Registers `key` as a passkey (the session must be allowed to enroll):
    /// the finish answer.
    pub async fn register_passkey(&self, key: &mut SoftPasskey) -> reqwest::Response {
        let start = self.start_ceremony("/step-up/enroll/passkey/start").await;
        let credential = key
            .do_registration(
                self.origin_url(),
                serde_json::from_value(start["options"].clone()).unwrap(),
            )
            .unwrap();
        self.post_json(
            "/step-up/enroll/passkey/finish",
            serde_json::json!({"ceremony": start["ceremony"], "credential": credential}),
        )
        .await
    }

    /// Starts a passkey step-up and lets `key` answer it as if on `origin`:
    /// the body to POST to `/step-up/passkey/finish` (`None` when the
    /// authenticator refuses, as it does for a foreign relying party).
    pub async fn passkey_assertion(&self, key: &mut SoftPasskey, origin: Url) -> Option<Value> {
        self.passkey_assertion_with(key, origin, serde_json::json!({}))
            .await
    }

    /// [`passkey_assertion`](Bank::passkey_assertion) for a ceremony started
    /// with `start` as its body (`{"confirmation": …}`: made for a bound
    /// action).
    pub async fn passkey_assertion_with(
        &self,
        key: &mut SoftPasskey,
        origin: Url,
        start: Value,
    ) -> Option<Value> {
        let start = self
            .start_ceremony_with("/step-up/passkey/start", start)
            .await;
        let assertion = key
            .do_authentication(
                origin,
                serde_json::from_value(start["options"].clone()).unwrap(),
            )
            .ok()?;
        Some(serde_json::json!({"ceremony": start["ceremony"], "credential": assertion}))
    }

    /// A passkey step-up with `key` from the bank's own origin.
    pub async fn passkey_step_up(&self, key: &mut SoftPasskey) -> reqwest::Response {
        let finish = self
            .passkey_assertion(key, self.origin_url())
            .await
            .unwrap();
        self.post_json("/step-up/passkey/finish", finish).await
    }

    /// The JSON answer of a ceremony start.
    pub async fn start_ceremony(&self, path: &str) -> Value {
        self.start_ceremony_with(path, serde_json::json!({})).await
    }

    /// The JSON answer of a ceremony start with `body` (a passkey step-up
    /// made for a bound action's `confirmation`).
    pub async fn start_ceremony_with(&self, path: &str, body: Value) -> Value {
        self.post_json(path, body).await.json().await.unwrap()
    }

    /// The origin as a URL, for the authenticator.
    pub fn origin_url(&self) -> Url {
        Url::parse(&self.origin).unwrap()
    }

    /// The same JSON POST sent `n` times at once: the statuses.
    pub async fn race(
        self: &Arc<Self>,
        n: usize,
        path: &'static str,
        body: Value,
    ) -> Vec<StatusCode> {
        let mut racers = tokio::task::JoinSet::new();
        for _ in 0..n {
            let bank = self.clone();
            let body = body.clone();
            racers.spawn(async move { bank.post_json(path, body).await.status() });
        }
        racers.join_all().await
    }

    /// A TOTP step-up by form, from the bank's origin.
    pub async fn totp(&self, code: &str, return_to: &str) -> reqwest::Response {
        self.form("/step-up/totp", &[("code", code), ("return_to", return_to)])
            .await
    }

    /// A form POST from the bank's origin.
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("origin", &self.origin)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Another client, logged in as `user` (a second login session).
    pub async fn login_elsewhere(&self, user: &str, password: &str) -> Client {
        let other = client();
        let r = other
            .post(self.url("/login"))
            .header("origin", &self.origin)
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        other
    }

    /// A JSON POST from the bank's origin.
    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.post_json_as(&self.client, path, body).await
    }

    /// A JSON POST from the bank's origin, by `client`.
    pub async fn post_json_as(
        &self,
        client: &Client,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        client
            .post(self.url(path))
            .header("origin", &self.origin)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A GET, its status and body as JSON.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A form POST by `client` as a browser navigating from the bank's home
    /// page sends it (what Chromium sends, checked in the browser suite).
    pub fn browser_post(&self, client: &Client, path: &str) -> reqwest::RequestBuilder {
        client
            .post(self.url(path))
            .header("accept", HTML)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-site", "same-origin")
            .header("origin", &self.origin)
            .header("referer", format!("{}/", self.origin))
    }

    /// The re-post of `body` from the confirmation page (whose referrer
    /// policy is `no-referrer`: `Origin: null`, `Sec-Fetch-Site:
    /// same-origin`), by `client`, sent.
    pub async fn repost(&self, client: &Client, path: &str, body: &str) -> reqwest::Response {
        client
            .post(self.url(path))
            .header("accept", HTML)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-site", "same-origin")
            .header("origin", "null")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// A browser navigation (`Accept: text/html`).
    pub async fn navigate(&self, path: &str) -> reqwest::Response {
        self.navigate_as(&self.client, path).await
    }

    /// A browser's GET of `path` by `client`.
    pub async fn navigate_as(&self, client: &Client, path: &str) -> reqwest::Response {
        client
            .get(self.url(path))
            .header("accept", HTML)
            .send()
            .await
            .unwrap()
    }
}
