//! What the demo banks (`axum-bank`, `actix-bank`) share, so that the two
//! differ only in how their framework is wired: the users and their login
//! sessions, the balances and the transfer rule, the step-up policies, the
//! HTML pages, the stepup engine and the start-up settings from the
//! environment.
//!
//! The contract both banks keep (and the conformance suite in `tests/`
//! checks against both):
//!
//! | route | what |
//! |---|---|
//! | `GET /` | log-in form, or the balance and a transfer form |
//! | `POST /login`, `POST /logout` | form `username`, `password` → session cookie `bank_session`; log-ins throttled ([`LoginThrottle`]: 429 with `Retry-After`) |
//! | `GET /account` | `{"user", "balance"}` (401 without a login), `Cache-Control: no-store` |
//! | `GET /statements` | level 2 within 10 minutes |
//! | `POST /transfer` | `to`, `amount` (form or JSON); level 2 within 5 minutes, over 10,000 also a TOTP or passkey proof from the last minute |
//! | `GET /settings` | enrollment links |
//! | `POST /settings/close-account` | a passkey within 5 minutes |
//! | `/step-up/…` | the stepup challenge routes |
//!
//! Every `POST` of the bank's own (`/login`, `/logout`, `/transfer`,
//! `/settings/close-account`) must come from the bank's origin (stepup's
//! same-origin check, 403 otherwise), and the pages a step-up protects are
//! sent with `Cache-Control: no-store`.
//!
//! Users: `alice` / `wonderland` (TOTP enrolled, e-mail codes to
//! `alice@example.com`), `bob` / `builder` (no second factor), `carol` /
//! `looking-glass` (e-mail codes to `carol@example.com` only).
//!
//! Factor changes are announced as [`stepup_challenge::Notice`]s, printed on
//! the console (a real bank e-mails and texts them).
//!
//! # Where the data lives
//!
//! The users' factors (TOTP secrets, passkeys, recovery codes, code
//! destinations, assurance epochs) are kept by [`stepup_sqlx::SqlStore`],
//! in SQLite by default, so Alice's passkey and Bob's new TOTP survive a
//! restart. TOTP secrets and passkeys are sealed under a sealing key. With
//! nothing set, a bank keeps both in its data directory, `bank-data/<bank>`
//! under the working directory (created owner-only, mode 0700, and printed
//! at start-up):
//!
//! | file | what |
//! |---|---|
//! | `factors.db` (and SQLite's `-wal`, `-shm`) | the factor database |
//! | `sealing.key` | the sealing key, generated on the first start, mode 0600 |
//!
//! A new database is seeded: Alice's TOTP secret, Alice's and Carol's
//! e-mail addresses for codes, and the load-test users' TOTP secrets. On an
//! existing database the stored factors stand (a TOTP Bob enrolled, a
//! passkey Alice removed): the seeding settings apply to a new database
//! only. Delete the data directory (with the bank stopped) to start afresh.
//! Logins, balances, step-up attempts and ceremonies stay in memory: a
//! restart logs everybody out.
//!
//! # Environment
//!
//! What [`Startup::from_env`] reads:
//!
//! | variable | default | what |
//! |---|---|---|
//! | `BANK_ADDR` | `127.0.0.1:3000` | where to listen (`127.0.0.1:0`: a free port, printed) |
//! | `BANK_STEPUP_KEY` | a fresh random key | the stepup key (base64, 32+ bytes); without it assurances do not survive a restart |
//! | `BANK_DATA_DIR` | `bank-data/<bank>` | the data directory, created with mode 0700 when missing |
//! | `BANK_DATABASE_URL` | `sqlite://<data dir>/factors.db` | the factor database: `sqlite:…` or `postgres://…` (printed without its password) |
//! | `BANK_SEALING_KEY` | the key in `<data dir>/sealing.key` | the sealing keys in text form, `ID:KEY`, or a ring `2:NEW,1:OLD` (see [`SealingKeys::parse`]) |
//! | `BANK_DEMO_TOTP_SECRET` | a fresh random secret | Alice's TOTP secret (base32) **for a new database only** |
//! | `BANK_SOAK_USERS` | 0 | load-test users `user1` … `userN` (password `pw-userI`, TOTP with Alice's secret on a new database) |
//!
//! Without `BANK_SEALING_KEY`, the key file is generated on the first
//! start (`create_new`, mode 0600) and read on the next ones; a key file
//! its group or others may read or write is refused, as ssh refuses a
//! private key that is too open (`chmod 600` it). Keep the key with the
//! database: without it nothing sealed opens (the bank then refuses to
//! start, as it does with another key than the database was sealed under).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use stepup_challenge::{
    AttemptLimits, Channel, CodeSender, Engine, FactorStore as _, InsecureConsoleSender,
    InsecureFixedPasswords, MemoryStateStore, PasskeyConfig, TotpConfig, TotpSecret,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Method, Policy, Subject, TokenConfig};
use stepup_sqlx::SqlStore;

mod data;
mod throttle;

pub use data::{DATABASE_FILE, SEALING_KEY_FILE, redact_url};
pub use stepup_sqlx::{SealingKey, SealingKeys};
pub use throttle::{LoginLimits, LoginThrottle};

