//! Resuming a form a browser submitted before a step-up: the guard's
//! [`Interruption`] (keep the form, send the browser to the challenge page)
//! and [`Pickup`] (the form coming back from the confirmation page, taken
//! at most once), over a [`Resume`] store the engine implements.
//!
//! The flow, both adapters alike:
//!
//! 1. A same-origin form POST (`application/x-www-form-urlencoded`, at most
//!    [`DEFAULT_STASH_LIMIT`] bytes) that needs a step-up is kept
//!    server-side, bound to the subject and session, under a 128-bit id;
//!    the browser gets `303` to the challenge page, which says what will
//!    happen ("Continue: Send 25 to bob") and returns to the confirmation
//!    page `<mount>/resume?pending=<id>` afterwards.
//! 2. The confirmation page (no script) re-posts the kept fields as hidden
//!    inputs plus the marker field [`RESUME_FIELD`], with a button naming
//!    the action: the application's own middleware and CSRF checks run
//!    again, at the right URL.
//! 3. On arrival the guard takes the kept form (one winner, also across
//!    instances), checks subject, session, method, target and the fields
//!    (byte for byte, in their canonical encoding), strips the marker and
//!    hands the handler [`Resumed`]. A second arrival gets `409` "already
//!    submitted", linking to where the first one went.
//!
//! Anything not kept — another origin, a multipart body, too large, too
//! many pending — gets the challenge page saying "submit the form again
//! afterwards", with a link back to the page the form was on: never JSON,
//! never a silent loss.
//!
//! At most once is what the layer guarantees. Exactly once needs the
//! handler to honour [`Resumed::idempotency_key`] (a repeated key is the
//! same submission).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use stepup_core::{ReturnTo, Subject};

use crate::read::{Header, RequestHead, is_urlencoded_form, same_origin};
use crate::reply::Reply;
use crate::target::ChallengeTarget;

/// The hidden field the confirmation page adds to the re-posted form: its
/// value is the pending id. It must be the form's last field.
pub const RESUME_FIELD: &str = "__stepup_resume";

/// The most bytes a kept form body may have unless configured otherwise.
pub const DEFAULT_STASH_LIMIT: usize = 8 * 1024;

/// Room for the marker field on top of a kept body's limit.
const MARKER_ROOM: usize = 64;

/// A boxed future, for the object-safe [`Resume`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a route says an interrupted form will do, from its fields
/// ("Send 25 to bob"); `None` for the generic "Continue: POST /transfer".
/// Shown escaped.
pub type SummaryFn = dyn Fn(&FormFields) -> Option<String> + Send + Sync;

/// The request extension a handler gets when its request is a resumed
/// form: the same key for the same kept form, so a handler that records
/// it makes the action exactly once.
///
/// ```
/// use stepup_http::Resumed;
/// let resumed = Resumed::new("0123456789abcdef0123456789abcdef");
/// assert_eq!(resumed.idempotency_key, "0123456789abcdef0123456789abcdef");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resumed {
    /// 32 hex digits naming this submission (derived from the pending id,
    /// which it does not reveal).
    pub idempotency_key: String,
}

impl Resumed {
    /// The extension with `idempotency_key`.
    pub fn new(idempotency_key: impl Into<String>) -> Resumed {
        Resumed {
            idempotency_key: idempotency_key.into(),
        }
    }
}

/// The fields of an `application/x-www-form-urlencoded` body, decoded, in
/// order.
///
/// ```
/// use stepup_http::FormFields;
/// let form = FormFields::parse(b"to=bob&amount=25&note=rent+%26+food");
/// assert_eq!(form.get("amount"), Some("25"));
/// assert_eq!(form.get("note"), Some("rent & food"));
/// assert_eq!(form.encode(), "to=bob&amount=25&note=rent+%26+food");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormFields {
    pairs: Vec<(String, String)>,
}

