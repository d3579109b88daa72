//! The assurance token's security rules, each with a test that fails if the
//! rule is broken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use stepup_core::{
    ChallengeReason, Gate, Issuer, KeyId, KeyRing, MAX_TOKEN_LEN, Method, Proof, Subject,
    TokenConfig,
};

fn minted() -> (Issuer, Gate, Subject, String) {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Password, Method::Totp], T0);
    (issuer, gate, user, token)
}

#[test]
fn a_minted_token_verifies_and_says_what_was_proven() {
    let (_, gate, user, token) = minted();
    let a = gate.verify(&user, Some(&token), T0 + secs(10)).unwrap();
    assert_eq!(a.level(), 2);
    assert_eq!(a.proven_at(Method::Totp), Some(T0));
    assert_eq!(a.proven_at(Method::Password), Some(T0));
    assert_eq!(a.proven_at(Method::Passkey), None);
    assert_eq!(a.subject(), &user);
    assert_eq!(a.expires_at(), T0 + secs(3600));
    assert!(token.len() < 200, "token is compact: {} chars", token.len());
}

#[test]
fn the_token_does_not_carry_the_user_id_or_session_in_clear() {
    let (issuer, _gate) = pair();
    let user = Subject::new("user-id-visible").with_session("session-id-visible");
    let token = token_for(&issuer, &user, &[Method::Totp], T0);
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for needle in [&b"user-id-visible"[..], b"session-id-visible", b"visible"] {
        assert!(!raw.windows(needle.len()).any(|w| w == needle));
    }
    assert!(!token.contains("visible"));
}

#[test]
fn every_malformed_token_is_the_same_invalid_outcome() {
    let (_, gate, user, token) = minted();
    let now = T0 + secs(1);
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let mut version2 = raw.clone();
    version2[0] = 2;
    let mut version0 = raw.clone();
    version0[0] = 0;
    let oversized_valid_alphabet = "A".repeat(MAX_TOKEN_LEN + 1);
    let huge = "A".repeat(1 << 20);
    let cases: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("garbage", "not a token".into()),
        ("one char", "A".into()),
        ("padded", format!("{token}==")),
        ("standard alphabet", STANDARD.encode(&raw)),
        ("leading space", format!(" {token}")),
        ("trailing newline", format!("{token}\n")),
        (
            "appended byte",
            URL_SAFE_NO_PAD.encode([&raw[..], &[0]].concat()),
        ),
        ("appended text", format!("{token}AAAA")),
        ("doubled", format!("{token}{token}")),
        ("version 2", URL_SAFE_NO_PAD.encode(&version2)),
        ("version 0", URL_SAFE_NO_PAD.encode(&version0)),
        (
            "tag removed",
            URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 32]),
        ),
        (
            "half the tag removed",
            URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 16]),
        ),
        (
            "tag zeroed",
            URL_SAFE_NO_PAD.encode([&raw[..raw.len() - 32], &[0u8; 32][..]].concat()),
        ),
        (
            "tag doubled",
            URL_SAFE_NO_PAD.encode([&raw[..], &raw[raw.len() - 32..]].concat()),
        ),
        ("oversized", oversized_valid_alphabet),
        ("huge", huge),
        ("non-ascii", format!("{}é", &token[..token.len() - 1])),
        ("nul", format!("{}\0", &token[..token.len() - 1])),
        (
            "dot-separated like a JWT",
            format!("eyJhbGciOiJub25lIn0.{token}."),
        ),
    ];
    for (name, bad) in cases {
        assert_eq!(
            reason(&gate, &user, Some(&bad), now),
            ChallengeReason::Invalid,
            "{name}"
        );
    }
}

#[test]
fn every_truncation_is_rejected() {
    let (_, gate, user, token) = minted();
    for n in 0..token.len() {
        assert!(
            gate.verify(&user, Some(&token[..n]), T0).is_err(),
            "prefix of {n}"
        );
        assert!(
            gate.verify(&user, Some(&token[n + 1..]), T0).is_err(),
            "suffix from {}",
            n + 1
        );
    }
}

