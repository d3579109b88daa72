//! The assurance token: a compact, versioned, URL-safe binary format sealed
//! with HMAC-SHA256.
//!
//! ```text
//! offset  size   field
//! 0       1      version (1)
//! 1       2      key id, big-endian
//! 3       4      body check: the first 4 bytes of HMAC(K, block "U" ‖ the body
//!                without this field)
//! 7       4      binding hint: the first 4 bytes of HMAC(K, block "H" ‖ binding)
//! 11      4      issued at: seconds since 2020-09-13T12:26:40Z (Unix time
//!                1 600 000 000), big-endian; lasts until the year 2156
//! 15      1..5   lifetime in seconds, LEB128 (expires at = issued at + lifetime)
//! …       1..10  subject epoch, LEB128
//! …       1      client-context length: 0, or 8 followed by the 8-byte
//!                context digest, HMAC(K, block "C" ‖ context)[..8]
//! …       1      proof count n, 1..=8
//! …       …      n proofs: method code (1 byte: 1 password, 2 totp,
//!                3 passkey, 4 email_code, 5 sms_code, 6 recovery_code,
//!                7 device_bound_passkey; 0x80 = custom, then a name
//!                length byte and the name), then the proof's age at issue
//!                time in seconds, LEB128
//! end-32  32     tag = HMAC(K, block "B" ‖ body length (2 bytes) ‖ body ‖ binding)
//! ```
//!
//! The whole thing is base64url without padding, canonical (no stray bits):
//! about 80 characters for three proofs. `tests/vectors.rs` holds frozen
//! known-answer tokens and recomputes this layout independently. Every integer has exactly one
//! encoding (LEB128 without redundant groups), so one token has one spelling.
//!
//! * The **tag** decides. Its input ends with the *binding*: the subject id
//!   and, when the application gave one, the session id, length-prefixed so
//!   the encoding is prefix-free. Neither is in the token, so cookies carry
//!   no user id, and a token presented for another subject or session fails
//!   the tag. The input starts with the body's length, so no two (token,
//!   binding) pairs share an input.
//! * The **body check** and the **binding hint** never grant anything: they
//!   are looked at only after the tag failed, to tell "a genuine token of
//!   someone else" (for example after switching accounts in one browser:
//!   the body check verifies, the hint names another binding) from garbage,
//!   tampering, a foreign purpose or a wrong key (the body check fails) and
//!   a damaged tag (same hint). Either way the request is refused; the two
//!   32-bit values only choose the reason given.
//! * The **purpose block** (a 64-byte block naming the purpose, absorbed once
//!   per key when the ring is loaded) keeps a value signed under the same key
//!   for another purpose from ever verifying here.
//! * Only the version and the key id are looked at before the tag is
//!   verified, and only to pick the key; no field chooses an algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::assurance::{MAX_PROOFS, Proof, Proofs};
use crate::base64url;
use crate::ct::Comparison;
use crate::error::ConfigError;
use crate::key::{KeyId, KeyRing};
use crate::method::{CustomMethod, Method, WIRE_CUSTOM};
use crate::subject::Subject;
use crate::time::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// The current (and only) token format version.
pub(crate) const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
const CHECK_LEN: usize = 4;
const CHECK_AT: usize = 3;
const HINT_LEN: usize = 4;
const HINT_AT: usize = CHECK_AT + CHECK_LEN;
/// The length of a client-context digest.
pub(crate) const CONTEXT_LEN: usize = 8;
/// Version, key id, body check, hint, issued at, lifetime, longest epoch,
/// context, proof count.
const MAX_HEADER_LEN: usize = 1 + 2 + CHECK_LEN + HINT_LEN + 4 + 5 + 10 + 1 + CONTEXT_LEN + 1;
const MIN_HEADER_LEN: usize = 1 + 2 + CHECK_LEN + HINT_LEN + 4 + 1 + 1 + 1 + 1;
const PROOF_MAX_LEN: usize = 1 + 1 + CustomMethod::MAX_LEN + 5;
/// Token times count from here, so they fit 32 bits until 2156.
pub(crate) const TIME_BASE: u64 = 1_600_000_000;
/// The largest token body: header plus the most proofs, all custom with the
/// longest names.
const MAX_BODY_LEN: usize = MAX_HEADER_LEN + MAX_PROOFS * PROOF_MAX_LEN;
const MIN_RAW_LEN: usize = MIN_HEADER_LEN + 1 + 1 + TAG_LEN;
const MAX_RAW_LEN: usize = MAX_BODY_LEN + TAG_LEN;
/// The longest token text accepted; anything longer is refused before decoding.
pub const MAX_TOKEN_LEN: usize = (MAX_RAW_LEN * 4).div_ceil(3);
const MIN_TOKEN_LEN: usize = (MIN_RAW_LEN * 4).div_ceil(3);
/// Room for the MAC input of `open`: body length, the decoded token, and a
/// binding of up to 160 bytes (longer ones are fed to the MAC separately).
const OPEN_BUF_LEN: usize = 2 + MAX_RAW_LEN + 160;

