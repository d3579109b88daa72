//! The token parser and verifier: no input panics, and nothing verifies
//! that the issuer did not mint with a current key.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stepup_core::{Gate, Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp};

const NOW: Timestamp = Timestamp::from_unix_seconds(1_700_000_000);

struct Fixture {
    gate: Gate,
    subject: Subject,
    minted: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = Key::from_bytes(KeyId::new(7), &[42u8; 32]).expect("a 32-byte key");
        let ring = KeyRing::new(key);
        let issuer = Issuer::new(&ring);
        let subject = Subject::new("alice").with_session("s-1");
        let mut minted = Vec::new();
        let mut previous: Option<String> = None;
        for (method, ago) in [
            (Method::Password, 600),
            (Method::Totp, 60),
            (Method::Passkey, 5),
        ] {
            let at = NOW - Duration::from_secs(ago);
            let token = issuer
                .issue(&subject, Proof::new(method, at), previous.as_deref(), at)
                .expect("issuing works");
            previous = Some(token.value().to_owned());
            minted.push(token.value().to_owned());
        }
        Fixture {
            gate: Gate::new(&ring),
            subject,
            minted,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // Mutations of a genuine token reach deeper than random text.
    let text = match data.split_first() {
        Some((&pick, rest)) if pick % 2 == 0 => {
            let mut bytes = f.minted[usize::from(pick / 2) % f.minted.len()]
                .clone()
                .into_bytes();
            for (i, b) in rest.iter().enumerate().take(8) {
                if bytes.is_empty() {
                    break;
                }
                let at = usize::from(*b) % bytes.len();
                bytes[at] = rest.get(i + 8).copied().unwrap_or(b'A');
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    let verified = f.gate.verify(&f.subject, Some(&text), NOW);
    if verified.is_ok() {
        assert!(
            f.minted.contains(&text),
            "verified without being minted: {text:?}"
        );
    }
    // Another subject never verifies anything.
    let mallory = Subject::new("mallory").with_session("s-1");
    assert!(f.gate.verify(&mallory, Some(&text), NOW).is_err());
});
