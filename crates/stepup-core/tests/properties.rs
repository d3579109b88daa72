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
            prop_assert_eq!(a.proven_at(*m), Some(now - secs(*age)));
            prop_assert_eq!(a.age_of(*m, now), Some(secs(*age)));
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
    fn accepted_return_paths_are_local(text in any::<String>()) {
        if let Ok(r) = ReturnTo::parse(&text) {
            let s = r.as_str();
            prop_assert!(s.starts_with('/'));
            prop_assert!(!s.starts_with("//"));
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(!s.contains('\\'));
        }
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
