//! Contextual step-up over real sockets, on both banks: statements stay
//! open for an hour on the network and browser of the step-up, and ask
//! again at once from another network (a client bound to another loopback
//! /24) or another browser (another `User-Agent`) holding the same
//! cookies; a step-up there opens them there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::Jar;
use reqwest::header::LOCATION;
use reqwest::{Client, StatusCode, redirect};
use stepup_conformance::{Bank, HTML};

stepup_conformance::per_adapter!(
    statements_stay_open_on_the_same_network_and_browser,
    another_network_or_browser_is_asked_again_at_once,
);

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// Another /24 of the loopback network.
const ELSEWHERE: &str = "127.0.1.1";

/// A browser on `local` (the address its connections come from) sending
/// `agent`, with the cookies of `jar`.
fn browser(jar: &Arc<Jar>, local: &str, agent: &str) -> Client {
    Client::builder()
        .cookie_provider(jar.clone())
        .redirect(redirect::Policy::none())
        .local_address(local.parse::<IpAddr>().unwrap())
        .user_agent(agent)
        .build()
        .unwrap()
}

async fn get(bank: &Bank, client: &Client, path: &str) -> reqwest::Response {
    client
        .get(bank.url(path))
        .header("accept", HTML)
        .send()
        .await
        .unwrap()
}

/// Alice logged in and stepped up with `client`.
async fn stepped_up(bank: &Bank, client: &Client) {
    let r = client
        .post(bank.url("/login"))
        .header("origin", &bank.origin)
        .form(&[("username", "alice"), ("password", "wonderland")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    step_up(bank, client).await;
}

async fn step_up(bank: &Bank, client: &Client) {
    let r = client
        .post(bank.url("/step-up/totp"))
        .header("origin", &bank.origin)
        .form(&[("code", bank.code().as_str()), ("return_to", "/statements")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

fn asked_again_for(r: &reqwest::Response, reason: &str) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap();
    assert!(location.starts_with("/step-up?"), "{location}");
    assert!(location.contains(&format!("reason={reason}")), "{location}");
}

async fn statements_stay_open_on_the_same_network_and_browser(bank: Bank) {
    let jar = Arc::new(Jar::default());
    let home = browser(&jar, "127.0.0.1", FIREFOX);
    stepped_up(&bank, &home).await;
    assert_eq!(
        get(&bank, &home, "/statements").await.status(),
        StatusCode::OK
    );
    // Another address in the same /24, the same browser family (a newer
    // version): still open, 59 minutes later.
    let same_net = browser(&jar, "127.0.0.77", &FIREFOX.replace("133.0", "134.0"));
    bank.clock.advance(Duration::from_secs(59 * 60));
    assert_eq!(
        get(&bank, &same_net, "/statements").await.status(),
        StatusCode::OK
    );
    // An hour is the limit, whatever the context (the token's lifetime).
    bank.clock.advance(Duration::from_secs(2 * 60));
    asked_again_for(&get(&bank, &home, "/statements").await, "expired");
}

async fn another_network_or_browser_is_asked_again_at_once(bank: Bank) {
    let jar = Arc::new(Jar::default());
    let home = browser(&jar, "127.0.0.1", FIREFOX);
    stepped_up(&bank, &home).await;
    assert_eq!(
        get(&bank, &home, "/statements").await.status(),
        StatusCode::OK
    );

    // The same cookies from another network: asked again at once.
    let cafe = browser(&jar, ELSEWHERE, FIREFOX);
    asked_again_for(&get(&bank, &cafe, "/statements").await, "other_context");
    // … and from another browser on the same network.
    let chrome = browser(&jar, "127.0.0.1", CHROME);
    asked_again_for(&get(&bank, &chrome, "/statements").await, "other_context");
    // Home is still open.
    assert_eq!(
        get(&bank, &home, "/statements").await.status(),
        StatusCode::OK
    );

    // A step-up from the café (with the next code) opens them there (its
    // token is the café's now: home, sharing the cookie, is asked again).
    bank.clock.advance(Duration::from_secs(30));
    step_up(&bank, &cafe).await;
    assert_eq!(
        get(&bank, &cafe, "/statements").await.status(),
        StatusCode::OK
    );
    asked_again_for(&get(&bank, &home, "/statements").await, "other_context");
}
