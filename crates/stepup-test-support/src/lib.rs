//! Helpers shared by the stepup crates' tests. Not published.

use std::fmt;
use std::sync::{Arc, Mutex};

/// A `tracing` subscriber that records every event — target and every field —
/// as one line of text, so tests can assert what was (and was not) logged.
///
/// Run code under it with `tracing::subscriber::with_default`. Keep such a
/// test alone in its test binary: tracing caches per-callsite interest
/// process-wide, so callsites first hit by other tests without a subscriber
/// would stay silent.
#[derive(Clone, Default, Debug)]
pub struct Recorder(Arc<Mutex<String>>);

impl Recorder {
    /// Everything recorded so far.
    pub fn text(&self) -> String {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

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
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        if let Ok(mut out) = self.0.lock() {
            out.push_str(event.metadata().target());
            out.push(' ');
            event.record(&mut Fields(&mut out));
            out.push('\n');
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
