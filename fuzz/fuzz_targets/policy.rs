//! The policy expression parser: no input panics or runs away, and what
//! parses prints back to the same policy.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_core::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::parse(text) {
        let printed = policy.to_string();
        let again = Policy::parse(&printed).expect("a printed policy parses");
        assert_eq!(again, policy, "{text:?} -> {printed:?}");
    }
});
