//! The code-format checks: TOTP codes, channels, route notes. No input
//! panics, and an accepted TOTP code is exactly ASCII digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_challenge::{Channel, TotpConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for digits in [6, 8] {
        let config = TotpConfig::new("Bank").with_digits(digits);
        if config.check_format(&text).is_ok() {
            assert_eq!(text.len(), usize::from(digits));
            assert!(text.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    if let Some(channel) = Channel::parse(&text) {
        assert_eq!(channel.as_str(), text);
    }
    if stepup_http::valid_note(&text) {
        assert!(!text.is_empty() && text.len() <= 32);
    }
});
