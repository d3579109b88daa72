//! Conformance: a step-up bound to one action (the banks' transfers over
//! 10,000) is a single-use grant for exactly that amount, payee, route and
//! login session — over real HTTP, on both banks, as an API client, a
//! browser and an attacker would try it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};
use stepup_conformance::{Bank, SoftPasskey};

stepup_conformance::per_adapter!(
    a_grant_is_for_one_transfer_once,
    a_grant_is_for_its_session_and_its_ceremony,
    a_grant_expires,
    duplicate_and_malformed_fields_are_refused,
    an_email_code_names_the_transfer_it_confirms,
    a_passkey_assertion_for_one_transfer_confirms_no_other,
    a_browser_confirms_the_transfer_it_typed,
    small_transfers_are_not_bound,
    a_weaker_confirmation_never_borrows_the_tokens_strength,
);

/// `POST /transfer` as JSON with `body`, optionally with a grant.
async fn transfer(
    bank: &Bank,
    client: &reqwest::Client,
    body: Value,
    grant: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(bank.url("/transfer"))
        .header("origin", &bank.origin)
        .json(&body);
    if let Some(grant) = grant {
        request = request.header("stepup-grant", grant);
    }
    request.send().await.unwrap()
}

/// A JSON transfer that must be challenged for a confirmation: the
/// ceremony id the problem body names.
async fn challenged(bank: &Bank, client: &reqwest::Client, body: Value) -> String {
    let r = transfer(bank, client, body, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["reason"], "action_not_confirmed", "{problem}");
    problem["confirmation"].as_str().unwrap().to_owned()
}

/// A TOTP step-up by JSON made for the ceremony `confirmation`.
async fn confirm_totp(
    bank: &Bank,
    client: &reqwest::Client,
    confirmation: &str,
) -> reqwest::Response {
    bank.post_json_as(
        client,
        "/step-up/totp",
        json!({"code": bank.code(), "confirmation": confirmation}),
    )
    .await
}

async fn logged_in_and_fresh(bank: &Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        bank.totp(&bank.code(), "/").await.status(),
        StatusCode::SEE_OTHER
    );
    // A new TOTP step for the confirmations to come.
    bank.clock.advance(Duration::from_secs(30));
}

