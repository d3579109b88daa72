//! The attempt limiter: counted before verifying, per subject and method
//! across sessions and addresses; a budget shared by all second-factor
//! methods; a consecutive-failure cap that no window resets; failures per
//! client address (IPv6 by prefix).

use std::time::Duration;

use stepup_core::{Method, Timestamp};

use stepup_store::attempts::{
    Admit, Admitted, Advance, Budget, BudgetKeys, Commit, Consecutive, Reenable,
};

use crate::error::ChallengeError;
use crate::keys::{AddressName, Scope, StoreKeys, SubjectName};
use crate::store::StateStore;

/// How many attempts are allowed, and how long lockouts last.
///
/// Defaults, each a guard against a different attacker:
///
/// | budget | default | what it stops |
/// |---|---|---|
/// | per subject and method | 5 failures in 15 minutes, then a lockout of 1 minute doubling with each further lockout within a day (at most 1 day) | fast guessing of one method |
/// | across second-factor methods | 10 failures in 15 minutes, the same lockouts | switching methods (TOTP → e-mail code → recovery code) to multiply the guesses |
/// | consecutive failures per subject and method | 100 (NIST SP 800-63B's limit; may be set lower, never higher), never reset by a window: only by a success with this method, with a factor of the user's own at least as strong (never the password, a recovery code, or an e-mail/SMS code ranked no higher than the password), or [`Engine::reset_attempts`](crate::Engine::reset_attempts) | slow guessing that stays under every window |
/// | failures per client address | 50 in 15 minutes, IPv4 per address, IPv6 per /64 | one client trying many users; successes do not count, so users behind one NAT are not blocked by each other |
/// | wrong guesses per e-mail/SMS code | 3, then the code is void | guessing one code for its whole life |
/// | passkey ceremonies started per subject | 20 in 15 minutes | ceremony exhaustion |
///
/// While locked out, right and wrong input get the same answer. Clients
/// are told only whether few attempts are left, never how many.
///
/// ```
/// use std::time::Duration;
/// use stepup_challenge::AttemptLimits;
///
/// let limits = AttemptLimits::default()
///     .per_subject(3, Duration::from_secs(600))
///     .consecutive_failures(50)
///     .ipv6_prefix(56);
/// assert_eq!(limits.consecutive_cap(), 50);
/// // Never above NIST's 100.
/// assert_eq!(AttemptLimits::default().consecutive_failures(1000).consecutive_cap(), 100);
/// ```
#[derive(Clone, Debug)]
pub struct AttemptLimits {
    pub(crate) per_subject: u64,
    pub(crate) window: Duration,
    pub(crate) first_lockout: Duration,
    pub(crate) max_lockout: Duration,
    pub(crate) across_methods: u64,
    pub(crate) across_window: Duration,
    pub(crate) consecutive: u64,
    pub(crate) per_address: u64,
    pub(crate) address_window: Duration,
    pub(crate) v6_prefix: u8,
    pub(crate) code_guesses: u64,
    pub(crate) ceremony_starts: u64,
    pub(crate) ceremony_window: Duration,
}

/// NIST SP 800-63B §5.2.2: at most 100 consecutive failed attempts.
pub const MAX_CONSECUTIVE_FAILURES: u32 = 100;

impl Default for AttemptLimits {
    fn default() -> Self {
        AttemptLimits {
            per_subject: 5,
            window: Duration::from_secs(15 * 60),
            first_lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(24 * 3600),
            across_methods: 10,
            across_window: Duration::from_secs(15 * 60),
            consecutive: u64::from(MAX_CONSECUTIVE_FAILURES),
            per_address: 50,
            address_window: Duration::from_secs(15 * 60),
            v6_prefix: 64,
            code_guesses: 3,
            ceremony_starts: 20,
            ceremony_window: Duration::from_secs(15 * 60),
        }
    }
}

