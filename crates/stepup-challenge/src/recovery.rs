//! Recovery codes: high-entropy, shown once, stored only as digests, each
//! usable once.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{ChallengeError, StoreError, no_randomness};

/// Characters of a recovery code: Crockford's base-32 alphabet (no I, L, O,
/// U), so codes survive being read aloud or written down.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters per code: 16 × 5 bits = 80 bits of entropy.
pub const CODE_LEN: usize = 16;

/// One freshly generated recovery code, to show the user once. `Display`
/// groups it as `XXXX-XXXX-XXXX-XXXX`; `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// A random code from the operating system's generator.
    pub(crate) fn generate() -> Result<RecoveryCode, StoreError> {
        let mut raw = [0u8; CODE_LEN];
        getrandom::fill(&mut raw).map_err(no_randomness)?;
        let code = raw
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect();
        raw.zeroize();
        Ok(RecoveryCode(code))
    }

    /// The code as the user should see it: `XXXX-XXXX-XXXX-XXXX`.
    pub fn grouped(&self) -> String {
        let mut out = String::with_capacity(CODE_LEN + 3);
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The digest the engine hands the factor store. Unkeyed here: a code
    /// has 80 random bits (no offline guessing), and a digest keyed with
    /// the engine's key would stop every stored code from verifying when
    /// that key changes. A store that keeps it at rest keys it again with
    /// a key ring of its own (`stepup-sqlx` stores only an HMAC of it).
    pub(crate) fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }
}

impl fmt::Display for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode([redacted])")
    }
}

fn digest(normalized: &str) -> [u8; 32] {
    Sha256::digest(normalized.as_bytes()).into()
}

/// The digest of what the user typed, after the only tolerated changes:
/// grouping dashes removed and letters upper-cased. Anything else (spaces,
/// other characters, wrong length) is a format error.
pub(crate) fn digest_of_input(input: &str) -> Result<[u8; 32], ChallengeError> {
    const FORMAT: &str = "enter a recovery code like ABCD-EFGH-JKMN-PQRS";
    if input.len() > 2 * CODE_LEN {
        return Err(ChallengeError::Format(FORMAT));
    }
    let normalized: String = input
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = normalized.len() == CODE_LEN && normalized.bytes().all(|b| ALPHABET.contains(&b));
    if !valid {
        return Err(ChallengeError::Format(FORMAT));
    }
    Ok(digest(&normalized))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_look_right_and_differ() {
        let a = RecoveryCode::generate().unwrap();
        let b = RecoveryCode::generate().unwrap();
        assert_ne!(a, b);
        let g = a.grouped();
        assert_eq!(g.len(), 19);
        assert_eq!(g.matches('-').count(), 3);
        assert_eq!(format!("{a:?}"), "RecoveryCode([redacted])");
    }

    #[test]
    fn dashes_and_case_are_tolerated_nothing_else() {
        let code = RecoveryCode::generate().unwrap();
        let d = code.digest();
        assert_eq!(digest_of_input(&code.grouped()).unwrap(), d);
        assert_eq!(digest_of_input(&code.grouped().to_lowercase()).unwrap(), d);
        assert_eq!(digest_of_input(&code.0).unwrap(), d);
        for bad in [
            format!(" {}", code.grouped()),
            code.grouped().replace('-', " "),
            format!("{}X", code.0),
            code.0[..15].to_owned(),
            code.0.replace(|c: char| c.is_ascii_digit(), "O"),
            "ＡＢＣＤ-ＥＦＧＨ-ＪＫＭＮ-ＰＱＲＳ".to_owned(),
            String::new(),
            "-".repeat(40),
        ] {
            if bad != code.0 {
                assert!(
                    digest_of_input(&bad).is_err() || digest_of_input(&bad).unwrap() != d,
                    "{bad:?}"
                );
            }
        }
        assert!(digest_of_input(&"A".repeat(10_000)).is_err());
    }
}
