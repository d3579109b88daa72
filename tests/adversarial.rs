//! The adversarial catalogue over HTTP, against both adapters: what an
//! attacker sends, and that it gets nothing. Each row of the table in
//! `SECURITY.md` names the test that checks it; the rows about the token's
//! bytes, key rotation and revocation are checked in `stepup-core`'s own
//! tests, these are the ones that need a running application.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use stepup_challenge::AttemptLimits;
use stepup_conformance::{Adapter, Bank, HTML, SoftPasskey, start, start_with};
use webauthn_authenticator_rs::WebauthnAuthenticator;

stepup_conformance::per_adapter!(
    tampered_tokens_are_refused,
    a_token_works_only_for_its_user_and_session,
    freshness_and_expiry_boundaries_are_exact,
    requests_cannot_choose_their_level_or_destination,
    racing_submissions_of_one_code_give_one_step_up,
    passkey_ceremonies_stay_in_their_session_and_time,
    email_codes_expire,
    open_redirect_payloads_fall_back_everywhere,
    header_floods_are_answered_deterministically,
    accept_changes_only_the_form_of_a_denial,
    set_cookie_attributes_on_set_and_delete,
);

/// The reason a transfer with exactly `cookie` is refused (401 expected).
async fn refusal(bank: &Bank, cookie: &[u8]) -> String {
    refusal_with(bank, &[cookie]).await
}

/// The reason a transfer with these `Cookie` headers is refused.
async fn refusal_with(bank: &Bank, cookies: &[&[u8]]) -> String {
    let cookie = cookies.concat();
    let r = bank.transfer_with_cookies(cookies).await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "{body} for {}",
        String::from_utf8_lossy(&cookie)
    );
    let problem: Value = serde_json::from_str(&body).unwrap();
    problem["reason"].as_str().unwrap_or("").to_owned()
}

async fn tampered_tokens_are_refused(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let session = bank.session_cookie("alice", "wonderland").await;
    // A genuine token for *this* session.
    let pair = bank.step_up_session(&session).await;
    let token = pair.strip_prefix("stepup=").unwrap().to_owned();
    let with = |value: &str| format!("{session}; stepup={value}").into_bytes();
    assert_eq!(
        bank.transfer_with_cookie(&with(&token)).await.status(),
        StatusCode::OK
    );

    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    // Every character changed, one at a time (each field of the token).
    for i in 0..token.len() {
        let mut t = token.clone().into_bytes();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        variants.push((format!("char {i}"), with(std::str::from_utf8(&t).unwrap())));
    }
    let mut version = raw.clone();
    version[0] ^= 0x7f;
    for (name, value) in [
        ("empty", String::new()),
        ("truncated by one", token[..token.len() - 1].to_owned()),
        ("half", token[..token.len() / 2].to_owned()),
        ("extended", format!("{token}A")),
        ("doubled", format!("{token}{token}")),
        ("padded", format!("{token}==")),
        (
            "mac removed",
            URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 32]),
        ),
        (
            "mac zeroed",
            URL_SAFE_NO_PAD.encode([&raw[..raw.len() - 32], &[0u8; 32][..]].concat()),
        ),
        ("mac only", URL_SAFE_NO_PAD.encode(&raw[raw.len() - 32..])),
        ("other version", URL_SAFE_NO_PAD.encode(&version)),
        ("oversized", "A".repeat(6000)),
        (
            "a JWT",
            "eyJhbGciOiJub25lIn0.eyJhY3IiOiJhYWwzIn0.".to_owned(),
        ),
    ] {
        variants.push((name.to_owned(), with(&value)));
    }
    for (name, cookie) in variants {
        let reason = refusal(&bank, &cookie).await;
        assert!(
            reason == "invalid_token" || reason == "no_assurance",
            "{name}: {reason}"
        );
    }
    // The standard base64 alphabet (when it spells the token differently:
    // a token without `-` or `_` is the same text in both).
    let standard = STANDARD.encode(&raw);
    if standard != token {
        assert_eq!(refusal(&bank, &with(&standard)).await, "invalid_token");
    }
    // Not UTF-8 (in its own `Cookie` header, so the login still reads).
    let mut bytes = format!("stepup={}", &token[..token.len() - 2]).into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    assert_eq!(
        refusal_with(&bank, &[session.as_bytes(), &bytes]).await,
        "invalid_token"
    );
}

