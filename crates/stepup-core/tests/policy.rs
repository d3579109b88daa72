//! Policies: the builder, the expression language, freshness per method, and
//! the challenges they produce.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use stepup_core::{
    Challenge, ChallengeReason, Level, LevelTable, Method, Policy, PolicyParseErrorKind, Proof,
    TokenConfig,
};

#[test]
fn max_age_boundary_is_inclusive() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Totp], T0);
    let policy = Policy::method(Method::Totp).max_age(secs(300));
    allow(gate.check(&user, Some(&token), &policy, T0 + secs(300)));
    let c = challenge(gate.check(&user, Some(&token), &policy, T0 + secs(301)));
    assert_eq!(c.reason(), ChallengeReason::Stale);
}

#[test]
fn freshness_is_per_method() {
    let (issuer, gate) = pair();
    let user = alice();
    let password = issuer
        .issue(&user, Proof::new(Method::Password, T0), None, T0)
        .unwrap();
    let t1 = T0 + secs(600);
    let both = issuer
        .issue(
            &user,
            Proof::new(Method::Totp, t1),
            Some(password.value()),
            t1,
        )
        .unwrap();
    let now = t1 + secs(60);
    // TOTP is 60 s old, the password 660 s.
    let p: Policy = "password within 15m and totp within 5m".parse().unwrap();
    allow(gate.check(&user, Some(both.value()), &p, now));
    let p: Policy = "password within 10m and totp within 5m".parse().unwrap();
    assert_eq!(
        challenge(gate.check(&user, Some(both.value()), &p, now)).reason(),
        ChallengeReason::Stale
    );
    // A level policy counts only the proofs young enough: within 5m only TOTP
    // counts (level 2); within 15m both do (still 2 with the NIST table).
    allow(gate.check(
        &user,
        Some(both.value()),
        &Policy::level(2).max_age(secs(300)),
        now,
    ));
    // The token's own expiry is not what decides: it is an hour away, yet a
    // 30 s max age refuses the 60 s old TOTP proof.
    assert_eq!(
        challenge(gate.check(
            &user,
            Some(both.value()),
            &Policy::level(2).max_age(secs(30)),
            now
        ))
        .reason(),
        ChallengeReason::Stale
    );
}

#[test]
fn merged_proofs_never_outlive_the_lifetime() {
    let c = config().with_lifetime(secs(600)).unwrap();
    let (issuer, gate) = (c.issuer(), c.gate());
    let user = alice();
    let first = issuer
        .issue(&user, Proof::new(Method::Password, T0), None, T0)
        .unwrap();
    let t1 = T0 + secs(500);
    let second = issuer
        .issue(&user, Proof::new(Method::Totp, t1), Some(first.value()), t1)
        .unwrap();
    // At T0+599 the password proof is still inside the lifetime …
    let a = gate
        .verify(&user, Some(second.value()), T0 + secs(599))
        .unwrap();
    assert!(a.proven_at(Method::Password).is_some());
    // … at T0+600 it is not, although the token itself lives until t1+600.
    let a = gate
        .verify(&user, Some(second.value()), T0 + secs(600))
        .unwrap();
    assert_eq!(a.proven_at(Method::Password), None);
    let no_age = Policy::method(Method::Password);
    assert_eq!(
        challenge(gate.check(&user, Some(second.value()), &no_age, T0 + secs(600))).reason(),
        ChallengeReason::MissingMethod
    );
    // And re-issuing drops it too.
    let t2 = T0 + secs(700);
    let third = issuer
        .issue(
            &user,
            Proof::new(Method::Passkey, t2),
            Some(second.value()),
            t2,
        )
        .unwrap();
    assert_eq!(third.assurance().proven_at(Method::Password), None);
    assert_eq!(third.assurance().proven_at(Method::Totp), Some(t1));
}

