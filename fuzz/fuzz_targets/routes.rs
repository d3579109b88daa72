//! The challenge routes' form and JSON decoders, through
//! `ChallengeRoutes::handle` with in-memory stores: no input panics, and no
//! input gets a 5xx (the stores cannot fail here) or a new assurance cookie
//! without the right secret.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use stepup_challenge::routes::{Body, ChallengeRoutes, Incoming, Settings};
use stepup_challenge::{
    Engine, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore, TotpConfig,
};
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};
use stepup_http::Found;

type Routes = ChallengeRoutes<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>;

/// The in-memory stores never wait: polling once finishes; loop anyway.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_010));
        let key = Key::from_bytes(KeyId::new(1), &[5u8; 32]).expect("key");
        let tokens = TokenConfig::new(KeyRing::new(key));
        let engine = Engine::new(
            tokens.issuer(),
            MemoryFactorStore::new(),
            MemoryStateStore::new(clock.clone()),
        )
        .with_clock(clock.clone())
        .with_totp(TotpConfig::new("Bank"))
        // A password the fuzzer will not find.
        .with_passwords(InsecureFixedPasswords::new([(
            "alice",
            "correct horse battery staple 42",
        )]));
        let settings = Settings::new(tokens.gate(), "https://bank.example").with_clock(clock);
        ChallengeRoutes::new(settings, Arc::new(engine))
    })
}

const PATHS: [&str; 16] = [
    "/",
    "/totp",
    "/password",
    "/recovery",
    "/code/send",
    "/code/verify",
    "/passkey/start",
    "/passkey/finish",
    "/status",
    "/drop",
    "/enroll/totp",
    "/enroll/totp/confirm",
    "/enroll/recovery-codes",
    "/enroll/passkey",
    "/assets/page.css",
    // The confirmation page of a kept form: the query is the fuzzer's.
    "/resume",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector & 0x0f)];
    let method = if selector & 0x10 == 0 { "POST" } else { "GET" };
    let content_type: &[u8] = if selector & 0x20 == 0 {
        b"application/json"
    } else {
        b"application/x-www-form-urlencoded"
    };
    let (query, body) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (std::str::from_utf8(&rest[..at]).ok(), &rest[at + 1..]),
        None => (None, rest),
    };
    let subject = Subject::new("alice").with_session("s-1");
    let reply = block_on(routes().handle(Incoming {
        method,
        path,
        query,
        subject: (selector & 0x40 == 0).then_some(subject),
        origin: Some(b"https://bank.example"),
        sec_fetch_site: None,
        referer: None,
        content_type: Some(content_type),
        navigation: selector & 0x80 != 0,
        token: Found::None,
        body: Body::Read(body),
        address: None,
        // The fuzzer's bytes as Accept-Language too: never a 500 or a panic.
        accept_language: Some(body),
        user_agent: Some(body),
        context: None,
    }));
    assert!(
        reply.status() < 500,
        "{} for {path} {body:?}",
        reply.status()
    );
    if path == "/password" {
        assert!(reply.header_value("set-cookie").is_none(), "{body:?}");
    }
});
