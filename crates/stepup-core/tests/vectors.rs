//! Known-answer vectors for the assurance token (issue #13, finding 8).
//!
//! Every other token test is a round trip through the same codec, so a
//! change to the format or to the MAC input that hits both sides at once
//! (a field dropped from the tag, the binding moved, the purpose block
//! forgotten) passes them all. These vectors were generated once from the
//! format as documented in `src/token.rs` and frozen as literals: issuing
//! must yield exactly this text, the gate must accept exactly this text,
//! and the layout and every MAC are recomputed here independently, with
//! the `hmac` crate, from the documented format.
//!
//! If one of these fails, the token format changed: existing cookies stop
//! verifying (or, worse, start meaning something else). That needs a new
//! format version, not new vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use stepup_core::{
    ChallengeReason, Gate, Issuer, Key, KeyId, KeyRing, Method, Proof, Subject, Timestamp,
    TokenConfig,
};

struct Vector {
    name: &'static str,
    key_id: u16,
    key: [u8; 32],
    purpose: &'static str,
    subject: &'static str,
    session: Option<&'static str>,
    epoch: u64,
    /// Oldest first, as the step-ups happened: method name and Unix time.
    proofs: &'static [(&'static str, u64)],
    issued_at: u64,
    lifetime: u64,
    context: Option<&'static [u8]>,
    token: &'static str,
}

const fn counting_key(start: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        k[i] = start.wrapping_add(i as u8);
        i += 1;
    }
    k
}

const T: u64 = 1_700_000_000;

const VECTORS: &[Vector] = &[
    Vector {
        name: "one TOTP proof, default purpose, no session",
        key_id: 1,
        key: counting_key(0x00),
        purpose: "stepup/assurance",
        subject: "alice",
        session: None,
        epoch: 0,
        proofs: &[("totp", T)],
        issued_at: T,
        lifetime: 3600,
        context: None,
        token: "AQABoXCBNrq_O1UF9eEAkBwAAAECAJmxejInCXdEA4Y2L_n4nwxbblmkOopIej_qbGBu05ly",
    },
    Vector {
        name: "three proofs of different ages, session, two-byte epoch and key id, own purpose",
        key_id: 0x0201,
        key: counting_key(0xa0),
        purpose: "bank/assurance",
        subject: "6f1c2a9e-3b7d-4c55-9a0e-2d8b1f4e7c31",
        session: Some("k3J9xQ2mZ8vT5wL1nB7cR4yH6pD0sF2gA9eU3iO5tYw"),
        epoch: 300,
        proofs: &[
            ("password", T - 900),
            ("totp", T - 240),
            ("device_bound_passkey", T - 30),
        ],
        issued_at: T,
        lifetime: 1200,
        context: None,
        token: "AQIBEp3QpZ_3wNIF9eEAsAmsAgADAYQHAvABBx5x0Pfh1tvHtxq3G3tBG9g6lmqlRL4wKXE6zAME3nSj7w",
    },
    Vector {
        name: "client context, custom method, synced passkey, one-day lifetime",
        key_id: 7,
        key: counting_key(0x40),
        purpose: "stepup/assurance",
        subject: "bob",
        session: Some("s-1"),
        epoch: 1,
        proofs: &[("custom:push", T - 10), ("passkey", T - 5)],
        issued_at: T,
        lifetime: 86_400,
        context: Some(b"203.0.113.0/24|Mozilla/5.0 Firefox/133.0"),
        token: "AQAHXqFw6KIJHTsF9eEAgKMFAQiibfiafx-olAKABHB1c2gKAwUEMBimUiViXxuIJEkHIceEi2V5MfiSdNxPeyCvJGMckg",
    },
];

impl Vector {
    fn config(&self) -> TokenConfig {
        let key = Key::from_bytes(KeyId::new(self.key_id), &self.key).unwrap();
        TokenConfig::new(KeyRing::new(key))
            .with_purpose(self.purpose)
            .unwrap()
            .with_lifetime(Duration::from_secs(self.lifetime))
            .unwrap()
    }

    fn subject(&self) -> Subject {
        let s = Subject::new(self.subject).with_epoch(self.epoch);
        match self.session {
            Some(session) => s.with_session(session),
            None => s,
        }
    }

