//! The engine: one object an adapter calls to run a challenge.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use stepup_core::{
    Assurance, Clock, IssuedToken, Issuer, Method, Policy, Proof, Subject, SystemClock, Timestamp,
    ct::{self, Comparison},
};

use crate::change::{self, Account, ChangeCheck, FactorChange};
use crate::code::{Channel, CodeMessage, CodeSender};
use crate::error::{ChallengeError, StoreError};
use crate::event::{Event, EventKind, EventSink, Notice, NoticeKind, NoticeSink};
use crate::keys::{StoreKeys, hex};
use crate::limiter::{self, Admission, AttemptLimits, Keys};
use crate::recovery::{self, RecoveryCode};
use crate::store::{FactorStore, PasswordVerifier, StateStore};
use crate::totp::TotpConfig;
#[cfg(feature = "passkey")]
use stepup_store::StoredPasskey;
use stepup_store::TotpSecret;

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
/// Passkeys (feature `passkey`) need a factor store that keeps them: the
/// passkey methods, `with_passkeys` first, are there only when `F` is also
/// a `PasskeyStore`. Everything else, the
/// [`routes`](crate::routes) included, needs only `F: FactorStore`: the
/// routes reach the passkey store through what `with_passkeys` captured,
/// and answer passkey requests as "not set up" on an engine without
/// passkeys.
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
    notices: Option<Arc<dyn NoticeSink>>,
    event_keys: StoreKeys,
    keys: StoreKeys,
    sender: Option<Arc<dyn CodeSender>>,
    codes: CodeSettings,
    changes: ChangeSettings,
    #[cfg(feature = "passkey")]
    passkeys: Option<PasskeySupport<F>>,
}

/// Passkeys, once offered: the verifier with the ceremonies in flight, and
/// the factor store seen as a passkey store. [`Engine::with_passkeys`]
/// captures `store` where `F: PasskeyStore` is known, so the methods that
/// need only `F: FactorStore` (the enrolled methods, the routes'
/// dispatch) reach the passkeys through it.
#[cfg(feature = "passkey")]
struct PasskeySupport<F> {
    service: Arc<crate::passkey::Passkeys>,
    store: fn(&F) -> &dyn DynPasskeyStore,
}

/// A boxed store future, so a [`PasskeyStore`](crate::PasskeyStore) can be
/// used behind `dyn`.
#[cfg(feature = "passkey")]
type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The [`PasskeyStore`](crate::PasskeyStore) operations the engine needs
/// behind `dyn`.
#[cfg(feature = "passkey")]
trait DynPasskeyStore: Send + Sync {
    fn passkeys<'a>(&'a self, subject: &'a Subject) -> StoreFuture<'a, Vec<StoredPasskey>>;
    fn add_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool>;
    fn update_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool>;
    fn remove_passkey<'a>(&'a self, subject: &'a Subject, id: &'a [u8]) -> StoreFuture<'a, bool>;
}

#[cfg(feature = "passkey")]
impl<T: crate::PasskeyStore> DynPasskeyStore for T {
    fn passkeys<'a>(&'a self, subject: &'a Subject) -> StoreFuture<'a, Vec<StoredPasskey>> {
        Box::pin(crate::PasskeyStore::passkeys(self, subject))
    }

    fn add_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::add_passkey(self, subject, passkey))
    }

    fn update_passkey<'a>(
        &'a self,
        subject: &'a Subject,
        passkey: StoredPasskey,
    ) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::update_passkey(self, subject, passkey))
    }

    fn remove_passkey<'a>(&'a self, subject: &'a Subject, id: &'a [u8]) -> StoreFuture<'a, bool> {
        Box::pin(crate::PasskeyStore::remove_passkey(self, subject, id))
    }
}

/// `factors` as a [`DynPasskeyStore`]: what [`PasskeySupport::store`] holds.
#[cfg(feature = "passkey")]
fn as_passkey_store<F: crate::PasskeyStore>(factors: &F) -> &dyn DynPasskeyStore {
    factors
}

/// How factor changes are guarded (see [`FactorChange`]).
#[derive(Clone, Debug)]
struct ChangeSettings {
    fresh: Duration,
    recovery_wait: Duration,
    first_without_password: bool,
    silent_recovery: bool,
}

/// How long a recovery stays usable once its waiting period is over.
const RECOVERY_READY_FOR: Duration = Duration::from_secs(24 * 3600);
/// Account recoveries a subject may start within [`RECOVERY_START_WINDOW`]:
/// a session thief cannot restart one forever after the owner cancels.
const RECOVERY_STARTS: u64 = 3;
const RECOVERY_START_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);

/// A pending account recovery: when it was asked for and when its waiting
/// period ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRecovery {
    /// When it was started.
    pub requested_at: Timestamp,
    /// When the waiting period ends: from then (for a day) a weaker factor
    /// may replace a stronger one.
    pub ready_at: Timestamp,
}

