//! The engine: one object an adapter calls to run a challenge.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use stepup_core::{Clock, IssuedToken, Issuer, Method, Proof, Subject, SystemClock};

use crate::code::{Channel, CodeMessage, CodeSender};
use crate::error::{ChallengeError, StoreError};
use crate::event::{Event, EventKind, EventSink};
use crate::limiter::{self, AttemptLimits, Keys};
use crate::recovery::{self, RecoveryCode};
use crate::secret::TotpSecret;
use crate::store::{FactorStore, PasswordVerifier, StateStore};
use crate::totp::TotpConfig;

/// How long an enrollment waits to be confirmed with a first code.
const ENROLLMENT_TTL: Duration = Duration::from_secs(10 * 60);

/// Who is stepping up, from where, with which previous token.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    subject: &'a Subject,
    previous: Option<&'a str>,
    address: Option<IpAddr>,
    context: Option<&'a [u8]>,
}

impl<'a> Attempt<'a> {
    /// An attempt by `subject`.
    pub fn new(subject: &'a Subject) -> Attempt<'a> {
        Attempt {
            subject,
            previous: None,
            address: None,
            context: None,
        }
    }

    /// The assurance token the client presented: its still-fresh proofs are
    /// kept in the new one.
    pub fn previous_token(mut self, token: Option<&'a str>) -> Self {
        self.previous = token;
        self
    }

    /// The client's address, for the per-address attempt budget.
    pub fn from_address(mut self, address: IpAddr) -> Self {
        self.address = Some(address);
        self
    }

    /// The client context to record in the token (see
    /// [`Issuer::issue_in_context`]).
    pub fn in_context(mut self, context: &'a [u8]) -> Self {
        self.context = Some(context);
        self
    }
}

/// A password check for engines without one: every password step-up is
/// "not enrolled".
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPasswords;

impl PasswordVerifier for NoPasswords {
    async fn verify(&self, _: &Subject, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    fn is_configured(&self) -> bool {
        false
    }
}

/// A TOTP enrollment waiting for its first code: show the QR code (or the
/// URI, or the base-32 secret for manual entry), then call
/// [`Engine::confirm_totp_enrollment`]. `Debug` is redacted.
pub struct TotpEnrollment {
    uri: String,
    qr_png: Vec<u8>,
    key: String,
}

impl TotpEnrollment {
    /// The `otpauth://totp/…` URI (it contains the secret: show it only to
    /// the user, never log it).
    pub fn otpauth_uri(&self) -> &str {
        &self.uri
    }

    /// The URI as a PNG QR code.
    pub fn qr_png(&self) -> &[u8] {
        &self.qr_png
    }