impl AttemptLimits {
    /// Failures allowed per subject and method within `window` (at least 1).
    pub fn per_subject(mut self, attempts: u32, window: Duration) -> Self {
        self.per_subject = u64::from(attempts.max(1));
        self.window = window.max(Duration::from_secs(1));
        self
    }

    /// The first lockout and the cap for its doubling (each between 1
    /// second and 1 year, clamped).
    pub fn lockout(mut self, first: Duration, max: Duration) -> Self {
        let year = Duration::from_secs(365 * 24 * 3600);
        self.first_lockout = first.clamp(Duration::from_secs(1), year);
        self.max_lockout = max.clamp(self.first_lockout, year);
        self
    }

    /// Failures allowed per subject within `window` across all
    /// second-factor methods together (at least 1).
    pub fn across_methods(mut self, attempts: u32, window: Duration) -> Self {
        self.across_methods = u64::from(attempts.max(1));
        self.across_window = window.max(Duration::from_secs(1));
        self
    }

    /// Consecutive failures per subject and method before the method is
    /// disabled for that subject: 1 to [`MAX_CONSECUTIVE_FAILURES`]
    /// (clamped: never higher).
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive = u64::from(failures.clamp(1, MAX_CONSECUTIVE_FAILURES));
        self
    }

    /// The consecutive-failure cap in force.
    pub fn consecutive_cap(&self) -> u32 {
        u32::try_from(self.consecutive).unwrap_or(MAX_CONSECUTIVE_FAILURES)
    }

    /// Failures allowed per client address within `window` (at least 1),
    /// across all subjects.
    pub fn per_address(mut self, failures: u32, window: Duration) -> Self {
        self.per_address = u64::from(failures.max(1));
        self.address_window = window.max(Duration::from_secs(1));
        self
    }

    /// How many leading bits of an IPv6 address make one client for the
    /// per-address budget: 32 to 128 (clamped), default 64.
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.v6_prefix = bits.clamp(32, 128);
        self
    }

    /// Wrong guesses a pending e-mail or SMS code survives (1 to 10,
    /// clamped; default 3): then it is void and a new one must be sent.
    pub fn wrong_guesses_per_code(mut self, guesses: u32) -> Self {
        self.code_guesses = u64::from(guesses.clamp(1, 10));
        self
    }

    /// Passkey ceremonies a subject may start within `window` (at least 1).
    pub fn ceremony_starts(mut self, starts: u32, window: Duration) -> Self {
        self.ceremony_starts = u64::from(starts.max(1));
        self.ceremony_window = window.max(Duration::from_secs(1));
        self
    }
}

/// When the hint "few attempts left" is given.
const FEW: u64 = 2;

/// The keys of one windowed budget (see [`BudgetKeys`]).
fn budget(scope: Scope, subject: &SubjectName) -> BudgetKeys {
    BudgetKeys {
        attempts: StoreKeys::attempts(scope, subject),
        lock: StoreKeys::lock(scope, subject),
        generation: StoreKeys::generation(scope, subject),
        backoff: StoreKeys::backoff(scope, subject),
    }
}

/// One subject's counters for one method (and the shared ones).
pub(crate) struct Keys {
    method: Method,
    own: BudgetKeys,
    shared: Option<BudgetKeys>,
    /// `None` for passkeys: an assertion cannot be guessed, so a cap would
    /// only let a session holder disable the user's strongest factor.
    consecutive: Option<String>,
    disabled: String,
    /// Set while any method of the subject is disabled, so a success looks
    /// for methods to enable again only then (one read, not one per method).
    any_disabled: String,
}

