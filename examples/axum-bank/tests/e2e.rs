//! The bank end to end over real HTTP on 127.0.0.1, with a client that keeps
//! cookies: log in, get challenged, step up with TOTP, come back, and the
//! rules around it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode, redirect};
use serde_json::Value;
use stepup_challenge::{TotpConfig, TotpSecret};
use stepup_core::{Clock, TestClock, Timestamp};

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

struct Bank {
    base: String,
    origin: String,
    clock: TestClock,
    secret: TotpSecret,
    client: Client,
}

async fn start() -> Bank {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let app = axum_bank::app(axum_bank::BankConfig {
        origin: origin.clone(),
        key: vec![9u8; 32],
        alice_totp: secret.clone(),
        clock: Arc::new(clock.clone()),
    })
    .await
    .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    Bank {
        base,
        origin,
        clock,
        secret,
        client,
    }
}

impl Bank {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn code(&self) -> String {
        TotpConfig::new("axum-bank")
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn login(&self, user: &str, password: &str) -> StatusCode {
        self.client
            .post(self.url("/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn transfer(&self, amount: u64) -> reqwest::Response {
        self.client
            .post(self.url("/transfer"))
            .json(&serde_json::json!({"to": "bob", "amount": amount}))
            .send()
            .await
            .unwrap()
    }

    async fn totp(&self, code: &str, return_to: &str) -> reqwest::Response {
        self.client
            .post(self.url("/step-up/totp"))
            .header("origin", &self.origin)
            .form(&[("code", code), ("return_to", return_to)])
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow() {
    let bank = start().await;
    assert_eq!(bank.login("alice", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let account: Value = bank
        .client
        .get(bank.url("/account"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(account["balance"], 125_000);

    // An API client is challenged with RFC 9470 …
    let r = bank.transfer(100).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with(r#"Bearer error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"max_age="300""#));

    // … a browser is sent to the page and back.
    let r = bank
        .client
        .get(bank.url("/statements"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page_url = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        page_url.starts_with("/step-up?return_to=/statements&reason=no_assurance&why="),
        "{page_url}"
    );
    let page = bank
        .client
        .get(bank.url(&page_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The page says the route's own reason (from configuration, by identifier).
    assert!(page.contains("Statements show sensitive data"), "{page}");
    assert!(page.contains(r#"autocomplete="one-time-code""#), "{page}");

    let code = bank.code();
    let r = bank.totp(&code, "/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/statements");
    let r = bank
        .client
        .get(bank.url("/statements"))
        .header(ACCEPT, HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Statements"));

    // The transfer goes through; the code cannot be used again.
    let r = bank.transfer(100).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank.totp(&code, "/").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("already used"));

    // Over 10,000 needs a TOTP proof from the last minute.
    bank.clock.advance(Duration::from_secs(90));
    assert_eq!(
        bank.transfer(20_000).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bank.transfer(20_000).await.status(), StatusCode::OK);

    // Status for a single-page app.
    let status: Value = bank
        .client
        .get(bank.url("/step-up/status?policy=level%202%20within%205m"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["satisfied"], true, "{status}");

    // After 300 s the transfer is challenged again.
    bank.clock.advance(Duration::from_secs(301));
    assert_eq!(bank.transfer(100).await.status(), StatusCode::UNAUTHORIZED);

    // Dropping the assurance.
    bank.clock.advance(Duration::from_secs(30));
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    let r = bank
        .client
        .post(bank.url("/step-up/drop"))
        .header("origin", &bank.origin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.transfer(1).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assurance_ends_with_the_login_session() {
    let bank = start().await;
    bank.login("alice", "wonderland").await;
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    let r = bank.client.post(bank.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    bank.login("alice", "wonderland").await;
    // The assurance cookie is still in the jar, but bound to the old session.
    let r = bank.transfer(1).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["reason"], "other_binding");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_lock_out() {
    let bank = start().await;
    bank.login("alice", "wonderland").await;
    for _ in 0..5 {
        assert_eq!(
            bank.totp("000000", "/").await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    let r = bank.totp(&bank.code(), "/").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Too many attempts. Please wait 1 minute"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_and_hostile_input() {
    let bank = start().await;
    bank.login("alice", "wonderland").await;
    let r = bank
        .client
        .post(bank.url("/step-up/totp"))
        .header("origin", "http://evil.example")
        .form(&[("code", bank.code().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = bank
        .client
        .post(bank.url("/step-up/totp"))
        .form(&[("code", bank.code().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no Origin, no Sec-Fetch-Site"
    );

    for hostile in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%0d%0aSet-Cookie:x=1",
    ] {
        bank.clock.advance(Duration::from_secs(30));
        let r = bank.totp(&bank.code(), hostile).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{hostile}");
        assert_eq!(r.headers()[LOCATION], "/", "{hostile}");
    }
    let page = bank
        .client
        .get(
            bank.url("/step-up?return_to=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&reason=%3Cb%3E"),
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>alert") && !page.contains("<b>"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_account_needs_a_passkey() {
    use stepup_challenge::webauthn::Url;
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;

    let bank = start().await;
    bank.login("alice", "wonderland").await;
    let post_json = |path: &str, body: Value| {
        bank.client
            .post(bank.url(path))
            .header("origin", &bank.origin)
            .json(&body)
            .send()
    };
    // Closing is challenged: TOTP is not enough.
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    let r = post_json("/settings/close-account", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["reason"], "missing_method");
    assert_eq!(problem["methods"], serde_json::json!(["passkey"]));

    // Alice registers a passkey (she has TOTP, and just used it: fresh enough).
    let origin = Url::parse(&bank.origin).unwrap();
    let mut key = SoftPasskey::new(true);
    let start: Value = post_json("/step-up/enroll/passkey/start", serde_json::json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = key
        .do_registration(
            origin.clone(),
            serde_json::from_value(start["options"].clone()).unwrap(),
        )
        .unwrap();
    let r = post_json(
        "/step-up/enroll/passkey/finish",
        serde_json::json!({"ceremony": start["ceremony"], "credential": credential, "name": "laptop"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Step up with it, then close.
    let start: Value = post_json("/step-up/passkey/start", serde_json::json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let assertion = key
        .do_authentication(
            origin,
            serde_json::from_value(start["options"].clone()).unwrap(),
        )
        .unwrap();
    let r = post_json(
        "/step-up/passkey/finish",
        serde_json::json!({"ceremony": start["ceremony"], "credential": assertion}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_json("/settings/close-account", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The account and its session are gone.
    let r = bank.client.get(bank.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