/// The purpose a deployment uses unless it sets its own.
pub const DEFAULT_PURPOSE: &str = "stepup/assurance";
/// The longest purpose tag, in bytes.
pub const MAX_PURPOSE_LEN: usize = 48;

const DOMAIN_TAG: u8 = b'B';
const DOMAIN_CHECK: u8 = b'U';
const DOMAIN_HINT: u8 = b'H';
const DOMAIN_CONTEXT: u8 = b'C';

/// What a token says once its tag verified (the proofs go to the caller's
/// buffer, so the large part is written once, where it stays).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Claims {
    pub(crate) key_id: KeyId,
    pub(crate) epoch: u64,
    pub(crate) issued_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) context: Option<[u8; CONTEXT_LEN]>,
}

/// Why a token did not open. Deliberately coarse: every malformed, tampered,
/// unknown-key or foreign-purpose token is `Invalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    Invalid,
    /// Its body is genuine (the body check verifies) and its binding hint
    /// names another subject or session: someone else's token.
    OtherBinding,
}

#[derive(Clone)]
struct KeyState {
    id: KeyId,
    tag: HmacSha256,
    check: HmacSha256,
    hint: HmacSha256,
    context: HmacSha256,
}

/// Seals and opens tokens for one purpose with one key ring. The HMAC states
/// are keyed and have absorbed the purpose block once; each use clones them.
#[derive(Clone)]
pub(crate) struct Codec {
    /// Signing key first.
    keys: Vec<KeyState>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

pub(crate) fn validate_purpose(purpose: &str) -> Result<(), ConfigError> {
    let ok = !purpose.is_empty()
        && purpose.len() <= MAX_PURPOSE_LEN
        && purpose.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidPurpose {
            max: MAX_PURPOSE_LEN,
        })
    }
}

fn purpose_block(domain: u8, purpose: &str) -> [u8; 64] {
    let mut block = [0u8; 64];
    block[0] = domain;
    block[1] = purpose.len() as u8;
    block[2..2 + purpose.len()].copy_from_slice(purpose.as_bytes());
    block
}

fn keyed(secret: &[u8], block: &[u8; 64]) -> Result<HmacSha256, ConfigError> {
    // HMAC accepts keys of any length; the ring already enforced 32..=256 bytes.
    let mut mac = HmacSha256::new_from_slice(secret).map_err(|_| ConfigError::InvalidPurpose {
        max: MAX_PURPOSE_LEN,
    })?;
    mac.update(block);
    Ok(mac)
}

