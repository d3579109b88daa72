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
