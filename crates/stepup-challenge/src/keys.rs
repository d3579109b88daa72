//! Keyed digests for everything the engine writes into a store: the names
//! of state entries (subjects, client addresses, TOTP secrets) and the
//! digests of one-time codes. A store reader without the server key can
//! neither tell whose entry is whose nor test guesses against a digest.
//!
//! This is also the only place that knows the layout of the
//! [`StateStore`](crate::StateStore) keys: the engine and the limiter build
//! every `stepup:…` key with a constructor of [`StoreKeys`] from typed
//! names ([`SubjectName`], [`SessionName`], [`AddressName`],
//! [`SecretName`]). Deployed state (a shared Redis) is read with these
//! exact strings: `layout_is_pinned` below keeps them byte for byte.
//!
//! | key | what |
//! |---|---|
//! | `stepup:totp-step:{subject}:{secret}` | the last accepted TOTP step of a secret |
//! | `stepup:enroll:totp:{session}` | a pending TOTP enrollment |
//! | `stepup:code:{channel}:{subject}` | the pending e-mail/SMS code |
//! | `stepup:code:{channel}:{subject}:guesses:{challenge id}` | wrong guesses at that code |
//! | `stepup:code-sends:{subject}` | codes sent to a subject |
//! | `stepup:code-sends-address:{address}` | codes sent from an address |
//! | `stepup:form:{id}` | a form kept until its sender stepped up (sealed) |
//! | `stepup:form-done:{id}` | a kept form that came back, and where it went |
//! | `stepup:forms-kept:{session}` | forms a login session had kept |
//! | `stepup:account-recovery:{subject}` | a pending account recovery |
//! | `stepup:account-recovery-starts:{subject}` | account recoveries started |
//! | `stepup:ceremony-starts:{subject}` | passkey ceremonies started |
//! | `stepup:passkey-ceremony:{subject}:{slot}` | a passkey ceremony in flight (sealed; 3 slots per subject) |
//! | `stepup:attempts:{scope}:{subject}:{generation}` | attempts in a budget's window (the generation in decimal) |
//! | `stepup:lock:{scope}:{subject}` | a budget's lockout |
//! | `stepup:generation:{scope}:{subject}` | a budget's lock generation |
//! | `stepup:backoff:{scope}:{subject}` | a budget's lockouts (doubling) |
//! | `stepup:consecutive:{method}:{subject}` | consecutive failures of a method |
//! | `stepup:disabled:{method}:{subject}` | a disabled method |
//! | `stepup:disabled-any:{subject}` | any method disabled |
//! | `stepup:address-failures:{address}` | failures from an address |
//! | `stepup:address-lock:{address}` | an address's lockout |
//!
//! A `{scope}` is a method (its canonical name) or `second-factor`, the
//! budget all second-factor methods share ([`Scope`]).
//!
//! A `{subject}` and an `{address}` are written with their braces: they
//! are Redis Cluster hash tags, so every key of one subject (and of one
//! address group) is in one slot, and the store's admission and commit
//! scripts touch one slot each. (A lockout's end and a budget's generation
//! are kept as decimal text, which the scripts read.)

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stepup_core::{Method, Subject};
use stepup_store::{Channel, Sealer, StoreError};

type HmacSha256 = Hmac<Sha256>;

/// How many bytes of a keyed digest name a store entry: 128 bits, so
/// chosen user names cannot be made to collide.
const NAME_BYTES: usize = 16;

/// The engine's server-side key for store names and code digests, keyed
/// once (each use clones the keyed state).
#[derive(Clone)]
pub(crate) struct StoreKeys {
    mac: HmacSha256,
    /// Seals the values the engine keeps that are secrets (a pending TOTP
    /// secret), under a subkey of its own.
    sealer: Sealer,
    /// Seals passkey ceremonies (webauthn-rs's state), under a subkey of
    /// their own.
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    ceremonies: Sealer,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKeys([redacted])")
    }
}

/// One domain per use, so a digest made for one never matches another.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Domain {
    Subject = 1,
    Session = 2,
    Address = 3,
    Code = 4,
    Secret = 5,
    Events = 6,
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    UserHandle = 8,
    Seal = 9,
    Form = 10,
    Grant = 11,
    ActionBinding = 12,
}