/// The demo users: (name, password).
pub const USERS: [(&str, &str); 3] = [
    ("alice", "wonderland"),
    ("bob", "builder"),
    ("carol", "looking-glass"),
];
/// Carol's e-mail address: her only second factor.
pub const CAROL_EMAIL: &str = "carol@example.com";
/// The bank's login cookie.
pub const SESSION_COOKIE: &str = "bank_session";
/// Alice's e-mail address, where her one-time codes go.
pub const ALICE_EMAIL: &str = "alice@example.com";
/// The TOTP issuer name both banks show in authenticator apps.
pub const TOTP_ISSUER: &str = "stepup-bank";
/// The `Set-Cookie` that ends the login session.
pub const LOGOUT_COOKIE: &str = "bank_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0";

/// The engine both banks run: the users' factors in SQL
/// ([`SqlStore`]), the short-lived state in memory.
pub type BankEngine = Engine<SqlStore, MemoryStateStore, InsecureFixedPasswords>;

/// What a bank needs to start.
pub struct BankConfig {
    /// The origin the bank is served from (`http://localhost:3000`).
    pub origin: String,
    /// The 32+ byte stepup key.
    pub key: Vec<u8>,
    /// Alice's TOTP secret, seeded into a new database only.
    pub alice_totp: TotpSecret,
    /// The factor database: `sqlite:…` (`sqlite::memory:` in tests) or
    /// `postgres://…`.
    pub database_url: String,
    /// The keys the factor store seals TOTP secrets and passkeys under.
    pub sealing_keys: SealingKeys,
    /// Print what the factor store holds for the demo once it is open —
    /// the database (without its password), whether it was new, Alice's
    /// TOTP secret as stored — as the binaries do ([`Startup::config`]);
    /// tests leave it off.
    pub print_startup: bool,
    /// The clock (a `TestClock` in tests).
    pub clock: Arc<dyn Clock>,
    /// Where one-time codes go (the console in the demo; a recording
    /// sender in tests).
    pub codes: Arc<dyn CodeSender>,
    /// Attempt limits other than the defaults (tests use small ones).
    pub limits: Option<AttemptLimits>,
    /// Extra users for load tests: `user1` … `userN`, password
    /// `pw-userI`, TOTP enrolled with Alice's secret on a new database
    /// (`BANK_SOAK_USERS`).
    pub extra_users: usize,
    /// A level table other than NIST's (tests of the factor-change rule).
    pub levels: Option<stepup_core::LevelTable>,
    /// Where step-up events go besides the log (tests count the funnel).
    pub events: Option<Arc<dyn stepup_challenge::EventSink>>,
    /// The approve links of "Approve on your other device" (printed on
    /// the console too; tests read them here).
    pub approvals: Approvals,
}

/// How many approve links [`Approvals`] keeps.
const KEPT_APPROVE_LINKS: usize = 64;

/// The approve links the bank sent to users' "other device" (the
/// console), newest last (the last 64).
#[derive(Clone, Debug, Default)]
pub struct Approvals(Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl Approvals {
    /// The last approve link sent to `user` (a full URL).
    pub fn last_to(&self, user: &str) -> Option<String> {
        let sent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter()
            .rev()
            .find(|(u, _)| u == user)
            .map(|(_, url)| url.clone())
    }

    /// How many of the kept links went to `user`.
    pub fn count_to(&self, user: &str) -> usize {
        let sent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        sent.iter().filter(|(u, _)| u == user).count()
    }
}

/// The bank's own step-up method: "Approve on your other device", a
/// push-style approval whose link the demo prints on the console (a real
/// bank sends it to the user's phone). Alice has it; it expires after two
/// minutes; it counts as level 2 (`mca`: RFC 8176's multiple-channel
/// authentication).
#[derive(Debug)]
pub struct DeviceApproval {
    origin: String,
    sent: Approvals,
}

/// The method "Approve on your other device" is.
pub fn approve_method() -> stepup_core::Method {
    // A constant, valid name.
    #[allow(clippy::expect_used)]
    stepup_core::Method::custom("approve").expect("a valid custom method name")
}

impl stepup_challenge::CustomFactor for DeviceApproval {
    fn method(&self) -> stepup_core::Method {
        approve_method()
    }

    fn title(&self) -> &str {
        "Approve on your other device"
    }

    fn kind(&self) -> stepup_challenge::CustomKind {
        stepup_challenge::CustomKind::Approval {
            lifetime: Duration::from_secs(120),
        }
    }

    fn enrolled<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> stepup_http::BoxFuture<'a, Result<bool, stepup_challenge::StoreError>> {
        Box::pin(async move { Ok(subject.id() == "alice") })
    }

    fn request_approval<'a>(
        &'a self,
        request: stepup_challenge::ApprovalRequest<'a>,
    ) -> stepup_http::BoxFuture<'a, Result<(), stepup_challenge::StoreError>> {
        Box::pin(async move {
            let url = format!("{}{}", self.origin, request.approve_url);
            let user = request.subject.id().to_owned();
            match request.action {
                Some(action) => println!("APPROVE for {user} ({action}): {url}"),
                None => println!("APPROVE for {user}: {url}"),
            }
            let mut sent = self.sent.0.lock().unwrap_or_else(|p| p.into_inner());
            // The demo keeps the last few (the tests read the newest).
            if sent.len() >= KEPT_APPROVE_LINKS {
                sent.remove(0);
            }
            sent.push((user, url));
            Ok(())
        })
    }
}

