//! The axum adapter in process: a small app with the layer, the extractor,
//! in-handler `require`, the challenge routes and a replaced page. The
//! behaviour of the challenge routes themselves (lockout, replay, CSRF,
//! return paths, status, drop, enrollment, codes, bad bodies) is checked
//! over real HTTP against both adapters by the conformance suite in
//! `tests/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::Value;
use stepup_axum::{Assurance, StepUp, StepUpRequired, TrustedHeaders};
use stepup_challenge::{
    Engine, FactorStore, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig,
    TotpSecret,
};
use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Subject, TestClock, Timestamp, TokenConfig,
};
use stepup_http::{ActionSpec, BoundAction, Normalise};
use tower::ServiceExt;

const ORIGIN: &str = "http://bank.test";
const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);
const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

struct App {
    router: Router,
    clock: TestClock,
    secret: TotpSecret,
    totp: TotpConfig,
}

async fn transfer(assurance: Assurance, Json(body): Json<Value>) -> Result<String, StepUpRequired> {
    let amount = body["amount"].as_u64().unwrap_or(0);
    if amount > 10_000 {
        let big = Policy::method(Method::Passkey)
            .or(Policy::method(Method::Totp))
            .max_age(Duration::from_secs(60))
            .with_reason("Transfers over 10,000 need a fresh second factor.");
        assurance.require(&big)?;
    }
    Ok(format!("sent {amount} at level {}", assurance.level()))
}

/// A form handler without any origin check of the application's own: what
/// it receives, and the idempotency key of a resumed form.
async fn pay(
    resumed: Option<axum::Extension<stepup_axum::Resumed>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> String {
    format!(
        "{} len={} key={}",
        String::from_utf8_lossy(&body),
        headers[header::CONTENT_LENGTH].to_str().unwrap(),
        resumed.map_or("none".to_owned(), |r| r.0.idempotency_key)
    )
}

/// A route bound to its `a` field: level 1 and a grant for the action.
fn bound<F, S, P>(
    stepup: &StepUp<F, S, P>,
) -> stepup_tower::RequireStepUpLayer<stepup_axum::SharedSubjects>
where
    F: stepup_challenge::FactorStore,
    S: stepup_challenge::StateStore,
    P: stepup_challenge::PasswordVerifier,
{
    stepup.require(Policy::level(1).and(Policy::bound())).bind(
        ActionSpec::builder("thing")
            .field("a", Normalise::Trimmed)
            .summary("Do {a}")
            .build()
            .unwrap(),
    )
}

/// What a bound handler was given.
async fn echo_action(axum::Extension(action): axum::Extension<BoundAction>) -> String {
    let details: Vec<String> = action
        .action()
        .details()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    format!("{} {}", action.action().route(), details.join("&"))
}

async fn app() -> App {
    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let factors = MemoryFactorStore::new();
    let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
    factors
        .set_totp_secret(&Subject::new("alice"), secret.clone())
        .await
        .unwrap();
    let totp = TotpConfig::new("Bank");
    let engine = Engine::new(
        config.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_totp(totp.clone())
    .with_passwords(InsecureFixedPasswords::new([
        ("alice", "wonderland"),
        ("bob", "builder"),
    ]));
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    );
    let router = Router::new()
        .route(
            "/transfer",
            post(transfer)
                .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(300)))),
        )
        .route(
            "/statements",
            get(|| async { "statements" })
                .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(600)))),
        )
        .route(
            "/pay",
            post(pay).route_layer(
                stepup
                    .require(Policy::level(2).max_age(Duration::from_secs(300)))
                    .summary(|form| Some(format!("Pay {}", form.get("a")?))),
            ),
        )
        .route(
            "/away",
            post(|| async {
                (
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, "https://elsewhere.example/done")],
                )
            })
            .route_layer(stepup.require(Policy::level(2).max_age(Duration::from_secs(300)))),
        )
        .route(
            "/secret",
            post(pay).route_layer(
                stepup
                    .require(Policy::level(2).max_age(Duration::from_secs(300)))
                    .without_kept_forms(),
            ),
        )
        .nest(
            "/admin",
            Router::new()
                .route(
                    "/pay",
                    post(pay).route_layer(
                        stepup.require(Policy::level(2).max_age(Duration::from_secs(300))),
                    ),
                )
                .route(
                    "/report",
                    get(|| async { "report" }).route_layer(
                        stepup.require(Policy::level(2).max_age(Duration::from_secs(300))),
                    ),
                ),
        )
        .route("/bound/one", post(echo_action).route_layer(bound(&stepup)))
        .route("/bound/two", post(echo_action).route_layer(bound(&stepup)))
        .route(
            "/keys/reveal",
            get(echo_action).route_layer(
                stepup.require(Policy::level(1).and(Policy::bound())).bind(
                    ActionSpec::builder("reveal_key")
                        .query_field("key", Normalise::Exact)
                        .summary("Reveal the API key {key}")
                        .build()
                        .unwrap(),
                ),
            ),
        )
        .route(
            "/whoami",
            get(|a: Option<Assurance>| async move {
                a.map_or("no assurance".to_owned(), |a| {
                    format!("level {}", a.level())
                })
            }),
        )
        .route(
            "/strict",
            get(|a: Assurance| async move { format!("level {}", a.level()) }),
        )
        .merge(stepup.routes())
        .layer(stepup.layer());
    App {
        router,
        clock,
        secret,
        totp,
    }
}

