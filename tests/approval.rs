//! "Approve on your other device", the banks' own step-up method, over
//! real HTTP on both adapters: the page offers it, a start sends an approve
//! link to the other device (the console), the page waits, the link's page
//! asks for the number the waiting page shows (a GET approves nothing; a
//! wrong number voids the approval), approving twice approves once, the
//! browser continues once approved, and the approval expires after two
//! minutes. Nothing is pushed to a locked-out user, and one session cannot
//! use up the user's starts. It reaches level 2 and says `mca` in `amr`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use stepup_conformance::{Bank, HTML};

stepup_conformance::per_adapter!(
    approve_on_the_other_device_once,
    an_approval_expires_after_two_minutes,
    an_approval_belongs_to_its_session,
    an_api_client_starts_polls_and_finishes,
    the_other_device_sees_what_a_bound_action_does,
    a_wrong_number_voids_the_approval,
    nothing_is_pushed_to_a_locked_out_user,
    one_session_cannot_use_up_the_users_starts,
    one_finish_wins,
    made_up_links_and_early_finishes_count_nothing,
);

/// The approval id on a waiting page.
fn approval_id(html: &str) -> String {
    let marker = r#"name="approval" value=""#;
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("not waiting: {html}"))
        + marker.len();
    let id = &html[at..at + 32];
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{html}");
    id.to_owned()
}

