//! Custom methods: codes checked by the application's factor, and
//! approvals on another device kept in the state store.
//!
//! An approval is three records: the pending approval of a login session
//! and method (`stepup:approval:{subject}:{method}:{session}`: its id — the browser's
//! handle —, the session it was started in, a digest of the approve
//! secret, when it expires, where it was asked from, the bound action it
//! was made for), the approve link (`stepup:approval-link:{digest}`,
//! naming the pending record) and, once answered, `stepup:approval-ok:{id}`
//! (approved, or refused for a wrong number). Using the link takes it (one
//! winner) and writes the third; the finish takes that (one token).
//! No record is read, changed and written back, so a start, an approval
//! and a finish racing each other cannot lose one another's writes.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::{IssuedToken, Method, Subject, Timestamp, ct};

use super::events::Reason;
use super::{Attempt, Engine};
use crate::custom::{ApprovalRequest, CustomFactor, CustomKind};
use crate::error::{ChallengeError, no_randomness};
use crate::event::{EventKind, NoticeKind};
use crate::keys::{StoreKeys, hex};
use crate::limiter;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// The longest an approval may stay open.
const MAX_APPROVAL_LIFETIME: Duration = Duration::from_secs(600);
/// Approval requests one subject may start per window (pushes are not free,
/// and each one nags the user's phone)…
const APPROVAL_STARTS: u64 = 20;
/// …and one session of the subject: a stolen session uses up its own
/// budget, not the user's.
const APPROVAL_SESSION_STARTS: u64 = 5;
const APPROVAL_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong numbers (refused approvals) after which a subject's approvals of
/// a method are suspended, and for how long they are remembered: pushes
/// from a stolen session end after three refusals, not after a lockout
/// the wrong numbers would have to outpace.
const WRONG_NUMBERS: u64 = 3;
const WRONG_NUMBER_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A started approval: the browser's handle, the number to show, and when
/// it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalStarted {
    /// The approval's id (32 hex digits): poll its status and finish with it.
    pub id: String,
    /// The number the person types on the other device (10–99): show it
    /// in the browser that asked, and nowhere else.
    pub number: u8,
    /// When it expires.
    pub expires_at: Timestamp,
}

/// Where an approval stands, for the page that waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApprovalState {
    /// Not approved yet.
    Pending,
    /// Approved on the other device: finish it.
    Approved,
    /// Refused on the other device (a wrong number): void.
    Refused,
    /// Expired, used, replaced by a newer one, or never this session's.
    Gone,
}

impl ApprovalState {
    /// `pending`, `approved`, `refused` or `gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Refused => "refused",
            ApprovalState::Gone => "gone",
        }
    }
}

/// What an approve link says about the step-up it approves.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalShown {
    /// The method's page title.
    pub title: String,
    /// What the step-up confirms, for a bound action.
    pub action: Option<String>,
    /// Where the request came from: the browser family of its
    /// `User-Agent` ([`browser_family`](stepup_http::browser_family):
    /// `chrome`, `firefox`, …, `other`, `none`).
    pub browser: String,
    /// …and its network (`198.51.100.0/24`), when the address was known.
    pub network: Option<String>,
}

/// What using an approve link did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Approval {
    /// Approved: the browser that asked continues.
    Approved,
    /// The number typed is not the one the browser that asked shows: the
    /// approval is void (someone else may have asked).
    WrongNumber,
    /// The link was used before, expired, or its approval was replaced.
    Gone,
}

/// The pending approval, as kept.
struct Pending {
    id: [u8; 16],
    session: [u8; 32],
    secret: [u8; 32],
    expires: u64,
    /// Where it was asked from: the browser family and the network.
    browser: String,
    network: String,
    /// The subject's id, sealed under the record's key: the approve
    /// link, which knows no subject, tells the application whose approval
    /// was refused.
    subject: Vec<u8>,
    /// The bound action's ceremony id (32 hex digits) and its summary.
    action: Option<(String, String)>,
}

/// The other device's answers, kept at `stepup:approval-ok:{id}`.
const APPROVED: &[u8] = b"1";
const REFUSED: &[u8] = b"0";

/// The fixed part of a kept [`Pending`]: id, session, secret, expiry.
const PENDING_FIXED: usize = 16 + 32 + 32 + 8;