#[test]
fn a_previous_token_that_does_not_verify_is_not_merged() {
    let (issuer, _) = pair();
    let user = alice();
    let bob = stepup_core::Subject::new("bob").with_epoch(1);
    let bobs = token_for(&issuer, &bob, &[Method::Passkey], T0);
    let t = issuer
        .issue(&user, Proof::new(Method::Password, T0), Some(&bobs), T0)
        .unwrap();
    assert_eq!(
        t.assurance().methods().collect::<Vec<_>>(),
        [Method::Password]
    );
    let revoked = token_for(&issuer, &user, &[Method::Passkey], T0);
    let bumped = user.clone().with_epoch(2);
    let t = issuer
        .issue(
            &bumped,
            Proof::new(Method::Password, T0),
            Some(&revoked),
            T0,
        )
        .unwrap();
    assert_eq!(
        t.assurance().methods().collect::<Vec<_>>(),
        [Method::Password]
    );
    let t = issuer
        .issue(&user, Proof::new(Method::Password, T0), Some("garbage"), T0)
        .unwrap();
    assert_eq!(t.assurance().level(), 1);
}

#[test]
fn the_issuer_refuses_proofs_from_the_future_or_too_old() {
    let (issuer, _) = pair();
    let user = alice();
    assert!(
        issuer
            .issue(&user, Proof::new(Method::Totp, T0 + secs(60)), None, T0)
            .is_ok()
    );
    assert_eq!(
        issuer
            .issue(&user, Proof::new(Method::Totp, T0 + secs(61)), None, T0)
            .unwrap_err(),
        stepup_core::IssueError::ProofInFuture
    );
    assert_eq!(
        issuer
            .issue(&user, Proof::new(Method::Totp, T0), None, T0 + secs(3600))
            .unwrap_err(),
        stepup_core::IssueError::ProofTooOld
    );
}

#[test]
fn reasons_tell_level_from_method_from_staleness() {
    let (issuer, gate) = pair();
    let user = alice();
    let pwd = token_for(&issuer, &user, &[Method::Password], T0);
    let now = T0 + secs(10);
    let r = |p: &str| {
        let policy: Policy = p.parse().unwrap();
        match gate.check(&user, Some(&pwd), &policy, now) {
            stepup_core::Decision::Allow(_) => None,
            stepup_core::Decision::Challenge(c) => Some(c.reason()),
        }
    };
    assert_eq!(r("level 1"), None);
    assert_eq!(r("level 2"), Some(ChallengeReason::InsufficientLevel));
    assert_eq!(r("passkey"), Some(ChallengeReason::MissingMethod));
    assert_eq!(r("password within 5s"), Some(ChallengeReason::Stale));
    assert_eq!(r("password or passkey"), None);
    assert_eq!(
        r("password and passkey"),
        Some(ChallengeReason::MissingMethod)
    );
    assert_eq!(r("level 3 or password within 1m"), None);
}

#[test]
fn downgrades_do_not_pass() {
    // A level-1 token cannot satisfy level 2, nor a TOTP token a passkey policy.
    let (issuer, gate) = pair();
    let user = alice();
    let totp = token_for(&issuer, &user, &[Method::Totp], T0);
    challenge(gate.check(&user, Some(&totp), &Policy::level(3), T0));
    challenge(gate.check(&user, Some(&totp), &Policy::method(Method::Passkey), T0));
    let synced = token_for(&issuer, &user, &[Method::Passkey], T0);
    challenge(gate.check(&user, Some(&synced), &Policy::level(3), T0));
    challenge(gate.check(
        &user,
        Some(&synced),
        &Policy::method(Method::DeviceBoundPasskey),
        T0,
    ));
    let passkey = token_for(&issuer, &user, &[Method::DeviceBoundPasskey], T0);
    let a = allow(gate.check(&user, Some(&passkey), &Policy::level(3), T0));
    assert_eq!(a.acr(), Some("aal3"));
    assert_eq!(a.amr(), ["hwk", "user"]);
}

