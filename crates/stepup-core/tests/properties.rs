//! Property tests: round trips for arbitrary claims, and no mutation of a
//! token ever verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use proptest::prelude::*;
use stepup_core::{Method, Policy, Proof, ReturnTo, Subject, Timestamp};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        proptest::sample::select(Method::BUILT_IN.to_vec()),
        "[a-z][a-z0-9_-]{0,21}".prop_map(|n| Method::custom(&n).unwrap()),
    ]
}

fn subject() -> impl Strategy<Value = Subject> {
    (
        any::<String>(),
        proptest::option::of(any::<String>()),
        any::<u64>(),
    )
        .prop_map(|(id, session, epoch)| {
            let s = Subject::new(id).with_epoch(epoch);
            match session {
                Some(sid) => s.with_session(sid),
                None => s,
            }
        })
}

/// Up to 8 distinct methods, each proven some seconds before `now`.
fn proofs() -> impl Strategy<Value = Vec<(Method, u64)>> {
    proptest::collection::vec((method(), 0u64..3599), 1..=8).prop_map(|mut v| {
        let mut seen = Vec::new();
        v.retain(|(m, _)| {
            let fresh = !seen.contains(m);
            seen.push(*m);
            fresh
        });
        v
    })
}

fn minted(subject: &Subject, list: &[(Method, u64)], now: Timestamp) -> String {
    let (issuer, _) = pair();
    let mut previous: Option<String> = None;
    // Oldest first, as step-ups happen.
    let mut sorted = list.to_vec();
    sorted.sort_by_key(|(_, age)| std::cmp::Reverse(*age));
    for (m, age) in sorted {
        let at = now - secs(age);
        let t = issuer
            .issue(subject, Proof::new(m, at), previous.as_deref(), at)
            .unwrap();
        previous = Some(t.into_value());
    }
    previous.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn issue_then_verify_round_trips(subject in subject(), list in proofs(), now in 1_600_010_000u64..5_800_000_000) {
        let now = Timestamp::from_unix_seconds(now);
        let token = minted(&subject, &list, now);
        let (_, gate) = pair();
        let a = gate.verify(&subject, Some(&token), now).unwrap();
        prop_assert_eq!(a.proofs().len(), list.len());
        for (m, age) in &list {
            let exact = a.proofs().iter().find(|p| p.method() == *m).map(|p| p.at());
            prop_assert_eq!(exact, Some(now - secs(*age)));
            // `proven_at` is the newest proof that satisfies the method
            // (a device-bound passkey stands in for a passkey).
            let newest = list
                .iter()
                .filter(|(p, _)| p.satisfies(m))
                .map(|(_, age)| *age)
                .min();
            prop_assert_eq!(a.proven_at(*m), newest.map(|age| now - secs(age)));
            prop_assert_eq!(a.age_of(*m, now), newest.map(secs));
        }
        prop_assert_eq!(a.subject(), &subject);
    }

    #[test]
    fn no_single_bit_flip_verifies(list in proofs(), bit in any::<prop::sample::Index>()) {
        let user = alice();
        let token = minted(&user, &list, T0);
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let i = bit.index(raw.len() * 8);
        raw[i / 8] ^= 1 << (i % 8);
        let (_, gate) = pair();
        prop_assert!(gate.verify(&user, Some(&URL_SAFE_NO_PAD.encode(&raw)), T0).is_err());
    }

    #[test]
    fn no_truncation_or_extension_verifies(list in proofs(), cut in any::<prop::sample::Index>(), extra in "[A-Za-z0-9_-]{1,8}") {
        let user = alice();
        let token = minted(&user, &list, T0);
        let (_, gate) = pair();
        let n = cut.index(token.len());
        prop_assert!(gate.verify(&user, Some(&token[..n]), T0).is_err());
        let extended = format!("{token}{extra}");
        prop_assert!(gate.verify(&user, Some(&extended), T0).is_err());
    }

    #[test]
    fn arbitrary_text_never_verifies_or_panics(text in any::<String>()) {
        let (_, gate) = pair();
        prop_assert!(gate.verify(alice(), Some(&text), T0).is_err());
        let _ = gate.check(alice(), Some(&text), &Policy::level(1), T0);
    }

    #[test]
    fn policy_text_round_trips(p in policy()) {
        let text = p.to_string();
        let parsed: Policy = text.parse().unwrap();
        prop_assert_eq!(parsed, p);
    }

    #[test]
    fn policy_parser_never_panics(text in "[ a-z0-9()|&:_-]{0,80}") {
        let _ = Policy::parse(&text);
    }

    #[test]
    fn return_paths_built_from_url_characters_never_panic(text in "/[/a-zA-Z0-9%.?#:@\\\\]{0,40}") {
        if let Ok(r) = ReturnTo::parse(&text) {
            prop_assert!(!r.as_str().starts_with("//"));
        }
    }
}

fn leaf() -> impl Strategy<Value = Policy> {
    let age = proptest::option::of(0u64..(366 * 86_400));
    prop_oneof![
        (1u8..=255, age.clone()).prop_map(|(r, a)| with_age(Policy::level(r), a)),
        (method(), age).prop_map(|(m, a)| with_age(Policy::method(m), a)),
    ]
}

fn with_age(p: Policy, age: Option<u64>) -> Policy {
    match age {
        Some(a) => p.max_age(secs(a)),
        None => p,
    }
}

fn policy() -> impl Strategy<Value = Policy> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        (inner.clone(), inner, any::<bool>())
            .prop_map(|(a, b, and)| if and { a.and(b) } else { a.or(b) })
    })
}