impl FormFields {
    /// Decodes `body` (invalid UTF-8 is replaced, as browsers do).
    pub fn parse(body: &[u8]) -> FormFields {
        FormFields {
            pairs: form_urlencoded::parse(body)
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The fields in `pairs`.
    pub fn from_pairs(pairs: Vec<(String, String)>) -> FormFields {
        FormFields { pairs }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The canonical encoding: what a browser sends for these fields as
    /// hidden inputs (WHATWG `application/x-www-form-urlencoded`).
    pub fn encode(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.pairs.iter())
            .finish()
    }

    /// The fields without the marker, and the marker's value: `Ok(None)`
    /// without a marker, `Err(())` for a marker that is not the one last
    /// field.
    fn split_marker(mut self) -> Result<(FormFields, Option<String>), ()> {
        let markers = self.pairs.iter().filter(|(n, _)| n == RESUME_FIELD).count();
        match markers {
            0 => Ok((self, None)),
            1 if self.pairs.last().is_some_and(|(n, _)| n == RESUME_FIELD) => {
                let id = self.pairs.pop().map(|(_, v)| v);
                Ok((self, id))
            }
            _ => Err(()),
        }
    }
}

/// Why an interrupted form was not kept (the person is asked to submit it
/// again after the step-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotKept {
    /// No [`Resume`] store is configured.
    NoStore,
    /// Not a `POST`.
    Method,
    /// Not from the application's origin.
    CrossSite,
    /// Not `application/x-www-form-urlencoded` (a file upload, say).
    NotUrlencoded,
    /// Larger than the limit (its fields, target and summary together).
    TooLarge,
    /// Posted to a target that is no local path.
    Target,
    /// Too many forms are pending in this session.
    TooMany,
    /// The store did not answer.
    Unavailable,
}

impl NotKept {
    /// The code logged for it.
    pub fn code(self) -> &'static str {
        match self {
            NotKept::NoStore => "no_store",
            NotKept::Method => "method",
            NotKept::CrossSite => "cross_site",
            NotKept::NotUrlencoded => "not_urlencoded",
            NotKept::TooLarge => "too_large",
            NotKept::Target => "target",
            NotKept::TooMany => "too_many",
            NotKept::Unavailable => "unavailable",
        }
    }
}

/// A form to keep: who submitted it, where to, its fields.
#[derive(Debug)]
#[non_exhaustive]
pub struct Interrupted<'a> {
    /// Who submitted it (binding: subject and session).
    pub subject: &'a Subject,
    /// The method (`POST`).
    pub method: &'a str,
    /// Where it was posted: path and query, as sent.
    pub target: &'a str,
    /// The fields, in their canonical encoding ([`FormFields::encode`]).
    pub body: &'a str,
    /// What the route says it will do.
    pub summary: Option<&'a str>,
    /// The page the form was on.
    pub back: &'a ReturnTo,
}

/// What became of a form to keep.
#[derive(Debug)]
pub enum Stashed {
    /// Kept under this id (32 hex digits).
    Pending(String),
    /// Not kept.
    NotKept(NotKept),
}

/// A form that came back with the marker.
#[derive(Debug)]
#[non_exhaustive]
pub struct Arrival<'a> {
    /// Who sent it.
    pub subject: &'a Subject,
    /// Its method.
    pub method: &'a str,
    /// Its path and query.
    pub target: &'a str,
    /// The pending id the marker carries.
    pub id: &'a str,
    /// Its fields without the marker, canonically encoded.
    pub body: &'a str,
}

/// What a form carrying the marker of an earlier kept form, which must
/// step up again, is.
#[derive(Debug)]
pub enum Again {
    /// That form was sent already: answer with this (`409`).
    Sent(Reply),
    /// That form is still kept for this session: step up and confirm it,
    /// never keep a second copy.
    Waiting,
    /// Nothing of this session's under that id: keep the form anew (an
    /// implementation that cannot tell "sent long ago" from "never kept"
    /// answers [`Sent`](Again::Sent) instead, as the engine's does).
    Unknown,
}

/// Keeps interrupted forms and hands each back at most once: implemented
/// by the engine (`stepup-challenge`) over its state store, so kept forms
/// are shared by every instance on a shared store. Object-safe: guards
/// hold it as `Arc<dyn Resume>`.
pub trait Resume: Send + Sync {
    /// The most bytes a kept body may have.
    fn limit(&self) -> usize;