#[test]
fn custom_level_tables_decide_levels_and_acr() {
    let table = LevelTable::new([
        Level::new(1, "urn:example:low").reached_by_any_of([Method::Password]),
        Level::new(5, "urn:example:high")
            .reached_by([Method::Password, Method::custom("push").unwrap()]),
    ])
    .unwrap();
    let c = config().with_levels(table);
    let (issuer, gate) = (c.issuer(), c.gate());
    let user = alice();
    let push = Method::custom("push").unwrap();
    let token = token_for(&issuer, &user, &[Method::Password, push], T0);
    let a = allow(gate.check(&user, Some(&token), &Policy::level(5), T0));
    assert_eq!(a.level(), 5);
    assert_eq!(a.acr(), Some("urn:example:high"));
    let only_push = token_for(&issuer, &user, &[push], T0);
    let ch = challenge(gate.check(&user, Some(&only_push), &Policy::level(5), T0));
    assert_eq!(ch.acr_values(), ["urn:example:high"]);
    assert_eq!(ch.methods(), [Method::Password, push]);
}

#[test]
fn expressions_parse_to_the_builder_and_back() {
    let five = secs(300);
    let cases: Vec<(&str, Policy)> = vec![
        ("level 2", Policy::level(2)),
        ("LEVEL 2 WITHIN 5m", Policy::level(2).max_age(five)),
        ("level 2(5m)", Policy::level(2).max_age(five)),
        ("totp(90s)", Policy::method(Method::Totp).max_age(secs(90))),
        (
            "passkey | password && totp",
            Policy::method(Method::Passkey)
                .or(Policy::method(Method::Password).and(Policy::method(Method::Totp))),
        ),
        (
            "(passkey or password) and totp",
            Policy::method(Method::Passkey)
                .or(Policy::method(Method::Password))
                .and(Policy::method(Method::Totp)),
        ),
        (
            "email_code or sms_code or recovery_code or custom:push",
            Policy::method(Method::EmailCode)
                .or(Policy::method(Method::SmsCode))
                .or(Policy::method(Method::RecoveryCode))
                .or(Policy::method(Method::custom("push").unwrap())),
        ),
        ("((totp))", Policy::method(Method::Totp)),
        (
            "totp within 1h30m",
            Policy::method(Method::Totp).max_age(secs(5400)),
        ),
    ];
    for (text, expected) in cases {
        let parsed: Policy = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed, expected, "{text}");
        let canonical = parsed.to_string();
        assert_eq!(canonical.parse::<Policy>().unwrap(), parsed, "{canonical}");
    }
}

#[test]
fn bad_expressions_say_where_and_what() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "the expression is empty"),
        ("   ", 0, "the expression is empty"),
        ("pasword", 0, "unknown method `pasword`"),
        (
            "totp or",
            7,
            "the expression ends early: expected a method, `level N` or `(`",
        ),
        (
            "totp and and passkey",
            9,
            "expected a method, `level N` or `(`, found `and`",
        ),
        ("(totp", 5, "the expression ends early: expected `)`"),
        (
            "totp)",
            4,
            "expected `and`, `or` or the end of the expression, found `)`",
        ),
        (
            "level",
            0,
            "`level` must be followed by a rank from 1 to 255",
        ),
        (
            "level 0",
            6,
            "`level` must be followed by a rank from 1 to 255",
        ),
        (
            "level 256",
            6,
            "`level` must be followed by a rank from 1 to 255",
        ),
        (
            "totp within",
            11,
            "the expression ends early: expected a duration such as 5m",
        ),
        ("totp within 5", 12, "`5` is not a duration"),
        ("totp within 5 minutes", 12, "`5` is not a duration"),
        ("totp within 400d", 12, "a max age may be at most 366 days"),
        ("totp(5m", 7, "the expression ends early: expected `)`"),
        ("totp ! passkey", 5, "unexpected character `!`"),
        ("tötp", 1, "unexpected character `ö`"),
        ("Custom:Push", 0, "unknown method `Custom:Push`"),
        (
            "(totp) within 5m",
            7,
            "expected `and`, `or` or the end of the expression, found `within`",
        ),
    ];
    for (text, at, message) in cases {
        let err = Policy::parse(text).unwrap_err();
        assert_eq!(err.position(), *at, "{text:?}: {err}");
        assert!(err.to_string().contains(message), "{text:?}: {err}");
        assert!(
            err.to_string().starts_with(&format!("at byte {at}: ")),
            "{err}"
        );
    }
}

