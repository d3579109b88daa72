//! The one decision path, without a framework: what the tower layer, the
//! actix-web middleware and both extractors get from the `Guard`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Proof, ReturnTo, Subject, TestClock, Timestamp,
    TokenConfig,
};
use stepup_http::{Guard, Header, NoSubject, RequestHead, Settings, Verdict};

/// A request as a test writes it.
struct Request {
    method: &'static str,
    target: &'static str,
    headers: Vec<(Header, Vec<u8>)>,
}

impl Request {
    fn get(target: &'static str) -> Request {
        Request {
            method: "GET",
            target,
            headers: Vec::new(),
        }
    }

    fn post(target: &'static str) -> Request {
        Request {
            method: "POST",
            target,
            ..Request::get(target)
        }
    }

    fn header(mut self, header: Header, value: &str) -> Request {
        self.headers.push((header, value.as_bytes().to_vec()));
        self
    }

    fn browser(self) -> Request {
        self.header(Header::SecFetchMode, "navigate")
            .header(Header::Accept, "text/html")
    }

    fn cookie(self, token: &str) -> Request {
        self.header(Header::Cookie, &format!("__Host-stepup={token}"))
    }
}

impl RequestHead for Request {
    fn method(&self) -> &str {
        self.method
    }

    fn path_and_query(&self) -> &str {
        self.target
    }

    fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |(h, _)| *h == header)
            .map(|(_, v)| v.as_slice())
    }
}

struct World {
    tokens: TokenConfig,
    clock: TestClock,
    user: Subject,
}

fn world() -> World {
    World {
        tokens: TokenConfig::new(KeyRing::new(
            Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
        )),
        clock: TestClock::new(Timestamp::from_unix_seconds(1_700_000_000)),
        user: Subject::new("alice").with_session("s1"),
    }
}

