//! The conformance scenarios for the login-crate examples
//! (`examples/axum-login-app`, `examples/actix-identity-app`), over real
//! HTTP: each example's `tests/flow.rs` starts its app and runs every one
//! (`#[path]`-included there). The contract: a step-up made after the
//! login holds and does not nag; a new login does not inherit the old
//! login's assurance; a password change — in this session or another —
//! ends the assurance; a TOTP code works once across sessions.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, ORIGIN};
use stepup_challenge::{TotpConfig, TotpSecret};
use stepup_core::{Clock, SystemClock};

/// A running example: where, alice's TOTP secret, its TOTP issuer name and
/// alice's password.
pub(crate) struct Site {
    pub(crate) origin: String,
    pub(crate) secret: TotpSecret,
    pub(crate) issuer: &'static str,
    pub(crate) password: &'static str,
}

impl Site {
    /// A browser-like client: its own cookie jar, the app's `Origin`.
    fn client(&self) -> reqwest::Client {
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_str(&self.origin).unwrap());
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(headers)
            .build()
            .unwrap()
    }

    async fn log_in(&self, client: &reqwest::Client, password: &str) {
        let response = client
            .post(format!("{}/login", self.origin))
            .form(&[("name", "alice"), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "followed to the home page"
        );
        assert!(response.text().await.unwrap().contains("Hello, alice"));
    }

    async fn still_logged_in(&self, client: &reqwest::Client) -> bool {
        let home = client.get(&self.origin).send().await.unwrap();
        home.text().await.unwrap().contains("Hello, alice")
    }

    async fn api_key(&self, client: &reqwest::Client) -> StatusCode {
        let response = client
            .get(format!("{}/api-key", self.origin))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(
            status == StatusCode::OK,
            body.contains("ak_live_"),
            "the key shows exactly when allowed: {status} {body}"
        );
        status
    }

    fn code(&self) -> String {
        TotpConfig::new(self.issuer)
            .code_at(&self.secret, SystemClock.now().as_unix_seconds())
            .unwrap()
    }

    async fn send_code(&self, client: &reqwest::Client, code: &str) -> reqwest::Response {
        client
            .post(format!("{}/step-up/totp", self.origin))
            .json(&serde_json::json!({ "code": code }))
            .send()
            .await
            .unwrap()
    }

    async fn step_up(&self, client: &reqwest::Client) {
        let response = self.send_code(client, &self.code()).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?}",
            response.text().await
        );
    }

    async fn change_password(
        &self,
        client: &reqwest::Client,
        current: &str,
        new: &str,
    ) -> StatusCode {
        client
            .post(format!("{}/password", self.origin))
            .form(&[("current", current), ("password", new)])
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Alice logged in on a new client, stepped up, the key open.
    async fn stepped_up(&self) -> reqwest::Client {
        let alice = self.client();
        self.log_in(&alice, self.password).await;
        self.step_up(&alice).await;
        assert_eq!(self.api_key(&alice).await, StatusCode::OK);
        alice
    }
}

/// Not logged in: no subject; logged in (the session renewed or its id
/// cycled): a step-up; after it the key opens, and stays open.
pub(crate) async fn log_in_step_up_and_the_key_opens(site: &Site) {
    let alice = site.client();
    assert_eq!(site.api_key(&alice).await, StatusCode::UNAUTHORIZED);
    site.log_in(&alice, site.password).await;
    assert_eq!(site.api_key(&alice).await, StatusCode::UNAUTHORIZED);
    site.step_up(&alice).await;
    assert_eq!(site.api_key(&alice).await, StatusCode::OK);
    assert_eq!(site.api_key(&alice).await, StatusCode::OK, "no nagging");
}

/// Log out and in again: the assurance cookie is still in the jar, but it
/// was bound to the login that ended.
pub(crate) async fn a_new_login_does_not_inherit_the_old_logins_assurance(site: &Site) {
    let alice = site.stepped_up().await;
    let out = alice
        .post(format!("{}/logout", site.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert!(out.text().await.unwrap().contains("Log in"), "logged out");
    site.log_in(&alice, site.password).await;
    assert_eq!(site.api_key(&alice).await, StatusCode::UNAUTHORIZED);
}

/// In this session (which stays logged in with the new password): the
/// assurance made under the old password no longer counts.
pub(crate) async fn changing_the_password_ends_the_assurance(site: &Site) {
    let alice = site.stepped_up().await;
    // Not without the current password: nothing changes.
    let refused = site
        .change_password(&alice, "a wrong guess", "a new password 1")
        .await;
    assert_eq!(refused, StatusCode::FORBIDDEN);
    assert_eq!(site.api_key(&alice).await, StatusCode::OK);
    let changed = site
        .change_password(&alice, site.password, "a new password 1")
        .await;
    assert_eq!(changed, StatusCode::OK);
    assert!(site.still_logged_in(&alice).await, "still logged in");
    assert_eq!(site.api_key(&alice).await, StatusCode::UNAUTHORIZED);
}

/// Changed on the phone: the laptop's step-up no longer opens the key
/// (both examples also log the laptop out, as axum-login does; the epoch
/// alone would refuse it). The phone steps up on its own.
pub(crate) async fn a_password_changed_in_another_session_ends_this_ones_assurance(site: &Site) {
    let laptop = site.stepped_up().await;
    let phone = site.client();
    site.log_in(&phone, site.password).await;
    let changed = site
        .change_password(&phone, site.password, "a new password 2")
        .await;
    assert_eq!(changed, StatusCode::OK);
    assert_eq!(site.api_key(&laptop).await, StatusCode::UNAUTHORIZED);
    assert_eq!(site.api_key(&phone).await, StatusCode::UNAUTHORIZED);
}

/// A TOTP code accepted in one session is refused in another as a replay.
pub(crate) async fn a_code_used_once_is_refused_in_another_session(site: &Site) {
    let (laptop, phone) = (site.client(), site.client());
    site.log_in(&laptop, site.password).await;
    site.log_in(&phone, site.password).await;
    let code = site.code();
    assert_eq!(
        site.send_code(&laptop, &code).await.status(),
        StatusCode::OK
    );
    let replay = site.send_code(&phone, &code).await;
    assert_ne!(replay.status(), StatusCode::OK);
    assert!(
        replay.text().await.unwrap().contains("already_used"),
        "refused as a replay"
    );
    assert_eq!(site.api_key(&phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(site.api_key(&laptop).await, StatusCode::OK);
}

/// The application's own forms refuse a POST from another origin (a login
/// forced from another site).
pub(crate) async fn the_apps_forms_refuse_other_origins(site: &Site) {
    let mut headers = HeaderMap::new();
    headers.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
    let elsewhere = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = elsewhere
        .post(format!("{}/login", site.origin))
        .form(&[("name", "alice"), ("password", site.password)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response.headers().get("set-cookie").is_none(),
        "no session made"
    );
}
