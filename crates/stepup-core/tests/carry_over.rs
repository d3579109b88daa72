//! What a new token may take from the previous one, and for how long the
//! gate believes what a token says about its own lifetime (issue #13,
//! findings 5 and 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use stepup_core::{ChallengeReason, Method, Policy, Proof, Subject, TokenConfig};

const HOME: &[u8] = b"203.0.113.0/24|Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0";
const ATTACKER: &[u8] = b"198.51.100.0/24|curl/8.5";

/// Finding 5: a token stolen in context A, plus a password step-up in
/// context B, must not turn into "a passkey proven in context B".
#[test]
fn proofs_are_not_laundered_into_another_client_context() {
    let (issuer, gate) = pair();
    let victim = alice();
    // The victim stepped up with a passkey at home.
    let stolen = issuer
        .issue_in_context(&victim, Proof::new(Method::Passkey, T0), None, HOME, T0)
        .unwrap();
    // The attacker holds the victim's session and that token, and knows
    // the password: a password step-up from the attacker's own network.
    let t1 = T0 + secs(30);
    let laundered = issuer
        .issue_in_context(
            &victim,
            Proof::new(Method::Password, t1),
            Some(stolen.value()),
            ATTACKER,
            t1,
        )
        .unwrap();
    let now = t1 + secs(1);
    let a = gate.verify(&victim, Some(laundered.value()), now).unwrap();
    assert_eq!(gate.same_context(&a, ATTACKER), Some(true));
    assert_eq!(
        a.proven_at(Method::Passkey),
        None,
        "a proof made in another context was carried into this one"
    );
    let passkey_recently: Policy = "passkey within 5m".parse().unwrap();
    let c = challenge(gate.check(&victim, Some(laundered.value()), &passkey_recently, now));
    assert_eq!(c.reason(), ChallengeReason::MissingMethod);
    assert_eq!(
        a.methods().collect::<Vec<_>>(),
        [Method::Password],
        "only the proof made in this context"
    );
}

#[test]
fn proofs_without_a_context_are_not_carried_into_a_context() {
    let (issuer, gate) = pair();
    let user = alice();
    let plain = issuer
        .issue(&user, Proof::new(Method::Passkey, T0), None, T0)
        .unwrap();
    let t1 = T0 + secs(30);
    let token = issuer
        .issue_in_context(
            &user,
            Proof::new(Method::Password, t1),
            Some(plain.value()),
            ATTACKER,
            t1,
        )
        .unwrap();
    let a = gate.verify(&user, Some(token.value()), t1).unwrap();
    assert_eq!(gate.same_context(&a, ATTACKER), Some(true));
    assert_eq!(a.methods().collect::<Vec<_>>(), [Method::Password]);
}

#[test]
fn proofs_made_in_a_context_are_not_carried_into_a_token_without_one() {
    let (issuer, gate) = pair();
    let user = alice();
    let at_home = issuer
        .issue_in_context(&user, Proof::new(Method::Passkey, T0), None, HOME, T0)
        .unwrap();
    let t1 = T0 + secs(30);
    let token = issuer
        .issue(
            &user,
            Proof::new(Method::Password, t1),
            Some(at_home.value()),
            t1,
        )
        .unwrap();
    let a = gate.verify(&user, Some(token.value()), t1).unwrap();
    assert_eq!(gate.same_context(&a, HOME), None);
    assert_eq!(a.methods().collect::<Vec<_>>(), [Method::Password]);
}

