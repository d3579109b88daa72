//! Signing keys and the key ring that rotates them.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::error::KeyError;

/// The id of a key in a [`KeyRing`]; tokens name the key that signed them.
///
/// ```
/// use stepup_core::KeyId;
/// assert_eq!(KeyId::new(3).get(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(u16);

impl KeyId {
    /// A key id.
    pub const fn new(id: u16) -> KeyId {
        KeyId(id)
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A secret HMAC-SHA256 key with its id. `Debug` never shows the secret.
///
/// Keys are at least [`Key::MIN_LEN`] (32) bytes: generate them with a
/// cryptographic random generator, for example `openssl rand -base64 32`.
///
/// ```
/// use stepup_core::{Key, KeyId};
///
/// let key = Key::from_base64(KeyId::new(1), "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=")?;
/// assert_eq!(key.id(), KeyId::new(1));
/// assert_eq!(format!("{key:?}"), "Key { id: 1, secret: [redacted] }");
/// assert!(Key::from_bytes(KeyId::new(2), b"too short").is_err());
/// # Ok::<(), stepup_core::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Key {
    id: KeyId,
    secret: Arc<[u8]>,
}

impl Key {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 32;
    /// The longest key accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// A key from raw bytes.
    pub fn from_bytes(id: KeyId, secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort {
                id,
                got: secret.len(),
                min: Self::MIN_LEN,
            });
        }
        if secret.len() > Self::MAX_LEN {
            return Err(KeyError::TooLong {
                id,
                got: secret.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Key {
            id,
            secret: Arc::from(secret),
        })
    }

    /// A key from base64 text (standard or URL-safe alphabet, padding
    /// optional, surrounding white space ignored), as kept in an environment
    /// variable or a secrets manager.
    pub fn from_base64(id: KeyId, text: &str) -> Result<Key, KeyError> {
        let trimmed = text.trim().trim_end_matches('=');
        if trimmed.len() > Self::MAX_LEN * 2 {
            return Err(KeyError::TooLong {
                id,
                got: trimmed.len() * 3 / 4,
                max: Self::MAX_LEN,
            });
        }
        let bytes = STANDARD_NO_PAD
            .decode(trimmed)
            .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
            .map_err(|_| KeyError::Base64 { id })?;
        Key::from_bytes(id, &bytes)
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key {{ id: {}, secret: [redacted] }}", self.id)
    }
}

/// One key that signs new tokens, plus older keys that still verify.
///
/// Rotation without logging anyone out: add the new key as the signing key
/// with [`rotate`](KeyRing::rotate) (the old one stays as a verification key),
/// deploy, wait for at least the token lifetime, then
/// [`remove`](KeyRing::remove) the old key. A token signed with an older key
/// keeps verifying until that key is removed; the next step-up re-issues it
/// under the current key.
///
/// ```
/// use stepup_core::{Key, KeyId, KeyRing};
///
/// let old = Key::from_bytes(KeyId::new(1), &[1u8; 32])?;
/// let new = Key::from_bytes(KeyId::new(2), &[2u8; 32])?;
/// let mut ring = KeyRing::new(old);
/// ring.rotate(new)?;
/// assert_eq!(ring.signing_key_id(), KeyId::new(2));
/// assert_eq!(ring.key_ids().collect::<Vec<_>>(), [KeyId::new(2), KeyId::new(1)]);
/// ring.remove(KeyId::new(1))?;
/// # Ok::<(), stepup_core::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub struct KeyRing {
    /// The signing key first, then verification keys, newest first.
    keys: Vec<Key>,
}

impl KeyRing {
    /// A ring with one key, which signs and verifies.
    pub fn new(signing: Key) -> KeyRing {
        KeyRing {
            keys: vec![signing],
        }
    }

    /// Adds an older key that only verifies.
    pub fn with_verification_key(mut self, key: Key) -> Result<KeyRing, KeyError> {
        self.ensure_new(key.id)?;
        self.keys.push(key);
        Ok(self)
    }

    /// Makes `key` the signing key; the previous signing key stays for verification.
    pub fn rotate(&mut self, key: Key) -> Result<(), KeyError> {
        self.ensure_new(key.id)?;
        self.keys.insert(0, key);
        Ok(())
    }

    /// Drops a verification key: tokens it signed stop verifying.
    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyError> {
        if self.signing_key_id() == id {
            return Err(KeyError::RemoveSigningKey(id));
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        if self.keys.len() == before {
            return Err(KeyError::NoSuchKey(id));
        }
        Ok(())
    }

    /// The id of the key that signs new tokens.
    pub fn signing_key_id(&self) -> KeyId {
        self.keys[0].id
    }

    /// Every key id, the signing key first.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|k| k.id)
    }

    pub(crate) fn keys(&self) -> &[Key] {
        &self.keys
    }

    fn ensure_new(&self, id: KeyId) -> Result<(), KeyError> {
        if self.keys.iter().any(|k| k.id == id) {
            return Err(KeyError::DuplicateId(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_enforced() {
        let id = KeyId::new(1);
        assert!(matches!(
            Key::from_bytes(id, &[0; 31]),
            Err(KeyError::TooShort { got: 31, .. })
        ));
        assert!(Key::from_bytes(id, &[0; 32]).is_ok());
        assert!(Key::from_bytes(id, &[0; 256]).is_ok());
        assert!(matches!(
            Key::from_bytes(id, &[0; 257]),
            Err(KeyError::TooLong { .. })
        ));
    }

    #[test]
    fn base64_variants_decode_to_the_same_key() {
        let id = KeyId::new(1);
        let bytes: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37) ^ 0xfb).collect();
        let std = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let url = URL_SAFE_NO_PAD.encode(&bytes);
        assert_ne!(std.trim_end_matches('='), url, "test needs both alphabets");
        for text in [std.clone(), url, format!("  {std}\n")] {
            assert_eq!(Key::from_base64(id, &text).unwrap().secret(), &bytes[..]);
        }
        assert_eq!(
            Key::from_base64(id, "not base64!").unwrap_err(),
            KeyError::Base64 { id }
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = Key::from_bytes(KeyId::new(9), b"0123456789abcdef0123456789abcdef").unwrap();
        let shown = format!("{key:?} {:?}", KeyRing::new(key.clone()));
        assert!(!shown.contains("0123"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn ring_rules() {
        let k = |i| Key::from_bytes(KeyId::new(i), &[i as u8; 32]).unwrap();
        let mut ring = KeyRing::new(k(1));
        assert_eq!(ring.rotate(k(1)), Err(KeyError::DuplicateId(KeyId::new(1))));
        ring.rotate(k(2)).unwrap();
        assert_eq!(
            ring.remove(KeyId::new(2)),
            Err(KeyError::RemoveSigningKey(KeyId::new(2)))
        );
        assert_eq!(
            ring.remove(KeyId::new(7)),
            Err(KeyError::NoSuchKey(KeyId::new(7)))
        );
        ring.remove(KeyId::new(1)).unwrap();
        assert_eq!(ring.key_ids().collect::<Vec<_>>(), [KeyId::new(2)]);
    }
}
