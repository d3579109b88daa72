//! [`ChallengeTarget`]: where a challenged request is sent and how the
//! answer is written; [`Reasons`]: the reason sentences the page may show,
//! by identifier; [`Hold`]: what an extractor keeps of a request to answer
//! an in-handler `require` later, exactly as the guard would.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use stepup_core::{Assurance, Challenge, Clock, Method, Policy, ReturnTo, SystemClock, Timestamp};

use crate::reply::Reply;
use crate::url::{challenge_url, valid_note};

/// Where the challenge routes (and so the page) are mounted unless
/// configured otherwise.
pub const DEFAULT_MOUNT: &str = "/step-up";

/// Where, below the mount path, the confirmation page of a kept form is.
pub const CONFIRM_PATH: &str = "/resume";

/// The sentence shown when a policy carries no reason of its own.
pub const GENERIC_REASON: &str = "We need to confirm it's really you before you continue.";

/// A registered reason: its sentence and the methods that can satisfy the
/// policy it came with (empty: any).
pub type Reason = (String, Vec<Method>);

/// The reasons of the policies routes are protected with, by a short
/// identifier the challenge page receives as `why=…`: the page shows
/// configured text only, never text from the request.
///
/// With a reason goes the list of methods that can satisfy the route's
/// policy (empty: no filter), so the page offers only those.
///
/// The identifier is a digest of the reason and its methods, not a
/// registration number: every adapter and every instance gives the same
/// policy the same `why=`, whatever order routes were built or first
/// requested in. Cheap to clone (clones share the table).
///
/// Reasons are configuration: never put request data into a policy's
/// reason (the page would show it to whoever follows the link). The table
/// holds at most [`Reasons::CAPACITY`] reasons; a policy challenged once
/// it is full gets no `why=` (the page shows the generic sentence). The
/// identifier is 96 bits of SHA-256, so no other text can take a
/// reason's place.
///
/// ```
/// use stepup_core::Method;
/// use stepup_http::Reasons;
///
/// let reasons = Reasons::default();
/// let id = reasons.register("Moving money", vec![Method::Totp]);
/// assert_eq!(id, Reasons::default().register("Moving money", vec![Method::Totp]));
/// assert_eq!(reasons.get(&id).map(|r| r.0), Some("Moving money".to_owned()));
/// assert!(Reasons::default().get(&id).is_none(), "only what was registered here");
/// ```
#[derive(Clone, Default)]
pub struct Reasons(Arc<RwLock<HashMap<String, Reason>>>);

impl fmt::Debug for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reasons").finish_non_exhaustive()
    }
}

impl Reasons {
    /// How many reasons a table holds.
    pub const CAPACITY: usize = 1024;

    /// The identifier of `reason` with `methods` (`r` and 24 hex digits),
    /// adding it to the table if new and there is room.
    pub fn register(&self, reason: &str, methods: Vec<Method>) -> String {
        let id = reason_id(reason, &methods);
        self.add(&id, reason, methods);
        id
    }

    /// Adds `id` unless it is known or the table is full; whether the page
    /// can now find it.
    fn add(&self, id: &str, reason: &str, methods: Vec<Method>) -> bool {
        if self.0.read().map(|t| t.contains_key(id)).unwrap_or(false) {
            return true;
        }
        let Ok(mut table) = self.0.write() else {
            return false;
        };
        if table.contains_key(id) {
            return true;
        }
        if table.len() >= Self::CAPACITY {
            tracing::warn!(target: "stepup", capacity = Self::CAPACITY, "reason table full: a challenge goes without its reason");
            return false;
        }
        table.insert(id.to_owned(), (reason.to_owned(), methods));
        true
    }

    /// The identifier of `policy`'s reason, registered, if the table has
    /// (or has room for) it.
    fn registered(&self, policy: &Policy, levels: &stepup_core::LevelTable) -> Option<String> {
        let reason = policy.reason().unwrap_or(GENERIC_REASON);
        let methods = policy.methods(levels);
        let id = reason_id(reason, &methods);
        self.add(&id, reason, methods).then_some(id)
    }