/// Every user of a bank with `extra` load-test users: (name, password).
pub fn users(extra: usize) -> Vec<(String, String)> {
    USERS
        .iter()
        .map(|(u, p)| ((*u).to_owned(), (*p).to_owned()))
        .chain((1..=extra).map(|i| (format!("user{i}"), format!("pw-user{i}"))))
        .collect()
}

impl std::fmt::Debug for BankConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankConfig")
            .field("origin", &self.origin)
            .field("database_url", &redact_url(&self.database_url))
            .finish_non_exhaustive()
    }
}

/// A clock shared between the engine, the stores and the adapter.
#[derive(Clone, Debug)]
pub struct ClockHandle(pub Arc<dyn Clock>);

impl Clock for ClockHandle {
    fn now(&self) -> stepup_core::Timestamp {
        self.0.now()
    }
}

/// A code sender shared with the caller.
#[derive(Clone)]
struct SenderHandle(Arc<dyn CodeSender>);

impl CodeSender for SenderHandle {
    fn send<'a>(
        &'a self,
        message: stepup_challenge::CodeMessage<'a>,
    ) -> stepup_challenge::SendFuture<'a> {
        self.0.send(message)
    }
}

/// The bank's event sink, if any (the log has every event anyway).
struct EventHandle(Option<Arc<dyn stepup_challenge::EventSink>>);

impl stepup_challenge::EventSink for EventHandle {
    fn record(&self, event: &stepup_challenge::Event) {
        if let Some(sink) = &self.0 {
            sink.record(event);
        }
    }
}

/// The stepup side of a bank: the engine (its issuer gives the adapters
/// their gate) on the factor store of [`open_factors`].
pub async fn stepup(config: &BankConfig) -> Result<BankEngine, Box<dyn std::error::Error>> {
    let levels = config
        .levels
        .clone()
        .unwrap_or_else(stepup_core::LevelTable::nist)
        .with_custom_method(approve_method(), 2, &["mca"]);
    let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &config.key)?))
        .with_levels(levels);
    let clock = ClockHandle(config.clock.clone());
    let factors = open_factors(config).await?;
    let users = users(config.extra_users);
    let engine = Engine::new(
        tokens.issuer(),
        factors,
        MemoryStateStore::new(clock.clone()),
    )
    .with_clock(clock)
    .with_totp(TotpConfig::new(TOTP_ISSUER))
    .with_passwords(InsecureFixedPasswords::new(
        users.iter().map(|(u, p)| (u.as_str(), p.as_str())),
    ))
    .with_code_sender(SenderHandle(config.codes.clone()))
    .with_limits(config.limits.clone().unwrap_or_default())
    .with_notice_sink(print_notice)
    .with_event_sink(EventHandle(config.events.clone()))
    .with_custom_factor(DeviceApproval {
        origin: config.origin.clone(),
        sent: config.approvals.clone(),
    })
    // Passkeys need a domain as relying party: the demo runs on `localhost`
    // (browsers treat http://localhost as a secure context).
    .with_passkeys(PasskeyConfig::new("localhost", &config.origin, TOTP_ISSUER))?;
    Ok(engine)
}

/// Opens the factor store of `config` and brings its schema up to date.
/// A new database (the schema's first version applied now) is seeded:
/// Alice's TOTP secret, Alice's and Carol's e-mail addresses and the
/// load-test users' TOTP secrets; on an existing one the stored factors
/// stand. Prints what it holds for Alice when `config.print_startup`.
pub async fn open_factors(config: &BankConfig) -> Result<SqlStore, Box<dyn std::error::Error>> {
    let shown = redact_url(&config.database_url);
    let context = |e: stepup_challenge::StoreError| format!("the factor database {shown}: {e}");
    let factors = SqlStore::connect(&config.database_url, config.sealing_keys.clone())
        .await
        .map_err(context)?;
    let new = factors.migrate().await.map_err(context)?.contains(&1);
    if new {
        seed(&factors, config).await.map_err(context)?;
    }
    if config.print_startup {
        if new {
            println!(
                "Factors: {shown} (a new database: seeded Alice's TOTP secret and the e-mail \
                 addresses for codes)"
            );
        } else {
            println!(
                "Factors: {shown} (an existing database: its factors stand; \
                 BANK_DEMO_TOTP_SECRET applies to a new database only)"
            );
        }
        match factors
            .totp_secret(&Subject::new("alice"))
            .await
            .map_err(context)?
        {
            Some(secret) => {
                println!("Alice's TOTP secret: {}", secret.to_base32());
                println!(
                    "Add it to an authenticator app: {}",
                    TotpConfig::new(TOTP_ISSUER).otpauth_uri(&secret, "alice")?
                );
            }
            None => println!("Alice has no TOTP secret (she removed it): she may enroll one."),
        }
    }
    Ok(factors)
}

/// What a new database starts with.
async fn seed(factors: &SqlStore, config: &BankConfig) -> Result<(), stepup_challenge::StoreError> {
    let alice = Subject::new("alice");
    factors
        .set_totp_secret(&alice, config.alice_totp.clone())
        .await?;
    factors
        .set_code_destination(&alice, Channel::Email, Some(ALICE_EMAIL))
        .await?;
    factors
        .set_code_destination(&Subject::new("carol"), Channel::Email, Some(CAROL_EMAIL))
        .await?;
    for i in 1..=config.extra_users {
        factors
            .set_totp_secret(&Subject::new(format!("user{i}")), config.alice_totp.clone())
            .await?;
    }
    Ok(())
}

