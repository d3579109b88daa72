//! Secrets that must never be shown: TOTP seeds. Zeroed on drop; `Debug` and
//! `Display` print nothing of them.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::StoreError;

/// RFC 4648 base 32 without padding: what authenticator apps and
/// `otpauth://` URIs use.
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// A TOTP shared secret (the seed an authenticator app holds).
///
/// ```
/// use stepup_store::TotpSecret;
///
/// let secret = TotpSecret::generate()?;
/// assert_eq!(secret.as_bytes().len(), TotpSecret::GENERATED_LEN);
/// let typed = secret.to_base32().to_lowercase();
/// assert_eq!(TotpSecret::from_base32(&typed), Some(secret.clone()));
/// assert_eq!(format!("{secret:?}"), "TotpSecret([redacted])");
/// # Ok::<(), stepup_store::StoreError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret {
    bytes: Vec<u8>,
}

impl TotpSecret {
    /// The size of generated secrets: 20 bytes (160 bits, as RFC 4226 recommends).
    pub const GENERATED_LEN: usize = 20;
    /// The shortest secret accepted: 16 bytes (128 bits).
    pub const MIN_LEN: usize = 16;

    /// A fresh random secret from the operating system's generator.
    pub fn generate() -> Result<TotpSecret, StoreError> {
        let mut bytes = vec![0u8; Self::GENERATED_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::new("random", format!("no randomness available: {e}")))?;
        Ok(TotpSecret { bytes })
    }

    /// A secret from raw bytes (at least 16): `None` if too short.
    ///
    /// ```
    /// use stepup_store::TotpSecret;
    /// assert!(TotpSecret::from_bytes(&[7; 16]).is_some());
    /// assert!(TotpSecret::from_bytes(&[7; 15]).is_none());
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Option<TotpSecret> {
        (bytes.len() >= Self::MIN_LEN).then(|| TotpSecret {
            bytes: bytes.to_vec(),
        })
    }

    /// A secret from its base-32 form (as authenticator apps show it),
    /// ignoring spaces and case: `None` if not base 32 or shorter than 16 bytes.
    ///
    /// ```
    /// use stepup_store::TotpSecret;
    /// let secret = TotpSecret::from_base32("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").unwrap();
    /// assert_eq!(secret.to_base32(), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    /// ```
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = zeroize::Zeroizing::new(base32::decode(BASE32, cleaned.trim_end_matches('='))?);
        TotpSecret::from_bytes(&bytes)
    }

    /// The base-32 form authenticator apps accept for manual entry.
    pub fn to_base32(&self) -> String {
        base32::encode(BASE32, &self.bytes)
    }

    /// The raw bytes, for the application to store (encrypted at rest).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base32_round_trips_and_debug_is_redacted() {
        let s = TotpSecret::generate().unwrap();
        let text = s.to_base32();
        assert_eq!(TotpSecret::from_base32(&text), Some(s.clone()));
        assert_eq!(
            TotpSecret::from_base32(&text.to_lowercase()),
            Some(s.clone())
        );
        assert!(TotpSecret::from_base32("not base32!").is_none());
        assert!(TotpSecret::from_base32("GEZDGNBV").is_none(), "too short");
        assert_eq!(format!("{s:?}"), "TotpSecret([redacted])");
    }

    #[test]
    fn base32_is_rfc_4648() {
        // RFC 4648 §10 ("foobar"), padded to 16 bytes with a known tail.
        let s = TotpSecret::from_bytes(b"foobar0123456789").unwrap();
        assert_eq!(s.to_base32(), "MZXW6YTBOIYDCMRTGQ2TMNZYHE");
        assert_eq!(
            TotpSecret::from_base32("MZXW6YTBOIYDCMRTGQ2TMNZYHE======"),
            Some(s)
        );
    }
}