#[test]
fn every_single_bit_flip_in_the_bytes_is_rejected() {
    let (_, gate, user, token) = minted();
    let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    for i in 0..raw.len() * 8 {
        let mut flipped = raw.clone();
        flipped[i / 8] ^= 1 << (i % 8);
        let text = URL_SAFE_NO_PAD.encode(&flipped);
        let r = reason(&gate, &user, Some(&text), T0);
        // Every flip — in the body, its check, its binding hint or the tag —
        // is the same plain "invalid": only a genuine token presented by
        // someone else is reported as such.
        assert_eq!(r, ChallengeReason::Invalid, "bit {i}");
    }
}

#[test]
fn every_single_bit_flip_in_the_text_is_rejected() {
    let (_, gate, user, token) = minted();
    let bytes = token.as_bytes();
    for i in 0..bytes.len() * 8 {
        let mut flipped = bytes.to_vec();
        flipped[i / 8] ^= 1 << (i % 8);
        if let Ok(text) = String::from_utf8(flipped) {
            assert!(gate.verify(&user, Some(&text), T0).is_err(), "bit {i}");
        }
    }
}

#[test]
fn the_last_byte_of_the_mac_matters() {
    // A truncated comparison would accept a token whose MAC differs only at
    // the end; the full-length compare refuses it.
    let (_, gate, user, token) = minted();
    let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 0x80;
    assert!(
        gate.verify(&user, Some(&URL_SAFE_NO_PAD.encode(&raw)), T0)
            .is_err()
    );
}

#[test]
fn another_purpose_under_the_same_key_never_verifies() {
    let flash = TokenConfig::new(ring())
        .with_purpose("app/flash-message")
        .unwrap();
    let user = alice();
    let foreign = token_for(&flash.issuer(), &user, &[Method::Passkey], T0);
    assert!(flash.gate().verify(&user, Some(&foreign), T0).is_ok());
    let (_, gate) = pair();
    assert_eq!(
        reason(&gate, &user, Some(&foreign), T0),
        ChallengeReason::Invalid
    );
}

#[test]
fn a_token_of_another_subject_or_session_is_refused() {
    let (_, gate, user, token) = minted();
    let cases = [
        Subject::new("bob").with_session("session-a").with_epoch(1),
        Subject::new("alice")
            .with_session("session-b")
            .with_epoch(1),
        Subject::new("alice").with_epoch(1),
        Subject::new("ALICE")
            .with_session("session-a")
            .with_epoch(1),
        Subject::new("alice ")
            .with_session("session-a")
            .with_epoch(1),
    ];
    for other in cases {
        assert_eq!(
            reason(&gate, &other, Some(&token), T0),
            ChallengeReason::OtherBinding,
            "{other:?}"
        );
    }
    assert!(gate.verify(&user, Some(&token), T0).is_ok());
}

#[test]
fn a_token_without_session_binding_is_refused_inside_a_session() {
    let (issuer, gate) = pair();
    let plain = Subject::new("alice").with_epoch(1);
    let token = token_for(&issuer, &plain, &[Method::Totp], T0);
    assert!(gate.verify(&plain, Some(&token), T0).is_ok());
    assert_eq!(
        reason(&gate, &alice(), Some(&token), T0),
        ChallengeReason::OtherBinding
    );
}

#[test]
fn bumping_the_epoch_revokes_every_outstanding_token() {
    let (_, gate, user, token) = minted();
    let bumped = user.clone().with_epoch(2);
    assert_eq!(
        reason(&gate, &bumped, Some(&token), T0),
        ChallengeReason::Revoked
    );
    let older = user.with_epoch(0);
    assert_eq!(
        reason(&gate, &older, Some(&token), T0),
        ChallengeReason::Revoked
    );
}

#[test]
fn expiry_is_exact() {
    let (_, gate, user, token) = minted();
    let exp = T0 + secs(3600);
    assert!(gate.verify(&user, Some(&token), exp - secs(1)).is_ok());
    assert_eq!(
        reason(&gate, &user, Some(&token), exp),
        ChallengeReason::Expired
    );
    assert_eq!(
        reason(&gate, &user, Some(&token), exp + secs(1)),
        ChallengeReason::Expired
    );
}