/// Where a real bank would e-mail and text the user: "a passkey was added
/// to your account", "an account recovery started: cancel it if it was not
/// you".
fn print_notice(notice: &stepup_challenge::Notice<'_>) {
    println!(
        "NOTICE to {}: {} ({}){}",
        notice.subject.id(),
        notice.kind.as_str(),
        notice.method,
        notice
            .ready_at
            .map(|t| format!(", ready at {}", t.as_unix_seconds()))
            .unwrap_or_default()
    );
}

/// `GET /statements`: level 2 within an hour on the same network and
/// browser as the step-up — asked again at once when either changes.
pub fn statements_policy() -> Policy {
    Policy::level(2)
        .max_age(Duration::from_secs(3600))
        .and(Policy::same_context())
        .with_reason("Statements show sensitive data: please confirm it's you.")
}

/// `POST /transfer`: level 2 within 5 minutes.
pub fn transfer_policy() -> Policy {
    Policy::level(2)
        .max_age(Duration::from_secs(300))
        .with_reason("We need to confirm it's really you before moving money.")
}

/// A transfer over [`BIG_TRANSFER`]: a step-up bound to its exact amount
/// and payee (PSD2 dynamic linking), by a level-2 factor or an e-mail code
/// that names the transfer, within 5 minutes.
pub fn big_transfer_policy() -> Policy {
    Policy::bound()
        .and(
            Policy::level(2)
                .or(Policy::method(Method::EmailCode))
                .max_age(Duration::from_secs(300)),
        )
        .with_reason(
            "Transfers over 10,000 are confirmed one by one, for their exact amount and payee.",
        )
}

/// The action `POST /transfer` is bound to: the amount (a decimal with at
/// most two places, written with two: `12000.00`) and the payee (`to`,
/// trimmed), read once from the form or JSON body. What the pages and an
/// e-mail code say: "Send 12,000.00 to bob".
pub fn transfer_action() -> Result<stepup_http::ActionSpec, stepup_http::SpecError> {
    use stepup_http::{ActionSpec, Normalise};
    ActionSpec::builder("payment")
        .field("amount", Normalise::Amount { scale: 2 })
        .field("to", Normalise::Trimmed)
        .summary_with(|action| {
            let amount = action.detail("amount").unwrap_or("");
            let to = action.detail("to").unwrap_or("");
            format!("Send {} to {to}", grouped(amount))
        })
        .build()
}

/// The policy of a bound transfer: [`big_transfer_policy`] over
/// [`BIG_TRANSFER`], else the route's own.
pub fn bound_transfer_policy(
    big: Arc<Policy>,
) -> impl Fn(&stepup_http::BoundAction) -> Option<Arc<Policy>> + Send + Sync + 'static {
    move |action| {
        // In cents, whatever the bank accepts later: an amount that does
        // not read as one is treated as big (never the lighter policy).
        let cents = action
            .get("amount")
            .and_then(|a| a.replace('.', "").parse::<u128>().ok());
        match cents {
            Some(cents) if cents <= u128::from(BIG_TRANSFER) * 100 => None,
            _ => Some(big.clone()),
        }
    }
}

/// `12000.00` as `12,000` (whole amounts without cents), `12000.50` as
/// `12,000.50`.
fn grouped(amount: &str) -> String {
    let (whole, cents) = amount.split_once('.').unwrap_or((amount, ""));
    let mut out = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if !cents.is_empty() && cents.bytes().any(|b| b != b'0') {
        out.push('.');
        out.push_str(cents);
    }
    out
}

/// What the close-account form does.
pub fn close_summary(_: &stepup_http::FormFields) -> Option<String> {
    Some("Close your account".to_owned())
}

/// Above this amount [`big_transfer_policy`] applies too.
pub const BIG_TRANSFER: u64 = 10_000;

/// `POST /settings/close-account`: a passkey within 5 minutes.
pub fn close_policy() -> Policy {
    Policy::method(Method::Passkey)
        .max_age(Duration::from_secs(300))
        .with_reason("Closing your account needs a passkey from the last five minutes.")
}

/// Users, sessions and balances.
#[derive(Clone, Debug)]
pub struct Bank {
    users: Arc<HashMap<String, String>>,
    sessions: Arc<Mutex<HashMap<String, String>>>,
    balances: Arc<Mutex<HashMap<String, u64>>>,
    epochs: Option<SqlStore>,
    throttle: LoginThrottle<MemoryStateStore>,
}

impl Default for Bank {
    fn default() -> Self {
        Bank::with_extra_users(0)
    }
}

impl Bank {
    /// Alice, Bob and `extra` load-test users (1,000 each in the bank).
    /// Log-ins are throttled under a random key on the system clock until
    /// [`with_login_throttle`](Bank::with_login_throttle) says otherwise.
    pub fn with_extra_users(extra: usize) -> Bank {
        let mut balances = HashMap::from([
            ("alice".to_owned(), 125_000),
            ("bob".to_owned(), 900),
            ("carol".to_owned(), 4_000),
        ]);
        for i in 1..=extra {
            balances.insert(format!("user{i}"), 1_000);
        }
        Bank {
            users: Arc::new(users(extra).into_iter().collect()),
            sessions: Arc::default(),
            balances: Arc::new(Mutex::new(balances)),
            epochs: None,
            throttle: {
                // Only names this process's entries; the banks key it with
                // the bank's key (shared by every instance).
                let mut key = [0u8; 32];
                let _ = getrandom::fill(&mut key);
                LoginThrottle::new(MemoryStateStore::default(), &key, stepup_core::SystemClock)
            },
        }
    }

