//! Sealing values before they go into a store: XChaCha20-Poly1305 with a
//! random nonce, bound to associated data the caller names.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::StoreError;

/// The format byte of a sealed value.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Seals values kept in a store (a pending TOTP secret in the state store,
/// a factor at rest): XChaCha20-Poly1305 under a 32-byte key, a random
/// 192-bit nonce per value, and associated data naming where the value
/// belongs, so a sealed value moved elsewhere does not open. A sealed value
/// is `version (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16)`.
///
/// The key must be a subkey for this one purpose (derived with HMAC from a
/// server key), never a key used for anything else. `Debug` shows nothing
/// of it; the cipher state is zeroed on drop.
///
/// ```
/// use stepup_store::Sealer;
///
/// let sealer = Sealer::new(&[7; 32]);
/// let sealed = sealer.seal(b"enrollment:session-1", b"secret")?;
/// assert_eq!(
///     sealer.open(b"enrollment:session-1", &sealed).as_deref().map(Vec::as_slice),
///     Some(&b"secret"[..])
/// );
/// assert!(sealer.open(b"enrollment:session-2", &sealed).is_none(), "moved elsewhere");
/// assert!(Sealer::new(&[8; 32]).open(b"enrollment:session-1", &sealed).is_none(), "another key");
/// # Ok::<(), stepup_store::StoreError>(())
/// ```
#[derive(Clone)]
pub struct Sealer {
    aead: XChaCha20Poly1305,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer under `key`.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals `plaintext` for `associated_data`. Fails only when the
    /// operating system has no randomness for the nonce.
    pub fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|_| StoreError::new("random", "no randomness for a nonce"))?;
        let ciphertext = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| StoreError::new("random", "sealing failed"))?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Opens what [`seal`](Self::seal) made for `associated_data` under
    /// this key: `None` for anything else (another key, other associated
    /// data, an altered or truncated value) — never a wrong plaintext.
    pub fn open(&self, associated_data: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN || sealed[0] != VERSION {
            return None;
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let nonce = <&XNonce>::try_from(nonce).ok()?;
        self.aead
            .decrypt(
                nonce,
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_altered_byte_and_every_truncation_is_refused() {
        let sealer = Sealer::new(&[1; 32]);
        let sealed = sealer.seal(b"ad", b"plaintext").unwrap();
        assert_eq!(sealed.len(), 1 + NONCE_LEN + 9 + TAG_LEN);
        assert!(!sealed.windows(9).any(|w| w == b"plaintext"));
        for i in 0..sealed.len() {
            let mut flipped = sealed.clone();
            flipped[i] ^= 0x80;
            assert!(sealer.open(b"ad", &flipped).is_none(), "byte {i}");
            assert!(sealer.open(b"ad", &sealed[..i]).is_none(), "cut at {i}");
        }
        assert_ne!(
            sealer.seal(b"ad", b"plaintext").unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }
}