async fn a_token_works_only_for_its_user_and_session(bank: Bank) {
    let alice = bank.session_cookie("alice", "wonderland").await;
    let token = bank.step_up_session(&alice).await;
    let bob = bank.session_cookie("bob", "builder").await;
    let alice_again = bank.session_cookie("alice", "wonderland").await;
    assert_eq!(
        bank.transfer_with_cookie(format!("{alice}; {token}").as_bytes())
            .await
            .status(),
        StatusCode::OK
    );
    // Another user, or the same user's other login session.
    for session in [bob, alice_again] {
        assert_eq!(
            refusal(&bank, format!("{session}; {token}").as_bytes()).await,
            "other_binding"
        );
    }
}

async fn freshness_and_expiry_boundaries_are_exact(bank: Bank) {
    bank.login("alice", "wonderland").await;
    bank.step_up_cookie().await;
    // `within 5m` includes the 300th second …
    bank.clock.advance(Duration::from_secs(300));
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    // … not the 301st.
    bank.clock.advance(Duration::from_secs(1));
    assert_eq!(bank.transfer_challenge(1).await["reason"], "stale");
    // The token itself lives one hour: still assured at 3599 s, not at 3600.
    bank.clock.advance(Duration::from_secs(3599 - 301));
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["assured"], true, "{status}");
    bank.clock.advance(Duration::from_secs(1));
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["assured"], false, "{status}");
    assert_eq!(status["reason"], "expired");
}