#[test]
fn future_dated_tokens_are_refused_past_the_skew() {
    let (_, gate, user, token) = minted();
    // Default skew: 60 s. The token was issued at T0.
    assert!(gate.verify(&user, Some(&token), T0 - secs(60)).is_ok());
    assert_eq!(
        reason(&gate, &user, Some(&token), T0 - secs(61)),
        ChallengeReason::Invalid
    );
    let strict = config().with_clock_skew(secs(0)).gate();
    assert!(strict.verify(&user, Some(&token), T0).is_ok());
    assert_eq!(
        reason(&strict, &user, Some(&token), T0 - secs(1)),
        ChallengeReason::Invalid
    );
}

#[test]
fn rotation_keeps_old_tokens_until_their_key_is_removed() {
    let user = alice();
    let old_ring = KeyRing::new(key(1, 0x11));
    let old_token = token_for(&Issuer::new(&old_ring), &user, &[Method::Totp], T0);

    let mut rotated = old_ring.clone();
    rotated.rotate(key(2, 0x22)).unwrap();
    let issuer = Issuer::new(&rotated);
    assert_eq!(issuer.signing_key_id(), Some(KeyId::new(2)));
    assert!(
        Gate::new(&rotated)
            .verify(&user, Some(&old_token), T0)
            .is_ok()
    );

    // Re-issuing moves the proofs onto the new key …
    let t1 = T0 + secs(30);
    let moved = issuer
        .issue(
            &user,
            Proof::new(Method::Password, t1),
            Some(&old_token),
            t1,
        )
        .unwrap();
    let raw = URL_SAFE_NO_PAD.decode(moved.value()).unwrap();
    assert_eq!(u16::from_be_bytes([raw[1], raw[2]]), 2);

    // … so it survives the removal of the old key, while the old token does not.
    let mut retired = rotated.clone();
    retired.remove(KeyId::new(1)).unwrap();
    let gate = Gate::new(&retired);
    let a = gate.verify(&user, Some(moved.value()), t1).unwrap();
    assert_eq!(a.proven_at(Method::Totp), Some(T0));
    assert_eq!(
        reason(&gate, &user, Some(&old_token), t1),
        ChallengeReason::Invalid
    );
}

#[test]
fn a_key_with_the_right_id_but_another_secret_is_refused() {
    let user = alice();
    let token = token_for(
        &Issuer::new(&KeyRing::new(key(1, 0x99))),
        &user,
        &[Method::Totp],
        T0,
    );
    let (_, gate) = pair();
    assert_eq!(
        reason(&gate, &user, Some(&token), T0),
        ChallengeReason::Invalid
    );
}

#[test]
fn no_token_is_no_assurance() {
    let (_, gate) = pair();
    assert_eq!(
        reason(&gate, &alice(), None, T0),
        ChallengeReason::NoAssurance
    );
}

#[test]
fn tokens_fit_a_cookie_at_their_largest() {
    let (issuer, _) = pair();
    let user = alice();
    let methods: Vec<Method> = (0..12)
        .map(|i| Method::custom(&format!("m{i:0>21}")).unwrap())
        .collect();
    let token = token_for(&issuer, &user, &methods, T0);
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert!("__Host-stepup=".len() + token.len() < 4096);
}

#[test]
fn debug_never_shows_secrets() {
    let secret = [0x5au8; 32];
    let ring = KeyRing::new(stepup_core::Key::from_bytes(KeyId::new(3), &secret).unwrap());
    let config = TokenConfig::new(ring.clone());
    let (issuer, gate) = (config.issuer(), config.gate());
    let user = Subject::new("alice").with_session("very-secret-session-id");
    let issued = issuer
        .issue(&user, Proof::new(Method::Totp, T0), None, T0)
        .unwrap();
    let assurance = gate.verify(&user, Some(issued.value()), T0).unwrap();
    let shown =
        format!("{ring:?} {config:?} {issuer:?} {gate:?} {issued:?} {assurance:?} {user:?}");
    let secret_b64 = STANDARD.encode(secret);
    for needle in [
        issued.value(),
        "very-secret-session-id",
        secret_b64.as_str(),
        "5a5a5a",
        "90, 90, 90",
    ] {
        assert!(
            !shown.contains(needle),
            "Debug output shows {needle:?}: {shown}"
        );
    }
    assert!(shown.contains("[redacted]"));
}

