//! No secret reaches the logs, across every flow and both adapters: the
//! flows run under one recording subscriber (alone in this test binary, see
//! `stepup_test_support::Recorder`), then the record is searched for every
//! code, password, token, session id and address the flows used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use stepup_conformance::{Adapter, first_pair, start};
use stepup_test_support::Recorder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();
    let mut secrets: Vec<String> = vec![
        "wonderland".into(),
        "builder".into(),
        bank_core::ALICE_EMAIL.into(),
    ];
    for adapter in [Adapter::Axum, Adapter::Actix] {
        let bank = start(adapter).await;
        let session = bank.session_cookie("alice", "wonderland").await;
        secrets.push(session.split('=').nth(1).unwrap().to_owned());
        bank.login("alice", "wonderland").await;
        // Wrong and right TOTP codes, a challenge, a pass.
        bank.post_json("/step-up/totp", json!({"code": "000000"}))
            .await;
        let code = bank.code();
        secrets.push(code.clone());
        let r = bank.post_json("/step-up/totp", json!({"code": code})).await;
        let token = first_pair(r.headers()["set-cookie"].to_str().unwrap());
        secrets.push(token.split('=').nth(1).unwrap().to_owned());
        bank.transfer(1).await;
        // Recovery codes.
        let codes: Value = bank
            .post_json("/step-up/enroll/recovery-codes", json!({}))
            .await
            .json()
            .await
            .unwrap();
        for code in codes["recovery_codes"].as_array().unwrap() {
            secrets.push(code.as_str().unwrap().to_owned());
        }
        bank.post_json(
            "/step-up/recovery",
            json!({"code": codes["recovery_codes"][0]}),
        )
        .await;
        // E-mail codes, wrong then right.
        let sent: Value = bank
            .post_json("/step-up/code/send", json!({"channel": "email"}))
            .await
            .json()
            .await
            .unwrap();
        let code = bank.codes.last_code_to(bank_core::ALICE_EMAIL).unwrap();
        secrets.push(code.clone());
        for attempt in ["999999", code.as_str()] {
            bank.post_json(
                "/step-up/code/verify",
                json!({"channel": "email", "challenge_id": sent["challenge_id"], "code": attempt}),
            )
            .await;
        }
        // Passwords, a refusal, a drop, a tossed cookie.
        bank.post_json("/step-up/password", json!({"password": "wonderland"}))
            .await;
        bank.client
            .post(bank.url("/step-up/totp"))
            .header("origin", "http://evil.example")
            .json(&json!({"code": "123456"}))
            .send()
            .await
            .unwrap();
        bank.transfer_with_cookie(format!("{session}; stepup=forged; stepup=again").as_bytes())
            .await;
        bank.post_json("/step-up/drop", json!({})).await;
    }
    // Our events (targets `stepup…`); the HTTP client's and the servers'
    // own debug logs are theirs.
    let text: String = recorder
        .text()
        .lines()
        .filter(|line| line.starts_with("stepup"))
        .map(|line| format!("{line}\n"))
        .collect();
    // The record is real: decisions of the middleware and the engine's
    // events for both adapters are in it.
    assert!(
        text.lines().count() >= 20,
        "the flows were recorded: {text}"
    );
    assert!(text.contains("outcome=\"challenge\""), "{text}");
    assert!(text.contains("stepup::challenge"), "{text}");
    for secret in &secrets {
        assert!(secret.len() >= 6, "{secret}");
        // Our events only: webauthn-rs's own debug logs are documented on
        // `PasskeyConfig` and no passkey flow runs here.
        assert!(
            !text.contains(secret.as_str()),
            "{secret} in the logs:\n{text}"
        );
    }
}
