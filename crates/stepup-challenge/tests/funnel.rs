//! The funnel's journeys at the engine: opened by a guard's refusal (once
//! per subject while open), closed by a success on this or another
//! instance sharing the state store, counted abandoned once the window
//! passes without one — and not tracked at all without an event sink.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use stepup_challenge::{
    Attempt, Engine, Event, EventKind, InsecureFixedPasswords, MemoryFactorStore, MemoryStateStore,
};
use stepup_core::{Key, KeyId, KeyRing, Subject, TestClock, Timestamp, TokenConfig};
use stepup_http::{Challenged, Funnel, Via};

const T0: Timestamp = Timestamp::from_unix_seconds(1_700_000_010);

type TestEngine = Engine<MemoryFactorStore, MemoryStateStore, InsecureFixedPasswords>;

/// An instance: its engine and what its sink heard.
struct Instance {
    engine: TestEngine,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Instance {
    fn kinds(&self) -> Vec<EventKind> {
        self.events.lock().unwrap().iter().map(|e| e.kind).collect()
    }
}

/// An instance on `state` (shared between instances) with an event sink.
fn instance(clock: &TestClock, state: &MemoryStateStore) -> Instance {
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let heard = events.clone();
    let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), state.clone())
        .with_clock(clock.clone())
        .with_event_key([1u8; 32])
        .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]))
        .with_event_sink(move |e: &Event| heard.lock().unwrap().push(e.clone()))
        .with_funnel_window(Duration::from_secs(600));
    Instance { engine, events }
}

fn refuse(engine: &TestEngine, subject: &Subject, route: &str) {
    engine.challenged(&Challenged::new(
        subject,
        route,
        "level 2 within 5m",
        "no_assurance",
        Via::Browser,
    ));
}

#[tokio::test]
async fn a_journey_is_one_challenge_then_one_end() {
    let clock = TestClock::new(T0);
    let state = MemoryStateStore::new(clock.clone());
    let a = instance(&clock, &state);
    let alice = Subject::new("alice").with_session("s1");
    refuse(&a.engine, &alice, "/keys");
    refuse(&a.engine, &alice, "/keys");
    refuse(&a.engine, &alice, "/other");
    assert_eq!(a.kinds(), [EventKind::Challenged], "one journey");
    a.engine
        .step_up_password(Attempt::new(&alice), "wonderland")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(601));
    assert_eq!(a.engine.sweep_abandoned().await, 0, "it succeeded");
    assert_eq!(a.kinds(), [EventKind::Challenged, EventKind::Succeeded]);
    let events = a.events.lock().unwrap().clone();
    assert_eq!(events[1].route.as_deref(), Some("/keys"));
    // The next refusal opens a new journey, which is abandoned.
    refuse(&a.engine, &alice, "/keys");
    clock.advance(Duration::from_secs(599));
    assert_eq!(a.engine.sweep_abandoned().await, 0, "not yet");
    clock.advance(Duration::from_secs(1));
    assert_eq!(a.engine.sweep_abandoned().await, 1);
    assert_eq!(a.engine.sweep_abandoned().await, 0, "counted once");
    assert_eq!(
        a.kinds(),
        [
            EventKind::Challenged,
            EventKind::Succeeded,
            EventKind::Challenged,
            EventKind::Abandoned
        ]
    );
}

#[tokio::test]
async fn a_success_on_another_instance_ends_the_journey() {
    let clock = TestClock::new(T0);
    let state = MemoryStateStore::new(clock.clone());
    let (a, b) = (instance(&clock, &state), instance(&clock, &state));
    let alice = Subject::new("alice").with_session("s1");
    let bob = Subject::new("bob").with_session("s2");
    refuse(&a.engine, &alice, "/keys");
    refuse(&a.engine, &bob, "/keys");
    // Alice steps up on B (no journey there: its success carries no route).
    b.engine
        .step_up_password(Attempt::new(&alice), "wonderland")
        .await
        .unwrap();
    assert_eq!(b.kinds(), [EventKind::Succeeded]);
    assert_eq!(b.events.lock().unwrap()[0].route, None);
    clock.advance(Duration::from_secs(601));
    // A counts only bob's journey abandoned.
    assert_eq!(a.engine.sweep_abandoned().await, 1);
    let events = a.events.lock().unwrap().clone();
    let abandoned: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Abandoned)
        .collect();
    assert_eq!(abandoned.len(), 1);
    assert_eq!(abandoned[0].subject, events[1].subject, "bob's journey");
}

#[tokio::test]
async fn a_success_before_the_journey_does_not_end_it() {
    let clock = TestClock::new(T0);
    let state = MemoryStateStore::new(clock.clone());
    let (a, b) = (instance(&clock, &state), instance(&clock, &state));
    let alice = Subject::new("alice").with_session("s1");
    b.engine
        .step_up_password(Attempt::new(&alice), "wonderland")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(60));
    // Refused later (another route wants more): that journey is new.
    refuse(&a.engine, &alice, "/keys");
    clock.advance(Duration::from_secs(601));
    assert_eq!(a.engine.sweep_abandoned().await, 1);
}

#[tokio::test]
async fn without_a_sink_nothing_is_tracked() {
    let clock = TestClock::new(T0);
    let state = MemoryStateStore::new(clock.clone());
    let config = TokenConfig::new(KeyRing::new(
        Key::from_bytes(KeyId::new(1), &[4u8; 32]).unwrap(),
    ));
    let engine = Engine::new(config.issuer(), MemoryFactorStore::new(), state)
        .with_clock(clock.clone())
        .with_passwords(InsecureFixedPasswords::new([("alice", "wonderland")]));
    let alice = Subject::new("alice");
    for i in 0..1000 {
        refuse(&engine, &Subject::new(format!("user{i}")), "/keys");
    }
    engine
        .step_up_password(Attempt::new(&alice), "wonderland")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(engine.sweep_abandoned().await, 0);
}
