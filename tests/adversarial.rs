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
use stepup_challenge::{
    AttemptLimits, Channel, Engine, FactorStore, MemoryFactorStore, MemoryStateStore,
    RecordingSender, TotpConfig, TotpSecret,
};
use stepup_conformance::{Adapter, Bank, HTML, SoftPasskey, T0, start, start_with};
use stepup_core::{Clock, Key, KeyId, KeyRing, Policy, ReturnTo, Subject, TestClock, TokenConfig};
use stepup_http::CookieSettings;
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
    head_is_answered_like_get_without_a_body,
    return_paths_are_bounded_at_2048_bytes,
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

/// Asserts that `r` is a refusal with `status` and the JSON error `kind`
/// (the status alone would also pass a refusal for some other reason).
async fn assert_refused(r: reqwest::Response, status: StatusCode, kind: &str, what: &str) {
    let actual = r.status();
    let cookie = r.headers().get(SET_COOKIE).cloned();
    let body = r.text().await.unwrap();
    assert_eq!(actual, status, "{what}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], kind, "{what}: {body}");
    assert_eq!(cookie, None, "{what}: a refusal sets no cookie");
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
    let fields = |return_to: &[&'static str]| {
        let mut fields = vec![
            ("code", bank.code()),
            ("level", "3".to_owned()),
            ("acr", "aal3".to_owned()),
            ("amr", "hwk".to_owned()),
            ("method", "passkey".to_owned()),
            ("methods", "passkey".to_owned()),
        ];
        fields.extend(return_to.iter().map(|r| ("return_to", (*r).to_owned())));
        fields
    };
    let post = |fields: Vec<(&'static str, String)>| {
        bank.client
            .post(bank.url(
                "/step-up/totp?level=3&acr=aal3&return_to=%2Fstatements&return_to=https://evil.example/",
            ))
            .header("origin", &bank.origin)
            .form(&fields)
            .send()
    };
    // A field sent twice is a malformed form, not a choice between two
    // destinations: refused before the code is looked at.
    let r = post(fields(&["https://evil.example/", "//evil.example"]))
        .await
        .unwrap();
    assert_refused(r, StatusCode::BAD_REQUEST, "malformed", "return_to twice").await;
    // Extra fields and query parameters that name a level, methods or a
    // destination are ignored: the level is what the proof reaches, and the
    // destination the configured fallback (the query's local
    // `return_to=/statements` is not the form's).
    let r = post(fields(&["https://evil.example/"])).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    assert_eq!(r.headers().get_all(SET_COOKIE).iter().count(), 1);
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["level"], 2, "{status}");
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
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "no_pending_ceremony",
        "another session",
    )
    .await;
    // Expired: five minutes later the ceremony is gone.
    let finish = bank
        .passkey_assertion(&mut key, bank.origin_url())
        .await
        .unwrap();
    bank.clock.advance(Duration::from_secs(301));
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_refused(r, StatusCode::BAD_REQUEST, "no_pending_ceremony", "expired").await;
    // Signed for another origin (a site on another port of the same host
    // relaying the challenge). The software authenticator, like a browser,
    // signs for any origin the relying-party id `localhost` covers (any
    // port), and puts that origin in the signed client data; the server
    // accepts only its own.
    let port = bank.origin_url().port().unwrap();
    let evil = stepup_challenge::webauthn::Url::parse(&format!(
        "http://localhost:{}",
        port.wrapping_add(1).max(1)
    ))
    .unwrap();
    let finish = bank
        .passkey_assertion(&mut key, evil.clone())
        .await
        .expect("the authenticator signs for another localhost port");
    let signed = client_data(&finish);
    assert_eq!(signed["origin"], evil.as_str(), "{signed}");
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "passkey_rejected",
        "foreign origin",
    )
    .await;
    // A registration without user verification (a tampering client relaxed
    // the options for an authenticator that cannot verify the user). A
    // fresh step-up with the passkey first: the strongest factor alice has,
    // so enrolling another is allowed.
    assert_eq!(
        bank.passkey_step_up(&mut key).await.status(),
        StatusCode::OK
    );
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
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "passkey_rejected",
        "no user verification",
    )
    .await;
    // And the genuine ceremony of the right session still works.
    assert_eq!(
        bank.passkey_step_up(&mut key).await.status(),
        StatusCode::OK
    );
}

/// The client data a passkey answer signed (`type`, `challenge`, `origin`).
fn client_data(finish: &Value) -> Value {
    let encoded = finish["credential"]["response"]["clientDataJSON"]
        .as_str()
        .unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
}

