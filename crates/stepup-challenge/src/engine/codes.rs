//! One-time codes by e-mail or SMS: sending (rationed) and step-ups.

use std::time::Duration;

use stepup_core::{
    IssuedToken,
    ct::{self, Comparison},
};

use super::events::Reason;
use super::{Attempt, Engine};
use crate::code::{Channel, CodeMessage};
use crate::error::{ChallengeError, StoreError, no_randomness};
use crate::event::EventKind;
use crate::keys::{StoreKeys, hex};
#[cfg(doc)]
use crate::limiter::AttemptLimits;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// How one-time codes by e-mail or SMS are made and rationed.
#[derive(Clone, Debug)]
pub struct CodeSettings {
    digits: u8,
    valid_for: Duration,
    sends_per_subject: u64,
    sends_per_address: u64,
    send_window: Duration,
}

impl Default for CodeSettings {
    /// 6 digits, valid 10 minutes; at most 5 sends per subject and 20 per
    /// client address in 15 minutes.
    fn default() -> Self {
        CodeSettings {
            digits: 6,
            valid_for: Duration::from_secs(600),
            sends_per_subject: 5,
            sends_per_address: 20,
            send_window: Duration::from_secs(900),
        }
    }
}

impl CodeSettings {
    /// Digits per code, 6 to 8 (clamped).
    pub fn digits(mut self, digits: u8) -> Self {
        self.digits = digits.clamp(6, 8);
        self
    }

    /// How long a code stays valid, 1 to 10 minutes (clamped).
    pub fn valid_for(mut self, valid_for: Duration) -> Self {
        self.valid_for = valid_for.clamp(Duration::from_secs(60), Duration::from_secs(600));
        self
    }

    /// Sends allowed per subject and per client address within `window`.
    pub fn send_limits(mut self, per_subject: u32, per_address: u32, window: Duration) -> Self {
        self.sends_per_subject = u64::from(per_subject.max(1));
        self.sends_per_address = u64::from(per_address.max(1));
        self.send_window = window.max(Duration::from_secs(1));
        self
    }
}

