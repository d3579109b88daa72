//! oidc-app over real sockets against the test provider (oidc-provider,
//! `tests/oidc-provider`): login at the provider, a step-up there from the
//! challenge page, a form kept across the trip — and what an attacker
//! tries at the new routes. The test plays the browser: a cookie jar,
//! redirects followed by hand, the headers a browser sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use oidc_app::{App, TestProvider, UPSTREAM, redirect_uris};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};
use reqwest::{Client, StatusCode};

/// The app on a free port with its own test provider.
struct Running {
    origin: String,
    _provider: TestProvider,
    provider_origin: String,
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let provider = TestProvider::start(&redirect_uris(&origin)).unwrap();
    let app = App::new(&origin, &provider.provider()).await.unwrap();
    let service = app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    Running {
        origin,
        provider_origin: provider.provider().issuer,
        _provider: provider,
    }
}

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A top-level navigation to `url` (what guards redirect, not refuse).
async fn navigate(browser: &Client, url: &str) -> reqwest::Response {
    browser
        .get(url)
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-dest", "document")
        .send()
        .await
        .unwrap()
}

/// A form POST from `origin`'s own page.
async fn post_form(
    browser: &Client,
    origin: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .post(format!("{origin}{path}"))
        .header("origin", origin)
        .header("sec-fetch-site", "same-origin")
        .header("accept", "text/html")
        .header("sec-fetch-mode", "navigate")
        .form(form)
        .send()
        .await
        .unwrap()
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let to = r
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no redirect: {}", r.status()))
        .to_str()
        .unwrap();
    if to.starts_with("http") {
        to.to_owned()
    } else {
        format!("{base}{to}")
    }
}

/// Follows the provider's redirects from `url` until one leads back to
/// `origin`: that URL.
async fn through_provider(browser: &Client, url: &str, origin: &str) -> String {
    let mut at = url.to_owned();
    for _ in 0..10 {
        let r = navigate(browser, &at).await;
        assert!(r.status().is_redirection(), "{at}: {}", r.status());
        let base = at.split('/').take(3).collect::<Vec<_>>().join("/");
        let to = location(&r, &base);
        if to.starts_with(origin) {
            return to;
        }
        at = to;
    }
    panic!("too many redirects from {url}");
}

/// Logs `browser` in at the provider.
async fn log_in(app: &Running, browser: &Client) {
    let r = post_form(browser, &app.origin, "/login", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = through_provider(browser, &location(&r, &app.origin), &app.origin).await;
    assert!(
        callback.starts_with(&format!("{}/login/callback?", app.origin)),
        "{callback}"
    );
    let r = navigate(browser, &callback).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let home = navigate(browser, &app.origin).await.text().await.unwrap();
    assert!(home.contains("Hello, alice"), "{home}");
}

/// The challenge page `r` redirected to: its URL and HTML (with the CSP).
async fn challenge_page(
    app: &Running,
    browser: &Client,
    r: reqwest::Response,
) -> (String, String, String) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a step-up is asked");
    let page_url = location(&r, &app.origin);
    assert!(
        page_url.starts_with(&format!("{}/step-up", app.origin)),
        "{page_url}"
    );
    let page = navigate(browser, &page_url).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    (page_url, page.text().await.unwrap(), csp)
}

/// The hidden field `name` of the first form in `html`.
fn hidden(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
}

