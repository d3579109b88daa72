//! Who is logged in, as the application tells it.

use std::fmt;
use std::sync::Arc;

/// The logged-in user a request acts for, as the application's own login
/// tells `stepup`: its id, optionally its session id, and its assurance epoch.
///
/// * The **id** is bound into every token through the MAC; the token itself
///   never carries it, so cookies do not reveal user ids.
/// * The **session id**, when present, binds new tokens to this session: a
///   token copied into another session of the same user is not accepted.
/// * The **epoch** is a number the application stores per user and bumps to
///   revoke every outstanding token at once (logout everywhere, a factor
///   removed, the password changed). Tokens minted under another epoch are
///   refused with [`ChallengeReason::Revoked`](crate::ChallengeReason::Revoked).
///
/// Clones are cheap (reference-counted strings).
///
/// ```
/// use stepup_core::Subject;
///
/// let s = Subject::new("user-42").with_session("sess-9f2c").with_epoch(3);
/// assert_eq!(s.id(), "user-42");
/// assert_eq!(s.session(), Some("sess-9f2c"));
/// assert_eq!(s.epoch(), 3);
/// // Session ids are secrets: Debug does not show them.
/// assert!(!format!("{s:?}").contains("9f2c"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    id: Arc<str>,
    session: Option<Arc<str>>,
    epoch: u64,
}

impl Subject {
    /// A subject with this id, no session binding and epoch 0.
    pub fn new(id: impl Into<Arc<str>>) -> Subject {
        Subject {
            id: id.into(),
            session: None,
            epoch: 0,
        }
    }

    /// Binds tokens issued to this subject to a session id.
    pub fn with_session(mut self, session: impl Into<Arc<str>>) -> Subject {
        self.session = Some(session.into());
        self
    }

    /// Sets the subject's current assurance epoch.
    pub fn with_epoch(mut self, epoch: u64) -> Subject {
        self.epoch = epoch;
        self
    }

    /// The user id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session id, if the application gave one.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The current assurance epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

/// Lets APIs that take a subject by value also take `&Subject` (cloning the
/// reference-counted strings).
impl From<&Subject> for Subject {
    fn from(subject: &Subject) -> Subject {
        subject.clone()
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("id", &self.id)
            .field("session", &self.session.as_ref().map(|_| "[redacted]"))
            .field("epoch", &self.epoch)
            .finish()
    }
}
