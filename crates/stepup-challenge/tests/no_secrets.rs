//! Every flow, run under a subscriber that records every tracing event and
//! field: no code, secret, password, token, passkey material or user id
//! appears in stepup's events. (Its own test
//! binary: tracing caches per-callsite interest process-wide.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, Engine, Event, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig,
};
use stepup_core::{Clock, Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};

use stepup_test_support::Recorder;

#[test]
fn no_flow_logs_a_secret() {
    let recorder = Recorder::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sink_text: Arc<Mutex<String>> = Arc::default();
    let secrets = tracing::subscriber::with_default(recorder.clone(), || {
        rt.block_on(async {
            let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
            let config = TokenConfig::new(KeyRing::new(
                Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
            ));
            let sink = sink_text.clone();
            let factors = MemoryFactorStore::new();
            factors
                .set_code_destination(
                    &Subject::new("alice-the-user"),
                    stepup_challenge::Channel::Email,
                    "alice@example.com",
                )
                .unwrap();
            let sender = stepup_challenge::RecordingSender::new();
            let engine = Engine::new(
                config.issuer(),
                factors,
                MemoryStateStore::new(clock.clone()),
            )
            .with_code_sender(sender.clone())
            .with_passwords(InsecureFixedPasswords::new([(
                "alice-the-user",
                "hunter2-very-secret",
            )]))
            .with_clock(clock.clone())
            .with_totp(TotpConfig::new("Example Bank"))
            .with_event_sink(move |e: &Event| {
                sink.lock().unwrap().push_str(&format!("{e} {e:?}\n"))
            });
            // Built without passkeys, the rest of the flows still run.
            #[cfg(feature = "passkey")]
            let engine = engine
                .with_passkeys(stepup_challenge::PasskeyConfig::new(
                    "bank.example",
                    "https://bank.example",
                    "Bank",
                ))
                .unwrap();
            let user = Subject::new("alice-the-user").with_session("session-secret-id");
            let mut seen: Vec<String> = Vec::new();
            engine.page_shown(&user);

            let enrollment = engine
                .start_totp_enrollment(&user, "alice@example.com")
                .await
                .unwrap();
            seen.push(enrollment.otpauth_uri().to_owned());
            let secret =
                stepup_challenge::TotpSecret::from_base32(enrollment.manual_entry_key()).unwrap();
            let base32 = enrollment
                .otpauth_uri()
                .split("secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
                .to_owned();
            seen.push(base32);
            let code = engine
                .totp_config()
                .code_at(&secret, clock.now().as_unix_seconds())
                .unwrap();
            engine
                .confirm_totp_enrollment(Attempt::new(&user), &code)
                .await
                .unwrap();
            seen.push(code.clone());
            let _ = engine.step_up_totp(Attempt::new(&user), &code).await; // replay
            clock.advance(Duration::from_secs(30));
            let code = engine
                .totp_config()
                .code_at(&secret, clock.now().as_unix_seconds())
                .unwrap();
            let token = engine
                .step_up_totp(Attempt::new(&user), &code)
                .await
                .unwrap();
            seen.push(code);
            seen.push(token.value().to_owned());
            // A one-time code by e-mail: a wrong one, then the right one.
            // Before the guessing below, so no budget stands in its way:
            // this step-up must succeed for its token to be looked for.
            let sent = engine
                .send_code(Attempt::new(&user), stepup_challenge::Channel::Email)
                .await
                .unwrap();
            let code = sender.last_code_to("alice@example.com").unwrap();
            let wrong = if code == "000000" { "000001" } else { "000000" };
            let _ = engine
                .step_up_code(
                    Attempt::new(&user),
                    stepup_challenge::Channel::Email,
                    &sent.challenge_id,
                    wrong,
                )
                .await;
            let t = engine
                .step_up_code(
                    Attempt::new(&user),
                    stepup_challenge::Channel::Email,
                    &sent.challenge_id,
                    &code,
                )
                .await
                .unwrap();
            seen.push(code);
            seen.push(t.value().to_owned());
            let _ = engine.step_up_totp(Attempt::new(&user), "987650").await;
            let _ = engine
                .step_up_password(Attempt::new(&user), "wrong-password-guess")
                .await;
            seen.push("wrong-password-guess".to_owned());
            let t = engine
                .step_up_password(Attempt::new(&user), "hunter2-very-secret")
                .await
                .unwrap();
            seen.push("hunter2-very-secret".to_owned());
            seen.push(t.value().to_owned());
            let codes = engine.generate_recovery_codes(&user, 3).await.unwrap();
            for c in &codes {
                seen.push(c.grouped());
                seen.push(c.grouped().replace('-', ""));
            }
            engine
                .step_up_recovery_code(Attempt::new(&user), &codes[0].grouped())
                .await
                .unwrap();
            let _ = engine
                .step_up_recovery_code(Attempt::new(&user), &codes[0].grouped())
                .await;
            for _ in 0..7 {
                let _ = engine
                    .step_up_password(Attempt::new(&user), "another-bad-guess")
                    .await;
            }
            seen.push("another-bad-guess".to_owned());
            seen.push("alice@example.com".to_owned());
            // Passkeys: registration and a step-up; no credential material logged.
            #[cfg(feature = "passkey")]
            {
                use webauthn_authenticator_rs::WebauthnAuthenticator;
                let origin =
                    stepup_challenge::webauthn::Url::parse("https://bank.example").unwrap();
                let mut key = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true);
                let (id, options) = engine
                    .start_passkey_registration(&user, "alice")
                    .await
                    .unwrap();
                let reg = key.do_registration(origin.clone(), options).unwrap();
                let reg_json = serde_json::to_value(&reg).unwrap();
                seen.push(reg_json["rawId"].as_str().unwrap().to_owned());
                seen.push(
                    reg_json["response"]["attestationObject"].as_str().unwrap()[..40].to_owned(),
                );
                engine
                    .finish_passkey_registration(Attempt::new(&user), &id, &reg, "laptop")
                    .await
                    .unwrap();
                let (id, options) = engine
                    .start_passkey_step_up(Attempt::new(&user))
                    .await
                    .unwrap();
                let assertion = key.do_authentication(origin, options).unwrap();
                let a_json = serde_json::to_value(&assertion).unwrap();
                seen.push(a_json["response"]["signature"].as_str().unwrap().to_owned());
                seen.push(id.clone());
                let t = engine
                    .step_up_passkey(Attempt::new(&user), &id, &assertion)
                    .await
                    .unwrap();
                seen.push(t.value().to_owned());
                let _ = engine
                    .step_up_passkey(Attempt::new(&user), &id, &assertion)
                    .await;
            }
            engine.remove_totp(&user).await.unwrap();
            // Debug output of everything secret-bearing.
            let debug =
                format!("{enrollment:?} {secret:?} {codes:?} {token:?} {engine:?} {user:?}");
            (seen, debug)
        })
    });
    let (seen, debug) = secrets;
    // Our own events (targets `stepup…`). webauthn-rs logs ceremony data
    // itself at debug and trace level under `webauthn_rs*` targets: the
    // passkey docs tell applications to keep those at info or above.
    let log: String = recorder
        .text()
        .lines()
        .filter(|l| l.starts_with("stepup"))
        .map(|l| format!("{l}\n"))
        .collect();
    let events = sink_text.lock().unwrap().clone();
    assert!(log.lines().count() >= 15, "every flow logs: {log}");
    assert!(
        log.contains("succeeded") && log.contains("locked_out") && log.contains("already_used"),
        "{log}"
    );
    for text in [&log, &events, &debug] {
        for secret in seen
            .iter()
            .map(String::as_str)
            .chain(["alice-the-user", "session-secret-id"])
        {
            if secret == "alice-the-user" && std::ptr::eq(text, &debug) {
                continue; // Debug of a Subject shows its id, by design.
            }
            assert!(!text.contains(secret), "{secret:?} appears in:\n{text}");
        }
    }
}