    fn proofs(&self) -> Vec<Proof> {
        self.proofs
            .iter()
            .map(|(m, at)| Proof::new(m.parse().unwrap(), Timestamp::from_unix_seconds(*at)))
            .collect()
    }

    fn issued_at(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.issued_at)
    }

    /// The step-ups one after the other, each presenting the previous token;
    /// the last one at the issue time.
    fn issue(&self, issuer: &Issuer) -> String {
        let proofs = self.proofs();
        let mut previous: Option<String> = None;
        for (i, proof) in proofs.iter().enumerate() {
            let now = if i + 1 == proofs.len() {
                self.issued_at()
            } else {
                proof.at()
            };
            let subject = self.subject();
            let issued = match self.context {
                Some(context) => {
                    issuer.issue_in_context(&subject, *proof, previous.as_deref(), context, now)
                }
                None => issuer.issue(&subject, *proof, previous.as_deref(), now),
            };
            previous = Some(issued.unwrap().into_value());
        }
        previous.unwrap()
    }
}

#[test]
fn issuing_yields_exactly_the_vectors() {
    let mut wrong = Vec::new();
    for v in VECTORS {
        let token = v.issue(&v.config().issuer());
        if token != v.token {
            wrong.push(format!("{}:\n    token: \"{token}\",", v.name));
        }
    }
    assert!(
        wrong.is_empty(),
        "tokens differ from the vectors:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_gate_accepts_exactly_the_vectors() {
    for v in VECTORS {
        let gate = v.config().gate();
        let subject = v.subject();
        let now = v.issued_at() + Duration::from_secs(1);
        let a = gate
            .verify(&subject, Some(v.token), now)
            .unwrap_or_else(|r| panic!("{}: {r:?}", v.name));
        assert_eq!(a.proofs(), v.proofs(), "{}", v.name);
        assert_eq!(a.issued_at(), v.issued_at(), "{}", v.name);
        assert_eq!(
            a.expires_at(),
            v.issued_at() + Duration::from_secs(v.lifetime),
            "{}",
            v.name
        );
        match v.context {
            Some(context) => {
                assert_eq!(gate.same_context(&a, context), Some(true), "{}", v.name);
                assert_eq!(
                    gate.same_context(&a, b"elsewhere"),
                    Some(false),
                    "{}",
                    v.name
                );
            }
            None => assert_eq!(gate.same_context(&a, b"anything"), None, "{}", v.name),
        }
        // At the end of its lifetime: expired.
        let end = v.issued_at() + Duration::from_secs(v.lifetime);
        assert_eq!(
            gate.verify(&subject, Some(v.token), end).unwrap_err(),
            ChallengeReason::Expired,
            "{}",
            v.name
        );
        // Someone else, or the next epoch: refused.
        let other = Subject::new("mallory").with_epoch(v.epoch);
        assert_eq!(
            gate.verify(&other, Some(v.token), now).unwrap_err(),
            ChallengeReason::OtherBinding,
            "{}",
            v.name
        );
        let bumped = subject.clone().with_epoch(v.epoch + 1);
        assert_eq!(
            gate.verify(&bumped, Some(v.token), now).unwrap_err(),
            ChallengeReason::Revoked,
            "{}",
            v.name
        );
    }
}

#[test]
fn one_character_changed_anywhere_is_refused() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for v in VECTORS {
        let gate = v.config().gate();
        let subject = v.subject();
        let now = v.issued_at() + Duration::from_secs(1);
        assert!(gate.verify(&subject, Some(v.token), now).is_ok());
        for i in 0..v.token.len() {
            for replacement in [b'A', b'f', b'_'] {
                let mut bytes = v.token.as_bytes().to_vec();
                if bytes[i] == replacement {
                    continue;
                }
                bytes[i] = replacement;
                let changed = String::from_utf8(bytes).unwrap();
                assert!(
                    gate.verify(&subject, Some(&changed), now).is_err(),
                    "{}: character {i} changed to {} verifies",
                    v.name,
                    replacement as char
                );
            }
            // The next character of the alphabet, so every position changes.
            let mut bytes = v.token.as_bytes().to_vec();
            let at = ALPHABET.iter().position(|c| *c == bytes[i]).unwrap();
            bytes[i] = ALPHABET[(at + 1) % ALPHABET.len()];
            let changed = String::from_utf8(bytes).unwrap();
            assert!(
                gate.verify(&subject, Some(&changed), now).is_err(),
                "{}: character {i} changed verifies",
                v.name
            );
        }
        let mut longer = v.token.to_owned();
        longer.push('A');
        assert!(gate.verify(&subject, Some(&longer), now).is_err());
        assert!(
            gate.verify(&subject, Some(&v.token[..v.token.len() - 1]), now)
                .is_err()
        );
    }
}