/// Text that looks like a return path, honest or hostile: a start that is
/// local or pretends to be (`/`, `//`, `/\`, encoded slashes and
/// backslashes, schemes, look-alike slashes, leading blanks), then pieces a
/// path is made of and pieces attacks hide in (dot segments, escapes of
/// any byte, double escapes, controls, CR/LF, non-ASCII). Most candidates
/// start with `/`, so the accepting branch is exercised, not just the
/// refusing one.
fn return_path_candidate() -> impl Strategy<Value = String> {
    let start = prop_oneof![
        12 => Just("/".to_owned()),
        1 => Just("//".to_owned()),
        1 => Just("///".to_owned()),
        1 => Just("/\\".to_owned()),
        1 => Just("\\/".to_owned()),
        1 => Just("/%2F".to_owned()),
        1 => Just("/%2f".to_owned()),
        1 => Just("/%5C".to_owned()),
        1 => Just("/%252F".to_owned()),
        1 => Just("/%25252F".to_owned()),
        1 => Just("/%2e%2e/".to_owned()),
        1 => Just("https://evil.example/".to_owned()),
        1 => Just("http:/".to_owned()),
        1 => Just("javascript:".to_owned()),
        1 => Just(" /".to_owned()),
        1 => Just("\t/".to_owned()),
        1 => Just("\u{FF0F}".to_owned()),
        1 => Just("/\u{2215}".to_owned()),
        1 => Just(String::new()),
    ];
    let piece = prop_oneof![
        10 => "[a-zA-Z0-9_~-]{1,8}",
        5 => Just("/".to_owned()),
        1 => Just("//".to_owned()),
        1 => Just("\\".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("/./".to_owned()),
        1 => Just("/../".to_owned()),
        2 => "[?#@:=&+,;!$'()*]",
        2 => "%[0-9A-Fa-f]{2}",
        1 => Just("%2F".to_owned()),
        1 => Just("%2e".to_owned()),
        1 => Just("%25".to_owned()),
        1 => Just("%5c".to_owned()),
        1 => Just("%".to_owned()),
        1 => Just("%0d%0a".to_owned()),
        1 => "[\\x00-\\x1f\\x7f]",
        1 => any::<char>().prop_map(String::from),
    ];
    // Pieces of honest paths: segments, queries, fragments, escapes of
    // harmless characters.
    let honest = prop_oneof![
        8 => "[a-zA-Z0-9_~-]{1,8}",
        4 => Just("/".to_owned()),
        1 => "[?#=&+@:!$,;]",
        1 => Just("%20".to_owned()),
        1 => Just("%C3%A9".to_owned()),
        1 => Just("%25".to_owned()),
        1 => Just("...".to_owned()),
    ];
    prop_oneof![
        8 => (start, proptest::collection::vec(piece, 0..8)).prop_map(|(s, rest)| s + &rest.concat()),
        6 => ("[a-z0-9]{1,8}", proptest::collection::vec(honest, 0..8))
            .prop_map(|(first, rest)| format!("/{first}{}", rest.concat())),
        1 => any::<String>(),
    ]
}

/// Every layer of `%` decoding a browser or a proxy might apply (a lenient
/// decoder, up to four times), starting with the text itself.
fn decoded_layers(text: &str) -> Vec<Vec<u8>> {
    let mut layers = vec![text.as_bytes().to_vec()];
    for _ in 0..4 {
        let last = layers.last().unwrap();
        let mut next = Vec::with_capacity(last.len());
        let mut i = 0;
        while i < last.len() {
            let hex = last
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
            match (last[i], hex) {
                (b'%', Some(b)) => {
                    next.push(b);
                    i += 3;
                }
                (b, _) => {
                    next.push(b);
                    i += 1;
                }
            }
        }
        if &next == last {
            break;
        }
        layers.push(next);
    }
    layers
}

#[test]
fn accepted_return_paths_are_local() {
    use proptest::test_runner::{Config, TestRunner};
    use std::cell::Cell;

    let cases = 2048;
    let (accepted, refused, escaped) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&return_path_candidate(), |text| {
            let Ok(r) = ReturnTo::parse(&text) else {
                refused.set(refused.get() + 1);
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            let s = r.as_str();
            if s.contains('%') {
                escaped.set(escaped.get() + 1);
            }
            prop_assert_eq!(s, text.as_str(), "accepted text is used as it is");
            prop_assert!(s.len() <= ReturnTo::MAX_LEN);
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()), "{:?}", s);
            // However many times it is decoded, it stays a path on this
            // site: one leading `/`, never `//` or `/\` (another host to a
            // browser), no backslash, no control character, no dot segment.
            for layer in decoded_layers(s) {
                prop_assert_eq!(layer.first(), Some(&b'/'), "{:?}", s);
                prop_assert!(!matches!(layer.get(1), Some(b'/' | b'\\')), "{:?}", s);
                prop_assert!(
                    !layer.iter().any(|b| *b < 0x20 || *b == 0x7f || *b == b'\\'),
                    "{:?}",
                    s
                );
                let path_end = layer
                    .iter()
                    .position(|b| *b == b'?' || *b == b'#')
                    .unwrap_or(layer.len());
                prop_assert!(
                    !layer[..path_end]
                        .split(|b| *b == b'/')
                        .any(|seg| seg == b"." || seg == b".."),
                    "{:?}",
                    s
                );
            }
            Ok(())
        })
        .unwrap();
    let (accepted, refused, escaped) = (accepted.get(), refused.get(), escaped.get());
    // Both branches really ran: a generator that produced only refusals
    // would make the property above vacuous.
    assert!(
        accepted >= cases / 5,
        "only {accepted} of {cases} candidates accepted"
    );
    assert!(
        refused >= cases / 5,
        "only {refused} of {cases} candidates refused"
    );
    assert!(
        escaped >= cases / 20,
        "only {escaped} accepted candidates had escapes to look through"
    );
}