impl StoreKeys {
    pub(crate) fn new(key: &[u8; 32]) -> StoreKeys {
        // HMAC takes keys of any length: this cannot fail.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()));
        let seal_key = zeroize::Zeroizing::new(digest(&mac, Domain::Seal, &[b"state values"]));
        let ceremony_key =
            zeroize::Zeroizing::new(digest(&mac, Domain::Seal, &[b"passkey ceremonies"]));
        StoreKeys {
            sealer: Sealer::new(&seal_key),
            ceremonies: Sealer::new(&ceremony_key),
            mac,
        }
    }

    /// Seals a passkey ceremony's state for `associated` (its store key,
    /// owner binding and nonce) under a subkey of its own, so no other
    /// sealed value of the engine opens as a ceremony.
    #[cfg(feature = "passkey")]
    pub(crate) fn seal_ceremony(
        &self,
        associated: &[u8],
        state: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.ceremonies.seal(associated, state)
    }

    /// Opens what [`seal_ceremony`](Self::seal_ceremony) made for
    /// `associated`; `None` for anything else.
    #[cfg(feature = "passkey")]
    pub(crate) fn open_ceremony(
        &self,
        associated: &[u8],
        sealed: &[u8],
    ) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.ceremonies.open(associated, sealed)
    }

    /// Seals a secret the engine keeps in the state store under `name` (its
    /// store key): a reader of the store learns nothing of it, and a value
    /// moved to another name does not open.
    pub(crate) fn seal(&self, name: &str, secret: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.sealer.seal(name.as_bytes(), secret)
    }

    /// Opens what [`seal`](Self::seal) made for `name`; `None` for anything
    /// else.
    pub(crate) fn open(&self, name: &str, sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        self.sealer.open(name.as_bytes(), sealed)
    }

    fn digest(&self, domain: Domain, parts: &[&[u8]]) -> [u8; 32] {
        digest(&self.mac, domain, parts)
    }

    /// The store name of a subject (its id only: counters and factors
    /// are per user, across sessions).
    pub(crate) fn subject(&self, subject: &Subject) -> SubjectName {
        SubjectName(hex(
            &self.digest(Domain::Subject, &[subject.id().as_bytes()])[..NAME_BYTES]
        ))
    }

    /// The store name of a subject's login session (pending enrollments).
    pub(crate) fn session(&self, subject: &Subject) -> SessionName {
        SessionName(hex(&self.session_digest(subject)[..NAME_BYTES]))
    }

    /// Binds a record to the subject and session that made it.
    pub(crate) fn session_digest(&self, subject: &Subject) -> [u8; 32] {
        let session = subject.session().unwrap_or("");
        self.digest(
            Domain::Session,
            &[
                subject.id().as_bytes(),
                &[u8::from(subject.session().is_some())],
                session.as_bytes(),
            ],
        )
    }

    /// The store name of a client address, grouped: IPv4 per address,
    /// IPv6 per prefix of `v6_prefix` bits (a /64 is one subscriber).
    pub(crate) fn address(&self, address: IpAddr, v6_prefix: u8) -> AddressName {
        let grouped = group(address, v6_prefix);
        AddressName(hex(&self.digest(Domain::Address, &[&grouped])[..NAME_BYTES]))
    }

    /// The digest a one-time code is stored as: keyed, bound to its
    /// challenge id.
    pub(crate) fn code_digest(&self, challenge_id: &[u8], code: &str) -> [u8; 32] {
        self.digest(Domain::Code, &[challenge_id, code.as_bytes()])
    }

    /// A fingerprint of a TOTP secret, naming its replay state: a new
    /// secret starts with its own.
    pub(crate) fn secret(&self, secret: &[u8]) -> SecretName {
        SecretName(hex(&self.digest(Domain::Secret, &[secret])[..NAME_BYTES]))
    }

    /// The WebAuthn user handle of a subject: stable, 16 bytes, revealing
    /// nothing of the id without the server key.
    #[cfg(feature = "passkey")]
    pub(crate) fn user_handle(&self, subject: &Subject) -> [u8; 16] {
        let full = self.digest(Domain::UserHandle, &[subject.id().as_bytes()]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// The idempotency key of a kept form: names it without revealing its
    /// id.
    pub(crate) fn form_key(&self, id: &str) -> String {
        hex(&self.digest(Domain::Form, &[id.as_bytes()])[..NAME_BYTES])
    }

    /// The store name of the grant for the action of `digest` in
    /// `subject`'s session: the route that asks for it finds it from the
    /// request alone, and no other session or action names it.
    pub(crate) fn grant_name(
        &self,
        subject: &Subject,
        digest: &stepup_core::ActionDigest,
    ) -> GrantName {
        GrantName(hex(&self.digest(
            Domain::Grant,
            &[&self.session_digest(subject), digest.as_bytes()],
        )[..NAME_BYTES]))
    }

    /// What a passkey ceremony is bound to: the session, and the action
    /// ceremony it was started for, if any (an assertion made for one
    /// action finishes no other).
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    pub(crate) fn ceremony_binding(&self, subject: &Subject, action: Option<&str>) -> [u8; 32] {
        match action {
            None => self.session_digest(subject),
            Some(id) => self.digest(
                Domain::ActionBinding,
                &[&self.session_digest(subject), id.as_bytes()],
            ),
        }
    }

    /// The pseudonym of a subject in events and logs.
    pub(crate) fn events(&self, subject: &Subject) -> String {
        hex(&self.digest(Domain::Events, &[subject.id().as_bytes()])[..8])
    }
}

/// The keyed digest of `parts` in `domain`, length-prefixed so ("ab","c")
/// and ("a","bc") differ.
fn digest(keyed: &HmacSha256, domain: Domain, parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = keyed.clone();
    mac.update(&[domain as u8]);
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The layout of the state store's keys: every `stepup:…` key is built
/// here, from typed names, and nowhere else.
impl StoreKeys {
    /// The last accepted TOTP step for a subject and secret (replay guard).
    pub(crate) fn totp_step(subject: &SubjectName, secret: &SecretName) -> String {
        format!("stepup:totp-step:{subject}:{secret}")
    }

    /// A TOTP enrollment waiting for its first code, per login session.
    pub(crate) fn totp_enrollment(session: &SessionName) -> String {
        format!("stepup:enroll:totp:{session}")
    }

    /// The pending one-time code of a subject on a channel.
    pub(crate) fn code(subject: &SubjectName, channel: Channel) -> String {
        format!("stepup:code:{}:{subject}", channel.as_str())
    }

    /// The guesses at the pending code of challenge `challenge_id`.
    pub(crate) fn code_guesses(
        subject: &SubjectName,
        channel: Channel,
        challenge_id: &[u8],
    ) -> String {
        format!(
            "{}:guesses:{}",
            StoreKeys::code(subject, channel),
            hex(challenge_id)
        )
    }

    /// When a subject last stepped up (the funnel's success mark, read by
    /// the instance holding the subject's journey).
    pub(crate) fn funnel_done(subject: &SubjectName) -> String {
        format!("stepup:funnel-done:{subject}")
    }

    /// A login session's pending approval of a custom method (by the
    /// session's digest): another session's start never replaces it.
    pub(crate) fn approval(subject: &SubjectName, method: Method, session: &[u8; 32]) -> String {
        format!(
            "stepup:approval:{subject}:{}:{}",
            hex(method.name().as_bytes()),
            hex(&session[..16])
        )
    }

    /// The subject and method an [`approval`](Self::approval) key names,
    /// if `key` is one.
    pub(crate) fn approval_of(key: &str) -> Option<(SubjectName, String)> {
        let rest = key.strip_prefix("stepup:approval:{")?;
        let (name, rest) = rest.split_once("}:")?;
        let (method, session) = rest.split_once(':')?;
        let hex_only =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex_only(name, 32) && hex_only(session, 32) && !method.is_empty())
            .then(|| (SubjectName(name.to_owned()), method.to_owned()))
    }

    /// An approve link (by the keyed digest of its secret): the pending
    /// approval it names.
    pub(crate) fn approval_link(digest: &[u8]) -> String {
        format!("stepup:approval-link:{}", hex(digest))
    }

    /// The approvals of a custom method a subject started within the window.
    pub(crate) fn approval_starts(subject: &SubjectName, method: Method) -> String {
        format!(
            "stepup:approval-starts:{subject}:{}",
            hex(method.name().as_bytes())
        )
    }

    /// The approvals of a custom method one session of a subject started
    /// within the window (by the session's digest).
    pub(crate) fn approval_session_starts(
        subject: &SubjectName,
        method: Method,
        session: &[u8; 32],
    ) -> String {
        format!(
            "stepup:approval-starts:{subject}:{}:{}",
            hex(method.name().as_bytes()),
            hex(&session[..16])
        )
    }

    /// The trips to identity providers one session of a subject started
    /// within the window (by the session's digest), and (without a
    /// session) all of the subject's.
    pub(crate) fn upstream_starts(subject: &SubjectName, session: Option<&[u8; 32]>) -> String {
        match session {
            Some(session) => format!("stepup:upstream-starts:{subject}:{}", hex(&session[..16])),
            None => format!("stepup:upstream-starts:{subject}"),
        }
    }

    /// One session's trip to the identity provider `upstream`: the page's
    /// reason and way back, for the page a refused answer shows.
    pub(crate) fn upstream_trip(
        subject: &SubjectName,
        upstream: &str,
        session: &[u8; 32],
    ) -> String {
        format!(
            "stepup:upstream-trip:{subject}:{}:{}",
            hex(upstream.as_bytes()),
            hex(&session[..16])
        )
    }

    /// The wrong numbers typed for a subject's approvals of a custom
    /// method within the day.
    pub(crate) fn approval_wrong(subject: &SubjectName, method: Method) -> String {
        format!(
            "stepup:approval-wrong:{subject}:{}",
            hex(method.name().as_bytes())
        )
    }

    /// Set, with its end, while a subject's approvals of a custom method
    /// are suspended (too many wrong numbers).
    pub(crate) fn approval_suspended(subject: &SubjectName, method: Method) -> String {
        format!(
            "stepup:approval-suspended:{subject}:{}",
            hex(method.name().as_bytes())
        )
    }

    /// The answer to the approval with this id from the other device
    /// (written by the approve link: approved or refused; taken by the
    /// finish).
    pub(crate) fn approval_ok(id: &[u8; 16]) -> String {
        format!("stepup:approval-ok:{}", hex(id))
    }

    /// The codes sent to a subject within the send window.
    pub(crate) fn code_sends(subject: &SubjectName) -> String {
        format!("stepup:code-sends:{subject}")
    }

    /// The codes sent from a client address group within the send window.
    pub(crate) fn code_sends_from(address: &AddressName) -> String {
        format!("stepup:code-sends-address:{address}")
    }

    /// A form kept until its sender stepped up (sealed), by its id.
    pub(crate) fn kept_form(id: &RecordId) -> String {
        format!("stepup:form:{id}")
    }

    /// What became of a kept form once it came back, by its id.
    pub(crate) fn form_done(id: &RecordId) -> String {
        format!("stepup:form-done:{id}")
    }

    /// The forms a login session had kept within the window.
    pub(crate) fn forms_kept(session: &SessionName) -> String {
        format!("stepup:forms-kept:{session}")
    }

    /// An action waiting for its step-up (sealed), by ceremony id.
    pub(crate) fn action(id: &RecordId) -> String {
        format!("stepup:action:{id}")
    }

    /// The wrong answers made for an action's ceremony.
    pub(crate) fn action_failures(id: &RecordId) -> String {
        format!("stepup:action-failures:{id}")
    }

    /// The action ceremonies a login session opened within the window.
    pub(crate) fn actions_opened(session: &SessionName) -> String {
        format!("stepup:actions-opened:{session}")
    }

    /// The ceremony open for one action in one session (sealed), so the
    /// same action asked again waits on it.
    pub(crate) fn action_waiting(name: &GrantName) -> String {
        format!("stepup:action-waiting:{name}")
    }

    /// A single-use grant for one action in one session (sealed).
    pub(crate) fn grant(name: &GrantName) -> String {
        format!("stepup:grant:{name}")
    }

    /// A subject's pending account recovery.
    pub(crate) fn account_recovery(subject: &SubjectName) -> String {
        format!("stepup:account-recovery:{subject}")
    }

    /// The account recoveries a subject started within the start window.
    pub(crate) fn account_recovery_starts(subject: &SubjectName) -> String {
        format!("stepup:account-recovery-starts:{subject}")
    }

    /// A passkey ceremony in flight (sealed): one of the subject's few
    /// slots, so a new ceremony replaces the subject's oldest.
    #[cfg(feature = "passkey")]
    pub(crate) fn passkey_ceremony(subject: &SubjectName, slot: u8) -> String {
        format!("stepup:passkey-ceremony:{subject}:{slot}")
    }

    /// The passkey ceremonies a subject started within the window.
    #[cfg_attr(not(feature = "passkey"), allow(dead_code))]
    pub(crate) fn ceremony_starts(subject: &SubjectName) -> String {
        format!("stepup:ceremony-starts:{subject}")
    }

    /// The attempts counted in one generation of a windowed budget: this
    /// prefix, then the generation.
    pub(crate) fn attempts(scope: Scope, subject: &SubjectName) -> String {
        format!("stepup:attempts:{scope}:{subject}:")
    }

    /// A windowed budget's lockout (its end, in Unix seconds).
    pub(crate) fn lock(scope: Scope, subject: &SubjectName) -> String {
        format!("stepup:lock:{scope}:{subject}")
    }

    /// A windowed budget's lock generation.
    pub(crate) fn generation(scope: Scope, subject: &SubjectName) -> String {
        format!("stepup:generation:{scope}:{subject}")
    }

    /// A windowed budget's recent lockouts, doubling the next one.
    pub(crate) fn backoff(scope: Scope, subject: &SubjectName) -> String {
        format!("stepup:backoff:{scope}:{subject}")
    }

    /// The consecutive failures of a method, reset by no window.
    pub(crate) fn consecutive(method: Method, subject: &SubjectName) -> String {
        format!("stepup:consecutive:{}:{subject}", Scope::Method(method))
    }

    /// Set while a method is disabled for the subject.
    pub(crate) fn disabled(method: Method, subject: &SubjectName) -> String {
        format!("stepup:disabled:{}:{subject}", Scope::Method(method))
    }

    /// Set while any method is disabled for the subject.
    pub(crate) fn any_disabled(subject: &SubjectName) -> String {
        format!("stepup:disabled-any:{subject}")
    }

    /// The failures from a client address group within the window.
    pub(crate) fn address_failures(address: &AddressName) -> String {
        format!("stepup:address-failures:{address}")
    }

    /// A client address group's lockout (its end, in Unix seconds).
    pub(crate) fn address_lock(address: &AddressName) -> String {
        format!("stepup:address-lock:{address}")
    }
}

macro_rules! store_name {
    ($(#[$doc:meta])* $name:ident) => {
        store_name!(@ $(#[$doc])* $name, false);
    };
    ($(#[$doc:meta])* $name:ident, tagged) => {
        store_name!(@ $(#[$doc])* $name, true);
    };
    (@ $(#[$doc:meta])* $name:ident, $tagged:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub(crate) struct $name(String);

        impl $name {
            /// The name as it appears in keys (without braces).
            #[allow(dead_code)]
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if $tagged {
                    write!(f, "{{{}}}", self.0)
                } else {
                    f.write_str(&self.0)
                }
            }
        }
    };
}

store_name!(
    /// A subject's store name ([`StoreKeys::subject`]): 32 hex digits,
    /// written in keys as a Redis Cluster hash tag (`{name}`), so every
    /// key of one subject is in one slot.
    SubjectName,
    tagged
);
store_name!(
    /// A login session's store name ([`StoreKeys::session`]).
    SessionName
);
store_name!(
    /// A client address group's store name ([`StoreKeys::address`]),
    /// written in keys as a hash tag like [`SubjectName`].
    AddressName,
    tagged
);
store_name!(
    /// A TOTP secret's fingerprint ([`StoreKeys::secret`]).
    SecretName
);
store_name!(
    /// A kept form's or an action ceremony's id: 128 random bits as 32
    /// lower-case hex digits.
    RecordId
);
store_name!(
    /// A grant's store name ([`StoreKeys::grant_name`]).
    GrantName
);

impl RecordId {
    /// A fresh id, or `None` without randomness.
    pub(crate) fn random() -> Option<RecordId> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).ok()?;
        Some(RecordId(hex(&bytes)))
    }

    /// `text` if it is an id's shape; nothing else reaches a store key.
    pub(crate) fn parse(text: &str) -> Option<RecordId> {
        stepup_http::is_random_id(text).then(|| RecordId(text.to_owned()))
    }
}

/// Whose attempt budget a key belongs to: one method's own, or the one
/// all second-factor methods share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One method's budget, named by the method's canonical name.
    Method(Method),
    /// The budget shared by every method but the password.
    SecondFactor,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Method(method) => fmt::Display::fmt(method, f),
            Scope::SecondFactor => f.write_str("second-factor"),
        }
    }
}

/// An address as the bytes of its group: 4 bytes for IPv4 (an IPv4-mapped
/// IPv6 address counts as IPv4), the first `v6_prefix` bits for IPv6.
fn group(address: IpAddr, v6_prefix: u8) -> Vec<u8> {
    match address {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| nat64(v6)) {
            Some(v4) => v4.octets().to_vec(),
            None => {
                let bits = u32::from(v6_prefix.clamp(1, 128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                let mut out = vec![6u8, v6_prefix.clamp(1, 128)];
                out.extend_from_slice(&(u128::from(v6) & mask).to_be_bytes());
                out
            }
        },
    }
}

/// The IPv4 client behind a NAT64 address of the well-known prefix
/// `64:ff9b::/96` (RFC 6052): each such client is its own IPv4 address, not
/// one /64 shared by every translated client.
fn nat64(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let o = v6.octets();
        std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15])
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_keyed_and_128_bits() {
        let a = StoreKeys::new(&[1u8; 32]);
        let b = StoreKeys::new(&[2u8; 32]);
        let alice = Subject::new("alice");
        assert_eq!(a.subject(&alice).as_str().len(), 32);
        assert_ne!(a.subject(&alice), b.subject(&alice));
        assert_ne!(a.subject(&alice), a.subject(&Subject::new("bob")));
        // Not the plain SHA-256 of the id that names used to be.
        use sha2::Digest;
        let plain = hex(&sha2::Sha256::digest(b"alice")[..16]);
        assert_ne!(a.subject(&alice).as_str(), plain);
        assert_ne!(
            a.code_digest(b"id", "123456"),
            b.code_digest(b"id", "123456")
        );
        assert_ne!(
            a.code_digest(b"id1", "23456"),
            a.code_digest(b"id", "123456")
        );
    }

    #[test]
    fn sessions_differ_from_no_session() {
        let k = StoreKeys::new(&[1u8; 32]);
        let none = Subject::new("alice");
        let empty = Subject::new("alice").with_session("");
        let one = Subject::new("alice").with_session("s1");
        assert_ne!(k.session(&none), k.session(&empty));
        assert_ne!(k.session(&one), k.session(&empty));
    }

    #[test]
    fn ipv6_is_grouped_by_prefix_and_ipv4_by_address() {
        let k = StoreKeys::new(&[1u8; 32]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            k.address(ip("2001:db8:1:2::1"), 64),
            k.address(ip("2001:db8:1:2:ffff::9"), 64)
        );
        assert_ne!(
            k.address(ip("2001:db8:1:2::1"), 64),
            k.address(ip("2001:db8:1:3::1"), 64)
        );
        assert_ne!(
            k.address(ip("2001:db8:1:2::1"), 128),
            k.address(ip("2001:db8:1:2::2"), 128)
        );
        assert_ne!(
            k.address(ip("192.0.2.1"), 64),
            k.address(ip("192.0.2.2"), 64)
        );
        assert_eq!(
            k.address(ip("::ffff:192.0.2.1"), 64),
            k.address(ip("192.0.2.1"), 64)
        );
        // NAT64: translated IPv4 clients are told apart.
        assert_eq!(
            k.address(ip("64:ff9b::192.0.2.1"), 64),
            k.address(ip("192.0.2.1"), 64)
        );
        assert_ne!(
            k.address(ip("64:ff9b::192.0.2.1"), 64),
            k.address(ip("64:ff9b::192.0.2.2"), 64)
        );
    }

    /// Every key, byte for byte as deployed state (a shared Redis) holds
    /// it: the expected strings were computed by the code before the
    /// layout moved here. A change here strands every deployed counter,
    /// lockout, replay guard and pending code.
    #[test]
    fn layout_is_pinned() {
        let k = StoreKeys::new(&[1u8; 32]);
        let alice = Subject::new("alice").with_session("s-1");
        let subject = k.subject(&alice);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let v4 = k.address(ip("192.0.2.1"), 64);
        let v6 = k.address(ip("2001:db8::1"), 64);
        let s = "609410ef7e9286d551b7847737fc71af";
        assert_eq!(subject.as_str(), s);
        assert_eq!(v4.as_str(), "6b9deb42ad8198b6973577d3f6174b48");
        assert_eq!(v6.as_str(), "b23137b726ba77686ad3ea3781f7397e");

        assert_eq!(
            StoreKeys::totp_step(&subject, &k.secret(&[7u8; 20])),
            format!("stepup:totp-step:{{{s}}}:f9a5b5686ae407667e4c87d83fb8f98b")
        );
        assert_eq!(
            StoreKeys::totp_enrollment(&k.session(&alice)),
            "stepup:enroll:totp:baba9ad7e53c11291c081b7f229c0e6a"
        );
        assert_eq!(
            StoreKeys::code(&subject, Channel::Email),
            format!("stepup:code:email:{{{s}}}")
        );
        // Approvals of a custom method (`approve` is 617070726f7665): per
        // session, their links, their answers, their starts.
        let approve = Method::custom("approve").unwrap();
        let session = [3u8; 32];
        let record = StoreKeys::approval(&subject, approve, &session);
        assert_eq!(
            record,
            format!("stepup:approval:{{{s}}}:617070726f7665:03030303030303030303030303030303")
        );
        assert_eq!(
            StoreKeys::approval_of(&record),
            Some((subject.clone(), "617070726f7665".to_owned()))
        );
        assert_eq!(StoreKeys::approval_of("stepup:approval:{x}:61:03"), None);
        assert_eq!(
            StoreKeys::approval_link(&[5u8; 32]),
            format!("stepup:approval-link:{}", "05".repeat(32))
        );
        assert_eq!(
            StoreKeys::approval_ok(&[6u8; 16]),
            format!("stepup:approval-ok:{}", "06".repeat(16))
        );
        assert_eq!(
            StoreKeys::approval_wrong(&subject, approve),
            format!("stepup:approval-wrong:{{{s}}}:617070726f7665")
        );
        assert_eq!(
            StoreKeys::approval_suspended(&subject, approve),
            format!("stepup:approval-suspended:{{{s}}}:617070726f7665")
        );
        assert_eq!(
            StoreKeys::approval_starts(&subject, approve),
            format!("stepup:approval-starts:{{{s}}}:617070726f7665")
        );
        assert_eq!(
            StoreKeys::approval_session_starts(&subject, approve, &session),
            format!(
                "stepup:approval-starts:{{{s}}}:617070726f7665:03030303030303030303030303030303"
            )
        );
        assert_eq!(
            StoreKeys::upstream_starts(&subject, Some(&session)),
            format!("stepup:upstream-starts:{{{s}}}:03030303030303030303030303030303")
        );
        assert_eq!(
            StoreKeys::upstream_starts(&subject, None),
            format!("stepup:upstream-starts:{{{s}}}")
        );
        assert_eq!(
            StoreKeys::upstream_trip(&subject, "idp", &session),
            format!("stepup:upstream-trip:{{{s}}}:696470:03030303030303030303030303030303")
        );
        assert_eq!(
            StoreKeys::code(&subject, Channel::Sms),
            format!("stepup:code:sms:{{{s}}}")
        );
        assert_eq!(
            StoreKeys::code_guesses(&subject, Channel::Email, &[9u8; 16]),
            format!("stepup:code:email:{{{s}}}:guesses:09090909090909090909090909090909")
        );
        assert_eq!(
            StoreKeys::code_guesses(&subject, Channel::Sms, &[9u8; 16]),
            format!("stepup:code:sms:{{{s}}}:guesses:09090909090909090909090909090909")
        );
        assert_eq!(
            StoreKeys::code_sends(&subject),
            format!("stepup:code-sends:{{{s}}}")
        );
        assert_eq!(
            StoreKeys::code_sends_from(&v4),
            "stepup:code-sends-address:{6b9deb42ad8198b6973577d3f6174b48}"
        );
        assert_eq!(
            StoreKeys::code_sends_from(&v6),
            "stepup:code-sends-address:{b23137b726ba77686ad3ea3781f7397e}"
        );
        assert_eq!(
            StoreKeys::account_recovery(&subject),
            format!("stepup:account-recovery:{{{s}}}")
        );
        assert_eq!(
            StoreKeys::account_recovery_starts(&subject),
            format!("stepup:account-recovery-starts:{{{s}}}")
        );
        assert_eq!(
            StoreKeys::ceremony_starts(&subject),
            format!("stepup:ceremony-starts:{{{s}}}")
        );
        #[cfg(feature = "passkey")]
        {
            assert_eq!(
                StoreKeys::passkey_ceremony(&subject, 2),
                format!("stepup:passkey-ceremony:{{{s}}}:2")
            );
        }
        assert_eq!(
            StoreKeys::address_failures(&v4),
            "stepup:address-failures:{6b9deb42ad8198b6973577d3f6174b48}"
        );
        assert_eq!(
            StoreKeys::address_failures(&v6),
            "stepup:address-failures:{b23137b726ba77686ad3ea3781f7397e}"
        );
        assert_eq!(
            StoreKeys::address_lock(&v4),
            "stepup:address-lock:{6b9deb42ad8198b6973577d3f6174b48}"
        );
        assert_eq!(
            StoreKeys::address_lock(&v6),
            "stepup:address-lock:{b23137b726ba77686ad3ea3781f7397e}"
        );
        assert_eq!(
            StoreKeys::any_disabled(&subject),
            format!("stepup:disabled-any:{{{s}}}")
        );
        let form = RecordId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            StoreKeys::kept_form(&form),
            "stepup:form:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            StoreKeys::form_done(&form),
            "stepup:form-done:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            StoreKeys::forms_kept(&k.session(&alice)),
            "stepup:forms-kept:baba9ad7e53c11291c081b7f229c0e6a"
        );
        assert_eq!(
            k.form_key(form.as_str()),
            "d4d7438f01495f3d37fb516c7477b4f9"
        );
        assert_eq!(
            StoreKeys::action(&form),
            "stepup:action:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            StoreKeys::action_failures(&form),
            "stepup:action-failures:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            StoreKeys::actions_opened(&k.session(&alice)),
            "stepup:actions-opened:baba9ad7e53c11291c081b7f229c0e6a"
        );
        let digest = stepup_core::ActionDigest::from_hex(&"ab".repeat(32)).unwrap();
        assert_eq!(
            StoreKeys::action_waiting(&k.grant_name(&alice, &digest)),
            "stepup:action-waiting:114da4e9ac8278f3b2c727c65117897b"
        );
        assert_eq!(
            StoreKeys::grant(&k.grant_name(&alice, &digest)),
            "stepup:grant:114da4e9ac8278f3b2c727c65117897b"
        );
        assert!(RecordId::parse("0123456789ABCDEF0123456789abcdef").is_none());
        assert!(RecordId::parse("../x").is_none());

        let custom = Method::custom("hardware-token").unwrap();
        let scopes = [
            (
                Scope::Method(Method::DeviceBoundPasskey),
                "device_bound_passkey",
            ),
            (Scope::Method(Method::Passkey), "passkey"),
            (Scope::Method(Method::Totp), "totp"),
            (Scope::Method(Method::Password), "password"),
            (Scope::Method(Method::EmailCode), "email_code"),
            (Scope::Method(Method::SmsCode), "sms_code"),
            (Scope::Method(Method::RecoveryCode), "recovery_code"),
            (Scope::Method(custom), "custom:hardware-token"),
            (Scope::SecondFactor, "second-factor"),
        ];
        for (scope, name) in scopes {
            assert_eq!(
                StoreKeys::attempts(scope, &subject),
                format!("stepup:attempts:{name}:{{{s}}}:")
            );
            assert_eq!(
                StoreKeys::lock(scope, &subject),
                format!("stepup:lock:{name}:{{{s}}}")
            );
            assert_eq!(
                StoreKeys::generation(scope, &subject),
                format!("stepup:generation:{name}:{{{s}}}")
            );
            assert_eq!(
                StoreKeys::backoff(scope, &subject),
                format!("stepup:backoff:{name}:{{{s}}}")
            );
            if let Scope::Method(method) = scope {
                assert_eq!(
                    StoreKeys::consecutive(method, &subject),
                    format!("stepup:consecutive:{name}:{{{s}}}")
                );
                assert_eq!(
                    StoreKeys::disabled(method, &subject),
                    format!("stepup:disabled:{name}:{{{s}}}")
                );
            }
        }
    }
}
