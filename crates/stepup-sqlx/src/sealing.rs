//! Sealing at rest: the key ring ([`SealingKeys`] of [`SealingKey`]s), the
//! AEAD that seals TOTP secrets and passkey records, and the keyed digests
//! recovery codes are stored as.
//!
//! Each 32-byte sealing key is never used directly: HMAC-SHA256 derives
//! one subkey per purpose from it (sealing, recovery-code digests, the
//! check value a database keeps to recognise the key), so no two uses
//! share a key.
//!
//! A sealed value is `stepup_store::Sealer`'s (`version ‖ nonce ‖
//! ciphertext ‖ tag`, XChaCha20-Poly1305 with a random 192-bit nonce); its
//! associated data names
//! the column, the key id, the subject and (for passkeys) the credential
//! id: a sealed value copied to another user, another credential or
//! another column does not open.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stepup_store::{Sealer, StoreError};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type HmacSha256 = Hmac<Sha256>;

/// A sealing key: 32 secret bytes and the id rows sealed under it are
/// labelled with, so keys rotate without a flag day (rows keep their key
/// id; the ring opens each with its own key).
///
/// Its text form is `ID:KEY`, the key in base64url without padding (what
/// [`SealingKey::to_text`] writes and [`SealingKeys::parse`] reads); `Debug`
/// shows the id only.
///
/// ```
/// use stepup_sqlx::SealingKey;
///
/// let key = SealingKey::generate(1)?;
/// let text = key.to_text();
/// assert!(text.starts_with("1:"));
/// assert_eq!(SealingKey::parse(&text)?.id(), 1);
/// assert_eq!(format!("{key:?}"), "SealingKey { id: 1, key: [redacted] }");
/// # Ok::<(), stepup_sqlx::KeyError>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SealingKey {
    #[zeroize(skip)]
    id: u32,
    bytes: [u8; 32],
}

impl SealingKey {
    /// A key from its id and 32 secret bytes.
    pub fn new(id: u32, bytes: [u8; 32]) -> SealingKey {
        SealingKey { id, bytes }
    }

    /// A fresh random key with id `id`, from the operating system's
    /// generator.
    pub fn generate(id: u32) -> Result<SealingKey, KeyError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| KeyError::NoRandomness)?;
        Ok(SealingKey { id, bytes })
    }

    /// Parses the text form `ID:KEY` (surrounding white space ignored).
    ///
    /// ```
    /// use stepup_sqlx::{KeyError, SealingKey};
    ///
    /// assert!(matches!(SealingKey::parse("x:AAAA"), Err(KeyError::Format(_))));
    /// assert!(matches!(SealingKey::parse("1:AAAA"), Err(KeyError::Format(_))), "too short");
    /// ```
    pub fn parse(text: &str) -> Result<SealingKey, KeyError> {
        const FORMAT: &str =
            "a sealing key is ID:KEY, the id a number, the key 32 bytes in base64url";
        let (id, key) = text
            .trim()
            .split_once(':')
            .ok_or(KeyError::Format(FORMAT))?;
        let id: u32 = id.parse().map_err(|_| KeyError::Format(FORMAT))?;
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(key.trim_end_matches('='))
                .map_err(|_| KeyError::Format(FORMAT))?,
        );
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Format(FORMAT))?;
        Ok(SealingKey { id, bytes })
    }

    /// The text form, `ID:KEY`: a secret, to keep where the application
    /// keeps its other secrets.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{}:{}",
            self.id,
            URL_SAFE_NO_PAD.encode(self.bytes)
        ))
    }

    /// The key id rows sealed under this key carry.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn derive(&self, purpose: &[u8]) -> Zeroizing<[u8; 32]> {
        let mut mac = mac(&self.bytes);
        mac.update(b"stepup-sqlx v1 ");
        mac.update(purpose);
        Zeroizing::new(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKey")
            .field("id", &self.id)
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

/// Why a sealing key or key ring was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not a key (or a ring of keys).
    #[error("{0}")]
    Format(&'static str),
    /// Two keys of the ring have the same id.
    #[error("the sealing keys have the id {0} twice")]
    DuplicateId(u32),
    /// The operating system's generator failed.
    #[error("no randomness available for a sealing key")]
    NoRandomness,
}

/// The key ring of a store: the current key seals every write, the older
/// ones only open what was sealed under them (and verify recovery codes
/// digested under them) until [`reseal`](crate::SqlStore::reseal) has moved
/// every row to the current key.
///
/// Rotation: generate a key with a new id, put it first and keep the old
/// one after it (`2:NEW,1:OLD`), deploy, run `reseal`, and drop the old key
/// once no row needs it (recovery codes cannot be re-keyed: they are kept
/// only as digests; see the crate docs).
///
/// ```
/// use stepup_sqlx::{SealingKey, SealingKeys};
///
/// let old = SealingKey::generate(1)?;
/// let new = SealingKey::generate(2)?;
/// let ring = SealingKeys::parse(&format!("{},{}", *new.to_text(), *old.to_text()))?;
/// assert_eq!(ring.current().id(), 2);
/// assert_eq!(ring.ids().collect::<Vec<_>>(), [2, 1]);
/// # Ok::<(), stepup_sqlx::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SealingKeys {
    keys: Vec<Keyed>,
}

