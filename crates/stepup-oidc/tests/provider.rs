//! Step-up at a real OpenID Provider (oidc-provider, OpenID Certified,
//! `tests/oidc-provider`), over real HTTP: each test starts its own
//! provider on a free 127.0.0.1 port and plays the browser (following the
//! provider's redirects with a cookie jar, stopping at the callback).
//! The essential-acr path mints the level and the proofs; everything an
//! attacker or a misbehaving provider can change is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use stepup_core::{
    Clock, Key, KeyId, KeyRing, LevelTable, Method, ReturnTo, Subject, SystemClock, TokenConfig,
};
use stepup_oidc::{AcrRequest, OidcConfig, OidcError, OidcStepUp, Par, StepUpRequest};
use stepup_store::MemoryStateStore;

/// Where the provider sends the browser back to (never served: the test
/// stops at this redirect and hands its query to `finish`).
const CALLBACK: &str = "http://127.0.0.1:9/step-up/oidc/callback";

/// A running provider, stopped on drop.
struct Provider {
    child: Child,
    issuer: String,
    control: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Provider {
        Provider::start_on("0")
    }

    /// Stops it and starts it again on the same port (the same issuer),
    /// with new signing keys: a key rotation.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.issuer.rsplit(':').next().unwrap().to_owned();
        let again = Provider::start_on(&port);
        assert_eq!(again.issuer, self.issuer);
        *self = again;
    }

    fn start_on(port: &str) -> Provider {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc-provider");
        assert!(
            std::path::Path::new(dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the test provider is not installed: run scripts/test (or npm ci --prefix tests/oidc-provider)"
        );
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .env("REDIRECT_URI", CALLBACK)
            .env("PORT", port)
            .env("TEST_CONTROL", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading what it prints (a closed pipe would fail its writes).
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the provider did not start: {line}"))
            .to_owned();
        Provider {
            child,
            issuer,
            control: reqwest::Client::new(),
        }
    }

    /// Scripts the following logins.
    async fn next_login(&self, change: serde_json::Value) {
        let r = self
            .control
            .post(format!("{}/__test/next-login", self.issuer))
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    fn config(&self) -> OidcConfig {
        OidcConfig::new(&self.issuer, "stepup-test", CALLBACK)
            .client_secret("stepup-test-secret")
            .acr("urn:stepup:loa:1", 1)
            .acr("urn:stepup:loa:2", 2)
            .acr("urn:stepup:loa:3", 3)
            .skew(Duration::from_secs(5))
    }
}

/// The application's side: stepup-oidc on the provider, minting tokens
/// whose level table places the provider's levels.
async fn app(provider: &Provider, config: OidcConfig) -> OidcStepUp<MemoryStateStore> {
    let levels = config.place_levels(LevelTable::nist());
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap(),
    ))
    .with_levels(levels);
    OidcStepUp::discover(config, tokens.issuer(), MemoryStateStore::new(SystemClock))
        .await
        .unwrap_or_else(|e| panic!("discovery of {}: {e}", provider.issuer))
}

