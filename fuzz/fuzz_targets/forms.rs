//! The fields of a kept form: no input panics, and the canonical encoding
//! the kept record and the comparison on arrival rely on is stable —
//! decoding what was encoded gives the same fields, and encoding them again
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_http::FormFields;

fuzz_target!(|data: &[u8]| {
    let form = FormFields::parse(data);
    let encoded = form.encode();
    let again = FormFields::parse(encoded.as_bytes());
    assert_eq!(again, form, "{encoded:?}");
    assert_eq!(again.encode(), encoded);
    for (name, _) in form.pairs() {
        assert!(form.get(name).is_some(), "{name:?}");
    }
    let _ = stepup_http::is_urlencoded_form(data);
});