#[test]
fn a_gate_without_the_vectors_key_refuses_them() {
    for v in VECTORS {
        let mut other_key = v.key;
        other_key[0] ^= 1;
        let ring = KeyRing::new(Key::from_bytes(KeyId::new(v.key_id), &other_key).unwrap());
        let gate = Gate::new(&ring);
        let now = v.issued_at() + Duration::from_secs(1);
        assert_eq!(
            gate.verify(v.subject(), Some(v.token), now).unwrap_err(),
            ChallengeReason::Invalid,
            "{}",
            v.name
        );
    }
}

// ---- The documented layout, recomputed independently ----

type HmacSha256 = Hmac<Sha256>;

fn mac(v: &Vector, domain: u8, parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[0] = domain;
    block[1] = v.purpose.len() as u8;
    block[2..2 + v.purpose.len()].copy_from_slice(v.purpose.as_bytes());
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(&v.key).unwrap();
    m.update(&block);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn leb128(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn binding(v: &Vector) -> Vec<u8> {
    let mut out = leb128(v.subject.len() as u64);
    out.extend_from_slice(v.subject.as_bytes());
    match v.session {
        Some(s) => {
            out.push(1);
            out.extend(leb128(s.len() as u64));
            out.extend_from_slice(s.as_bytes());
        }
        None => out.push(0),
    }
    out
}

/// The body the documented format prescribes, with the body check and the
/// binding hint computed here.
fn expected_raw(v: &Vector) -> Vec<u8> {
    let mut body = vec![1];
    body.extend_from_slice(&v.key_id.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    body.extend_from_slice(&mac(v, b'H', &[&binding(v)])[..4]);
    body.extend_from_slice(&((v.issued_at - 1_600_000_000) as u32).to_be_bytes());
    body.extend(leb128(v.lifetime));
    body.extend(leb128(v.epoch));
    match v.context {
        Some(context) => {
            body.push(8);
            let digest = mac(v, b'C', &[&(context.len() as u64).to_be_bytes(), context]);
            body.extend_from_slice(&digest[..8]);
        }
        None => body.push(0),
    }
    body.push(v.proofs.len() as u8);
    for (name, at) in v.proofs {
        let code: &[u8] = match *name {
            "password" => &[1],
            "totp" => &[2],
            "passkey" => &[3],
            "email_code" => &[4],
            "sms_code" => &[5],
            "recovery_code" => &[6],
            "device_bound_passkey" => &[7],
            custom => {
                let n = custom.strip_prefix("custom:").unwrap();
                body.push(0x80);
                body.push(n.len() as u8);
                body.extend_from_slice(n.as_bytes());
                &[]
            }
        };
        body.extend_from_slice(code);
        body.extend(leb128(v.issued_at - at));
    }
    let check = mac(v, b'U', &[&body[..3], &body[7..]]);
    body[3..7].copy_from_slice(&check[..4]);
    let len = (body.len() as u16).to_be_bytes();
    let tag = mac(v, b'B', &[&len, &body, &binding(v)]);
    body.extend_from_slice(&tag);
    body
}

#[test]
fn the_vectors_follow_the_documented_layout() {
    for v in VECTORS {
        let raw = URL_SAFE_NO_PAD.decode(v.token).unwrap();
        let expected = expected_raw(v);
        assert_eq!(raw, expected, "{}", v.name);
        assert_eq!(URL_SAFE_NO_PAD.encode(&expected), v.token, "{}", v.name);
    }
}

#[test]
fn the_vectors_cover_every_built_in_method_code_in_the_layout_test() {
    // The layout test above spells out the method codes; keep it complete.
    for m in Method::BUILT_IN {
        assert!(
            [
                "password",
                "totp",
                "passkey",
                "email_code",
                "sms_code",
                "recovery_code",
                "device_bound_passkey"
            ]
            .contains(&m.to_string().as_str()),
            "{m}"
        );
    }
}
