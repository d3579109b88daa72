//! The engine: one object an adapter calls to run a challenge.
//!
//! One file per flow, each with its own `impl` block of [`Engine`]:
//!
//! * `attempts` — counting an attempt, turning its outcome into a token or
//!   an error, resetting counters;
//! * `events` — events and notices;
//! * `totp` — TOTP step-ups, enrollment and removal;
//! * `passwords` — password step-ups;
//! * `codes` — one-time codes by e-mail or SMS;
//! * `recovery_codes` — recovery-code step-ups and generation;
//! * `passkeys` — passkey registration, step-ups and removal (feature
//!   `passkey`);
//! * `changes` — who may change which factor
//!   ([`FactorChange`](crate::FactorChange));
//! * `account_recovery` — replacing a lost factor after a waiting period.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use stepup_core::{Clock, Issuer, Method, Subject, SystemClock};

use crate::code::{Channel, CodeSender};
use crate::error::{ChallengeError, StoreError};
#[cfg(doc)]
use crate::event::Notice;
use crate::event::{EventSink, NoticeSink};
use crate::keys::StoreKeys;
use crate::limiter::AttemptLimits;
use crate::store::{FactorStore, PasswordVerifier, StateStore};
use crate::totp::TotpConfig;

mod account_recovery;
mod actions;
mod attempts;
mod changes;
mod codes;
mod custom;
mod events;
mod forms;
mod funnel;
#[cfg(feature = "passkey")]
mod passkeys;
mod passwords;
mod recovery_codes;
mod totp;
mod upstream;

pub use account_recovery::PendingRecovery;
pub use actions::{ActionLimits, PendingAction};
pub(crate) use actions::{Confirmed, Opened as ActionOpened};
pub use codes::{CodeSent, CodeSettings};
pub use custom::{Approval, ApprovalShown, ApprovalStarted, ApprovalState};
pub(crate) use forms::{Again, Came};
pub use forms::{FormLimits, KeptForm};
pub use totp::TotpEnrollment;

use crate::i18n::Lang;
use changes::ChangeSettings;
#[cfg(feature = "passkey")]
use passkeys::PasskeySupport;

/// Who is stepping up, from where, with which previous token.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    subject: &'a Subject,
    previous: Option<&'a str>,
    address: Option<IpAddr>,
    context: Option<&'a [u8]>,
    user_agent: Option<&'a [u8]>,
    action: Option<&'a str>,
    lang: Lang,
}

impl<'a> Attempt<'a> {
    /// An attempt by `subject`.
    pub fn new(subject: &'a Subject) -> Attempt<'a> {
        Attempt {
            subject,
            previous: None,
            address: None,
            context: None,
            user_agent: None,
            action: None,
            lang: Lang::EN,
        }
    }

    /// Made for the bound action whose ceremony is `id`: checked before
    /// the answer is (a ceremony that is gone consumes nothing), and on
    /// success turned into the action's single-use grant. A code must
    /// have been sent for the same ceremony, a passkey ceremony started
    /// for it.
    pub fn for_action(mut self, id: &'a str) -> Self {
        self.action = Some(id);
        self
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

    /// The client's `User-Agent` header: an approval on another device
    /// shows its browser family (never the full string) with the
    /// network, so the person approving sees where the request came from.
    pub fn from_user_agent(mut self, user_agent: &'a [u8]) -> Self {
        self.user_agent = Some(user_agent);
        self
    }

    /// The client context to record in the token (see
    /// [`Issuer::issue_in_context`]).
    pub fn in_context(mut self, context: &'a [u8]) -> Self {
        self.context = Some(context);
        self
    }

    /// The person's language (English unless told): a code sent for
    /// this attempt says so in [`CodeMessage::lang`](crate::CodeMessage::lang).
    ///
    /// ```
    /// use stepup_challenge::Attempt;
    /// use stepup_challenge::i18n::Lang;
    /// use stepup_core::Subject;
    /// let alice = Subject::new("alice");
    /// let attempt = Attempt::new(&alice).in_language(Lang::DE);
    /// # let _ = attempt;
    /// ```
    pub fn in_language(mut self, lang: Lang) -> Self {
        self.lang = lang;
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
    journeys: std::sync::Mutex<funnel::Journeys>,
    custom: Vec<Arc<dyn crate::custom::CustomFactor>>,
    funnel_window: Duration,
    event_keys: StoreKeys,
    keys: StoreKeys,
    sender: Option<Arc<dyn CodeSender>>,
    codes: CodeSettings,
    changes: ChangeSettings,
    actions: ActionLimits,
    #[cfg(feature = "passkey")]
    passkeys: Option<PasskeySupport<F>>,
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
            journeys: Default::default(),
            custom: Vec::new(),
            funnel_window: funnel::DEFAULT_WINDOW,
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
            actions: ActionLimits::default(),
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
            journeys: self.journeys,
            custom: self.custom,
            funnel_window: self.funnel_window,
            event_keys: self.event_keys,
            keys: self.keys,
            sender: self.sender,
            codes: self.codes,
            changes: self.changes,
            actions: self.actions,
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

    /// How step-ups bound to an action are confirmed (ceremony and grant
    /// lifetimes, attempts, ceremonies per session).
    pub fn with_action_limits(mut self, limits: ActionLimits) -> Self {
        self.actions = limits;
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
        if self.factors.has_totp_secret(subject).await? {
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
        for factor in &self.custom {
            if factor.enrolled(subject).await? {
                methods.push(factor.method());
            }
        }
        Ok(methods)
    }
}