impl Codec {
    pub(crate) fn new(ring: &KeyRing, purpose: &str) -> Result<Codec, ConfigError> {
        validate_purpose(purpose)?;
        let tag = purpose_block(DOMAIN_TAG, purpose);
        let check = purpose_block(DOMAIN_CHECK, purpose);
        let hint = purpose_block(DOMAIN_HINT, purpose);
        let context = purpose_block(DOMAIN_CONTEXT, purpose);
        let keys = ring
            .keys()
            .iter()
            .map(|k| {
                Ok(KeyState {
                    id: k.id(),
                    tag: keyed(k.secret(), &tag)?,
                    check: keyed(k.secret(), &check)?,
                    hint: keyed(k.secret(), &hint)?,
                    context: keyed(k.secret(), &context)?,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Codec { keys })
    }

    /// A codec that opens nothing and seals nothing.
    pub(crate) fn without_keys() -> Codec {
        Codec { keys: Vec::new() }
    }

    pub(crate) fn signing_key_id(&self) -> Option<KeyId> {
        self.keys.first().map(|k| k.id)
    }

    /// Mints a token with the signing key. `issued_at` must lie between
    /// [`TIME_BASE`] and 2^32 seconds after it, and proofs at or before it
    /// (the issuer guarantees all three); `None` otherwise.
    #[cfg(test)]
    pub(crate) fn seal(
        &self,
        subject: &Subject,
        issued_at: Timestamp,
        lifetime_secs: u32,
        proofs: &Proofs,
    ) -> Option<String> {
        self.seal_in_context(subject, issued_at, lifetime_secs, proofs, None)
    }

    /// [`seal`](Codec::seal), recording the digest of the client context the
    /// token is issued in.
    pub(crate) fn seal_in_context(
        &self,
        subject: &Subject,
        issued_at: Timestamp,
        lifetime_secs: u32,
        proofs: &Proofs,
        context: Option<[u8; CONTEXT_LEN]>,
    ) -> Option<String> {
        let key = self.keys.first()?;
        let list = proofs.as_slice();
        if list.is_empty() {
            return None;
        }
        let mut raw = Vec::with_capacity(MAX_RAW_LEN);
        raw.push(VERSION);
        raw.extend_from_slice(&key.id.get().to_be_bytes());
        raw.extend_from_slice(&[0; CHECK_LEN]); // filled in below
        raw.extend_from_slice(&binding_hint(key, subject));
        let since_base = issued_at.as_unix_seconds().checked_sub(TIME_BASE)?;
        raw.extend_from_slice(&u32::try_from(since_base).ok()?.to_be_bytes());
        write_varint(&mut raw, u64::from(lifetime_secs));
        write_varint(&mut raw, subject.epoch());
        match context {
            Some(digest) => {
                raw.push(CONTEXT_LEN as u8);
                raw.extend_from_slice(&digest);
            }
            None => raw.push(0),
        }
        raw.push(list.len() as u8);
        for p in list {
            let age = u32::try_from(issued_at.duration_since(p.at()).as_secs()).ok()?;
            match p.method() {
                Method::Custom(c) => {
                    raw.push(WIRE_CUSTOM);
                    raw.push(c.as_bytes().len() as u8);
                    raw.extend_from_slice(c.as_bytes());
                }
                m => raw.push(m.wire_code()),
            }
            write_varint(&mut raw, u64::from(age));
        }
        let check = body_check(key, &raw);
        raw[CHECK_AT..CHECK_AT + CHECK_LEN].copy_from_slice(&check);
        let body_len = u16::try_from(raw.len()).ok()?;
        let mut mac = key.tag.clone();
        mac.update(&body_len.to_be_bytes());
        mac.update(&raw);
        feed_binding(&mut mac, subject);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        Some(URL_SAFE_NO_PAD.encode(&raw))
    }

    /// Opens a token presented for `subject`: one code path for every way
    /// it can be wrong, the tag checked (constant time, full length) before
    /// any field but the version and key id is read.
    ///
    /// The MAC input (length, body, binding) is laid out in one stack
    /// buffer, decoded in place, so the HMAC runs as a single update with no
    /// allocation.
    pub(crate) fn open(
        &self,
        token: &str,
        subject: &Subject,
        proofs: &mut Proofs,
    ) -> Result<Claims, Rejection> {
        if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Invalid);
        }
        let mut buf = [0u8; OPEN_BUF_LEN];
        let n = base64url::decode(token.as_bytes(), &mut buf[2..2 + MAX_RAW_LEN])
            .ok_or(Rejection::Invalid)?;
        if n < MIN_RAW_LEN || buf[2] != VERSION {
            return Err(Rejection::Invalid);
        }
        let key_id = KeyId::new(u16::from_be_bytes([buf[3], buf[4]]));
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(Rejection::Invalid)?;
        let body_len = n - TAG_LEN;
        let body_end = 2 + body_len;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&buf[body_end..body_end + TAG_LEN]);
        buf[..2].copy_from_slice(&(body_len as u16).to_be_bytes());
        let mut mac = key.tag.clone();
        match write_binding(&mut buf[body_end..], subject) {
            Some(binding_len) => mac.update(&buf[..body_end + binding_len]),
            None => {
                // A subject or session too long for the stack buffer.
                mac.update(&buf[..body_end]);
                feed_binding(&mut mac, subject);
            }
        }
        if !crate::ct::verify_mac(mac, &tag) {
            return Err(classify_failure(key, &buf[2..body_end], subject));
        }
        parse_body(&buf[2..body_end], key_id, proofs).ok_or(Rejection::Invalid)
    }