    /// The secret in base 32, for users who type it into their app instead
    /// of scanning (show it only to the user, never log it).
    pub fn manual_entry_key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrollment([redacted])")
    }
}

/// Runs challenges: checks the attempt limiter, verifies the factor, records
/// the proof (or refuses a replay), emits an event and issues the new
/// assurance token — or returns a [`ChallengeError`] the adapter can show.
///
/// Generic over the application's [`FactorStore`], the [`StateStore`] and the
/// [`PasswordVerifier`]; all calls are `async` so the stores may be remote.
///
/// ```
/// use std::time::Duration;
/// use stepup_challenge::{Attempt, Engine, MemoryFactorStore, MemoryStateStore, TotpConfig, TotpSecret};
/// use stepup_core::*;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
/// let ring = KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?);
/// let config = TokenConfig::new(ring);
/// let engine = Engine::new(
///     config.issuer(),
///     MemoryFactorStore::new(),
///     MemoryStateStore::new(clock.clone()),
/// )
/// .with_clock(clock.clone())
/// .with_totp(TotpConfig::new("Example Bank"));
/// let user = Subject::new("alice").with_session("s-1");
///
/// // Enroll: show the QR code, confirm with a first code from the app.
/// let enrollment = engine.start_totp_enrollment(&user, "alice@example.com").await?;
/// assert!(enrollment.otpauth_uri().starts_with("otpauth://totp/"));
/// // (Here the test plays the authenticator app, which got the key.)
/// let secret = TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
/// let code = engine.totp_config().code_at(&secret, clock.now().as_unix_seconds())?;
/// engine.confirm_totp_enrollment(Attempt::new(&user), &code).await?;
///
/// // Later: step up with the next code, then pass a level-2 policy.
/// clock.advance(Duration::from_secs(60));
/// let code = engine.totp_config().code_at(&secret, clock.now().as_unix_seconds())?;
/// let token = engine.step_up_totp(Attempt::new(&user), &code).await?;
/// let policy = Policy::level(2).max_age(Duration::from_secs(300));
/// assert!(matches!(
///     config.gate().check(&user, Some(token.value()), &policy, clock.now()),
///     Decision::Allow(_)
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Engine<F, S, P = NoPasswords> {
    issuer: Issuer,
    factors: F,
    state: S,
    passwords: P,
    totp: TotpConfig,
    limits: AttemptLimits,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventSink>>,
    event_key: [u8; 32],
    sender: Option<Arc<dyn CodeSender>>,
    codes: CodeSettings,
    #[cfg(feature = "passkey")]
    passkeys: Option<Arc<crate::passkey::Passkeys>>,
}

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

impl<F, S, P> fmt::Debug for Engine<F, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("totp", &self.totp)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<F: FactorStore, S: StateStore> Engine<F, S, NoPasswords> {
    /// An engine issuing with `issuer`, reading factors from `factors` and
    /// keeping short-lived state in `state`.
    pub fn new(issuer: Issuer, factors: F, state: S) -> Self {
        let mut event_key = [0u8; 32];
        // A per-process key when randomness is unavailable is still a key;
        // zeros only weaken the pseudonymity of event digests, never access.
        let _ = getrandom::fill(&mut event_key);
        Engine {
            issuer,
            factors,
            state,
            passwords: NoPasswords,
            totp: TotpConfig::default(),
            limits: AttemptLimits::default(),
            clock: Arc::new(SystemClock),
            events: None,
            event_key,
            sender: None,
            codes: CodeSettings::default(),
            #[cfg(feature = "passkey")]
            passkeys: None,
        }
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Checks passwords with the application's `verifier`.
    pub fn with_passwords<Q: PasswordVerifier>(self, verifier: Q) -> Engine<F, S, Q> {
        Engine {
            issuer: self.issuer,
            factors: self.factors,
            state: self.state,
            passwords: verifier,
            totp: self.totp,
            limits: self.limits,
            clock: self.clock,
            events: self.events,
            event_key: self.event_key,
            sender: self.sender,
            codes: self.codes,
            #[cfg(feature = "passkey")]
            passkeys: self.passkeys,
        }
    }

    /// Offers passkeys for `config`'s relying party, checked now: a bad rp
    /// id or origin is an error at start-up, not at the first ceremony.
    #[cfg(feature = "passkey")]
    pub fn with_passkeys(
        mut self,
        config: crate::passkey::PasskeyConfig,
    ) -> Result<Self, ChallengeError> {
        self.passkeys = Some(Arc::new(config.build()?));
        Ok(self)
    }

    /// Sends one-time codes by e-mail or SMS with `sender`.
    pub fn with_code_sender(mut self, sender: impl CodeSender) -> Self {
        self.sender = Some(Arc::new(sender));
        self
    }

    /// How codes are made and rationed.
    pub fn with_code_settings(mut self, settings: CodeSettings) -> Self {
        self.codes = settings;
        self
    }

    /// The TOTP configuration.
    pub fn with_totp(mut self, totp: TotpConfig) -> Self {
        self.totp = totp;
        self
    }

    /// The attempt limits.
    pub fn with_limits(mut self, limits: AttemptLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The clock (tests use a `TestClock`).
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Also delivers every event to `sink`.
    pub fn with_event_sink(mut self, sink: impl EventSink) -> Self {
        self.events = Some(Arc::new(sink));
        self
    }

    /// The key for subject digests in events (default: random per process;
    /// set one shared by all instances to correlate their events).
    pub fn with_event_key(mut self, key: [u8; 32]) -> Self {
        self.event_key = key;
        self
    }

    /// The TOTP configuration in use.
    pub fn totp_config(&self) -> &TotpConfig {
        &self.totp
    }

    /// Steps up with a TOTP code.
    pub async fn step_up_totp(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let method = Method::Totp;
        let outcome = self.totp_inner(attempt, code).await;
        self.finish(attempt, method, outcome).await
    }

    async fn totp_inner(&self, attempt: Attempt<'_>, code: &str) -> Result<(), ChallengeError> {
        self.totp.check_format(code)?;
        let secret = self
            .factors
            .totp_secret(attempt.subject)
            .await?
            .ok_or(ChallengeError::NotEnrolled(Method::Totp))?;
        let attempts_left = self.admit(attempt, Method::Totp).await?;
        let now = self.clock.now().as_unix_seconds();
        let step = self
            .totp
            .matched_step(&secret, code, now)?
            .ok_or(ChallengeError::Wrong { attempts_left })?;
        self.accept_step(attempt.subject, step).await
    }

    /// Records `step` as the last accepted one; refuses a step that is not
    /// newer (replay, or an older in-window code after a newer one).
    async fn accept_step(&self, subject: &Subject, step: u64) -> Result<(), ChallengeError> {
        let key = format!("stepup:totp-step:{}", store_key(subject));
        if self
            .state
            .advance(&key, step, self.totp.replay_memory())
            .await?
        {
            Ok(())
        } else {
            Err(ChallengeError::AlreadyUsed)
        }
    }

    /// Steps up with the account password, checked by the application.
    pub async fn step_up_password(
        &self,
        attempt: Attempt<'_>,
        password: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            if password.is_empty() || password.len() > 4096 {
                return Err(ChallengeError::Format("enter your password"));
            }
            self.counted(
                attempt,
                Method::Password,
                self.passwords.verify(attempt.subject, password),
            )
            .await
        }
        .await;
        self.finish(attempt, Method::Password, outcome).await
    }

    /// Steps up with a recovery code, which is used up.
    pub async fn step_up_recovery_code(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            let digest = recovery::digest_of_input(code)?;
            if self.factors.recovery_codes_left(attempt.subject).await? == 0 {
                return Err(ChallengeError::NotEnrolled(Method::RecoveryCode));
            }
            self.counted(
                attempt,
                Method::RecoveryCode,
                self.factors
                    .consume_recovery_digest(attempt.subject, &digest),
            )
            .await
        }
        .await;
        self.finish(attempt, Method::RecoveryCode, outcome).await
    }

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
        let now = self.clock.now();
        let key = store_key(subject);
        let sends = self
            .state
            .increment(&format!("stepup:code-sends:{key}"), self.codes.send_window)
            .await?;
        if sends > self.codes.sends_per_subject {
            self.emit(EventKind::LockedOut, method, subject, Some("send_limit"));
            return Err(ChallengeError::LockedOut {
                until: now + self.codes.send_window,
            });
        }
        if let Some(ip) = attempt.address {
            let n = self
                .state
                .increment(
                    &format!("stepup:code-sends-address:{ip}"),
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
        getrandom::fill(&mut id)
            .map_err(|e| StoreError::new("random", format!("no randomness available: {e}")))?;
        let code = random_digits(self.codes.digits)?;
        let mut record = id.to_vec();
        record.extend_from_slice(&session_digest(subject));
        record.extend_from_slice(&code_digest(&id, &code));
        let slot = code_key(subject, channel);
        self.state.put(&slot, record, self.codes.valid_for).await?;
        let message = CodeMessage {
            channel,
            destination: &destination,
            code: &code,
            valid_for: self.codes.valid_for,
        };
        if let Err(e) = sender.send(message).await {
            // Not delivered: forget it, so nothing waits for a code nobody has.
            let _ = self.state.remove(&slot).await;
            self.emit(EventKind::Failed, method, subject, Some("send"));
            return Err(e.into());
        }
        self.emit(EventKind::ChallengeIssued, method, subject, None);
        Ok(CodeSent {
            challenge_id: hex(&id),
            channel,
            destination_hint: mask(&destination, channel),
            expires_at: now + self.codes.valid_for,
        })
    }

    /// Steps up with a one-time code sent by [`send_code`](Engine::send_code):
    /// it must be the latest code for this subject, in this session, for this
    /// challenge, unexpired and unused.
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
            let attempts_left = self.admit(attempt, method).await?;
            let slot = code_key(attempt.subject, channel);
            let record = self
                .state
                .get(&slot)
                .await?
                .ok_or(ChallengeError::NoPendingCode)?;
            if record.len() != 16 + 32 + 32 {
                return Err(ChallengeError::NoPendingCode);
            }
            let (id, rest) = record.split_at(16);
            let (session, digest) = rest.split_at(32);
            use stepup_core::ct;
            let same_challenge = ct::eq(hex(id).as_bytes(), challenge_id.as_bytes());
            let same_session = ct::eq(session, &session_digest(attempt.subject));
            if !same_challenge || !same_session {
                return Err(ChallengeError::NoPendingCode);
            }
            let right = ct::eq(digest, &code_digest(id, code));
            if !right {
                return Err(ChallengeError::Wrong { attempts_left });
            }
            // Single use: of two racing right answers, one takes the code.
            match self.state.take(&slot).await? {
                Some(taken) if taken == record => Ok(()),
                _ => Err(ChallengeError::AlreadyUsed),
            }
        }
        .await;
        self.finish(attempt, method, outcome).await
    }