#[test]
fn hostile_expressions_are_bounded() {
    let deep = format!("{}totp{}", "(".repeat(100), ")".repeat(100));
    assert_eq!(
        Policy::parse(&deep).unwrap_err().kind(),
        &PolicyParseErrorKind::TooDeep
    );
    let long = vec!["totp"; 300].join(" or ");
    assert_eq!(
        Policy::parse(&long).unwrap_err().kind(),
        &PolicyParseErrorKind::TooLong
    );
    let ok_depth = format!("{}totp{}", "(".repeat(16), ")".repeat(16));
    assert!(Policy::parse(&ok_depth).is_ok());
}

#[test]
fn rfc9470_examples_are_reproduced_exactly() {
    // RFC 9470 section 3, first example: an acr requirement.
    let table =
        LevelTable::new([Level::new(1, "myACR").reached_by_any_of([Method::Passkey])]).unwrap();
    let c = Challenge::new(
        ChallengeReason::InsufficientLevel,
        &Policy::level(1),
        &table,
    );
    assert_eq!(
        c.www_authenticate(),
        r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="myACR""#
    );
    // Second example: a max_age requirement.
    let c = Challenge::new(
        ChallengeReason::Stale,
        &Policy::method(Method::Totp).max_age(secs(5)),
        &LevelTable::nist(),
    );
    assert_eq!(
        c.www_authenticate(),
        r#"Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", max_age="5""#
    );
}

#[test]
fn challenges_are_built_from_configuration_only() {
    let policy = Policy::level(2)
        .max_age(secs(300))
        .or(Policy::method(Method::Passkey).max_age(secs(60)))
        .with_reason("We need to confirm it's really you before moving money \"now\" <b>.");
    let c = Challenge::new(
        ChallengeReason::InsufficientLevel,
        &policy,
        &LevelTable::nist(),
    );
    let header = c.www_authenticate();
    assert_eq!(
        header,
        r#"Bearer error="insufficient_user_authentication", error_description="A different authentication level is required", acr_values="aal2 aal3", max_age="60""#
    );
    assert!(
        !header.contains("money"),
        "the reason never goes into a header"
    );
    let body: serde_json::Value = serde_json::from_str(&c.problem_json_with(&[
        ("step_up_url", "/step-up?return_to=%2Ftransfer"),
        ("status", "999"),
    ]))
    .unwrap();
    assert_eq!(body["type"], stepup_core::PROBLEM_TYPE);
    assert_eq!(
        body["status"], 401,
        "an extra member cannot replace an own one"
    );
    assert_eq!(body["error"], "insufficient_user_authentication");
    assert_eq!(body["reason"], "insufficient_level");
    assert_eq!(
        body["detail"],
        "We need to confirm it's really you before moving money \"now\" <b>."
    );
    assert_eq!(body["acr_values"], serde_json::json!(["aal2", "aal3"]));
    assert_eq!(body["max_age"], 60);
    assert_eq!(body["policy"], "level 2 within 5m or passkey within 1m");
    assert_eq!(body["step_up_url"], "/step-up?return_to=%2Ftransfer");
    assert_eq!(
        body["methods"],
        serde_json::json!(["device_bound_passkey", "passkey", "totp", "recovery_code"]),
        "only methods that can reach level 2 on their own: no password, e-mail or SMS code"
    );
}