/// A key and its derived subkeys.
#[derive(Clone)]
struct Keyed {
    key: SealingKey,
    seal: Sealer,
    digest: HmacSha256,
    check: [u8; 32],
}

impl fmt::Debug for Keyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)
    }
}

impl Keyed {
    fn new(key: SealingKey) -> Keyed {
        let seal = Sealer::new(&key.derive(b"seal"));
        let digest = mac(key.derive(b"recovery-code digest").as_slice());
        let check = *key.derive(b"key check");
        Keyed {
            key,
            seal,
            digest,
            check,
        }
    }
}

impl SealingKeys {
    /// A ring of one key.
    pub fn new(current: SealingKey) -> SealingKeys {
        SealingKeys {
            keys: vec![Keyed::new(current)],
        }
    }

    /// Adds an older key: it opens rows sealed under it, it seals nothing.
    pub fn with_old(mut self, old: SealingKey) -> Result<SealingKeys, KeyError> {
        if self.keys.iter().any(|k| k.key.id == old.id) {
            return Err(KeyError::DuplicateId(old.id));
        }
        self.keys.push(Keyed::new(old));
        Ok(self)
    }

    /// Parses keys in text form separated by commas, the current one first.
    ///
    /// ```
    /// use stepup_sqlx::{KeyError, SealingKey, SealingKeys};
    ///
    /// let key = SealingKey::generate(3)?.to_text();
    /// let key = key.as_str();
    /// assert_eq!(
    ///     SealingKeys::parse(&format!("{key}, {key}")).unwrap_err(),
    ///     KeyError::DuplicateId(3)
    /// );
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn parse(text: &str) -> Result<SealingKeys, KeyError> {
        let mut parts = text.split(',');
        let first = parts.next().unwrap_or_default();
        let mut ring = SealingKeys::new(SealingKey::parse(first)?);
        for part in parts {
            ring = ring.with_old(SealingKey::parse(part)?)?;
        }
        Ok(ring)
    }

    /// The key every write seals under.
    pub fn current(&self) -> &SealingKey {
        &self.keys[0].key
    }

    /// The ids of the ring, the current one first.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|k| k.key.id)
    }

    fn find(&self, id: u32) -> Option<&Keyed> {
        self.keys.iter().find(|k| k.key.id == id)
    }

    /// Each key's id and what a database keeps to recognise it: a digest
    /// under a subkey of its own, revealing nothing of the key.
    pub(crate) fn check_values(&self) -> impl Iterator<Item = (u32, [u8; 32])> + '_ {
        self.keys.iter().map(|k| (k.key.id, k.check))
    }

    /// Seals `plaintext` under the current key for `place`: the key id
    /// and the sealed bytes.
    pub(crate) fn seal(
        &self,
        place: &Place<'_>,
        plaintext: &[u8],
    ) -> Result<(u32, Vec<u8>), StoreError> {
        let keyed = &self.keys[0];
        let sealed = keyed
            .seal
            .seal(&place.associated_data(keyed.key.id), plaintext)
            .map_err(|e| StoreError::new("factor", format!("{}: {e}", place.operation)))?;
        Ok((keyed.key.id, sealed))
    }

    /// Opens what [`seal`](Self::seal) made for `place` under key `key_id`.
    /// A key the ring does not hold, or a value that does not open (another
    /// key with that id, a value altered or moved to another row or
    /// column), is an error that says which — never a wrong secret.
    pub(crate) fn open(
        &self,
        place: &Place<'_>,
        key_id: i64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let keyed = u32::try_from(key_id)
            .ok()
            .and_then(|id| self.find(id))
            .ok_or_else(|| {
                StoreError::new(
                    "factor",
                    format!(
                        "{}: sealed under key id {key_id}, which the sealing keys do not hold",
                        place.operation
                    ),
                )
            })?;
        keyed
            .seal
            .open(&place.associated_data(keyed.key.id), sealed)
            .ok_or_else(|| {
                StoreError::new(
                    "factor",
                    format!(
                        "{}: the sealed {} does not open under key id {key_id} (another key with \
                         that id, or the row was altered or copied from another user or column)",
                        place.operation, place.column
                    ),
                )
            })
    }

    /// The digest a recovery code (the engine's digest of it) is stored as
    /// for `subject`, under each key of the ring, the current one first.
    pub(crate) fn recovery_digests(
        &self,
        subject: &str,
        digest: &[u8; 32],
    ) -> Vec<(u32, [u8; 32])> {
        self.keys
            .iter()
            .map(|k| (k.key.id, recovery_digest(&k.digest, subject, digest)))
            .collect()
    }

    /// The digest a recovery code is stored as under the current key.
    pub(crate) fn current_recovery_digest(
        &self,
        subject: &str,
        digest: &[u8; 32],
    ) -> (u32, [u8; 32]) {
        let k = &self.keys[0];
        (k.key.id, recovery_digest(&k.digest, subject, digest))
    }
}

