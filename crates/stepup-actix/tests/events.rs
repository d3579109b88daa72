//! One tracing event per decision, never with a token or session id in it.
//! (Its own test binary: tracing caches per-callsite interest process-wide.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actix_web::{App, HttpRequest, test as actix_test, web};
use stepup_actix::RequireStepUp;
use stepup_core::{Clock, Gate, Issuer, Key, KeyId, KeyRing, Method, Policy, Proof, Subject};
use stepup_test_support::Recorder;

fn who(request: &HttpRequest) -> Option<Subject> {
    let user = request.headers().get("x-user")?.to_str().ok()?;
    Some(Subject::new(user).with_session("secret-session-7"))
}

#[test]
fn one_event_per_decision_without_secrets() {
    let recorder = Recorder::default();
    let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap());
    let now = stepup_core::SystemClock.now();
    let alice = Subject::new("alice").with_session("secret-session-7");
    let issuer = Issuer::new(&ring);
    let fresh = issuer
        .issue(&alice, Proof::new(Method::Totp, now), None, now)
        .unwrap()
        .into_value();
    let old = now - Duration::from_secs(3000);
    let stale = issuer
        .issue(&alice, Proof::new(Method::Password, old), None, old)
        .unwrap()
        .into_value();
    let gate = Gate::new(&ring);
    tracing::subscriber::with_default(recorder.clone(), || {
        actix_web::rt::System::new().block_on(async {
            let app = actix_test::init_service(
                App::new().service(
                    web::resource("/transfer")
                        .wrap(RequireStepUp::new(
                            gate,
                            Policy::level(2).max_age(Duration::from_secs(300)),
                            who,
                        ))
                        .route(web::post().to(|| async { "sent" })),
                ),
            )
            .await;
            for (user, token) in [
                (Some("alice"), fresh.as_str()),
                (Some("alice"), stale.as_str()),
                (None, fresh.as_str()),
            ] {
                let mut request = actix_test::TestRequest::post()
                    .uri("/transfer")
                    .insert_header(("cookie", format!("__Host-stepup={token}")));
                if let Some(user) = user {
                    request = request.insert_header(("x-user", user));
                }
                actix_test::call_service(&app, request.to_request()).await;
            }
        });
    });
    let log = recorder.text();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("stepup ")).collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].contains("outcome=\"allow\""), "{log}");
    assert!(lines[1].contains("outcome=\"challenge\""), "{log}");
    assert!(lines[2].contains("outcome=\"no_subject\""), "{log}");
    for secret in [fresh.as_str(), stale.as_str(), "secret-session-7"] {
        assert!(!log.contains(secret), "the log shows {secret}: {log}");
    }
}