    /// Throttles log-ins ([`LoginLimits::default`]) with store names keyed
    /// by the bank's key, on the configured clock.
    pub fn with_login_throttle(mut self, config: &BankConfig) -> Bank {
        let clock = ClockHandle(config.clock.clone());
        let store = MemoryStateStore::new(clock.clone());
        self.throttle = LoginThrottle::new(store, &config.key, clock);
        self
    }

    /// Reads each user's assurance epoch from `factors` (the engine's
    /// factor store, which bumps it when a factor is removed or replaced),
    /// so a factor change ends every outstanding assurance.
    pub fn with_epochs_from(mut self, factors: &SqlStore) -> Bank {
        self.epochs = Some(factors.clone());
        self
    }
}

/// The body of `POST /transfer`.
#[derive(Deserialize, Debug)]
pub struct TransferInput {
    /// The recipient.
    pub to: String,
    /// How much.
    pub amount: u64,
}

impl TransferInput {
    /// The transfer a bound request confirmed ([`transfer_action`]): the
    /// values the layer read once, never the body again. The bank moves
    /// whole units: an amount with cents is refused.
    pub fn from_action(action: &stepup_http::BoundAction) -> Result<TransferInput, &'static str> {
        let amount = action.get("amount").ok_or("send `amount`")?;
        let whole = amount
            .strip_suffix(".00")
            .ok_or("this bank moves whole amounts only")?;
        Ok(TransferInput {
            to: action.get("to").ok_or("send `to`")?.to_owned(),
            amount: whole.parse().map_err(|_| "the amount is too large")?,
        })
    }
}

/// The body of `POST /login`.
#[derive(Deserialize, Debug)]
pub struct LoginInput {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// How a log-in ended.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in: the `Set-Cookie` value of the new session.
    LoggedIn(String),
    /// Wrong user name or password (401).
    Refused,
    /// Too many failures for this user name or from this address: refused
    /// whatever the password (429 with `Retry-After`).
    Throttled {
        /// When to try again.
        retry_after: Duration,
    },
    /// The throttle's store or the random source failed: refused (503).
    Unavailable,
}

/// Why a transfer did not happen.
pub const TRANSFER_REFUSED: &str = "unknown recipient or not enough money";

impl Bank {
    /// The subject of a login session — user *and session*, so an assurance
    /// never outlives the login — from the `Cookie` header values, with
    /// the user's assurance epoch from the factor store
    /// ([`with_epochs_from`](Bank::with_epochs_from); 0 without one).
    ///
    /// The session is looked up now; the future reads the epoch and borrows
    /// nothing. It is `None` when nobody is logged in, and also when the
    /// epoch cannot be read: fail closed, the request is treated as logged
    /// out (never as epoch 0, which would revive assurances a factor
    /// change ended).
    pub fn subject<'a>(
        &self,
        cookies: impl IntoIterator<Item = &'a [u8]>,
    ) -> impl Future<Output = Option<Subject>> + Send + 'static {
        let session = session_id(cookies).and_then(|sid| {
            let user = self.sessions.lock().ok()?.get(&sid).cloned()?;
            Some((user, sid))
        });
        let epochs = session.as_ref().and(self.epochs.clone());
        async move {
            let (user, sid) = session?;
            let epoch = match epochs {
                Some(factors) => match factors.epoch(&user).await {
                    Ok(epoch) => epoch,
                    Err(e) => {
                        eprintln!("bank: no subject, the epoch is unknown: {e}");
                        return None;
                    }
                },
                None => 0,
            };
            Some(Subject::new(user).with_session(sid).with_epoch(epoch))
        }
    }

    /// Checks the password — unless the [`LoginThrottle`] refuses first —
    /// and opens a session. `address` is the client's (the per-address
    /// budget); `None` counts per user name only.
    pub async fn login(&self, input: &LoginInput, address: Option<IpAddr>) -> LoginOutcome {
        let check = || {
            self.users
                .get(&input.username)
                .is_some_and(|p| stepup_core::ct::eq(p.as_bytes(), input.password.as_bytes()))
        };
        match self.throttle.attempt(&input.username, address, check).await {
            Ok(Ok(true)) if self.is_open(&input.username) => {}
            Ok(Ok(_)) => return LoginOutcome::Refused,
            Ok(Err(retry_after)) => return LoginOutcome::Throttled { retry_after },
            Err(_) => return LoginOutcome::Unavailable,
        }
        let mut raw = [0u8; 16];
        if getrandom::fill(&mut raw).is_err() {
            return LoginOutcome::Unavailable;
        }
        let sid: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.insert(sid.clone(), input.username.clone());
        }
        LoginOutcome::LoggedIn(format!(
            "{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax"
        ))
    }

    /// Ends the session named in the `Cookie` header values.
    pub fn logout<'a>(&self, cookies: impl IntoIterator<Item = &'a [u8]>) {
        if let (Some(sid), Ok(mut sessions)) = (session_id(cookies), self.sessions.lock()) {
            sessions.remove(&sid);
        }
    }

    /// The balance of `user`.
    pub fn balance_of(&self, user: &str) -> u64 {
        self.balances
            .lock()
            .ok()
            .and_then(|b| b.get(user).copied())
            .unwrap_or(0)
    }

    /// Moves money; the new balance, or `None` (unknown recipient, not
    /// enough money).
    pub fn transfer(&self, from: &str, input: &TransferInput) -> Option<u64> {
        let mut balances = self.balances.lock().ok()?;
        let have = balances.get(from).copied().unwrap_or(0);
        if have < input.amount || !balances.contains_key(&input.to) || input.to == from {
            return None;
        }
        balances.insert(from.to_owned(), have - input.amount);
        *balances.entry(input.to.clone()).or_default() += input.amount;
        Some(have - input.amount)
    }

    /// Closes the account of `subject`: no balance, every session of the
    /// user ended, and no more log-ins.
    pub fn close(&self, subject: &Subject) {
        if let Ok(mut balances) = self.balances.lock() {
            balances.remove(subject.id());
        }
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|_, user| user != subject.id());
        }
    }

    /// Whether `user` has an open account (a closed one has no balance).
    fn is_open(&self, user: &str) -> bool {
        self.balances.lock().is_ok_and(|b| b.contains_key(user))
    }
}