impl PendingRecovery {
    /// Whether the waiting period is over at `now`.
    pub fn is_ready(&self, now: Timestamp) -> bool {
        now >= self.ready_at
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = self.requested_at.as_unix_seconds().to_be_bytes().to_vec();
        out.extend_from_slice(&self.ready_at.as_unix_seconds().to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<PendingRecovery> {
        let (a, b) = bytes.split_at_checked(8)?;
        Some(PendingRecovery {
            requested_at: Timestamp::from_unix_seconds(u64::from_be_bytes(a.try_into().ok()?)),
            ready_at: Timestamp::from_unix_seconds(u64::from_be_bytes(b.try_into().ok()?)),
        })
    }
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
    ///
    /// Store entries are named, and one-time codes digested, with a key
    /// derived from the issuer's signing key, so every instance sharing the
    /// key ring agrees; pin one with [`with_state_key`](Engine::with_state_key)
    /// if the signing key rotates.
    pub fn new(issuer: Issuer, factors: F, state: S) -> Self {
        let mut event_key = [0u8; 32];
        // A per-process key when randomness is unavailable is still a key;
        // zeros only weaken the pseudonymity of event digests, never access.
        let _ = getrandom::fill(&mut event_key);
        let state_key = issuer.derive_key("stepup state keys").unwrap_or(event_key);
        Engine {
            issuer,
            factors,
            state,
            passwords: NoPasswords,
            totp: TotpConfig::default(),
            limits: AttemptLimits::default(),
            clock: Arc::new(SystemClock),
            events: None,
            notices: None,
            event_keys: StoreKeys::new(&event_key),
            keys: StoreKeys::new(&state_key),
            sender: None,
            codes: CodeSettings::default(),
            changes: ChangeSettings {
                fresh: Duration::from_secs(300),
                recovery_wait: Duration::from_secs(24 * 3600),
                first_without_password: false,
                silent_recovery: false,
            },
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
            notices: self.notices,
            event_keys: self.event_keys,
            keys: self.keys,
            sender: self.sender,
            codes: self.codes,
            changes: self.changes,
            #[cfg(feature = "passkey")]
            passkeys: self.passkeys,
        }
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

    /// Delivers every [`Notice`] (a factor added, replaced or removed, a
    /// method disabled, an account recovery started or cancelled) to
    /// `sink`, which tells the user on every channel they have.
    pub fn with_notice_sink(mut self, sink: impl NoticeSink) -> Self {
        self.notices = Some(Arc::new(sink));
        self
    }

    /// The key for subject digests in events (default: random per process;
    /// set one shared by all instances to correlate their events).
    pub fn with_event_key(mut self, key: [u8; 32]) -> Self {
        self.event_keys = StoreKeys::new(&key);
        self
    }

    /// The server-side key naming store entries and digesting one-time
    /// codes (default: derived from the issuer's signing key). Every
    /// instance must use the same; changing it (or, without this, rotating
    /// the signing key) forgets attempt counters, disabled methods, TOTP
    /// replay state, pending codes, enrollments and account recoveries, and
    /// gives new passkey registrations another user handle. Pin one to
    /// rotate the signing key without that.
    pub fn with_state_key(mut self, key: [u8; 32]) -> Self {
        self.keys = StoreKeys::new(&key);
        self
    }

    /// How recent the proof for a factor change must be (default 5
    /// minutes; 1 minute to 1 hour, clamped).
    pub fn with_change_freshness(mut self, fresh: Duration) -> Self {
        self.changes.fresh = fresh.clamp(Duration::from_secs(60), Duration::from_secs(3600));
        self
    }

    /// How long an account recovery waits before a weaker factor may
    /// replace a stronger one (default 24 hours; 1 hour to 30 days).
    pub fn with_recovery_wait(mut self, wait: Duration) -> Self {
        self.changes.recovery_wait = wait.clamp(
            Duration::from_secs(3600),
            Duration::from_secs(30 * 24 * 3600),
        );
        self
    }

    /// **Risky.** Lets account recoveries start without a
    /// [`NoticeSink`](crate::NoticeSink): nobody is told that a weaker
    /// factor will be able to replace the user's strongest in a day, so the
    /// user cannot cancel. Without this (and without a notice sink), starting
    /// an account recovery is refused.
    pub fn dangerously_allow_silent_account_recovery(mut self) -> Self {
        self.changes.silent_recovery = true;
        self
    }

    /// **Risky.** Lets a user without any second factor enroll the first one
    /// without a password re-confirmation when no [`PasswordVerifier`] is
    /// configured: with nothing but the login session (or, for a user with
    /// an e-mail or SMS address, with a code sent there), so anyone holding
    /// a session cookie (and the mailbox) can add a factor of their own and
    /// step up with it. Without this, first enrollment needs a password
    /// re-confirmation within the change freshness (and a code, for a user
    /// with e-mail or SMS codes), and an engine without passwords refuses
    /// it.
    pub fn dangerously_allow_first_factor_without_password(mut self) -> Self {
        self.changes.first_without_password = true;
        self
    }

    /// The factor store (an application reads the subject's epoch where
    /// [`FactorStore::bump_epoch`] writes it).
    pub fn factors(&self) -> &F {
        &self.factors
    }

    /// The TOTP configuration in use.
    pub fn totp_config(&self) -> &TotpConfig {
        &self.totp
    }

    /// The issuer new assurance tokens come from; the adapters verify with
    /// [`Issuer::gate`](stepup_core::Issuer::gate) of it.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The clock the engine (and so the adapters built on it) reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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
        let admitted = self.admit(attempt, Method::Totp).await?;
        let now = self.clock.now().as_unix_seconds();
        let step = self
            .totp
            .matched_step(&secret, code, now)?
            .ok_or(ChallengeError::Wrong {
                few_left: admitted.few_left,
            })?;
        self.accept_step(attempt.subject, &secret, step).await
    }

    /// Records `step` as the last accepted one for this subject and secret;
    /// refuses a step that is not newer (replay, or an older in-window code
    /// after a newer one). A new secret has its own replay state.
    async fn accept_step(
        &self,
        subject: &Subject,
        secret: &TotpSecret,
        step: u64,
    ) -> Result<(), ChallengeError> {
        let key = format!(
            "stepup:totp-step:{}:{}",
            self.keys.subject(subject),
            self.keys.secret(secret.as_bytes())
        );
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
        let key = self.keys.subject(subject);
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
        if let Some(address) = self.address_key(attempt) {
            let n = self
                .state
                .increment(
                    &format!("stepup:code-sends-address:{address}"),
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
        record.extend_from_slice(&self.keys.session_digest(subject));
        record.extend_from_slice(&self.keys.code(&id, &code));
        let slot = self.code_key(subject, channel);
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
            let slot = self.code_key(attempt.subject, channel);
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
                .increment(&format!("{slot}:guesses:{}", hex(id)), self.codes.valid_for)
                .await?;
            if guesses > self.limits.code_guesses {
                self.state.remove(&slot).await?;
                return Err(ChallengeError::NoPendingCode);
            }
            if !ct::eq_as(Comparison::CodeDigest, digest, &self.keys.code(id, code)) {
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

    /// The passkey verifier and the factor store as a passkey store, or
    /// "not set up" without [`with_passkeys`](Engine::with_passkeys).
    #[cfg(feature = "passkey")]
    fn passkey_support(
        &self,
    ) -> Result<(&crate::passkey::Passkeys, &dyn DynPasskeyStore), ChallengeError> {
        self.passkeys
            .as_ref()
            .map(|support| (&*support.service, (support.store)(&self.factors)))
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))
    }

    #[cfg(feature = "passkey")]
    fn owner<'a>(&self, subject: &'a Subject, key: &'a str) -> crate::passkey::Owner<'a> {
        crate::passkey::Owner {
            key,
            binding: self.keys.session_digest(subject),
            handle: self.keys.user_handle(subject),
        }
    }

    // The passkey operations below need only `F: FactorStore`: they reach
    // the passkeys through the store `with_passkeys` captured (which needed
    // `F: PasskeyStore`), and are "not set up" without it. The routes call
    // them; applications call the public methods of the same name without
    // `_dyn`, which need `F: PasskeyStore`.

    /// See [`start_passkey_registration`](Engine::start_passkey_registration).
    #[cfg(feature = "passkey")]
    pub(crate) async fn start_passkey_registration_dyn(
        &self,
        subject: &Subject,
        user_name: &str,
    ) -> Result<(String, webauthn_rs::prelude::CreationChallengeResponse), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let key = self.keys.subject(subject);
        let now = self.clock.now();
        limiter::ceremony_started(&self.state, &self.limits, &key, now).await?;
        let existing = store.passkeys(subject).await?;
        service.start_registration(self.owner(subject, &key), user_name, &existing, now)
    }

    /// See [`finish_passkey_registration`](Engine::finish_passkey_registration).
    #[cfg(feature = "passkey")]
    pub(crate) async fn finish_passkey_registration_dyn(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<(), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let subject = attempt.subject;
        let key = self.keys.subject(subject);
        let registered = service.finish_registration(
            self.owner(subject, &key),
            ceremony,
            response,
            self.clock.now(),
        );
        let passkey = match registered {
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
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        let stored = StoredPasskey {
            name: if name.is_empty() {
                "Passkey".into()
            } else {
                name
            },
            passkey,
        };
        let method = service.method_of(&stored);
        if !store.add_passkey(subject, stored).await? {
            self.emit(
                EventKind::Failed,
                method,
                subject,
                Some("already_registered"),
            );
            return Err(ChallengeError::PasskeyRejected);
        }
        self.emit(EventKind::Enrolled, method, subject, None);
        self.notify(NoticeKind::FactorAdded, method, subject, None);
        self.changed(subject).await?;
        Ok(())
    }

    /// See [`start_passkey_step_up`](Engine::start_passkey_step_up).
    #[cfg(feature = "passkey")]
    pub(crate) async fn start_passkey_step_up_dyn(
        &self,
        attempt: Attempt<'_>,
    ) -> Result<(String, webauthn_rs::prelude::RequestChallengeResponse), ChallengeError> {
        let (service, store) = self.passkey_support()?;
        let credentials = store.passkeys(attempt.subject).await?;
        if credentials.is_empty() {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        let key = self.keys.subject(attempt.subject);
        let now = self.clock.now();
        limiter::ceremony_started(&self.state, &self.limits, &key, now).await?;
        let started =
            service.start_authentication(self.owner(attempt.subject, &key), &credentials, now)?;
        self.emit(
            EventKind::ChallengeIssued,
            Method::Passkey,
            attempt.subject,
            None,
        );
        Ok(started)
    }

    /// See [`step_up_passkey`](Engine::step_up_passkey).
    #[cfg(feature = "passkey")]
    pub(crate) async fn step_up_passkey_dyn(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
    ) -> Result<IssuedToken, ChallengeError> {
        let mut method = Method::Passkey;
        let outcome = async {
            let (service, store) = self.passkey_support()?;
            let key = self.keys.subject(attempt.subject);
            // No pending ceremony is no guess: not counted.
            let taken = service.take_authentication(
                ceremony,
                self.owner(attempt.subject, &key),
                self.clock.now(),
            )?;
            self.admit(attempt, Method::Passkey).await?;
            let credentials = store.passkeys(attempt.subject).await?;
            let used = service.finish_authentication(taken, response, credentials)?;
            let used_method = service.method_of(&used);
            // Only a credential still registered counts (a removal racing
            // with this use wins).
            if !store.update_passkey(attempt.subject, used).await? {
                return Err(ChallengeError::PasskeyRejected);
            }
            method = used_method;
            Ok(())
        }
        .await;
        self.finish_as(attempt, Method::Passkey, method, outcome)
            .await
    }

    /// See [`remove_passkey`](Engine::remove_passkey).
    #[cfg(feature = "passkey")]
    pub(crate) async fn remove_passkey_dyn(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<(), ChallengeError> {
        let (_, store) = self.passkey_support()?;
        let method = self
            .passkey_method_dyn(subject, id)
            .await?
            .ok_or(ChallengeError::NotEnrolled(Method::Passkey))?;
        if !store.remove_passkey(subject, id).await? {
            return Err(ChallengeError::NotEnrolled(Method::Passkey));
        }
        self.factors.bump_epoch(subject).await?;
        self.emit(EventKind::Removed, method, subject, None);
        self.notify(NoticeKind::FactorRemoved, method, subject, None);
        self.removed(subject).await?;
        self.changed(subject).await?;
        Ok(())
    }

    /// See [`passkey_method`](Engine::passkey_method).
    #[cfg(feature = "passkey")]
    pub(crate) async fn passkey_method_dyn(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<Option<Method>, ChallengeError> {
        let (service, store) = self.passkey_support()?;
        Ok(store
            .passkeys(subject)
            .await?
            .iter()
            .find(|p| p.id() == id)
            .map(|p| service.method_of(p)))
    }

    /// Replaces the subject's recovery codes with `count` new ones (1 to
    /// 20), returned once for the user to keep; only digests are stored.
    /// Replacing earlier codes bumps the subject's epoch. No proof is
    /// checked here (see [`remove_passkey`](Engine::remove_passkey)).
    pub async fn generate_recovery_codes(
        &self,
        subject: &Subject,
        count: usize,
    ) -> Result<Vec<RecoveryCode>, ChallengeError> {
        let codes = (0..count.clamp(1, 20))
            .map(|_| RecoveryCode::generate())
            .collect::<Result<Vec<_>, _>>()?;
        let replaced = self.factors.recovery_codes_left(subject).await? > 0;
        let digests = codes.iter().map(RecoveryCode::digest).collect();
        self.factors.set_recovery_digests(subject, digests).await?;
        if replaced {
            self.factors.bump_epoch(subject).await?;
            self.emit(EventKind::Replaced, Method::RecoveryCode, subject, None);
            self.notify(
                NoticeKind::FactorReplaced,
                Method::RecoveryCode,
                subject,
                None,
            );
        } else {
            self.emit(EventKind::Enrolled, Method::RecoveryCode, subject, None);
            self.notify(NoticeKind::FactorAdded, Method::RecoveryCode, subject, None);
        }
        self.changed(subject).await?;
        Ok(codes)
    }

    /// The methods the subject can step up with now, strongest first: a
    /// device-bound passkey (only where device-binding claims are trusted),
    /// a passkey, TOTP if enrolled, the password if the application checks passwords, e-mail
    /// and SMS codes where the subject has an address and a sender is
    /// configured, recovery codes if any are left.
    pub async fn enrolled_methods(&self, subject: &Subject) -> Result<Vec<Method>, ChallengeError> {
        let mut methods = Vec::new();
        #[cfg(feature = "passkey")]
        if let Ok((service, store)) = self.passkey_support() {
            let passkeys = store.passkeys(subject).await?;
            for kind in [Method::DeviceBoundPasskey, Method::Passkey] {
                if passkeys.iter().any(|p| service.method_of(p) == kind) {
                    methods.push(kind);
                }
            }
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

    /// What `change` to the subject's factors needs, given the `assurance`
    /// the request carries (if any): [`ChangeCheck::Allowed`], a fresh
    /// proof ([`ChangeCheck::Prove`] with the policy to challenge with), or
    /// a refusal with its reason. See [`FactorChange`] for the rule.
    ///
    /// ```
    /// use stepup_challenge::{ChangeCheck, Engine, FactorChange, FixedPasswords, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::*;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let config = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), MemoryStateStore::default())
    ///     .with_passwords(FixedPasswords::new([("bob", "builder")]));
    /// let bob = Subject::new("bob").with_session("s-1");
    /// // Bob has no second factor: his first needs the password, re-confirmed.
    /// match engine.authorize_change(&bob, None, FactorChange::Add(Method::Totp)).await? {
    ///     ChangeCheck::Prove(policy) => assert_eq!(policy.to_string(), "password within 5m"),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn authorize_change(
        &self,
        subject: &Subject,
        assurance: Option<&Assurance>,
        change: FactorChange,
    ) -> Result<ChangeCheck, ChallengeError> {
        let enrolled = self.enrolled_methods(subject).await?;
        let now = self.clock.now();
        let recovery_ready = self
            .pending_recovery(subject)
            .await?
            .is_some_and(|r| r.is_ready(now));
        let account = self.account(&enrolled, recovery_ready);
        let check = change::rule(change, &account);
        if let ChangeCheck::Refused(why) = check
            && why == change::CODES_NEED_FACTOR
            && account.passwords
        {
            // Nothing about the account's factors is told before the
            // password is re-confirmed: the challenge first, the refusal
            // after.
            let password = Policy::method(Method::Password)
                .max_age(self.changes.fresh)
                .with_reason(change::REASON);
            return Ok(
                match self.allowed_by(ChangeCheck::Prove(password), subject, assurance) {
                    ChangeCheck::Allowed => check,
                    prove => prove,
                },
            );
        }
        Ok(self.allowed_by(check, subject, assurance))
    }

    /// What starting an account recovery needs, given the request's
    /// `assurance`: a fresh proof with any second factor the subject has
    /// (an e-mail code, a recovery code: the weaker ones are the point).
    pub async fn authorize_recovery(
        &self,
        subject: &Subject,
        assurance: Option<&Assurance>,
    ) -> Result<ChangeCheck, ChallengeError> {
        let enrolled = self.enrolled_methods(subject).await?;
        let check = change::recovery_rule(&self.account(&enrolled, false));
        Ok(self.allowed_by(check, subject, assurance))
    }

    fn account<'a>(&'a self, enrolled: &'a [Method], recovery_ready: bool) -> Account<'a> {
        Account {
            enrolled,
            levels: self.issuer.levels(),
            passwords: self.passwords.is_configured(),
            first_without_password: self.changes.first_without_password,
            recovery_ready,
            fresh: self.changes.fresh,
        }
    }

    /// A proof the presented assurance already satisfies is no longer asked.
    fn allowed_by(
        &self,
        check: ChangeCheck,
        subject: &Subject,
        assurance: Option<&Assurance>,
    ) -> ChangeCheck {
        let now = self.clock.now();
        match check {
            ChangeCheck::Prove(policy)
                if assurance.is_some_and(|a| {
                    a.subject().id() == subject.id()
                        && a.subject().epoch() == subject.epoch()
                        && a.satisfies(&policy, now)
                }) =>
            {
                ChangeCheck::Allowed
            }
            other => other,
        }
    }

    /// Starts an account recovery: the user lost their strongest factor and
    /// wants a weaker one (an e-mail or SMS code, a recovery code) to
    /// replace it. Nothing changes for the waiting period
    /// ([`with_recovery_wait`](Engine::with_recovery_wait), 24 hours by
    /// default) while the user is notified ([`NoticeKind::RecoveryStarted`])
    /// and can cancel; then, for a day, factor changes accept a fresh proof
    /// with any second factor. Starting again while one is pending keeps
    /// the first (the wait does not restart, nor shorten).
    pub async fn start_account_recovery(
        &self,
        subject: &Subject,
    ) -> Result<PendingRecovery, ChallengeError> {
        if self.notices.is_none() && !self.changes.silent_recovery {
            return Err(ChallengeError::Recovery(
                "account recovery needs a way to tell the user: configure a notice sink",
            ));
        }
        if let Some(pending) = self.pending_recovery(subject).await? {
            return Ok(pending);
        }
        let now = self.clock.now();
        let starts = self
            .state
            .increment(
                &format!(
                    "stepup:account-recovery-starts:{}",
                    self.keys.subject(subject)
                ),
                RECOVERY_START_WINDOW,
            )
            .await?;
        if starts > RECOVERY_STARTS {
            return Err(ChallengeError::LockedOut {
                until: now + RECOVERY_START_WINDOW,
            });
        }
        let pending = PendingRecovery {
            requested_at: now,
            ready_at: now + self.changes.recovery_wait,
        };
        self.state
            .put(
                &self.recovery_key(subject),
                pending.encode(),
                self.changes
                    .recovery_wait
                    .saturating_add(RECOVERY_READY_FOR),
            )
            .await?;
        self.emit(
            EventKind::RecoveryStarted,
            Method::RecoveryCode,
            subject,
            None,
        );
        if let Some(sink) = &self.notices {
            sink.notify(&Notice {
                kind: NoticeKind::RecoveryStarted,
                method: Method::RecoveryCode,
                subject,
                at: now,
                ready_at: Some(pending.ready_at),
            });
        }
        Ok(pending)
    }

    /// The subject's pending account recovery, if any.
    pub async fn pending_recovery(
        &self,
        subject: &Subject,
    ) -> Result<Option<PendingRecovery>, ChallengeError> {
        Ok(self
            .state
            .get(&self.recovery_key(subject))
            .await?
            .and_then(|bytes| PendingRecovery::decode(&bytes)))
    }

    /// Cancels the subject's pending account recovery; whether there was one.
    pub async fn cancel_account_recovery(&self, subject: &Subject) -> Result<bool, ChallengeError> {
        let cancelled = self
            .state
            .take(&self.recovery_key(subject))
            .await?
            .is_some();
        if cancelled {
            self.emit(
                EventKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
            self.notify(
                NoticeKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(cancelled)
    }

    /// Starts a TOTP enrollment: a fresh secret (160 bits), kept on the
    /// server for ten minutes until confirmed, for this subject *and
    /// session* only.
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
                &self.enrollment_key(subject),
                secret.as_bytes().to_vec(),
                ENROLLMENT_TTL,
            )
            .await?;
        Ok(enrollment)
    }

    /// Confirms a pending TOTP enrollment of this session with a first valid
    /// code. The code's step is recorded in the new secret's replay state,
    /// so it cannot then be replayed as a step-up; of two racing
    /// confirmations one wins. Counted by the attempt limiter like a
    /// step-up. Replacing a secret bumps the subject's epoch.
    pub async fn confirm_totp_enrollment(
        &self,
        attempt: Attempt<'_>,
        code: &str,
    ) -> Result<(), ChallengeError> {
        self.totp.check_format(code)?;
        let subject = attempt.subject;
        let key = self.enrollment_key(subject);
        // No pending enrollment is no guess: not counted.
        let pending = self
            .state
            .get(&key)
            .await?
            .and_then(|bytes| TotpSecret::from_bytes(&bytes))
            .ok_or(ChallengeError::NoPendingEnrollment)?;
        let admitted = self.admit(attempt, Method::Totp).await?;
        let now = self.clock.now().as_unix_seconds();
        let Some(step) = self.totp.matched_step(&pending, code, now)? else {
            self.emit(EventKind::Failed, Method::Totp, subject, Some("wrong"));
            if let Some(address) = self.address_key(attempt) {
                limiter::failed_from(&self.state, &self.limits, &address, self.clock.now()).await?;
            }
            return Err(ChallengeError::Wrong {
                few_left: admitted.few_left,
            });
        };
        // The new secret's own replay state first, so a refusal loses
        // nothing; then take the pending secret once.
        self.accept_step(subject, &pending, step).await?;
        if self.state.take(&key).await?.is_none() {
            return Err(ChallengeError::NoPendingEnrollment);
        }
        let replaced = self.factors.totp_secret(subject).await?.is_some();
        self.factors.set_totp_secret(subject, pending).await?;
        limiter::succeeded(&self.state, &self.limiter_keys(subject, Method::Totp), &[]).await?;
        if replaced {
            self.factors.bump_epoch(subject).await?;
            self.emit(EventKind::Replaced, Method::Totp, subject, None);
            self.notify(NoticeKind::FactorReplaced, Method::Totp, subject, None);
        } else {
            self.emit(EventKind::Enrolled, Method::Totp, subject, None);
            self.notify(NoticeKind::FactorAdded, Method::Totp, subject, None);
        }
        self.changed(subject).await?;
        Ok(())
    }

    /// Records that a challenge was shown to the subject (the adapters call
    /// this when they render the challenge page or answer with a challenge),
    /// so drop-offs between "asked" and "succeeded" can be measured.
    pub fn challenge_issued(&self, subject: &Subject, method: Method) {
        self.emit(EventKind::ChallengeIssued, method, subject, None);
    }

    /// Removes the subject's TOTP enrollment, bumps the subject's epoch
    /// (outstanding assurance ends) and notifies. No proof is checked here
    /// (see [`remove_passkey`](Engine::remove_passkey)).
    pub async fn remove_totp(&self, subject: &Subject) -> Result<(), ChallengeError> {
        if self.factors.totp_secret(subject).await?.is_none() {
            return Err(ChallengeError::NotEnrolled(Method::Totp));
        }
        self.factors.remove_totp_secret(subject).await?;
        self.factors.bump_epoch(subject).await?;
        self.emit(EventKind::Removed, Method::Totp, subject, None);
        self.notify(NoticeKind::FactorRemoved, Method::Totp, subject, None);
        self.removed(subject).await?;
        self.changed(subject).await?;
        Ok(())
    }

    /// After a removal: recovery codes are a backup for a factor at least as
    /// strong, so when none is left they go too.
    async fn removed(&self, subject: &Subject) -> Result<(), ChallengeError> {
        let levels = self.issuer.levels();
        let enrolled = self.enrolled_methods(subject).await?;
        let backed = enrolled.iter().any(|m| {
            change::is_strong(*m, levels)
                && levels.rank_of(*m) >= levels.rank_of(Method::RecoveryCode)
        });
        if !backed && enrolled.contains(&Method::RecoveryCode) {
            self.factors
                .set_recovery_digests(subject, Vec::new())
                .await?;
            self.emit(EventKind::Removed, Method::RecoveryCode, subject, None);
            self.notify(
                NoticeKind::FactorRemoved,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(())
    }

    /// After any completed change: a ready account recovery is used up (one
    /// change per waiting period).
    async fn changed(&self, subject: &Subject) -> Result<(), ChallengeError> {
        let now = self.clock.now();
        if self
            .pending_recovery(subject)
            .await?
            .is_some_and(|r| r.is_ready(now))
        {
            self.state.remove(&self.recovery_key(subject)).await?;
        }
        Ok(())
    }

    /// Clears every attempt counter of `method` for the subject and enables
    /// it again if it was disabled: the application's reset (after a
    /// support call, say), never something a request should reach alone.
    pub async fn reset_attempts(
        &self,
        subject: &Subject,
        method: Method,
    ) -> Result<(), ChallengeError> {
        limiter::reset(&self.state, &self.limiter_keys(subject, method)).await
    }

    /// Counts the attempt, then (and only then: futures start when awaited)
    /// runs `check`; a `false` is a wrong answer.
    async fn counted(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        check: impl std::future::Future<Output = Result<bool, StoreError>>,
    ) -> Result<(), ChallengeError> {
        let admitted = self.admit(attempt, method).await?;
        if check.await? {
            Ok(())
        } else {
            Err(ChallengeError::Wrong {
                few_left: admitted.few_left,
            })
        }
    }

    fn limiter_keys(&self, subject: &Subject, method: Method) -> Keys {
        Keys::new(method, &self.keys.subject(subject))
    }

    fn address_key(&self, attempt: Attempt<'_>) -> Option<String> {
        attempt
            .address
            .map(|ip| self.keys.address(ip, self.limits.v6_prefix))
    }

    /// Counts the attempt.
    async fn admit(
        &self,
        attempt: Attempt<'_>,
        method: Method,
    ) -> Result<Admission, ChallengeError> {
        let keys = self.limiter_keys(attempt.subject, method);
        let address = self.address_key(attempt);
        let mut just_disabled = false;
        let admitted = limiter::admit(
            &self.state,
            &self.limits,
            &keys,
            address.as_deref(),
            self.clock.now(),
            &mut just_disabled,
        )
        .await;
        if just_disabled {
            // Once, on the attempt that disabled it: not on every later one.
            self.notify(NoticeKind::MethodDisabled, method, attempt.subject, None);
        }
        admitted
    }

    /// Turns a verified factor into a token, or a failure into the error the
    /// user sees; emits the event either way.
    async fn finish(
        &self,
        attempt: Attempt<'_>,
        method: Method,
        outcome: Result<(), ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        self.finish_as(attempt, method, method, outcome).await
    }

    /// [`finish`](Engine::finish) for an attempt counted as `counted` that
    /// proved `proven` (a passkey attempt proves a synced or a device-bound
    /// passkey).
    async fn finish_as(
        &self,
        attempt: Attempt<'_>,
        counted: Method,
        proven: Method,
        outcome: Result<(), ChallengeError>,
    ) -> Result<IssuedToken, ChallengeError> {
        let subject = attempt.subject;
        match outcome {
            Ok(()) => {
                if let Err(e) = self.succeeded(subject, counted, proven).await {
                    self.emit(EventKind::Failed, proven, subject, Some("store"));
                    return Err(e);
                }
                let now = self.clock.now();
                let proof = Proof::new(proven, now);
                let issued = match attempt.context {
                    Some(ctx) => {
                        self.issuer
                            .issue_in_context(subject, proof, attempt.previous, ctx, now)
                    }
                    None => self.issuer.issue(subject, proof, attempt.previous, now),
                };
                match issued {
                    Ok(token) => {
                        self.emit(EventKind::Succeeded, proven, subject, None);
                        Ok(token)
                    }
                    Err(e) => {
                        self.emit(EventKind::Failed, proven, subject, Some("issue"));
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                let guess = matches!(
                    e,
                    ChallengeError::Wrong { .. }
                        | ChallengeError::AlreadyUsed
                        | ChallengeError::PasskeyRejected
                );
                if guess && let Some(address) = self.address_key(attempt) {
                    // Failures only: users behind one address are not
                    // blocked by each other's successes.
                    if let Err(store) =
                        limiter::failed_from(&self.state, &self.limits, &address, self.clock.now())
                            .await
                    {
                        self.emit(EventKind::Failed, counted, subject, Some("store"));
                        return Err(store);
                    }
                }
                let (kind, reason) = match &e {
                    ChallengeError::LockedOut { .. } => (EventKind::LockedOut, None),
                    ChallengeError::Disabled(_) => (EventKind::Disabled, None),
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
                self.emit(kind, counted, subject, reason);
                Err(e)
            }
        }
    }

    /// A success resets the method's counters and enables again the
    /// methods disabled for the subject that are no stronger than the one
    /// proven (by the level table).
    async fn succeeded(
        &self,
        subject: &Subject,
        counted: Method,
        proven: Method,
    ) -> Result<(), ChallengeError> {
        let levels = self.issuer.levels();
        let rank = levels.rank_of(proven);
        // Only a factor of the user's own brings a disabled method back —
        // never the password or a mailbox code (rank ties included).
        let strong = change::is_strong(proven, levels);
        let subject_key = self.keys.subject(subject);
        let reenable: Vec<Keys> = Method::BUILT_IN
            .into_iter()
            .filter(|m| strong && *m != counted && levels.rank_of(*m) <= rank)
            .map(|m| Keys::new(m, &subject_key))
            .collect();
        limiter::succeeded(&self.state, &Keys::new(counted, &subject_key), &reenable).await?;
        if strong
            && self
                .state
                .take(&self.recovery_key(subject))
                .await?
                .is_some()
        {
            // The user still holds a factor of their own: nothing to recover.
            self.emit(
                EventKind::RecoveryCancelled,
                proven,
                subject,
                Some("factor_used"),
            );
            self.notify(
                NoticeKind::RecoveryCancelled,
                Method::RecoveryCode,
                subject,
                None,
            );
        }
        Ok(())
    }

    fn notify(
        &self,
        kind: NoticeKind,
        method: Method,
        subject: &Subject,
        ready_at: Option<Timestamp>,
    ) {
        if let Some(sink) = &self.notices {
            sink.notify(&Notice {
                kind,
                method,
                subject,
                at: self.clock.now(),
                ready_at,
            });
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
            EventKind::Failed | EventKind::LockedOut | EventKind::Disabled => {
                tracing::warn!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, reason = reason.unwrap_or(""), "step-up event")
            }
            _ => {
                tracing::info!(target: "stepup::challenge", kind = kind.as_str(), method = %method, subject = %event.subject, "step-up event")
            }
        }
        if let Some(sink) = &self.events {
            sink.record(&event);
        }
    }

    fn subject_digest(&self, subject: &Subject) -> String {
        self.event_keys.events(subject)
    }

    fn code_key(&self, subject: &Subject, channel: Channel) -> String {
        format!(
            "stepup:code:{}:{}",
            channel.as_str(),
            self.keys.subject(subject)
        )
    }

    fn enrollment_key(&self, subject: &Subject) -> String {
        format!("stepup:enroll:totp:{}", self.keys.session(subject))
    }

    fn recovery_key(&self, subject: &Subject) -> String {
        format!("stepup:account-recovery:{}", self.keys.subject(subject))
    }
}

/// Passkeys (feature `passkey`): only with a factor store that keeps them.
#[cfg(feature = "passkey")]
impl<F: crate::PasskeyStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// Offers passkeys for `config`'s relying party, checked now: a bad rp
    /// id or origin is an error at start-up, not at the first ceremony.
    /// The factor store must keep passkeys ([`PasskeyStore`](crate::PasskeyStore)).
    pub fn with_passkeys(
        mut self,
        config: crate::passkey::PasskeyConfig,
    ) -> Result<Self, ChallengeError> {
        self.passkeys = Some(PasskeySupport {
            service: Arc::new(config.build()?),
            store: as_passkey_store::<F>,
        });
        Ok(self)
    }

    /// Starts registering a passkey: the options for
    /// `navigator.credentials.create()`, and the ceremony id to finish with.
    /// Credentials already registered are excluded. Starts are counted
    /// ([`AttemptLimits::ceremony_starts`]).
    pub async fn start_passkey_registration(
        &self,
        subject: &Subject,
        user_name: &str,
    ) -> Result<(String, webauthn_rs::prelude::CreationChallengeResponse), ChallengeError> {
        self.start_passkey_registration_dyn(subject, user_name)
            .await
    }

    /// Finishes a registration with the browser's answer and stores the
    /// passkey under `name`. A credential id already registered (to anyone)
    /// is refused.
    pub async fn finish_passkey_registration(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::RegisterPublicKeyCredential,
        name: &str,
    ) -> Result<(), ChallengeError> {
        self.finish_passkey_registration_dyn(attempt, ceremony, response, name)
            .await
    }

    /// Starts a passkey step-up: the options for `navigator.credentials.get()`
    /// (limited to this subject's credentials, user verification required)
    /// and the ceremony id to finish with. Starts are counted
    /// ([`AttemptLimits::ceremony_starts`]).
    pub async fn start_passkey_step_up(
        &self,
        attempt: Attempt<'_>,
    ) -> Result<(String, webauthn_rs::prelude::RequestChallengeResponse), ChallengeError> {
        self.start_passkey_step_up_dyn(attempt).await
    }

    /// Steps up with the browser's passkey assertion for `ceremony`: it
    /// proves [`Method::Passkey`] — or [`Method::DeviceBoundPasskey`] for a
    /// passkey that says it is device-bound, only with
    /// [`PasskeyConfig::trust_unattested_device_binding`](crate::PasskeyConfig::trust_unattested_device_binding).
    pub async fn step_up_passkey(
        &self,
        attempt: Attempt<'_>,
        ceremony: &str,
        response: &webauthn_rs::prelude::PublicKeyCredential,
    ) -> Result<IssuedToken, ChallengeError> {
        self.step_up_passkey_dyn(attempt, ceremony, response).await
    }

    /// The subject's passkeys, in registration order.
    pub async fn passkeys(&self, subject: &Subject) -> Result<Vec<StoredPasskey>, ChallengeError> {
        Ok(crate::PasskeyStore::passkeys(&self.factors, subject).await?)
    }

    /// Renames the subject's passkey with credential id `id`.
    pub async fn rename_passkey(
        &self,
        subject: &Subject,
        id: &[u8],
        name: &str,
    ) -> Result<(), ChallengeError> {
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if self.factors.rename_passkey(subject, id, &name).await? {
            Ok(())
        } else {
            Err(ChallengeError::NotEnrolled(Method::Passkey))
        }
    }

    /// Removes the subject's passkey with credential id `id`, bumps the
    /// subject's epoch (outstanding assurance ends) and notifies. No proof
    /// is checked here: the routes check one first (see
    /// [`authorize_change`](Engine::authorize_change)); call this directly
    /// only from your own support tooling, after your own checks.
    pub async fn remove_passkey(&self, subject: &Subject, id: &[u8]) -> Result<(), ChallengeError> {
        self.remove_passkey_dyn(subject, id).await
    }

    /// The method the subject's passkey `id` proves here, or `None` when the
    /// subject has no passkey with that credential id.
    pub async fn passkey_method(
        &self,
        subject: &Subject,
        id: &[u8],
    ) -> Result<Option<Method>, ChallengeError> {
        self.passkey_method_dyn(subject, id).await
    }
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