async fn requests_cannot_choose_their_level_or_destination(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Extra fields and query parameters that name a level, methods or a
    // destination are ignored: the level is what the proof reaches.
    let r = bank
        .client
        .post(bank.url("/step-up/totp?level=3&acr=aal3&return_to=https://evil.example/"))
        .header("origin", &bank.origin)
        .form(&[
            ("code", bank.code().as_str()),
            ("level", "3"),
            ("acr", "aal3"),
            ("amr", "hwk"),
            ("method", "passkey"),
            ("methods", "passkey"),
            ("return_to", "https://evil.example/"),
            ("return_to", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::BAD_REQUEST);
    if r.status() == StatusCode::SEE_OTHER {
        assert_eq!(r.headers()[LOCATION], "/");
    }
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json(
            "/step-up/totp",
            json!({"code": bank.code(), "level": 3, "acr": "aal3", "amr": ["hwk"],
                   "methods": ["passkey"], "return_to": "https://evil.example/"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["level"], 2);
    assert_eq!(body["return_to"], "/");
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["level"], 2);
    assert_eq!(status["methods"].as_array().unwrap().len(), 1, "{status}");
    // The passkey-only route stays closed.
    let r = bank.post_json("/settings/close-account", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The page's own parameters cannot either: `why` is only an identifier.
    let page = bank
        .navigate("/step-up?why=r0&level=3&methods=passkey&return_to=/statements")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(r#"id="passkey-button""#), "{page}");
}

async fn racing_submissions_of_one_code_give_one_step_up(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let bank = Arc::new(bank);
    let statuses = bank
        .race(16, "/step-up/totp", json!({"code": bank.code()}))
        .await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| !s.is_server_error()));

    // The same for one recovery code.
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    let codes: Value = r.json().await.unwrap();
    let statuses = bank
        .race(
            16,
            "/step-up/recovery",
            json!({"code": codes["recovery_codes"][0]}),
        )
        .await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(ok, 1, "{statuses:?}");
}

async fn passkey_ceremonies_stay_in_their_session_and_time(bank: Bank) {
    bank.login("alice", "wonderland").await;
    bank.step_up_cookie().await;
    let mut key = SoftPasskey::new(true);
    assert_eq!(
        bank.register_passkey(&mut key).await.status(),
        StatusCode::OK
    );

    // Finished from another login session of the same user: refused.
    let finish = bank
        .passkey_assertion(&mut key, bank.origin_url())
        .await
        .unwrap();
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank
        .post_json_as(&other, "/step-up/passkey/finish", finish)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Expired: five minutes later the ceremony is gone.
    let finish = bank
        .passkey_assertion(&mut key, bank.origin_url())
        .await
        .unwrap();
    bank.clock.advance(Duration::from_secs(301));
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Signed for another origin (a look-alike site relaying the challenge).
    let evil = bank.origin.replace("localhost", "evil.localhost");
    if let Some(finish) = bank
        .passkey_assertion(
            &mut key,
            stepup_challenge::webauthn::Url::parse(&evil).unwrap(),
        )
        .await
    {
        let r = bank.post_json("/step-up/passkey/finish", finish).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // A registration without user verification (a tampering client relaxed
    // the options for an authenticator that cannot verify the user).
    bank.step_up_cookie().await;
    let start = bank.start_ceremony("/step-up/enroll/passkey/start").await;
    let mut options = start["options"].clone();
    options["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged".into();
    let mut no_uv = SoftPasskey::new(false);
    let credential = no_uv
        .do_registration(bank.origin_url(), serde_json::from_value(options).unwrap())
        .unwrap();
    let r = bank
        .post_json(
            "/step-up/enroll/passkey/finish",
            json!({"ceremony": start["ceremony"], "credential": credential}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // And the genuine ceremony of the right session still works.
    assert_eq!(
        bank.passkey_step_up(&mut key).await.status(),
        StatusCode::OK
    );
}

async fn email_codes_expire(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let sent: Value = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    // Ten minutes by default; the 601st second is too late.
    bank.clock.advance(Duration::from_secs(601));
    let r = bank
        .post_json(
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_pending_code");
}

/// Return paths an attacker would like to send users to.
const OPEN_REDIRECTS: [&str; 34] = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "\\/evil.example",
    "https:evil.example",
    "http:/evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "/\r\nSet-Cookie: x=1",
    "/\r\nLocation: https://evil.example",
    "/%E2%80%AE/evil.example",
    "/\u{202e}moc.elpmaxe.live",
    "@evil.example",
    "evil.example",
    ".evil.example",
    " https://evil.example",
    "/.//evil.example",
    "/../evil.example",
    "/%2e%2e/admin",
    "/\u{0}",
    "/x#//evil.example",
];

async fn open_redirect_payloads_fall_back_everywhere(bank: Bank) {
    bank.login("bob", "builder").await;
    for payload in OPEN_REDIRECTS {
        // A step-up (bob's password: no replay rule, so one per payload).
        let r = bank
            .form(
                "/step-up/password",
                &[("password", "builder"), ("return_to", payload)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{payload:?}");
        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(stays_here(&location), "{payload:?} -> {location:?}");
        assert_eq!(
            r.headers().get_all(SET_COOKIE).iter().count(),
            1,
            "{payload:?}"
        );
        // Leaving the elevated state.
        let r = bank.form("/step-up/drop", &[("return_to", payload)]).await;
        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(stays_here(&location), "{payload:?} -> {location:?}");
        // The page's form carries a local path only.
        let query = url_encode(payload);
        let page = bank
            .navigate(&format!("/step-up?return_to={query}"))
            .await
            .text()
            .await
            .unwrap();
        let value = page
            .split(r#"name="return_to" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .replace("&#x2f;", "/")
            .replace("&#47;", "/");
        assert!(stays_here(&value), "{payload:?}: {value:?}");
    }
}

/// Whether a `Location` keeps the browser on this site: a path starting
/// with one `/` (not `//` or `/\`, which browsers read as another host),
/// with no scheme, control character, space or backslash anywhere.
fn stays_here(location: &str) -> bool {
    location.starts_with('/')
        && !location.starts_with("//")
        && !location.starts_with("/\\")
        && !location
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn header_floods_are_answered_deterministically(bank: Bank) {
    let session = bank.session_cookie("alice", "wonderland").await;
    let token = bank.step_up_session(&session).await;
    let send = |cookies: Vec<String>| {
        let mut request = reqwest::Client::new()
            .post(bank.url("/transfer"))
            .json(&json!({"to": "bob", "amount": 1}));
        for cookie in cookies {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    // Fifty junk cookie headers around the right ones: still fine.
    let mut cookies: Vec<String> = (0..50).map(|i| format!("junk{i}=x")).collect();
    cookies.push(session.clone());
    cookies.push(token.clone());
    assert_eq!(send(cookies).await.unwrap().status(), StatusCode::OK);
    // The token spread over many headers twice: refused, every time alike.
    for _ in 0..3 {
        let mut cookies: Vec<String> = (0..40).map(|i| format!("junk{i}=x")).collect();
        cookies.push(session.clone());
        cookies.push(token.clone());
        cookies.push("stepup=also".to_owned());
        let r = send(cookies).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "invalid_token");
    }
    // One very long Cookie header: a client error, never a pass or a 5xx.
    let long = format!("{session}; {}; {token}", "x=".repeat(3000));
    let r = send(vec![long]).await.unwrap();
    assert!(!r.status().is_server_error(), "{}", r.status());
}

async fn accept_changes_only_the_form_of_a_denial(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let get = |accept: &str, mode: Option<&str>| {
        let mut r = bank
            .client
            .get(bank.url("/statements"))
            .header("accept", accept);
        if let Some(mode) = mode {
            r = r.header("sec-fetch-mode", mode);
        }
        r.send()
    };
    // Without assurance: the form of the refusal follows the request kind …
    assert_eq!(
        get(HTML, None).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(HTML, Some("navigate")).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    for (accept, mode) in [
        ("application/json", None),
        (HTML, Some("cors")),
        (HTML, Some("no-cors")),
        ("*/*", None),
    ] {
        assert_eq!(
            get(accept, mode).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{accept} {mode:?}"
        );
    }
    // … a POST is never a navigation …
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("accept", HTML)
        .json(&json!({"to": "bob", "amount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // … and with assurance, every `Accept` passes alike.
    bank.step_up_cookie().await;
    for (accept, mode) in [
        (HTML, None),
        ("application/json", None),
        (HTML, Some("cors")),
        ("*/*", None),
    ] {
        assert_eq!(
            get(accept, mode).await.unwrap().status(),
            StatusCode::OK,
            "{accept} {mode:?}"
        );
    }
}

async fn set_cookie_attributes_on_set_and_delete(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let (_, attributes) = set.split_once(';').unwrap();
    // The demo banks run on plain http with the development cookie; the
    // production default (`__Host-stepup`, `Secure`) is checked in
    // stepup-core (`web::CookieSettings`) and stepup-axum's route tests.
    assert_eq!(
        attributes,
        " Path=/; HttpOnly; SameSite=Strict; Max-Age=3600"
    );
    let r = bank.post_json("/step-up/drop", json!({})).await;
    assert_eq!(
        r.headers()[SET_COOKIE],
        "stepup=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    );
}

/// One address guessing across users hits the per-address budget even
/// though no single user is locked (needs the adapter to pass the peer
/// address to the engine).
async fn one_address_cannot_guess_across_users(adapter: Adapter) {
    let limits = AttemptLimits::default().per_address(4, Duration::from_secs(900));
    let bank = start_with(adapter, Some(limits)).await;
    bank.login("alice", "wonderland").await;
    let bob = bank.login_elsewhere("bob", "builder").await;
    for _ in 0..2 {
        let r = bank
            .post_json("/step-up/totp", json!({"code": "000000"}))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = bank
            .post_json_as(&bob, "/step-up/password", json!({"password": "wrong"}))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Four attempts from 127.0.0.1: the fifth is refused, right or not.
    let r = bank
        .post_json_as(&bob, "/step-up/password", json!({"password": "builder"}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_guess_across_users_axum() {
    one_address_cannot_guess_across_users(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_guess_across_users_actix() {
    one_address_cannot_guess_across_users(Adapter::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banks_start_with_default_limits() {
    // The per-address scenario above must not pass by accident: with the
    // defaults (50 per address) the same five attempts are not refused.
    let bank = start(Adapter::Axum).await;
    bank.login("bob", "builder").await;
    for _ in 0..4 {
        bank.post_json("/step-up/password", json!({"password": "wrong"}))
            .await;
    }
    let r = bank
        .post_json("/step-up/password", json!({"password": "builder"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
