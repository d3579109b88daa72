//! Who is logged in: the application's answer, read from the request.

use std::fmt;
use std::marker::PhantomData;

use http::HeaderName;
use http::request::Parts;
use stepup_core::Subject;

/// Tells the layer who is logged in, from the request parts — typically from
/// an extension the application's own login layer inserted.
///
/// Closures `Fn(&Parts) -> Option<Subject>` implement it:
///
/// ```
/// use stepup_core::Subject;
/// use stepup_tower::SubjectSource;
///
/// #[derive(Clone)]
/// struct CurrentUser { id: String, session: String, security_epoch: u64 }
///
/// let source = |parts: &http::request::Parts| {
///     parts.extensions.get::<CurrentUser>().map(|u| {
///         Subject::new(u.id.as_str()).with_session(u.session.as_str()).with_epoch(u.security_epoch)
///     })
/// };
/// # fn is_source(_: impl SubjectSource) {}
/// # is_source(source);
/// ```
///
/// `None` means nobody is logged in: the layer answers with its
/// [`NoSubject`](crate::NoSubject) response and never asks for a step-up.
pub trait SubjectSource: Send + Sync + 'static {
    /// The logged-in subject, if any.
    fn subject(&self, parts: &Parts) -> Option<Subject>;
}

impl<F> SubjectSource for F
where
    F: Fn(&Parts) -> Option<Subject> + Send + Sync + 'static,
{
    fn subject(&self, parts: &Parts) -> Option<Subject> {
        self(parts)
    }
}

/// Reads the subject from a request extension of type `T` that the login
/// layer inserted, converting it with `Into<Subject>` (insert a [`Subject`]
/// itself, or implement `From<&YourUser> for Subject`).
///
/// ```
/// use stepup_core::Subject;
/// use stepup_tower::{FromExtension, SubjectSource};
///
/// let source = FromExtension::<Subject>::new();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(Subject::new("user-1"));
/// let (parts, _) = request.into_parts();
/// assert_eq!(source.subject(&parts).unwrap().id(), "user-1");
/// ```
pub struct FromExtension<T> {
    _type: PhantomData<fn() -> T>,
}

impl<T> FromExtension<T> {
    /// A source reading extension `T`.
    pub fn new() -> Self {
        FromExtension { _type: PhantomData }
    }
}

impl<T> Default for FromExtension<T> {
    fn default() -> Self {
        FromExtension::new()
    }
}

impl<T> Clone for FromExtension<T> {
    fn clone(&self) -> Self {
        FromExtension::new()
    }
}

impl<T> fmt::Debug for FromExtension<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FromExtension<{}>", std::any::type_name::<T>())
    }
}

impl<T> SubjectSource for FromExtension<T>
where
    T: Send + Sync + 'static,
    for<'a> &'a T: Into<Subject>,
{
    fn subject(&self, parts: &Parts) -> Option<Subject> {
        parts.extensions.get::<T>().map(Into::into)
    }
}

/// **Trusts request headers** for the subject: for tests, and for services
/// behind a gateway that authenticates users and sets these headers itself
/// (and strips them from client requests). Never use it where clients can
/// reach the service directly: anyone could claim to be anyone.
///
/// ```
/// use stepup_tower::{SubjectSource, TrustedHeaders};
///
/// let source = TrustedHeaders::dangerously_trust("x-user-id").with_session("x-session-id");
/// let request = http::Request::builder()
///     .header("x-user-id", "user-1")
///     .header("x-session-id", "s-1")
///     .body(())?;
/// let (parts, _) = request.into_parts();
/// let subject = source.subject(&parts).unwrap();
/// assert_eq!((subject.id(), subject.session()), ("user-1", Some("s-1")));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TrustedHeaders {
    user: HeaderName,
    session: Option<HeaderName>,
    epoch: Option<HeaderName>,
}

impl TrustedHeaders {
    /// Reads the user id from header `user` — **trusting whoever sent the
    /// request** (hence the name): only behind a gateway that sets the
    /// header itself and strips it from client requests, or in tests.
    ///
    /// # Panics
    ///
    /// Never at request time; construction panics only on an invalid header
    /// name literal, like `HeaderName::from_static`.
    pub fn dangerously_trust(user: &'static str) -> TrustedHeaders {
        TrustedHeaders {
            user: HeaderName::from_static(user),
            session: None,
            epoch: None,
        }
    }

    /// Also reads the session id from header `session`.
    pub fn with_session(mut self, session: &'static str) -> TrustedHeaders {
        self.session = Some(HeaderName::from_static(session));
        self
    }

    /// Also reads the assurance epoch (a decimal number) from header `epoch`.
    pub fn with_epoch(mut self, epoch: &'static str) -> TrustedHeaders {
        self.epoch = Some(HeaderName::from_static(epoch));
        self
    }
}

impl SubjectSource for TrustedHeaders {
    fn subject(&self, parts: &Parts) -> Option<Subject> {
        let text = |name: &HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
        };
        let mut subject = Subject::new(text(&self.user)?);
        if let Some(name) = &self.session {
            subject = subject.with_session(text(name)?);
        }
        if let Some(name) = &self.epoch {
            subject = subject.with_epoch(text(name)?.parse().ok()?);
        }
        Some(subject)
    }
}
