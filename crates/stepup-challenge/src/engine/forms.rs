//! Forms kept across a step-up: an interrupted form POST is kept (sealed,
//! bound to its sender's subject and session) until the step-up is done,
//! shown on the confirmation page, and taken once when it comes back.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::{ReturnTo, Subject};
use stepup_http::{Arrival, FormFields, Interrupted, NotKept, Resumed, Stashed};

use super::Engine;
use crate::error::StoreError;
use crate::keys::{RecordId, StoreKeys, hex};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How interrupted forms are kept: at most `max_body` bytes (default
/// 8 KiB), for `ttl` (default 5 minutes), at most `per_session` kept per
/// login session within that time (default 3).
///
/// ```
/// use std::time::Duration;
/// use stepup_challenge::FormLimits;
/// let limits = FormLimits::default().max_body(4096).ttl(Duration::from_secs(120)).per_session(2);
/// assert_eq!(limits.max_body_bytes(), 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormLimits {
    max_body: usize,
    ttl: Duration,
    per_session: u64,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            max_body: stepup_http::DEFAULT_STASH_LIMIT,
            ttl: Duration::from_secs(300),
            per_session: 3,
        }
    }
}

impl FormLimits {
    /// The most bytes a kept form's body may have.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long a form is kept.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How many forms one login session may have kept within the `ttl`.
    #[must_use]
    pub fn per_session(mut self, forms: u64) -> Self {
        self.per_session = forms;
        self
    }

    /// The body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// How long a form that came back is remembered, to answer a second
    /// arrival "already submitted".
    fn done_ttl(&self) -> Duration {
        self.ttl.saturating_mul(2)
    }
}

/// Room beyond the body limit for the target, summary and back path of a
/// kept form.
const MAX_EXTRA: usize = 2048;

/// A kept form, as the challenge and confirmation pages show it.
#[derive(Clone, Debug)]
pub struct KeptForm {
    id: String,
    method: String,
    target: String,
    fields: FormFields,
    summary: Option<String>,
    back: ReturnTo,
}

impl KeptForm {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The method it was sent with (`POST`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// Where it was sent: path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Its fields.
    pub fn fields(&self) -> &FormFields {
        &self.fields
    }

    /// What the route says it does ("Send 25 to bob"), else the method
    /// and path ("POST /transfer").
    pub fn action(&self) -> String {
        match &self.summary {
            Some(summary) => summary.clone(),
            None => format!("{} {}", self.method, self.target),
        }
    }

    /// The page the form was on.
    pub fn back(&self) -> &ReturnTo {
        &self.back
    }
}

/// A kept form as stored (sealed).
#[derive(Serialize, Deserialize)]
struct Record {
    /// The sender's session digest (hex).
    s: String,
    m: String,
    t: String,
    b: String,
    u: Option<String>,
    k: String,
}

/// A form that came back.
#[derive(Serialize, Deserialize)]
struct Done {
    s: String,
    k: String,
    w: Option<String>,
}

/// What a form submitted again (a stale confirmation page) is.
#[derive(Debug)]
pub(crate) enum Again {
    /// Sent already.
    Sent {
        went: Option<ReturnTo>,
        back: ReturnTo,
    },
    /// Still kept for this session.
    Waiting,
    /// Nothing of this session's.
    Unknown,
}

/// What became of a form that came back.
#[derive(Debug)]
pub(crate) enum Came {
    /// Taken now: run the handler.
    Resumed(Resumed),
    /// Taken before: it went to `went` (or came from `back`).
    AlreadySent {
        went: Option<ReturnTo>,
        back: ReturnTo,
    },
    /// Not kept (expired, unknown, another session's).
    Expired,
    /// Taken now but not the same submission: nothing runs.
    Changed { back: ReturnTo },
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    fn session_tag(&self, subject: &Subject) -> String {
        hex(&self.keys.session_digest(subject))
    }