impl World {
    fn token(&self, method: Method) -> String {
        let now = self.clock.now();
        self.tokens
            .issuer()
            .issue(&self.user, Proof::new(method, now), None, now)
            .unwrap()
            .into_value()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
}

fn deny(verdict: Verdict) -> stepup_http::Reply {
    match verdict {
        Verdict::Deny(reply) => reply,
        Verdict::Interrupt(interruption) => interruption.into_reply(),
        Verdict::Allow(a) => panic!("allowed at level {}", a.level()),
    }
}

#[test]
fn a_fresh_token_is_allowed_until_it_is_stale() {
    let w = world();
    let guard: Guard<()> = Guard::new(
        w.tokens.gate(),
        Policy::level(2).max_age(Duration::from_secs(300)),
    )
    .clock(w.clock());
    let request = Request::post("/transfer").cookie(&w.token(Method::Totp));
    assert!(matches!(
        guard.check(&(), &request, Some(w.user.clone())),
        Verdict::Allow(_)
    ));
    w.clock.advance(Duration::from_secs(301));
    let reply = deny(guard.check(&(), &request, Some(w.user.clone())));
    assert_eq!(reply.status(), 401);
    assert!(
        reply.body().contains(r#""reason":"stale""#),
        "{}",
        reply.body()
    );
}

#[test]
fn a_browser_is_sent_to_the_page_and_an_api_client_gets_rfc_9470() {
    let w = world();
    let guard: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(2)).clock(w.clock());
    let browser = deny(guard.check(
        &(),
        &Request::get("/statements?y=2026").browser(),
        Some(w.user.clone()),
    ));
    assert_eq!(browser.status(), 303);
    assert_eq!(
        browser.header_value("location"),
        Some("/step-up?return_to=/statements%3Fy%3D2026&reason=no_assurance")
    );
    let api = deny(guard.check(&(), &Request::get("/statements"), Some(w.user.clone())));
    assert_eq!(api.status(), 401);
    assert!(
        api.header_value("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"insufficient_user_authentication\"")
    );
    assert_eq!(api.header_value("cache-control"), Some("no-store"));
}

#[test]
fn two_cookies_or_a_cookie_and_the_header_are_refused_never_guessed() {
    let w = world();
    let token = w.token(Method::Passkey);
    let guard: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(1))
        .clock(w.clock())
        .accept_token_header();
    let tossed = Request::get("/x").cookie(&token).cookie(&token);
    let reply = deny(guard.check(&(), &tossed, Some(w.user.clone())));
    assert!(
        reply.body().contains(r#""reason":"invalid_token""#),
        "{}",
        reply.body()
    );
    let mixed = Request::get("/x")
        .cookie(&token)
        .header(Header::Token, &token);
    let reply = deny(guard.check(&(), &mixed, Some(w.user.clone())));
    assert!(reply.body().contains(r#""reason":"invalid_token""#));
    let header_only = Request::get("/x").header(Header::Token, &token);
    assert!(matches!(
        guard.check(&(), &header_only, Some(w.user.clone())),
        Verdict::Allow(_)
    ));
}

#[test]
fn nobody_logged_in_gets_no_challenge_or_the_login_page() {
    let w = world();
    let guard: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(2));
    let reply = deny(guard.check(&(), &Request::get("/x").browser(), None));
    assert_eq!(reply.status(), 401);
    assert_eq!(reply.body(), stepup_http::LOGIN_REQUIRED_BODY);
    let guard = guard.on_no_subject(NoSubject::RedirectToLogin(
        ReturnTo::parse("/login").unwrap(),
    ));
    let reply = deny(guard.check(&(), &Request::get("/account").browser(), None));
    assert_eq!(
        reply.header_value("location"),
        Some("/login?return_to=/account")
    );
    let reply = deny(guard.check(&(), &Request::get("/account"), None));
    assert_eq!(reply.status(), 401, "an API client is not redirected");
}

#[test]
fn a_per_request_policy_sees_the_request_and_the_assurance() {
    let w = world();
    let read = Arc::new(Policy::level(1));
    let delete = Arc::new(Policy::method(Method::Passkey).with_reason("Deleting needs a passkey."));
    let settings =
        Settings::new(w.tokens.gate(), "https://bank.example").with_shared_clock(w.clock());
    let guard: Guard<str> = settings.guard_per_request(move |method: &str, _| {
        if method == "DELETE" {
            delete.clone()
        } else {
            read.clone()
        }
    });
    let request = Request::post("/keys").cookie(&w.token(Method::Totp));
    assert!(matches!(
        guard.check("GET", &request, Some(w.user.clone())),
        Verdict::Allow(_)
    ));
    let reply = deny(guard.check("DELETE", &request, Some(w.user.clone())));
    assert_eq!(reply.status(), 401);
    // The page gets the chosen policy's own reason.
    let problem: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
    let url = problem["step_up_url"].as_str().unwrap();
    let why = url.split("why=").nth(1).unwrap();
    assert_eq!(
        settings.reason(why).map(|r| r.0).as_deref(),
        Some("Deleting needs a passkey.")
    );
}

#[test]
fn an_in_handler_require_answers_as_the_guard_with_its_own_reason() {
    let w = world();
    let settings =
        Settings::new(w.tokens.gate(), "https://bank.example").with_shared_clock(w.clock());
    let guard: Guard<()> = settings.guard(Policy::level(1));
    let request = Request::post("/transfer").cookie(&w.token(Method::Password));
    let Verdict::Allow(assurance) = guard.check(&(), &request, Some(w.user.clone())) else {
        panic!("level 1 by password");
    };
    let big = Policy::method(Method::Totp).with_reason("Big transfers need your authenticator.");
    let refusal = guard.hold(&request).require(&assurance, &big).unwrap_err();
    let why = settings.register_policy(&big);
    assert_eq!(refusal.reply().status(), 401);
    let problem: serde_json::Value = serde_json::from_str(refusal.reply().body()).unwrap();
    assert_eq!(
        problem["step_up_url"],
        format!("/step-up?return_to=/transfer&reason=missing_method&why={why}")
    );
    assert!(
        guard
            .hold(&request)
            .require(&assurance, &Policy::level(1))
            .is_ok()
    );
}

#[test]
fn the_allow_path_does_not_depend_on_settings_made_later() {
    // A guard keeps the settings it was made with (clones made earlier keep
    // theirs): changing the cookie name afterwards is a new guard.
    let w = world();
    let token = w.token(Method::Totp);
    let guard: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(1)).clock(w.clock());
    let renamed = guard.clone().cookie_name("other");
    let request = Request::get("/x").cookie(&token);
    assert!(matches!(
        guard.check(&(), &request, Some(w.user.clone())),
        Verdict::Allow(_)
    ));
    let reply = deny(renamed.check(&(), &request, Some(w.user.clone())));
    assert!(reply.body().contains(r#""reason":"no_assurance""#));
}

#[test]
fn the_reason_table_is_bounded_and_a_full_one_sends_no_reason() {
    let w = world();
    let settings =
        Settings::new(w.tokens.gate(), "https://bank.example").with_shared_clock(w.clock());
    let known = Policy::level(2).with_reason("Moving money");
    let guard: Guard<()> = settings.guard(known.clone());
    for i in 0..stepup_http::Reasons::CAPACITY {
        settings.register_reason(&format!("reason {i}"));
    }
    // A reason registered before the table filled up still reaches the page.
    let reply = deny(guard.check(&(), &Request::get("/x"), Some(w.user.clone())));
    let problem: serde_json::Value = serde_json::from_str(reply.body()).unwrap();
    let url = problem["step_up_url"].as_str().unwrap();
    let why = url.split("why=").nth(1).unwrap();
    assert_eq!(
        settings.reason(why).map(|r| r.0).as_deref(),
        Some("Moving money")
    );
    assert_eq!(why.len(), 25, "r and 96 bits in hex");
    // A new one does not get in, and its challenge carries no `why=`.
    let late: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(1))
        .with_settings(&settings)
        .clock(w.clock());
    let refusal = late
        .hold(&Request::get("/y"))
        .require(
            &late
                .verify_any(
                    &Request::get("/y").cookie(&w.token(Method::Password)),
                    w.user.clone(),
                )
                .unwrap(),
            &Policy::method(Method::Totp).with_reason("Pay 1 to mallory"),
        )
        .unwrap_err();
    let problem: serde_json::Value = serde_json::from_str(refusal.reply().body()).unwrap();
    let url = problem["step_up_url"].as_str().unwrap();
    assert!(!url.contains("why="), "{url}");
    assert!(
        settings
            .reason(&settings.register_reason("Pay 1 to mallory"))
            .is_none()
    );
}

#[test]
fn the_site_root_is_no_mount_path() {
    let w = world();
    let settings = Settings::new(w.tokens.gate(), "https://bank.example")
        .mounted_at("/", ReturnTo::parse("/home").unwrap());
    assert_eq!(settings.page().as_str(), "/step-up");
    assert_eq!(settings.fallback().as_str(), "/");
    let settings = settings.mounted_at("/verify", ReturnTo::parse("/home").unwrap());
    assert_eq!(settings.page().as_str(), "/verify");
    assert_eq!(settings.fallback().as_str(), "/home");
}

/// A grant store that answers as told: what the guard does with what any
/// `Grants` implementation gives it.
struct FixedGrants(Vec<Proof>);

impl stepup_http::Grants for FixedGrants {
    fn open<'a>(
        &'a self,
        _: &'a Subject,
        _: &'a stepup_http::BoundAction,
        _: &'a Policy,
    ) -> stepup_http::BoxFuture<'a, stepup_http::Opening> {
        Box::pin(async { stepup_http::Opening::Opened("0".repeat(32)) })
    }