async fn email_codes_expire(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let verify = |challenge_id: &Value, code: &str| {
        bank.post_json(
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": challenge_id, "code": code}),
        )
    };
    // A code works only for its own challenge, and once.
    let sent: Value = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    let other_id = json!("0".repeat(32));
    assert_ne!(other_id, sent["challenge_id"]);
    let r = verify(&other_id, &code).await;
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "no_pending_code",
        "wrong challenge id",
    )
    .await;
    let r = verify(&sent["challenge_id"], &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = verify(&sent["challenge_id"], &code).await;
    assert_refused(r, StatusCode::BAD_REQUEST, "no_pending_code", "used twice").await;
    // A new code, left too long.
    let sent: Value = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    // Ten minutes by default; the 601st second is too late.
    bank.clock.advance(Duration::from_secs(601));
    let r = verify(&sent["challenge_id"], &code).await;
    assert_refused(r, StatusCode::BAD_REQUEST, "no_pending_code", "expired").await;
}

/// Return paths an attacker would like to send users to.
const OPEN_REDIRECTS: [&str; 32] = [
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
    "/\u{202e}moc.elpmaxe.live",
    "@evil.example",
    "evil.example",
    ".evil.example",
    " https://evil.example",
    "/.//evil.example",
    "/../evil.example",
    "/%2e%2e/admin",
    "/\u{0}",
];

/// Return paths that look like redirects elsewhere but are local paths: kept
/// as they are (the browser stays on this site).
const LOCAL_LOOKALIKES: [&str; 2] = ["/%E2%80%AE/evil.example", "/x#//evil.example"];

/// The configured fallback of both banks (`mounted_at`'s default).
const FALLBACK: &str = "/";