#[test]
fn in_handler_requirements_give_the_same_challenge_as_the_gate() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Totp], T0);
    let a = gate.verify(&user, Some(&token), T0).unwrap();
    let big_transfer =
        Policy::method(Method::Passkey).with_reason("Transfers over 10 000 need a passkey.");
    let from_handler = a.require(&big_transfer, T0).unwrap_err();
    let from_gate = challenge(gate.check(&user, Some(&token), &big_transfer, T0));
    assert_eq!(from_handler, from_gate);
    assert_eq!(
        from_handler.message(),
        "Transfers over 10 000 need a passkey."
    );
    assert!(a.satisfies(&Policy::level(2), T0));
}

#[test]
fn token_config_is_validated() {
    assert!(config().with_lifetime(secs(0)).is_err());
    assert!(config().with_lifetime(secs(31 * 86_400)).is_err());
    assert!(config().with_purpose("has space").is_err());
    let c: TokenConfig = config().with_clock_skew(secs(100_000));
    assert_eq!(c.clock_skew(), secs(600));
}

#[test]
fn every_policy_that_parses_prints_back_within_the_limit() {
    // Found by the `policy` fuzz target: 920 bytes written with `|` printed
    // as 1 079 bytes with ` or `, over the 1 024-byte limit, so the printed
    // policy did not parse back. The canonical text must fit too.
    let term = "custom:a-s-a|";
    let compact = term.repeat(70);
    let compact = compact.trim_end_matches('|');
    assert!(compact.len() <= 1024);
    let error = Policy::parse(compact).unwrap_err();
    assert_eq!(error.kind(), &stepup_core::PolicyParseErrorKind::TooLong);
    // Just under the limit once printed: parses and round-trips.
    let fits = term.repeat(40);
    let fits = fits.trim_end_matches('|');
    let policy = Policy::parse(fits).unwrap();
    assert_eq!(Policy::parse(&policy.to_string()).unwrap(), policy);
}