fn session_id<'a>(cookies: impl IntoIterator<Item = &'a [u8]>) -> Option<String> {
    let prefix = format!("{SESSION_COOKIE}=");
    cookies
        .into_iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(&prefix).map(str::to_owned))
}

/// The pages, as HTML text.
pub mod pages {
    fn page(body: &str) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>stepup bank</title>\
             <link rel=\"stylesheet\" href=\"/step-up/assets/page.css\"></head><body><main>{body}</main></body></html>"
        )
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    }

    /// `GET /` without a login.
    pub fn login() -> String {
        page(
            "<h1>stepup bank</h1><form method=\"post\" action=\"/login\">\
             <label for=\"u\">User</label><input id=\"u\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"p\">Password</label><input id=\"p\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button>Log in</button></form><p>Demo: alice / wonderland, bob / builder.</p>",
        )
    }

    /// A failed login.
    pub fn login_failed() -> String {
        page("<p>Wrong user or password. <a href=\"/\">Try again</a></p>")
    }

    /// A throttled login: the same for a right and a wrong password.
    pub fn login_throttled(retry_after: std::time::Duration) -> String {
        let minutes = retry_after.as_secs().div_ceil(60).max(1);
        page(&format!(
            "<p>Too many failed log-ins. Try again in {minutes} minute(s). <a href=\"/\">Back</a></p>"
        ))
    }

    /// `GET /` for `user`.
    pub fn home(user: &str, balance: u64) -> String {
        page(&format!(
            "<h1>Hello, {user}</h1><p>Balance: {balance}</p>\
             <h2>Transfer</h2><form method=\"post\" action=\"/transfer\">\
             <label for=\"to\">To</label><input id=\"to\" name=\"to\" required>\
             <label for=\"amount\">Amount</label><input id=\"amount\" name=\"amount\" inputmode=\"numeric\" required>\
             <button>Send</button></form>\
             <p><a href=\"/statements\">Statements</a> · <a href=\"/settings\">Settings</a></p>\
             <form method=\"post\" action=\"/logout\"><button>Log out</button></form>",
            user = escape(user),
        ))
    }

    /// After closing the account from the settings page.
    pub fn closed() -> String {
        page(
            "<h1>Account closed</h1><p>Your account is closed and you are logged out.</p><p><a href=\"/\">Home</a></p>",
        )
    }

    /// `GET /statements`.
    pub fn statements(level: u8) -> String {
        page(&format!(
            "<h1>Statements</h1><p>(Confirmed at level {level}.)</p><ul><li>2026-11-01 salary +4,200</li>\
             <li>2026-11-03 rent -1,350</li></ul><p><a href=\"/\">Back</a></p>"
        ))
    }

    /// `GET /settings`.
    pub fn settings() -> String {
        page(
            "<h1>Settings</h1>\
             <p><a href=\"/step-up/enroll/passkey\">Set up a passkey</a></p>\
             <p><a href=\"/step-up/enroll/totp\">Set up an authenticator app</a></p>\
             <form method=\"post\" action=\"/step-up/enroll/recovery-codes\"><button>New recovery codes</button></form>\
             <h2>Danger zone</h2>\
             <form method=\"post\" action=\"/settings/close-account\"><button>Close my account</button></form>\
             <p><a href=\"/\">Back</a></p>",
        )
    }
}