impl Keys {
    /// The counters of `method` for the subject named `subject`;
    /// second-factor methods (all but the password) also draw on the
    /// shared budget.
    pub(crate) fn new(method: Method, subject: &SubjectName) -> Keys {
        Keys {
            method,
            own: budget(Scope::Method(method), subject),
            shared: (method != Method::Password).then(|| budget(Scope::SecondFactor, subject)),
            consecutive: (!matches!(method, Method::Passkey | Method::DeviceBoundPasskey))
                .then(|| StoreKeys::consecutive(method, subject)),
            disabled: StoreKeys::disabled(method, subject),
            any_disabled: StoreKeys::any_disabled(subject),
        }
    }
}

/// What an admitted attempt may tell the client.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Admission {
    /// Only a few attempts are left before a pause.
    pub(crate) few_left: bool,
}

/// Counts one attempt before it is verified: the address group's lockout
/// (its own slot: one read), then everything of the subject in one
/// [`StateStore::admit`]. `Ok` lets it be checked; a lockout or a disabled
/// method is returned for right and wrong input alike. `address` is the
/// store name of the client's address group. `just_disabled` is set when
/// this attempt is the one that disabled the method (the user is told
/// once, not on every later attempt).
pub(crate) async fn admit<S: StateStore>(
    state: &S,
    limits: &AttemptLimits,
    keys: &Keys,
    address: Option<&AddressName>,
    now: Timestamp,
    just_disabled: &mut bool,
) -> Result<Admission, ChallengeError> {
    if let Some(address) = address
        && let Some(until) = locked(state, &StoreKeys::address_lock(address), now).await?
    {
        return Err(ChallengeError::LockedOut { until });
    }
    let windowed = |keys: &BudgetKeys, allowed: u64, window: Duration| Budget {
        keys: keys.clone(),
        allowed,
        window,
        first_lockout: limits.first_lockout,
        max_lockout: limits.max_lockout,
    };
    let mut budgets = vec![windowed(&keys.own, limits.per_subject, limits.window)];
    if let Some(shared) = &keys.shared {
        budgets.push(windowed(
            shared,
            limits.across_methods,
            limits.across_window,
        ));
    }
    let request = Admit {
        now: now.as_unix_seconds(),
        disabled: keys.disabled.clone(),
        any_disabled: keys.any_disabled.clone(),
        budgets,
        consecutive: keys.consecutive.as_ref().map(|key| Consecutive {
            key: key.clone(),
            cap: limits.consecutive,
        }),
    };
    match state.admit(&request).await? {
        Admitted::Yes { left, consecutive } => Ok(Admission {
            few_left: left <= FEW || consecutive.is_some_and(|n| n + FEW >= limits.consecutive),
        }),
        Admitted::LockedOut { until } => Err(ChallengeError::LockedOut {
            until: Timestamp::from_unix_seconds(until),
        }),
        Admitted::Disabled { just_now } => {
            *just_disabled = just_now;
            Err(ChallengeError::Disabled(keys.method))
        }
    }
}

/// Whether an attempt of `keys.method` would be refused now — the method
/// disabled, a budget or the address group locked — without counting
/// anything (for what is sent before the counted attempt: an approval
/// request is not pushed to a locked-out user's phone).
pub(crate) async fn blocked<S: StateStore>(
    state: &S,
    keys: &Keys,
    address: Option<&AddressName>,
    now: Timestamp,
) -> Result<(), ChallengeError> {
    if state.get(&keys.disabled).await?.is_some() {
        return Err(ChallengeError::Disabled(keys.method));
    }
    let address_lock = address.map(StoreKeys::address_lock);
    let locks = std::iter::once(&keys.own.lock)
        .chain(keys.shared.as_ref().map(|shared| &shared.lock))
        .chain(address_lock.as_ref());
    for lock in locks {
        if let Some(until) = locked(state, lock, now).await? {
            return Err(ChallengeError::LockedOut { until });
        }
    }
    Ok(())
}

