//! Two engine instances sharing one Redis, as two servers of one
//! application would: a TOTP code used on one is refused on the other,
//! attempts on both count toward one lockout, and with Redis gone a step-up
//! fails closed while valid assurance still passes the gate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::RedisServer;
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
use stepup_challenge::{
    Attempt, ChallengeError, Engine, FactorStore, MemoryFactorStore, TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, SystemClock, TokenConfig};
use stepup_http::Found;
use stepup_redis::RedisStateStore;

type RedisEngine = Engine<MemoryFactorStore, RedisStateStore>;

fn tokens() -> TokenConfig {
    TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[8u8; 32]).unwrap(),
    ))
}

fn secret() -> TotpSecret {
    TotpSecret::from_bytes(b"12345678901234567890").unwrap()
}

/// One instance: its own engine and connection, the shared Redis (and the
/// application's own factor data, the same on every instance).
async fn instance(server: &RedisServer) -> RedisEngine {
    let factors = MemoryFactorStore::new();
    factors
        .set_totp_secret(&Subject::new("alice"), secret())
        .await
        .unwrap();
    for i in 0..60 {
        factors
            .set_totp_secret(&Subject::new(format!("user{i}")), secret())
            .await
            .unwrap();
    }
    Engine::new(tokens().issuer(), factors, server.store("bank:"))
        .with_totp(TotpConfig::new("Bank"))
}

fn code() -> String {
    TotpConfig::new("Bank")
        .code_at(&secret(), SystemClock.now().as_unix_seconds())
        .unwrap()
}