impl Pending {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PENDING_FIXED + 80);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.expires.to_be_bytes());
        for short in [&self.browser, &self.network] {
            // Both are short ASCII (a family name, a prefix): cut at 255.
            let bytes = &short.as_bytes()[..short.len().min(255)];
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        // A sealed id is never near 64 KiB (ids are bounded far below).
        let sealed = &self.subject[..self.subject.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(sealed.len() as u16).to_be_bytes());
        out.extend_from_slice(sealed);
        if let Some((id, summary)) = &self.action {
            // The id is 32 hex digits: a fixed width before the summary.
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(summary.as_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Pending> {
        let (fixed, mut rest) = bytes.split_at_checked(PENDING_FIXED)?;
        let mut short = || {
            let (&len, tail) = rest.split_first()?;
            let (text, tail) = tail.split_at_checked(usize::from(len))?;
            rest = tail;
            String::from_utf8(text.to_vec()).ok()
        };
        let browser = short()?;
        let network = short()?;
        let (len, tail) = rest.split_at_checked(2)?;
        let (subject, tail) =
            tail.split_at_checked(usize::from(u16::from_be_bytes([len[0], len[1]])))?;
        let subject = subject.to_vec();
        rest = tail;
        let action = match rest {
            [] => None,
            rest if rest.len() >= 32 => {
                let id = String::from_utf8(rest[..32].to_vec()).ok()?;
                let summary = String::from_utf8(rest[32..].to_vec()).ok()?;
                Some((id, summary))
            }
            _ => return None,
        };
        Some(Pending {
            id: fixed[..16].try_into().ok()?,
            session: fixed[16..48].try_into().ok()?,
            secret: fixed[48..80].try_into().ok()?,
            expires: u64::from_be_bytes(fixed[80..88].try_into().ok()?),
            browser,
            network,
            subject,
            action,
        })
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Adds the application's own method: policies, level tables and tokens
    /// name it by [`CustomFactor::method`]; the challenge routes offer it
    /// to users it says are enrolled, under the same attempt limits,
    /// events and origin check as the built-in methods. A second factor
    /// for the same method replaces the first; a built-in method is
    /// ignored.
    pub fn with_custom_factor(mut self, factor: impl CustomFactor) -> Self {
        let method = factor.method();
        if !method.is_custom() {
            tracing::error!(target: "stepup::challenge", method = %method, "a custom factor must name a custom method: ignored");
            return self;
        }
        if matches!(factor.kind(), CustomKind::Approval { .. })
            && self.issuer.levels().level_of(&[method]) >= 3
        {
            // NIST SP 800-63B reserves aal3 for phishing-resistant,
            // hardware-bound authenticators; a push approval is neither.
            tracing::warn!(target: "stepup::challenge", method = %method, "an approval method reaches level 3 in the level table: a push approval is not phishing-resistant");
        }
        self.custom.retain(|f| f.method() != method);
        self.custom.push(Arc::new(factor));
        self
    }

    /// The custom factor of `method`, if the application added one.
    pub fn custom_factor(&self, method: Method) -> Option<&Arc<dyn CustomFactor>> {
        self.custom.iter().find(|f| f.method() == method)
    }

    /// Every custom factor, in the order added.
    pub fn custom_factors(&self) -> &[Arc<dyn CustomFactor>] {
        &self.custom
    }

    fn custom_of(&self, method: Method) -> Result<&Arc<dyn CustomFactor>, ChallengeError> {
        self.custom_factor(method)
            .ok_or(ChallengeError::NotEnrolled(method))
    }

    /// Steps up with `code` for the custom method `method` (a
    /// [`CustomKind::Code`] factor): counted, then checked by the factor.
    pub async fn step_up_custom_code(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            let factor = self.custom_of(method)?;
            let CustomKind::Code { max_len } = factor.kind() else {
                return Err(ChallengeError::NotEnrolled(method));
            };
            let code = code.trim();
            if code.is_empty() || code.len() > usize::from(max_len.min(64)) {
                return Err(ChallengeError::Format("enter the code"));
            }
            if !factor.enrolled(attempt.subject).await? {
                return Err(ChallengeError::NotEnrolled(method));
            }
            // Counted first; the factor is asked only once admitted.
            let admitted = self.admit(attempt, method).await?;
            if factor.verify(attempt.subject, code).await? {
                Ok(())
            } else {
                Err(ChallengeError::Wrong {
                    few_left: admitted.few_left,
                })
            }
        }
        .await;
        self.finish(attempt, method, outcome).await
    }

    /// Starts an approval of the custom method `method` (a
    /// [`CustomKind::Approval`] factor): a new pending approval replaces
    /// any earlier one of the same login session, and the factor delivers
    /// its approve link (under `base`, the challenge routes' mount path).
    /// Refused, with nothing sent, while the method is locked out or
    /// disabled, after three refused approvals within a day, and past 5
    /// starts per session or 20 per subject in 15 minutes.
    pub async fn start_approval(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        base: &str,
    ) -> Result<ApprovalStarted, ChallengeError> {
        let subject = attempt.subject;
        let factor = self.custom_of(method)?.clone();
        let CustomKind::Approval { lifetime } = factor.kind() else {
            return Err(ChallengeError::NotEnrolled(method));
        };
        let lifetime = lifetime.clamp(Duration::from_secs(10), MAX_APPROVAL_LIFETIME);
        if !factor.enrolled(subject).await? {
            return Err(ChallengeError::NotEnrolled(method));
        }
        let action = self.action_of(attempt).await?;
        // The finish is the counted attempt; nothing is pushed to the
        // phone of a user who is locked out or whose method is disabled
        // (read only: a start counts no attempt).
        let now = self.clock.now();
        let name = self.keys.subject(subject);
        let address = self.address_key(attempt);
        limiter::blocked(
            &self.state,
            &self.limiter_keys(subject, method),
            address.as_ref(),
            now,
        )
        .await?;
        // Suspended after too many refusals (a wrong number each).
        if let Some(until) = self
            .state
            .get(&StoreKeys::approval_suspended(&name, method))
            .await?
            .and_then(|n| String::from_utf8(n).ok()?.parse::<u64>().ok())
        {
            return Err(ChallengeError::LockedOut {
                until: Timestamp::from_unix_seconds(until),
            });
        }
        // Starts are rationed per session and per subject. A lockout's
        // `until` is the latest it can end (the window from now).
        let session = self.keys.session_digest(subject);
        let budgets = [
            (
                StoreKeys::approval_session_starts(&name, method, &session),
                APPROVAL_SESSION_STARTS,
            ),
            (StoreKeys::approval_starts(&name, method), APPROVAL_STARTS),
        ];
        if let Err(locked) = self.ration(&budgets, APPROVAL_WINDOW).await {
            if matches!(locked, ChallengeError::LockedOut { .. }) {
                self.emit(EventKind::LockedOut, method, subject, None);
            }
            return Err(locked);
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(no_randomness)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(no_randomness)?;
        let secret_hex = hex(&secret);
        let digest = self.keys.code_digest(b"stepup approve link", &secret_hex);
        let record = StoreKeys::approval(&name, method, &session);
        let expires_at = now.saturating_add(lifetime);
        let pending = Pending {
            id,
            session,
            secret: digest,
            expires: expires_at.as_unix_seconds(),
            browser: stepup_http::browser_family(attempt.user_agent).to_owned(),
            network: attempt
                .address
                .map(|ip| stepup_http::network_prefix(ip, 24, 48))
                .unwrap_or_default(),
            subject: self.keys.seal(&record, subject.id().as_bytes())?,
            action: action
                .as_ref()
                .map(|a| (a.id().to_owned(), a.summary().to_owned())),
        };
        self.state.put(&record, pending.encode(), lifetime).await?;
        self.state
            .put(
                &StoreKeys::approval_link(&digest),
                record.clone().into_bytes(),
                lifetime,
            )
            .await?;
        let approve_url = format!(
            "{}/custom/{}/approve?secret={secret_hex}",
            base.trim_end_matches('/'),
            method.name()
        );
        let request = ApprovalRequest {
            subject,
            approve_url,
            expires_at,
            action: action.as_ref().map(|a| a.summary()),
            browser: &pending.browser,
            network: Some(pending.network.as_str()).filter(|n| !n.is_empty()),
        };
        if let Err(e) = factor.request_approval(request).await {
            // Not delivered: forget it, so nothing waits for it.
            let _ = self.state.remove(&record).await;
            let _ = self.state.remove(&StoreKeys::approval_link(&digest)).await;
            self.emit(EventKind::Failed, method, subject, None);
            return Err(e.into());
        }
        self.method_started(subject, method);
        Ok(ApprovalStarted {
            number: self.approval_number(&id),
            id: hex(&id),
            expires_at,
        })
    }

    /// The number of the approval `id`, keyed so only the server knows
    /// it before the browser that asked shows it.
    fn approval_number(&self, id: &[u8; 16]) -> u8 {
        let digest = self.keys.code_digest(b"stepup approval number", &hex(id));
        // 10..=99: always two digits (the bias of the modulo is 0.1 %).
        10 + (u16::from_be_bytes([digest[0], digest[1]]) % 90) as u8
    }

    /// The number `subject`'s pending approval `id` shows in the browser
    /// that asked (`None` when it is not this session's, or gone).
    pub async fn approval_number_of(
        &self,
        subject: &Subject,
        method: Method,
        id: &str,
    ) -> Result<Option<u8>, ChallengeError> {
        Ok(self
            .pending_approval(subject, method, id)
            .await?
            .map(|p| self.approval_number(&p.id)))
    }

    /// The pending approval `id` of `subject`'s session, if it is there.
    async fn pending_approval(
        &self,
        subject: &Subject,
        method: Method,
        id: &str,
    ) -> Result<Option<Pending>, ChallengeError> {
        let session = self.keys.session_digest(subject);
        let record = StoreKeys::approval(&self.keys.subject(subject), method, &session);
        let Some(bytes) = self.state.get(&record).await? else {
            return Ok(None);
        };
        let Some(pending) = Pending::decode(&bytes) else {
            return Ok(None);
        };
        let mine = ct::eq(hex(&pending.id).as_bytes(), id.as_bytes())
            && ct::eq(&pending.session, &session);
        let live = self.clock.now().as_unix_seconds() < pending.expires;
        Ok((mine && live).then_some(pending))
    }

    /// Where `subject`'s approval `id` stands (for the page's polling).
    pub async fn approval_state(
        &self,
        subject: &Subject,
        method: Method,
        id: &str,
    ) -> Result<ApprovalState, ChallengeError> {
        let Some(pending) = self.pending_approval(subject, method, id).await? else {
            return Ok(ApprovalState::Gone);
        };
        Ok(match self.answer(&pending).await? {
            Some(true) => ApprovalState::Approved,
            Some(false) => ApprovalState::Refused,
            None => ApprovalState::Pending,
        })
    }

    /// The other device's answer to `pending`: approved (`true`), refused
    /// with a wrong number (`false`), or none yet.
    async fn answer(&self, pending: &Pending) -> Result<Option<bool>, ChallengeError> {
        Ok(self
            .state
            .get(&StoreKeys::approval_ok(&pending.id))
            .await?
            .map(|answer| answer == APPROVED))
    }

    /// What the approve link `secret` approves, without using it (the page
    /// on the other device shows it before asking once more).
    pub async fn approval_shown(
        &self,
        method: Method,
        secret: &str,
    ) -> Result<Option<ApprovalShown>, ChallengeError> {
        let Some((_, pending)) = self.approval_of_link(method, secret, false).await? else {
            return Ok(None);
        };
        let title = self
            .custom_factor(method)
            .map(|f| f.title().to_owned())
            .unwrap_or_default();
        Ok(Some(ApprovalShown {
            title,
            // What the person approves: the summary, never the id.
            action: pending.action.map(|(_, summary)| summary),
            browser: pending.browser,
            network: Some(pending.network).filter(|n| !n.is_empty()),
        }))
    }

    /// Uses the approve link `secret` with the `number` the person typed
    /// (the one the browser that asked shows): the link is used up either
    /// way; the right number approves, once; a wrong one voids the
    /// approval, so a request the person did not make cannot be approved
    /// by tapping through.
    pub async fn approve(
        &self,
        method: Method,
        secret: &str,
        number: &str,
    ) -> Result<Approval, ChallengeError> {
        let Some((record, pending)) = self.approval_of_link(method, secret, true).await? else {
            return Ok(Approval::Gone);
        };
        let now = self.clock.now().as_unix_seconds();
        if now >= pending.expires {
            return Ok(Approval::Gone);
        }
        let expected = self.approval_number(&pending.id).to_string();
        let right = ct::eq(number.trim().as_bytes(), expected.as_bytes());
        // The answer is a key of its own: a start or a finish racing with
        // it never loses it, and it is written once (the link was taken).
        let left = Duration::from_secs(pending.expires - now);
        let answer = if right { APPROVED } else { REFUSED };
        self.state
            .put(&StoreKeys::approval_ok(&pending.id), answer.to_vec(), left)
            .await?;
        if right {
            return Ok(Approval::Approved);
        }
        // A wrong number: counted in a budget of its own (three a day, then
        // no more approvals: a stolen session's pushes end there), never in
        // the budgets of the other methods (a leaked link must not cost the
        // user a TOTP attempt), and told to the application — an event and
        // a notice naming the user, who may want to end other sessions.
        if let Some((name, _)) = StoreKeys::approval_of(&record) {
            let refusals = self
                .state
                .increment(
                    &StoreKeys::approval_wrong(&name, method),
                    WRONG_NUMBER_WINDOW,
                )
                .await?;
            if let Some(id) = self
                .keys
                .open(&record, &pending.subject)
                .and_then(|id| String::from_utf8(id.to_vec()).ok())
            {
                let subject = Subject::new(id);
                self.emit(
                    EventKind::Failed,
                    method,
                    &subject,
                    Some(Reason::WrongNumber),
                );
                if refusals == WRONG_NUMBERS {
                    self.emit(
                        EventKind::LockedOut,
                        method,
                        &subject,
                        Some(Reason::WrongNumber),
                    );
                }
                self.notify(NoticeKind::ApprovalRefused, method, &subject, None);
            }
            if refusals >= WRONG_NUMBERS {
                let until = self.clock.now() + WRONG_NUMBER_WINDOW;
                self.state
                    .put(
                        &StoreKeys::approval_suspended(&name, method),
                        until.as_unix_seconds().to_string().into_bytes(),
                        WRONG_NUMBER_WINDOW,
                    )
                    .await?;
            }
        }
        Ok(Approval::WrongNumber)
    }

    /// The pending approval the link `secret` names (taking the link when
    /// `take`): its record key and contents.
    async fn approval_of_link(
        &self,
        method: Method,
        secret: &str,
        take: bool,
    ) -> Result<Option<(String, Pending)>, ChallengeError> {
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let digest = self.keys.code_digest(b"stepup approve link", secret);
        let link = StoreKeys::approval_link(&digest);
        let Some(record) = self
            .state
            .get(&link)
            .await?
            .and_then(|r| String::from_utf8(r).ok())
        else {
            return Ok(None);
        };
        // The link names a record of this method only (checked before it
        // is used up: posted to another method's route, it stays).
        match StoreKeys::approval_of(&record) {
            Some((_, named)) if named == hex(method.name().as_bytes()) => {}
            _ => return Ok(None),
        }
        if take && self.state.take(&link).await?.as_deref() != Some(record.as_bytes()) {
            // Another request used it first.
            return Ok(None);
        }
        let Some(pending) = self
            .state
            .get(&record)
            .await?
            .and_then(|b| Pending::decode(&b))
        else {
            return Ok(None);
        };
        if !ct::eq(&pending.secret, &digest) {
            return Ok(None);
        }
        Ok(Some((record, pending)))
    }

    /// Finishes `subject`'s approval `id`: once it was approved, the
    /// attempt is counted and the approval taken (one token); before, the
    /// answer is [`ChallengeError::ApprovalPending`], nothing counted.
    pub async fn finish_approval(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        id: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let subject = attempt.subject;
        let outcome = async {
            let factor = self.custom_of(method)?;
            // A device removed since the start approves nothing.
            if !factor.enrolled(subject).await? {
                return Err(ChallengeError::NotEnrolled(method));
            }
            let Some(pending) = self.pending_approval(subject, method, id).await? else {
                return Err(ChallengeError::NoPendingCeremony);
            };
            match self.answer(&pending).await? {
                None => return Err(ChallengeError::ApprovalPending),
                Some(false) => return Err(ChallengeError::ApprovalRefused),
                Some(true) => {}
            }
            let sent_for = pending.action.as_ref().map(|(id, _)| id.as_str());
            if sent_for != attempt.action {
                return Err(ChallengeError::NoPendingCeremony);
            }
            self.admit(attempt, method).await?;
            // One finish takes the approval (one token); the record goes
            // with it unless a newer start replaced it meanwhile.
            if self
                .state
                .take(&StoreKeys::approval_ok(&pending.id))
                .await?
                .as_deref()
                != Some(APPROVED)
            {
                return Err(ChallengeError::NoPendingCeremony);
            }
            let session = self.keys.session_digest(subject);
            let record = StoreKeys::approval(&self.keys.subject(subject), method, &session);
            if let Some(kept) = self
                .state
                .get(&record)
                .await?
                .and_then(|b| Pending::decode(&b))
                && ct::eq(&kept.id, &pending.id)
            {
                self.state.remove(&record).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e @ (ChallengeError::ApprovalPending | ChallengeError::ApprovalRefused)) =
            outcome
        {
            // Waiting is not a failure; a refusal was counted (and told)
            // when the wrong number was typed.
            return Err(e);
        }
        self.finish(attempt, method, outcome).await
    }
}