/// A failed attempt from `address`: counted, and at the budget the
/// address group is locked for the window.
pub(crate) async fn failed_from<S: StateStore>(
    state: &S,
    limits: &AttemptLimits,
    address: &AddressName,
    now: Timestamp,
) -> Result<(), ChallengeError> {
    let n = state
        .increment(&StoreKeys::address_failures(address), limits.address_window)
        .await?;
    if n >= limits.per_address {
        let until = now + limits.address_window;
        state
            .put(
                &StoreKeys::address_lock(address),
                until.as_unix_seconds().to_string().into_bytes(),
                limits.address_window,
            )
            .await?;
    }
    Ok(())
}

/// A success, in one [`StateStore::commit`]: the TOTP step `advance`
/// first (if it is not newer, nothing else happens and the answer is
/// [`ChallengeError::AlreadyUsed`]); then the method's window, backoff and
/// consecutive count start over (and the shared budget's, for a second
/// factor), the methods in `reenable` (no stronger than this one) are
/// enabled again, and `take` is removed. Returns whether `take` was there.
pub(crate) async fn succeeded<S: StateStore>(
    state: &S,
    keys: &Keys,
    reenable: &[Keys],
    advance: Option<Advance>,
    take: Option<String>,
) -> Result<bool, ChallengeError> {
    let request = Commit {
        advance,
        reset: std::iter::once(keys.own.clone())
            .chain(keys.shared.clone())
            .collect(),
        consecutive: keys.consecutive.clone(),
        any_disabled: keys.any_disabled.clone(),
        reenable: reenable
            .iter()
            .map(|other| Reenable {
                disabled: other.disabled.clone(),
                consecutive: other.consecutive.clone(),
            })
            .collect(),
        take,
    };
    let committed = state.commit(&request).await?;
    if !committed.advanced {
        return Err(ChallengeError::AlreadyUsed);
    }
    Ok(committed.taken)
}

/// Everything about one method, as if no attempt had been made (the
/// application's reset, after its own checks).
pub(crate) async fn reset<S: StateStore>(state: &S, keys: &Keys) -> Result<(), ChallengeError> {
    let request = Commit {
        advance: None,
        reset: vec![keys.own.clone()],
        consecutive: keys.consecutive.clone(),
        any_disabled: keys.any_disabled.clone(),
        reenable: Vec::new(),
        take: None,
    };
    state.commit(&request).await?;
    state.remove(&keys.own.lock).await?;
    state.remove(&keys.disabled).await?;
    Ok(())
}

/// One passkey ceremony start by the subject named `subject`: how many
/// the subject started within the window, this one included.
#[cfg(feature = "passkey")]
pub(crate) async fn ceremony_started<S: StateStore>(
    state: &S,
    limits: &AttemptLimits,
    subject: &SubjectName,
    now: Timestamp,
) -> Result<u64, ChallengeError> {
    let n = state
        .increment(&StoreKeys::ceremony_starts(subject), limits.ceremony_window)
        .await?;
    if n > limits.ceremony_starts {
        return Err(ChallengeError::LockedOut {
            until: now + limits.ceremony_window,
        });
    }
    Ok(n)
}

