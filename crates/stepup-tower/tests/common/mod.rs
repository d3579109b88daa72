//! Fixtures shared by the layer's integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::COOKIE;
use http::request::Parts;
use http::{Method, Request, Response};
use stepup_core::{
    Assurance, Gate, Issuer, Key, KeyId, KeyRing, Method as Factor, Policy, Proof, Subject,
    TestClock, Timestamp, TokenConfig,
};
use stepup_tower::{RequireStepUpLayer, TrustedHeaders};
use tower::{Layer, ServiceExt, service_fn};

pub const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);
pub const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

pub struct Fixture {
    pub issuer: Issuer,
    pub layer: RequireStepUpLayer<TrustedHeaders>,
    pub clock: TestClock,
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn fixture_with(policy: Policy) -> Fixture {
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let clock = TestClock::new(T0);
    let layer = RequireStepUpLayer::new(config.gate(), policy, subjects()).clock(clock.clone());
    Fixture {
        issuer: config.issuer(),
        layer,
        clock,
    }
}

/// A fixture whose layer chooses the policy per request; `choose` gets the
/// gate (to compare client contexts, say) and returns the chooser.
pub fn fixture_per_request<F>(choose: impl FnOnce(Gate) -> F) -> Fixture
where
    F: Fn(&Parts, Option<&Assurance>) -> Arc<Policy> + Send + Sync + 'static,
{
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[9u8; 32]).unwrap());
    let config = TokenConfig::new(ring);
    let clock = TestClock::new(T0);
    let gate = config.gate();
    let layer = RequireStepUpLayer::per_request(gate.clone(), choose(gate), subjects())
        .clock(clock.clone());
    Fixture {
        issuer: config.issuer(),
        layer,
        clock,
    }
}

pub fn fixture() -> Fixture {
    fixture_with(
        Policy::level(2)
            .max_age(secs(300))
            .with_reason("We need to confirm it's really you before moving money."),
    )
}

pub fn subjects() -> TrustedHeaders {
    TrustedHeaders::dangerously_trust("x-user")
        .with_session("x-session")
        .with_epoch("x-epoch")
}

pub fn alice() -> Subject {
    Subject::new("alice").with_session("s-1").with_epoch(1)
}

impl Fixture {
    pub fn token(&self, subject: &Subject, methods: &[Factor], at: Timestamp) -> String {
        let mut prev: Option<String> = None;
        for m in methods {
            let t = self
                .issuer
                .issue(subject, Proof::new(*m, at), prev.as_deref(), at)
                .unwrap();
            prev = Some(t.into_value());
        }
        prev.unwrap()
    }

    /// Runs one request through the layer over a handler that reports the
    /// assurance it received; returns the response and whether the handler ran.
    pub async fn run(&self, request: Request<axum::body::Body>) -> (Response<String>, bool) {
        let ran = Arc::new(Mutex::new(false));
        let seen = ran.clone();
        let inner = service_fn(move |req: Request<axum::body::Body>| {
            let seen = seen.clone();
            async move {
                *seen.lock().unwrap() = true;
                let level = req.extensions().get::<Assurance>().map(|a| a.level());
                Ok::<_, Infallible>(Response::new(format!("handler ran, level {level:?}")))
            }
        });
        let response = self.layer.layer(inner).oneshot(request).await.unwrap();
        let ran = *ran.lock().unwrap();
        (response, ran)
    }
}

pub fn request(method: Method, uri: &str, who: Option<&Subject>) -> http::request::Builder {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(s) = who {
        b = b
            .header("x-user", s.id())
            .header("x-session", s.session().unwrap())
            .header("x-epoch", s.epoch().to_string());
    }
    b
}

pub fn api(who: Option<&Subject>, cookie: Option<&str>) -> Request<axum::body::Body> {
    let mut b = request(Method::POST, "/transfer", who).header("accept", "application/json");
    if let Some(c) = cookie {
        b = b.header(
            COOKIE,
            format!("theme=dark; __Host-stepup={c}; _ga=GA1.2.3"),
        );
    }
    b.body(axum::body::Body::empty()).unwrap()
}

pub fn problem(response: &Response<String>) -> serde_json::Value {
    serde_json::from_str(response.body()).unwrap()
}
