//! Behind a reverse proxy every request comes from the proxy's socket: the
//! challenge routes must take the client's address the application gives
//! (`ClientAddress` in the request extensions) before `peer_addr`, or every
//! user shares one per-address budget and one of them can spend it for all.
//! Over real HTTP, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, TcpListener};
use std::time::Duration;

use actix_web::dev::Service as _;
use actix_web::{App, HttpMessage, HttpRequest, HttpServer};
use reqwest::StatusCode;
use stepup_actix::{ClientAddress, StepUp};
use stepup_challenge::{
    AttemptLimits, Engine, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore,
};
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};

const ORIGIN: &str = "https://bank.example";

fn who(request: &HttpRequest) -> Option<Subject> {
    let user = request.headers().get("x-user")?.to_str().ok()?;
    Some(Subject::new(user).with_session("s-1"))
}

#[actix_web::test]
async fn clients_behind_one_proxy_do_not_share_the_address_budget() {
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_800_000_000));
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
    let stepup = StepUp::new(engine, who, ORIGIN);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/step-up/password", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            // Stands in for the application's trusted-proxy middleware: the
            // address its own proxy wrote (here a test header).
            .wrap_fn(|request, service| {
                let client = request
                    .headers()
                    .get("x-test-client")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<IpAddr>().ok());
                if let Some(ip) = client {
                    request.extensions_mut().insert(ClientAddress(ip));
                }
                service.call(request)
            })
            .configure(|c| stepup.configure(c))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    // Every request comes from the same socket peer (127.0.0.1, "the proxy").
    let http = reqwest::Client::new();
    let attempt = |user: &str, password: &str, client: &str| {
        http.post(&url)
            .header("x-user", user)
            .header("origin", ORIGIN)
            .header("x-test-client", client)
            .json(&serde_json::json!({ "password": password }))
            .send()
    };
    let status = |r: Result<reqwest::Response, reqwest::Error>| r.unwrap().status();
    assert_eq!(
        status(attempt("alice", "wrong", "203.0.113.7").await),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(attempt("alice", "wrong", "203.0.113.7").await),
        StatusCode::BAD_REQUEST
    );
    // 203.0.113.7 has spent its budget: refused whoever it asks for …
    assert_eq!(
        status(attempt("bob", "builder", "203.0.113.7").await),
        StatusCode::TOO_MANY_REQUESTS
    );
    // … while another client behind the same proxy is not.
    assert_eq!(
        status(attempt("bob", "builder", "198.51.100.20").await),
        StatusCode::OK
    );
    handle.stop(false).await;
}
