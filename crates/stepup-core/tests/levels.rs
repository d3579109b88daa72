//! The default level table follows NIST SP 800-63B (issue #13, finding 1b):
//! e-mail codes never reach level 2, SMS only by a named opt-in, a synced
//! passkey is level 2 (`swk`) and only a device-bound one level 3 (`hwk`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use stepup_core::{ChallengeReason, LevelTable, Method, Policy};

fn level_of(methods: &[Method]) -> u8 {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, methods, T0);
    gate.verify(&user, Some(&token), T0).unwrap().level()
}

#[test]
fn password_and_an_email_code_stay_at_level_1() {
    // Finding 1b: the password and the mailbox were enough for aal2, and so
    // for enrolling the attacker's own TOTP.
    assert_eq!(level_of(&[Method::Password, Method::EmailCode]), 1);
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Password, Method::EmailCode], T0);
    let c = challenge(gate.check(&user, Some(&token), &Policy::level(2), T0));
    assert_eq!(c.reason(), ChallengeReason::InsufficientLevel);
}

#[test]
fn an_email_code_alone_is_level_1() {
    assert_eq!(level_of(&[Method::EmailCode]), 1);
    assert_eq!(LevelTable::nist().level_of(&[Method::EmailCode]), 1);
}

#[test]
fn two_weak_methods_do_not_add_up_to_level_2() {
    let t = LevelTable::nist();
    assert_eq!(t.level_of(&[Method::EmailCode, Method::SmsCode]), 1);
    assert_eq!(t.level_of(&[Method::Password, Method::SmsCode]), 1);
    let push = Method::custom("push").unwrap();
    assert_eq!(t.level_of(&[Method::Password, push]), 1);
}

#[test]
fn sms_is_level_1_by_default() {
    assert_eq!(level_of(&[Method::SmsCode]), 1);
    assert_eq!(level_of(&[Method::Password, Method::SmsCode]), 1);
}

#[test]
fn second_factors_reach_level_2() {
    for m in [Method::Totp, Method::Passkey, Method::RecoveryCode] {
        assert_eq!(level_of(&[m]), 2, "{m}");
        assert_eq!(level_of(&[Method::Password, m]), 2, "{m}");
    }
}

#[test]
fn a_passkey_that_may_be_synced_is_level_2_with_swk() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Passkey], T0);
    let a = gate.verify(&user, Some(&token), T0).unwrap();
    assert_eq!(a.level(), 2);
    assert_eq!(a.acr(), Some("aal2"));
    assert_eq!(a.amr(), ["swk", "user"]);
    let c = challenge(gate.check(&user, Some(&token), &Policy::level(3), T0));
    assert_eq!(c.reason(), ChallengeReason::InsufficientLevel);
}

#[test]
fn sms_reaches_level_2_only_with_the_named_opt_in() {
    let c = config().with_levels(LevelTable::nist_with_restricted_sms());
    let (issuer, gate) = (c.issuer(), c.gate());
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::SmsCode], T0);
    let a = allow(gate.check(&user, Some(&token), &Policy::level(2), T0));
    assert_eq!(a.acr(), Some("aal2"));
    assert_eq!(a.amr(), ["sms"]);
    // E-mail stays at level 1 even then.
    let email = token_for(&issuer, &user, &[Method::EmailCode], T0);
    let c = challenge(gate.check(&user, Some(&email), &Policy::level(2), T0));
    assert_eq!(c.reason(), ChallengeReason::InsufficientLevel);
    assert_eq!(c.acr_values(), ["aal2", "aal3"]);
}

#[test]
fn a_device_bound_passkey_is_level_3_with_hwk_and_satisfies_passkey() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::DeviceBoundPasskey], T0);
    let a = allow(gate.check(&user, Some(&token), &Policy::level(3), T0));
    assert_eq!(a.level(), 3);
    assert_eq!(a.acr(), Some("aal3"));
    assert_eq!(a.amr(), ["hwk", "user"]);
    let now = T0 + secs(60);
    for policy in [
        "passkey(5m)",
        "device_bound_passkey(5m)",
        "level 2 within 5m",
    ] {
        let p: Policy = policy.parse().unwrap();
        allow(gate.check(&user, Some(&token), &p, now));
    }
    assert_eq!(a.proven_at(Method::Passkey), Some(T0));
    assert_eq!(a.age_of(Method::Passkey, now), Some(secs(60)));
    // Still per-method freshness: too old is stale, not missing.
    let p: Policy = "passkey(30s)".parse().unwrap();
    let c = challenge(gate.check(&user, Some(&token), &p, now));
    assert_eq!(c.reason(), ChallengeReason::Stale);
}