/// The number a waiting page asks to type on the other device.
fn approval_number(html: &str) -> String {
    let marker = r#"id="approval-number">"#;
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no number: {html}"))
        + marker.len();
    let number: String = html[at..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(number.len(), 2, "{html}");
    number
}

/// The start button on Alice's page (a form post).
async fn start_form(bank: &Bank) -> reqwest::Response {
    bank.browser_post(&bank.client, "/step-up/custom/approve/start")
        .form(&[("return_to", "/statements")])
        .send()
        .await
        .unwrap()
}

/// Alice's page, a start: the waiting page's approval id and number.
async fn started(bank: &Bank) -> (String, String) {
    let r = start_form(bank).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    (approval_id(&html), approval_number(&html))
}

/// Alice's page, a start, and the right number typed on the phone: the
/// approval id.
async fn started_and_approved(bank: &Bank) -> String {
    let (id, number) = started(bank).await;
    let link = bank.approvals.last_to("alice").unwrap();
    let (status, html) = approve_on_phone(bank, &link, &number).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    id
}

/// Another number than `number` (two digits).
fn not(number: &str) -> String {
    if number == "42" { "43" } else { "42" }.to_owned()
}

async fn state(bank: &Bank, id: &str) -> String {
    let (status, body) = bank
        .get_json(&format!("/step-up/custom/approve/status?approval={id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    body["state"].as_str().unwrap().to_owned()
}

async fn finish(bank: &Bank, id: &str) -> reqwest::Response {
    bank.browser_post(&bank.client, "/step-up/custom/approve/finish")
        .form(&[("approval", id), ("return_to", "/statements")])
        .send()
        .await
        .unwrap()
}

/// The other device: no cookies, opens the link, types `number` and
/// presses the button.
async fn approve_on_phone(bank: &Bank, link: &str, number: &str) -> (StatusCode, String) {
    let phone = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = phone.get(link).header("accept", HTML).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let secret = link.split("secret=").nth(1).unwrap();
    if !html.contains(r#"name="secret""#) {
        return (StatusCode::NOT_FOUND, html);
    }
    let r = phone
        .post(bank.url("/step-up/custom/approve/approve"))
        .header("origin", &bank.origin)
        .header("accept", HTML)
        .form(&[("secret", secret), ("number", number)])
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn approve_on_the_other_device_once(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let r = bank.navigate("/statements").await;
    let page = bank.navigate(r.headers()[LOCATION].to_str().unwrap()).await;
    let html = page.text().await.unwrap();
    assert!(html.contains("Approve on your other device"), "{html}");
    assert!(
        html.contains(r#"action="/step-up/custom/approve/start""#),
        "{html}"
    );

    let (id, number) = started(&bank).await;
    assert_eq!(state(&bank, &id).await, "pending");
    let link = bank
        .approvals
        .last_to("alice")
        .expect("a link on the console");
    assert!(
        !link.contains(&id),
        "the browser's handle is not the link's secret"
    );
    // Continuing before approving: asked to wait (the same number shown),
    // nothing counted.
    let r = finish(&bank, &id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains("Not approved yet"), "{html}");
    assert_eq!(approval_number(&html), number);

    // The link's page asks for the number and says where the request came
    // from; opening it approves nothing.
    let phone = reqwest::Client::new();
    let shown = phone.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(shown.contains("Approve this confirmation?"), "{shown}");
    assert!(shown.contains(r#"name="number""#), "{shown}");
    assert!(
        shown.contains("on the network 127.0.0.0/24"),
        "where it was asked from: {shown}"
    );
    assert_eq!(state(&bank, &id).await, "pending");
    let (status, html) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Approved."), "{html}");
    // Twice: once.
    let (status, html) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("expired or was already used"), "{html}");

    assert_eq!(state(&bank, &id).await, "approved");
    let r = finish(&bank, &id).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/statements");
    assert_eq!(bank.navigate("/statements").await.status(), StatusCode::OK);
    // Its level and amr.
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["level"], 2, "{status}");
    assert!(
        status["amr"].as_array().unwrap().contains(&"mca".into()),
        "{status}"
    );
    // The approval is used: finishing again gives nothing.
    let r = finish(&bank, &id).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(state(&bank, &id).await, "gone");
}

async fn an_approval_expires_after_two_minutes(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let (id, number) = started(&bank).await;
    let link = bank.approvals.last_to("alice").unwrap();
    bank.clock.advance(Duration::from_secs(121));
    assert_eq!(state(&bank, &id).await, "gone");
    let (status, _) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(finish(&bank, &id).await.status(), StatusCode::BAD_REQUEST);
}

async fn an_approval_belongs_to_its_session(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let id = started_and_approved(&bank).await;
    // Alice's other session (or whoever holds it) cannot use it.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank
        .browser_post(&other, "/step-up/custom/approve/finish")
        .form(&[("approval", id.as_str()), ("return_to", "/statements")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Bob has no such method: no start.
    let bob = bank.login_elsewhere("bob", "builder").await;
    let r = bank
        .post_json_as(&bob, "/step-up/custom/approve/start", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Alice's own session still finishes it.
    assert_eq!(finish(&bank, &id).await.status(), StatusCode::SEE_OTHER);
}

async fn an_api_client_starts_polls_and_finishes(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let r = bank
        .post_json("/step-up/custom/approve/start", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let started: serde_json::Value = r.json().await.unwrap();
    let id = started["approval"].as_str().unwrap().to_owned();
    let number = started["number"].as_u64().unwrap().to_string();
    assert_eq!(number.len(), 2, "{started}");
    let r = bank
        .post_json(
            "/step-up/custom/approve/finish",
            serde_json::json!({"approval": id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "approval_pending");
    // The phone's app answers in JSON, with the number as the start gave
    // it (a JSON number).
    let link = bank.approvals.last_to("alice").unwrap();
    let secret = link.split("secret=").nth(1).unwrap();
    let r = reqwest::Client::new()
        .post(bank.url("/step-up/custom/approve/approve"))
        .header("origin", &bank.origin)
        .json(&serde_json::json!({"secret": secret, "number": started["number"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["answer"], "approved", "{body}");
    let r = bank
        .post_json(
            "/step-up/custom/approve/finish",
            serde_json::json!({"approval": id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.get_json("/statements").await.0, StatusCode::OK);
}

async fn the_other_device_sees_what_a_bound_action_does(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let problem = bank.transfer_challenge(12_000).await;
    let confirmation = problem["confirmation"].as_str().unwrap().to_owned();
    let r = bank
        .post_json(
            "/step-up/custom/approve/start",
            serde_json::json!({"confirmation": confirmation}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let link = bank.approvals.last_to("alice").unwrap();
    let page = reqwest::get(&link).await.unwrap().text().await.unwrap();
    assert!(page.contains("to bob"), "the summary, not an id: {page}");
    assert!(
        !page.contains(&confirmation),
        "never the ceremony id: {page}"
    );
    // An approve POST for a name with no approval method: 404, nothing else.
    let r = reqwest::Client::new()
        .post(bank.url("/step-up/custom/nothing/approve"))
        .header("origin", &bank.origin)
        .form(&[("secret", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn a_wrong_number_voids_the_approval(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let (id, number) = started(&bank).await;
    let link = bank.approvals.last_to("alice").unwrap();
    // Someone else asked (a stolen session): the person does not know the
    // number and types another one. Nothing is approved, the request is
    // void, and the link is used up.
    let (status, html) = approve_on_phone(&bank, &link, &not(&number)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("nothing was approved"), "{html}");
    assert_eq!(state(&bank, &id).await, "refused");
    let (status, _) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without JavaScript, "continue" says it was refused.
    let r = finish(&bank, &id).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("The request was refused on your other device"),
        "{html}"
    );
    assert_ne!(bank.navigate("/statements").await.status(), StatusCode::OK);
    // No number at all is a wrong number too.
    let (id, _) = started(&bank).await;
    let link = bank.approvals.last_to("alice").unwrap();
    let (status, _) = approve_on_phone(&bank, &link, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(state(&bank, &id).await, "refused");
}

async fn nothing_is_pushed_to_a_locked_out_user(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Wrong TOTP codes: each sixth locks the method (5 per window), and
    // after two of its lockouts the next wrong code is the eleventh the
    // budget all second factors share counts (10): that budget locks too.
    // The approval's own budget is untouched.
    let mut lockouts = 0;
    for _ in 0..30 {
        if bank.totp("000000", "/statements").await.status() == StatusCode::TOO_MANY_REQUESTS {
            lockouts += 1;
            if lockouts == 3 {
                break;
            }
            // Past the method's lockout (60 s, then doubled).
            bank.clock.advance(Duration::from_secs(121));
        }
    }
    assert_eq!(lockouts, 3);
    let sent = bank.approvals.count_to("alice");
    let r = start_form(&bank).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = bank
        .post_json("/step-up/custom/approve/start", serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        bank.approvals.count_to("alice"),
        sent,
        "no push to a locked-out user's phone"
    );
}

async fn one_session_cannot_use_up_the_users_starts(bank: Bank) {
    bank.login("alice", "wonderland").await;
    // Alice asks first; then another session of hers (someone with her
    // password) starts its own, as many as it may.
    let (id, number) = started(&bank).await;
    let link = bank.approvals.last_to("alice").unwrap();
    let thief = bank.login_elsewhere("alice", "wonderland").await;
    let mut refused_after = None;
    for n in 1..=10 {
        let r = bank
            .post_json_as(
                &thief,
                "/step-up/custom/approve/start",
                serde_json::json!({}),
            )
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused_after = Some(n);
            break;
        }
    }
    assert_eq!(refused_after, Some(6), "five starts per session");
    // Alice's approval was not replaced by the other session's starts…
    assert_eq!(state(&bank, &id).await, "pending");
    let (status, _) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(finish(&bank, &id).await.status(), StatusCode::SEE_OTHER);
    // …and her session still has starts of its own.
    let id = started_and_approved(&bank).await;
    assert_eq!(finish(&bank, &id).await.status(), StatusCode::SEE_OTHER);
}

async fn one_finish_wins(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let id = started_and_approved(&bank).await;
    let bank = std::sync::Arc::new(bank);
    let statuses = bank
        .race(
            8,
            "/step-up/custom/approve/finish",
            serde_json::json!({"approval": id}),
        )
        .await;
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "one approval, one token: {statuses:?}"
    );
}

async fn made_up_links_and_early_finishes_count_nothing(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let (id, number) = started(&bank).await;
    // More made-up links than the address may fail (50) on the real
    // route: each refused, none counted against the address.
    let phone = reqwest::Client::new();
    for n in 0..60u32 {
        let r = phone
            .post(bank.url("/step-up/custom/approve/approve"))
            .header("origin", &bank.origin)
            .form(&[("secret", format!("{n:064x}")), ("number", "42".into())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    // More early finishes than the method allows wrong answers (5): each
    // told to wait, none counted.
    for _ in 0..8 {
        assert_eq!(finish(&bank, &id).await.status(), StatusCode::CONFLICT);
    }
    assert_eq!(state(&bank, &id).await, "pending");
    let link = bank.approvals.last_to("alice").unwrap();
    let (status, _) = approve_on_phone(&bank, &link, &number).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(finish(&bank, &id).await.status(), StatusCode::SEE_OTHER);
    // And a TOTP step-up from the same address still works.
    let r = bank.totp(&bank.code(), "/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
