//! The two operations a step-up needs from the state store, each one
//! atomic step on a shared store (one Lua script on Redis): the
//! **admission** of an attempt (lockouts and budgets checked and counted
//! before a factor is verified) and the **commit** of a success (the TOTP
//! step recorded, the counters started over).
//!
//! The engine builds the requests (keys and limits); a store runs them.
//! [`StateStore::admit`] and [`StateStore::commit`] have default
//! implementations over the store's other operations ([`admit_with`],
//! [`commit_with`]): correct, one round trip per operation. A shared store
//! overrides them to make each one round trip (`stepup-redis` does); the
//! contract suite (`state_store_contract!`) holds every store to the same
//! outcomes.
//!
//! Values the two operations keep (a lockout's end, a budget's generation)
//! are decimal ASCII, so a script and these defaults read each other's.

use std::time::Duration;

use crate::error::StoreError;
use crate::state::StateStore;

/// How long a budget's lock generation is remembered: longer than any
/// window.
pub const GENERATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long consecutive lockouts keep doubling the next one.
pub const BACKOFF_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// How long a consecutive-failure count and a disabled method are kept.
pub const CONSECUTIVE_MEMORY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The keys of one windowed attempt budget.
///
/// Attempts are counted per *generation*: every lockout starts a new one,
/// so attempts after a lockout count from zero while attempts racing with
/// the lockout keep counting in the old, exhausted one. The attempts of
/// generation `g` are counted under `attempts` followed by `g` in decimal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetKeys {
    /// The prefix of the attempt counters (the generation is appended).
    pub attempts: String,
    /// The lockout: its end in Unix seconds, for as long as it lasts.
    pub lock: String,
    /// The current generation.
    pub generation: String,
    /// The lockouts within [`BACKOFF_MEMORY`] (each doubles the next).
    pub backoff: String,
}

impl BudgetKeys {
    /// The counter of generation `generation`.
    pub fn attempts_of(&self, generation: u64) -> String {
        format!("{}{generation}", self.attempts)
    }
}

/// One windowed budget of an admission: its keys and how many attempts it
/// allows within `window`; the attempt past it locks for `first_lockout`,
/// doubled for each earlier lockout within [`BACKOFF_MEMORY`] (at most
/// `max_lockout`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Where it counts.
    pub keys: BudgetKeys,
    /// Attempts allowed within the window.
    pub allowed: u64,
    /// The window (fixed from the first attempt).
    pub window: Duration,
    /// The first lockout.
    pub first_lockout: Duration,
    /// The longest lockout.
    pub max_lockout: Duration,
}

/// A consecutive-failure cap: counted on every attempt, started over only
/// by a success ([`Commit::consecutive`]); past `cap` the method is
/// disabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consecutive {
    /// The count.
    pub key: String,
    /// Attempts allowed in a row without a success.
    pub cap: u64,
}

/// Everything checked and counted before one attempt is verified.
///
/// In order: a disabled method stops it (nothing counted); then each
/// budget: a lockout stops it, else the attempt is counted, and the one
/// attempt that goes past the budget locks it (and starts a new
/// generation); a later budget is not counted when an earlier one stops
/// the attempt. Then the consecutive count: past its cap, the method is
/// disabled (`disabled` and `any_disabled` set for [`CONSECUTIVE_MEMORY`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admit {
    /// Now, in Unix seconds (lockouts are compared with it).
    pub now: u64,
    /// Set while the method is disabled.
    pub disabled: String,
    /// Set while any method of the subject is disabled.
    pub any_disabled: String,
    /// The budgets, in order.
    pub budgets: Vec<Budget>,
    /// The consecutive-failure cap, if the method has one.
    pub consecutive: Option<Consecutive>,
}

/// What an admission decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Counted; the attempt may be verified. `left`: the fewest attempts
    /// any budget has left after this one (`u64::MAX` without budgets);
    /// `consecutive`: the consecutive count, this attempt included.
    Yes {
        /// Attempts left in the tightest budget.
        left: u64,
        /// The consecutive count, if the method has a cap.
        consecutive: Option<u64>,
    },
    /// A budget is locked until this Unix second.
    LockedOut {
        /// The lockout's end.
        until: u64,
    },
    /// The method is disabled; `just_now` on the attempt that disabled it.
    Disabled {
        /// Whether this attempt disabled it.
        just_now: bool,
    },
}

/// A TOTP step to record as used (compare-and-set, as
/// [`StateStore::advance`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advance {
    /// The step's key.
    pub key: String,
    /// The step.
    pub step: u64,
    /// How long it is remembered.
    pub ttl: Duration,
}

/// A method to enable again after a success with a stronger one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reenable {
    /// Its disabled flag.
    pub disabled: String,
    /// Its consecutive count, started over with it.
    pub consecutive: Option<String>,
}

