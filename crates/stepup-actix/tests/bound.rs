//! Bound routes on actix-web, over real HTTP on 127.0.0.1: the middleware
//! reads the body once and hands the handler the `BoundAction`; a grant is
//! for its route (two routes with the same spec are two actions) and used
//! once; a bound GET reads its query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;

use actix_web::{App, HttpRequest, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup_actix::StepUp;
use stepup_challenge::{Engine, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore};
use stepup_core::{Key, KeyId, KeyRing, Policy, Subject, TokenConfig};
use stepup_http::{ActionSpec, BoundAction, Normalise};

const ORIGIN: &str = "https://bank.example";

fn who(request: &HttpRequest) -> Option<Subject> {
    let user = request.headers().get("x-user")?.to_str().ok()?;
    Some(Subject::new(user).with_session("s-1"))
}

fn thing() -> ActionSpec {
    ActionSpec::builder("thing")
        .field("a", Normalise::Trimmed)
        .summary("Do {a}")
        .build()
        .unwrap()
}

/// What the handler was given: the route and the values, never the body.
async fn echo(action: web::ReqData<BoundAction>) -> String {
    let details: Vec<String> = action
        .action()
        .details()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    format!("{} {}", action.action().route(), details.join("&"))
}

#[actix_web::test]
async fn a_grant_is_for_its_route_and_used_once() {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[6u8; 32]).unwrap(),
    ));
    let engine = Engine::new(
        config.issuer(),
        MemoryFactorStore::new(),
        MemoryStateStore::default(),
    )
    .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]));
    let stepup = StepUp::new(engine, who, ORIGIN);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let bound = || {
            stepup
                .require(Policy::level(1).and(Policy::bound()))
                .bind(thing())
        };
        App::new()
            .configure(|c| stepup.configure(c))
            .service(
                web::resource("/bound/one")
                    .wrap(bound())
                    .route(web::post().to(echo)),
            )
            .service(
                web::resource("/bound/two")
                    .wrap(bound())
                    .route(web::post().to(echo)),
            )
            .service(
                web::resource("/keys/reveal")
                    .wrap(
                        stepup.require(Policy::level(1).and(Policy::bound())).bind(
                            ActionSpec::builder("reveal_key")
                                .query_field("key", Normalise::Exact)
                                .build()
                                .unwrap(),
                        ),
                    )
                    .route(web::get().to(echo)),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let post = |path: &str, grant: Option<&str>| {
        let mut r = http
            .post(format!("{base}{path}"))
            .header("x-user", "alice")
            .header("origin", ORIGIN)
            .json(&json!({"a": "x"}));
        if let Some(g) = grant {
            r = r.header("stepup-grant", g);
        }
        r.send()
    };
    let r = post("/bound/one", None).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["authorization_details"][0]["route"], "/bound/one");
    let confirmation = problem["confirmation"].as_str().unwrap().to_owned();
    let r = http
        .post(format!("{base}/step-up/password"))
        .header("x-user", "alice")
        .header("origin", ORIGIN)
        .json(&json!({"password": "wonderland", "confirmation": confirmation}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["grant"], confirmation);

    let r = post("/bound/two", Some(&confirmation)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "another route");
    let r = post("/bound/one", Some(&confirmation)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "/bound/one a=x");
    let r = post("/bound/one", Some(&confirmation)).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "once");

    // A bound GET: the query field is the action.
    let r = http
        .get(format!("{base}/keys/reveal?key=k-1"))
        .header("x-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(
        problem["authorization_details"][0]["details"],
        json!({"key": "k-1"})
    );
    let r = http
        .get(format!("{base}/keys/reveal"))
        .header("x-user", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "the key is missing");
    handle.stop(true).await;
}
