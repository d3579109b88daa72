//! A bound route's action, read from whatever a client sends: no input
//! panics; a body that is read gives values that are already canonical —
//! sending them again, as a form or as JSON, is the same action with the
//! same digest — and a body that is refused names a field or says why.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stepup_http::{ActionInput, ActionSpec, Normalise};

fn spec() -> ActionSpec {
    ActionSpec::builder("payment")
        .field("amount", Normalise::Amount { scale: 2 })
        .field("to", Normalise::Trimmed)
        .optional_field("iban", Normalise::Iban)
        .optional_field("n", Normalise::Integer)
        .optional_field("currency", Normalise::Code)
        .optional_field("memo", Normalise::Exact)
        .query_field("account", Normalise::Exact)
        .summary("Send {amount} {currency} to {to}")
        .build()
        .expect("the spec is valid")
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    // The query is the part before the first NUL, the body the rest.
    let (query, body) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&b"account=a1"[..], rest),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let content_type: &[u8] = match kind % 4 {
        0 => b"application/x-www-form-urlencoded",
        1 => b"application/json",
        2 => b"application/json; charset=utf-8",
        _ => b"text/plain",
    };
    let spec = spec();
    let input = ActionInput {
        method: "POST",
        path: "/transfer",
        query: Some(query),
        content_type: Some(content_type),
        body,
    };
    match spec.extract(&input) {
        Ok(bound) => {
            let digest = bound.digest();
            assert_eq!(bound.action().digest(), digest);
            assert!(bound.get("amount").is_some() && bound.get("to").is_some());
            // The normalised values, sent again, are the same action.
            let mut form = form_urlencoded::Serializer::new(String::new());
            let mut json = Vec::new();
            for (name, value) in bound.action().details() {
                if name != "account" {
                    form.append_pair(name, value);
                    json.push((name.to_owned(), value.to_owned()));
                }
            }
            let form = form.finish();
            let again = spec
                .extract(&ActionInput {
                    content_type: Some(b"application/x-www-form-urlencoded"),
                    body: form.as_bytes(),
                    ..input
                })
                .expect("canonical values are read again");
            assert_eq!(again.digest(), digest, "{form}");
            assert_eq!(again.summary(), bound.summary());
            let object: String = json
                .iter()
                .map(|(n, v)| format!("{}:{}", quote(n), quote(v)))
                .collect::<Vec<_>>()
                .join(",");
            let body = format!("{{{object}}}");
            let again = spec
                .extract(&ActionInput {
                    content_type: Some(b"application/json"),
                    body: body.as_bytes(),
                    ..input
                })
                .expect("canonical values are read again as JSON");
            assert_eq!(again.digest(), digest, "{body}");
        }
        Err(refusal) => {
            assert!(matches!(refusal.status(), 400 | 413 | 415));
            assert!(!refusal.message().is_empty());
            let reply = refusal.reply();
            assert_eq!(reply.status(), refusal.status());
        }
    }
});

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