    /// Keeps `form`, unless the session already has too many pending.
    fn stash<'a>(&'a self, form: Interrupted<'a>) -> BoxFuture<'a, Stashed>;

    /// Takes the form `arrival` names (one caller ever gets it) and checks
    /// it is the same submission: the extension for the handler, or the
    /// page to answer with (`409` already submitted or expired, `400`
    /// changed).
    fn arrive<'a>(&'a self, arrival: Arrival<'a>) -> BoxFuture<'a, Result<Resumed, Reply>>;

    /// Notes where the handler sent the browser after the first arrival
    /// (its `Location`), for the page a second arrival gets.
    fn went<'a>(&'a self, id: &'a str, location: &'a str) -> BoxFuture<'a, ()>;

    /// What the kept form `id`, whose confirmation page was submitted
    /// again by a request that must step up first, is for `subject`.
    fn again<'a>(&'a self, subject: &'a Subject, id: &'a str) -> BoxFuture<'a, Again>;
}

/// What an interrupted request offers to keep: the facts the guard read
/// of its head.
struct Offer {
    method_is_post: bool,
    same_origin: bool,
    urlencoded: bool,
    declared: Option<usize>,
}

impl Offer {
    fn read(head: &impl RequestHead, origin: Option<&str>) -> Offer {
        Offer {
            method_is_post: head.method() == "POST",
            same_origin: origin.is_some_and(|o| {
                same_origin(
                    o,
                    head.value(Header::Origin),
                    head.value(Header::SecFetchSite),
                )
            }),
            urlencoded: head
                .value(Header::ContentType)
                .is_some_and(is_urlencoded_form),
            declared: head
                .value(Header::ContentLength)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim().parse().ok()),
        }
    }

    /// Why it cannot be kept, before reading the body.
    fn refusal(&self, resume: Option<&dyn Resume>) -> Option<NotKept> {
        let Some(resume) = resume else {
            return Some(NotKept::NoStore);
        };
        if !self.method_is_post {
            Some(NotKept::Method)
        } else if !self.same_origin {
            Some(NotKept::CrossSite)
        } else if !self.urlencoded {
            Some(NotKept::NotUrlencoded)
        } else if self
            .declared
            .is_some_and(|n| n > resume.limit() + MARKER_ROOM)
        {
            Some(NotKept::TooLarge)
        } else {
            None
        }
    }
}

/// A browser's form submission that needs a step-up first
/// ([`Verdict::Interrupt`](crate::Verdict::Interrupt)). The adapter reads
/// the body when [`body_limit`](Interruption::body_limit) asks for it and
/// answers with [`answer`](Interruption::answer); without a body,
/// [`into_reply`](Interruption::into_reply).
pub struct Interruption {
    resume: Option<Arc<dyn Resume>>,
    summary: Option<Arc<SummaryFn>>,
    target: Arc<ChallengeTarget>,
    subject: Subject,
    method: String,
    path_and_query: String,
    offer: Offer,
    back: ReturnTo,
    reason: &'static str,
    note: Option<String>,
    /// A bound route's action summary.
    action_summary: Option<String>,
    /// A bound action's ceremony id.
    confirmation: Option<String>,
}

impl fmt::Debug for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interruption")
            .field("method", &self.method)
            .field("target", &self.path_and_query)
            .field("back", &self.back)
            .finish_non_exhaustive()
    }
}

/// What the guard hands [`Interruption::new`].
pub(crate) struct Interrupting<'a> {
    pub(crate) resume: Option<Arc<dyn Resume>>,
    pub(crate) summary: Option<Arc<SummaryFn>>,
    pub(crate) target: Arc<ChallengeTarget>,
    pub(crate) subject: Subject,
    pub(crate) reason: &'static str,
    pub(crate) note: Option<Cow<'a, str>>,
    /// A bound route's action summary, for the pages.
    pub(crate) action_summary: Option<String>,
    /// A bound action's ceremony id, for the challenge page.
    pub(crate) confirmation: Option<String>,
}