/// The digest and the canonical JSON an API client is shown.
async fn a_grant_is_for_one_transfer_once(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let c = &bank.client;
    let a = json!({"to": "bob", "amount": 20_000});
    let r = transfer(&bank, c, a.clone(), None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let problem: Value = r.json().await.unwrap();
    let details = &problem["authorization_details"][0];
    assert_eq!(details["type"], "payment");
    assert_eq!(details["method"], "POST");
    assert_eq!(details["route"], "/transfer");
    assert_eq!(
        details["details"],
        json!({"amount": "20000.00", "to": "bob"})
    );
    let digest = problem["action_digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    let confirmation = problem["confirmation"].as_str().unwrap().to_owned();
    assert!(
        problem["step_up_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("&confirmation={confirmation}"))
    );

    let r = confirm_totp(&bank, c, &confirmation).await;
    assert_eq!(r.status(), StatusCode::OK);
    let before = bank.balance().await;

    // Not for a cent more, another payee, a cent in another form: each is
    // another action, challenged for its own confirmation, and leaves the
    // grant where it is.
    for other in [
        json!({"to": "bob", "amount": "20000.01"}),
        json!({"to": "carol", "amount": 20_000}),
        json!({"to": "bob ", "amount": 20_001}),
    ] {
        let r = transfer(&bank, c, other.clone(), Some(&confirmation)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{other}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["reason"], "action_not_confirmed");
        assert_ne!(problem["action_digest"], digest);
    }
    assert_eq!(bank.balance().await, before);

    // The same action written otherwise (a string amount, padded payee)
    // is the same action: the normalised values are what is confirmed.
    let r = transfer(
        &bank,
        c,
        json!({"amount": "20000", "to": " bob "}),
        Some(&confirmation),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.balance().await, before - 20_000);

    // Once: the second identical request needs a confirmation of its own.
    let r = transfer(&bank, c, a.clone(), Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = transfer(&bank, c, a, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bank.balance().await, before - 20_000);
}

async fn a_grant_is_for_its_session_and_its_ceremony(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let a = json!({"to": "bob", "amount": 30_000});
    let confirmation = challenged(&bank, &bank.client, a.clone()).await;
    assert_eq!(
        confirm_totp(&bank, &bank.client, &confirmation)
            .await
            .status(),
        StatusCode::OK
    );

    // Alice's other login session, freshly stepped up itself, presenting
    // the same ceremony id: refused, and the grant stays for its session.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json_as(&other, "/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = transfer(&bank, &other, a.clone(), Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Nor can the other session confirm the first one's ceremony.
    bank.clock.advance(Duration::from_secs(30));
    let r = confirm_totp(&bank, &other, &confirmation).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "no_pending_action"
    );

    // Presenting another ceremony's id than the one the grant came from:
    // refused, left in place.
    let r = transfer(&bank, &bank.client, a.clone(), Some(&"0".repeat(32))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let before = bank.balance().await;
    let r = transfer(&bank, &bank.client, a, Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.balance().await, before - 30_000);

    // A ceremony is used once: a second step-up for it is refused, and
    // consumes nothing.
    bank.clock.advance(Duration::from_secs(30));
    let r = confirm_totp(&bank, &bank.client, &confirmation).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

async fn a_grant_expires(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let a = json!({"to": "bob", "amount": 15_000});
    let confirmation = challenged(&bank, &bank.client, a.clone()).await;
    assert_eq!(
        confirm_totp(&bank, &bank.client, &confirmation)
            .await
            .status(),
        StatusCode::OK
    );
    // Two minutes and a second later the grant is gone (the assurance is
    // still fresh).
    bank.clock.advance(Duration::from_secs(121));
    let before = bank.balance().await;
    let r = transfer(&bank, &bank.client, a.clone(), Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bank.balance().await, before);
    // A ceremony nobody confirmed expires after five minutes.
    let late = challenged(&bank, &bank.client, a).await;
    bank.clock.advance(Duration::from_secs(301));
    let r = confirm_totp(&bank, &bank.client, &late).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

async fn duplicate_and_malformed_fields_are_refused(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let before = bank.balance().await;
    // `amount=1&amount=900`: which one would run? Neither.
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("origin", &bank.origin)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("to=bob&amount=1&amount=900")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["field"], "amount", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("twice"),
        "{problem}"
    );
    // The same in JSON (a parser keeping the last value would send 900).
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("origin", &bank.origin)
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"to":"bob","amount":1,"amount":900}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "amount");
    // Not canonical, or missing: 400 naming the field; a float: asked as a
    // string; another content type: 415.
    for (body, field) in [
        (json!({"to": "bob", "amount": "1e3"}), "amount"),
        (json!({"to": "bob", "amount": "-5"}), "amount"),
        (json!({"to": "bob", "amount": "1,000"}), "amount"),
        (json!({"to": "bob", "amount": 12.5}), "amount"),
        (json!({"to": "bob"}), "amount"),
        (json!({"to": "  ", "amount": 5}), "to"),
        (json!({"to": ["bob"], "amount": 5}), "to"),
    ] {
        let r = transfer(&bank, &bank.client, body.clone(), None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.json::<Value>().await.unwrap()["field"], field, "{body}");
    }
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("origin", &bank.origin)
        .header(CONTENT_TYPE, "text/plain")
        .body("to=bob&amount=5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A browser gets a page, never JSON; the value is not echoed.
    let r = bank
        .browser_post(&bank.client, "/transfer")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("to=bob&amount=%3Cb%3E12")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The pages' headers: strict CSP, no framing, no referrer, one no-store.
    let h = r.headers();
    assert_eq!(h.get_all("cache-control").iter().count(), 1);
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("`amount`") && !page.contains("<b>12"),
        "{page}"
    );
    // Over the body limit: 413.
    let r = transfer(
        &bank,
        &bank.client,
        json!({"to": "bob", "amount": 5, "note": "x".repeat(9000)}),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(bank.balance().await, before);
}

async fn an_email_code_names_the_transfer_it_confirms(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let a = json!({"to": "bob", "amount": 12_000});
    let b = json!({"to": "carol", "amount": 12_000});
    let for_a = challenged(&bank, &bank.client, a.clone()).await;
    let for_b = challenged(&bank, &bank.client, b).await;
    let r = bank
        .post_json(
            "/step-up/code/send",
            json!({"channel": "email", "confirmation": for_a}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let sent: Value = r.json().await.unwrap();
    let message = bank.codes.last_message_to(bank_core::ALICE_EMAIL).unwrap();
    assert!(
        message.contains("It confirms: Send 12,000 to bob."),
        "{message}"
    );
    let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
    // The code confirms that transfer only: used for the other ceremony,
    // or for none, it is refused (and not used up).
    for confirmation in [Some(for_b.as_str()), None] {
        let mut body =
            json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": code});
        if let Some(c) = confirmation {
            body["confirmation"] = json!(c);
        }
        let r = bank.post_json("/step-up/code/verify", body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "no_pending_code");
    }
    let r = bank
        .post_json(
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": code, "confirmation": for_a}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let before = bank.balance().await;
    assert_eq!(
        transfer(&bank, &bank.client, a, Some(&for_a))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(bank.balance().await, before - 12_000);
}

async fn a_passkey_assertion_for_one_transfer_confirms_no_other(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let mut key = SoftPasskey::new(true);
    assert_eq!(
        bank.register_passkey(&mut key).await.status(),
        StatusCode::OK
    );
    let a = json!({"to": "bob", "amount": 40_000});
    let b = json!({"to": "carol", "amount": 40_000});
    let for_a = challenged(&bank, &bank.client, a.clone()).await;
    let for_b = challenged(&bank, &bank.client, b.clone()).await;
    // A passkey ceremony started for A, its assertion sent as B's.
    let mut finish = bank
        .passkey_assertion_with(&mut key, bank.origin_url(), json!({"confirmation": for_a}))
        .await
        .unwrap();
    finish["confirmation"] = json!(for_b);
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "no_pending_ceremony"
    );
    let before = bank.balance().await;
    assert_eq!(
        transfer(&bank, &bank.client, b, Some(&for_b))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // For A, from the start: A's grant.
    let mut finish = bank
        .passkey_assertion_with(&mut key, bank.origin_url(), json!({"confirmation": for_a}))
        .await
        .unwrap();
    finish["confirmation"] = json!(for_a);
    let r = bank.post_json("/step-up/passkey/finish", finish).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        transfer(&bank, &bank.client, a, Some(&for_a))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(bank.balance().await, before - 40_000);
}

/// A browser submitting a transfer over 10,000: the challenge page says
/// what it confirms, the step-up made there is the grant, the confirmation
/// page re-posts the form once.
async fn a_browser_confirms_the_transfer_it_typed(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let before = bank.balance().await;
    let r = bank
        .browser_post(&bank.client, "/transfer")
        .form(&[("to", "bob"), ("amount", "12000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page_url = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        page_url.contains("return_to=/step-up/resume%3Fpending%3D"),
        "{page_url}"
    );
    let confirmation = page_url.rsplit("&confirmation=").next().unwrap().to_owned();
    assert_eq!(confirmation.len(), 32, "{page_url}");
    let page = bank.navigate(&page_url).await.text().await.unwrap();
    assert!(page.contains("Confirm: Send 12,000 to bob"), "{page}");
    assert!(
        page.contains(&format!(
            r#"<input type="hidden" name="confirmation" value="{confirmation}">"#
        )),
        "{page}"
    );
    // The page's TOTP form.
    let resume = page_url
        .split("return_to=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .replace("%3F", "?")
        .replace("%3D", "=");
    let r = bank
        .form(
            "/step-up/totp",
            &[
                ("code", &bank.code()),
                ("return_to", &resume),
                ("confirmation", &confirmation),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], resume.as_str());
    let confirm = bank.navigate(&resume).await.text().await.unwrap();
    assert!(confirm.contains("Send 12,000 to bob"), "{confirm}");
    let pending = resume.rsplit('=').next().unwrap();
    let body = format!("to=bob&amount=12000&__stepup_resume={pending}");
    let repost = || bank.repost(&bank.client, "/transfer", &body);
    let r = repost().await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(bank.balance().await, before - 12_000);
    // Back and submit again: the grant is used, nothing runs twice.
    let r = repost().await;
    assert_ne!(r.status(), StatusCode::OK);
    assert_ne!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(bank.balance().await, before - 12_000);
}

/// Up to 10,000 a transfer is bound (read once) but needs no grant: the
/// route's own policy decides, as before.
async fn small_transfers_are_not_bound(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let before = bank.balance().await;
    for _ in 0..2 {
        let r = transfer(
            &bank,
            &bank.client,
            json!({"to": "bob", "amount": 10_000}),
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(bank.balance().await, before - 20_000);
}

/// The step-up made for the action must meet the policy itself: a password
/// (level 1) confirming a big transfer is not lifted to level 2 by a TOTP
/// proof already in the token — else malware knowing the password could
/// confirm its own transfer after any earlier step-up.
async fn a_weaker_confirmation_never_borrows_the_tokens_strength(bank: Bank) {
    logged_in_and_fresh(&bank).await;
    let before = bank.balance().await;
    let mallory = json!({"to": "bob", "amount": 20_000});
    let confirmation = challenged(&bank, &bank.client, mallory.clone()).await;
    let r = bank
        .post_json(
            "/step-up/password",
            json!({"password": "wonderland", "confirmation": confirmation}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Recorded for the action, but not enough for its policy: no grant.
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["pending_confirmation"],
        confirmation.as_str(),
        "{body}"
    );
    assert!(body.get("grant").is_none(), "{body}");
    let r = transfer(&bank, &bank.client, mallory.clone(), Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["reason"], "action_not_confirmed", "{problem}");
    // The same ceremony waits for a step-up that meets the policy.
    assert_eq!(problem["confirmation"], confirmation.as_str());
    assert_eq!(bank.balance().await, before);
    let page = bank
        .navigate(problem["step_up_url"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("one more way of confirming"), "{page}");
    assert_eq!(
        confirm_totp(&bank, &bank.client, &confirmation)
            .await
            .status(),
        StatusCode::OK
    );
    let r = transfer(&bank, &bank.client, mallory, Some(&confirmation)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.balance().await, before - 20_000);
}