    /// The identifier of `policy`'s reason (or [`GENERIC_REASON`]) with the
    /// methods that can satisfy it under `levels`.
    pub fn register_policy(&self, policy: &Policy, levels: &stepup_core::LevelTable) -> String {
        self.register(
            policy.reason().unwrap_or(GENERIC_REASON),
            policy.methods(levels),
        )
    }

    /// The reason registered under `id`.
    pub fn get(&self, id: &str) -> Option<Reason> {
        self.0.read().ok()?.get(id).cloned()
    }
}

fn reason_id(reason: &str, methods: &[Method]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(reason.as_bytes());
    for m in methods {
        h.update([0]);
        h.update(m.to_string().as_bytes());
    }
    let digest = h.finalize();
    std::iter::once('r')
        .chain(digest[..12].iter().flat_map(|b| {
            let hex = |n: u8| char::from_digit(u32::from(n), 16).unwrap_or('0');
            [hex(b >> 4), hex(b & 15)]
        }))
        .collect()
}

/// Where to step up and where to come back to, the clock, and how the
/// reason reaches the page: everything a challenge answer needs.
///
/// A fixed `note` goes to the page as `why=…`; with a [`Reasons`] table
/// (as [`Settings`](crate::Settings) gives), each challenged policy is
/// registered and its own identifier goes instead.
///
/// ```
/// use stepup_core::ReturnTo;
/// use stepup_http::ChallengeTarget;
///
/// let target = ChallengeTarget::default().with_page("/verify");
/// assert_eq!(target.page().as_str(), "/verify");
/// assert_eq!(target.return_to("/transfer?x=1").as_str(), "/transfer?x=1");
/// assert_eq!(target.return_to("https://evil.example/").as_str(), "/", "refused: the fallback");
/// ```
#[derive(Clone)]
pub struct ChallengeTarget {
    page: ReturnTo,
    fallback: ReturnTo,
    note: Option<String>,
    clock: Arc<dyn Clock>,
    reasons: Option<(Reasons, stepup_core::LevelTable)>,
    origin: Option<String>,
}

impl fmt::Debug for ChallengeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChallengeTarget")
            .field("page", &self.page)
            .field("fallback", &self.fallback)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

impl Default for ChallengeTarget {
    fn default() -> Self {
        ChallengeTarget {
            page: ReturnTo::parse(DEFAULT_MOUNT).unwrap_or_else(|_| ReturnTo::root()),
            fallback: ReturnTo::root(),
            note: None,
            clock: Arc::new(SystemClock),
            reasons: None,
            origin: None,
        }
    }
}

impl ChallengeTarget {
    /// The challenge page at `path`: a local path without a query or
    /// fragment; anything else keeps the current one.
    #[must_use]
    pub fn with_page(mut self, path: &str) -> Self {
        if let Ok(page) = ReturnTo::parse(path)
            && !page.as_str().contains(['?', '#'])
        {
            self.page = page;
        }
        self
    }

    /// Where to return when the request's own path is refused.
    #[must_use]
    pub fn with_fallback(mut self, fallback: ReturnTo) -> Self {
        self.fallback = fallback;
        self
    }

    /// A fixed reason identifier for the page (1–32 of `[A-Za-z0-9_-]`;
    /// anything else is ignored).
    #[must_use]
    pub fn with_note(mut self, note: &str) -> Self {
        if valid_note(note) {
            self.note = Some(note.to_owned());
        }
        self
    }

    /// The clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers every challenged policy in `reasons` (ranked by `levels`)
    /// and sends its identifier to the page.
    #[must_use]
    pub fn with_reasons(mut self, reasons: Reasons, levels: stepup_core::LevelTable) -> Self {
        self.reasons = Some((reasons, levels));
        self
    }

