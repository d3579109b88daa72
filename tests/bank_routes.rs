//! The demo banks' own routes (issue #13, finding 6b), over real HTTP against
//! both banks: the origin check on `/login`, `/logout`, `/transfer` and
//! `/settings/close-account`, the login throttle, and `no-store` on the
//! pages the step-up protects and on `/account`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE};
use reqwest::{Client, RequestBuilder, StatusCode, redirect};
use serde_json::json;
use stepup_conformance::{Bank, first_pair};
use stepup_http::FORBIDDEN_BODY;

stepup_conformance::per_adapter!(
    the_banks_own_posts_refuse_other_origins,
    the_banks_own_posts_accept_their_origin,
    login_is_throttled_per_user_name,
    login_is_throttled_per_address,
    protected_pages_and_the_account_are_not_stored,
);

/// A client keeping cookies, not following redirects, connecting from
/// `127.0.0.<last>`.
fn client_from(last: u8) -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            127, 0, 0, last,
        )))
        .build()
        .unwrap()
}

/// `POST /login` from the bank's origin.
async fn login(bank: &Bank, client: &Client, user: &str, password: &str) -> reqwest::Response {
    client
        .post(bank.url("/login"))
        .header("origin", &bank.origin)
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) of a fresh log-in as alice.
async fn alice_session(bank: &Bank) -> String {
    let r = login(bank, &client_from(1), "alice", "wonderland").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    first_pair(r.headers()[SET_COOKIE].to_str().unwrap())
}

/// The four state-changing routes of a bank, each as a request carrying
/// alice's session and a valid assurance (so only the origin can refuse).
fn bank_posts(bank: &Bank, cookies: &str) -> Vec<(&'static str, RequestBuilder)> {
    let c = client_from(1);
    let with = |r: RequestBuilder| r.header("cookie", cookies);
    vec![
        (
            "/login",
            c.post(bank.url("/login"))
                .form(&[("username", "alice"), ("password", "wonderland")]),
        ),
        ("/logout", with(c.post(bank.url("/logout")))),
        (
            "/transfer",
            with(c.post(bank.url("/transfer"))).json(&json!({"to": "bob", "amount": 1})),
        ),
        (
            "/settings/close-account",
            with(c.post(bank.url("/settings/close-account"))).json(&json!({})),
        ),
    ]
}

