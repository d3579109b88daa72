//! The `Cookie` header scan and the token header: no input panics, and a
//! value found is a slice of the input without separators.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_http::{CookieName, Found};

fuzz_target!(|data: &[u8]| {
    // Several header values, separated by newlines.
    let values: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    for name in ["__Host-stepup", "stepup", "a"] {
        let found = CookieName::new(name).find(values.iter().copied());
        if let Found::One(value) = found {
            assert!(!value.contains(';'), "{value:?}");
            assert!(
                data.windows(value.len().max(1))
                    .any(|w| w == value.as_bytes())
                    || value.is_empty()
            );
        }
        let _ = found.or_only(Found::from_header(values.iter().copied()));
    }
    for method in ["GET", "POST"] {
        let _ = stepup_http::is_navigation(
            method,
            values.first().copied(),
            values.iter().skip(2).copied(),
            values.get(1).copied(),
        );
    }
    let _ = stepup_http::is_urlencoded_form(data);
    let _ = stepup_http::is_json(data);
    let _ = stepup_http::same_origin(
        "https://bank.example",
        values.first().copied(),
        values.get(1).copied(),
    );
});