/// The settings a bank's `main` reads from the environment (every
/// variable is in the [crate docs](crate#environment)).
#[derive(Debug)]
pub struct Startup {
    /// The bank's name (`axum-bank`): its data directory's default name.
    pub name: String,
    /// `BANK_ADDR` (default `127.0.0.1:3000`).
    pub addr: String,
    /// `BANK_STEPUP_KEY` (base64), or a fresh random key.
    pub key: Vec<u8>,
    /// `BANK_DEMO_TOTP_SECRET` (base32), or a fresh random secret: Alice's
    /// TOTP secret in a new database (an existing one keeps its own).
    pub alice_totp: TotpSecret,
    /// `BANK_SOAK_USERS`: extra users for load tests (default 0).
    pub extra_users: usize,
    /// `BANK_DATA_DIR` (default `bank-data/<name>` under the working
    /// directory), absolute; created with mode 0700 when missing. `None`
    /// when nothing is kept there (both `BANK_DATABASE_URL` and
    /// `BANK_SEALING_KEY` given).
    pub data_dir: Option<PathBuf>,
    /// `BANK_DATABASE_URL` (default `sqlite://<data dir>/factors.db`).
    pub database_url: String,
    /// `BANK_SEALING_KEY` (text form, a ring allowed), or else the key in
    /// `<data dir>/sealing.key`, generated on the first start.
    pub sealing_keys: SealingKeys,
}

impl Startup {
    /// Reads the environment for the bank called `name` (`axum-bank`):
    /// `BANK_ADDR`, `BANK_STEPUP_KEY`, `BANK_DEMO_TOTP_SECRET`,
    /// `BANK_SOAK_USERS`, `BANK_DATA_DIR`, `BANK_DATABASE_URL` and
    /// `BANK_SEALING_KEY` (see the [crate docs](crate#environment)).
    ///
    /// Creates the data directory (mode 0700) when something is kept there,
    /// and the sealing key file (`create_new`, mode 0600) when there is
    /// none; refuses a key file its group or others may read or write.
    /// Prints where the data directory and the sealing key are.
    pub fn from_env(name: &str) -> Result<Startup, Box<dyn std::error::Error>> {
        let var = |variable: &str| {
            std::env::var(variable)
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let addr = var("BANK_ADDR").unwrap_or_else(|| "127.0.0.1:3000".to_owned());
        let key = match var("BANK_STEPUP_KEY") {
            Some(text) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "BANK_STEPUP_KEY is not base64")?,
            None => {
                let mut key = vec![0u8; 32];
                getrandom::fill(&mut key)?;
                println!(
                    "No BANK_STEPUP_KEY: generated a key; step-ups will not survive a restart."
                );
                key
            }
        };
        let alice_totp = match var("BANK_DEMO_TOTP_SECRET") {
            Some(text) => TotpSecret::from_base32(&text)
                .ok_or("BANK_DEMO_TOTP_SECRET is not base32 (16+ bytes)")?,
            None => TotpSecret::generate()?,
        };
        let extra_users = match var("BANK_SOAK_USERS") {
            Some(text) => text
                .trim()
                .parse()
                .map_err(|_| "BANK_SOAK_USERS is not a number")?,
            None => 0,
        };
        let database_url = var("BANK_DATABASE_URL");
        let sealing_key = var("BANK_SEALING_KEY");
        let data_dir = if database_url.is_some() && sealing_key.is_some() {
            None
        } else {
            let dir = var("BANK_DATA_DIR")
                .map_or_else(|| PathBuf::from("bank-data").join(name), PathBuf::from);
            let dir = data::create_data_dir(&dir)
                .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
            println!("Data directory: {}", dir.display());
            Some(dir)
        };
        let database_url = match (database_url, &data_dir) {
            (Some(url), _) => url,
            (None, Some(dir)) => data::sqlite_url(&dir.join(DATABASE_FILE))?,
            (None, None) => return Err("no BANK_DATABASE_URL and no data directory".into()),
        };
        let sealing_keys = match (sealing_key, &data_dir) {
            (Some(text), _) => {
                let keys =
                    SealingKeys::parse(&text).map_err(|e| format!("BANK_SEALING_KEY: {e}"))?;
                println!("Sealing key: from BANK_SEALING_KEY");
                keys
            }
            (None, Some(dir)) => {
                let path = dir.join(SEALING_KEY_FILE);
                let (keys, generated) = data::load_or_generate_key(&path)?;
                if generated {
                    println!(
                        "Sealing key: generated {} (owner-only; the factors sealed under it open with it only)",
                        path.display()
                    );
                } else {
                    println!("Sealing key: {}", path.display());
                }
                keys
            }
            (None, None) => return Err("no BANK_SEALING_KEY and no data directory".into()),
        };
        Ok(Startup {
            name: name.to_owned(),
            addr,
            key,
            alice_totp,
            extra_users,
            data_dir,
            database_url,
            sealing_keys,
        })
    }