async fn open_redirect_payloads_fall_back_everywhere(bank: Bank) {
    bank.login("bob", "builder").await;
    let cases = OPEN_REDIRECTS
        .iter()
        .map(|p| (*p, FALLBACK))
        .chain(LOCAL_LOOKALIKES.iter().map(|p| (*p, *p)));
    for (payload, expected) in cases {
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
        assert_eq!(location, expected, "{payload:?}");
        assert_eq!(
            r.headers().get_all(SET_COOKIE).iter().count(),
            1,
            "{payload:?}"
        );
        // Leaving the elevated state.
        let r = bank.form("/step-up/drop", &[("return_to", payload)]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{payload:?}");
        let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(stays_here(&location), "{payload:?} -> {location:?}");
        assert_eq!(location, expected, "{payload:?}");
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
        assert_eq!(value, expected, "{payload:?}");
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
            .header("origin", &bank.origin)
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
    // One long Cookie header (6 KB, as a browser with many cookies sends):
    // the junk changes nothing, the answer is the short header's …
    let junk = "x=".repeat(3000);
    let r = send(vec![format!("{session}; {junk}; {token}")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // … and it cannot hide a second token behind the junk: refused as
    // ambiguous, never a pass or a 5xx.
    let r = send(vec![format!("{session}; {token}; {junk}; stepup=also")])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "invalid_token");
    // A header over the server's limit (1 MiB) is a client error (431),
    // never a pass or a 5xx, whatever it carries. (The server may also close
    // the connection before the client has written it all: no answer is no
    // pass either. Both outcomes are asserted.)
    let flood = "x=".repeat(512 * 1024);
    match send(vec![format!("{session}; {flood}; {token}")]).await {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(e.is_request() && e.status().is_none(), "{e}"),
    }
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
        .header("origin", &bank.origin)
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

/// A raw `method path` request with exactly `cookie`, on its own connection:
/// the status, the headers (names in lower case) and every byte the server
/// sent after them (a client library would drop a body sent to a `HEAD`).
async fn raw(
    bank: &Bank,
    method: &str,
    path: &str,
    cookie: &str,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let address = bank.base.trim_start_matches("http://").to_owned();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAccept: {HTML}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    let bytes = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    })
    .await
    .unwrap();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    (status, headers, bytes[end + 4..].to_vec())
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn head_is_answered_like_get_without_a_body(bank: Bank) {
    let session = bank.session_cookie("alice", "wonderland").await;
    // The page, the status and an asset: `HEAD` gets `GET`'s status and
    // headers, and no body.
    for path in ["/step-up", "/step-up/status", "/step-up/assets/page.css"] {
        let (get_status, get_headers, get_body) = raw(&bank, "GET", path, &session).await;
        let (status, headers, body) = raw(&bank, "HEAD", path, &session).await;
        assert_eq!(get_status, 200, "GET {path}");
        assert!(!get_body.is_empty(), "GET {path}");
        assert_eq!(status, get_status, "HEAD {path}");
        for name in ["content-type", "cache-control"] {
            assert_eq!(
                header(&headers, name),
                header(&get_headers, name),
                "HEAD {path}: {name}"
            );
        }
        assert_eq!(body, b"", "HEAD {path} sent a body");
    }
    // `HEAD` is not a way into a POST route: 405, nothing done.
    let (status, headers, body) = raw(&bank, "HEAD", "/step-up/drop", &session).await;
    assert_eq!(status, 405);
    assert_eq!(header(&headers, "allow"), Some("POST"));
    assert_eq!(header(&headers, "set-cookie"), None);
    assert_eq!(body, b"");
}

async fn return_paths_are_bounded_at_2048_bytes(bank: Bank) {
    // The documented limit (stepup-core `ReturnTo::MAX_LEN`).
    assert_eq!(ReturnTo::MAX_LEN, 2048);
    bank.login("bob", "builder").await;
    let longest = format!("/{}", "a".repeat(ReturnTo::MAX_LEN - 1));
    let too_long = format!("{longest}a");
    assert_eq!((longest.len(), too_long.len()), (2048, 2049));
    for (path, expected) in [(&longest, longest.as_str()), (&too_long, FALLBACK)] {
        let r = bank
            .form(
                "/step-up/password",
                &[("password", "builder"), ("return_to", path)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", path.len());
        assert_eq!(r.headers()[LOCATION], expected, "{}", path.len());
        let page = bank
            .navigate(&format!("/step-up?return_to={path}"))
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
        assert_eq!(value, expected, "{}", path.len());
    }
}

/// A lockout's `Retry-After` is the number of seconds until it ends, and
/// counts down.
async fn a_lockout_says_when_it_ends(adapter: Adapter) {
    let limits =
        AttemptLimits::default().lockout(Duration::from_secs(120), Duration::from_secs(3600));
    let bank = start_with(adapter, Some(limits)).await;
    bank.login("alice", "wonderland").await;
    let wrong = if bank.code() == "000000" {
        "000001"
    } else {
        "000000"
    };
    for i in 0..5 {
        let r = bank
            .post_json("/step-up/totp", json!({"code": wrong}))
            .await;
        assert_refused(r, StatusCode::BAD_REQUEST, "wrong", &format!("guess {i}")).await;
    }
    for (waited, left) in [(0, 120), (50, 70), (69, 1)] {
        bank.clock.advance(Duration::from_secs(waited));
        let r = bank
            .post_json("/step-up/totp", json!({"code": bank.code()}))
            .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{waited}");
        assert_eq!(
            r.headers()["retry-after"].to_str().unwrap(),
            left.to_string(),
            "after {waited} s more"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "locked_out", "{body}");
    }
    // At the announced second, the right code works again.
    bank.clock.advance(Duration::from_secs(1));
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_says_when_it_ends_axum() {
    a_lockout_says_when_it_ends(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lockout_says_when_it_ends_actix() {
    a_lockout_says_when_it_ends(Adapter::Actix).await;
}

/// Where the small application mounts the challenge routes.
const MOUNT: &str = "/verify";
/// Its fallback for refused return paths.
const HOME: &str = "/home";
/// Alice's phone number in the small application.
const ALICE_PHONE: &str = "+44 7700 900123";

/// An application of its own, for what the banks do not show: the
/// challenge routes mounted at `/verify` (falling back to `/home`), alice
/// with TOTP and an SMS number, `GET /secret` behind level 2. Its login is
/// the `x-user` / `x-session` headers the client sends.
struct SmallApp {
    base: String,
    clock: TestClock,
    secret: TotpSecret,
    sms: RecordingSender,
    client: reqwest::Client,
}

async fn small_app(adapter: Adapter) -> SmallApp {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[6u8; 32]).unwrap(),
    ));
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    let alice = Subject::new("alice");
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(&alice, secret.clone())
        .await
        .unwrap();
    factors
        .set_code_destination(&alice, Channel::Sms, ALICE_PHONE)
        .unwrap();
    let sms = RecordingSender::new();
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_totp(TotpConfig::new("Small"))
    .with_code_sender(sms.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let fallback = ReturnTo::parse(HOME).unwrap();
    let policy = Policy::level(2).max_age(Duration::from_secs(300));
    match adapter {
        Adapter::Axum => {
            let stepup = stepup_axum::StepUp::new(
                engine,
                stepup_axum::TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
                &base,
            )
            .with_cookie(CookieSettings::insecure_local_development())
            .mounted_at(MOUNT, fallback);
            let app = ::axum::Router::new()
                .route(
                    "/secret",
                    ::axum::routing::get(|| async { "secret" }).route_layer(stepup.require(policy)),
                )
                .merge(stepup.routes())
                .layer(stepup.layer());
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move { ::axum::serve(listener, service).await.unwrap() });
        }
        Adapter::Actix => {
            use actix_web::{App, HttpRequest, HttpServer, web};
            let who = |request: &HttpRequest| {
                let header = |name| request.headers().get(name)?.to_str().ok();
                Some(Subject::new(header("x-user")?).with_session(header("x-session")?))
            };
            let stepup = stepup_actix::StepUp::new(engine, who, &base)
                .with_cookie(CookieSettings::insecure_local_development())
                .mounted_at(MOUNT, fallback);
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(stepup.app_data())
                    .configure(|c| stepup.configure(c))
                    .service(
                        web::resource("/secret")
                            .wrap(stepup.require(policy.clone()))
                            .route(web::get().to(|| async { "secret" })),
                    )
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)
            .unwrap()
            .run();
            tokio::spawn(server);
        }
    }
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-user", "alice".parse().unwrap());
    headers.insert("x-session", "s-1".parse().unwrap());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    SmallApp {
        base,
        clock,
        secret,
        sms,
        client,
    }
}

impl SmallApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn code(&self) -> String {
        TotpConfig::new("Small")
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn get(&self, path: &str, accept: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("accept", accept)
            .send()
            .await
            .unwrap()
    }

    async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("origin", &self.base)
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

/// Mounted elsewhere, every route moves with the mount: the challenge
/// points there, the page's forms post there, refused return paths fall
/// back to the mount's fallback, and nothing answers at `/step-up`.
async fn a_custom_mount_path_moves_every_route(adapter: Adapter) {
    let app = small_app(adapter).await;
    for path in ["/step-up", "/step-up/status"] {
        assert_eq!(
            app.get(path, "application/json").await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // A browser is sent to the page at the mount …
    let r = app.get("/secret", HTML).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("/verify?"), "{location}");
    let return_to = reqwest::Url::parse(&app.url(&location))
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "return_to")
        .map(|(_, value)| value.into_owned());
    assert_eq!(return_to.as_deref(), Some("/secret"), "{location}");
    // … an API client is told where it is …
    let r = app.get("/secret", "application/json").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    let url = problem["step_up_url"].as_str().unwrap();
    assert!(url.starts_with("/verify?"), "{problem}");
    // … and the page's forms post below it.
    let r = app.get(&location, HTML).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&#47;", "/");
    assert!(page.contains(r#"action="/verify/totp""#), "{page}");
    assert!(
        page.contains(r#"name="return_to" value="/secret""#),
        "{page}"
    );
    assert!(!page.contains("/step-up"), "{page}");
    // A step-up there; a refused return path falls back to `/home`.
    let r = app
        .form(
            "/verify/totp",
            &[
                ("code", &app.code()),
                ("return_to", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], HOME);
    assert_eq!(
        app.get("/secret", "application/json").await.status(),
        StatusCode::OK
    );
    let r = app.get("/verify/status", "application/json").await;
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["assured"], true, "{status}");
}

/// One-time codes by SMS over HTTP: sent to the registered number (masked
/// in the answer), good for their channel and challenge only, once.
async fn sms_codes_step_up_over_http(adapter: Adapter) {
    let app = small_app(adapter).await;
    let r = app
        .post_json("/verify/code/send", json!({"channel": "sms"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains(ALICE_PHONE), "{text}");
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sent["channel"], "sms");
    assert_eq!(sent["destination_hint"], "•••• 0123");
    let code = app.sms.last_code_to(ALICE_PHONE).unwrap();
    assert_eq!(app.sms.count(), 1);
    let verify = |channel: &str, challenge_id: &Value, code: &str| {
        app.post_json(
            "/verify/code/verify",
            json!({"channel": channel, "challenge_id": challenge_id, "code": code}),
        )
    };
    let r = verify("email", &sent["challenge_id"], &code).await;
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "no_pending_code",
        "as an e-mail code",
    )
    .await;
    let r = verify("sms", &json!("0".repeat(32)), &code).await;
    assert_refused(
        r,
        StatusCode::BAD_REQUEST,
        "no_pending_code",
        "another challenge",
    )
    .await;
    let r = verify("sms", &sent["challenge_id"], &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(SET_COOKIE).is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["amr"], json!(["sms"]), "{body}");
    let r = verify("sms", &sent["challenge_id"], &code).await;
    assert_refused(r, StatusCode::BAD_REQUEST, "no_pending_code", "used twice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_mount_path_moves_every_route_axum() {
    a_custom_mount_path_moves_every_route(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_mount_path_moves_every_route_actix() {
    a_custom_mount_path_moves_every_route(Adapter::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_codes_step_up_over_http_axum() {
    sms_codes_step_up_over_http(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_codes_step_up_over_http_actix() {
    sms_codes_step_up_over_http(Adapter::Actix).await;
}