    /// The digest of a client context under the key `key_id` (the signing key
    /// when `None`): what a token minted in that context records.
    pub(crate) fn context_digest(
        &self,
        key_id: Option<KeyId>,
        context: &[u8],
    ) -> Option<[u8; CONTEXT_LEN]> {
        let key = match key_id {
            Some(id) => self.keys.iter().find(|k| k.id == id)?,
            None => self.keys.first()?,
        };
        let mut mac = key.context.clone();
        mac.update(&(context.len() as u64).to_be_bytes());
        mac.update(context);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; CONTEXT_LEN];
        out.copy_from_slice(&full[..CONTEXT_LEN]);
        Some(out)
    }

    /// A key for `label` from the signing key's context state. Context
    /// digests absorb an 8-byte length first; no context is 2^64-1 bytes
    /// long, so the all-ones prefix keeps the two domains apart.
    pub(crate) fn derive_key(&self, label: &str) -> Option<[u8; 32]> {
        let key = self.keys.first()?;
        let mut mac = key.context.clone();
        mac.update(&[0xff; 8]);
        mac.update(b"stepup derived key\0");
        mac.update(label.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// The exact bytes the tag covers, for the benchmark's floor.
    pub(crate) fn signed_input(&self, token: &str, subject: &Subject) -> Option<Vec<u8>> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let body = raw.get(..raw.len().checked_sub(TAG_LEN)?)?;
        let mut input = u16::try_from(body.len()).ok()?.to_be_bytes().to_vec();
        input.extend_from_slice(body);
        binding_bytes(subject, &mut |b| input.extend_from_slice(b));
        Some(input)
    }
}

/// Why a token whose tag failed was refused: a genuine body (someone else's
/// token) or not. Off the hot path.
#[cold]
#[inline(never)]
fn classify_failure(key: &KeyState, body: &[u8], subject: &Subject) -> Rejection {
    let genuine = crate::ct::eq_as(
        Comparison::BodyCheck,
        &body_check(key, body),
        &body[CHECK_AT..CHECK_AT + CHECK_LEN],
    );
    let same_binding = crate::ct::eq_as(
        Comparison::BindingHint,
        &binding_hint(key, subject),
        &body[HINT_AT..HINT_AT + HINT_LEN],
    );
    if genuine && !same_binding {
        Rejection::OtherBinding
    } else {
        Rejection::Invalid
    }
}

