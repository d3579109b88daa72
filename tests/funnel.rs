//! The step-up funnel counted over real HTTP: a scripted set of journeys —
//! one by browser with a wrong code first, one by an API client with an
//! e-mail code, one abandoned, one whose kept form is resumed — yields
//! exact counts of each event, on both adapters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use stepup_challenge::{Event, EventKind};
use stepup_conformance::Bank;
use stepup_http::Via;

stepup_conformance::per_adapter!(scripted_journeys_yield_exact_counts);

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn of(events: &[Event], kind: EventKind) -> Vec<&Event> {
    events.iter().filter(|e| e.kind == kind).collect()
}

async fn scripted_journeys_yield_exact_counts(bank: Bank) {
    // 1. Alice, in a browser: refused twice (one journey), the page, a
    //    wrong code, the right one.
    assert_eq!(
        bank.login("alice", "wonderland").await,
        StatusCode::SEE_OTHER
    );
    let r = bank.navigate("/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = location(&r);
    let r = bank.navigate("/statements").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "asked again: same journey"
    );
    assert_eq!(bank.navigate(&page).await.status(), StatusCode::OK);
    let r = bank.totp("000000", "/statements").await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = bank.totp(&bank.code(), "/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(bank.navigate("/statements").await.status(), StatusCode::OK);

    // 2. Carol, an API client: 401, an e-mail code sent and verified.
    let carol = bank.login_elsewhere("carol", "looking-glass").await;
    let r = carol
        .get(bank.url("/statements"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let sent: Value = bank
        .post_json_as(&carol, "/step-up/code/send", json!({"channel": "email"}))
        .await
        .json()
        .await
        .unwrap();
    let code = bank.codes.last_code_to(bank_core::CAROL_EMAIL).unwrap();
    let r = bank
        .post_json_as(
            &carol,
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // 3. Bob, in a browser: refused, shown the page, gone.
    let bob = bank.login_elsewhere("bob", "builder").await;
    let r = bank.navigate_as(&bob, "/statements").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = bank.navigate_as(&bob, &location(&r)).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Not yet abandoned: the window (15 minutes) has not passed.
    bank.clock.advance(Duration::from_secs(14 * 60));
    bank.navigate("/step-up/assets/page.css").await;
    assert!(of(&bank.events.all(), EventKind::Abandoned).is_empty());
    // Past it: the next request to the step-up routes counts it.
    bank.clock.advance(Duration::from_secs(2 * 60));
    bank.navigate("/step-up/assets/page.css").await;

    // 4. Alice again (her step-up is stale now): a transfer form kept
    //    across the step-up, then resumed once.
    let r = bank
        .browser_post(&bank.client, "/transfer")
        .form(&[("to", "bob"), ("amount", "25")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let challenge = location(&r);
    let marker = "pending%3D";
    let at = challenge.find(marker).unwrap() + marker.len();
    let id = challenge[at..at + 32].to_owned();
    assert_eq!(bank.navigate(&challenge).await.status(), StatusCode::OK);
    let resume = format!("/step-up/resume?pending={id}");
    let r = bank.totp(&bank.code(), &resume).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let body = format!("to=bob&amount=25&__stepup_resume={id}");
    let r = bank.repost(&bank.client, "/transfer", &body).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let events = bank.events.all();
    let listed: Vec<String> = events.iter().map(ToString::to_string).collect();
    let counts = bank.events.counts();
    let expected = [
        ("abandoned", 1),
        ("challenged", 4),
        ("failed", 1),
        ("method_started", 1),
        ("page_shown", 4),
        ("resumed", 1),
        ("succeeded", 3),
    ];
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        expected.to_vec(),
        "{listed:#?}"
    );

    // The refusals say where, under which policy, why, and for whom.
    let challenged = of(&events, EventKind::Challenged);
    let routes: Vec<(&str, Via, &str)> = challenged
        .iter()
        .map(|e| {
            (
                e.route.as_deref().unwrap(),
                e.via.unwrap(),
                e.reason.unwrap(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            ("/statements", Via::Browser, "no_assurance"),
            ("/statements", Via::Api, "no_assurance"),
            ("/statements", Via::Browser, "no_assurance"),
            ("/transfer", Via::Browser, "stale"),
        ],
        "{listed:#?}"
    );
    assert!(challenged.iter().all(|e| e.policy.is_some()), "{listed:#?}");
    // Each journey's end carries its start: the success of the first
    // journey, the abandoned one.
    let succeeded = of(&events, EventKind::Succeeded);
    assert_eq!(succeeded[0].route.as_deref(), Some("/statements"));
    assert_eq!(succeeded[0].via, Some(Via::Browser));
    assert_eq!(succeeded[1].via, Some(Via::Api));
    assert_eq!(succeeded[2].route.as_deref(), Some("/transfer"));
    let abandoned = of(&events, EventKind::Abandoned);
    assert_eq!(abandoned[0].route.as_deref(), Some("/statements"));
    assert_ne!(
        abandoned[0].subject, succeeded[0].subject,
        "bob's, not alice's"
    );
    assert_eq!(
        of(&events, EventKind::Resumed)[0].route.as_deref(),
        Some("/transfer")
    );
    // No event names a user.
    for name in ["alice", "bob", "carol"] {
        assert!(!listed.iter().any(|l| l.contains(name)), "{listed:#?}");
    }
}
