//! The conformance suite: one list of scenarios, written once, run over real
//! HTTP against both example banks — `axum::<scenario>` and
//! `actix::<scenario>` — so a behaviour difference between the adapters is a
//! failing test. `both_adapters_answer_alike` also compares the two answers
//! to the same requests directly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use stepup_conformance::{Adapter, Bank, HTML, SoftPasskey, start};

stepup_conformance::per_adapter!(
    the_whole_flow,
    assurance_ends_with_the_login_session,
    wrong_codes_lock_out,
    every_post_refuses_other_origins,
    hostile_return_paths_and_page_input,
    password_alone_is_level_one,
    recovery_codes_work_once,
    email_codes_work_once_and_only_for_their_challenge,
    closing_the_account_needs_a_passkey,
    enrollment_needs_a_fresh_step_up,
    status_and_drop,
    nobody_logged_in,
    tossed_cookies_are_refused,
    bad_requests_are_clear_errors,
    pages_and_assets_cannot_be_framed,
);

/// Every page and asset of the routes: a strict CSP (no inline script or
/// style, never framed), `X-Frame-Options: DENY`, no referrer.
async fn pages_and_assets_cannot_be_framed(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    bank.totp(&bank.code(), "/").await;
    for path in [
        "/step-up",
        "/step-up/assets/page.css",
        "/step-up/assets/passkey.js",
        "/step-up/enroll/totp",
        "/step-up/enroll/passkey",
    ] {
        let r = bank.navigate(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert_eq!(h["content-security-policy"], csp, "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let body = r.text().await.unwrap();
        // What the CSP forbids is not used: no inline script, style or
        // handlers, so the page and the passkey script work under it.
        for inline in [
            "<script>",
            "<style",
            " style=",
            " onclick=",
            " onload=",
            "javascript:",
        ] {
            assert!(!body.contains(inline), "{path}: {inline}");
        }
    }
    // A page shown again after an error carries them too.
    let r = bank.totp("000000", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

async fn the_whole_flow(bank: Bank) {
    assert_eq!(bank.login("alice", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let (_, account) = bank.get_json("/account").await;
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
    let r = bank.navigate("/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page_url = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        page_url.starts_with("/step-up?return_to=/statements&reason=no_assurance&why="),
        "{page_url}"
    );
    let page = bank.navigate(&page_url).await.text().await.unwrap();
    // The page says the route's own reason (from configuration, by identifier).
    assert!(page.contains("Statements show sensitive data"), "{page}");
    assert!(page.contains(r#"autocomplete="one-time-code""#), "{page}");

    let code = bank.code();
    let r = bank.totp(&code, "/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/statements");
    let r = bank.navigate("/statements").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Statements"));

    // The transfer goes through; the code cannot be used again.
    let r = bank.transfer(100).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank.totp(&code, "/").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("already used"));

    // Over 10,000 needs a step-up bound to this very transfer, used once:
    // the fresh assurance alone does not do.
    bank.clock.advance(Duration::from_secs(90));
    let problem = bank.transfer_challenge(20_000).await;
    assert_eq!(problem["reason"], "action_not_confirmed", "{problem}");
    assert_eq!(
        problem["authorization_details"][0]["details"],
        json!({"amount": "20000.00", "to": "bob"})
    );
    let confirmation = problem["confirmation"].as_str().unwrap().to_owned();
    let r = bank
        .post_json(
            "/step-up/totp",
            json!({"code": bank.code(), "confirmation": confirmation}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["grant"], confirmation);
    let before = bank.balance().await;
    let r = bank.transfer_granted(20_000, &confirmation).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.balance().await, before - 20_000);
    let again = bank.transfer_granted(20_000, &confirmation).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bank.balance().await, before - 20_000);

    // Status for a single-page app.
    let (_, status) = bank
        .get_json("/step-up/status?policy=level%202%20within%205m")
        .await;
    assert_eq!(status["satisfied"], true, "{status}");

    // After 300 s the transfer is challenged again (freshness on the clock).
    bank.clock.advance(Duration::from_secs(301));
    assert_eq!(bank.transfer_challenge(100).await["reason"], "stale");

    // Dropping the assurance.
    bank.clock.advance(Duration::from_secs(30));
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    let r = bank.post_json("/step-up/drop", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.transfer(1).await.status(), StatusCode::UNAUTHORIZED);
}

async fn assurance_ends_with_the_login_session(bank: Bank) {
    bank.login("alice", "wonderland").await;
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    let r = bank
        .client
        .post(bank.url("/logout"))
        .header("origin", &bank.origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    bank.login("alice", "wonderland").await;
    // The assurance cookie is still in the jar, but bound to the old session.
    assert_eq!(bank.transfer_challenge(1).await["reason"], "other_binding");
}

async fn wrong_codes_lock_out(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // A browser gets whole sentences …
    let r = bank.totp("000000", "/").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("That was not right. Please try again."),
        "{html}"
    );
    // … an API client a coarse hint, never the exact count.
    for left in (0..4).rev() {
        let r = bank
            .post_json("/step-up/totp", json!({"code": "000000"}))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "wrong");
        assert_eq!(body["few_attempts_left"], left <= 2, "{body}");
        assert!(body.get("attempts_left").is_none(), "{body}");
    }
    // Locked: the right code gets the same answer as a wrong one.
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key(RETRY_AFTER));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "locked_out");
    // The page says it in words, and keeps the focus on the form.
    let r = bank.totp(&bank.code(), "/").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers().contains_key(RETRY_AFTER),
        "the page says when too"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.contains("Too many attempts. Please wait 1 minute and try again."),
        "{text}"
    );
    assert!(text.contains("autofocus"));
    // A new login session does not reset the count.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank
        .post_json_as(&other, "/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // After the lockout a code works — once.
    bank.clock.advance(Duration::from_secs(61));
    let code = bank.code();
    let r = bank.post_json("/step-up/totp", json!({"code": code})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank.post_json("/step-up/totp", json!({"code": code})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "already_used");
}

/// Every challenge POST, with a body it would accept.
const POSTS: [&str; 17] = [
    "/step-up/totp",
    "/step-up/password",
    "/step-up/recovery",
    "/step-up/code/send",
    "/step-up/code/verify",
    "/step-up/passkey/start",
    "/step-up/passkey/finish",
    "/step-up/drop",
    "/step-up/enroll/totp",
    "/step-up/enroll/totp/confirm",
    "/step-up/enroll/recovery-codes",
    "/step-up/enroll/passkey/start",
    "/step-up/enroll/passkey/finish",
    "/step-up/enroll/totp/remove",
    "/step-up/enroll/passkey/remove",
    "/step-up/account-recovery",
    "/step-up/account-recovery/cancel",
];

async fn every_post_refuses_other_origins(bank: Bank) {
    bank.login("alice", "wonderland").await;
    for path in POSTS {
        let lookalike = format!("{}.evil.example", bank.origin);
        for origin in [
            Some("http://evil.example"),
            Some("null"),
            Some(lookalike.as_str()),
            None,
        ] {
            let mut request = bank
                .client
                .post(bank.url(path))
                .form(&[("code", bank.code().as_str()), ("channel", "email")]);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} from {origin:?}");
            assert_eq!(r.headers()["cache-control"], "no-store");
            assert!(r.headers().get(SET_COOKIE).is_none(), "{path}");
        }
        // A cross-site or same-site fetch without Origin, or with `null`
        // (a sandboxed frame, a data: document), is refused too.
        for site in ["cross-site", "same-site", "none"] {
            for origin in [None, Some("null")] {
                let mut request = bank
                    .client
                    .post(bank.url(path))
                    .header("sec-fetch-site", site);
                if let Some(origin) = origin {
                    request = request.header("origin", origin);
                }
                let r = request.send().await.unwrap();
                assert_eq!(
                    r.status(),
                    StatusCode::FORBIDDEN,
                    "{path} {site} {origin:?}"
                );
            }
        }
    }
    // Nothing happened: no step-up, no code sent.
    assert_eq!(bank.codes.count(), 0);
    assert_eq!(bank.transfer(1).await.status(), StatusCode::UNAUTHORIZED);
    // A browser that sends only Sec-Fetch-Site: same-origin is let in.
    let r = bank
        .client
        .post(bank.url("/step-up/totp"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("code", bank.code().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // So is `Origin: null` with it: what Chromium sends on a form POST from
    // the challenge page, whose referrer policy is `no-referrer`.
    let r = bank
        .client
        .post(bank.url("/step-up/password"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "checked, not refused");
}

async fn hostile_return_paths_and_page_input(bank: Bank) {
    bank.login("alice", "wonderland").await;
    for hostile in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%0d%0aSet-Cookie:x=1",
        "/\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "http:/evil.example",
        "/%2f%2fevil.example",
        "/../admin",
        "",
    ] {
        bank.clock.advance(Duration::from_secs(30));
        let r = bank.totp(&bank.code(), hostile).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{hostile:?}");
        assert_eq!(r.headers()[LOCATION], "/", "{hostile:?}");
    }
    // A local path is kept, query and all.
    bank.clock.advance(Duration::from_secs(30));
    let r = bank.totp(&bank.code(), "/statements?month=11").await;
    assert_eq!(r.headers()[LOCATION], "/statements?month=11");
    // The page never shows request text: not the return path, not a reason.
    let page = bank
        .navigate(
            "/step-up?return_to=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&reason=%3Cb%3E&why=%3Ci%3Eboo",
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("<script>alert") && !page.contains("<b>") && !page.contains("boo"),
        "{page}"
    );
    assert!(page.contains("We need to confirm it"), "{page}");
}

async fn password_alone_is_level_one(bank: Bank) {
    bank.login("bob", "builder").await;
    let page = bank.navigate("/step-up").await.text().await.unwrap();
    assert!(page.contains(r#"action="/step-up/password""#), "{page}");
    assert!(!page.contains(r#"action="/step-up/totp""#), "{page}");
    let r = bank
        .post_json("/step-up/password", json!({"password": "wrong"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = bank
        .form(
            "/step-up/password",
            &[("password", "builder"), ("return_to", "/account")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/account");
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["level"], 1, "{status}");
    assert_eq!(status["methods"][0]["method"], "password");
    // Level 2 is still needed for a transfer.
    assert_eq!(
        bank.transfer_challenge(1).await["reason"],
        "insufficient_level"
    );
}

async fn recovery_codes_work_once(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Getting codes needs a fresh step-up (alice has TOTP).
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    bank.totp(&bank.code(), "/").await;
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let codes: Value = r.json().await.unwrap();
    let codes: Vec<String> = serde_json::from_value(codes["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);

    // Later, without her phone: a recovery code.
    bank.clock.advance(Duration::from_secs(600));
    assert_eq!(bank.transfer(1).await.status(), StatusCode::UNAUTHORIZED);
    let r = bank
        .post_json(
            "/step-up/recovery",
            json!({"code": codes[3], "return_to": "/"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(body["level"], 2, "{body}");
    let (_, status) = bank.get_json("/step-up/status").await;
    let methods: Vec<&str> = status["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"recovery_code"), "{status}");
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    // Once only.
    let r = bank
        .post_json("/step-up/recovery", json!({"code": codes[3]}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn email_codes_work_once_and_only_for_their_challenge(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let page = bank.navigate("/step-up").await.text().await.unwrap();
    assert!(page.contains("Send me a code by e-mail"), "{page}");
    let r = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(bank_core::ALICE_EMAIL),
        "the address is masked"
    );
    let sent: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sent["destination_hint"], "a•••@example.com");
    let id = sent["challenge_id"].as_str().unwrap().to_owned();
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();

    let verify = |id: &str, code: &str| {
        bank.post_json(
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": id, "code": code}),
        )
    };
    // Another challenge id does not take the code.
    let r = verify("not-the-challenge", &code).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_pending_code", "{body}");
    let r = verify(&id, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    // NIST SP 800-63B: e-mail is not an out-of-band authenticator, so an
    // e-mail code stays at level 1 and a transfer (level 2) asks again …
    assert_eq!(body["level"], 1, "{body}");
    assert_eq!(body["acr"], "aal1", "{body}");
    let problem = bank.transfer_challenge(1).await;
    // … on a page that does not offer e-mail, where it cannot suffice.
    let page = bank
        .navigate(problem["step_up_url"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Send me a code by e-mail"), "{page}");
    assert!(page.contains("Authenticator app"), "{page}");
    // Used once.
    let r = verify(&id, &code).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_pending_code");

    // A browser: sending answers with the code form; the code brings it back.
    let r = bank
        .form(
            "/step-up/code/send",
            &[("channel", "email"), ("return_to", "/statements")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(r#"action="/step-up/code/verify""#)
            && html.contains(r#"name="challenge_id""#),
        "{html}"
    );
    let form_id = html
        .split(r#"name="challenge_id" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // A wrong code keeps the code form up, for the same challenge.
    let r = bank
        .form(
            "/step-up/code/verify",
            &[
                ("channel", "email"),
                ("challenge_id", &form_id),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains(&form_id));
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    let r = bank
        .form(
            "/step-up/code/verify",
            &[
                ("channel", "email"),
                ("challenge_id", &form_id),
                ("code", &code),
                ("return_to", "/statements"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/statements");

    // Another login session of the same user cannot use a code sent to this one.
    bank.clock.advance(Duration::from_secs(60));
    let r = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await;
    let sent: Value = r.json().await.unwrap();
    let id = sent["challenge_id"].as_str().unwrap().to_owned();
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank
        .post_json_as(
            &other,
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": id, "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn closing_the_account_needs_a_passkey(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Closing is challenged: TOTP is not enough.
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    let r = bank.post_json("/settings/close-account", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["reason"], "missing_method");
    assert_eq!(
        problem["methods"],
        json!(["device_bound_passkey", "passkey"])
    );

    // Alice registers a passkey (she has TOTP, and just used it: fresh enough).
    let mut key = SoftPasskey::new(true);
    assert_eq!(
        bank.register_passkey(&mut key).await.status(),
        StatusCode::OK
    );

    // Step up with it, then close.
    let mut finish = bank
        .passkey_assertion(&mut key, bank.origin_url())
        .await
        .unwrap();
    finish["return_to"] = json!("/settings");
    let r = bank
        .post_json("/step-up/passkey/finish", finish.clone())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("stepup=")
    );
    let body: Value = r.json().await.unwrap();
    // Unattested, so not believed to be device-bound: level 2, `swk`.
    assert_eq!(body["level"], 2, "{body}");
    assert_eq!(body["acr"], "aal2");
    assert_eq!(body["amr"], json!(["otp", "swk", "user"]), "{body}");
    assert_eq!(body["return_to"], "/settings");
    // The same ceremony cannot finish twice.
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_pending_ceremony");
    // The page offers the passkey through the served script, no inline script.
    let html = bank.navigate("/step-up").await.text().await.unwrap();
    assert!(
        html.contains(r#"id="passkey-button""#) && html.contains("/step-up/assets/passkey.js"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let r = bank.navigate("/step-up/assets/passkey.js").await;
    assert_eq!(r.headers()[CONTENT_TYPE], "text/javascript; charset=utf-8");
    // Registering another passkey needs a fresh step-up; the passkey counts.
    let r = bank
        .post_json("/step-up/enroll/passkey/start", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    bank.clock.advance(Duration::from_secs(301));
    let r = bank
        .post_json("/step-up/enroll/passkey/start", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = bank.navigate("/step-up/enroll/passkey").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Step up with the passkey again, then close.
    assert_eq!(
        bank.passkey_step_up(&mut key).await.status(),
        StatusCode::OK
    );
    let elsewhere = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank.post_json("/settings/close-account", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"),
        "the session cookie is deleted"
    );
    // The account and every session of it are gone; no more log-ins.
    let (status, _) = bank.get_json("/account").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = elsewhere.get(bank.url("/account")).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the other session ended too"
    );
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::UNAUTHORIZED
    );
}

async fn enrollment_needs_a_fresh_step_up(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Alice has TOTP: the enrollment page first sends her to step up …
    let r = bank.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/step-up?return_to=/step-up/enroll/totp&reason=no_assurance"),
        "{location}"
    );
    // … and an API client gets the RFC 9470 challenge.
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(WWW_AUTHENTICATE));
    // After a step-up she may; five minutes later no longer.
    bank.totp(&bank.code(), "/").await;
    let r = bank.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::OK);
    bank.clock.advance(Duration::from_secs(301));
    let r = bank.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Bob has no second factor: he re-confirms his password for the first.
    let bob = start(bank.adapter).await;
    bob.login("bob", "builder").await;
    let r = bob.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    // The page it leads to offers the password, only.
    let page = bob.navigate(&location).await.text().await.unwrap();
    assert!(page.contains(r#"action="/step-up/password""#), "{page}");
    assert!(!page.contains("Send me a code"), "{page}");
    let r = bob
        .form(
            "/step-up/password",
            &[
                ("password", "builder"),
                ("return_to", "/step-up/enroll/totp"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = bob.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"action="/step-up/enroll/totp""#), "{html}");
    let r = bob.form("/step-up/enroll/totp", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("data:image/png;base64,") && html.contains("enroll/totp/confirm"),
        "{html}"
    );
    let r = bob.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["qr_png_data_url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    let secret =
        stepup_challenge::TotpSecret::from_base32(v["manual_entry_key"].as_str().unwrap()).unwrap();
    let bob_code = || {
        stepup_challenge::TotpConfig::new(bank_core::TOTP_ISSUER)
            .code_at(
                &secret,
                stepup_core::Clock::now(&bob.clock).as_unix_seconds(),
            )
            .unwrap()
    };
    let r = bob
        .post_json("/step-up/enroll/totp/confirm", json!({"code": "000000"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let code = bob_code();
    let r = bob
        .post_json("/step-up/enroll/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Now he has one: enrolling again needs a step-up …
    let r = bob.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = bob
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // … and the confirming code cannot be it.
    let r = bob.post_json("/step-up/totp", json!({"code": code})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "already_used");
    bob.clock.advance(Duration::from_secs(30));
    let r = bob
        .post_json("/step-up/totp", json!({"code": bob_code()}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bob
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
}

async fn status_and_drop(bank: Bank) {
    let (status, _) = bank.get_json("/step-up/status").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    bank.login("alice", "wonderland").await;
    let (status, body) = bank.get_json("/step-up/status?policy=level%202").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"assured": false, "reason": "no_assurance", "policy": "level 2", "satisfied": false})
    );
    let (status, body) = bank.get_json("/step-up/status?policy=level%20(").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "policy");

    bank.totp(&bank.code(), "/").await;
    bank.clock.advance(Duration::from_secs(42));
    let (_, body) = bank
        .get_json("/step-up/status?policy=level%202%20within%205m")
        .await;
    assert_eq!(body["satisfied"], true, "{body}");
    let (_, body) = bank.get_json("/step-up/status?policy=passkey").await;
    assert_eq!(body["satisfied"], false, "{body}");
    let (_, body) = bank.get_json("/step-up/status").await;
    assert!(body.get("satisfied").is_none(), "{body}");
    assert_eq!(body["assured"], true);
    assert_eq!(body["level"], 2);
    assert_eq!(body["acr"], "aal2");
    assert_eq!(body["methods"][0]["method"], "totp");
    assert_eq!(body["methods"][0]["age"], 42);

    // A form drop goes back to a validated path and deletes the cookie.
    let r = bank
        .form("/step-up/drop", &[("return_to", "//evil.example")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/");
    let cookie = r.headers()[SET_COOKIE].to_str().unwrap();
    assert_eq!(
        cookie,
        "stepup=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    );
    let (_, body) = bank.get_json("/step-up/status").await;
    assert_eq!(body["assured"], false);
}

async fn nobody_logged_in(bank: Bank) {
    for path in ["/step-up", "/step-up/status", "/step-up/enroll/totp"] {
        let r = bank.client.get(bank.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
    }
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = bank.transfer(1).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("Log in first"));
    assert!(!r_has_challenge(&body));
}

fn r_has_challenge(body: &Value) -> bool {
    body.get("step_up_url").is_some()
}

async fn tossed_cookies_are_refused(bank: Bank) {
    let r = bank
        .client
        .post(bank.url("/login"))
        .header("origin", &bank.origin)
        .form(&[("username", "alice"), ("password", "wonderland")])
        .send()
        .await
        .unwrap();
    let session = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    let token = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let fresh = bank.other_client();
    let send = |cookie: String| {
        fresh
            .post(bank.url("/transfer"))
            .header("origin", &bank.origin)
            .header("cookie", cookie)
            .json(&json!({"to": "bob", "amount": 1}))
            .send()
    };
    assert_eq!(
        send(format!("{session}; {token}")).await.unwrap().status(),
        StatusCode::OK
    );
    // A second cookie of the same name (tossed in by a sibling subdomain) is
    // refused, never guessed between — whichever order.
    for cookie in [
        format!("{session}; {token}; stepup=forged"),
        format!("{session}; stepup=forged; {token}"),
    ] {
        let r = send(cookie).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["reason"], "invalid_token");
    }
}

async fn bad_requests_are_clear_errors(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let post_raw = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        bank.client
            .post(bank.url(path))
            .header("origin", &bank.origin)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    let r = post_raw("/step-up/totp", "application/json", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "malformed");
    // Too large: answered before the body is read, so the server may close
    // the connection — a client of its own, whose connection is not reused.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = other
        .post(bank.url("/step-up/totp"))
        .header("origin", &bank.origin)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(vec![b'a'; 64 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = post_raw(
        "/step-up/passkey/finish",
        "application/json",
        b"{}".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post_raw(
        "/step-up/code/send",
        "application/json",
        br#"{"channel":"pigeon"}"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "channel");
    // Wrong format (full-width digits too) and a code far too long: a format
    // error, never a 500.
    for code in [
        "12345",
        "abcdef",
        "1234567",
        "１２３４５６",
        &"9".repeat(5000),
    ] {
        let r = bank.post_json("/step-up/totp", json!({"code": code})).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{code}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "format", "{code}");
    }
    // A method the user does not have.
    let r = bank
        .post_json("/step-up/recovery", json!({"code": "ABCD-EFGH-JKMN-PQRS"}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_enrolled");
    let r = post_raw(
        "/step-up/totp",
        "application/x-www-form-urlencoded",
        b"code=%FF%FE".to_vec(),
    )
    .await
    .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Unknown paths and methods.
    let r = bank
        .client
        .get(bank.url("/step-up/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = bank
        .client
        .get(bank.url("/step-up/totp"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["allow"], "POST");
}

/// The same requests to both banks get the same answers: status, the
/// headers that carry meaning, and the body (with the session-specific
/// token values cut out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_answer_alike() {
    let axum = start(Adapter::Axum).await;
    let actix = start(Adapter::Actix).await;
    let mut transcripts = Vec::new();
    for bank in [&axum, &actix] {
        let mut lines = Vec::new();
        for step in steps(bank) {
            let r = step.send().await.unwrap();
            lines.push(describe(bank, r).await);
        }
        transcripts.push(lines);
    }
    assert_eq!(transcripts[0].len(), transcripts[1].len());
    for (a, b) in transcripts[0].iter().zip(&transcripts[1]) {
        assert_eq!(a, b, "axum vs actix");
    }
}

/// A bound route's challenge (the banks' rule: over 10 000 is confirmed
/// for its exact amount and payee) answers byte for byte alike on both
/// adapters — status, every header but `date`, the body, with the random
/// ceremony ids masked — for an API client and for a browser form; its
/// `step_up_url` names the policy's own reason (`why=`) and the ceremony,
/// and the challenge page then says what is confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_challenge_answers_byte_for_byte_alike() {
    let mut answers = Vec::new();
    for adapter in [Adapter::Axum, Adapter::Actix] {
        let bank = start(adapter).await;
        assert_eq!(
            bank.login("alice", "wonderland").await,
            StatusCode::SEE_OTHER
        );
        let code = bank.code();
        let r = bank.totp(&code, "/").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        // Fresh for the route: only the confirmation is missing.
        bank.clock.advance(Duration::from_secs(90));
        let mut transcript = Vec::new();
        let api = bank.transfer(50_000).await;
        let form = bank
            .client
            .post(bank.url("/transfer"))
            .header("origin", &bank.origin)
            .header("accept", HTML)
            .form(&[("to", "bob"), ("amount", "50000")])
            .send()
            .await
            .unwrap();
        let form_location = form
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        for r in [api, form] {
            let mut out = format!("{}", r.status());
            let mut headers: Vec<_> = r
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date")
                .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
                .collect();
            headers.sort();
            for h in headers {
                out.push('\n');
                out.push_str(&h);
            }
            out.push('\n');
            out.push_str(&r.text().await.unwrap());
            transcript.push(mask_confirmations(&out));
        }
        let problem: Value =
            serde_json::from_str(transcript[0].rsplit('\n').next().unwrap()).unwrap();
        let url = problem["step_up_url"].as_str().unwrap().to_owned();
        assert!(
            url.starts_with("/step-up?return_to=/transfer&reason=action_not_confirmed&why=r")
                && url.ends_with("&confirmation=ID"),
            "{url}"
        );
        // The page of the browser's ceremony (not masked: its own id).
        let location = form_location.unwrap();
        let page = bank.navigate(&location).await.text().await.unwrap();
        assert!(
            page.contains("Transfers over 10,000 are confirmed one by one"),
            "{page}"
        );
        assert!(page.contains("Confirm: Send 50,000 to bob"), "{page}");
        assert!(page.contains(r#"name="confirmation""#), "{page}");
        answers.push(transcript);
    }
    assert_eq!(answers[0], answers[1], "axum vs actix");
}

fn steps(bank: &Bank) -> Vec<reqwest::RequestBuilder> {
    let c = &bank.client;
    let from_us = |r: reqwest::RequestBuilder| r.header("origin", &bank.origin);
    let code = bank.code();
    vec![
        c.get(bank.url("/step-up")),
        from_us(c.post(bank.url("/login")))
            .form(&[("username", "alice"), ("password", "wonderland")]),
        c.get(bank.url("/account")),
        from_us(c.post(bank.url("/transfer"))).json(&json!({"to": "bob", "amount": 5})),
        c.get(bank.url("/statements")).header("accept", HTML),
        c.get(bank.url("/step-up?return_to=/statements&reason=no_assurance&why=r0")),
        c.get(bank.url("/step-up/assets/page.css")),
        c.get(bank.url("/step-up/assets/passkey.js")),
        c.get(bank.url("/step-up/status?policy=level%202")),
        c.get(bank.url("/step-up/enroll/totp"))
            .header("accept", HTML),
        c.post(bank.url("/step-up/totp"))
            .form(&[("code", "000000")]),
        from_us(c.post(bank.url("/step-up/totp"))).form(&[("code", "000000")]),
        from_us(c.post(bank.url("/step-up/totp"))).json(&json!({"code": "000000"})),
        from_us(c.post(bank.url("/step-up/totp"))).json(&json!({"code": "12"})),
        from_us(c.post(bank.url("/step-up/password"))).json(&json!({"password": "nope"})),
        from_us(c.post(bank.url("/step-up/code/send"))).json(&json!({"channel": "sms"})),
        from_us(c.post(bank.url("/step-up/totp")))
            .form(&[("code", code.as_str()), ("return_to", "/statements")]),
        c.get(bank.url("/statements")).header("accept", HTML),
        c.get(bank.url("/step-up/status")),
        from_us(c.post(bank.url("/step-up/enroll/recovery-codes"))).form(&[("x", "y")]),
        from_us(c.post(bank.url("/transfer"))).json(&json!({"to": "bob", "amount": 50_000})),
        from_us(c.post(bank.url("/step-up/drop"))).form(&[("return_to", "/account")]),
        from_us(c.post(bank.url("/transfer"))).json(&json!({"to": "bob", "amount": 5})),
        // Another origin on the bank's own route: the same 403 on both.
        c.post(bank.url("/transfer"))
            .json(&json!({"to": "bob", "amount": 5})),
        c.put(bank.url("/step-up/status")),
        c.get(bank.url("/step-up/unknown")),
    ]
}

/// Status, meaningful headers and body; values that differ per bank
/// (ports, session ids, tokens, recovery codes) replaced by placeholders.
async fn describe(bank: &Bank, r: reqwest::Response) -> String {
    let mut out = format!("{}", r.status());
    for name in [
        "content-type",
        "cache-control",
        "location",
        "www-authenticate",
        "allow",
        "retry-after",
        "set-cookie",
    ] {
        for value in r.headers().get_all(name) {
            let value = value.to_str().unwrap();
            let value = match value.split_once('=') {
                Some((cookie, rest)) if name == "set-cookie" => {
                    let attributes = rest.split_once(';').map_or("", |(_, a)| a);
                    format!("{cookie}=…;{attributes}")
                }
                _ => value.to_owned(),
            };
            out.push_str(&format!("\n{name}: {value}"));
        }
    }
    let body = r.text().await.unwrap();
    let body = body
        .replace(&bank.origin, "ORIGIN")
        .replace(&bank.base, "BASE");
    // Recovery codes are random: keep only their shape.
    let body = match serde_json::from_str::<Value>(&body) {
        Ok(v) if v.get("recovery_codes").is_some() => "recovery codes".to_owned(),
        _ if body.contains("<ul class=\"codes\">") => "codes page".to_owned(),
        _ => body,
    };
    out.push('\n');
    out.push_str(&body);
    mask_confirmations(&out)
}

/// `text` with every bound action's ceremony id and kept form's id
/// (random: 32 hex digits after `confirmation=`, `"confirmation":"` or
/// `pending%3D`) replaced by `ID`.
fn mask_confirmations(text: &str) -> String {
    let mut out = text.to_owned();
    for marker in ["confirmation=", "\"confirmation\":\"", "pending%3D"] {
        let mut from = 0;
        while let Some(at) = out[from..].find(marker) {
            let start = from + at + marker.len();
            let end = (start + 32).min(out.len());
            if out[start..end].len() == 32 && out[start..end].bytes().all(|b| b.is_ascii_hexdigit())
            {
                out.replace_range(start..end, "ID");
            }
            from = start;
        }
    }
    out
}