    fn take<'a>(
        &'a self,
        _: &'a Subject,
        _: &'a stepup_http::BoundAction,
        _: Option<&'a str>,
    ) -> stepup_http::BoxFuture<'a, stepup_http::Taken> {
        Box::pin(async { stepup_http::Taken::Granted(self.0.clone()) })
    }
}

/// Runs a future that never waits (the grant store above answers at once).
fn now<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the future waited"),
    }
}

/// The guard checks the proofs a grant was made with against the policy
/// itself, whatever the store: a grant made by a password does not pass a
/// `level 2 and bound` route even when the token holds a fresh TOTP.
#[test]
fn a_grant_passes_only_with_proofs_that_meet_the_policy() {
    let w = world();
    let spec = stepup_http::ActionSpec::builder("payment")
        .field("amount", stepup_http::Normalise::Amount { scale: 2 })
        .build()
        .unwrap();
    let request = Request::post("/transfer")
        .cookie(&w.token(Method::Totp))
        .header(Header::ContentType, "application/x-www-form-urlencoded");
    for (proof, allowed) in [(Method::Password, false), (Method::Totp, true)] {
        let guard: Guard<()> = Guard::new(w.tokens.gate(), Policy::level(2).and(Policy::bound()))
            .clock(w.clock())
            .bind(spec.clone())
            .with_grants(Arc::new(FixedGrants(vec![Proof::new(
                proof,
                w.clock.now(),
            )])));
        let action = guard.read_action(&request, b"amount=12000").unwrap();
        let verdict = now(guard.check_action(&(), &request, Some(w.user.clone()), &action));
        assert_eq!(matches!(verdict, Verdict::Allow(_)), allowed, "{proof}");
        if !allowed {
            let reply = deny(verdict);
            assert_eq!(reply.status(), 401);
            assert!(
                reply.body().contains(r#""confirmation":"#),
                "{}",
                reply.body()
            );
        }
    }
}