#[test]
fn a_synced_passkey_never_counts_as_device_bound() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Passkey], T0);
    let now = T0 + secs(60);
    let p: Policy = "device_bound_passkey(5m)".parse().unwrap();
    let c = challenge(gate.check(&user, Some(&token), &p, now));
    assert_eq!(c.reason(), ChallengeReason::MissingMethod);
    assert_eq!(c.methods(), [Method::DeviceBoundPasskey]);
    let c = challenge(gate.check(&user, Some(&token), &Policy::level(3), now));
    assert_eq!(c.reason(), ChallengeReason::InsufficientLevel);
    assert_eq!(c.methods(), [Method::DeviceBoundPasskey]);
    let a = gate.verify(&user, Some(&token), now).unwrap();
    assert_eq!(a.proven_at(Method::DeviceBoundPasskey), None);
    // With a TOTP proof too: two level-2 factors are still level 2.
    let t1 = T0 + secs(10);
    let more = issuer
        .issue(
            &user,
            stepup_core::Proof::new(Method::Totp, t1),
            Some(&token),
            t1,
        )
        .unwrap();
    assert_eq!(more.assurance().level(), 2);
    assert_eq!(more.assurance().amr(), ["swk", "user", "otp"]);
}

#[test]
fn proven_at_passkey_is_the_newest_of_either_kind() {
    let (issuer, _) = pair();
    let user = alice();
    let synced = issuer
        .issue(
            &user,
            stepup_core::Proof::new(Method::Passkey, T0),
            None,
            T0,
        )
        .unwrap();
    let t1 = T0 + secs(20);
    let both = issuer
        .issue(
            &user,
            stepup_core::Proof::new(Method::DeviceBoundPasskey, t1),
            Some(synced.value()),
            t1,
        )
        .unwrap();
    let a = both.assurance();
    assert_eq!(a.proven_at(Method::Passkey), Some(t1));
    assert_eq!(a.proven_at(Method::DeviceBoundPasskey), Some(t1));
    let t2 = T0 + secs(40);
    let synced_again = issuer
        .issue(
            &user,
            stepup_core::Proof::new(Method::Passkey, t2),
            Some(both.value()),
            t2,
        )
        .unwrap();
    let a = synced_again.assurance();
    assert_eq!(a.proven_at(Method::Passkey), Some(t2));
    assert_eq!(a.proven_at(Method::DeviceBoundPasskey), Some(t1));
    assert_eq!(a.level(), 3);
}

#[test]
fn challenges_for_a_passkey_offer_both_kinds() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Password], T0);
    let c = challenge(gate.check(&user, Some(&token), &"passkey(5m)".parse().unwrap(), T0));
    assert_eq!(c.methods(), [Method::DeviceBoundPasskey, Method::Passkey]);
    let c = challenge(gate.check(&user, Some(&token), &Policy::level(2), T0));
    assert_eq!(
        c.methods(),
        [
            Method::DeviceBoundPasskey,
            Method::Passkey,
            Method::Totp,
            Method::RecoveryCode
        ],
        "no e-mail or SMS code where it cannot reach the level"
    );
}

#[test]
fn rank_of_takes_ranks_from_the_configured_table() {
    let nist = LevelTable::nist();
    assert_eq!(nist.rank_of(Method::DeviceBoundPasskey), 3);
    assert_eq!(nist.rank_of(Method::Passkey), 2);
    assert_eq!(nist.rank_of(Method::RecoveryCode), 2);
    assert_eq!(nist.rank_of(Method::EmailCode), 1);
    assert_eq!(nist.rank_of(Method::SmsCode), 1);
    assert_eq!(
        LevelTable::nist_with_restricted_sms().rank_of(Method::SmsCode),
        2
    );
    let own = LevelTable::new([
        stepup_core::Level::new(1, "low").reached_by_any_of([Method::Totp]),
        stepup_core::Level::new(2, "high").reached_by_any_of([Method::Password]),
    ])
    .unwrap();
    assert_eq!(own.rank_of(Method::Password), 2);
    assert_eq!(own.rank_of(Method::Totp), 1);
    assert_eq!(own.rank_of(Method::Passkey), 0);
}

#[test]
fn the_new_method_round_trips_through_a_token() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(
        &issuer,
        &user,
        &[Method::Password, Method::DeviceBoundPasskey],
        T0,
    );
    let a = gate.verify(&user, Some(&token), T0 + secs(5)).unwrap();
    assert_eq!(
        a.methods().collect::<Vec<_>>(),
        [Method::Password, Method::DeviceBoundPasskey]
    );
    assert_eq!(a.proven_at(Method::DeviceBoundPasskey), Some(T0));
    assert_eq!(
        Method::DeviceBoundPasskey.to_string(),
        "device_bound_passkey"
    );
    assert_eq!(
        "device_bound_passkey".parse::<Method>().unwrap(),
        Method::DeviceBoundPasskey
    );
    let p: Policy = "device_bound_passkey within 5m".parse().unwrap();
    assert_eq!(p.to_string(), "device_bound_passkey within 5m");
}
