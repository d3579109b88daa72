//! Custom methods: codes checked by the application's factor, and
//! approvals on another device kept in the state store.
//!
//! An approval is two records: the pending approval of a subject and
//! method (`stepup:approval:{subject}:{method}`: its id — the browser's
//! handle —, the session it was started in, a digest of the approve
//! secret, whether it was approved, when it expires, the bound action it
//! was made for) and the approve link (`stepup:approval-link:{digest}`,
//! naming the pending record). Using the link takes it (one winner); the
//! finish takes the approved record (one token).

use std::sync::Arc;
use std::time::Duration;

use stepup_core::{IssuedToken, Method, Subject, Timestamp, ct};

use super::{Attempt, Engine};
use crate::custom::{ApprovalRequest, CustomFactor, CustomKind};
use crate::error::{ChallengeError, no_randomness};
use crate::event::EventKind;
use crate::keys::{StoreKeys, hex};
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// The longest an approval may stay open.
const MAX_APPROVAL_LIFETIME: Duration = Duration::from_secs(600);
/// Approval requests one subject may start per window (pushes are not free,
/// and each one nags the user's phone).
const APPROVAL_STARTS: u64 = 10;
const APPROVAL_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A started approval: the browser's handle and when it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApprovalStarted {
    /// The approval's id (32 hex digits): poll its status and finish with it.
    pub id: String,
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
    /// Expired, used, replaced by a newer one, or never this session's.
    Gone,
}

impl ApprovalState {
    /// `pending`, `approved` or `gone`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
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
}

/// The pending approval, as kept.
struct Pending {
    id: [u8; 16],
    session: [u8; 32],
    secret: [u8; 32],
    approved: bool,
    expires: u64,
    /// The bound action's ceremony id (32 hex digits) and its summary.
    action: Option<(String, String)>,
}

impl Pending {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 32 + 32 + 1 + 8 + 32);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.session);
        out.extend_from_slice(&self.secret);
        out.push(u8::from(self.approved));
        out.extend_from_slice(&self.expires.to_be_bytes());
        if let Some((id, summary)) = &self.action {
            // The id is 32 hex digits: a fixed width before the summary.
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(summary.as_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Pending> {
        if bytes.len() < 89 {
            return None;
        }
        let action = match &bytes[89..] {
            [] => None,
            rest if rest.len() >= 32 => {
                let id = String::from_utf8(rest[..32].to_vec()).ok()?;
                let summary = String::from_utf8(rest[32..].to_vec()).ok()?;
                Some((id, summary))
            }
            _ => return None,
        };
        Some(Pending {
            id: bytes[..16].try_into().ok()?,
            session: bytes[16..48].try_into().ok()?,
            secret: bytes[48..80].try_into().ok()?,
            approved: match bytes[80] {
                0 => false,
                1 => true,
                _ => return None,
            },
            expires: u64::from_be_bytes(bytes[81..89].try_into().ok()?),
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
    /// any earlier one of the subject, and the factor delivers its approve
    /// link (under `base`, the challenge routes' mount path).
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
        let action = match attempt.action {
            Some(id) => Some(
                self.pending_action(subject, id)
                    .await?
                    .ok_or(ChallengeError::NoPendingAction)?,
            ),
            None => None,
        };
        // The finish is the counted attempt (a locked-out user's approval
        // is refused there); starts are rationed here.
        let now = self.clock.now();
        let name = self.keys.subject(subject);
        let starts = self
            .state
            .increment(&StoreKeys::approval_starts(&name, method), APPROVAL_WINDOW)
            .await?;
        if starts > APPROVAL_STARTS {
            self.emit(EventKind::LockedOut, method, subject, None);
            return Err(ChallengeError::LockedOut {
                until: now + APPROVAL_WINDOW,
            });
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(no_randomness)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(no_randomness)?;
        let secret_hex = hex(&secret);
        let digest = self.keys.code_digest(b"stepup approve link", &secret_hex);
        let record = StoreKeys::approval(&name, method);
        let expires_at = now.saturating_add(lifetime);
        let pending = Pending {
            id,
            session: self.keys.session_digest(subject),
            secret: digest,
            approved: false,
            expires: expires_at.as_unix_seconds(),
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
            id: hex(&id),
            expires_at,
        })
    }

    /// The pending approval `id` of `subject`'s session, if it is there.
    async fn pending_approval(
        &self,
        subject: &Subject,
        method: Method,
        id: &str,
    ) -> Result<Option<Pending>, ChallengeError> {
        let record = StoreKeys::approval(&self.keys.subject(subject), method);
        let Some(bytes) = self.state.get(&record).await? else {
            return Ok(None);
        };
        let Some(pending) = Pending::decode(&bytes) else {
            return Ok(None);
        };
        let mine = ct::eq(hex(&pending.id).as_bytes(), id.as_bytes())
            && ct::eq(&pending.session, &self.keys.session_digest(subject));
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
        Ok(match self.pending_approval(subject, method, id).await? {
            Some(p) if p.approved => ApprovalState::Approved,
            Some(_) => ApprovalState::Pending,
            None => ApprovalState::Gone,
        })
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
        }))
    }

    /// Uses the approve link `secret`: the pending approval it names is
    /// approved, once (a second use, an expired or replaced approval:
    /// `false`).
    pub async fn approve(&self, method: Method, secret: &str) -> Result<bool, ChallengeError> {
        let Some((record, mut pending)) = self.approval_of_link(method, secret, true).await? else {
            return Ok(false);
        };
        let now = self.clock.now().as_unix_seconds();
        if pending.approved || now >= pending.expires {
            return Ok(false);
        }
        pending.approved = true;
        let left = Duration::from_secs(pending.expires - now);
        self.state.put(&record, pending.encode(), left).await?;
        Ok(true)
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
        let named = if take {
            self.state.take(&link).await?
        } else {
            self.state.get(&link).await?
        };
        let Some(record) = named.and_then(|r| String::from_utf8(r).ok()) else {
            return Ok(None);
        };
        // The link names a record of this method only.
        if !record.ends_with(&format!(":{}", hex(method.name().as_bytes()))) {
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
            if !pending.approved {
                return Err(ChallengeError::ApprovalPending);
            }
            let sent_for = pending.action.as_ref().map(|(id, _)| id.as_str());
            if sent_for != attempt.action {
                return Err(ChallengeError::NoPendingCeremony);
            }
            self.admit(attempt, method).await?;
            let record = StoreKeys::approval(&self.keys.subject(subject), method);
            match self
                .state
                .take(&record)
                .await?
                .and_then(|b| Pending::decode(&b))
            {
                Some(taken) if taken.approved && ct::eq(&taken.id, &pending.id) => Ok(()),
                _ => Err(ChallengeError::NoPendingCeremony),
            }
        }
        .await;
        if outcome == Err(ChallengeError::ApprovalPending) {
            // Waiting is not a failure.
            return Err(ChallengeError::ApprovalPending);
        }
        self.finish(attempt, method, outcome).await
    }
}
