//! TOTP (RFC 6238) through `totp-rs`: configuration, the strict code format,
//! verification that returns the matched step, and enrollment material.

use std::time::Duration;

use totp_rs::{Algorithm, Secret, Totp};

use crate::error::{ChallengeError, StoreError};
use stepup_store::TotpSecret;

/// How TOTP codes are made. The defaults — SHA-1, 6 digits, 30-second steps,
/// one step of tolerance either way — are what authenticator apps support.
#[derive(Clone, Debug)]
pub struct TotpConfig {
    algorithm: Algorithm,
    digits: u8,
    step: u64,
    skew: u16,
    issuer: String,
}

impl Default for TotpConfig {
    fn default() -> Self {
        TotpConfig {
            algorithm: Algorithm::SHA1,
            digits: 6,
            step: 30,
            skew: 1,
            issuer: "stepup".to_owned(),
        }
    }
}

impl TotpConfig {
    /// The default configuration, announcing `issuer` (your service's name,
    /// without `:`) in authenticator apps.
    pub fn new(issuer: impl Into<String>) -> TotpConfig {
        TotpConfig {
            issuer: issuer.into().replace(':', " "),
            ..TotpConfig::default()
        }
    }

    /// The HMAC algorithm (SHA-1 unless you control the authenticators).
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> TotpConfig {
        self.algorithm = algorithm;
        self
    }

    /// Digits per code, 6 to 8 (other values are clamped).
    pub fn with_digits(mut self, digits: u8) -> TotpConfig {
        self.digits = digits.clamp(6, 8);
        self
    }

    /// Steps of clock tolerance either way, 0 to 2 (clamped).
    pub fn with_skew(mut self, steps: u16) -> TotpConfig {
        self.skew = steps.min(2);
        self
    }

    /// The step length, 15 to 120 seconds (clamped).
    pub fn with_step(mut self, step: Duration) -> TotpConfig {
        self.step = step.as_secs().clamp(15, 120);
        self
    }

    /// Digits per code.
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// How long a matched step must be remembered so it cannot be replayed:
    /// until it has left the tolerance window.
    pub(crate) fn replay_memory(&self) -> Duration {
        Duration::from_secs(self.step * (2 * u64::from(self.skew) + 2))
    }

    fn totp(&self, secret: &TotpSecret, account: &str) -> Result<Totp, StoreError> {
        totp_rs::Builder::new()
            .with_algorithm(self.algorithm)
            .with_digits(self.digits)
            .with_skew(self.skew)
            .with_step_duration(self.step)
            .with_secret(Secret::from(secret.as_bytes().to_vec()))
            .with_issuer(Some(self.issuer.as_str()))
            .with_account_name(account.replace(':', " "))
            .build()
            .map_err(|e| StoreError::new("factor", format!("unusable TOTP secret: {e}")))
    }

