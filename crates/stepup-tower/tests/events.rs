//! One tracing event per decision, never with a token or session id in it.
//! (Its own test binary: tracing caches per-callsite interest process-wide,
//! so tests running without a subscriber would hide events from this one.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use stepup_core::Method as Factor;

/// Collects every field of every tracing event as text.
use stepup_test_support::Recorder;

#[test]
fn one_event_per_decision_without_secrets() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (token, stale) = tracing::subscriber::with_default(recorder.clone(), || {
        let f = fixture();
        let user = alice();
        let token = f.token(&user, &[Factor::Totp], T0);
        let stale = f.token(&user, &[Factor::Password], T0);
        rt.block_on(async {
            f.run(api(Some(&user), Some(&token))).await;
            f.run(api(Some(&user), Some(&stale))).await;
            f.run(api(None, Some(&token))).await;
        });
        (token, stale)
    });
    let log = recorder.text();
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("stepup ")).collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(lines[0].contains("outcome=\"allow\""), "{log}");
    assert!(
        lines[1].contains("outcome=\"challenge\"") && lines[1].contains("insufficient_level"),
        "{log}"
    );
    assert!(lines[2].contains("outcome=\"no_subject\""), "{log}");
    assert!(
        lines.iter().all(|l| l.contains("level 2 within 5m")),
        "{log}"
    );
    for secret in [token.as_str(), stale.as_str(), "s-1"] {
        assert!(!log.contains(secret), "the log shows {secret}: {log}");
    }
}
