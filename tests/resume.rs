//! Conformance: a browser's form that needs a step-up is kept, shown, and
//! resumed at most once — over real HTTP, on both banks. The requests carry
//! what Chromium sends (checked in the real-browser suite): a form POST is
//! `Sec-Fetch-Mode: navigate`; the re-post from the confirmation page
//! (whose referrer policy is `no-referrer`) has `Origin: null` with
//! `Sec-Fetch-Site: same-origin`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use stepup_conformance::{Bank, HTML};

stepup_conformance::per_adapter!(
    a_kept_form_is_shown_and_resumed_once,
    what_is_not_kept_still_gets_the_page,
    a_changed_form_runs_nothing,
    another_sessions_form_is_refused,
    racing_resumes_run_once,
    a_stale_confirmation_page_never_makes_a_second_copy,
    a_resume_without_a_declared_length_is_still_taken_once,
    a_factor_change_form_goes_back_to_its_page,
    the_summary_is_escaped_and_api_clients_keep_their_401,
);

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The pending id in a challenge `Location` that returns to the
/// confirmation page.
fn pending_id(location: &str) -> String {
    let marker = "return_to=/step-up/resume%3Fpending%3D";
    let at = location
        .find(marker)
        .unwrap_or_else(|| panic!("not kept: {location}"))
        + marker.len();
    let id = &location[at..at + 32];
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{location}");
    id.to_owned()
}

async fn balance(bank: &Bank) -> u64 {
    let (status, body) = bank.get_json("/account").await;
    assert_eq!(status, StatusCode::OK);
    body["balance"].as_u64().unwrap()
}

/// Logs alice in and sends `to`/`amount` as a form that needs a step-up:
/// the pending id.
async fn keep_transfer(bank: &Bank, client: &reqwest::Client, to: &str, amount: &str) -> String {
    let r = bank
        .browser_post(client, "/transfer")
        .form(&[("to", to), ("amount", amount)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    pending_id(&location(&r))
}

async fn step_up_to(bank: &Bank, client: &reqwest::Client, return_to: &str) {
    let r = client
        .post(bank.url("/step-up/totp"))
        .header("origin", &bank.origin)
        .form(&[("code", bank.code().as_str()), ("return_to", return_to)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), return_to, "back to the confirmation page");
}

async fn a_kept_form_is_shown_and_resumed_once(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let before = balance(&bank).await;
    let r = bank
        .browser_post(&bank.client, "/transfer")
        .form(&[("to", "bob"), ("amount", "25")])
        .send()
        .await
        .unwrap();
    // A browser never lands on JSON: 303 to the challenge page, which
    // returns to the confirmation page of the kept form.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let challenge = location(&r);
    assert!(
        challenge.starts_with("/step-up?return_to=/step-up/resume%3Fpending%3D"),
        "{challenge}"
    );
    assert!(challenge.contains("&reason=no_assurance"), "{challenge}");
    let id = pending_id(&challenge);
    assert_eq!(balance(&bank).await, before, "nothing ran yet");

    // The challenge page says what will happen, from the kept record.
    let page = bank.navigate(&challenge).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Continue: Send 25 to bob"), "{html}");
    assert!(
        html.contains(r#"<a href="/">Go back without confirming</a>"#),
        "{html}"
    );

    let resume = format!("/step-up/resume?pending={id}");
    step_up_to(&bank, &bank.client, &resume).await;

    // The confirmation page: the fields as hidden inputs, the marker last,
    // a button naming the action, posting to where the form was going.
    let page = bank.navigate(&resume).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<form method="post" action="/transfer">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<input type="hidden" name="to" value="bob">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<input type="hidden" name="amount" value="25">"#),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            r#"<input type="hidden" name="__stepup_resume" value="{id}">"#
        )),
        "{html}"
    );
    assert!(html.contains(">Send 25 to bob</button>"), "{html}");
    assert!(
        !html.contains("<script"),
        "no script on the confirmation page"
    );
    assert_eq!(balance(&bank).await, before, "showing it runs nothing");

    // The click: the handler runs once, with the marker stripped.
    let body = format!("to=bob&amount=25&__stepup_resume={id}");
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    assert_eq!(location(&r), "/");
    assert_eq!(balance(&bank).await, before - 25);

    // Back button and submit again (the assurance is still fresh): 409, a
    // page linking to where the first one went; nothing runs again.
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("already submitted"), "{html}");
    assert!(html.contains(r#"href="/""#), "{html}");
    assert_eq!(balance(&bank).await, before - 25);

    // The confirmation page again: the same 409, no second form.
    let r = bank.navigate(&resume).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().contains("__stepup_resume"));

    // Once the assurance is stale, the old confirmation form is not kept
    // anew: still 409, still nothing runs.
    bank.clock.advance(std::time::Duration::from_secs(400));
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(balance(&bank).await, before - 25);
}

