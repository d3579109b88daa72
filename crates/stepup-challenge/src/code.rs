//! One-time codes sent by e-mail or SMS: the channels, the sender the
//! application plugs in (its mailer, an SMS provider), and the senders
//! shipped for tests and local development.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::StoreError;
use crate::i18n::{Catalogue, Lang, Text};

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
    /// The bound action it confirms ("Send 12,000.00 to bob"), when it was
    /// sent for one: the message must say it, so the person confirms
    /// that amount and payee and no other (what [`text`](CodeMessage::text)
    /// writes).
    pub action: Option<&'a str>,
    /// The person's language, from the challenge request
    /// ([`Attempt::in_language`](crate::Attempt::in_language); English
    /// unless told): what [`text`](CodeMessage::text) writes in.
    pub lang: Lang,
}

impl CodeMessage<'_> {
    /// The message to send, in [`lang`](CodeMessage::lang) from the
    /// built-in catalogue: the code, what it confirms when it was sent
    /// for a bound action, and how long it is valid.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_challenge::{Channel, CodeMessage};
    /// use stepup_challenge::i18n::Lang;
    /// let message = CodeMessage {
    ///     channel: Channel::Email,
    ///     destination: "alice@example.com",
    ///     code: "123456",
    ///     valid_for: Duration::from_secs(600),
    ///     action: Some("Send 12,000.00 to bob"),
    ///     lang: Lang::EN,
    /// };
    /// assert_eq!(
    ///     message.text(),
    ///     "Your confirmation code is 123456. It confirms: Send 12,000.00 to bob. \
    ///      It is valid for 10 minutes. If you did not ask for it, do not share it."
    /// );
    /// ```
    pub fn text(&self) -> String {
        self.text_in(&Catalogue::built_in(), self.lang)
    }

    /// [`text`](CodeMessage::text) in `lang`, from `catalogue` (texts
    /// [`Text::CodeMessage`], [`Text::CodeConfirms`], [`Text::Minutes`]):
    /// for a sender with the application's own catalogue, or that knows
    /// its user's language better.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_challenge::i18n::{Catalogue, Lang};
    /// use stepup_challenge::{Channel, CodeMessage};
    /// let message = CodeMessage {
    ///     channel: Channel::Sms,
    ///     destination: "+491701234567",
    ///     code: "12345678",
    ///     valid_for: Duration::from_secs(300),
    ///     action: None,
    ///     lang: Lang::EN,
    /// };
    /// assert_eq!(
    ///     message.text_in(&Catalogue::new(), Lang::DE),
    ///     "Ihr Bestätigungscode lautet 12345678. Er ist 5 Minuten gültig. \
    ///      Wenn Sie ihn nicht angefordert haben, geben Sie ihn nicht weiter."
    /// );
    /// ```
    pub fn text_in(&self, catalogue: &Catalogue, lang: Lang) -> String {
        let minutes = self.valid_for.as_secs().div_ceil(60).max(1);
        let duration = catalogue.minutes(lang, minutes);
        let confirms = match self.action {
            Some(action) => catalogue.format(lang, Text::CodeConfirms, &[("action", &action)]),
            None => String::new(),
        };
        catalogue.format(
            lang,
            Text::CodeMessage,
            &[
                ("code", &self.code),
                ("confirms", &confirms),
                ("duration", &duration),
            ],
        )
    }
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

/// One recorded message: channel, destination, code, whole text.
type Sent = (Channel, String, String, String);

/// Keeps every message it is asked to send, for tests.
#[derive(Clone, Default)]
pub struct RecordingSender {
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl RecordingSender {
    /// A sender that records.
    pub fn new() -> RecordingSender {
        RecordingSender::default()
    }

    /// The last code sent to `destination`.
    pub fn last_code_to(&self, destination: &str) -> Option<String> {
        self.last_to(destination, |(_, _, code, _)| code.clone())
    }

    /// The whole text ([`CodeMessage::text`]) of the last message sent to
    /// `destination`.
    pub fn last_message_to(&self, destination: &str) -> Option<String> {
        self.last_to(destination, |(_, _, _, text)| text.clone())
    }

    fn last_to(&self, destination: &str, part: impl Fn(&Sent) -> String) -> Option<String> {
        self.sent
            .lock()
            .ok()?
            .iter()
            .rev()
            .find(|(_, d, _, _)| d == destination)
            .map(part)
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
            message.text(),
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
        let confirms = match message.action {
            Some(action) => format!(" — it confirms: {action}"),
            None => String::new(),
        };
        eprintln!(
            "[stepup DEVELOPMENT ONLY — InsecureConsoleSender must never run in production] {} code for {}: {} (valid {} s){confirms}",
            message.channel.as_str(),
            message.destination,
            message.code,
            message.valid_for.as_secs()
        );
        Box::pin(async { Ok(()) })
    }
}