#[test]
fn client_context_is_recorded_keyed_and_bound() {
    let (issuer, gate) = pair();
    let user = alice();
    let office = b"203.0.113.0/24|Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";
    let token = issuer
        .issue_in_context(&user, Proof::new(Method::Totp, T0), None, office, T0)
        .unwrap();
    // The token carries a keyed digest, not the context.
    let raw = URL_SAFE_NO_PAD.decode(token.value()).unwrap();
    assert!(!raw.windows(6).any(|w| w == b"203.0."));
    let a = gate.verify(&user, Some(token.value()), T0).unwrap();
    assert!(a.has_client_context());
    assert_eq!(gate.same_context(&a, office), Some(true));
    assert_eq!(
        gate.same_context(&a, b"198.51.100.0/24|curl/8.5"),
        Some(false)
    );
    assert_eq!(gate.same_context(&a, b""), Some(false));
    // The issued assurance answers the same way as the verified one.
    assert_eq!(gate.same_context(token.assurance(), office), Some(true));

    // A token without a context answers None, and re-issuing without a
    // context drops the old one.
    let plain = token_for(&issuer, &user, &[Method::Password], T0);
    let a = gate.verify(&user, Some(&plain), T0).unwrap();
    assert_eq!(gate.same_context(&a, office), None);
    let t1 = T0 + secs(5);
    let moved = issuer
        .issue(
            &user,
            Proof::new(Method::Password, t1),
            Some(token.value()),
            t1,
        )
        .unwrap();
    assert_eq!(gate.same_context(moved.assurance(), office), None);

    // Another key or purpose gives another digest.
    let other = TokenConfig::new(KeyRing::new(key(1, 0x42)));
    let theirs = other
        .issuer()
        .issue_in_context(&user, Proof::new(Method::Totp, T0), None, office, T0)
        .unwrap();
    assert_eq!(gate.same_context(theirs.assurance(), office), Some(false));
}

#[test]
fn the_context_survives_key_rotation() {
    let user = alice();
    let old = KeyRing::new(key(1, 0x11));
    let ctx = b"10.0.0.0/8|agent";
    let token = Issuer::new(&old)
        .issue_in_context(&user, Proof::new(Method::Totp, T0), None, ctx, T0)
        .unwrap();
    let mut rotated = old.clone();
    rotated.rotate(key(2, 0x22)).unwrap();
    let gate = Gate::new(&rotated);
    let a = gate.verify(&user, Some(token.value()), T0).unwrap();
    assert_eq!(
        gate.same_context(&a, ctx),
        Some(true),
        "checked under the key that signed it"
    );
}

#[test]
fn the_mac_is_compared_in_constant_time() {
    // Through the code path: every verification, right or forged, compares
    // the full tag through `stepup_core::ct` (never `==`), and the tally
    // moves only once that very comparison ran. The body check and binding
    // hint looked at after a failure are other labels, so they cannot stand
    // in for the tag comparison.
    use stepup_core::ct::{Comparison, comparisons_of};
    let (_, gate, user, token) = minted();
    let tags = || comparisons_of(Comparison::MacTag);
    let before = tags();
    assert!(gate.verify(&user, Some(&token), T0).is_ok());
    assert_eq!(tags(), before + 1, "the tag of a genuine token");
    let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = URL_SAFE_NO_PAD.encode(&raw);
    let (checks, hints) = (
        comparisons_of(Comparison::BodyCheck),
        comparisons_of(Comparison::BindingHint),
    );
    assert!(gate.verify(&user, Some(&forged), T0).is_err());
    assert_eq!(
        tags(),
        before + 2,
        "a forged tag is compared in constant time"
    );
    assert_eq!(comparisons_of(Comparison::BodyCheck), checks + 1);
    assert_eq!(comparisons_of(Comparison::BindingHint), hints + 1);
    // Refused before any MAC is computed: too short, not base64url.
    assert!(gate.verify(&user, Some("AAAA"), T0).is_err());
    assert_eq!(tags(), before + 2, "no tag comparison without a tag");
}