    #[cfg(feature = "passkey")]
    fn passkey_service(&self) -> Result<&crate::passkey::Passkeys, ChallengeError> {
        self.passkeys
            .as_deref()
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))
    }

    /// Starts registering a passkey: the options for
    /// `navigator.credentials.create()`, and the ceremony id to finish with.
    /// Credentials already registered are excluded.
    #[cfg(feature = "passkey")]
    pub async fn start_passkey_registration(
        &self,
        subject: &Subject,
        user_name: &str,
    ) -> Result<(String, webauthn_rs::prelude::CreationChallengeResponse), ChallengeError> {
        let service = self.passkey_service()?;
        let existing = self.factors.passkeys(subject).await?;
        service.start_registration(subject, user_name, &existing, self.clock.now())
    }

    /// Finishes a registration with the browser's answer and stores the
    /// passkey under `name`.
    #[cfg(feature = "passkey")]
    pub async fn finish_passkey_registration(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<(), ChallengeError> {
        let service = self.passkey_service()?;
        let subject = attempt.subject;
        let passkey =
            match service.finish_registration(subject, ceremony, response, self.clock.now()) {
                Ok(p) => p,
                Err(e) => {
                    self.emit(
                        EventKind::Failed,
                        Method::Passkey,
                        subject,
                        Some("registration"),
                    );
                    return Err(e);
                }
            };
        let mut all = self.factors.passkeys(subject).await?;
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        all.push(crate::passkey::StoredPasskey {
            name: if name.is_empty() {
                "Passkey".into()
            } else {
                name
            },
            passkey,
        });
        self.factors.save_passkeys(subject, all).await?;
        self.emit(EventKind::Enrolled, Method::Passkey, subject, None);
        Ok(())
    }

    /// Starts a passkey step-up: the options for `navigator.credentials.get()`
    /// (limited to this subject's credentials, user verification required)
    /// and the ceremony id to finish with.
    #[cfg(feature = "passkey")]
    pub async fn start_passkey_step_up(
        &self,
        attempt: Attempt<'_>,
    ) -> Result<(String, webauthn_rs::prelude::RequestChallengeResponse), ChallengeError> {
        let service = self.passkey_service()?;
        let credentials = self.factors.passkeys(attempt.subject).await?;
        if credentials.is_empty() {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        let started =
            service.start_authentication(attempt.subject, &credentials, self.clock.now())?;
        self.emit(
            EventKind::ChallengeIssued,
            Method::Passkey,
            attempt.subject,
            None,
        );
        Ok(started)
    }

    /// Steps up with the browser's passkey assertion for `ceremony`.
    #[cfg(feature = "passkey")]
    pub async fn step_up_passkey(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
    ) -> Result<IssuedToken, ChallengeError> {
        let outcome = async {
            let service = self.passkey_service()?;
            self.admit(attempt, Method::Passkey).await?;
            let credentials = self.factors.passkeys(attempt.subject).await?;
            let updated = service.finish_authentication(
                attempt.subject,
                ceremony,
                response,
                credentials,
                self.clock.now(),
            )?;
            self.factors.save_passkeys(attempt.subject, updated).await?;
            Ok(())
        }
        .await;
        self.finish(attempt, Method::Passkey, outcome).await
    }

    /// The names of the subject's passkeys, in registration order.
    #[cfg(feature = "passkey")]
    pub async fn passkey_names(&self, subject: &Subject) -> Result<Vec<String>, ChallengeError> {
        Ok(self
            .factors
            .passkeys(subject)
            .await?
            .into_iter()
            .map(|p| p.name.clone())
            .collect())
    }

    /// Renames the subject's passkey number `index`.
    #[cfg(feature = "passkey")]
    pub async fn rename_passkey(
        &self,
        subject: &Subject,
        index: usize,
        name: &str,
    ) -> Result<(), ChallengeError> {
        let mut all = self.factors.passkeys(subject).await?;
        let entry = all
            .get_mut(index)
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))?;
        entry.name = name.chars().filter(|c| !c.is_control()).take(64).collect();
        self.factors.save_passkeys(subject, all).await?;
        Ok(())
    }

    /// Removes the subject's passkey number `index` (see
    /// [`passkey_names`](Engine::passkey_names)). Bump the subject's epoch
    /// too, if step-ups made with it should stop counting.
    #[cfg(feature = "passkey")]
    pub async fn remove_passkey(
        &self,
        subject: &Subject,
        index: usize,
    ) -> Result<(), ChallengeError> {
        let mut all = self.factors.passkeys(subject).await?;
        if index >= all.len() {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        all.remove(index);
        self.factors.save_passkeys(subject, all).await?;
        self.emit(EventKind::Removed, Method::Passkey, subject, None);
        Ok(())
    }

    /// Replaces the subject's recovery codes with `count` new ones (1 to
    /// 20), returned once for the user to keep; only digests are stored.
    pub async fn generate_recovery_codes(
        &self,
        subject: &Subject,
        count: usize,
    ) -> Result<Vec<RecoveryCode>, ChallengeError> {
        let codes = (0..count.clamp(1, 20))
            .map(|_| RecoveryCode::generate())
            .collect::<Result<Vec<_>, _>>()?;
        let digests = codes.iter().map(RecoveryCode::digest).collect();
        self.factors.set_recovery_digests(subject, digests).await?;
        self.emit(EventKind::Enrolled, Method::RecoveryCode, subject, None);
        Ok(codes)
    }

    /// The methods the subject can step up with now, strongest first: TOTP
    /// if enrolled, the password if the application checks passwords,
    /// recovery codes if any are left.
    pub async fn enrolled_methods(&self, subject: &Subject) -> Result<Vec<Method>, ChallengeError> {
        let mut methods = Vec::new();
        #[cfg(feature = "passkey")]
        if self.passkeys.is_some() && !self.factors.passkeys(subject).await?.is_empty() {
            methods.push(Method::Passkey);
        }
        if self.factors.totp_secret(subject).await?.is_some() {
            methods.push(Method::Totp);
        }
        if self.passwords.is_configured() {
            methods.push(Method::Password);
        }
        if self.sender.is_some() {
            for channel in [Channel::Email, Channel::Sms] {
                if self
                    .factors
                    .code_destination(subject, channel)
                    .await?
                    .is_some()
                {
                    methods.push(channel.method());
                }
            }
        }
        if self.factors.recovery_codes_left(subject).await? > 0 {
            methods.push(Method::RecoveryCode);
        }
        Ok(methods)
    }

    /// How many unused recovery codes the subject has.
    pub async fn recovery_codes_left(&self, subject: &Subject) -> Result<usize, ChallengeError> {
        Ok(self.factors.recovery_codes_left(subject).await?)
    }

    /// Starts a TOTP enrollment: a fresh secret (160 bits), kept on the
    /// server for ten minutes until confirmed.
    pub async fn start_totp_enrollment(
        &self,
        subject: &Subject,
        account_name: &str,
    ) -> Result<TotpEnrollment, ChallengeError> {
        let secret = TotpSecret::generate()?;
        let enrollment = TotpEnrollment {
            uri: self.totp.otpauth_uri(&secret, account_name)?,
            qr_png: self.totp.qr_png(&secret, account_name)?,
            key: secret.to_base32(),
        };
        self.state
            .put(
                &enrollment_key(subject),
                secret.as_bytes().to_vec(),
                ENROLLMENT_TTL,
            )
            .await?;
        Ok(enrollment)
    }

    /// Confirms a pending TOTP enrollment with a first valid code. The code's
    /// step is recorded, so the same code cannot then be replayed as a
    /// step-up. Counted by the attempt limiter like a step-up.
    pub async fn confirm_totp_enrollment(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<(), ChallengeError> {
        self.totp.check_format(code)?;
        let attempts_left = self.admit(attempt, Method::Totp).await?;
        let key = enrollment_key(attempt.subject);
        let pending = self
            .state
            .get(&key)
            .await?
            .and_then(|bytes| TotpSecret::from_bytes(&bytes))
            .ok_or(ChallengeError::NoPendingEnrollment)?;
        let now = self.clock.now().as_unix_seconds();
        let Some(step) = self.totp.matched_step(&pending, code, now)? else {
            self.emit(
                EventKind::Failed,
                Method::Totp,
                attempt.subject,
                Some("wrong"),
            );
            return Err(ChallengeError::Wrong { attempts_left });
        };
        // Take the pending secret once: of two racing confirmations one wins.
        if self.state.take(&key).await?.is_none() {
            return Err(ChallengeError::NoPendingEnrollment);
        }
        self.accept_step(attempt.subject, step).await?;
        self.factors
            .set_totp_secret(attempt.subject, pending)
            .await?;
        limiter::reset(
            &self.state,
            &Keys::new(Method::Totp, &store_key(attempt.subject)),
        )
        .await?;
        self.emit(EventKind::Enrolled, Method::Totp, attempt.subject, None);
        Ok(())
    }

    /// Records that a challenge was shown to the subject (the adapters call
    /// this when they render the challenge page or answer with a challenge),
    /// so drop-offs between "asked" and "succeeded" can be measured.
    pub fn challenge_issued(&self, subject: &Subject, method: Method) {
        self.emit(EventKind::ChallengeIssued, method, subject, None);
    }

    /// Removes the subject's TOTP enrollment. (Bump the subject's epoch too,
    /// if outstanding step-ups made with it should stop counting.)
    pub async fn remove_totp(&self, subject: &Subject) -> Result<(), ChallengeError> {
        self.factors.remove_totp_secret(subject).await?;
        self.emit(EventKind::Removed, Method::Totp, subject, None);
        Ok(())
    }

    /// Counts the attempt, then (and only then: futures start when awaited)
    /// runs `check`; a `false` is a wrong answer with the attempts left.
    async fn counted(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        check: impl std::future::Future<Output = Result<bool, StoreError>>,
    ) -> Result<(), ChallengeError> {
        let attempts_left = self.admit(attempt, method).await?;
        if check.await? {
            Ok(())
        } else {
            Err(ChallengeError::Wrong { attempts_left })
        }
    }

    /// Counts the attempt; `Ok(attempts left after this one)`.
    async fn admit(&self, attempt: Attempt<'_>, method: Method) -> Result<u32, ChallengeError> {
        let keys = Keys::new(method, &store_key(attempt.subject));
        let left = limiter::admit(
            &self.state,
            &self.limits,
            &keys,
            attempt.address,
            self.clock.now(),
        )
        .await?;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    /// Turns a verified factor into a token, or a failure into the error the
    /// user sees; emits the event either way.
    async fn finish(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        outcome: Result<(), ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        let subject = attempt.subject;
        match outcome {
            Ok(()) => {
                let keys = Keys::new(method, &store_key(subject));
                if let Err(e) = limiter::reset(&self.state, &keys).await {
                    self.emit(EventKind::Failed, method, subject, Some("store"));
                    return Err(e);
                }
                let now = self.clock.now();
                let proof = Proof::new(method, now);
                let issued = match attempt.context {
                    Some(ctx) => {
                        self.issuer
                            .issue_in_context(subject, proof, attempt.previous, ctx, now)
                    }
                    None => self.issuer.issue(subject, proof, attempt.previous, now),
                };
                match issued {
                    Ok(token) => {
                        self.emit(EventKind::Succeeded, method, subject, None);
                        Ok(token)
                    }
                    Err(e) => {
                        self.emit(EventKind::Failed, method, subject, Some("issue"));
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                let (kind, reason) = match &e {
                    ChallengeError::LockedOut { .. } => (EventKind::LockedOut, None),
                    ChallengeError::Wrong { .. } => (EventKind::Failed, Some("wrong")),
                    ChallengeError::AlreadyUsed => (EventKind::Failed, Some("already_used")),
                    ChallengeError::Format(_) => (EventKind::Failed, Some("format")),
                    ChallengeError::NotEnrolled(_) => (EventKind::Failed, Some("not_enrolled")),
                    ChallengeError::NoPendingCode => (EventKind::Failed, Some("no_pending_code")),
                    ChallengeError::NoPendingCeremony => {
                        (EventKind::Failed, Some("no_pending_ceremony"))
                    }
                    ChallengeError::PasskeyRejected => {
                        (EventKind::Failed, Some("passkey_rejected"))
                    }
                    ChallengeError::Store(_) => (EventKind::Failed, Some("store")),
                    _ => (EventKind::Failed, Some("other")),
                };
                self.emit(kind, method, subject, reason);
                Err(e)
            }
        }
    }

    fn emit(
        &self,
        kind: EventKind,
        method: Method,
        subject: &Subject,
        reason: Option<&'static str>,
    ) {
        let event = Event {
            kind,
            method,
            subject: self.subject_digest(subject),
            reason,
            at: self.clock.now(),
        };
        match kind {
            EventKind::ChallengeIssued
            | EventKind::Succeeded
            | EventKind::Enrolled
            | EventKind::Removed => {
                tracing::info!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, "step-up event")
            }
            EventKind::Failed | EventKind::LockedOut => {
                tracing::warn!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, reason = reason.unwrap_or(""), "step-up event")
            }
        }
        if let Some(sink) = &self.events {
            sink.record(&event);
        }
    }

    fn subject_digest(&self, subject: &Subject) -> String {
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.event_key) {
            Ok(mut mac) => {
                mac.update(subject.id().as_bytes());
                hex16(&mac.finalize().into_bytes())
            }
            // HMAC takes keys of any length, so this arm is never taken.
            Err(_) => store_key(subject),
        }
    }
}

/// The state-store key of a subject: a digest of its id, so keys have a
/// bounded size and carry no user id.
fn store_key(subject: &Subject) -> String {
    hex16(&Sha256::digest(subject.id().as_bytes()))
}

fn code_key(subject: &Subject, channel: Channel) -> String {
    format!("stepup:code:{}:{}", channel.as_str(), store_key(subject))
}

/// Binds a code to the session that asked for it.
fn session_digest(subject: &Subject) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(subject.id().as_bytes());
    h.update([0]);
    h.update(subject.session().unwrap_or("").as_bytes());
    h.finalize().into()
}

fn code_digest(challenge_id: &[u8], code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(challenge_id);
    h.update(code.as_bytes());
    h.finalize().into()
}

/// `digits` decimal digits, uniform (rejection sampling from 32-bit draws).
fn random_digits(digits: u8) -> Result<String, StoreError> {
    let modulus = 10u32.pow(u32::from(digits));
    let limit = u32::MAX - u32::MAX % modulus;
    loop {
        let mut raw = [0u8; 4];
        getrandom::fill(&mut raw)
            .map_err(|e| StoreError::new("random", format!("no randomness available: {e}")))?;
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

fn enrollment_key(subject: &Subject) -> String {
    format!("stepup:enroll:totp:{}", store_key(subject))
}

fn hex16(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
