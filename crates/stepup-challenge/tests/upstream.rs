//! A step-up at an upstream identity provider, through the challenge
//! routes with a scripted [`Upstream`]: offered on the page only to linked
//! users and where its level can satisfy the policy (the page's
//! `form-action` then allows the provider's origin), started by a
//! same-origin POST only, the callback carried on by a page of this
//! origin, finished only from this origin and by a logged-in user; the
//! token set and the way back taken; each refusal said in the user's
//! words with its status; events for each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Reply, Settings};
use stepup_challenge::{
    Engine, Event, EventKind, MemoryFactorStore, MemoryStateStore, StoreError, Upstream,
    UpstreamDone, UpstreamError, UpstreamFinish, UpstreamStart,
};
use stepup_core::{
    Issuer, Key, KeyId, KeyRing, LevelTable, Method, Policy, Proof, ReturnTo, Subject, TestClock,
    Timestamp, TokenConfig,
};
use stepup_http::{BoxFuture, Found};

const ORIGIN: &str = "https://bank.example";

fn level_method(level: u8) -> Method {
    Method::custom(&format!("idp-level-{level}")).unwrap()
}

/// A provider that proves levels 2 and 3, knows alice only, and answers
/// as the callback's query scripts it.
#[derive(Clone)]
struct Acme {
    issuer: Issuer,
    clock: TestClock,
    started: Arc<Mutex<Vec<(String, u8, String)>>>,
}

impl Upstream for Acme {
    fn name(&self) -> &str {
        "acme"
    }
    fn title(&self) -> &str {
        "Confirm at Acme ID"
    }
    fn origin(&self) -> &str {
        "https://id.example"
    }
    fn levels(&self) -> Vec<(u8, Method)> {
        vec![(3, level_method(3)), (2, level_method(2))]
    }
    fn linked<'a>(&'a self, subject: &'a Subject) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if subject.id() == "broken" {
                return Err(StoreError::new("accounts", "down"));
            }
            Ok(subject.id() == "alice")
        })
    }
    fn start<'a>(
        &'a self,
        start: UpstreamStart<'a>,
    ) -> BoxFuture<'a, Result<String, UpstreamError>> {
        Box::pin(async move {
            self.started.lock().unwrap().push((
                start.subject.id().to_owned(),
                start.level,
                start.return_to.as_str().to_owned(),
            ));
            Ok("https://id.example/authorize?request_uri=urn:x".to_owned())
        })
    }
    fn finish<'a>(
        &'a self,
        finish: UpstreamFinish<'a>,
    ) -> BoxFuture<'a, Result<UpstreamDone, UpstreamError>> {
        Box::pin(async move {
            match finish.query {
                "code=c&state=good" => {
                    let now = stepup_core::Clock::now(&self.clock);
                    let token = self
                        .issuer
                        .issue(
                            finish.subject,
                            Proof::new(level_method(2), now),
                            finish.previous,
                            now,
                        )
                        .unwrap();
                    Ok(UpstreamDone::new(
                        token,
                        level_method(2),
                        ReturnTo::parse("/transfer").unwrap(),
                    ))
                }
                "error=access_denied&state=s" => Err(UpstreamError::Refused),
                "code=c&state=old" => Err(UpstreamError::Expired),
                "code=c&state=bad" => Err(UpstreamError::Rejected("nonce".into())),
                _ => Err(UpstreamError::Unavailable("down".into())),
            }
        })
    }
}

struct Setup {
    routes: ChallengeRoutes<MemoryFactorStore, MemoryStateStore, stepup_challenge::NoPasswords>,
    acme: Acme,
    events: Arc<Mutex<Vec<Event>>>,
    level2: String,
    level3: String,
    passkey_only: String,
}