async fn locked<S: StateStore>(
    state: &S,
    key: &str,
    now: Timestamp,
) -> Result<Option<Timestamp>, ChallengeError> {
    Ok(state
        .get(key)
        .await?
        .and_then(|bytes| std::str::from_utf8(&bytes).ok()?.parse().ok())
        .map(Timestamp::from_unix_seconds)
        .filter(|until| *until > now))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use stepup_core::Subject;

    /// What is sent before a counted attempt (an approval's push) asks
    /// first, counting nothing: a disabled method, a lock of the method's
    /// own budget, of the shared one, of the address group — and not a
    /// lock that is over.
    #[tokio::test]
    async fn blocked_reads_every_lock_and_counts_nothing() {
        use stepup_core::{TestClock, Timestamp};
        use stepup_store::MemoryStateStore;
        let now = Timestamp::from_unix_seconds(1_700_000_000);
        let k = StoreKeys::new(&[1u8; 32]);
        let name = k.subject(&Subject::new("alice"));
        let address = k.address("192.0.2.1".parse().unwrap(), 64);
        let method = Method::custom("approve").unwrap();
        let keys = Keys::new(method, &name);
        let until = |secs: u64| (now.as_unix_seconds() + secs).to_string().into_bytes();
        let hour = Duration::from_secs(3600);
        let shared = keys.shared.as_ref().unwrap().lock.clone();
        for (key, value, expected) in [
            (keys.disabled.clone(), b"1".to_vec(), Some("disabled")),
            (keys.own.lock.clone(), until(60), Some("locked")),
            (shared.clone(), until(60), Some("locked")),
            (StoreKeys::address_lock(&address), until(60), Some("locked")),
            (
                shared,
                (now.as_unix_seconds() - 1).to_string().into_bytes(),
                None,
            ),
        ] {
            let state = MemoryStateStore::new(TestClock::new(now));
            state.put(&key, value, hour).await.unwrap();
            let before = state.len();
            let answer = blocked(&state, &keys, Some(&address), now).await;
            let seen = match answer {
                Ok(()) => None,
                Err(ChallengeError::Disabled(m)) if m == method => Some("disabled"),
                Err(ChallengeError::LockedOut { until }) if until > now => Some("locked"),
                Err(other) => panic!("{key}: {other:?}"),
            };
            assert_eq!(seen, expected, "{key}");
            assert_eq!(state.len(), before, "{key}: nothing counted");
        }
    }

    /// Which keys each method counts in, byte for byte as deployed state
    /// holds them (the layout itself is pinned in `keys`): its own budget,
    /// the shared second-factor budget for all but the password, and a
    /// consecutive-failure count for all but passkeys.
    #[test]
    fn each_method_counts_in_its_pinned_keys() {
        let k = StoreKeys::new(&[1u8; 32]);
        let subject = k.subject(&Subject::new("alice").with_session("s-1"));
        let s = "609410ef7e9286d551b7847737fc71af";
        let methods = [
            (Method::DeviceBoundPasskey, "device_bound_passkey"),
            (Method::Passkey, "passkey"),
            (Method::Totp, "totp"),
            (Method::Password, "password"),
            (Method::EmailCode, "email_code"),
            (Method::SmsCode, "sms_code"),
            (Method::RecoveryCode, "recovery_code"),
            (
                Method::custom("hardware-token").unwrap(),
                "custom:hardware-token",
            ),
        ];
        for (method, name) in methods {
            let keys = Keys::new(method, &subject);
            assert_eq!(keys.method, method);
            let budget = |b: &BudgetKeys| {
                [
                    b.attempts_of(0),
                    b.attempts_of(3),
                    b.lock.clone(),
                    b.generation.clone(),
                    b.backoff.clone(),
                ]
            };
            let expected = |scope: &str| {
                [
                    format!("stepup:attempts:{scope}:{{{s}}}:0"),
                    format!("stepup:attempts:{scope}:{{{s}}}:3"),
                    format!("stepup:lock:{scope}:{{{s}}}"),
                    format!("stepup:generation:{scope}:{{{s}}}"),
                    format!("stepup:backoff:{scope}:{{{s}}}"),
                ]
            };
            assert_eq!(budget(&keys.own), expected(name), "{method}");
            assert_eq!(
                keys.shared.as_ref().map(budget),
                (method != Method::Password).then(|| expected("second-factor")),
                "{method}"
            );
            assert_eq!(
                keys.consecutive,
                (!matches!(method, Method::Passkey | Method::DeviceBoundPasskey))
                    .then(|| format!("stepup:consecutive:{name}:{{{s}}}")),
                "{method}"
            );
            assert_eq!(keys.disabled, format!("stepup:disabled:{name}:{{{s}}}"));
            assert_eq!(keys.any_disabled, format!("stepup:disabled-any:{{{s}}}"));
        }
    }
}
