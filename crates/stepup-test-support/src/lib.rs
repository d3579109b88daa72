//! Helpers shared by the stepup crates' tests. Not published.

pub mod postgres;

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

/// The request the adapter benchmarks send: a logged-in subject with long,
/// realistic ids, and a ~500-byte `Cookie` header holding a valid assurance
/// cookie (password 15 min ago, TOTP 4 min ago, passkey 30 s ago) among a
/// dozen other cookies.
pub fn bench_request(
    config: &stepup_core::TokenConfig,
) -> Result<(stepup_core::Subject, String), stepup_core::IssueError> {
    use std::time::Duration;
    use stepup_core::{Clock, Method, Proof, Subject, SystemClock};

    let subject = Subject::new("6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31")
        .with_session("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw");
    let now = SystemClock.now();
    let mut token: Option<String> = None;
    for (method, ago) in [
        (Method::Password, 900),
        (Method::Totp, 240),
        (Method::Passkey, 30),
    ] {
        let at = now - Duration::from_secs(ago);
        let issued =
            config
                .issuer()
                .issue(&subject, Proof::new(method, at), token.as_deref(), at)?;
        token = Some(issued.into_value());
    }
    let token = token.unwrap_or_default();
    let cookie = format!(
        "_ga=GA1.2.1234567890.1700000000; _gid=GA1.2.987654321.1700000000; theme=dark; \
         lang=en-GB; consent=analytics%3Dfalse%26ads%3Dfalse; session=0123456789abcdef0123456789abcdef; \
         csrftoken=Zx7Qw1Lp9Ks3Vb5Nm8Jh2Gf4Dd6Ss0Aa1Qq3Ww5Ee7Rr9Tt1Yy3Uu5Ii7Oo9Pp; \
         __Host-stepup={token}; recent=%5B%22acct-1%22%2C%22acct-2%22%2C%22acct-3%22%5D; \
         tz=Europe%2FBerlin; sidebar=collapsed; ab_test=checkout-v2%3Avariant-b; last_seen=1700000000"
    );
    Ok((subject, cookie))
}