/// Where a sealed value lives: what its associated data binds it to.
#[derive(Debug)]
pub(crate) struct Place<'a> {
    /// The store operation, for errors.
    pub(crate) operation: &'static str,
    /// `table.column`.
    pub(crate) column: &'static str,
    /// The subject's id.
    pub(crate) subject: &'a str,
    /// More of the row's identity (a passkey's credential id), or empty.
    pub(crate) row: &'a [u8],
}

impl Place<'_> {
    fn associated_data(&self, key_id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + self.subject.len() + self.row.len());
        aad.extend_from_slice(b"stepup-sqlx sealed v1");
        for part in [
            self.column.as_bytes(),
            &key_id.to_be_bytes(),
            self.subject.as_bytes(),
            self.row,
        ] {
            // Length-prefixed, so no two places share associated data.
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part);
        }
        aad
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacSha256 as KeyInit>::new(&Default::default()))
}

fn recovery_digest(mac: &HmacSha256, subject: &str, digest: &[u8; 32]) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(&(subject.len() as u64).to_be_bytes());
    mac.update(subject.as_bytes());
    mac.update(digest);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn place<'a>(subject: &'a str, row: &'a [u8]) -> Place<'a> {
        Place {
            operation: "test",
            column: "stepup_totp.sealed",
            subject,
            row,
        }
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_place_under_its_key() {
        let ring = SealingKeys::new(SealingKey::new(1, [7; 32]));
        let (id, sealed) = ring.seal(&place("alice", b""), b"secret").unwrap();
        assert_eq!(id, 1);
        assert_eq!(
            &*ring.open(&place("alice", b""), 1, &sealed).unwrap(),
            b"secret"
        );
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        // Another subject, row, column, key id, or a flipped byte: refused.
        assert!(ring.open(&place("bob", b""), 1, &sealed).is_err());
        assert!(ring.open(&place("alice", b"x"), 1, &sealed).is_err());
        let other_column = Place {
            column: "stepup_passkeys.sealed",
            ..place("alice", b"")
        };
        assert!(ring.open(&other_column, 1, &sealed).is_err());
        let e = ring.open(&place("alice", b""), 2, &sealed).unwrap_err();
        assert!(
            e.to_string()
                .contains("key id 2, which the sealing keys do not hold"),
            "{e}"
        );
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 1;
            assert!(
                ring.open(&place("alice", b""), 1, &flipped).is_err(),
                "byte {i}"
            );
        }
        let other_key = SealingKeys::new(SealingKey::new(1, [8; 32]));
        let e = other_key
            .open(&place("alice", b""), 1, &sealed)
            .unwrap_err();
        assert!(
            e.to_string().contains("does not open under key id 1"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("alice"),
            "no user id in errors: {e}"
        );
    }

    #[test]
    fn an_old_key_opens_and_the_current_one_seals() {
        let old = SealingKeys::new(SealingKey::new(1, [1; 32]));
        let (_, sealed) = old.seal(&place("alice", b""), b"s").unwrap();
        let ring = SealingKeys::new(SealingKey::new(2, [2; 32]))
            .with_old(SealingKey::new(1, [1; 32]))
            .unwrap();
        assert_eq!(&*ring.open(&place("alice", b""), 1, &sealed).unwrap(), b"s");
        assert_eq!(ring.seal(&place("alice", b""), b"s").unwrap().0, 2);
    }

    #[test]
    fn recovery_digests_are_keyed_per_key_and_subject() {
        let ring = SealingKeys::new(SealingKey::new(2, [2; 32]))
            .with_old(SealingKey::new(1, [1; 32]))
            .unwrap();
        let d = [9u8; 32];
        let all = ring.recovery_digests("alice", &d);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], ring.current_recovery_digest("alice", &d));
        assert_ne!(all[0].1, all[1].1);
        assert_ne!(all[0].1, ring.current_recovery_digest("bob", &d).1);
        assert_ne!(all[0].1, d);
        // Subkeys differ per purpose.
        let checks: Vec<_> = ring.check_values().collect();
        assert_eq!(checks.len(), 2);
        assert_ne!(checks[0].1, checks[1].1);
    }

    #[test]
    fn keys_parse_and_print() {
        let key = SealingKey::new(7, [3; 32]);
        let parsed = SealingKey::parse(&key.to_text()).unwrap();
        assert_eq!((parsed.id(), parsed.bytes), (7, [3; 32]));
        assert!(SealingKey::parse("7").is_err());
        assert!(SealingKey::parse(":AAAA").is_err());
        assert!(SealingKeys::parse("").is_err());
    }
}