fn alice(session: &str) -> Subject {
    Subject::new("alice").with_session(session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_totp_code_used_on_one_instance_is_refused_on_another() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let code = code();
    let user = alice("s-1");
    a.step_up_totp(Attempt::new(&user), &code).await.unwrap();
    assert_eq!(
        b.step_up_totp(Attempt::new(&user), &code)
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
    // Another session of the same user on the other instance: still used.
    let other = alice("s-2");
    assert_eq!(
        b.step_up_totp(Attempt::new(&other), &code)
            .await
            .unwrap_err(),
        ChallengeError::AlreadyUsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_on_both_instances_reach_one_lockout() {
    let server = RedisServer::start();
    let (a, b) = (instance(&server).await, instance(&server).await);
    let user = alice("s-1");
    for i in 0..5 {
        let engine = if i % 2 == 0 { &a } else { &b };
        let error = engine
            .step_up_totp(Attempt::new(&user), "000000")
            .await
            .unwrap_err();
        assert!(matches!(error, ChallengeError::Wrong { .. }), "{error:?}");
    }
    // Five wrong answers spread over two instances: locked on both, right
    // code or not.
    for engine in [&a, &b] {
        let error = engine
            .step_up_totp(Attempt::new(&user), &code())
            .await
            .unwrap_err();
        assert!(
            matches!(error, ChallengeError::LockedOut { .. }),
            "{error:?}"
        );
    }
    // Per address too: one address guessing for many users across instances.
    let address = "203.0.113.9".parse().unwrap();
    let mut refused = false;
    for i in 0..60 {
        let user = Subject::new(format!("user{i}"));
        let engine = if i % 2 == 0 { &a } else { &b };
        if let Err(ChallengeError::LockedOut { .. }) = engine
            .step_up_totp(Attempt::new(&user).from_address(address), "000000")
            .await
        {
            refused = true;
            break;
        }
    }
    assert!(refused, "the per-address budget (50) is shared too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_step_ups_fail_closed_and_valid_assurance_still_passes() {
    let mut server = RedisServer::start();
    let engine = Arc::new(instance(&server).await);
    let gate = tokens().gate();
    let user = alice("s-1");
    let token = engine
        .step_up_totp(Attempt::new(&user), &code())
        .await
        .unwrap();
    server.stop();

    // The step-up fails closed: a store error, no token.
    let error = engine
        .step_up_totp(Attempt::new(&alice("s-2")), &code())
        .await
        .unwrap_err();
    assert!(matches!(error, ChallengeError::Store(_)), "{error:?}");
    // Through the routes: 503, "try again", no cookie.
    let routes = ChallengeRoutes::new(
        Settings::new(gate.clone(), "https://bank.example"),
        engine.clone(),
    );
    let reply = routes
        .handle(Incoming {
            accept_language: None,
            method: "POST",
            path: "/totp",
            query: None,
            subject: Some(alice("s-3")),
            origin: Some(b"https://bank.example"),
            sec_fetch_site: None,
            referer: None,
            content_type: Some(b"application/json"),
            navigation: false,
            token: Found::None,
            body: Body::Read(format!(r#"{{"code":"{}"}}"#, code()).as_bytes()),
            address: None,
            user_agent: None,
            context: None,
        })
        .await;
    assert_eq!(reply.status(), 503);
    assert!(reply.body().contains("try again"), "{}", reply.body());
    assert!(reply.header_value("set-cookie").is_none());

    // The gate needs no store: the assurance minted before still passes.
    let assurance = gate
        .verify(&user, Some(token.value()), SystemClock.now())
        .unwrap();
    assert_eq!(assurance.level(), 2);

    // Back up: step-ups work again (the lost state was short-lived only).
    server.restart();
    assert!(
        common::step_ups_recover(&engine, &alice("s-4"), &code()).await,
        "step-ups recover when Redis is back"
    );
}

/// A form POST as a browser sends it, to `/pay` on `https://bank.example`.
struct FormPost {
    cookie: Option<String>,
    origin: &'static [u8],
    length: String,
}

impl stepup_http::RequestHead for FormPost {
    fn method(&self) -> &str {
        "POST"
    }
    fn path_and_query(&self) -> &str {
        "/pay"
    }
    fn values(&self, header: stepup_http::Header) -> impl Iterator<Item = &[u8]> {
        use stepup_http::Header;
        let value: Option<&[u8]> = match header {
            Header::Cookie => self.cookie.as_deref().map(str::as_bytes),
            Header::Accept => Some(b"text/html"),
            Header::SecFetchMode => Some(b"navigate"),
            Header::SecFetchSite => Some(b"same-origin"),
            Header::Origin => Some(self.origin),
            Header::ContentType => Some(b"application/x-www-form-urlencoded"),
            Header::ContentLength => Some(self.length.as_bytes()),
            _ => None,
        };
        value.into_iter()
    }
}

/// Kept forms on a shared Redis: kept through one instance, confirmed on
/// either, and of two instances taking it at once exactly one runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_form_is_taken_once_across_instances() {
    use stepup_challenge::FormLimits;
    use stepup_challenge::routes::KeptForms;
    use stepup_core::Policy;
    use stepup_http::{Guard, Opened, Verdict};

    let server = RedisServer::start();
    let (a, b) = (
        Arc::new(instance(&server).await),
        Arc::new(instance(&server).await),
    );
    let settings = Settings::new(tokens().gate(), "https://bank.example");
    let guard = |engine: &Arc<RedisEngine>| -> Guard<()> {
        let forms = KeptForms::new(engine.clone(), &settings, FormLimits::default());
        settings
            .guard(Policy::level(2))
            .with_resume(Arc::new(forms))
    };
    let (on_a, on_b) = (guard(&a), guard(&b));
    let user = alice("s-1");

    // Kept through instance A.
    let post = FormPost {
        cookie: None,
        origin: b"https://bank.example",
        length: "3".into(),
    };
    let Verdict::Interrupt(interruption) = on_a.check(&(), &post, Some(user.clone())) else {
        panic!("a form needing a step-up is interrupted");
    };
    let reply = interruption.answer(Some(b"a=1")).await;
    let location = reply.header_value("location").unwrap().to_owned();
    let at = location.find("pending%3D").unwrap() + "pending%3D".len();
    let id = location[at..at + 32].to_owned();
    // Instance B's pages see it; a reader of Redis sees no field of it.
    assert!(b.kept_form(&user, &id).await.unwrap().is_some());
    use stepup_store::StateStore as _;
    let raw = server.store("bank:");
    let kept = raw
        .get(&format!("stepup:form:{id}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !contains(&kept, b"a=1") && !contains(&kept, b"/pay"),
        "sealed"
    );

    // Stepped up on B, confirmed on both at once: one runs it.
    let token = b.step_up_totp(Attempt::new(&user), &code()).await.unwrap();
    let body = format!("a=1&__stepup_resume={id}");
    let back = FormPost {
        cookie: Some(format!("__Host-stepup={}", token.value())),
        origin: b"null",
        length: body.len().to_string(),
    };
    let mut racers = tokio::task::JoinSet::new();
    for guard in [on_a, on_b].into_iter().cycle().take(8) {
        let pickup = guard.pickup(&back, Some(&user)).unwrap();
        assert!(matches!(
            guard.check(&(), &back, Some(user.clone())),
            Verdict::Allow(_)
        ));
        let body = body.clone();
        racers.spawn(async move {
            match pickup.open("POST", "/pay", body.as_bytes()).await {
                Opened::Resume { body, .. } => Ok(body),
                Opened::Answer(reply) => Err(reply.status()),
                Opened::Pass => Err(0),
            }
        });
    }
    let outcomes = racers.join_all().await;
    let ran: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(ran, [&"a=1".to_owned()], "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .filter(|o| o.is_err())
            .all(|o| *o == Err(409)),
        "{outcomes:?}"
    );
    // What is remembered of it is sealed too.
    let done = raw
        .get(&format!("stepup:form-done:{id}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !contains(&done, b"/pay") && !contains(&done, b"\"k\""),
        "sealed"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A bound action on a shared Redis: the ceremony opened through one
/// instance is confirmed through the other, and of eight requests taking
/// its grant at once on both, exactly one gets it. The stored ceremony and
/// grant hold neither the payee nor the amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_taken_once_across_instances() {
    use stepup_challenge::routes::Confirmations;
    use stepup_core::{Action, Policy};
    use stepup_http::{BoundAction, Grants, Opening, Taken};
    use stepup_store::StateStore as _;

    let server = RedisServer::start();
    let (a, b) = (
        Arc::new(instance(&server).await),
        Arc::new(instance(&server).await),
    );
    let (on_a, on_b) = (
        Arc::new(Confirmations::new(a.clone())),
        Arc::new(Confirmations::new(b.clone())),
    );
    let user = alice("s-1");
    let action = BoundAction::new(
        Action::new("payment", "POST", "/pay")
            .unwrap()
            .with_detail("amount", "12000.00")
            .unwrap()
            .with_detail("to", "mallory-the-payee")
            .unwrap(),
        "Send 12,000 to mallory-the-payee".to_owned(),
    );
    let Opening::Opened(id) = on_a
        .open(&user, &action, &Policy::level(2).and(Policy::bound()))
        .await
    else {
        panic!("a ceremony opens");
    };
    let raw = server.store("bank:");
    let stored = raw
        .get(&format!("stepup:action:{id}"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !contains(&stored, b"mallory") && !contains(&stored, b"12000"),
        "sealed"
    );
    // Confirmed on B for A's ceremony (one step-up, made for it).
    b.step_up_totp(Attempt::new(&user).for_action(&id), &code())
        .await
        .unwrap();
    // Another session presenting the id gets nothing, and takes nothing.
    let other = alice("s-2");
    assert_eq!(on_b.take(&other, &action, Some(&id)).await, Taken::Missing);

    let mut racers = tokio::task::JoinSet::new();
    for grants in [on_a, on_b].into_iter().cycle().take(8) {
        let (user, action, id) = (user.clone(), action.clone(), id.clone());
        racers.spawn(async move { grants.take(&user, &action, Some(&id)).await });
    }
    let outcomes = racers.join_all().await;
    let granted = outcomes
        .iter()
        .filter(|t| matches!(t, Taken::Granted(_)))
        .count();
    assert_eq!(granted, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|t| matches!(t, Taken::Granted(_) | Taken::Missing)),
        "{outcomes:?}"
    );
}