    /// Keeps `form` under a fresh id, unless its session has kept
    /// `limits.per_session` forms within the ttl.
    pub(crate) async fn keep_form(&self, limits: &FormLimits, form: Interrupted<'_>) -> Stashed {
        match self.try_keep_form(limits, form).await {
            Ok(stashed) => stashed,
            Err(e) => {
                tracing::warn!(target: "stepup", error = %e, "an interrupted form could not be kept");
                Stashed::NotKept(NotKept::Unavailable)
            }
        }
    }

    async fn try_keep_form(
        &self,
        limits: &FormLimits,
        form: Interrupted<'_>,
    ) -> Result<Stashed, StoreError> {
        // Everything kept counts: the fields, where they go, what the
        // route says of them and the page they came from.
        let size = form.body.len()
            + form.target.len()
            + form.summary.map_or(0, str::len)
            + form.back.as_str().len();
        if size > limits.max_body + MAX_EXTRA {
            return Ok(Stashed::NotKept(NotKept::TooLarge));
        }
        let count = StoreKeys::forms_kept(&self.keys.session(form.subject));
        if self.state.increment(&count, limits.ttl).await? > limits.per_session {
            return Ok(Stashed::NotKept(NotKept::TooMany));
        }
        let Some(id) = RecordId::random() else {
            return Ok(Stashed::NotKept(NotKept::Unavailable));
        };
        let record = Record {
            s: self.session_tag(form.subject),
            m: form.method.to_owned(),
            t: form.target.to_owned(),
            b: form.body.to_owned(),
            u: form.summary.map(str::to_owned),
            k: form.back.as_str().to_owned(),
        };
        let key = StoreKeys::kept_form(&id);
        let sealed = self.seal_json(&key, &record)?;
        self.state.put(&key, sealed, limits.ttl).await?;
        Ok(Stashed::Pending(id.as_str().to_owned()))
    }

    /// `value` as JSON, sealed for the store entry `key`.
    pub(super) fn seal_json(
        &self,
        key: &str,
        value: &impl Serialize,
    ) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(value).map_err(|_| StoreError::new("form", "encode"))?;
        self.keys.seal(key, &plain)
    }