impl Interruption {
    pub(crate) fn new(head: &impl RequestHead, i: Interrupting<'_>) -> Interruption {
        let offer = Offer::read(head, i.target.origin());
        Interruption {
            back: i.target.return_for(head),
            offer,
            resume: i.resume,
            summary: i.summary,
            subject: i.subject,
            method: head.method().to_owned(),
            path_and_query: head.path_and_query().to_owned(),
            reason: i.reason,
            note: i.note.map(Cow::into_owned),
            target: i.target,
            action_summary: i.action_summary,
            confirmation: i.confirmation,
        }
    }

    /// How many bytes of the body to read (the adapter reads at most one
    /// more, to tell a body over the limit), or `None` when the form
    /// cannot be kept anyway: then answer with
    /// [`into_reply`](Interruption::into_reply).
    pub fn body_limit(&self) -> Option<usize> {
        let resume = self.resume.as_deref()?;
        match self.offer.refusal(Some(resume)) {
            None => Some(resume.limit() + MARKER_ROOM),
            Some(_) => None,
        }
    }

    /// The answer without keeping the form: the challenge page saying
    /// "submit the form again afterwards", returning to the page the form
    /// was on.
    pub fn into_reply(self) -> Reply {
        let why = self
            .offer
            .refusal(self.resume.as_deref())
            .unwrap_or(NotKept::NoStore);
        self.not_kept(why)
    }

    fn not_kept(&self, why: NotKept) -> Reply {
        tracing::info!(target: "stepup", outcome = "not_kept", why = why.code(), "an interrupted form was not kept: the person submits it again");
        let mut location = self.challenge_url(&self.back);
        location.push_str(crate::url::RESUBMIT);
        Reply::see_other(&location)
    }

    /// The challenge page for this request, returning to `return_to`.
    fn challenge_url(&self, return_to: &ReturnTo) -> String {
        let mut url = crate::url::challenge_url(
            self.target.page(),
            return_to,
            self.reason,
            self.note.as_deref(),
        );
        if let Some(id) = &self.confirmation {
            crate::url::add_confirmation(&mut url, id);
        }
        url
    }

    /// Keeps the form whose body the adapter read (`None`: more than
    /// [`body_limit`](Interruption::body_limit) bytes) and answers: `303`
    /// to the challenge page, which returns to the confirmation page; or,
    /// not kept, the [`into_reply`](Interruption::into_reply) answer; or
    /// `409` for a confirmation page submitted again.
    pub async fn answer(self, body: Option<&[u8]>) -> Reply {
        let Some(resume) = self.resume.clone() else {
            return self.into_reply();
        };
        if let Some(why) = self.offer.refusal(Some(&*resume)) {
            return self.not_kept(why);
        }
        let Some(body) = body else {
            return self.not_kept(NotKept::TooLarge);
        };
        let Ok((fields, marker)) = FormFields::parse(body).split_marker() else {
            return self.not_kept(NotKept::NotUrlencoded);
        };
        if let Some(id) = marker {
            match resume.again(&self.subject, &id).await {
                Again::Sent(reply) => return reply,
                // One kept copy only: confirming it is the way on.
                Again::Waiting => return self.to_confirm(&id),
                Again::Unknown => {}
            }
        }
        if ReturnTo::parse(&self.path_and_query).map_or(true, |t| t.as_str() != self.path_and_query)
        {
            return self.not_kept(NotKept::Target);
        }
        // The store decides on the size of what it keeps (fields, target,
        // summary and back path together).
        let encoded = fields.encode();
        // A bound action's summary is what the person confirms.
        let summary = match &self.action_summary {
            Some(summary) => Some(summary.clone()),
            None => self.summary.as_ref().and_then(|f| f(&fields)),
        };
        let stashed = resume
            .stash(Interrupted {
                subject: &self.subject,
                method: &self.method,
                target: &self.path_and_query,
                body: &encoded,
                summary: summary.as_deref(),
                back: &self.back,
            })
            .await;
        match stashed {
            Stashed::Pending(id) => {
                tracing::info!(target: "stepup", outcome = "kept", "an interrupted form was kept until the step-up");
                self.to_confirm(&id)
            }
            Stashed::NotKept(why) => self.not_kept(why),
        }
    }

