//! The step-up funnel: journeys opened by a guard's refusal, closed by a
//! success, or counted as abandoned once the funnel window passes without
//! one — on any instance (a success leaves a mark in the state store that
//! the instance holding the journey reads before it says "abandoned").

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use stepup_core::{Method, Subject, Timestamp};
use stepup_http::{Challenged, Funnel, Via};

use super::Engine;
use super::events::Reason;
use crate::event::EventKind;
use crate::keys::StoreKeys;
use crate::store::{FactorStore, PasswordVerifier, StateStore};

/// At most this many open journeys per instance; past it a refusal is
/// still a `challenged` event, but opens no journey (logged once per
/// refusal): its end is not counted.
const MAX_JOURNEYS: usize = 100_000;

/// At most this many bytes of a route or policy are kept (a path is the
/// client's to choose).
const MAX_TEXT: usize = 200;

/// `text`, cut to at most [`MAX_TEXT`] bytes on a character boundary.
fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// At most this many due journeys are looked at per challenge request.
const SWEEP_BATCH: usize = 16;

/// How long a journey waits for its success by default.
pub(super) const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// What a journey's events carry: where it started.
#[derive(Clone, Debug)]
pub(super) struct Journey {
    seq: u64,
    route: String,
    policy: String,
    via: Via,
    started: Timestamp,
    /// The state store key of the subject's success mark.
    done_key: String,
}

/// The open journeys of this instance, by subject digest, and their
/// deadlines in the order they were opened (the window is fixed, so that
/// is deadline order).
#[derive(Debug, Default)]
pub(super) struct Journeys {
    open: HashMap<String, Journey>,
    deadlines: VecDeque<(Timestamp, String, u64)>,
    seq: u64,
    /// The cap was reached (and said so) since the last sweep.
    full: bool,
}