    /// What [`seal_json`](Self::seal_json) made for `key`; `None` for
    /// anything else.
    pub(super) fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        sealed: &[u8],
    ) -> Option<T> {
        let plain = self.keys.open(key, sealed)?;
        serde_json::from_slice(&plain).ok()
    }

    /// The form `id` kept for `subject`'s session, for the pages (it stays
    /// kept): `None` when there is none, it expired, or it is another
    /// session's.
    pub async fn kept_form(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Option<KeptForm>, StoreError> {
        let Some(form_id) = RecordId::parse(id) else {
            return Ok(None);
        };
        let key = StoreKeys::kept_form(&form_id);
        let Some(sealed) = self.state.get(&key).await? else {
            return Ok(None);
        };
        let Some(record) = self.open_json::<Record>(&key, &sealed) else {
            return Ok(None);
        };
        if !stepup_core::ct::eq(record.s.as_bytes(), self.session_tag(subject).as_bytes()) {
            return Ok(None);
        }
        Ok(Some(KeptForm {
            id: id.to_owned(),
            fields: FormFields::parse(record.b.as_bytes()),
            method: record.m,
            target: record.t,
            summary: record.u,
            back: ReturnTo::parse(&record.k).unwrap_or_else(|_| ReturnTo::root()),
        }))
    }

    /// Whether the form `id` came back already, for `subject`'s session:
    /// where it went and where it came from.
    pub(crate) async fn form_sent(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Option<(Option<ReturnTo>, ReturnTo)>, StoreError> {
        let Some(form_id) = RecordId::parse(id) else {
            return Ok(None);
        };
        let key = StoreKeys::form_done(&form_id);
        let Some(sealed) = self.state.get(&key).await? else {
            return Ok(None);
        };
        let Some(done) = self.open_json::<Done>(&key, &sealed) else {
            return Ok(None);
        };
        if !stepup_core::ct::eq(done.s.as_bytes(), self.session_tag(subject).as_bytes()) {
            return Ok(None);
        }
        let went = done.w.and_then(|w| ReturnTo::parse(&w).ok());
        let back = ReturnTo::parse(&done.k).unwrap_or_else(|_| ReturnTo::root());
        Ok(Some((went, back)))
    }

    async fn put_done(
        &self,
        limits: &FormLimits,
        id: &RecordId,
        done: &Done,
    ) -> Result<(), StoreError> {
        let key = StoreKeys::form_done(id);
        let sealed = self.seal_json(&key, done)?;
        self.state.put(&key, sealed, limits.done_ttl()).await
    }

    /// What the kept form `id`, submitted again by a request that must
    /// step up first, is for `subject`'s session.
    pub(crate) async fn form_again(
        &self,
        subject: &Subject,
        id: &str,
    ) -> Result<Again, StoreError> {
        if let Some((went, back)) = self.form_sent(subject, id).await? {
            return Ok(Again::Sent { went, back });
        }
        Ok(match self.kept_form(subject, id).await? {
            Some(_) => Again::Waiting,
            None => Again::Unknown,
        })
    }

    /// Takes the form `arrival` names — one caller ever does — and checks
    /// it is the one kept: same session, method, target and fields. A form
    /// of another session is left where it is (the id alone takes
    /// nothing).
    pub(crate) async fn form_came_back(
        &self,
        limits: &FormLimits,
        arrival: Arrival<'_>,
    ) -> Result<Came, StoreError> {
        let Some(id) = RecordId::parse(arrival.id) else {
            return Ok(Came::Expired);
        };
        let key = StoreKeys::kept_form(&id);
        let session = self.session_tag(arrival.subject);
        let ours = |sealed: &[u8]| {
            self.open_json::<Record>(&key, sealed)
                .filter(|r| stepup_core::ct::eq(r.s.as_bytes(), session.as_bytes()))
        };
        // Read first: only the session that kept it may take it.
        let kept = match self.state.get(&key).await? {
            Some(sealed) => ours(&sealed),
            None => None,
        };
        let taken = match kept {
            Some(_) => self
                .state
                .take(&key)
                .await?
                .and_then(|sealed| ours(&sealed)),
            None => None,
        };
        let Some(record) = taken else {
            if kept.is_none() && self.state.get(&key).await?.is_some() {
                tracing::warn!(target: "stepup", "a kept form was sent back from another session: refused, left for its own");
            }
            return Ok(match self.form_sent(arrival.subject, arrival.id).await? {
                Some((went, back)) => Came::AlreadySent { went, back },
                None => Came::Expired,
            });
        };
        let back = ReturnTo::parse(&record.k).unwrap_or_else(|_| ReturnTo::root());
        let same = record.m == arrival.method
            && record.t == arrival.target
            && stepup_core::ct::eq(record.b.as_bytes(), arrival.body.as_bytes());
        if !same {
            tracing::warn!(target: "stepup", "a kept form came back changed: refused, nothing ran");
            return Ok(Came::Changed { back });
        }
        let done = Done {
            s: session,
            k: record.k,
            w: None,
        };
        self.put_done(limits, &id, &done).await?;
        self.resumed(arrival.subject, arrival.target);
        Ok(Came::Resumed(Resumed::new(self.keys.form_key(id.as_str()))))
    }

    /// Notes that the form `id`, which came back, went to `location`.
    pub(crate) async fn form_went(
        &self,
        limits: &FormLimits,
        id: &str,
        location: &str,
    ) -> Result<(), StoreError> {
        let (Some(id), Ok(went)) = (RecordId::parse(id), ReturnTo::parse(location)) else {
            return Ok(());
        };
        let key = StoreKeys::form_done(&id);
        let Some(sealed) = self.state.get(&key).await? else {
            return Ok(());
        };
        let Some(mut done) = self.open_json::<Done>(&key, &sealed) else {
            return Ok(());
        };
        done.w = Some(went.as_str().to_owned());
        self.put_done(limits, &id, &done).await
    }
}