fn setup() -> Setup {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let levels = LevelTable::nist()
        .with_custom_method(level_method(2), 2, &[])
        .with_custom_method(level_method(3), 3, &[]);
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[5u8; 32]).unwrap(),
    ))
    .with_levels(levels);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock.clone())
    .with_event_sink(move |e: &Event| sink.lock().unwrap().push(e.clone()));
    let settings = Settings::new(config.gate(), ORIGIN).with_clock(clock.clone());
    let level2 = settings.register_policy(&Policy::level(2));
    let level3 = settings.register_policy(&Policy::level(3));
    let passkey_only = settings.register_policy(&Policy::method(Method::Passkey));
    let acme = Acme {
        issuer: config.issuer(),
        clock,
        started: Arc::default(),
    };
    let routes =
        ChallengeRoutes::new(settings, Arc::new(engine)).with_upstream(Arc::new(acme.clone()));
    Setup {
        routes,
        acme,
        events,
        level2,
        level3,
        passkey_only,
    }
}

impl Setup {
    /// A start from the page of the policy `why`, by `subject`.
    async fn start(&self, why: &str, subject: Option<Subject>) -> Reply {
        let body = format!("return_to=%2Ftransfer&why={why}");
        self.routes
            .handle(post("/upstream/acme/start", body.as_bytes(), subject))
            .await
    }
}

fn alice() -> Subject {
    Subject::new("alice").with_session("s-1")
}

fn get<'a>(path: &'a str, query: Option<&'a str>, subject: Option<Subject>) -> Incoming<'a> {
    Incoming {
        method: "GET",
        path,
        query,
        subject,
        origin: None,
        sec_fetch_site: None,
        referer: None,
        content_type: None,
        navigation: true,
        token: Found::None,
        body: Body::Read(b""),
        address: None,
        accept_language: None,
        user_agent: None,
        context: None,
    }
}

fn post<'a>(path: &'a str, body: &'a [u8], subject: Option<Subject>) -> Incoming<'a> {
    Incoming {
        method: "POST",
        origin: Some(ORIGIN.as_bytes()),
        content_type: Some(b"application/x-www-form-urlencoded"),
        body: Body::Read(body),
        ..get(path, None, subject)
    }
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn kinds(events: &Mutex<Vec<Event>>) -> Vec<(EventKind, Option<String>, Option<&'static str>)> {
    events
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.method.map(|m| m.to_string()), e.reason))
        .collect()
}

#[tokio::test]
async fn the_page_offers_the_provider_to_linked_users_where_its_level_fits() {
    let s = setup();
    let query = format!("return_to=%2Ftransfer&why={}", s.level2);
    let page = s.routes.handle(get("/", Some(&query), Some(alice()))).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.body()
            .contains(r#"<form method="post" action="/step-up/upstream/acme/start">"#),
        "{}",
        page.body()
    );
    assert!(page.body().contains("Confirm at Acme ID"));
    assert!(page.body().contains("Continue at your identity provider"));
    let csp = header(&page, "content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://id.example;"),
        "{csp}"
    );

    // Bob has no account there: neither the entry nor the allowance.
    let page = s
        .routes
        .handle(get("/", Some(&query), Some(Subject::new("bob"))))
        .await;
    assert!(!page.body().contains("/upstream/acme/start"));
    assert!(
        !header(&page, "content-security-policy")
            .unwrap()
            .contains("id.example")
    );

    // A policy only a passkey meets: the provider's levels do not help.
    let query = format!("return_to=%2Ftransfer&why={}", s.passkey_only);
    let page = s.routes.handle(get("/", Some(&query), Some(alice()))).await;
    assert!(
        !page.body().contains("/upstream/acme/start"),
        "{}",
        page.body()
    );
}

