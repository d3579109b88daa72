//! Secrets that must never be shown: TOTP seeds. Zeroed on drop; `Debug` and
//! `Display` print nothing of them.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::StoreError;

/// A TOTP shared secret (the seed an authenticator app holds).
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
    pub fn from_bytes(bytes: &[u8]) -> Option<TotpSecret> {
        (bytes.len() >= Self::MIN_LEN).then(|| TotpSecret {
            bytes: bytes.to_vec(),
        })
    }

    /// A secret from its base-32 form (as authenticator apps show it),
    /// ignoring spaces and case: `None` if not base 32 or shorter than 16 bytes.
    pub fn from_base32(text: &str) -> Option<TotpSecret> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let secret = totp_rs::Secret::try_from_base32(cleaned.trim_end_matches('=')).ok()?;
        TotpSecret::from_bytes(secret.as_bytes())
    }

    /// The base-32 form authenticator apps accept for manual entry.
    pub fn to_base32(&self) -> String {
        totp_rs::Secret::from(self.bytes.clone()).to_base32()
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
}
