//! Where one-time codes go.

use stepup_core::Method;

/// Where a one-time code goes: the channel of a subject's registered code
/// destination ([`FactorStore::code_destination`](crate::FactorStore::code_destination)).
///
/// ```
/// use stepup_core::Method;
/// use stepup_store::Channel;
///
/// assert_eq!(Channel::parse("sms"), Some(Channel::Sms));
/// assert_eq!(Channel::Email.as_str(), "email");
/// assert_eq!(Channel::Email.method(), Method::EmailCode);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// By e-mail.
    Email,
    /// By SMS.
    Sms,
}

impl Channel {
    /// The step-up method a code on this channel proves.
    pub fn method(self) -> Method {
        match self {
            Channel::Email => Method::EmailCode,
            Channel::Sms => Method::SmsCode,
        }
    }

    /// `email` or `sms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    /// Parses `email` or `sms`.
    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}
