//! `ReturnTo::parse`: no input panics, and whatever is accepted stays on
//! this site.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_core::ReturnTo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = ReturnTo::parse(text) {
        let p = path.as_str();
        assert!(p.starts_with('/'), "{p:?}");
        assert!(!p.starts_with("//") && !p.starts_with("/\\"), "{p:?}");
        assert!(
            !p.chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\'),
            "{p:?}"
        );
        // Accepted paths are stable.
        assert_eq!(
            ReturnTo::parse(p).map(|r| r.as_str().to_owned()).ok(),
            Some(p.to_owned())
        );
    }
    let fallback = ReturnTo::root();
    let _ = ReturnTo::parse_or(text, &fallback);
});