/// From the challenge page `html`, a step-up at the provider: the
/// callback's page and the finish URL it continues to.
async fn step_up_at_provider(app: &Running, browser: &Client, html: &str) -> String {
    let action = format!("/step-up/upstream/{UPSTREAM}/start");
    assert!(
        html.contains(&format!("action=\"/step-up/upstream/{UPSTREAM}/start\"")),
        "{html}"
    );
    let form = [
        ("return_to", hidden(html, "return_to")),
        ("why", hidden(html, "why")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_form(browser, &app.origin, &action, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r, &app.origin);
    assert!(
        to.starts_with(&app.provider_origin),
        "off to the provider: {to}"
    );
    let callback = through_provider(browser, &to, &app.origin).await;
    assert!(
        callback.starts_with(&format!(
            "{}/step-up/upstream/{UPSTREAM}/callback?",
            app.origin
        )),
        "{callback}"
    );
    // The callback arrives from the provider's site: a page of this origin
    // carries it on (so the SameSite=Strict cookies come along).
    let r = browser
        .get(&callback)
        .header("accept", "text/html")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let at = html.find("url=").expect("a refresh") + 4;
    let finish = html[at..html[at..].find('"').unwrap() + at].replace("&amp;", "&");
    assert!(
        finish.starts_with(&format!("/step-up/upstream/{UPSTREAM}/finish?")),
        "{finish}"
    );
    format!("{}{finish}", app.origin)
}

/// The finish, as the callback page's refresh sends it.
async fn finish(browser: &Client, url: &str, site: &str) -> reqwest::Response {
    browser
        .get(url)
        .header("accept", "text/html")
        .header("sec-fetch-site", site)
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_and_step_up_at_the_provider_open_the_api_key() {
    let app = start().await;
    let alice = browser();
    log_in(&app, &alice).await;
    let r = navigate(&alice, &format!("{}/api-key", app.origin)).await;
    let (_, html, csp) = challenge_page(&app, &alice, r).await;
    assert!(html.contains("Confirm at your identity provider"), "{html}");
    // The start's redirect is allowed by the page's CSP, to the provider only.
    assert!(
        csp.contains(&format!("form-action 'self' {};", app.provider_origin)),
        "{csp}"
    );
    let finish_url = step_up_at_provider(&app, &alice, &html).await;
    // Only the callback's page (this origin) may finish.
    let r = finish(&alice, &finish_url, "cross-site").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = finish(&alice, &finish_url, "same-origin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r, &app.origin), format!("{}/api-key", app.origin));
    assert!(r.headers().get("set-cookie").is_some());
    let page = navigate(&alice, &format!("{}/api-key", app.origin)).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("ak_live_0123456789"));
    // The answer is used up: its replay is refused, and says so.
    let r = finish(&alice, &finish_url, "same-origin").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("expired or was already used")
    );
}

#[tokio::test]
async fn a_form_typed_before_the_trip_goes_ahead_after_it() {
    let app = start().await;
    let alice = browser();
    log_in(&app, &alice).await;
    let r = post_form(
        &alice,
        &app.origin,
        "/email",
        &[("email", "alice@new.example")],
    )
    .await;
    let (_, html, _) = challenge_page(&app, &alice, r).await;
    let finish_url = step_up_at_provider(&app, &alice, &html).await;
    let r = finish(&alice, &finish_url, "same-origin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Back at the kept form's confirmation page, which sends it on.
    let confirm_url = location(&r, &app.origin);
    assert!(confirm_url.contains("/step-up/resume"), "{confirm_url}");
    let confirm = navigate(&alice, &confirm_url).await.text().await.unwrap();
    assert!(confirm.contains("action=\"/email\""), "{confirm}");
    assert_eq!(
        hidden(&confirm, "email"),
        "alice@new.example",
        "what she typed"
    );
    let resume = hidden(&confirm, "__stepup_resume");
    let r = post_form(
        &alice,
        &app.origin,
        "/email",
        &[("email", "alice@new.example"), ("__stepup_resume", &resume)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "done");
    let home = navigate(&alice, &app.origin).await.text().await.unwrap();
    assert!(home.contains("Your e-mail: alice@new.example"), "{home}");
}

#[tokio::test]
async fn another_session_cannot_finish_the_users_step_up() {
    let app = start().await;
    let alice = browser();
    log_in(&app, &alice).await;
    // Mallory is logged in too (as alice, at the same provider: the worst
    // case) and gets hold of alice's finish URL.
    let mallory = browser();
    log_in(&app, &mallory).await;
    let r = navigate(&alice, &format!("{}/api-key", app.origin)).await;
    let (_, html, _) = challenge_page(&app, &alice, r).await;
    let finish_url = step_up_at_provider(&app, &alice, &html).await;
    let r = finish(&mallory, &finish_url, "same-origin").await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "another session's request"
    );
    assert!(r.headers().get("set-cookie").is_none());
    let r = navigate(&mallory, &format!("{}/api-key", app.origin)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "still no step-up");
    // Logged out, the finish asks for a login.
    let nobody = browser();
    let r = finish(&nobody, &finish_url, "same-origin").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Alice's request is still hers: the attempts did not use it up.
    let r = finish(&alice, &finish_url, "same-origin").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r, &app.origin), format!("{}/api-key", app.origin));
    // A start from another site is refused.
    let r = alice
        .post(format!("{}/step-up/upstream/{UPSTREAM}/start", app.origin))
        .header("origin", "https://evil.example")
        .form(&[("return_to", "/api-key")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // An unknown upstream is not routed.
    let r = navigate(
        &alice,
        &format!("{}/step-up/upstream/other/callback?state=x", app.origin),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_callback_page_carries_only_the_answer_re_encoded() {
    let app = start().await;
    let alice = browser();
    let r = alice
        .get(format!(
            "{}/step-up/upstream/{UPSTREAM}/callback?code=a%22%3E%3Cscript%3E&state=s&x=%3Cb%3E&iss=http%3A%2F%2Fi",
            app.origin
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script") && !html.contains("<b>"), "{html}");
    assert!(
        !html.contains("x="),
        "unknown parameters are dropped: {html}"
    );
    assert!(
        html.contains("code=a%22%3E%3Cscript%3E&amp;state=s&amp;iss=http%3A%2F%2Fi"),
        "{html}"
    );
}