/// `bound` is met only by a taken grant, never by a token alone; when
/// only the grant is missing the reason says so, and otherwise the usual
/// reason (stale, level) comes first.
#[test]
fn a_bound_term_needs_a_grant_and_composes() {
    let (issuer, gate) = pair();
    let user = alice();
    let token = token_for(&issuer, &user, &[Method::Totp], T0);
    let assurance = match gate.check(&user, Some(&token), &Policy::level(1), T0) {
        stepup_core::Decision::Allow(a) => a,
        other => panic!("{other:?}"),
    };
    let big: Policy = "level 2 within 5m and bound".parse().unwrap();
    assert_eq!(
        big,
        Policy::level(2).max_age(secs(300)).and(Policy::bound())
    );
    assert!(big.is_bound());
    // A token alone: the gate and `require` both say "confirm it".
    assert_eq!(
        challenge(gate.check(&user, Some(&token), &big, T0)).reason(),
        ChallengeReason::Unconfirmed
    );
    assert_eq!(
        assurance.require(&big, T0).unwrap_err().reason(),
        ChallengeReason::Unconfirmed
    );
    assert!(!assurance.satisfies(&big, T0));
    // With the grant taken.
    assurance.require_granted(&big, T0, true).unwrap();
    // A grant never widens the rest: stale stays stale, a lower level stays low.
    assert_eq!(
        assurance
            .require_granted(&big, T0 + secs(301), true)
            .unwrap_err()
            .reason(),
        ChallengeReason::Stale
    );
    assert_eq!(
        assurance
            .require_granted(&big, T0 + secs(301), false)
            .unwrap_err()
            .reason(),
        ChallengeReason::Stale
    );
    let higher: Policy = "level 3 and bound".parse().unwrap();
    assert_eq!(
        assurance
            .require_granted(&higher, T0, true)
            .unwrap_err()
            .reason(),
        ChallengeReason::InsufficientLevel
    );
    // In an `or`, the other branch may meet it without a grant.
    let either: Policy = "totp within 1m or bound".parse().unwrap();
    assurance.require(&either, T0).unwrap();
    assert_eq!(
        assurance
            .require(&either, T0 + secs(61))
            .unwrap_err()
            .reason(),
        ChallengeReason::Unconfirmed
    );
    assurance
        .require_granted(&either, T0 + secs(61), true)
        .unwrap();
    // `bound` takes no age, and prints and parses back.
    assert!("bound within 5m".parse::<Policy>().is_err());
    assert!("BOUND".parse::<Policy>().unwrap().is_bound());
    assert_eq!(either.to_string(), "totp within 1m or bound");
    let c = challenge(gate.check(&user, Some(&token), &big, T0));
    assert!(
        c.problem_json()
            .contains(r#""reason":"action_not_confirmed""#)
    );
}

/// The problem body of a bound challenge carries the action as RFC 9396
/// `authorization_details` whose values parse back exactly (markup in a
/// value escaped like the rest of the body), and the digest of it.
#[test]
fn a_bound_challenge_names_its_action() {
    let action = stepup_core::Action::new("payment", "POST", "/transfer")
        .unwrap()
        .with_detail("to", "<script>&\"bob\"")
        .unwrap()
        .with_detail("amount", "12000.00")
        .unwrap();
    let policy: Policy = "level 2 and bound".parse().unwrap();
    let challenge = Challenge::new(ChallengeReason::Unconfirmed, &policy, &LevelTable::nist());
    let body = challenge.problem_json_for_action(
        &[("confirmation", "c-1"), ("action_digest", "forged")],
        &action,
    );
    assert!(!body.contains('<') && !body.contains('&'), "{body}");
    let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entry = &parsed["authorization_details"][0];
    assert_eq!(entry["details"]["to"], "<script>&\"bob\"");
    assert_eq!(entry["route"], "/transfer");
    // Canonicalized again from what was parsed: the same text, the same digest.
    assert_eq!(
        serde_json::to_string(entry).unwrap(),
        action.canonical_json()
    );
    assert_eq!(parsed["action_digest"], action.digest().to_hex());
    assert_eq!(parsed["confirmation"], "c-1");
}

/// `same_context` terms: met only with the fact; "other context" when the
/// context alone is in the way — also when the grant is missing too (so a
/// grant is never used up for a request from another context), never for
/// a policy without the term.
#[test]
fn the_context_is_a_fact_of_the_request() {
    use stepup_core::{Facts, Timestamp};
    let now = Timestamp::from_unix_seconds(1_700_000_000);
    let levels = LevelTable::nist();
    let fresh = [Proof::new(Method::Totp, now)];
    let here = Facts::default().with_same_context(true);
    let elsewhere = Facts::default();
    let p: Policy = "level 2 within 5m and same_context and bound"
        .parse()
        .unwrap();
    assert_eq!(
        p.met_with(&fresh, &levels, now, elsewhere),
        Err(ChallengeReason::OtherContext)
    );
    assert_eq!(
        p.met_with(&fresh, &levels, now, here),
        Err(ChallengeReason::Unconfirmed)
    );
    assert!(
        p.met_with(&fresh, &levels, now, here.with_granted(true))
            .is_ok()
    );
    // Without the term, the context never matters.
    let bound: Policy = "level 2 within 5m and bound".parse().unwrap();
    assert_eq!(
        bound.met_with(&fresh, &levels, now, elsewhere),
        Err(ChallengeReason::Unconfirmed)
    );
    assert!(
        Policy::level(2)
            .met_with(&fresh, &levels, now, elsewhere)
            .is_ok()
    );
    // A missing level is said as such, whatever the context.
    let password = [Proof::new(Method::Password, now)];
    assert_eq!(
        "level 2 and same_context"
            .parse::<Policy>()
            .unwrap()
            .met_with(&password, &levels, now, elsewhere),
        Err(ChallengeReason::InsufficientLevel)
    );
    // The term parses alone and round-trips.
    let alone: Policy = "same_context".parse().unwrap();
    assert_eq!(alone.to_string(), "same_context");
    assert!(alone.needs_context() && !Policy::level(2).needs_context());
    assert!("same_context within 5m".parse::<Policy>().is_err());
}