    /// `303` to the challenge page, returning to the confirmation page of
    /// the kept form `id`.
    fn to_confirm(&self, id: &str) -> Reply {
        match self.target.confirm_page(id) {
            Some(confirm) => Reply::see_other(&self.challenge_url(&confirm)),
            None => self.not_kept(NotKept::Unavailable),
        }
    }
}

/// A form POST on an allowed route that may be a resumed form: the
/// adapter reads its body (at most [`limit`](Pickup::limit) bytes) and
/// asks [`open`](Pickup::open).
pub struct Pickup {
    resume: Arc<dyn Resume>,
    subject: Subject,
    limit: usize,
    same_origin: bool,
}

impl fmt::Debug for Pickup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pickup")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// What the adapter does with a form POST it read.
#[derive(Debug)]
pub enum Opened {
    /// No marker: pass the body on unchanged.
    Pass,
    /// A resumed form: pass on `body` (exactly the fields that were kept
    /// and compared, the marker stripped) with the [`Resumed`] extension;
    /// then tell [`Went`] where the handler sent the browser.
    Resume {
        /// The body to pass on: the fields that were kept and checked,
        /// canonically encoded, without the marker.
        body: String,
        /// The handler's extension.
        resumed: Resumed,
        /// Where the first arrival went, for a second one's page.
        went: Went,
    },
    /// Answer with this instead (`409` already submitted, `400` changed).
    Answer(Reply),
}

/// Records where a resumed form's handler sent the browser.
pub struct Went {
    resume: Arc<dyn Resume>,
    id: String,
}

impl fmt::Debug for Went {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Went").finish_non_exhaustive()
    }
}

impl Went {
    /// The handler answered with `Location: location`.
    pub async fn to(self, location: &str) {
        self.resume.went(&self.id, location).await;
    }
}

impl Pickup {
    /// A pickup when `head` is a form POST within the size a resumed form
    /// can have, `resume` is configured and someone is logged in.
    pub(crate) fn new(
        resume: Option<&Arc<dyn Resume>>,
        origin: Option<&str>,
        head: &impl RequestHead,
        subject: Option<&Subject>,
    ) -> Option<Pickup> {
        let resume = resume?;
        let subject = subject?;
        // An API's JSON POST stops here, after one header lookup.
        let form = head
            .value(Header::ContentType)
            .is_some_and(is_urlencoded_form);
        if head.method() != "POST" || !form {
            return None;
        }
        let offer = Offer::read(head, origin);
        let limit = resume.limit() + MARKER_ROOM;
        // A body declared longer than any kept form can be is none of
        // ours; one without a declared length (chunked) is read, up to the
        // limit, so a browser's re-post is taken however it is framed.
        if offer.declared.is_some_and(|n| n > limit) {
            return None;
        }
        Some(Pickup {
            resume: resume.clone(),
            subject: subject.clone(),
            limit,
            same_origin: offer.same_origin,
        })
    }

    /// The answer when the body could not be read within
    /// [`limit`](Pickup::limit) (a form without a declared length that is
    /// longer, or a broken body): `413`.
    pub fn unreadable(&self) -> Reply {
        Reply::new(413, None, "").no_store()
    }

