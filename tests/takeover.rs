//! The account-takeover findings of the outside reviews (issue #13,
//! findings 1, 1b and 6b), reproduced over real HTTP against both banks as
//! the reviewers ran them, each ending where it must now end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};
use stepup_conformance::{Bank, SoftPasskey};

stepup_conformance::per_adapter!(
    a_session_cookie_alone_cannot_add_a_factor,
    password_and_mailbox_cannot_take_over,
    a_first_factor_needs_the_password_again,
    replacing_totp_needs_totp_and_ends_assurance,
    a_pending_enrollment_belongs_to_its_session,
    confirming_in_the_step_of_the_last_step_up_works,
    removing_a_factor_needs_one_as_strong_and_ends_assurance,
);

/// An e-mail step-up by JSON: the answer's body.
async fn email_step_up(bank: &Bank, address: &str) -> Value {
    let r = bank
        .post_json("/step-up/code/send", json!({"channel": "email"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let sent: Value = r.json().await.unwrap();
    let code = bank.codes.last_code_to(address).unwrap();
    let r = bank
        .post_json(
            "/step-up/code/verify",
            json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Starts a TOTP enrollment by JSON (it must be allowed): the new secret.
async fn start_totp(bank: &Bank) -> stepup_challenge::TotpSecret {
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    stepup_challenge::TotpSecret::from_base32(v["manual_entry_key"].as_str().unwrap()).unwrap()
}

/// The code of `secret` on the bank's clock now.
fn code_of(bank: &Bank, secret: &stepup_challenge::TotpSecret) -> String {
    stepup_challenge::TotpConfig::new(bank_core::TOTP_ISSUER)
        .code_at(
            secret,
            stepup_core::Clock::now(&bank.clock).as_unix_seconds(),
        )
        .unwrap()
}

/// A challenge, not a success: 401 with the RFC 9470 header, and nothing
/// of the factor in the body.
async fn challenged(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert!(r.headers().contains_key(WWW_AUTHENTICATE), "{what}");
    let body = r.text().await.unwrap();
    for secret in [
        "recovery_codes",
        "manual_entry_key",
        "otpauth",
        "\"ceremony\"",
    ] {
        assert!(!body.contains(secret), "{what}: {body}");
    }
}

/// Finding 1: bob (no second factor) and an attacker holding only his
/// session cookie. Before: `/enroll/recovery-codes` gave ten codes, one of
/// them stepped up to aal2, and money moved.
async fn a_session_cookie_alone_cannot_add_a_factor(bank: Bank) {
    bank.login("bob", "builder").await;
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    challenged(r, "recovery codes").await;
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    challenged(r, "totp").await;
    let r = bank
        .post_json("/step-up/enroll/passkey/start", json!({}))
        .await;
    challenged(r, "passkey").await;
    let r = bank.navigate("/step-up/enroll/totp").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = bank
        .post_json("/step-up/recovery", json!({"code": "AAAA-AAAA-AAAA-AAAA"}))
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    assert_eq!(bank.transfer(500).await.status(), StatusCode::UNAUTHORIZED);
}

/// Finding 1b: alice's password and mailbox alone. Before: the e-mail
/// code gave aal2, a new TOTP secret of the attacker's replaced hers, new
/// recovery codes were issued, a passkey was added, and the 50,000
/// transfer passed.
async fn password_and_mailbox_cannot_take_over(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let body = email_step_up(&bank, bank_core::ALICE_EMAIL).await;
    assert_eq!(
        body["acr"], "aal1",
        "e-mail is not a level-2 factor: {body}"
    );
    assert_eq!(body["level"], 1, "{body}");
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    challenged(r, "replace totp").await;
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    challenged(r, "recovery codes").await;
    let r = bank
        .post_json("/step-up/enroll/passkey/start", json!({}))
        .await;
    challenged(r, "passkey").await;
    assert_eq!(
        bank.transfer(50_000).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(bank.transfer(5).await.status(), StatusCode::UNAUTHORIZED);
    let r = bank.post_json("/settings/close-account", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A user without a second factor re-confirms the password to add the
/// first; recovery codes come only after another factor, and
/// regenerating them ends outstanding assurance.
async fn a_first_factor_needs_the_password_again(bank: Bank) {
    bank.login("bob", "builder").await;
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let header = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        header.contains("insufficient_user_authentication"),
        "{header}"
    );
    let r = bank
        .post_json("/step-up/password", json!({"password": "builder"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Recovery codes are a backup: not before another factor.
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "change_refused", "{body}");
    let secret = start_totp(&bank).await;
    let code = |bank: &Bank| code_of(bank, &secret);
    let r = bank
        .post_json("/step-up/enroll/totp/confirm", json!({"code": code(&bank)}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Now a password proof no longer suffices for a change.
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json("/step-up/totp", json!({"code": code(&bank)}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["recovery_codes"].as_array().unwrap().len(), 10);
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["assured"], true, "{status}");
    // Regenerating them ends every outstanding assurance.
    let r = bank
        .post_json("/step-up/enroll/recovery-codes", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, status) = bank.get_json("/step-up/status").await;
    assert_eq!(status["assured"], false, "{status}");
    assert_eq!(status["reason"], "revoked", "{status}");
}

/// Replacing the authenticator app needs the app (or something stronger),
/// and ends every outstanding assurance.
async fn replacing_totp_needs_totp_and_ends_assurance(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let r = bank
        .post_json("/step-up/password", json!({"password": "wonderland"}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the password is not enough"
    );
    bank.totp(&bank.code(), "/").await;
    let secret = start_totp(&bank).await;
    assert_eq!(bank.transfer(1).await.status(), StatusCode::OK);
    bank.clock.advance(Duration::from_secs(30));
    let code = code_of(&bank, &secret);
    let r = bank
        .post_json("/step-up/enroll/totp/confirm", json!({"code": code}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bank.transfer(1).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["reason"], "revoked", "{body}");
    // The old secret no longer works; the new one does.
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Finding 6b: an enrollment started in session A (with a step-up) cannot
/// be confirmed from session B, which has no assurance.
async fn a_pending_enrollment_belongs_to_its_session(bank: Bank) {
    bank.login("alice", "wonderland").await;
    bank.totp(&bank.code(), "/").await;
    let secret = start_totp(&bank).await;
    let code = code_of(&bank, &secret);
    let other = bank.login_elsewhere("alice", "wonderland").await;
    let r = bank
        .post_json_as(
            &other,
            "/step-up/enroll/totp/confirm",
            json!({"code": code}),
        )
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Even after stepping up there, session B has no pending enrollment.
    let r = bank
        .post_json_as(
            &other,
            "/step-up/password",
            json!({"password": "wonderland"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json_as(&other, "/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let code = code_of(&bank, &secret);
    let r = bank
        .post_json_as(
            &other,
            "/step-up/enroll/totp/confirm",
            json!({"code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "no_pending_enrollment", "{body}");
}

/// Finding 6b: confirming a new secret within the same 30-second step as
/// the step-up that allowed it works (the new secret has its own replay
/// state) and does not lose the enrollment.
async fn confirming_in_the_step_of_the_last_step_up_works(bank: Bank) {
    bank.login("alice", "wonderland").await;
    let r = bank.totp(&bank.code(), "/").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let secret = start_totp(&bank).await;
    let code = code_of(&bank, &secret);
    let r = bank
        .post_json("/step-up/enroll/totp/confirm", json!({"code": code}))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enrolled"], "totp");
    // And the confirming code is not a step-up afterwards.
    let r = bank.post_json("/step-up/totp", json!({"code": code})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Removing a factor needs a proof at least as strong as it, bumps the
/// epoch, and the removed passkey cannot step up any more.
async fn removing_a_factor_needs_one_as_strong_and_ends_assurance(bank: Bank) {
    bank.login("alice", "wonderland").await;
    bank.totp(&bank.code(), "/").await;
    let mut key = SoftPasskey::new(true);
    let r = bank.register_passkey(&mut key).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The authenticator says "device-bound", unattested: the bank does not
    // believe it, so the passkey ranks with TOTP (level 2, `swk`) and a
    // passkey registered with a phished TOTP code never outranks the user.
    let r = bank.passkey_step_up(&mut key).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["acr"], "aal2", "{body}");
    let amr = body["amr"].as_array().unwrap();
    assert!(
        amr.contains(&json!("swk")) && !amr.contains(&json!("hwk")),
        "{body}"
    );
    // Removing TOTP (rank 2) with the passkey proof (rank 2): allowed; the
    // epoch moves on.
    let r = bank
        .post_json("/step-up/enroll/totp/remove", json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(bank.transfer(1).await.status(), StatusCode::UNAUTHORIZED);
    bank.clock.advance(Duration::from_secs(30));
    let r = bank
        .post_json("/step-up/totp", json!({"code": bank.code()}))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_enrolled", "{body}");
}

mod more {
    use super::*;
    use stepup_conformance::{Adapter, start, start_configured};
    use stepup_core::{Level, LevelTable, Method};

    stepup_conformance::per_adapter!(
        email_only_users_prove_by_email_before_any_change,
        a_custom_level_table_ranks_the_factors,
        a_lost_factor_is_replaced_through_a_waiting_recovery,
    );

    /// Carol's only second factor is e-mail: before, she (or a session
    /// thief) enrolled anything without a proof. Now the password *and* an
    /// e-mail code (neither the mailbox nor the password alone); after
    /// TOTP, recovery codes need TOTP.
    async fn email_only_users_prove_by_email_before_any_change(bank: Bank) {
        bank.login("carol", "looking-glass").await;
        // A session thief who also reads her mail: not enough.
        let thief = start(bank.adapter).await;
        thief.login("carol", "looking-glass").await;
        email_step_up(&thief, bank_core::CAROL_EMAIL).await;
        let r = thief.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the mailbox alone");
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["step_up_url"].as_str().unwrap().contains("why="),
            "{problem}"
        );
        let r = bank
            .post_json("/step-up/password", json!({"password": "looking-glass"}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "the password is not enough"
        );
        email_step_up(&bank, bank_core::CAROL_EMAIL).await;
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = bank
            .post_json("/step-up/enroll/recovery-codes", json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no factor as strong yet");
    }

    /// A table where the password alone reaches level 2: the old rule
    /// ("level 2 within 5 minutes") let a password proof replace alice's
    /// TOTP; ranks now say the password never counts once she has TOTP.
    async fn a_custom_level_table_ranks_the_factors(bank: Bank) {
        let levels = LevelTable::new([
            Level::new(1, "basic").reached_by_distinct(1),
            Level::new(2, "strong").reached_by_any_of([
                Method::Password,
                Method::Totp,
                Method::Passkey,
            ]),
        ])
        .unwrap();
        let bank = start_configured(bank.adapter, None, Some(levels)).await;
        bank.login("alice", "wonderland").await;
        let r = bank
            .post_json("/step-up/password", json!({"password": "wonderland"}))
            .await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["acr"], "strong", "{body}");
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        bank.totp(&bank.code(), "/").await;
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let _ = Adapter::Axum;
    }

    /// Alice lost her phone: an e-mail code may replace her TOTP only
    /// after the 24-hour waiting period, during which she can cancel.
    async fn a_lost_factor_is_replaced_through_a_waiting_recovery(bank: Bank) {
        bank.login("alice", "wonderland").await;
        // Starting needs a fresh proof with any second factor.
        let r = bank.post_json("/step-up/account-recovery", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        email_step_up(&bank, bank_core::ALICE_EMAIL).await;
        let r = bank.post_json("/step-up/account-recovery", json!({})).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let pending: Value = r.json().await.unwrap();
        assert_eq!(pending["ready"], false, "{pending}");
        assert_eq!(
            pending["ready_at"].as_u64().unwrap() - pending["requested_at"].as_u64().unwrap(),
            24 * 3600
        );
        // During the wait, the e-mail proof does not replace TOTP.
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // Cancelled from another session: nothing is ready a day later.
        let other = bank.login_elsewhere("alice", "wonderland").await;
        let r = bank
            .post_json_as(&other, "/step-up/account-recovery/cancel", json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["cancelled"], true);
        bank.clock.advance(Duration::from_secs(24 * 3600 + 1));
        email_step_up(&bank, bank_core::ALICE_EMAIL).await;
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // Started again and waited out: the e-mail proof may replace TOTP.
        let r = bank.post_json("/step-up/account-recovery", json!({})).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        bank.clock.advance(Duration::from_secs(24 * 3600));
        let (_, state) = bank.get_json("/step-up/account-recovery").await;
        assert_eq!(state["ready"], true, "{state}");
        email_step_up(&bank, bank_core::ALICE_EMAIL).await;
        let r = bank.post_json("/step-up/enroll/totp", json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        // (The enrollment was started, not confirmed: the recovery is still
        // there.) Cancelled, a third start is taken; cancelled again, a
        // fourth within the week is refused as such (429), not as an outage.
        let cancel = || bank.post_json("/step-up/account-recovery/cancel", json!({}));
        let body: Value = cancel().await.json().await.unwrap();
        assert_eq!(body["cancelled"], true, "{body}");
        email_step_up(&bank, bank_core::ALICE_EMAIL).await;
        let r = bank.post_json("/step-up/account-recovery", json!({})).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = cancel().await.json().await.unwrap();
        assert_eq!(body["cancelled"], true, "{body}");
        email_step_up(&bank, bank_core::ALICE_EMAIL).await;
        let r = bank.post_json("/step-up/account-recovery", json!({})).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "locked_out", "{body}");
    }
}