async fn what_is_not_kept_still_gets_the_page(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let not_kept = |r: &reqwest::Response| {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = location(r);
        assert!(
            to.starts_with("/step-up?return_to=/&reason=no_assurance"),
            "{to}"
        );
        assert!(to.ends_with("&resubmit=1"), "{to}");
        assert!(!to.contains("pending"), "{to}");
        to
    };
    // A file upload (multipart): not kept. (On the close-account form:
    // the transfer is bound, and reads url-encoded or JSON bodies only.)
    let multipart = "--x\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\nbob\r\n--x--\r\n";
    let r = bank
        .browser_post(&bank.client, "/settings/close-account")
        .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
        .body(multipart)
        .send()
        .await
        .unwrap();
    let to = not_kept(&r);
    let html = bank.navigate(&to).await.text().await.unwrap();
    assert!(html.contains("after confirming, submit it again"), "{html}");
    assert!(
        html.contains(r#"<a href="/">Go back without confirming</a>"#),
        "{html}"
    );

    // Over the 8 KiB cap: not kept.
    let big = "x".repeat(9 * 1024);
    let r = bank
        .browser_post(&bank.client, "/settings/close-account")
        .form(&[("to", "bob"), ("amount", "1"), ("note", big.as_str())])
        .send()
        .await
        .unwrap();
    not_kept(&r);

    // A target padded beyond what a kept form may hold: not kept.
    let padded = format!("/transfer?pad={}", "p".repeat(3000));
    let r = bank
        .browser_post(&bank.client, &padded)
        .form(&[("to", "bob"), ("amount", "1")])
        .send()
        .await
        .unwrap();
    not_kept(&r);

    // A JSON body from a navigation is no form: not kept either.
    let r = bank
        .browser_post(&bank.client, "/settings/close-account")
        .json(&serde_json::json!({"to": "bob", "amount": 1}))
        .send()
        .await
        .unwrap();
    not_kept(&r);

    // At most three kept per session within the five minutes.
    for _ in 0..3 {
        keep_transfer(&bank, &bank.client, "bob", "1").await;
    }
    let r = bank
        .browser_post(&bank.client, "/transfer")
        .form(&[("to", "bob"), ("amount", "1")])
        .send()
        .await
        .unwrap();
    not_kept(&r);
    // Another login session has its own three.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    keep_transfer(&bank, &other, "bob", "1").await;
    // After the window, this session may keep forms again.
    bank.clock.advance(std::time::Duration::from_secs(301));
    keep_transfer(&bank, &bank.client, "bob", "1").await;

    // A cross-site form: the bank's own origin check refuses it before
    // anything is kept.
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("accept", HTML)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .form(&[("to", "mallory"), ("amount", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(location(&r).is_empty());
}

async fn a_changed_form_runs_nothing(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let before = balance(&bank).await;
    let id = keep_transfer(&bank, &bank.client, "bob", "25").await;
    step_up_to(
        &bank,
        &bank.client,
        &format!("/step-up/resume?pending={id}"),
    )
    .await;
    // The hidden amount edited in the page before the click.
    let r = bank
        .repost(
            &bank.client,
            "/transfer",
            &format!("to=bob&amount=900&__stepup_resume={id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("nothing was sent"));
    assert_eq!(balance(&bank).await, before);
    // The kept form is spent: the right fields now get 409.
    let r = bank
        .repost(
            &bank.client,
            "/transfer",
            &format!("to=bob&amount=25&__stepup_resume={id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Nothing ran, so it is not called "already submitted".
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Nothing to continue") && !html.contains("Already submitted"),
        "{html}"
    );
    // Posted to another route: refused too. (The step-up gone stale, so
    // the transfer is kept again.)
    bank.clock.advance(std::time::Duration::from_secs(400));
    let id = keep_transfer(&bank, &bank.client, "bob", "5").await;
    step_up_to(
        &bank,
        &bank.client,
        &format!("/step-up/resume?pending={id}"),
    )
    .await;
    let r = bank
        .repost(
            &bank.client,
            "/transfer?x=1",
            &format!("to=bob&amount=5&__stepup_resume={id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A made-up id runs nothing.
    let r = bank
        .repost(
            &bank.client,
            "/transfer",
            "to=bob&amount=7&__stepup_resume=0123456789abcdef0123456789abcdef",
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(balance(&bank).await, before);
}

async fn another_sessions_form_is_refused(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let before = balance(&bank).await;
    let id = keep_transfer(&bank, &bank.client, "bob", "25").await;
    let resume = format!("/step-up/resume?pending={id}");
    // Alice in another session (a stolen id, say) steps up there.
    let other = bank.login_elsewhere("alice", "wonderland").await;
    step_up_to(&bank, &other, &resume).await;
    // The challenge page there does not say what the kept form does.
    let page = other
        .get(bank.url(&format!(
            "/step-up?return_to={}",
            resume.replace('?', "%3F").replace('=', "%3D")
        )))
        .header("accept", HTML)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Send 25 to bob"), "{page}");
    // Its confirmation page shows nothing, and its re-post runs nothing.
    let r = other
        .get(bank.url(&resume))
        .header("accept", HTML)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().contains("bob"));
    let r = bank
        .repost(
            &other,
            "/transfer",
            &format!("to=bob&amount=25&__stepup_resume={id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(balance(&bank).await, before);
    // The other session's tries left the form where it was: its own
    // session still confirms it, once (with the next TOTP code).
    bank.clock.advance(std::time::Duration::from_secs(30));
    step_up_to(&bank, &bank.client, &resume).await;
    let r = bank
        .repost(
            &bank.client,
            "/transfer",
            &format!("to=bob&amount=25&__stepup_resume={id}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(balance(&bank).await, before - 25);
}

async fn racing_resumes_run_once(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let before = balance(&bank).await;
    let id = keep_transfer(&bank, &bank.client, "bob", "25").await;
    step_up_to(
        &bank,
        &bank.client,
        &format!("/step-up/resume?pending={id}"),
    )
    .await;
    let bank = Arc::new(bank);
    let body = format!("to=bob&amount=25&__stepup_resume={id}");
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let bank = bank.clone();
        let body = body.clone();
        racers.spawn(async move { bank.repost(&bank.client, "/transfer", &body).await.status() });
    }
    let statuses = racers.join_all().await;
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let lost = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((won, lost), (1, 7), "{statuses:?}");
    assert_eq!(balance(&bank).await, before - 25, "exactly one transfer");
}

async fn the_summary_is_escaped_and_api_clients_keep_their_401(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    // (The amount is read as a decimal by the bound transfer: the payee
    // carries the markup.)
    let id = keep_transfer(&bank, &bank.client, "<script>alert(1)</script>\"><b>", "1").await;
    let challenge =
        format!("/step-up?return_to=/step-up/resume%3Fpending%3D{id}&reason=no_assurance");
    let html = bank.navigate(&challenge).await.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    step_up_to(
        &bank,
        &bank.client,
        &format!("/step-up/resume?pending={id}"),
    )
    .await;
    let html = bank
        .navigate(&format!("/step-up/resume?pending={id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script>alert") && !html.contains("\"><b>"),
        "{html}"
    );
    bank.clock.advance(std::time::Duration::from_secs(400));

    // fetch() posting the same form, and an API client: the RFC 9470 401.
    let r = bank
        .client
        .post(bank.url("/transfer"))
        .header("accept", "*/*")
        .header("sec-fetch-mode", "cors")
        .header("sec-fetch-site", "same-origin")
        .header("origin", &bank.origin)
        .form(&[("to", "bob"), ("amount", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = bank.transfer(1).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
}

/// The confirmation page is shown to the logged-in session without a
/// step-up: submitted while the step-up is stale (or went stale), it must
/// lead back to the same kept form, never keep a second copy that could
/// run once more.
async fn a_stale_confirmation_page_never_makes_a_second_copy(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let before = balance(&bank).await;
    let id = keep_transfer(&bank, &bank.client, "bob", "25").await;
    let resume = format!("/step-up/resume?pending={id}");
    assert_eq!(bank.navigate(&resume).await.status(), StatusCode::OK);
    let body = format!("to=bob&amount=25&__stepup_resume={id}");
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        pending_id(&location(&r)),
        id,
        "the same kept form, no second copy"
    );
    step_up_to(&bank, &bank.client, &resume).await;
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(balance(&bank).await, before - 25);
    // Stale again, the old page once more: already sent, nothing runs.
    bank.clock.advance(std::time::Duration::from_secs(400));
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Already submitted"));
    // Long after, when nothing is remembered of it: still never kept anew.
    bank.clock.advance(std::time::Duration::from_secs(3600));
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Nothing to continue"));
    assert_eq!(balance(&bank).await, before - 25);
}

/// A re-post whose body has no declared length (chunked, as a proxy may
/// send it) is read and taken like any other: never passed on with the
/// marker unchecked.
async fn a_resume_without_a_declared_length_is_still_taken_once(bank: Bank) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let session = bank.session_cookie("alice", "wonderland").await;
    let client = bank.other_client();
    let r = bank
        .browser_post(&client, "/transfer")
        .header("cookie", &session)
        .form(&[("to", "bob"), ("amount", "25")])
        .send()
        .await
        .unwrap();
    let id = pending_id(&location(&r));
    let assurance = bank.step_up_session(&session).await;
    let chunked = |body: String| {
        format!(
            "POST /transfer HTTP/1.1\r\nHost: {host}\r\nCookie: {session}; {assurance}\r\n\
             Accept: text/html\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\n\
             Origin: null\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{len:x}\r\n{body}\r\n0\r\n\r\n",
            host = bank.base.trim_start_matches("http://"),
            len = body.len(),
        )
    };
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(bank.base.trim_start_matches("http://"))
            .await
            .unwrap();
        let request = chunked(format!("to=bob&amount=25&__stepup_resume={id}"));
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        statuses.push(answer.split(' ').nth(1).unwrap_or("").to_owned());
    }
    assert_eq!(statuses, ["303", "409"], "taken once, chunked or not");
}

/// A factor change posted from a page (remove the authenticator app)
/// without a fresh step-up: the challenge page, back to the page the form
/// was on, asking to submit it again — not a return to a POST-only route.
async fn a_factor_change_form_goes_back_to_its_page(bank: Bank) {
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let r = bank
        .client
        .post(bank.url("/step-up/enroll/totp/remove"))
        .header("accept", HTML)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", "same-origin")
        .header("origin", &bank.origin)
        .header("referer", format!("{}/settings", bank.origin))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(
        to.starts_with("/step-up?return_to=/settings&reason="),
        "{to}"
    );
    assert!(to.ends_with("&resubmit=1"), "{to}");
}