    /// The most bytes to read.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Looks for the marker in `body` (the request's `method` to `target`)
    /// and, if there is one, takes the kept form.
    pub async fn open(self, method: &str, target: &str, body: &[u8]) -> Opened {
        if memchr::memmem::find(body, RESUME_FIELD.as_bytes()).is_none() {
            return Opened::Pass;
        }
        // The marker is the last field, as the confirmation page writes it.
        let last = match body.iter().rposition(|b| *b == b'&') {
            Some(at) => &body[at + 1..],
            None => body,
        };
        if !last.starts_with(RESUME_FIELD.as_bytes()) || last.get(RESUME_FIELD.len()) != Some(&b'=')
        {
            return Opened::Pass;
        }
        let Ok((fields, Some(id))) = FormFields::parse(body).split_marker() else {
            return Opened::Pass;
        };
        // The confirmation page is ours: its re-post comes from our origin
        // (`Origin: null` with `Sec-Fetch-Site: same-origin` under its
        // referrer policy), whatever the application checks itself.
        if !self.same_origin {
            tracing::warn!(target: "stepup", "a kept form came back from another origin: refused");
            return Opened::Answer(Reply::forbidden());
        }
        let encoded = fields.encode();
        let arrived = self
            .resume
            .arrive(Arrival {
                subject: &self.subject,
                method,
                target,
                id: &id,
                body: &encoded,
            })
            .await;
        match arrived {
            Ok(resumed) => Opened::Resume {
                body: encoded,
                resumed,
                went: Went {
                    resume: self.resume,
                    id,
                },
            },
            Err(reply) => Opened::Answer(reply),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_must_be_the_one_last_field() {
        let (fields, id) = FormFields::parse(b"a=1&__stepup_resume=x")
            .split_marker()
            .unwrap();
        assert_eq!(
            (fields.encode().as_str(), id.as_deref()),
            ("a=1", Some("x"))
        );
        assert!(
            FormFields::parse(b"__stepup_resume=x&a=1")
                .split_marker()
                .is_err()
        );
        assert!(
            FormFields::parse(b"__stepup_resume=x&__stepup_resume=y")
                .split_marker()
                .is_err()
        );
        let (_, none) = FormFields::parse(b"a=1").split_marker().unwrap();
        assert_eq!(none, None);
    }

    /// Counts what it is asked to keep.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Resume for Counting {
        fn limit(&self) -> usize {
            DEFAULT_STASH_LIMIT
        }
        fn stash<'a>(&'a self, _: Interrupted<'a>) -> BoxFuture<'a, Stashed> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async { Stashed::Pending("0".repeat(32)) })
        }
        fn arrive<'a>(&'a self, _: Arrival<'a>) -> BoxFuture<'a, Result<Resumed, Reply>> {
            Box::pin(async { Err(Reply::new(409, None, "")) })
        }
        fn went<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, ()> {
            Box::pin(async {})
        }
        fn again<'a>(&'a self, _: &'a Subject, _: &'a str) -> BoxFuture<'a, Again> {
            Box::pin(async { Again::Unknown })
        }
    }

    struct Post(&'static str);

    impl RequestHead for Post {
        fn method(&self) -> &str {
            "POST"
        }
        fn path_and_query(&self) -> &str {
            self.0
        }
        fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
            let value: Option<&[u8]> = match header {
                Header::Origin => Some(b"https://bank.example"),
                Header::ContentType => Some(b"application/x-www-form-urlencoded"),
                _ => None,
            };
            value.into_iter()
        }
    }

    /// The futures here never wait: poll once.
    fn now<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(out) => out,
            std::task::Poll::Pending => panic!("a test future waited"),
        }
    }

    #[test]
    fn only_forms_posted_to_a_local_path_are_kept() {
        let kept = Arc::new(Counting::default());
        let target = Arc::new(ChallengeTarget::default().with_origin("https://bank.example"));
        let answer = |path: &'static str| {
            let resume: Arc<dyn Resume> = kept.clone();
            let interruption = Interruption::new(
                &Post(path),
                Interrupting {
                    resume: Some(resume),
                    summary: None,
                    target: target.clone(),
                    subject: Subject::new("alice").with_session("s-1"),
                    reason: "no_assurance",
                    note: None,
                    action_summary: None,
                    confirmation: None,
                },
            );
            now(interruption.answer(Some(b"a=1")))
        };
        for path in ["//evil.example/x", "/a/../b", "/x\\y"] {
            let reply = answer(path);
            let to = reply.header_value("location").unwrap();
            assert!(to.ends_with("&resubmit=1"), "{path}: {to}");
        }
        assert_eq!(kept.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        let reply = answer("/pay?x=1");
        assert!(
            reply
                .header_value("location")
                .unwrap()
                .contains("pending%3D")
        );
        assert_eq!(kept.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn encoding_is_what_a_browser_sends() {
        let form = FormFields::from_pairs(vec![
            ("to".into(), "Bob & Co".into()),
            ("memo".into(), "a\r\nb ü*~".into()),
        ]);
        assert_eq!(form.encode(), "to=Bob+%26+Co&memo=a%0D%0Ab+%C3%BC*%7E");
        assert_eq!(FormFields::parse(form.encode().as_bytes()), form);
    }
}