    /// The application's own origin (`https://bank.example`): interrupted
    /// forms from it are kept, and a `Referer` from it names the page to
    /// go back to.
    #[must_use]
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.trim_end_matches('/').to_owned());
        self
    }

    /// The application's origin, if configured.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// Where a browser goes back to after (or instead of) stepping up for
    /// `head`: a `GET`/`HEAD` comes back to itself; another method (a form
    /// POST) to the page it was sent from — the `Referer`'s path when it is
    /// of the configured origin — else the fallback.
    ///
    /// ```
    /// use stepup_http::{ChallengeTarget, Header, RequestHead};
    ///
    /// struct Post(&'static [u8]);
    /// impl RequestHead for Post {
    ///     fn method(&self) -> &str { "POST" }
    ///     fn path_and_query(&self) -> &str { "/transfer" }
    ///     fn values(&self, h: Header) -> impl Iterator<Item = &[u8]> {
    ///         (h == Header::Referer).then_some(self.0).into_iter()
    ///     }
    /// }
    /// let target = ChallengeTarget::default().with_origin("https://bank.example");
    /// assert_eq!(target.return_for(&Post(b"https://bank.example/pay?x=1")).as_str(), "/pay?x=1");
    /// assert_eq!(target.return_for(&Post(b"https://evil.example/pay")).as_str(), "/");
    /// ```
    pub fn return_for(&self, head: &impl crate::RequestHead) -> ReturnTo {
        if matches!(head.method(), "GET" | "HEAD") {
            return self.return_to(head.path_and_query());
        }
        self.referred_from(head.value(crate::Header::Referer))
    }

    /// The page a `Referer` names, when it is of the configured origin;
    /// else the fallback.
    pub fn referred_from(&self, referer: Option<&[u8]>) -> ReturnTo {
        let from_here = self.origin.as_deref().and_then(|origin| {
            let referer = std::str::from_utf8(referer?).ok()?;
            let path = referer.strip_prefix(origin)?;
            path.starts_with('/').then_some(path)
        });
        match from_here {
            Some(path) => self.return_to(path),
            None => self.fallback.clone(),
        }
    }

    /// The confirmation page of the kept form `id`
    /// (`<page>/resume?pending=<id>`), where a challenge for a kept form
    /// returns to.
    ///
    /// ```
    /// use stepup_http::ChallengeTarget;
    /// let target = ChallengeTarget::default();
    /// let confirm = target.confirm_page("0123456789abcdef0123456789abcdef").unwrap();
    /// assert_eq!(confirm.as_str(), "/step-up/resume?pending=0123456789abcdef0123456789abcdef");
    /// assert_eq!(target.pending_in(&confirm), Some("0123456789abcdef0123456789abcdef"));
    /// ```
    pub fn confirm_page(&self, id: &str) -> Option<ReturnTo> {
        let page = self.page.as_str().trim_end_matches('/');
        ReturnTo::parse(&format!("{page}{CONFIRM_PATH}?pending={id}")).ok()
    }

    /// The kept form's id, when `return_to` is a confirmation page.
    pub fn pending_in<'a>(&self, return_to: &'a ReturnTo) -> Option<&'a str> {
        let page = self.page.as_str().trim_end_matches('/');
        return_to
            .as_str()
            .strip_prefix(page)?
            .strip_prefix(CONFIRM_PATH)?
            .strip_prefix("?pending=")
    }

    /// The challenge page.
    pub fn page(&self) -> &ReturnTo {
        &self.page
    }

    /// Where to return when a return path is refused.
    pub fn fallback(&self) -> &ReturnTo {
        &self.fallback
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The time on the clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The validated `path_and_query`, or the fallback.
    pub fn return_to(&self, path_and_query: &str) -> ReturnTo {
        ReturnTo::parse_or(path_and_query, &self.fallback)
    }

    /// The reason identifier for a challenge of `policy`.
    pub fn note_for(&self, policy: Option<&Policy>) -> Option<Cow<'_, str>> {
        match (&self.reasons, policy) {
            (Some((reasons, levels)), Some(policy)) => {
                reasons.registered(policy, levels).map(Cow::Owned)
            }
            _ => self.note.as_deref().map(Cow::Borrowed),
        }
    }

    /// The challenge page URL for `return_to` and a challenge of `policy`.
    pub fn location(
        &self,
        return_to: &ReturnTo,
        challenge: &Challenge,
        policy: Option<&Policy>,
    ) -> String {
        challenge_url(
            &self.page,
            return_to,
            challenge.reason().code(),
            self.note_for(policy).as_deref(),
        )
    }

    /// The answer to a challenge of `policy`: `303` to the page for a
    /// browser navigation, `401` with RFC 9470 and RFC 9457 otherwise.
    pub fn respond(
        &self,
        navigation: bool,
        return_to: &ReturnTo,
        challenge: &Challenge,
        policy: Option<&Policy>,
    ) -> Reply {
        Reply::challenge(
            navigation,
            &self.location(return_to, challenge, policy),
            challenge,
        )
    }

    /// [`respond`](Self::respond) for a browser whose form cannot be kept:
    /// the page asks to submit it again afterwards (`&resubmit=1`).
    pub fn respond_resubmit(
        &self,
        return_to: &ReturnTo,
        challenge: &Challenge,
        policy: Option<&Policy>,
    ) -> Reply {
        let mut location = self.location(return_to, challenge, policy);
        location.push_str(crate::url::RESUBMIT);
        Reply::challenge(true, &location, challenge)
    }
}