/// What a success changes, at once.
///
/// In order: `advance`, if any — when the step is not newer, nothing else
/// happens (the code was used: [`Committed::advanced`] is `false`). Then
/// each budget in `reset` starts over (its current generation's count and
/// its backoff removed), `consecutive` is removed, the methods in
/// `reenable` that are disabled are enabled again (looked at only while
/// `any_disabled` is set), and `take` is removed (and said whether it was
/// there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The TOTP step to record first.
    pub advance: Option<Advance>,
    /// The budgets to start over.
    pub reset: Vec<BudgetKeys>,
    /// The consecutive count to start over.
    pub consecutive: Option<String>,
    /// Set while any method of the subject is disabled.
    pub any_disabled: String,
    /// The methods to enable again.
    pub reenable: Vec<Reenable>,
    /// An entry to remove, reporting whether it was there.
    pub take: Option<String>,
}

/// What a commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The step was recorded (always `true` without one); when `false`,
    /// nothing else was done.
    pub advanced: bool,
    /// The entry `take` named was there (and is gone).
    pub taken: bool,
}

/// A decimal number kept by these operations.
fn number(bytes: Option<Vec<u8>>) -> Option<u64> {
    std::str::from_utf8(&bytes?).ok()?.parse().ok()
}

fn decimal(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Seconds of `d`, at least 1.
fn seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// [`StateStore::admit`] over the store's single-key operations: the
/// default implementation, and the reference for scripts.
pub async fn admit_with<S: StateStore + ?Sized>(
    store: &S,
    request: &Admit,
) -> Result<Admitted, StoreError> {
    if store.get(&request.disabled).await?.is_some() {
        return Ok(Admitted::Disabled { just_now: false });
    }
    let mut left = u64::MAX;
    for budget in &request.budgets {
        let keys = &budget.keys;
        let generation = number(store.get(&keys.generation).await?).unwrap_or(0);
        if let Some(until) = number(store.get(&keys.lock).await?).filter(|u| *u > request.now) {
            return Ok(Admitted::LockedOut { until });
        }
        let n = store
            .increment(&keys.attempts_of(generation), budget.window)
            .await?;
        if n <= budget.allowed {
            left = left.min(budget.allowed - n);
            continue;
        }
        if n > budget.allowed + 1 {
            // A racing attempt past the one that locked: report that lock.
            let until = number(store.get(&keys.lock).await?)
                .unwrap_or(request.now.saturating_add(seconds(budget.first_lockout)));
            return Ok(Admitted::LockedOut { until });
        }
        // Exactly one attempt crosses the budget: it locks, with doubling.
        let lockouts = store.increment(&keys.backoff, BACKOFF_MEMORY).await?;
        let length = lockout(budget, lockouts);
        let until = request.now.saturating_add(seconds(length));
        store.put(&keys.lock, decimal(until), length).await?;
        store
            .put(&keys.generation, decimal(generation + 1), GENERATION_TTL)
            .await?;
        return Ok(Admitted::LockedOut { until });
    }
    let Some(consecutive) = &request.consecutive else {
        return Ok(Admitted::Yes {
            left,
            consecutive: None,
        });
    };
    let n = store
        .increment(&consecutive.key, CONSECUTIVE_MEMORY)
        .await?;
    if n > consecutive.cap {
        store
            .put(&request.disabled, b"1".to_vec(), CONSECUTIVE_MEMORY)
            .await?;
        store
            .put(&request.any_disabled, b"1".to_vec(), CONSECUTIVE_MEMORY)
            .await?;
        return Ok(Admitted::Disabled {
            just_now: n == consecutive.cap + 1,
        });
    }
    Ok(Admitted::Yes {
        left,
        consecutive: Some(n),
    })
}

/// The lockout after `lockouts` lockouts within the backoff memory: the
/// first, doubled for each earlier one, at most the budget's longest.
pub fn lockout(budget: &Budget, lockouts: u64) -> Duration {
    let doublings = u32::try_from(lockouts.saturating_sub(1))
        .unwrap_or(u32::MAX)
        .min(30);
    budget
        .first_lockout
        .saturating_mul(1u32 << doublings)
        .min(budget.max_lockout)
}

/// [`StateStore::commit`] over the store's single-key operations: the
/// default implementation, and the reference for scripts.
pub async fn commit_with<S: StateStore + ?Sized>(
    store: &S,
    request: &Commit,
) -> Result<Committed, StoreError> {
    if let Some(advance) = &request.advance
        && !store
            .advance(&advance.key, advance.step, advance.ttl)
            .await?
    {
        return Ok(Committed {
            advanced: false,
            taken: false,
        });
    }
    for keys in &request.reset {
        let generation = number(store.get(&keys.generation).await?).unwrap_or(0);
        store.remove(&keys.attempts_of(generation)).await?;
        store.remove(&keys.backoff).await?;
    }
    if let Some(consecutive) = &request.consecutive {
        store.remove(consecutive).await?;
    }
    // Only a *disabled* method comes back: the consecutive count of one
    // still enabled keeps running.
    if !request.reenable.is_empty() && store.get(&request.any_disabled).await?.is_some() {
        for other in &request.reenable {
            if store.get(&other.disabled).await?.is_some() {
                store.remove(&other.disabled).await?;
                if let Some(consecutive) = &other.consecutive {
                    store.remove(consecutive).await?;
                }
            }
        }
    }
    let taken = match &request.take {
        Some(key) => store.take(key).await?.is_some(),
        None => false,
    };
    Ok(Committed {
        advanced: true,
        taken,
    })
}