#[test]
fn proofs_of_the_same_context_are_carried_over() {
    let (issuer, gate) = pair();
    let user = alice();
    let first = issuer
        .issue_in_context(&user, Proof::new(Method::Password, T0), None, HOME, T0)
        .unwrap();
    let t1 = T0 + secs(30);
    let second = issuer
        .issue_in_context(
            &user,
            Proof::new(Method::Totp, t1),
            Some(first.value()),
            HOME,
            t1,
        )
        .unwrap();
    let a = gate.verify(&user, Some(second.value()), t1).unwrap();
    assert_eq!(a.proven_at(Method::Password), Some(T0));
    assert_eq!(a.proven_at(Method::Totp), Some(t1));
    // Without contexts on either side, as before.
    let plain = issuer
        .issue(&user, Proof::new(Method::Password, T0), None, T0)
        .unwrap();
    let both = issuer
        .issue(&user, Proof::new(Method::Totp, t1), Some(plain.value()), t1)
        .unwrap();
    assert_eq!(both.assurance().proven_at(Method::Password), Some(T0));
}

#[test]
fn the_same_context_is_recognised_across_a_key_rotation() {
    let user = alice();
    let old = config();
    let first = old
        .issuer()
        .issue_in_context(&user, Proof::new(Method::Password, T0), None, HOME, T0)
        .unwrap();
    let mut ring = old.key_ring().clone();
    ring.rotate(key(2, 0x22)).unwrap();
    let issuer = TokenConfig::new(ring).issuer();
    let t1 = T0 + secs(30);
    let second = issuer
        .issue_in_context(
            &user,
            Proof::new(Method::Totp, t1),
            Some(first.value()),
            HOME,
            t1,
        )
        .unwrap();
    assert_eq!(second.assurance().proven_at(Method::Password), Some(T0));
}

/// Finding 6: shortening the lifetime after an incident takes effect at once
/// for tokens already out there.
#[test]
fn the_gate_caps_a_token_at_the_configured_lifetime() {
    let long = config().with_lifetime(secs(3600)).unwrap();
    let short = config().with_lifetime(secs(600)).unwrap();
    let (issuer, gate) = (long.issuer(), short.gate());
    let user = alice();
    let first = issuer
        .issue(&user, Proof::new(Method::Password, T0), None, T0)
        .unwrap();
    assert_eq!(first.max_age(), secs(3600));
    let t1 = T0 + secs(300);
    let second = issuer
        .issue(&user, Proof::new(Method::Totp, t1), Some(first.value()), t1)
        .unwrap();
    // Inside ten minutes of each proof: both count.
    let a = gate
        .verify(&user, Some(second.value()), T0 + secs(599))
        .unwrap();
    assert_eq!(a.proven_at(Method::Password), Some(T0));
    assert_eq!(
        a.expires_at(),
        t1 + secs(600),
        "expiry as the gate sees it: the configured lifetime"
    );
    // The password proof is ten minutes old: no longer counted, although
    // the token says it lives for an hour.
    let a = gate
        .verify(&user, Some(second.value()), T0 + secs(600))
        .unwrap();
    assert_eq!(a.proven_at(Method::Password), None);
    assert_eq!(a.proven_at(Method::Totp), Some(t1));
    let c = challenge(gate.check(
        &user,
        Some(second.value()),
        &Policy::method(Method::Password),
        T0 + secs(600),
    ));
    assert_eq!(c.reason(), ChallengeReason::MissingMethod);
    // Ten minutes after it was issued, the token is expired.
    assert_eq!(
        reason(&gate, &user, Some(second.value()), t1 + secs(600)),
        ChallengeReason::Expired
    );
    // The long-lived gate still takes it, so the cap is the gate's setting.
    assert!(
        long.gate()
            .verify(&user, Some(second.value()), t1 + secs(600))
            .is_ok()
    );
}

#[test]
fn a_token_shorter_than_the_configured_lifetime_keeps_its_own_expiry() {
    let short = config().with_lifetime(secs(600)).unwrap();
    let long = config().with_lifetime(secs(3600)).unwrap();
    let user: Subject = alice();
    let token = short
        .issuer()
        .issue(&user, Proof::new(Method::Totp, T0), None, T0)
        .unwrap();
    let gate = long.gate();
    assert!(
        gate.verify(&user, Some(token.value()), T0 + secs(599))
            .is_ok()
    );
    assert_eq!(
        reason(&gate, &user, Some(token.value()), T0 + secs(600)),
        ChallengeReason::Expired
    );
}