/// Which subject and session a token was minted for, as a 32-bit keyed
/// digest: enough to tell "someone else's" from "damaged", too short to
/// say who.
fn binding_hint(key: &KeyState, subject: &Subject) -> [u8; HINT_LEN] {
    let mut mac = key.hint.clone();
    feed_binding(&mut mac, subject);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; HINT_LEN];
    out.copy_from_slice(&full[..HINT_LEN]);
    out
}

/// The body check of `body` (whose own check field is skipped). Diagnostic
/// only: it decides which reason a refusal gives, never whether to refuse.
fn body_check(key: &KeyState, body: &[u8]) -> [u8; CHECK_LEN] {
    let mut mac = key.check.clone();
    mac.update(&body[..CHECK_AT]);
    mac.update(&body[CHECK_AT + CHECK_LEN..]);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; CHECK_LEN];
    out.copy_from_slice(&full[..CHECK_LEN]);
    out
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The binding, prefix-free: subject length (LEB128) and bytes, then a
/// session marker and, if there is a session, its length and bytes.
fn binding_bytes(subject: &Subject, out: &mut dyn FnMut(&[u8])) {
    let mut len = Vec::with_capacity(10);
    let id = subject.id().as_bytes();
    write_varint(&mut len, id.len() as u64);
    out(&len);
    out(id);
    match subject.session() {
        Some(session) => {
            len.clear();
            len.push(1);
            write_varint(&mut len, session.len() as u64);
            out(&len);
            out(session.as_bytes());
        }
        None => out(&[0]),
    }
}

fn feed_binding(mac: &mut HmacSha256, subject: &Subject) {
    binding_bytes(subject, &mut |b| mac.update(b));
}

/// Writes the binding (as [`binding_bytes`] does) into `out` if it fits,
/// returning its length; no allocation.
fn write_binding(out: &mut [u8], subject: &Subject) -> Option<usize> {
    let mut at = 0;
    let mut put = |bytes: &[u8]| -> Option<()> {
        out.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
        at += bytes.len();
        Some(())
    };
    let id = subject.id().as_bytes();
    let mut len = [0u8; 10];
    put(varint_into(&mut len, id.len() as u64))?;
    put(id)?;
    match subject.session() {
        Some(session) => {
            put(&[1])?;
            put(varint_into(&mut len, session.len() as u64))?;
            put(session.as_bytes())?;
        }
        None => put(&[0])?,
    }
    Some(at)
}

fn varint_into(buf: &mut [u8; 10], mut value: u64) -> &[u8] {
    let mut n = 0;
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            buf[n] = byte;
            return &buf[..=n];
        }
        buf[n] = byte | 0x80;
        n += 1;
    }
}