    /// The bank's configuration once it listens on `port`: origin
    /// `http://localhost:PORT` (passkeys need a domain as relying party, and
    /// challenge POSTs must come from exactly this origin), the system
    /// clock, codes printed on the console, the start-up lines of the
    /// factor store printed ([`BankConfig::print_startup`]). Prints how to
    /// use it.
    pub fn config(self, port: u16) -> BankConfig {
        let origin = format!("http://localhost:{port}");
        println!(
            "{} on {origin}/ (use this URL: passkeys need `localhost`)",
            self.name
        );
        println!(
            "Log in as alice / wonderland (TOTP enrolled) or bob / builder (no second factor at first)."
        );
        println!("E-mail codes are printed here instead of sent.");
        BankConfig {
            origin,
            key: self.key,
            alice_totp: self.alice_totp,
            database_url: self.database_url,
            sealing_keys: self.sealing_keys,
            print_startup: true,
            clock: Arc::new(stepup_core::SystemClock),
            codes: Arc::new(InsecureConsoleSender),
            limits: None,
            extra_users: self.extra_users,
            levels: None,
            events: None,
            approvals: Approvals::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_transfer_needs_a_known_recipient_and_the_money() {
        let bank = Bank::default();
        let to = |to: &str, amount| TransferInput {
            to: to.into(),
            amount,
        };
        assert_eq!(bank.transfer("alice", &to("bob", 100)), Some(124_900));
        assert_eq!(bank.balance_of("bob"), 1_000);
        assert_eq!(bank.transfer("bob", &to("alice", 1_001)), None);
        assert_eq!(bank.transfer("alice", &to("mallory", 1)), None);
        assert_eq!(bank.transfer("alice", &to("alice", 1)), None);
    }

    #[tokio::test]
    async fn sessions_name_the_user_and_end_on_logout() {
        let bank = Bank::default();
        let wrong = LoginInput {
            username: "alice".into(),
            password: "x".into(),
        };
        assert_eq!(bank.login(&wrong, None).await, LoginOutcome::Refused);
        let input = LoginInput {
            username: "alice".into(),
            password: "wonderland".into(),
        };
        let LoginOutcome::LoggedIn(cookie) = bank.login(&input, None).await else {
            panic!("the right password logs in");
        };
        let pair = cookie.split(';').next().unwrap().to_owned();
        let header = format!("theme=dark; {pair}");
        let subject = bank.subject([header.as_bytes()]).await.unwrap();
        assert_eq!(subject.id(), "alice");
        assert!(subject.session().is_some());
        bank.logout([header.as_bytes()]);
        assert_eq!(bank.subject([header.as_bytes()]).await, None);
    }

    fn config(database_url: &str, alice_totp: &TotpSecret) -> BankConfig {
        BankConfig {
            origin: "http://localhost:3000".into(),
            key: vec![9; 32],
            alice_totp: alice_totp.clone(),
            database_url: database_url.into(),
            sealing_keys: SealingKeys::new(SealingKey::new(1, [7; 32])),
            print_startup: false,
            clock: Arc::new(stepup_core::SystemClock),
            codes: Arc::new(InsecureConsoleSender),
            limits: None,
            extra_users: 2,
            levels: None,
            events: None,
            approvals: Approvals::default(),
        }
    }

    #[tokio::test]
    async fn a_new_database_is_seeded_and_an_existing_one_stands() {
        let dir = std::env::temp_dir().join(format!("bank-core-seed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dir = data::create_data_dir(&dir).unwrap();
        let url = data::sqlite_url(&dir.join(DATABASE_FILE)).unwrap();
        let first = TotpSecret::generate().unwrap();
        let alice = Subject::new("alice");
        let factors = open_factors(&config(&url, &first)).await.unwrap();
        assert_eq!(
            factors.totp_secret(&alice).await.unwrap(),
            Some(first.clone())
        );
        assert_eq!(
            factors.totp_secret(&Subject::new("user2")).await.unwrap(),
            Some(first.clone())
        );
        for (user, address) in [("alice", ALICE_EMAIL), ("carol", CAROL_EMAIL)] {
            assert_eq!(
                factors
                    .code_destination(&Subject::new(user), Channel::Email)
                    .await
                    .unwrap()
                    .as_deref(),
                Some(address)
            );
        }
        // Carol removes her address; alice's secret is replaced.
        factors
            .set_code_destination(&Subject::new("carol"), Channel::Email, None)
            .await
            .unwrap();
        let replaced = TotpSecret::generate().unwrap();
        factors
            .set_totp_secret(&alice, replaced.clone())
            .await
            .unwrap();
        drop(factors);

        // Started again with another demo secret: nothing is seeded again.
        let factors = open_factors(&config(&url, &TotpSecret::generate().unwrap()))
            .await
            .unwrap();
        assert_eq!(factors.totp_secret(&alice).await.unwrap(), Some(replaced));
        assert_eq!(
            factors
                .code_destination(&Subject::new("carol"), Channel::Email)
                .await
                .unwrap(),
            None
        );
        drop(factors);

        // Another sealing key than the database knows: refused, clearly.
        let mut other = config(&url, &first);
        other.sealing_keys = SealingKeys::new(SealingKey::new(1, [8; 32]));
        let e = open_factors(&other).await.unwrap_err().to_string();
        assert!(
            e.contains("the factor database sqlite://")
                && e.contains("not the key this database knows"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn no_epoch_no_subject() {
        // A store whose tables are missing: every epoch read fails.
        let keys = SealingKeys::new(SealingKey::new(1, [7; 32]));
        let broken = SqlStore::connect("sqlite::memory:", keys).await.unwrap();
        let bank = Bank::default().with_epochs_from(&broken);
        let input = LoginInput {
            username: "alice".into(),
            password: "wonderland".into(),
        };
        let LoginOutcome::LoggedIn(cookie) = bank.login(&input, None).await else {
            panic!("the right password logs in");
        };
        let pair = cookie.split(';').next().unwrap().to_owned();
        assert_eq!(bank.subject([pair.as_bytes()]).await, None, "fail closed");

        // Once the store answers, the subject carries the stored epoch.
        broken.migrate().await.unwrap();
        broken.bump_epoch(&Subject::new("alice")).await.unwrap();
        let subject = bank.subject([pair.as_bytes()]).await.unwrap();
        assert_eq!((subject.id(), subject.epoch()), ("alice", 1));
    }
}