#[tokio::test]
async fn the_start_asks_for_the_policys_level_from_this_origin_only() {
    let s = setup();
    let body = format!("return_to=%2Ftransfer&why={}", s.level3);
    let reply = s.start(&s.level3, Some(alice())).await;
    assert_eq!(reply.status(), 303);
    assert_eq!(
        header(&reply, "location"),
        Some("https://id.example/authorize?request_uri=urn:x")
    );
    assert_eq!(
        s.acme.started.lock().unwrap().as_slice(),
        [("alice".to_owned(), 3, "/transfer".to_owned())],
        "level 3 asked for a level-3 policy; the return path kept"
    );
    assert!(kinds(&s.events).contains(&(
        EventKind::MethodStarted,
        Some("custom:idp-level-3".into()),
        None
    )));

    // From another site: refused before anything starts.
    let reply = s
        .routes
        .handle(Incoming {
            origin: Some(b"https://evil.example"),
            ..post("/upstream/acme/start", body.as_bytes(), Some(alice()))
        })
        .await;
    assert_eq!(reply.status(), 403);
    // Not logged in; not linked; a policy the provider cannot meet; a
    // bound action's confirmation: nothing starts.
    let reply = s.start(&s.level3, None).await;
    assert_eq!(reply.status(), 401);
    let reply = s.start(&s.level3, Some(Subject::new("bob"))).await;
    assert_eq!(reply.status(), 403);
    assert!(
        reply.body().contains("cannot confirm this"),
        "{}",
        reply.body()
    );
    let reply = s.start(&s.passkey_only, Some(alice())).await;
    assert_eq!(reply.status(), 403);
    let bound = format!("{body}&confirmation=0123456789abcdef0123456789abcdef");
    let reply = s
        .routes
        .handle(post(
            "/upstream/acme/start",
            bound.as_bytes(),
            Some(alice()),
        ))
        .await;
    assert_eq!(reply.status(), 403);
    assert_eq!(
        s.acme.started.lock().unwrap().len(),
        1,
        "nothing else started"
    );
    // JSON: where to go.
    let reply = s
        .routes
        .handle(Incoming {
            content_type: Some(b"application/json"),
            navigation: false,
            ..post(
                "/upstream/acme/start",
                br#"{"return_to":"/transfer"}"#,
                Some(alice()),
            )
        })
        .await;
    assert_eq!(reply.status(), 200);
    assert!(
        reply
            .body()
            .contains(r#""redirect":"https://id.example/authorize"#),
        "{}",
        reply.body()
    );
}

#[tokio::test]
async fn the_callback_only_carries_the_answer_on_to_a_same_origin_finish() {
    let s = setup();
    let reply = s
        .routes
        .handle(get(
            "/upstream/acme/callback",
            Some("code=c%22%3E&state=good&extra=%3Cscript%3E"),
            None,
        ))
        .await;
    assert_eq!(reply.status(), 200);
    let html = reply.body();
    assert!(
        html.contains(
            r#"content="0;url=/step-up/upstream/acme/finish?code=c%22%3E&amp;state=good""#
        ),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("extra"),
        "{html}"
    );
    assert_eq!(header(&reply, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    for (method, path, status) in [
        ("GET", "/upstream/other/callback", 404),
        ("GET", "/upstream/Acme/callback", 404),
        ("POST", "/upstream/acme/callback", 405),
        ("GET", "/upstream/acme/start", 405),
        ("GET", "/upstream/acme/other", 404),
        // HEAD would finish (and use up) an answer too.
        ("HEAD", "/upstream/acme/finish", 405),
    ] {
        let reply = s
            .routes
            .handle(Incoming {
                method,
                ..get(path, None, Some(alice()))
            })
            .await;
        assert_eq!(reply.status(), status, "{method} {path}");
    }
}

#[tokio::test]
async fn the_finish_sets_the_token_and_returns_or_says_what_went_wrong() {
    let s = setup();
    let finish = |query: &'static str, site: Option<&'static [u8]>, subject| Incoming {
        sec_fetch_site: site,
        ..get("/upstream/acme/finish", Some(query), subject)
    };
    // Another site's link, and a logged-out browser, finish nothing.
    let reply = s
        .routes
        .handle(finish(
            "code=c&state=good",
            Some(b"cross-site"),
            Some(alice()),
        ))
        .await;
    assert_eq!(reply.status(), 403);
    let reply = s
        .routes
        .handle(finish("code=c&state=good", Some(b"same-origin"), None))
        .await;
    assert_eq!(reply.status(), 401);
    assert!(
        kinds(&s.events).is_empty(),
        "nothing happened: {:?}",
        kinds(&s.events)
    );

    let reply = s
        .routes
        .handle(finish(
            "code=c&state=good",
            Some(b"same-origin"),
            Some(alice()),
        ))
        .await;
    assert_eq!(reply.status(), 303);
    assert_eq!(header(&reply, "location"), Some("/transfer"));
    assert!(
        header(&reply, "set-cookie")
            .unwrap()
            .contains("SameSite=Strict")
    );
    assert!(kinds(&s.events).contains(&(
        EventKind::Succeeded,
        Some("custom:idp-level-2".into()),
        None
    )));

    for (query, status, says, reason) in [
        (
            "error=access_denied&state=s",
            403,
            "did not confirm it&#39;s you",
            "upstream_refused",
        ),
        (
            "code=c&state=old",
            400,
            "expired or was already used",
            "upstream_expired",
        ),
        (
            "code=c&state=bad",
            403,
            "could not be accepted",
            "upstream_rejected",
        ),
    ] {
        let reply = s
            .routes
            .handle(finish(query, Some(b"same-origin"), Some(alice())))
            .await;
        assert_eq!(reply.status(), status, "{query}");
        assert!(reply.body().contains(says), "{query}: {}", reply.body());
        // The page again, offering the provider (and every other way).
        assert!(reply.body().contains("/upstream/acme/start"), "{query}");
        assert!(header(&reply, "set-cookie").is_none());
        assert!(
            kinds(&s.events).contains(&(EventKind::Failed, None, Some(reason))),
            "{reason}: {:?}",
            kinds(&s.events)
        );
    }
    // The provider unreachable: 503, no detail.
    let reply = s
        .routes
        .handle(finish("code=c&state=down", None, Some(alice())))
        .await;
    assert_eq!(reply.status(), 503);
    assert!(!reply.body().contains("down"));
}

#[tokio::test]
async fn a_refused_answer_shows_the_page_the_trip_started_from() {
    let s = setup();
    let reply = s.start(&s.level3, Some(alice())).await;
    assert_eq!(reply.status(), 303);
    let reply = s
        .routes
        .handle(Incoming {
            sec_fetch_site: Some(b"same-origin"),
            ..get(
                "/upstream/acme/finish",
                Some("code=c&state=bad"),
                Some(alice()),
            )
        })
        .await;
    assert_eq!(reply.status(), 403);
    let html = reply.body();
    // The same reason (so the same level is asked again) and way back.
    assert!(
        html.contains(&format!(r#"name="why" value="{}""#, s.level3)),
        "{html}"
    );
    assert!(
        html.contains(r#"name="return_to" value="/transfer""#),
        "{html}"
    );
    // JSON: a fixed sentence, never the detail.
    let reply = s
        .routes
        .handle(Incoming {
            sec_fetch_site: Some(b"same-origin"),
            content_type: Some(b"application/json"),
            navigation: false,
            ..get(
                "/upstream/acme/finish",
                Some("code=c&state=bad"),
                Some(alice()),
            )
        })
        .await;
    assert_eq!(reply.status(), 403);
    assert!(reply.body().contains("upstream_rejected"));
    assert!(!reply.body().contains("nonce"), "{}", reply.body());
}

#[tokio::test]
async fn starts_are_rationed_per_session() {
    let s = setup();
    for _ in 0..10 {
        let reply = s.start(&s.level2, Some(alice())).await;
        assert_eq!(reply.status(), 303);
    }
    let reply = s.start(&s.level2, Some(alice())).await;
    assert_eq!(reply.status(), 429);
    assert!(header(&reply, "retry-after").is_some());
    assert_eq!(
        s.acme.started.lock().unwrap().len(),
        10,
        "the 11th never reached the provider"
    );
    // Another session of hers has its own ration.
    let other = Subject::new("alice").with_session("s-2");
    let reply = s.start(&s.level2, Some(other)).await;
    assert_eq!(reply.status(), 303);
}

#[tokio::test]
async fn a_failed_account_lookup_is_unavailable_not_unlinked() {
    let s = setup();
    let broken = Subject::new("broken").with_session("s-1");
    let reply = s.start(&s.level2, Some(broken.clone())).await;
    assert_eq!(reply.status(), 503);
    // The page still shows (without the provider).
    let query = format!("return_to=%2Ftransfer&why={}", s.level2);
    let page = s.routes.handle(get("/", Some(&query), Some(broken))).await;
    assert_eq!(page.status(), 200);
    assert!(!page.body().contains("/upstream/acme/start"));
}