/// The kept form's id in a challenge `Location` that returns to its
/// confirmation page.
fn pending_id(location: &str) -> String {
    let at = location.find("pending%3D").unwrap() + "pending%3D".len();
    location[at..at + 32].to_owned()
}

impl App {
    /// A TOTP step-up by form that returns to the confirmation page of the
    /// kept form `id`.
    async fn step_up_to_resume(&self, id: &str) -> Response {
        let (r, _) = self
            .send(form(
                "/step-up/totp",
                &format!(
                    "code={}&return_to=/step-up/resume%3Fpending%3D{id}",
                    self.code()
                ),
                None,
            ))
            .await;
        r
    }

    fn code(&self) -> String {
        self.totp
            .code_at(&self.secret, self.clock.now().as_unix_seconds())
            .unwrap()
    }

    async fn send(&self, request: Request) -> (Response, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        (Response::from_parts(parts, Body::empty()), text)
    }
}

fn as_alice(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("x-user", "alice")
        .header("x-session", "s-1")
}

fn form(uri: &str, body: &str, cookie: Option<&str>) -> Request {
    let mut b = as_alice("POST", uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("origin", ORIGIN);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn json_post(uri: &str, body: &str, cookie: Option<&str>) -> Request {
    let mut b = as_alice("POST", uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header("origin", ORIGIN);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

fn cookie_of(response: &Response) -> String {
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_browser_is_sent_to_the_page_steps_up_and_comes_back() {
    let app = app().await;
    let nav = as_alice("GET", "/statements?month=2026-10")
        .header("accept", HTML)
        .body(Body::empty())
        .unwrap();
    let (r, _) = app.send(nav).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(
            "/step-up?return_to=/statements%3Fmonth%3D2026-10&reason=no_assurance&why=r"
        ),
        "{location}"
    );

    let (r, html) = app
        .send(as_alice("GET", &location).body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert!(html.contains(r#"action="/step-up/totp""#), "{html}");
    // The password cannot reach level 2: the page does not offer it.
    assert!(!html.contains(r#"action="/step-up/password""#), "{html}");
    assert!(
        !html.contains(r#"action="/step-up/recovery""#),
        "no recovery codes yet"
    );
    assert!(
        html.contains(r#"value="/statements?month=2026-10""#),
        "{html}"
    );

    let body = format!(
        "code={}&return_to=%2Fstatements%3Fmonth%3D2026-10",
        app.code()
    );
    let (r, _) = app.send(form("/step-up/totp", &body, None)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/statements?month=2026-10");
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("__Host-stepup="), "{set}");
    assert!(
        set.ends_with("; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"),
        "{set}"
    );
    let cookie = cookie_of(&r);

    let back = as_alice("GET", "/statements?month=2026-10")
        .header("accept", HTML)
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (r, text) = app.send(back).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text, "statements");

    // 600 s later the statement page asks again.
    app.clock.advance(Duration::from_secs(601));
    let again = as_alice("GET", "/statements")
        .header("accept", HTML)
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let (r, _) = app.send(again).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("&reason=stale&")
    );
}

#[tokio::test]
async fn an_api_client_gets_rfc9470_then_steps_up_with_json() {
    let app = app().await;
    let (r, body) = app
        .send(json_post("/transfer", r#"{"to":"bob","amount":100}"#, None))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["reason"], "no_assurance");

    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{}"}}"#, app.code()),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ok["level"], 2);
    let cookie = cookie_of(&r);

    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":100}"#,
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body, "sent 100 at level 2");

    // Over 10,000: a TOTP proof within 60 s (in-handler require).
    app.clock.advance(Duration::from_secs(61));
    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":20000}"#,
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["reason"], "stale");
    assert_eq!(
        problem["detail"],
        "Transfers over 10,000 need a fresh second factor."
    );
    // The replayed code is refused; a new one works and keeps the old proof.
    app.clock.advance(Duration::from_secs(30));
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(r#"{{"code":"{}"}}"#, app.code()),
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let fresh = cookie_of(&r);
    let (r, body) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":20000}"#,
            Some(&fresh),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    // 300 s later, even a small transfer is challenged again.
    app.clock.advance(Duration::from_secs(301));
    let (r, _) = app
        .send(json_post(
            "/transfer",
            r#"{"to":"bob","amount":1}"#,
            Some(&fresh),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_extractor_works_without_the_layer_and_says_when_unconfigured() {
    let app = app().await;
    let (_, text) = app
        .send(as_alice("GET", "/whoami").body(Body::empty()).unwrap())
        .await;
    assert_eq!(text, "no assurance");
    let (r, _) = app
        .send(
            as_alice("GET", "/strict")
                .header("accept", "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (r, _) = app
        .send(json_post(
            "/step-up/password",
            r#"{"password":"wonderland"}"#,
            None,
        ))
        .await;
    let cookie = cookie_of(&r);
    let (_, text) = app
        .send(
            as_alice("GET", "/whoami")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(text, "level 1");
    // Not logged in: 401, no challenge.
    let r = app
        .router
        .clone()
        .oneshot(
            Request::builder()
                .uri("/strict")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.headers().contains_key(header::WWW_AUTHENTICATE));

    // A router without the extension: the extractor is a 500 that says why.
    let bare: Router = Router::new().route(
        "/strict",
        get(|a: Assurance| async move { a.level().to_string() }),
    );
    let r = bare
        .oneshot(as_alice("GET", "/strict").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.contains("stepup.layer()"), "{text}");
}

#[tokio::test]
async fn the_page_can_be_replaced_and_never_shows_request_text() {
    let app = app().await;
    // A hostile `why` is an unknown identifier: the generic sentence.
    let (_, html) = app
        .send(
            as_alice("GET", "/step-up?why=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(html.contains("We need to confirm it"), "{html}");
    assert!(!html.contains("alert(1)"));

    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    )
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]));
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    )
    .with_page_renderer(|page| {
        format!(
            "custom page for {} with password form: {}",
            page.return_to(),
            page.offers_password()
        )
    });
    let router: Router = Router::new().merge(stepup.routes());
    let r = router
        .oneshot(
            as_alice("GET", "/step-up?return_to=%2Fx")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text =
        String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert_eq!(text, "custom page for /x with password form: true");
}

#[tokio::test]
async fn a_client_address_from_the_application_feeds_the_per_address_budget() {
    use std::net::{IpAddr, Ipv4Addr};
    use stepup_axum::ClientAddress;
    use stepup_challenge::AttemptLimits;

    let clock = TestClock::new(T0);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_limits(AttemptLimits::default().per_address(2, Duration::from_secs(900)))
    .with_passwords(InsecureFixedPasswords::new([
        ("alice", "wonderland"),
        ("bob", "builder"),
    ]));
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    );
    let router: Router = Router::new().merge(stepup.routes());
    // What a proxy-aware middleware of the application would insert.
    let attempt = |user: &str, password: &str, client: u8| {
        let mut request = Request::builder()
            .method("POST")
            .uri("/step-up/password")
            .header("x-user", user)
            .header("x-session", "s-1")
            .header("origin", ORIGIN)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"password":"{password}"}}"#)))
            .unwrap();
        request
            .extensions_mut()
            .insert(ClientAddress(IpAddr::V4(Ipv4Addr::new(
                203, 0, 113, client,
            ))));
        let router = router.clone();
        async move { router.oneshot(request).await.unwrap().status() }
    };
    assert_eq!(attempt("alice", "wrong", 7).await, StatusCode::BAD_REQUEST);
    assert_eq!(attempt("alice", "wrong", 7).await, StatusCode::BAD_REQUEST);
    // The third attempt from 203.0.113.7 is refused whoever it is for …
    assert_eq!(
        attempt("bob", "builder", 7).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // … while another client address is not.
    assert_eq!(attempt("bob", "builder", 8).await, StatusCode::OK);
}

#[tokio::test]
async fn the_apps_own_routes_get_the_challenge_routes_origin_check() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    );
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    );
    let router: Router = Router::new()
        .route("/login", post(|| async { "welcome" }))
        .route_layer(stepup.same_origin())
        .merge(stepup.routes());
    let send = |path: &str, origin: &str| {
        let request = Request::builder()
            .method("POST")
            .uri(path)
            .header("x-user", "alice")
            .header("x-session", "s-1")
            .header("origin", origin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"code":"123456"}"#))
            .unwrap();
        let router = router.clone();
        async move {
            let r = router.oneshot(request).await.unwrap();
            let head = format!(
                "{} {:?} {:?}",
                r.status(),
                r.headers().get(header::CONTENT_TYPE),
                r.headers().get(header::CACHE_CONTROL)
            );
            let body = r.into_body().collect().await.unwrap().to_bytes();
            (head, body)
        }
    };
    // The same refusal, byte for byte, from the challenge routes and from
    // the application's own route.
    let challenge = send("/step-up/totp", "https://evil.example").await;
    let own = send("/login", "https://evil.example").await;
    assert_eq!(own, challenge);
    assert!(own.0.starts_with("403 "), "{}", own.0);
    assert_eq!(own.1, stepup_http::FORBIDDEN_BODY.as_bytes());
    // The bank's own origin passes.
    let (head, body) = send("/login", ORIGIN).await;
    assert!(head.starts_with("200 "), "{head}");
    assert_eq!(body, "welcome");
}

/// The mount path is said once: the routes mount themselves there, and the
/// layers and the extractor send browsers there.
#[tokio::test]
async fn the_routes_mount_themselves_where_the_layers_send_browsers() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    );
    let stepup = StepUp::new(
        engine,
        TrustedHeaders::dangerously_trust("x-user").with_session("x-session"),
        ORIGIN,
    )
    .mounted_at("/verify", stepup_core::ReturnTo::root());
    let router: Router = Router::new()
        .route(
            "/statements",
            get(|| async { "statements" }).route_layer(stepup.require(Policy::level(2))),
        )
        .merge(stepup.routes())
        .layer(stepup.layer());
    let get = |path: &str, accept: &str| {
        let request = Request::builder()
            .uri(path)
            .header("x-user", "alice")
            .header("x-session", "s-1")
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .unwrap();
        router.clone().oneshot(request)
    };
    let r = get("/statements", HTML).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/verify?return_to=/statements&reason=no_assurance&why=r"),
        "{location}"
    );
    let page = get(&location, HTML).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let status = get("/verify/status", "application/json").await.unwrap();
    assert_eq!(status.status(), StatusCode::OK);
    let css = get("/verify/assets/page.css", "text/css").await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    let old = get("/step-up/status", "application/json").await.unwrap();
    assert_eq!(
        old.status(),
        StatusCode::NOT_FOUND,
        "nothing at the default path"
    );
}

fn browser_form(uri: &str, body: &str, origin: &str, site: &str, cookie: Option<&str>) -> Request {
    let mut b = as_alice("POST", uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, HTML)
        .header("sec-fetch-mode", "navigate")
        .header("sec-fetch-site", site)
        .header("origin", origin)
        .header(header::REFERER, format!("{ORIGIN}/home"))
        .header(header::CONTENT_LENGTH, body.len());
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

/// The guard's own rules for kept forms, on a route with no origin check
/// of the application's: a cross-site form is never kept, a kept form comes
/// back only from this origin, and the handler gets exactly the kept
/// fields (marker stripped, `Content-Length` set) with its key.
#[tokio::test]
async fn kept_forms_are_this_origins_only_and_reach_the_handler_as_kept() {
    let app = app().await;
    let (r, _) = app
        .send(browser_form(
            "/pay",
            "a=1",
            "https://evil.example",
            "cross-site",
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("/step-up?return_to=/home&") && to.ends_with("&resubmit=1"),
        "{to}"
    );

    let (r, _) = app
        .send(browser_form(
            "/pay",
            "a=1&b=x+y",
            ORIGIN,
            "same-origin",
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let id = pending_id(&to);
    let (_, page) = app
        .send(
            as_alice("GET", &to)
                .header(header::ACCEPT, HTML)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(page.contains("Continue: Pay 1"), "{page}");
    let r = app.step_up_to_resume(&id).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&r);

    let body = format!("a=1&b=x+y&__stepup_resume={id}");
    // From another origin: refused by the guard itself, and not taken.
    let (r, _) = app
        .send(browser_form(
            "/pay",
            &body,
            "https://evil.example",
            "cross-site",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // From the confirmation page: the handler gets the kept fields.
    let (r, text) = app
        .send(browser_form(
            "/pay",
            &body,
            "null",
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{text}");
    let (fields, key) = text.split_once(" key=").unwrap();
    assert_eq!(fields, "a=1&b=x+y len=9");
    assert!(
        key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    assert!(!key.contains(&id), "the key does not reveal the id");
    let (r, page) = app
        .send(browser_form(
            "/pay",
            &body,
            "null",
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(page.contains("Already submitted"), "{page}");
    // An ordinary form on the allowed route: untouched, no key.
    let (r, text) = app
        .send(browser_form(
            "/pay",
            "a=2",
            ORIGIN,
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(text, "a=2 len=3 key=none");
}

/// A nested router's routes see their URI without the prefix: challenges
/// still return to, and kept forms still go back to, the path the browser
/// used; a route that opts out keeps nothing; the handler of a resumed form
/// gets the fields in the encoding that was compared.
#[tokio::test]
async fn nested_routes_opt_outs_and_the_compared_encoding() {
    let app = app().await;
    let (r, _) = app
        .send(
            as_alice("GET", "/admin/report")
                .header(header::ACCEPT, HTML)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[header::LOCATION].to_str().unwrap();
    assert!(to.starts_with("/step-up?return_to=/admin/report&"), "{to}");

    let (r, _) = app
        .send(browser_form(
            "/secret",
            "password=hunter2",
            ORIGIN,
            "same-origin",
            None,
        ))
        .await;
    let to = r.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        to.ends_with("&resubmit=1") && !to.contains("pending"),
        "{to}"
    );

    // Kept as sent, in a non-canonical spelling ("%31" for "1").
    let (r, _) = app
        .send(browser_form(
            "/admin/pay",
            "a=%31",
            ORIGIN,
            "same-origin",
            None,
        ))
        .await;
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let id = pending_id(&to);
    let resume = format!("/step-up/resume?pending={id}");
    let r = app.step_up_to_resume(&id).await;
    let cookie = cookie_of(&r);
    let (_, page) = app
        .send(
            as_alice("GET", &resume)
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        page.contains(r#"<form method="post" action="/admin/pay">"#),
        "{page}"
    );
    let (r, text) = app
        .send(browser_form(
            "/admin/pay",
            &format!("a=%31&__stepup_resume={id}"),
            "null",
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{text}");
    assert!(text.starts_with("a=1 len=3 key="), "{text}");
}

/// Where the first arrival went is linked from the "already submitted"
/// page only when it is a local path: a handler's redirect elsewhere is
/// never offered as a link (the page links back to the form's page).
#[tokio::test]
async fn already_submitted_links_only_to_local_paths() {
    let app = app().await;
    let (r, _) = app
        .send(browser_form("/away", "a=1", ORIGIN, "same-origin", None))
        .await;
    let to = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let id = pending_id(&to);
    let r = app.step_up_to_resume(&id).await;
    let cookie = cookie_of(&r);
    let body = format!("a=1&__stepup_resume={id}");
    let (r, _) = app
        .send(browser_form(
            "/away",
            &body,
            "null",
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(
        r.headers()[header::LOCATION],
        "https://elsewhere.example/done",
        "the handler's own answer is untouched"
    );
    let (r, page) = app
        .send(browser_form(
            "/away",
            &body,
            "null",
            "same-origin",
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!page.contains("elsewhere.example"), "{page}");
    assert!(
        page.contains(r#"href="/home""#),
        "back to the form's page: {page}"
    );
}

/// A grant is for its route: the same fields on another bound route (same
/// type, same spec) are another action. A GET bound to a query field (an
/// API key reveal) is confirmed by the browser on the page and allowed
/// once.
#[tokio::test]
async fn a_grant_is_for_its_route_and_a_get_can_be_bound() {
    let app = app().await;
    let (r, body) = app
        .send(json_post("/bound/one", r#"{"a":"x"}"#, None))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    let confirmation = problem["confirmation"].as_str().unwrap().to_owned();
    let (r, body) = app
        .send(json_post(
            "/step-up/totp",
            &format!(
                r#"{{"code":"{}","confirmation":"{confirmation}"}}"#,
                app.code()
            ),
            None,
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    let cookie = cookie_of(&r);
    let with_grant = |uri: &str| {
        as_alice("POST", uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header("origin", ORIGIN)
            .header(header::COOKIE, &cookie)
            .header("stepup-grant", &confirmation)
            .body(Body::from(r#"{"a":"x"}"#))
            .unwrap()
    };
    let (r, body) = app.send(with_grant("/bound/two")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
    let (r, body) = app.send(with_grant("/bound/one")).await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    assert_eq!(body, "/bound/one a=x");
    let (r, _) = app.send(with_grant("/bound/one")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A bound GET: the browser goes to the page, which confirms the key.
    let get = |cookie: &str| {
        as_alice("GET", "/keys/reveal?key=k-1%3Cb%3E")
            .header(header::ACCEPT, HTML)
            .header("sec-fetch-mode", "navigate")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap()
    };
    let (r, _) = app.send(get(&cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        page.starts_with(
            "/step-up?return_to=/keys/reveal%3Fkey%3Dk-1%253Cb%253E&reason=action_not_confirmed"
        ),
        "{page}"
    );
    let id = page.rsplit("&confirmation=").next().unwrap().to_owned();
    let (_, html) = app
        .send(as_alice("GET", &page).body(Body::empty()).unwrap())
        .await;
    assert!(
        html.contains("Confirm: Reveal the API key k-1&#60;b&#62;"),
        "{html}"
    );
    app.clock.advance(Duration::from_secs(30));
    let (r, _) = app
        .send(form(
            "/step-up/totp",
            &format!(
                "code={}&confirmation={id}&return_to=/keys/reveal%3Fkey%3Dk-1%253Cb%253E",
                app.code()
            ),
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&r);
    let (r, body) = app.send(get(&cookie)).await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    assert_eq!(body, "/keys/reveal key=k-1<b>");
    let (r, _) = app.send(get(&cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "once");
}

/// A session's ceremony quota cannot be spent from elsewhere, nor by its
/// own retries: a request from another site gets the challenge without a
/// ceremony, and the same action asked again waits on the ceremony already
/// open for it.
#[tokio::test]
async fn ceremonies_are_not_opened_from_elsewhere_nor_twice_for_one_action() {
    let app = app().await;
    // An attacker's page navigating the user to a bound GET, many times.
    for i in 0..15 {
        let (r, _) = app
            .send(
                as_alice("GET", &format!("/keys/reveal?key=k{i}"))
                    .header(header::ACCEPT, HTML)
                    .header("sec-fetch-mode", "navigate")
                    .header("sec-fetch-site", "cross-site")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = r.headers()[header::LOCATION].to_str().unwrap();
        assert!(!to.contains("confirmation="), "{to}");
    }
    // The user's own API retries of one action: one ceremony, reused.
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..15 {
        let (r, body) = app
            .send(json_post("/bound/one", r#"{"a":"y"}"#, None))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
        let problem: Value = serde_json::from_str(&body).unwrap();
        ids.insert(problem["confirmation"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    // The quota (10 per session in 5 minutes) is untouched by all that.
    for i in 0..9 {
        let (r, body) = app
            .send(json_post("/bound/one", &format!(r#"{{"a":"z{i}"}}"#), None))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{body}");
        assert!(body.contains("\"confirmation\""), "{body}");
    }
    let (r, _) = app
        .send(json_post("/bound/one", r#"{"a":"one too many"}"#, None))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn accept_language_de_gives_the_german_page() {
    let app = app().await;
    let (r, html) = app
        .send(
            as_alice("GET", "/step-up?return_to=/statements")
                .header("accept-language", "de-AT,de;q=0.9,en;q=0.5")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(html.contains(r#"<html lang="de">"#), "{html}");
    assert!(html.contains("Bestätigen Sie, dass Sie es sind"), "{html}");
    assert!(html.contains("Der 6-stellige Code aus Ihrer Authenticator-App"));
    assert_eq!(r.headers()["content-language"], "de");
    assert_eq!(r.headers()[header::VARY], "accept-language");

    let (_, html) = app
        .send(
            as_alice("GET", "/step-up?return_to=/statements")
                .header("accept-language", "xx")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(html.contains(r#"<html lang="en">"#) && html.contains("Confirm it&#39;s you"));
}