/// A code was sent: what the client needs to verify it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeSent {
    /// The challenge the code belongs to: send it back with the code.
    pub challenge_id: String,
    /// The channel.
    pub channel: Channel,
    /// Where it went, masked (`a•••e@example.com`, `•••• 1234`).
    pub destination_hint: String,
    /// When the code stops being valid.
    pub expires_at: stepup_core::Timestamp,
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Sends a one-time code on `channel` to the subject's registered address
    /// (never one from the request). A new send replaces any earlier code;
    /// sends are rationed per subject and per client address.
    pub async fn send_code(
        &self,
        attempt: Attempt<'_>,
        channel: Channel,
    ) -> Result<CodeSent, ChallengeError> {
        let method = channel.method();
        let subject = attempt.subject;
        let sender = self
            .sender
            .as_ref()
            .ok_or(ChallengeError::NotEnrolled(method))?;
        let destination = self
            .factors
            .code_destination(subject, channel)
            .await?
            .ok_or(ChallengeError::NotEnrolled(method))?;
        // Sent for a bound action: the message names it, and the code
        // confirms that action only.
        let action = self.action_of(attempt).await?;
        let now = self.clock.now();
        let key = self.keys.subject(subject);
        let sends = self
            .state
            .increment(&StoreKeys::code_sends(&key), self.codes.send_window)
            .await?;
        if sends > self.codes.sends_per_subject {
            self.emit(
                EventKind::LockedOut,
                method,
                subject,
                Some(Reason::SendLimit),
            );
            return Err(ChallengeError::LockedOut {
                until: now + self.codes.send_window,
            });
        }
        if let Some(address) = self.address_key(attempt) {
            let n = self
                .state
                .increment(
                    &StoreKeys::code_sends_from(&address),
                    self.codes.send_window,
                )
                .await?;
            if n > self.codes.sends_per_address {
                return Err(ChallengeError::LockedOut {
                    until: now + self.codes.send_window,
                });
            }
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(no_randomness)?;
        let code = random_digits(self.codes.digits)?;
        let mut record = id.to_vec();
        record.extend_from_slice(&self.keys.session_digest(subject));
        record.extend_from_slice(&self.keys.code_digest(&id, &code));
        if let Some(action) = &action {
            record.extend_from_slice(action.id().as_bytes());
        }
        let slot = StoreKeys::code(&key, channel);
        self.state.put(&slot, record, self.codes.valid_for).await?;
        let message = CodeMessage {
            channel,
            destination: &destination,
            code: &code,
            valid_for: self.codes.valid_for,
            action: action.as_ref().map(|a| a.summary()),
            lang: attempt.lang,
        };
        if let Err(e) = sender.send(message).await {
            // Not delivered: forget it, so nothing waits for a code nobody has.
            let _ = self.state.remove(&slot).await;
            self.emit(EventKind::Failed, method, subject, Some(Reason::Send));
            return Err(e.into());
        }
        self.method_started(subject, method);
        Ok(CodeSent {
            challenge_id: hex(&id),
            channel,
            destination_hint: mask(&destination, channel),
            expires_at: now + self.codes.valid_for,
        })
    }

    /// Steps up with a one-time code sent by [`send_code`](Engine::send_code):
    /// it must be the latest code for this subject, in this session, for this
    /// challenge, unexpired and unused. After a few wrong guesses
    /// ([`AttemptLimits::wrong_guesses_per_code`]) the code is void.
    pub async fn step_up_code(
        &self,
        attempt: Attempt<'_>,
        channel: Channel,
        challenge_id: &str,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let method = channel.method();
        let outcome = async {
            let digits = usize::from(self.codes.digits);
            if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ChallengeError::Format("enter the code we sent you"));
            }
            let name = self.keys.subject(attempt.subject);
            let slot = StoreKeys::code(&name, channel);
            let record = self
                .state
                .get(&slot)
                .await?
                .ok_or(ChallengeError::NoPendingCode)?;
            // id, session, code digest, and the action's ceremony id when
            // the code was sent for one.
            if record.len() != 16 + 32 + 32 && record.len() != 16 + 32 + 32 + 32 {
                return Err(ChallengeError::NoPendingCode);
            }
            let (id, rest) = record.split_at(16);
            let (session, rest) = rest.split_at(32);
            let (digest, sent_for) = rest.split_at(32);
            // A code sent for one action confirms that action only; a
            // code sent for none confirms no action.
            let same_action = match (attempt.action, sent_for.is_empty()) {
                (None, true) => true,
                (Some(action), false) => ct::eq(action.as_bytes(), sent_for),
                _ => false,
            };
            if !same_action {
                return Err(ChallengeError::NoPendingCode);
            }
            let same_challenge = ct::eq_as(
                Comparison::ChallengeId,
                hex(id).as_bytes(),
                challenge_id.as_bytes(),
            );
            let same_session = ct::eq_as(
                Comparison::SessionDigest,
                session,
                &self.keys.session_digest(attempt.subject),
            );
            if !same_challenge || !same_session {
                // Not this challenge or session: no guess, not counted.
                return Err(ChallengeError::NoPendingCode);
            }
            let admitted = self.admit(attempt, method).await?;
            // Counted before comparing, so racing guesses cannot exceed the
            // code's allowance.
            let guesses = self
                .state
                .increment(
                    &StoreKeys::code_guesses(&name, channel, id),
                    self.codes.valid_for,
                )
                .await?;
            if guesses > self.limits.code_guesses {
                self.state.remove(&slot).await?;
                return Err(ChallengeError::NoPendingCode);
            }
            if !ct::eq_as(
                Comparison::CodeDigest,
                digest,
                &self.keys.code_digest(id, code),
            ) {
                if guesses == self.limits.code_guesses {
                    // Void: a new code must be sent (and sends are rationed).
                    self.state.remove(&slot).await?;
                }
                return Err(ChallengeError::Wrong {
                    few_left: admitted.few_left,
                });
            }
            // Single use: of two racing right answers, one takes the code.
            match self.state.take(&slot).await? {
                Some(taken) if ct::eq_as(Comparison::PendingRecord, &taken, &record) => Ok(()),
                _ => Err(ChallengeError::AlreadyUsed),
            }
        }
        .await;
        self.finish(attempt, method, outcome).await
    }
}

/// `digits` decimal digits, uniform (rejection sampling from 32-bit draws).
fn random_digits(digits: u8) -> Result<String, StoreError> {
    let modulus = 10u32.pow(u32::from(digits));
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let mut raw = [0u8; 4];
        getrandom::fill(&mut raw).map_err(no_randomness)?;
        let n = u32::from_be_bytes(raw);
        if n < limit {
            return Ok(format!(
                "{:0width$}",
                n % modulus,
                width = usize::from(digits)
            ));
        }
    }
}

/// Shows where a code went without showing the whole address.
fn mask(destination: &str, channel: Channel) -> String {
    match channel {
        Channel::Email => match destination.split_once('@') {
            Some((local, domain)) => {
                let first = local.chars().next().unwrap_or('•');
                format!("{first}•••@{domain}")
            }
            None => "•••".to_owned(),
        },
        Channel::Sms => {
            let digits: Vec<char> = destination.chars().filter(char::is_ascii_digit).collect();
            let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
            format!("•••• {tail}")
        }
    }
}