impl Journeys {
    fn lock(journeys: &Mutex<Journeys>) -> std::sync::MutexGuard<'_, Journeys> {
        // A panic elsewhere while holding it leaves counts, not access.
        journeys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where an event came from in the funnel: its journey's route, policy
/// and via.
#[derive(Clone, Debug, Default)]
pub(super) struct Origin {
    pub(super) route: Option<String>,
    pub(super) policy: Option<String>,
    pub(super) via: Option<Via>,
}

impl From<&Journey> for Origin {
    fn from(journey: &Journey) -> Origin {
        Origin {
            route: Some(journey.route.clone()),
            policy: Some(journey.policy.clone()),
            via: Some(journey.via),
        }
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Engine<F, S, P> {
    /// How long a journey (opened by a guard's refusal) waits for a
    /// success before it is counted [`Abandoned`](EventKind::Abandoned):
    /// 15 minutes by default.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_challenge::{Engine, MemoryFactorStore, MemoryStateStore};
    /// use stepup_core::{Key, KeyId, KeyRing, TokenConfig};
    ///
    /// let tokens = TokenConfig::new(KeyRing::new(Key::from_bytes(KeyId::new(1), &[7u8; 32])?));
    /// let engine = Engine::new(tokens.issuer(), MemoryFactorStore::new(), MemoryStateStore::default())
    ///     .with_event_sink(|e: &stepup_challenge::Event| println!("{e}"))
    ///     .with_funnel_window(Duration::from_secs(5 * 60));
    /// # let _ = engine;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_funnel_window(mut self, window: Duration) -> Self {
        self.funnel_window = window;
        self
    }

    /// The funnel's origin of `subject`'s events: its open journey here.
    pub(super) fn origin(&self, digest: &str) -> Origin {
        if self.events.is_none() {
            return Origin::default();
        }
        Journeys::lock(&self.journeys)
            .open
            .get(digest)
            .map(Origin::from)
            .unwrap_or_default()
    }

    /// Records the challenge page shown to `subject`.
    pub fn page_shown(&self, subject: &Subject) {
        self.emit_funnel(EventKind::PageShown, None, subject, None);
    }

    /// Records that `subject` started `method` (a code sent, a passkey
    /// ceremony begun).
    pub(super) fn method_started(&self, subject: &Subject, method: Method) {
        self.emit_funnel(EventKind::MethodStarted, Some(method), subject, None);
    }

    /// Records that `subject` was sent to an upstream identity provider to
    /// prove `method` ([`Upstream`](crate::Upstream); the challenge routes
    /// call this).
    pub(crate) fn upstream_started(&self, subject: &Subject, method: Method) {
        self.method_started(subject, method);
    }

    /// Records how `subject`'s upstream step-up ended: a success with
    /// `method` (the journey closed, like any step-up), or the failure
    /// `error` (a `failed` event, reason its code).
    pub(crate) async fn upstream_finished(
        &self,
        subject: &Subject,
        outcome: Result<Method, &crate::UpstreamError>,
    ) {
        match outcome {
            Ok(method) => self.funnel_succeeded(subject, method).await,
            Err(error) => self.emit_funnel(
                EventKind::Failed,
                None,
                subject,
                Some(super::events::Reason::Upstream(error.code())),
            ),
        }
    }

    /// Records that a form `subject` kept across a step-up went ahead to
    /// `target` (its path and query; the event carries the path).
    pub(super) fn resumed(&self, subject: &Subject, target: &str) {
        let digest = self.subject_digest(subject);
        let route = target.split(['?', '#']).next().unwrap_or(target);
        let origin = Origin {
            route: Some(bounded(route)),
            ..Origin::default()
        };
        self.emit_event(EventKind::Resumed, None, digest, None, origin);
    }

    /// Records `subject`'s success with `method`: the event, the journey
    /// closed, and (when events are listened to) the mark other instances
    /// read before counting their journey of `subject` abandoned.
    pub(super) async fn funnel_succeeded(&self, subject: &Subject, method: Method) {
        let digest = self.subject_digest(subject);
        let journey = if self.events.is_some() {
            Journeys::lock(&self.journeys).open.remove(&digest)
        } else {
            None
        };
        let origin = journey.as_ref().map(Origin::from).unwrap_or_default();
        self.emit_event(EventKind::Succeeded, Some(method), digest, None, origin);
        if self.events.is_some() {
            let key = StoreKeys::funnel_done(&self.keys.subject(subject));
            let now = self.clock.now().as_unix_seconds().to_string().into_bytes();
            // Kept for two windows: a journey is counted after its window
            // passes, by a sweep that may come up to a window late.
            let ttl = self.funnel_window.saturating_mul(2);
            if let Err(e) = self.state.put(&key, now, ttl).await {
                tracing::warn!(target: "stepup::challenge", error = %e, "the funnel's success mark was not kept: another instance may count this journey abandoned");
            }
        }
    }

    /// Counts the journeys whose window has passed without a success as
    /// [`Abandoned`](EventKind::Abandoned) (a success on another instance,
    /// seen in the state store, closes them silently) and returns how many
    /// were. The challenge routes look at a few due journeys on every
    /// request; call this every minute or so too (a quiet instance would otherwise count late, and
    /// a success on another instance is remembered for one window after
    /// the journey's: a sweep later than that counts it abandoned).
    ///
    /// ```
    /// # async fn sweep(engine: &stepup_challenge::Engine<stepup_challenge::MemoryFactorStore, stepup_challenge::MemoryStateStore>) {
    /// let abandoned = engine.sweep_abandoned().await;
    /// # let _ = abandoned;
    /// # }
    /// ```
    pub async fn sweep_abandoned(&self) -> usize {
        self.sweep(usize::MAX).await
    }

    /// [`sweep_abandoned`](Engine::sweep_abandoned) for the challenge
    /// routes: at most a few due journeys per request, so the request that
    /// calls it pays at most that many state store reads.
    pub(crate) async fn sweep_some(&self) -> usize {
        self.sweep(SWEEP_BATCH).await
    }

    async fn sweep(&self, most: usize) -> usize {
        if self.events.is_none() {
            return 0;
        }
        let now = self.clock.now();
        let mut abandoned = 0;
        for _ in 0..most {
            let due = {
                let mut journeys = Journeys::lock(&self.journeys);
                journeys.full = false;
                match journeys.deadlines.front() {
                    Some((deadline, _, _)) if *deadline <= now => {}
                    _ => break,
                }
                let Some((_, digest, seq)) = journeys.deadlines.pop_front() else {
                    break;
                };
                // A journey closed (or reopened) since is not this one.
                match journeys.open.get(&digest) {
                    Some(journey) if journey.seq == seq => {
                        journeys.open.remove(&digest).map(|j| (digest, j))
                    }
                    _ => None,
                }
            };
            let Some((digest, journey)) = due else {
                continue;
            };
            match self.state.get(&journey.done_key).await {
                Ok(Some(mark))
                    if std::str::from_utf8(&mark)
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                        .is_some_and(|t| t >= journey.started.as_unix_seconds()) => {}
                Ok(_) => {
                    abandoned += 1;
                    let origin = Origin::from(&journey);
                    self.emit_event(EventKind::Abandoned, None, digest, None, origin);
                }
                Err(e) => {
                    tracing::warn!(target: "stepup::challenge", error = %e, "a journey's end is unknown: the state store cannot answer");
                }
            }
        }
        abandoned
    }

    /// Emits an event for `subject`, carrying its open journey's origin.
    pub(super) fn emit_funnel(
        &self,
        kind: EventKind,
        method: Option<Method>,
        subject: &Subject,
        reason: Option<Reason>,
    ) {
        let digest = self.subject_digest(subject);
        let origin = self.origin(&digest);
        self.emit_event(kind, method, digest, reason, origin);
    }
}

impl<F: FactorStore, S: StateStore, P: PasswordVerifier> Funnel for Engine<F, S, P> {
    fn challenged(&self, challenged: &Challenged<'_>) {
        let digest = self.subject_digest(challenged.subject);
        let now = self.clock.now();
        let journey = if self.events.is_some() {
            let mut journeys = Journeys::lock(&self.journeys);
            if journeys.open.contains_key(&digest) {
                // Part of the journey already open.
                return;
            }
            if journeys.open.len() >= MAX_JOURNEYS {
                if !journeys.full {
                    // Once until the next sweep frees room: not per refusal.
                    journeys.full = true;
                    tracing::warn!(target: "stepup::challenge", "too many open step-up journeys: new ones' ends are not counted until older ones end");
                }
                None
            } else {
                journeys.seq += 1;
                let journey = Journey {
                    seq: journeys.seq,
                    route: bounded(challenged.route),
                    policy: bounded(challenged.policy),
                    via: challenged.via,
                    started: now,
                    done_key: StoreKeys::funnel_done(&self.keys.subject(challenged.subject)),
                };
                let deadline = now.saturating_add(self.funnel_window);
                journeys
                    .deadlines
                    .push_back((deadline, digest.clone(), journey.seq));
                journeys.open.insert(digest.clone(), journey.clone());
                Some(journey)
            }
        } else {
            None
        };
        let origin = match &journey {
            Some(journey) => Origin::from(journey),
            None => Origin {
                route: Some(bounded(challenged.route)),
                policy: Some(bounded(challenged.policy)),
                via: Some(challenged.via),
            },
        };
        self.emit_event(
            EventKind::Challenged,
            None,
            digest,
            Some(Reason::Challenge(challenged.reason)),
            origin,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("/keys"), "/keys");
        let long = "é".repeat(150);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_TEXT && cut.len() >= MAX_TEXT - 1);
        assert!(long.starts_with(&cut));
    }
}