    /// Checks the format strictly: exactly the configured number of ASCII
    /// digits, nothing else (no sign, space, full-width or other-script digit).
    pub fn check_format(&self, code: &str) -> Result<(), ChallengeError> {
        if code.len() == usize::from(self.digits) && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(())
        } else {
            Err(ChallengeError::Format(match self.digits {
                6 => "enter the 6-digit code from your authenticator app",
                7 => "enter the 7-digit code from your authenticator app",
                _ => "enter the 8-digit code from your authenticator app",
            }))
        }
    }

    /// The step (`unix time / step length`) whose code `code` is, within the
    /// tolerance window around `unix_time`; `None` if it matches none.
    pub fn matched_step(
        &self,
        secret: &TotpSecret,
        code: &str,
        unix_time: u64,
    ) -> Result<Option<u64>, ChallengeError> {
        self.check_format(code)?;
        let totp = self.totp(secret, "")?;
        let origin = unix_time / self.step;
        let window = origin.saturating_sub(u64::from(self.skew))..=origin + u64::from(self.skew);
        // Every step of the window is generated and compared in constant
        // time (`stepup_core::ct`), so the answer's timing says nothing about
        // how close a wrong code came.
        let mut matched = None;
        for counter in window {
            let expected = totp.generate(counter * self.step).to_string();
            if stepup_core::ct::eq_as(
                stepup_core::ct::Comparison::TotpCode,
                expected.as_bytes(),
                code.as_bytes(),
            ) && matched.is_none()
            {
                matched = Some(counter);
            }
        }
        Ok(matched)
    }

    /// The code for `unix_time` (for tests and tooling).
    pub fn code_at(&self, secret: &TotpSecret, unix_time: u64) -> Result<String, StoreError> {
        Ok(self.totp(secret, "")?.generate(unix_time).to_string())
    }

    /// The `otpauth://totp/…` URI an authenticator app scans.
    pub fn otpauth_uri(&self, secret: &TotpSecret, account: &str) -> Result<String, StoreError> {
        self.totp(secret, account)?
            .to_url()
            .map_err(|e| StoreError::new("factor", format!("cannot build the otpauth URI: {e}")))
    }

    /// The otpauth URI as a PNG QR code.
    pub fn qr_png(&self, secret: &TotpSecret, account: &str) -> Result<Vec<u8>, StoreError> {
        self.totp(secret, account)?
            .to_qr_png()
            .map_err(|e| StoreError::new("factor", format!("cannot draw the QR code: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: (time, SHA-1, SHA-256, SHA-512), 8 digits.
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];

    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let sha256 = TotpSecret::from_bytes(b"12345678901234567890123456789012").unwrap();
        let sha512 = TotpSecret::from_bytes(
            b"1234567890123456789012345678901234567890123456789012345678901234",
        )
        .unwrap();
        let cfg = |alg| TotpConfig::default().with_digits(8).with_algorithm(alg);
        for (t, c1, c256, c512) in VECTORS {
            assert_eq!(cfg(Algorithm::SHA1).code_at(&sha1, t).unwrap(), c1, "{t}");
            assert_eq!(
                cfg(Algorithm::SHA256).code_at(&sha256, t).unwrap(),
                c256,
                "{t}"
            );
            assert_eq!(
                cfg(Algorithm::SHA512).code_at(&sha512, t).unwrap(),
                c512,
                "{t}"
            );
            assert_eq!(
                cfg(Algorithm::SHA1).matched_step(&sha1, c1, t).unwrap(),
                Some(t / 30)
            );
        }
    }

    #[test]
    fn the_window_is_one_step_either_way() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let cfg = TotpConfig::default();
        let t = 1_700_000_000u64;
        for (offset, expected) in [
            (-60i64, None),
            (-30, Some(-1i64)),
            (0, Some(0)),
            (30, Some(1)),
            (60, None),
        ] {
            let code = cfg.code_at(&s, (t as i64 + offset) as u64).unwrap();
            let got = cfg.matched_step(&s, &code, t).unwrap();
            assert_eq!(
                got,
                expected.map(|d| ((t as i64) / 30 + d) as u64),
                "{offset}"
            );
        }
    }

    #[test]
    fn only_plain_ascii_digits_are_codes() {
        let cfg = TotpConfig::default();
        for bad in [
            "",
            "12345",
            "1234567",
            "+12345",
            " 123456",
            "123456 ",
            "123 456",
            "12345a",
            "１２３４５６",
            "١٢٣٤٥٦",
            "१२३४५६",
            "12345\u{0}",
            "-12345",
            "0x1234",
        ] {
            assert!(cfg.check_format(bad).is_err(), "{bad:?}");
        }
        assert!(cfg.check_format("012345").is_ok());
        assert!(cfg.clone().with_digits(8).check_format("01234567").is_ok());
    }

    #[test]
    fn enrollment_material() {
        let s = TotpSecret::generate().unwrap();
        assert_eq!(s.as_bytes().len(), 20);
        let cfg = TotpConfig::new("Bank: Example");
        let uri = cfg.otpauth_uri(&s, "alice@example.com").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("secret="));
        let png = cfg.qr_png(&s, "alice@example.com").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