/// Reads a body whose tag already verified. Still strict: anything that does
/// not parse exactly is refused (it could only come from a bug or a leaked key).
fn parse_body(body: &[u8], key_id: KeyId, proofs: &mut Proofs) -> Option<Claims> {
    let mut r = Reader { bytes: body };
    let _version = r.u8()?;
    let _key_id = r.take(2)?;
    let _check = r.take(CHECK_LEN)?;
    let _hint = r.take(HINT_LEN)?;
    let since_base = u32::from_be_bytes(r.array()?);
    let issued_at = Timestamp::from_unix_seconds(TIME_BASE + u64::from(since_base));
    let lifetime = u32::try_from(r.varint()?).ok()?;
    let epoch = r.varint()?;
    let context = match r.u8()? {
        0 => None,
        8 => Some(r.array::<CONTEXT_LEN>()?),
        _ => return None,
    };
    let count = usize::from(r.u8()?);
    if count == 0 || count > MAX_PROOFS {
        return None;
    }
    proofs.clear();
    for _ in 0..count {
        let code = r.u8()?;
        let method = if code == WIRE_CUSTOM {
            let len = usize::from(r.u8()?);
            let name = std::str::from_utf8(r.take(len)?).ok()?;
            Method::Custom(CustomMethod::new(name).ok()?)
        } else {
            Method::from_wire_code(code)?
        };
        let age = u32::try_from(r.varint()?).ok()?;
        let at = issued_at.saturating_sub(std::time::Duration::from_secs(u64::from(age)));
        if !proofs.push_new(Proof::new(method, at)) {
            return None;
        }
    }
    if !r.bytes.is_empty() {
        return None;
    }
    Some(Claims {
        key_id,
        epoch,
        issued_at,
        expires_at: issued_at.saturating_add(std::time::Duration::from_secs(u64::from(lifetime))),
        context,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// LEB128, at most 10 bytes, canonical (no redundant trailing zero groups).
    fn varint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                if i > 0 && byte == 0 {
                    return None;
                }
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;

    fn open(codec: &Codec, token: &str, subject: &Subject) -> Result<(Claims, Proofs), Rejection> {
        let mut proofs = Proofs::new();
        codec.open(token, subject, &mut proofs).map(|c| (c, proofs))
    }

    /// A time `secs` after the token time base.
    fn ts(secs: u64) -> Timestamp {
        Timestamp::from_unix_seconds(TIME_BASE + secs)
    }

    fn ring(secret: u8, id: u16) -> KeyRing {
        KeyRing::new(Key::from_bytes(KeyId::new(id), &[secret; 32]).unwrap())
    }

    fn proofs(list: &[(Method, u64)]) -> Proofs {
        let mut p = Proofs::new();
        for (m, at) in list {
            p.record(Proof::new(*m, ts(*at)));
        }
        p
    }

    #[test]
    fn limits_are_consistent() {
        assert_eq!(MAX_RAW_LEN, 40 + 8 * 29 + 32);
        assert_eq!(MAX_TOKEN_LEN, 406);
        let codec = Codec::new(&ring(1, 1), DEFAULT_PURPOSE).unwrap();
        let subject = Subject::new("u").with_epoch(u64::MAX);
        let mut full = Proofs::new();
        for i in 0..MAX_PROOFS {
            let name = format!("m{i:0>21}");
            full.record(Proof::new(Method::custom(&name).unwrap(), ts(i as u64)));
        }
        // Every variable-length field at its longest.
        let token = codec
            .seal_in_context(
                &subject,
                ts(u64::from(u32::MAX)),
                u32::MAX,
                &full,
                Some([7; 8]),
            )
            .unwrap();
        assert_eq!(token.len(), MAX_TOKEN_LEN);
        assert!(open(&codec, &token, &subject).is_ok());
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut buf = [0u8; 10];
            assert_eq!(varint_into(&mut buf, v), &out[..]);
            assert_eq!(Reader { bytes: &out }.varint(), Some(v));
        }
    }

    #[test]
    fn round_trip_and_binding() {
        let codec = Codec::new(&ring(1, 7), DEFAULT_PURPOSE).unwrap();
        let alice = Subject::new("alice").with_session("s1").with_epoch(4);
        let p = proofs(&[(Method::Totp, 990), (Method::Password, 900)]);
        let token = codec.seal(&alice, ts(1000), 3600, &p).unwrap();
        let (claims, opened) = open(&codec, &token, &alice).unwrap();
        assert_eq!(claims.key_id, KeyId::new(7));
        assert_eq!(claims.epoch, 4);
        assert_eq!(opened, p);
        assert_eq!(claims.expires_at, ts(4600));

        let other_session = Subject::new("alice").with_session("s2").with_epoch(4);
        let no_session = Subject::new("alice").with_epoch(4);
        let bob = Subject::new("bob").with_session("s1").with_epoch(4);
        for s in [&other_session, &no_session, &bob] {
            assert_eq!(
                open(&codec, &token, s),
                Err(Rejection::OtherBinding),
                "{s:?}"
            );
        }
    }

    #[test]
    fn binding_is_prefix_free() {
        // ("ab", session "c") and ("a", session "bc") must not share a tag.
        let codec = Codec::new(&ring(1, 1), DEFAULT_PURPOSE).unwrap();
        let p = proofs(&[(Method::Totp, 10)]);
        let t = ts(10);
        let a = Subject::new("ab").with_session("c");
        let b = Subject::new("a").with_session("bc");
        let token = codec.seal(&a, t, 60, &p).unwrap();
        assert_eq!(open(&codec, &token, &b), Err(Rejection::OtherBinding));
        let c = Subject::new("ab\u{1}\0\0\0\0\0\0\0\u{1}c");
        assert_eq!(open(&codec, &token, &c), Err(Rejection::OtherBinding));
    }

    #[test]
    fn long_subjects_take_the_slow_path_and_stay_bound() {
        let codec = Codec::new(&ring(1, 1), DEFAULT_PURPOSE).unwrap();
        let p = proofs(&[(Method::Totp, 10)]);
        let t = ts(10);
        let long = Subject::new("u".repeat(300)).with_session("s".repeat(300));
        let token = codec.seal(&long, t, 60, &p).unwrap();
        assert!(open(&codec, &token, &long).is_ok());
        let other = Subject::new("u".repeat(300)).with_session("s".repeat(299));
        assert_eq!(open(&codec, &token, &other), Err(Rejection::OtherBinding));
        // Right at the edge of the stack buffer, both sides of it.
        for len in 120..170 {
            let s = Subject::new("x".repeat(len)).with_session("y");
            let token = codec.seal(&s, t, 60, &p).unwrap();
            assert!(open(&codec, &token, &s).is_ok(), "{len}");
        }
    }

    #[test]
    fn purpose_and_key_separate() {
        let r = ring(1, 1);
        let assurance = Codec::new(&r, DEFAULT_PURPOSE).unwrap();
        let other = Codec::new(&r, "myapp/flash-cookie").unwrap();
        let s = Subject::new("u");
        let p = proofs(&[(Method::Passkey, 10)]);
        let t = ts(10);
        let foreign = other.seal(&s, t, 60, &p).unwrap();
        assert_eq!(open(&assurance, &foreign, &s), Err(Rejection::Invalid));
        let same_id_other_secret = Codec::new(&ring(2, 1), DEFAULT_PURPOSE).unwrap();
        let token = same_id_other_secret.seal(&s, t, 60, &p).unwrap();
        assert_eq!(open(&assurance, &token, &s), Err(Rejection::Invalid));
        let unknown_id = Codec::new(&ring(1, 2), DEFAULT_PURPOSE).unwrap();
        let token = unknown_id.seal(&s, t, 60, &p).unwrap();
        assert_eq!(open(&assurance, &token, &s), Err(Rejection::Invalid));
    }

    #[test]
    fn purposes_are_validated() {
        for bad in ["", "with space", "é", &"x".repeat(49)] {
            assert!(Codec::new(&ring(1, 1), bad).is_err(), "{bad:?}");
        }
        assert!(Codec::new(&ring(1, 1), &"x".repeat(48)).is_ok());
    }

    #[test]
    fn bodies_that_verify_but_do_not_parse_are_refused() {
        // Simulates a key-holder minting odd bodies: the parser must still refuse them.
        let key = [9u8; 32];
        let codec = Codec::new(
            &KeyRing::new(Key::from_bytes(KeyId::new(1), &key).unwrap()),
            DEFAULT_PURPOSE,
        )
        .unwrap();
        let s = Subject::new("u");
        let state = KeyState {
            id: KeyId::new(1),
            tag: keyed(&key, &purpose_block(DOMAIN_TAG, DEFAULT_PURPOSE)).unwrap(),
            check: keyed(&key, &purpose_block(DOMAIN_CHECK, DEFAULT_PURPOSE)).unwrap(),
            hint: keyed(&key, &purpose_block(DOMAIN_HINT, DEFAULT_PURPOSE)).unwrap(),
            context: keyed(&key, &purpose_block(DOMAIN_CONTEXT, DEFAULT_PURPOSE)).unwrap(),
        };
        let mint = |body: &[u8]| {
            let mut raw = body.to_vec();
            let check = body_check(&state, &raw);
            raw[CHECK_AT..CHECK_AT + CHECK_LEN].copy_from_slice(&check);
            let mut m = keyed(&key, &purpose_block(DOMAIN_TAG, DEFAULT_PURPOSE)).unwrap();
            m.update(&(raw.len() as u16).to_be_bytes());
            m.update(&raw);
            feed_binding(&mut m, &s);
            raw.extend_from_slice(&m.finalize().into_bytes());
            URL_SAFE_NO_PAD.encode(&raw)
        };
        let header_full = |count: u8, lifetime: &[u8], epoch: &[u8]| {
            let mut h = vec![VERSION, 0, 1];
            h.extend_from_slice(&[0; CHECK_LEN + HINT_LEN]);
            h.extend_from_slice(&100u32.to_be_bytes());
            h.extend_from_slice(lifetime);
            h.extend_from_slice(epoch);
            h.push(0); // no client context
            h.push(count);
            h
        };
        let header_with_epoch = |count: u8, epoch: &[u8]| header_full(count, &[60], epoch);
        let header = |count: u8| header_with_epoch(count, &[0]);
        let totp = vec![2, 0];
        let good = [header(1), totp.clone()].concat();
        let (claims, proofs) = open(&codec, &mint(&good), &s).unwrap();
        assert_eq!(claims.issued_at, ts(100));
        assert_eq!(claims.expires_at, ts(160));
        assert_eq!(proofs.as_slice()[0].method(), Method::Totp);
        let max_epoch = [
            header_with_epoch(
                1,
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
            totp.clone(),
        ]
        .concat();
        assert_eq!(
            open(&codec, &mint(&max_epoch), &s).unwrap().0.epoch,
            u64::MAX
        );
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("zero count", [header(0), totp.clone()].concat()),
            ("too many", [header(9), totp.clone()].concat()),
            ("count beyond data", [header(2), totp.clone()].concat()),
            ("unknown method", [header(1), vec![99, 0]].concat()),
            ("trailing byte", [header(1), vec![2, 0, 7]].concat()),
            ("duplicate method", [header(2), vec![2, 0, 2, 1]].concat()),
            (
                "bad custom name",
                [header(1), vec![0x80, 2, b'A', b'B', 0]].concat(),
            ),
            (
                "custom length beyond data",
                [header(1), vec![0x80, 30, b'a', 0]].concat(),
            ),
            ("non-canonical age", [header(1), vec![2, 0x80, 0]].concat()),
            (
                "age beyond 32 bits",
                [header(1), vec![2, 0x80, 0x80, 0x80, 0x80, 0x10]].concat(),
            ),
            (
                "non-canonical epoch",
                [header_with_epoch(1, &[0x80, 0]), totp.clone()].concat(),
            ),
            (
                "epoch overflow",
                [header_with_epoch(1, &[0xff; 10]), totp.clone()].concat(),
            ),
            (
                "endless epoch",
                [header_with_epoch(1, &[0x80; 11]), totp.clone()].concat(),
            ),
            (
                "lifetime beyond 32 bits",
                [
                    header_full(1, &[0x80, 0x80, 0x80, 0x80, 0x10], &[0]),
                    totp.clone(),
                ]
                .concat(),
            ),
        ];
        for (name, body) in cases {
            assert_eq!(
                open(&codec, &mint(&body), &s),
                Err(Rejection::Invalid),
                "{name}"
            );
        }
    }
}