async fn the_banks_own_posts_refuse_other_origins(bank: Bank) {
    let session = alice_session(&bank).await;
    let token = bank.step_up_session(&session).await;
    let cookies = format!("{session}; {token}");
    let port = bank.origin.rsplit(':').next().unwrap().to_owned();
    // A foreign site, two origins of the same site (another port, a
    // subdomain), and a request naming no origin at all.
    let same_site_port = "http://localhost:1".to_owned();
    let same_site_sub = format!("http://pay.localhost:{port}");
    let refused: [(&str, Option<&str>, Option<&str>); 5] = [
        ("foreign origin", Some("https://evil.example"), None),
        ("same site, other port", Some(&same_site_port), None),
        ("same site, subdomain", Some(&same_site_sub), None),
        ("no origin", None, None),
        ("no origin, same-site fetch", None, Some("same-site")),
    ];
    for (what, origin, fetch_site) in refused {
        for (path, request) in bank_posts(&bank, &cookies) {
            let mut request = request;
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = fetch_site {
                request = request.header("sec-fetch-site", site);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}: POST {path}");
            assert_eq!(
                r.headers()[CONTENT_TYPE],
                "application/problem+json",
                "{what}: {path}"
            );
            assert_eq!(r.headers()[CACHE_CONTROL], "no-store", "{what}: {path}");
            assert!(r.headers().get(SET_COOKIE).is_none(), "{what}: {path}");
            assert_eq!(r.text().await.unwrap(), FORBIDDEN_BODY, "{what}: {path}");
        }
    }
    // Nothing happened: the session lives, the money did not move, the
    // account is open.
    let account = client_from(1)
        .get(bank.url("/account"))
        .header("cookie", &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(account.status(), StatusCode::OK);
    let account: serde_json::Value = account.json().await.unwrap();
    assert_eq!(account["balance"], 125_000);
}

async fn the_banks_own_posts_accept_their_origin(bank: Bank) {
    let session = alice_session(&bank).await;
    let token = bank.step_up_session(&session).await;
    let cookies = format!("{session}; {token}");
    // The origin check passes: each route does its own work (close-account
    // then asks for a passkey; logout comes last).
    let expected = [
        ("/login", StatusCode::SEE_OTHER),
        ("/transfer", StatusCode::OK),
        ("/settings/close-account", StatusCode::UNAUTHORIZED),
        ("/logout", StatusCode::SEE_OTHER),
    ];
    for (path, status) in expected {
        let (_, request) = bank_posts(&bank, &cookies)
            .into_iter()
            .find(|(p, _)| *p == path)
            .unwrap();
        let r = request.header("origin", &bank.origin).send().await.unwrap();
        assert_eq!(r.status(), status, "POST {path} from the bank's origin");
    }
    // A browser that sends no `Origin` but says the request is same-origin.
    let r = client_from(1)
        .post(bank.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("username", "bob"), ("password", "builder")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Safe methods are not checked.
    let r = client_from(1)
        .get(bank.url("/"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The `Retry-After` of a throttled log-in, in seconds.
async fn throttled(r: reqwest::Response, what: &str) -> (u64, String) {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    assert!(r.headers().get(SET_COOKIE).is_none(), "{what}");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store", "{what}");
    let seconds = r.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    (seconds, r.text().await.unwrap())
}

async fn login_is_throttled_per_user_name(bank: Bank) {
    let c = client_from(1);
    for i in 0..5 {
        let r = login(&bank, &c, "alice", "wrong").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "wrong password {i}");
    }
    // The budget is spent: even the right password is refused, with the same
    // answer as a wrong one, and from another address too.
    let (right, right_body) = throttled(
        login(&bank, &c, "alice", "wonderland").await,
        "right password",
    )
    .await;
    let (wrong, wrong_body) =
        throttled(login(&bank, &c, "alice", "wrong").await, "wrong password").await;
    let (elsewhere, _) = throttled(
        login(&bank, &client_from(2), "alice", "wonderland").await,
        "right password from another address",
    )
    .await;
    assert_eq!(right_body, wrong_body);
    for seconds in [right, wrong, elsewhere] {
        assert!((1..=15 * 60).contains(&seconds), "Retry-After {seconds}");
    }
    // Other users are not locked out.
    let r = login(&bank, &c, "bob", "builder").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // When the lock ends, the right password works again.
    bank.clock.advance(Duration::from_secs(right));
    let r = login(&bank, &c, "alice", "wonderland").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn login_is_throttled_per_address(bank: Bank) {
    // Guessing across many user names from one address (password spraying):
    // never five for one name, so only the address budget can stop it.
    let c = client_from(3);
    for i in 0..20 {
        let r = login(&bank, &c, &format!("user-{i}"), "wonderland").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let (seconds, _) = throttled(
        login(&bank, &c, "alice", "wonderland").await,
        "right password from the spraying address",
    )
    .await;
    assert!((1..=15 * 60).contains(&seconds), "Retry-After {seconds}");
    // Another address is not refused.
    let r = login(&bank, &client_from(4), "alice", "wonderland").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn protected_pages_and_the_account_are_not_stored(bank: Bank) {
    let session = alice_session(&bank).await;
    let token = bank.step_up_session(&session).await;
    let cookies = format!("{session}; {token}");
    for path in ["/statements", "/account"] {
        let r = client_from(1)
            .get(bank.url(path))
            .header("cookie", &cookies)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let values: Vec<_> = r.headers().get_all(CACHE_CONTROL).iter().collect();
        assert_eq!(values, ["no-store"], "{path}");
    }
}
