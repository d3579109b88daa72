//! One-time codes sent by e-mail or SMS: the channels, the sender the
//! application plugs in (its mailer, an SMS provider), and the senders
//! shipped for tests and local development.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::StoreError;

pub use stepup_store::Channel;

/// One code to deliver. `Debug` does not show the code.
#[derive(Clone, Copy)]
pub struct CodeMessage<'a> {
    /// The channel.
    pub channel: Channel,
    /// The subject's registered address on that channel.
    pub destination: &'a str,
    /// The code.
    pub code: &'a str,
    /// How long it stays valid.
    pub valid_for: Duration,
}

impl fmt::Debug for CodeMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeMessage")
            .field("channel", &self.channel)
            .field("code", &"[redacted]")
            .field("valid_for", &self.valid_for)
            .finish_non_exhaustive()
    }
}

/// A boxed future, so senders can be stored behind `dyn`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

/// Delivers one-time codes: the application's mailer or SMS provider.
/// An error means the code was not sent; the engine then forgets it.
pub trait CodeSender: Send + Sync + 'static {
    /// Sends `message`.
    fn send<'a>(&'a self, message: CodeMessage<'a>) -> SendFuture<'a>;
}

/// Keeps every message it is asked to send, for tests.
#[derive(Clone, Default)]
pub struct RecordingSender {
    sent: Arc<Mutex<Vec<(Channel, String, String)>>>,
}

impl RecordingSender {
    /// A sender that records.
    pub fn new() -> RecordingSender {
        RecordingSender::default()
    }

    /// The last code sent to `destination`.
    pub fn last_code_to(&self, destination: &str) -> Option<String> {
        self.sent
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|(_, d, _)| d == destination)
            .map(|(_, _, c)| c.clone())
    }

    /// How many messages were sent.
    pub fn count(&self) -> usize {
        self.sent.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl fmt::Debug for RecordingSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordingSender({} sent, [redacted])", self.count())
    }
}

impl CodeSender for RecordingSender {
    fn send<'a>(&'a self, message: CodeMessage<'a>) -> SendFuture<'a> {
        let entry = (
            message.channel,
            message.destination.to_owned(),
            message.code.to_owned(),
        );
        Box::pin(async move {
            self.sent
                .lock()
                .map_err(|_| StoreError::new("sender", "the recording sender's lock is poisoned"))?
                .push(entry);
            Ok(())
        })
    }
}

/// **For local development only**: prints each code to standard error,
/// saying loudly that this is no way to deliver codes.
#[derive(Clone, Copy, Debug, Default)]
pub struct InsecureConsoleSender;

impl CodeSender for InsecureConsoleSender {
    fn send<'a>(&'a self, message: CodeMessage<'a>) -> SendFuture<'a> {
        eprintln!(
            "[stepup DEVELOPMENT ONLY — InsecureConsoleSender must never run in production] {} code for {}: {} (valid {} s)",
            message.channel.as_str(),
            message.destination,
            message.code,
            message.valid_for.as_secs()
        );
        Box::pin(async { Ok(()) })
    }
}
