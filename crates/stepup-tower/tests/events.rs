//! One tracing event per decision, never with a token or session id in it.
//! (Its own test binary: tracing caches per-callsite interest process-wide,
//! so tests running without a subscriber would hide events from this one.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use stepup_core::Method as Factor;

/// Collects every field of every tracing event as text.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<String>>);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields<'a>(&'a mut String);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut out = self.0.lock().unwrap();
        out.push_str(event.metadata().target());
        out.push(' ');
        event.record(&mut Fields(&mut out));
        out.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
    let log = recorder.0.lock().unwrap().clone();
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
