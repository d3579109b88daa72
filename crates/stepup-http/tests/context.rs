//! `same_context` terms and the risk hook at the guard: the request's
//! network and browser against the token's, the hook's facts and the
//! policy it picks, for fixed, per-request and bound policies alike.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_core::{
    Clock, Key, KeyId, KeyRing, Method, Policy, Proof, Subject, TestClock, Timestamp, TokenConfig,
};
use stepup_http::{
    ContextSettings, Guard, Header, RequestHead, Risk, RiskPolicies, Settings, Verdict,
};

/// A request from `from` with `agent` carrying `token`.
struct Request {
    from: Option<IpAddr>,
    headers: Vec<(Header, Vec<u8>)>,
}

impl RequestHead for Request {
    fn method(&self) -> &str {
        "GET"
    }

    fn path_and_query(&self) -> &str {
        "/statements"
    }

    fn values(&self, header: Header) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |(h, _)| *h == header)
            .map(|(_, v)| v.as_slice())
    }
}

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

struct World {
    tokens: TokenConfig,
    clock: TestClock,
    user: Subject,
    settings: Settings,
}

fn world() -> World {
    let tokens = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[3u8; 32]).unwrap(),
    ));
    let clock = TestClock::new(Timestamp::from_unix_seconds(1_700_000_000));
    let settings = Settings::new(tokens.gate(), "https://bank.example").with_clock(clock.clone());
    World {
        tokens,
        clock,
        user: Subject::new("alice").with_session("s1"),
        settings,
    }
}

impl World {
    /// A token minted as the challenge routes mint it: in the context of
    /// a request from `from` with `agent`.
    fn token_from(&self, from: &str, agent: &str) -> String {
        let now = self.clock.now();
        let context = ContextSettings::default()
            .context(Some(from.parse().unwrap()), Some(agent.as_bytes()))
            .unwrap();
        self.tokens
            .issuer()
            .issue_in_context(
                &self.user,
                Proof::new(Method::Totp, now),
                None,
                context.as_bytes(),
                now,
            )
            .unwrap()
            .into_value()
    }

    fn request(&self, from: &str, agent: &str, token: &str) -> Request {
        Request {
            from: Some(from.parse().unwrap()),
            headers: vec![
                (
                    Header::Cookie,
                    format!("__Host-stepup={token}").into_bytes(),
                ),
                (Header::UserAgent, agent.as_bytes().to_vec()),
            ],
        }
    }

    fn guard(&self, policy: Policy) -> Guard<Request> {
        self.settings
            .guard(policy)
            .client_address(|r: &Request| r.from)
    }
}

fn reason(verdict: Verdict) -> String {
    match verdict {
        Verdict::Allow(_) => "allowed".to_owned(),
        Verdict::Deny(reply) => {
            let body = reply.body().to_owned();
            let at = body.find(r#""reason":""#).unwrap() + 10;
            body[at..at + body[at..].find('"').unwrap()].to_owned()
        }
        Verdict::Interrupt(_) => "interrupted".to_owned(),
    }
}

/// What the risk hook heard: an assurance?, the same context?
type Heard = (bool, Option<bool>);

fn statements() -> Policy {
    "level 2 within 1h and same_context or level 2 within 5m"
        .parse()
        .unwrap()
}

#[test]
fn the_same_network_and_browser_keep_the_longer_window() {
    let w = world();
    let guard = w.guard(statements());
    let token = w.token_from("203.0.113.9", FIREFOX);
    let check = |from: &str, agent: &str| {
        reason(guard.check(
            &w.request(from, agent, &token),
            &w.request(from, agent, &token),
            Some(w.user.clone()),
        ))
    };
    // Within five minutes: anywhere.
    assert_eq!(check("198.51.100.7", CHROME), "allowed");
    w.clock.advance(Duration::from_secs(30 * 60));
    // Half an hour: the same /24 and browser family only.
    assert_eq!(check("203.0.113.200", FIREFOX), "allowed");
    assert_eq!(check("198.51.100.7", FIREFOX), "other_context");
    assert_eq!(check("203.0.113.9", CHROME), "other_context");
    // Past the hour: stale wherever.
    w.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        check("203.0.113.9", FIREFOX),
        "expired",
        "tokens live an hour"
    );
}