/// The browser: follows the provider's redirects (with its cookies) until
/// the one to the callback, whose query it returns.
async fn browse(browser: &reqwest::Client, start: &url::Url) -> String {
    let mut at = start.to_string();
    for _ in 0..10 {
        let r = browser.get(&at).send().await.unwrap();
        let Some(to) = r.headers().get(LOCATION) else {
            panic!(
                "no redirect from {at}: {} {}",
                r.status(),
                r.text().await.unwrap()
            );
        };
        let to = to.to_str().unwrap().to_owned();
        let to = url::Url::parse(&at).unwrap().join(&to).unwrap().to_string();
        if let Some(query) = to.strip_prefix(&format!("{CALLBACK}?")) {
            return query.to_owned();
        }
        at = to;
    }
    panic!("too many redirects from {start}");
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn user() -> Subject {
    Subject::new("app-user-1").with_session("session-1")
}

/// A step-up to `level` within `max_age`, started and answered.
async fn step_up(
    app: &OidcStepUp<MemoryStateStore>,
    browser: &reqwest::Client,
    level: u8,
    max_age: Option<Duration>,
) -> (url::Url, String) {
    let subject = user();
    let return_to = ReturnTo::parse("/transfer").unwrap();
    let mut request = StepUpRequest::new(&subject, "alice", level, &return_to);
    if let Some(max_age) = max_age {
        request = request.max_age(max_age);
    }
    let start = app.start(request).await.unwrap();
    let query = browse(browser, &start).await;
    (start, query)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `refused` is an ID token refusal whose reason mentions `why`.
fn assert_id_token_refused(refused: &Result<stepup_oidc::Finished, OidcError>, why: &str) {
    assert!(
        matches!(refused, Err(OidcError::IdToken(reason)) if reason.to_lowercase().contains(why)),
        "refused for {why}? {refused:?}"
    );
}

#[tokio::test]
async fn the_essential_acr_path_mints_the_level_and_the_proofs() {
    let provider = Provider::start();
    let app = app(
        &provider,
        provider.config().acr_request(AcrRequest::EssentialClaim),
    )
    .await;
    let (start, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    // Pushed (RFC 9126): the browser sees no acr, claims or max_age to edit.
    assert!(
        query_param(start.query().unwrap(), "request_uri").is_some(),
        "{start}"
    );
    assert!(
        query_param(start.query().unwrap(), "claims").is_none(),
        "{start}"
    );
    // RFC 9207: the response names its issuer.
    assert_eq!(
        query_param(&query, "iss").as_deref(),
        Some(provider.issuer.as_str())
    );
    let finished = app.finish(&user(), &query, None).await.unwrap();
    assert_eq!(finished.level, 2);
    assert_eq!(finished.methods, [Method::Password, Method::Totp]);
    assert_eq!(finished.return_to.as_str(), "/transfer");
    let assurance = finished.token.assurance();
    assert_eq!(assurance.level(), 2);
    assert_eq!(assurance.subject(), &user());
    for method in [stepup_oidc::level_method(2), Method::Password, Method::Totp] {
        assert_eq!(
            assurance.proven_at(method),
            Some(finished.auth_time),
            "{method}"
        );
    }
}

#[tokio::test]
async fn without_amr_the_level_comes_from_the_acr_only() {
    let provider = Provider::start();
    provider.next_login(serde_json::json!({"amr": null})).await;
    let app = app(&provider, provider.config()).await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    let finished = app.finish(&user(), &query, None).await.unwrap();
    assert_eq!(finished.methods, []);
    assert_eq!(finished.token.assurance().level(), 2);
    assert_eq!(
        finished.token.assurance().methods().collect::<Vec<_>>(),
        [stepup_oidc::level_method(2)]
    );
}

#[tokio::test]
async fn an_acr_downgraded_through_sso_is_refused() {
    let provider = Provider::start();
    let app = app(&provider, provider.config().acr_request(AcrRequest::Values)).await;
    let browser = browser();
    // A level-1 login leaves a provider session…
    provider
        .next_login(serde_json::json!({"acr": "urn:stepup:loa:1"}))
        .await;
    let (_, query) = step_up(&app, &browser, 1, None).await;
    assert_eq!(app.finish(&user(), &query, None).await.unwrap().level, 1);
    // …which answers a voluntary level-2 request without a new login.
    provider.next_login(serde_json::json!({"acr": null})).await;
    let (_, query) = step_up(&app, &browser, 2, None).await;
    let refused = app.finish(&user(), &query, None).await;
    assert_id_token_refused(&refused, "acr");
}

#[tokio::test]
async fn acr_values_stripped_from_the_url_are_refused() {
    let provider = Provider::start();
    let app = app(&provider, provider.config().par(Par::Never)).await;
    let subject = user();
    let root = ReturnTo::root();
    let start = app
        .start(StepUpRequest::new(&subject, "alice", 2, &root).max_age(Duration::ZERO))
        .await
        .unwrap();
    // The browser (or an attacker in it) edits the request.
    let mut edited = start.clone();
    let kept: Vec<(String, String)> = start
        .query_pairs()
        .filter(|(k, _)| k != "acr_values" && k != "claims")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    edited.query_pairs_mut().clear().extend_pairs(kept);
    let query = browse(&browser(), &edited).await;
    let refused = app.finish(&subject, &query, None).await;
    assert_id_token_refused(&refused, "acr");
}

#[tokio::test]
async fn a_stale_auth_time_is_refused() {
    let provider = Provider::start();
    provider
        .next_login(serde_json::json!({"ageSecs": 3600}))
        .await;
    let app = app(&provider, provider.config()).await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    let refused = app.finish(&user(), &query, None).await;
    assert_id_token_refused(&refused, "auth_time");
}

#[tokio::test]
async fn an_id_token_for_another_nonce_is_refused() {
    let provider = Provider::start();
    provider
        .next_login(serde_json::json!({"nonce": "a-replayed-id-token"}))
        .await;
    let app = app(&provider, provider.config().par(Par::Never)).await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    let refused = app.finish(&user(), &query, None).await;
    assert_id_token_refused(&refused, "nonce");
}

#[tokio::test]
async fn a_replayed_state_finds_nothing() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    app.finish(&user(), &query, None).await.unwrap();
    let replayed = app.finish(&user(), &query, None).await;
    assert!(
        matches!(replayed, Err(OidcError::UnknownState)),
        "{replayed:?}"
    );
}

#[tokio::test]
async fn another_users_id_token_is_refused() {
    let provider = Provider::start();
    provider
        .next_login(serde_json::json!({"accountId": "mallory"}))
        .await;
    let app = app(&provider, provider.config()).await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    let refused = app.finish(&user(), &query, None).await;
    assert!(
        matches!(refused, Err(OidcError::OtherSubject)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_code_with_another_requests_pkce_verifier_is_refused() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let browser = browser();
    let (_, first) = step_up(&app, &browser, 2, Some(Duration::ZERO)).await;
    let (_, second) = step_up(&app, &browser, 2, Some(Duration::ZERO)).await;
    // The first request's code, with the second request's state (and so
    // its PKCE verifier): the provider refuses the exchange.
    let swapped = format!(
        "code={}&state={}&iss={}",
        query_param(&first, "code").unwrap(),
        query_param(&second, "state").unwrap(),
        provider.issuer
    );
    let refused = app.finish(&user(), &swapped, None).await;
    assert!(
        matches!(refused, Err(OidcError::Exchange(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_iss_mismatch_or_a_missing_iss_is_refused() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let browser = browser();
    for iss in [Some("https://attacker.example"), None] {
        let (_, query) = step_up(&app, &browser, 2, Some(Duration::ZERO)).await;
        let mut edited: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k != "iss")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some(iss) = iss {
            edited.push(("iss".into(), iss.into()));
        }
        let edited = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(edited)
            .finish();
        let refused = app.finish(&user(), &edited, None).await;
        assert!(
            matches!(refused, Err(OidcError::IssuerMismatch)),
            "{iss:?}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn another_session_or_a_refusal_mints_nothing() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let browser = browser();
    let (_, query) = step_up(&app, &browser, 2, Some(Duration::ZERO)).await;
    let elsewhere = Subject::new("app-user-1").with_session("session-2");
    let refused = app.finish(&elsewhere, &query, None).await;
    assert!(
        matches!(refused, Err(OidcError::OtherSession)),
        "{refused:?}"
    );
    provider
        .next_login(serde_json::json!({"refuse": true}))
        .await;
    let (_, query) = step_up(&app, &browser, 2, Some(Duration::ZERO)).await;
    let refused = app.finish(&user(), &query, None).await;
    assert!(
        matches!(&refused, Err(OidcError::Refused(e)) if e == "access_denied"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn amr_never_lifts_the_token_above_the_acrs_level() {
    let provider = Provider::start();
    // A provider whose "hwk" the application maps to a device-bound
    // passkey (level 3 in the table) answers a level-2 request with it.
    provider
        .next_login(serde_json::json!({"amr": ["hwk"]}))
        .await;
    let app = app(
        &provider,
        provider.config().amr("hwk", Method::DeviceBoundPasskey),
    )
    .await;
    let (_, query) = step_up(&app, &browser(), 2, Some(Duration::ZERO)).await;
    let finished = app.finish(&user(), &query, None).await.unwrap();
    assert_eq!(finished.level, 2);
    assert_eq!(finished.methods, [], "the level only");
    assert_eq!(finished.token.assurance().level(), 2);
    assert_eq!(
        finished
            .token
            .assurance()
            .proven_at(Method::DeviceBoundPasskey),
        None
    );
}

#[tokio::test]
async fn max_age_takes_a_recent_login_and_refuses_an_older_or_a_future_one() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let five_minutes = Some(Duration::from_secs(300));
    // Two minutes ago, within five: taken, dated then.
    provider
        .next_login(serde_json::json!({"ageSecs": 120}))
        .await;
    let (_, query) = step_up(&app, &browser(), 2, five_minutes).await;
    let finished = app.finish(&user(), &query, None).await.unwrap();
    let age = SystemClock.now().as_unix_seconds() - finished.auth_time.as_unix_seconds();
    assert!(
        (115..=130).contains(&age),
        "dated at auth_time: {age} s ago"
    );
    // Ten minutes ago: refused.
    provider
        .next_login(serde_json::json!({"ageSecs": 600}))
        .await;
    let (_, query) = step_up(&app, &browser(), 2, five_minutes).await;
    let refused = app.finish(&user(), &query, None).await;
    assert_id_token_refused(&refused, "auth_time");
    // An hour ahead (a provider clock far off, or seconds taken for
    // milliseconds): refused, not dated now.
    provider
        .next_login(serde_json::json!({"ageSecs": -3600}))
        .await;
    let (_, query) = step_up(&app, &browser(), 2, five_minutes).await;
    let refused = app.finish(&user(), &query, None).await;
    assert_id_token_refused(&refused, "future");
}

#[tokio::test]
async fn a_login_is_bound_to_its_browser_and_never_a_step_up() {
    let provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let browser = browser();
    let home = ReturnTo::parse("/home").unwrap();
    // Another browser's binding (a callback URL sent to someone else, login
    // CSRF) logs nobody in, and leaves the request to its browser, once.
    let query = browse(
        &browser,
        &app.start_login("browser-1", &home).await.unwrap(),
    )
    .await;
    assert!(matches!(
        app.finish_login(&query, "browser-2").await,
        Err(OidcError::OtherSession)
    ));
    assert!(app.finish_login(&query, "browser-1").await.is_ok());
    assert!(matches!(
        app.finish_login(&query, "browser-1").await,
        Err(OidcError::UnknownState)
    ));
    // A login's answer is no step-up, even for the same binding.
    let query = browse(
        &browser,
        &app.start_login("session-1", &home).await.unwrap(),
    )
    .await;
    assert!(matches!(
        app.finish(&user(), &query, None).await,
        Err(OidcError::OtherSession)
    ));
    // A step-up's answer is no login.
    let (_, query) = step_up(&app, &browser, 2, None).await;
    assert!(matches!(
        app.finish_login(&query, "session-1").await,
        Err(OidcError::OtherSession)
    ));
    assert!(matches!(
        app.start_login("", &home).await,
        Err(OidcError::Config(_))
    ));
    // The login: the provider's `sub`, when, and where to go.
    let query = browse(
        &browser,
        &app.start_login("browser-1", &home).await.unwrap(),
    )
    .await;
    let login = app.finish_login(&query, "browser-1").await.unwrap();
    assert_eq!(login.provider_subject, "alice");
    assert_eq!(login.return_to.as_str(), "/home");
    assert!(login.auth_time.is_some(), "{login:?}");
}

#[tokio::test]
async fn a_rotated_key_is_read_again_once() {
    let mut provider = Provider::start();
    let app = app(&provider, provider.config()).await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    app.finish(&user(), &query, None).await.unwrap();
    // The provider now signs with a key it did not have at discovery.
    provider.restart();
    settle().await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    let finished = app.finish(&user(), &query, None).await.unwrap();
    assert_eq!(finished.level, 2);
    // Rotated again within the minute: not read again (a provider, or
    // whoever answers in its name, cannot make every callback a fetch).
    provider.restart();
    settle().await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    assert_id_token_refused(&app.finish(&user(), &query, None).await, "signature");
}

/// Lets the app's HTTP client notice that the stopped provider closed its
/// kept-alive connections (as time passing does outside tests).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn entra_acrs_are_asked_for_and_give_the_level() {
    let provider = Provider::start();
    let config = OidcConfig::new(&provider.issuer, "stepup-test", CALLBACK)
        .client_secret("stepup-test-secret")
        .acr("c1", 1)
        .acr("c2", 2)
        .acr("c3", 3)
        .acr_request(AcrRequest::EntraAcrs)
        .par(Par::Never);
    let app = app(&provider, config).await;
    // Asked as Entra ID takes it: an essential `acrs` with one value, no
    // `acr_values`, no `acr` claim.
    provider
        .next_login(serde_json::json!({"acrs": ["c2"]}))
        .await;
    let (start, query) = step_up(&app, &browser(), 2, None).await;
    let asked = start.query().unwrap();
    assert!(query_param(asked, "acr_values").is_none(), "{start}");
    let claims: serde_json::Value =
        serde_json::from_str(&query_param(asked, "claims").unwrap()).unwrap();
    assert_eq!(
        claims["id_token"]["acrs"],
        serde_json::json!({"essential": true, "value": "c2"})
    );
    assert!(claims["id_token"].get("acr").is_none(), "{claims}");
    let finished = app.finish(&user(), &query, None).await.unwrap();
    assert_eq!(finished.level, 2);
    // A higher context proves its level.
    provider
        .next_login(serde_json::json!({"acrs": ["c1", "c3"]}))
        .await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    assert_eq!(app.finish(&user(), &query, None).await.unwrap().level, 3);
    // Only a lower context, or none: refused (the provider's `acr` says
    // loa:1 all along and is not what counts).
    provider
        .next_login(serde_json::json!({"acrs": ["c1"]}))
        .await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    assert_id_token_refused(&app.finish(&user(), &query, None).await, "acrs");
    provider.next_login(serde_json::json!({"acrs": null})).await;
    let (_, query) = step_up(&app, &browser(), 2, None).await;
    assert_id_token_refused(&app.finish(&user(), &query, None).await, "acrs");
}

#[tokio::test]
async fn another_clients_request_is_nobodys_here() {
    let provider = Provider::start();
    let store = MemoryStateStore::new(SystemClock);
    let config = provider.config();
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap(),
    ))
    .with_levels(config.place_levels(LevelTable::nist()));
    let ours = OidcStepUp::discover(config, tokens.issuer(), store.clone())
        .await
        .unwrap();
    // Another client of the same provider, keeping its requests in the
    // same store.
    let other = OidcConfig::new(&provider.issuer, "another-client", CALLBACK)
        .acr("urn:stepup:loa:2", 2)
        .par(Par::Never);
    let theirs = OidcStepUp::discover(other, tokens.issuer(), store.clone())
        .await
        .unwrap();
    let subject = user();
    let back = ReturnTo::parse("/transfer").unwrap();
    let url = theirs
        .start(StepUpRequest::new(&subject, "alice", 2, &back))
        .await
        .unwrap();
    let state = query_param(url.query().unwrap(), "state").unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "c")
        .append_pair("state", &state)
        .append_pair("iss", &provider.issuer)
        .finish();
    assert!(matches!(
        ours.finish(&subject, &query, None).await,
        Err(OidcError::OtherSession)
    ));
}