/// What an extractor keeps of a request so that a `require` in the handler
/// answers exactly as the guard would: whether it was a navigation, its
/// validated return path, and the target.
#[derive(Clone, Debug)]
pub struct Hold {
    navigation: bool,
    /// A navigation that is not a `GET`/`HEAD`: a form the person must
    /// submit again after stepping up.
    resubmit: bool,
    return_to: ReturnTo,
    target: Arc<ChallengeTarget>,
}

impl Hold {
    /// Holds what `head` says for answers through `target`.
    pub fn new(target: Arc<ChallengeTarget>, head: &impl crate::RequestHead) -> Hold {
        let navigation = crate::read::is_navigation_of(head);
        let resubmit = navigation && !matches!(head.method(), "GET" | "HEAD");
        Hold {
            navigation,
            resubmit,
            // A form goes back to its page; anything else names itself.
            return_to: if resubmit {
                target.return_for(head)
            } else {
                target.return_to(head.path_and_query())
            },
            target,
        }
    }

    /// Checks `policy` against `assurance` now; the refusal carries the
    /// challenge and the answer.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use stepup_core::{Key, KeyId, KeyRing, Method, Policy, Proof, Subject, TokenConfig};
    /// use stepup_http::{ChallengeTarget, Hold, Header, RequestHead};
    ///
    /// struct Get;
    /// impl RequestHead for Get {
    ///     fn method(&self) -> &str { "GET" }
    ///     fn path_and_query(&self) -> &str { "/keys" }
    ///     fn values(&self, _: Header) -> impl Iterator<Item = &[u8]> { std::iter::empty() }
    /// }
    ///
    /// let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let user = Subject::new("u1");
    /// let now = stepup_core::Clock::now(&stepup_core::SystemClock);
    /// let token = tokens.issuer().issue(&user, Proof::new(Method::Password, now), None, now)?;
    /// let assurance = tokens.gate().verify(user, Some(token.value()), now).unwrap();
    ///
    /// let hold = Hold::new(Arc::new(ChallengeTarget::default()), &Get);
    /// let refusal = hold.require(&assurance, &Policy::method(Method::Passkey)).unwrap_err();
    /// assert_eq!(refusal.reply().status(), 401);
    /// assert!(refusal.reply().body().contains("/step-up?return_to=/keys"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A `same_context` term is never met here: the guard compares the
    /// client context for the route's own policy only.
    pub fn require(&self, assurance: &Assurance, policy: &Policy) -> Result<(), Box<Refusal>> {
        assurance
            .require(policy, self.target.now())
            .map_err(|challenge| self.refuse(challenge, Some(policy)))
    }

    /// The refusal for `challenge` of `policy`.
    pub fn refuse(&self, challenge: Challenge, policy: Option<&Policy>) -> Box<Refusal> {
        let reply = if self.resubmit {
            self.target
                .respond_resubmit(&self.return_to, &challenge, policy)
        } else {
            self.target
                .respond(self.navigation, &self.return_to, &challenge, policy)
        };
        Box::new(Refusal { challenge, reply })
    }

    /// The target.
    pub fn target(&self) -> &Arc<ChallengeTarget> {
        &self.target
    }
}

/// A step-up the request must do first: the challenge and the answer.
#[derive(Clone, Debug)]
pub struct Refusal {
    challenge: Challenge,
    reply: Reply,
}

impl Refusal {
    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The answer to write.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }

    /// The answer, owned.
    pub fn into_reply(self) -> Reply {
        self.reply
    }
}