#[test]
fn a_token_without_a_context_never_meets_the_term() {
    let w = world();
    let guard = w.guard("level 2 within 1h and same_context".parse().unwrap());
    let now = w.clock.now();
    let plain = w
        .tokens
        .issuer()
        .issue(&w.user, Proof::new(Method::Totp, now), None, now)
        .unwrap()
        .into_value();
    let request = w.request("203.0.113.9", FIREFOX, &plain);
    assert_eq!(
        reason(guard.check(&request, &request, Some(w.user.clone()))),
        "other_context"
    );
    // Without a client context in the settings, the term is never met either.
    let token = w.token_from("203.0.113.9", FIREFOX);
    let off = Settings::new(w.tokens.gate(), "https://bank.example")
        .with_clock(w.clock.clone())
        .without_client_context()
        .guard::<Request>("level 2 within 1h and same_context".parse().unwrap())
        .client_address(|r: &Request| r.from);
    let request = w.request("203.0.113.9", FIREFOX, &token);
    assert_eq!(
        reason(off.check(&request, &request, Some(w.user.clone()))),
        "other_context"
    );
}

#[test]
fn the_risk_hook_sees_the_facts_and_picks_the_policy() {
    let w = world();
    let seen: Arc<Mutex<Vec<Heard>>> = Arc::default();
    let heard = seen.clone();
    let guard = w
        .settings
        .guard_by_risk(
            move |r: &Request, facts: &stepup_http::RiskFacts<'_>| {
                heard
                    .lock()
                    .unwrap()
                    .push((facts.assurance.is_some(), facts.same_context));
                // The application's own rule: a network in 198.51.100.0/24
                // is alarming; a new context elevated.
                match (r.from, facts.same_context) {
                    (Some(IpAddr::V4(v4)), _) if v4.octets()[..3] == [198, 51, 100] => Risk::High,
                    (_, Some(false)) => Risk::Elevated,
                    _ => Risk::Low,
                }
            },
            RiskPolicies::new(
                "level 2 within 1h".parse().unwrap(),
                "level 2 within 5m".parse().unwrap(),
                "passkey within 1m".parse().unwrap(),
            ),
        )
        .client_address(|r: &Request| r.from);
    let token = w.token_from("203.0.113.9", FIREFOX);
    w.clock.advance(Duration::from_secs(10 * 60));
    let check = |from: &str, agent: &str| {
        let request = w.request(from, agent, &token);
        reason(guard.check(&request, &request, Some(w.user.clone())))
    };
    assert_eq!(check("203.0.113.9", FIREFOX), "allowed", "low: an hour");
    assert_eq!(
        check("203.0.113.9", CHROME),
        "stale",
        "elevated: five minutes"
    );
    assert_eq!(
        check("198.51.100.7", FIREFOX),
        "missing_method",
        "high: a passkey"
    );
    // Without a token the hook hears no assurance and no context.
    let anonymous = Request {
        from: Some("203.0.113.9".parse().unwrap()),
        headers: Vec::new(),
    };
    assert_eq!(
        reason(guard.check(&anonymous, &anonymous, Some(w.user.clone()))),
        "no_assurance"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (true, Some(true)),
            (true, Some(false)),
            (true, Some(false)),
            (false, None)
        ]
    );
}

#[test]
fn a_request_without_an_address_is_never_in_the_same_context() {
    let w = world();
    let guard = w.guard("level 2 within 1h and same_context".parse().unwrap());
    let token = w.token_from("203.0.113.9", FIREFOX);
    let mut request = w.request("203.0.113.9", FIREFOX, &token);
    assert_eq!(
        reason(guard.check(&request, &request, Some(w.user.clone()))),
        "allowed"
    );
    // The same browser without an address (no peer, no ClientAddress): no
    // context, so never the same — not "every addressless client alike".
    request.from = None;
    assert_eq!(
        reason(guard.check(&request, &request, Some(w.user.clone()))),
        "other_context"
    );
    assert_eq!(
        ContextSettings::default().context(None, Some(FIREFOX.as_bytes())),
        None
    );
}
