//! What a route requires: levels and methods, each with a maximum age.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::assurance::{MAX_PROOFS, Proof};
use crate::challenge::ChallengeReason;
use crate::level::LevelTable;
use crate::method::Method;
use crate::policy_syntax::{self, PolicyParseError};
use crate::time::Timestamp;

/// What a route requires before it runs: a level, a method, or an expression
/// of them, each with an optional maximum age, plus an optional reason shown to
/// the user.
///
/// Freshness is per method: a policy is checked against the time each method
/// was last proven, never against the token's own expiry alone. A method
/// term is met by any proof that [satisfies](Method::satisfies) it: a
/// device-bound passkey meets `passkey`, a synced one never meets
/// `device_bound_passkey`. A term
/// without a maximum age is satisfied by any proof the (unexpired) token holds.
/// A proof exactly `max_age` old is still fresh; one second more is not.
///
/// Built with the typed builder …
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Method, Policy};
///
/// const MIN: u64 = 60;
/// let transfer = Policy::level(2)
///     .max_age(Duration::from_secs(5 * MIN))
///     .with_reason("We need to confirm it's really you before moving money.");
///
/// // passkey within 5m OR (password within 15m AND totp within 5m)
/// let security = Policy::method(Method::Passkey)
///     .max_age(Duration::from_secs(5 * MIN))
///     .or(Policy::method(Method::Password)
///         .max_age(Duration::from_secs(15 * MIN))
///         .and(Policy::method(Method::Totp).max_age(Duration::from_secs(5 * MIN))));
///
/// // … or parsed from configuration, with the same meaning:
/// let parsed: Policy = "passkey within 5m or (password within 15m and totp within 5m)".parse()?;
/// assert_eq!(parsed, security);
/// assert_eq!("passkey(5m) | (password(15m) & totp(5m))".parse::<Policy>()?, security);
/// assert_eq!(security.to_string(), "passkey within 5m or (password within 15m and totp within 5m)");
/// assert_eq!(transfer.reason(), Some("We need to confirm it's really you before moving money."));
/// # Ok::<(), stepup_core::PolicyParseError>(())
/// ```
///
/// The expression syntax: terms are `level N` or a method name (`password`,
/// `totp`, `device_bound_passkey`, `passkey`, `email_code`, `sms_code`,
/// `recovery_code`, `custom:<name>`), each optionally followed by `within <duration>` or
/// `(<duration>)`; durations are sums of `<n>d`, `<n>h`, `<n>m`, `<n>s`
/// (`1h30m`); terms combine with `and`/`&` (binds tighter) and `or`/`|`, and
/// parentheses group. Keywords are case-insensitive; method names are not.
/// The term `bound` (no duration) asks for a single-use grant for the
/// request's exact action ([`Policy::bound`]): `level 2 within 5m and bound`.
/// The term `same_context` (no duration) asks that the request come from
/// the network and browser the step-up was made in ([`Policy::same_context`]):
/// `level 2 within 1h and same_context or level 2 within 5m`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    requirement: Requirement,
    reason: Option<Arc<str>>,
}

/// The requirement tree inside a [`Policy`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    /// The methods proven within `max_age` reach at least level `rank`.
    Level {
        /// The minimum rank.
        rank: u8,
        /// How old the proofs counted may be; `None`: any proof in the token.
        max_age: Option<Duration>,
    },
    /// `method` was proven within `max_age`.
    Method {
        /// The method.
        method: Method,
        /// How old the proof may be; `None`: any proof in the token.
        max_age: Option<Duration>,
    },
    /// At least one of these holds.
    Any(Vec<Requirement>),
    /// All of these hold.
    All(Vec<Requirement>),
    /// The request's exact action was confirmed by a step-up made for it:
    /// a single-use grant for its digest, which the route consumes. An
    /// assurance token alone never meets it (see
    /// [`Assurance::require_granted`](crate::Assurance::require_granted)).
    Bound,
    /// The request comes from the client context (network, browser) the
    /// token was minted in ([`Gate::same_context`](crate::Gate::same_context)).
    /// Combined with a longer age it says "an hour on the same network and
    /// browser, else five minutes".
    SameContext,
}

/// What a policy is checked against besides the proofs: facts of the
/// request that the token cannot carry.
///
/// ```
/// use stepup_core::Facts;
/// let facts = Facts::default().with_same_context(true);
/// assert!(facts.same_context && !facts.granted);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Facts {
    /// A single-use grant for the request's exact action was taken (what
    /// meets [`Requirement::Bound`]).
    pub granted: bool,
    /// The request comes from the client context the token was minted in
    /// (what meets [`Requirement::SameContext`]).
    pub same_context: bool,
}

impl Facts {
    /// With `granted`.
    #[must_use]
    pub fn with_granted(mut self, granted: bool) -> Facts {
        self.granted = granted;
        self
    }

    /// With `same_context`.
    #[must_use]
    pub fn with_same_context(mut self, same_context: bool) -> Facts {
        self.same_context = same_context;
        self
    }
}

/// The longest maximum age a policy may state: one year.
pub(crate) const MAX_AGE_LIMIT: Duration = Duration::from_secs(366 * 24 * 3600);

impl Policy {
    /// Requires at least level `rank` of the deployment's
    /// [`LevelTable`].
    pub fn level(rank: u8) -> Policy {
        Policy::from(Requirement::Level {
            rank,
            max_age: None,
        })
    }

    /// Requires a step-up bound to the request's exact action (a
    /// single-use grant), composed with the rest like any term:
    /// `Policy::level(2).and(Policy::bound())` is `level 2 and bound`.
    ///
    /// ```
    /// use stepup_core::Policy;
    /// let big = Policy::level(2).and(Policy::bound());
    /// assert!(big.is_bound());
    /// assert_eq!(big.to_string(), "level 2 and bound");
    /// assert_eq!("level 2 within 5m and bound".parse::<Policy>()?.to_string(), "level 2 within 5m and bound");
    /// assert!(!Policy::level(2).is_bound());
    /// # Ok::<(), stepup_core::PolicyParseError>(())
    /// ```
    pub fn bound() -> Policy {
        Policy::from(Requirement::Bound)
    }

    /// Whether the policy has a [`Bound`](Requirement::Bound) term: a
    /// route with it needs its action declared, so a grant can be
    /// looked for.
    pub fn is_bound(&self) -> bool {
        let mut bound = false;
        self.requirement.each_leaf(&mut |leaf| {
            bound |= matches!(leaf, Requirement::Bound);
        });
        bound
    }

    /// Requires that the request come from the client context (network
    /// prefix, browser family) the step-up was made in — composed like any
    /// term: "level 2 within 1h on the same network and browser, else
    /// level 2 within 5m" is
    /// `level(2).max_age(1h).and(same_context()).or(level(2).max_age(5m))`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use stepup_core::Policy;
    /// let statements = Policy::level(2)
    ///     .max_age(Duration::from_secs(3600))
    ///     .and(Policy::same_context())
    ///     .or(Policy::level(2).max_age(Duration::from_secs(300)));
    /// assert!(statements.needs_context());
    /// assert_eq!(statements.to_string(), "(level 2 within 1h and same_context) or level 2 within 5m");
    /// assert_eq!("level 2 within 1h and same_context or level 2 within 5m".parse::<Policy>()?, statements);
    /// # Ok::<(), stepup_core::PolicyParseError>(())
    /// ```
    pub fn same_context() -> Policy {
        Policy::from(Requirement::SameContext)
    }

    /// Whether the policy has a [`SameContext`](Requirement::SameContext)
    /// term: checking it needs the request's client context.
    pub fn needs_context(&self) -> bool {
        let mut needs = false;
        self.requirement.each_leaf(&mut |leaf| {
            needs |= matches!(leaf, Requirement::SameContext);
        });
        needs
    }

    /// Requires that `method` was proven.
    pub fn method(method: Method) -> Policy {
        Policy::from(Requirement::Method {
            method,
            max_age: None,
        })
    }

    /// Sets the maximum age of every term that does not have one yet.
    ///
    /// Ages are whole seconds (a fraction is dropped) and capped at one year.
    pub fn max_age(mut self, max_age: Duration) -> Policy {
        let age = Duration::from_secs(max_age.as_secs()).min(MAX_AGE_LIMIT);
        self.requirement.default_max_age(age);
        self
    }

    /// Satisfied when `self` or `other` is. The reason of `self` is kept,
    /// else `other`'s.
    pub fn or(self, other: Policy) -> Policy {
        self.combine(other, false)
    }

    /// Satisfied when both `self` and `other` are. The reason of `self` is
    /// kept, else `other`'s.
    pub fn and(self, other: Policy) -> Policy {
        self.combine(other, true)
    }

    fn combine(self, other: Policy, all: bool) -> Policy {
        Policy {
            requirement: Requirement::join(vec![self.requirement, other.requirement], all),
            reason: self.reason.or(other.reason),
        }
    }

    /// A sentence for the user saying why this action needs a step-up
    /// ("We need to confirm it's really you before moving money."). It is
    /// carried into the challenge page and the problem body, never into headers.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Sets the reason shown to the user.
    pub fn with_reason(mut self, reason: impl Into<Arc<str>>) -> Policy {
        self.reason = Some(reason.into());
        self
    }

    /// Parses a policy expression (see the type's documentation for the syntax).
    ///
    /// Both the expression and its canonical text (what `to_string` gives:
    /// ` or ` for `|`, and so on) must fit the length limit, so every policy
    /// that parses prints to text that parses back to it.
    pub fn parse(expression: &str) -> Result<Policy, PolicyParseError> {
        let policy = policy_syntax::parse(expression).map(Policy::from)?;
        if policy.to_string().len() > policy_syntax::MAX_EXPRESSION_LEN {
            return Err(policy_syntax::too_long());
        }
        Ok(policy)
    }

    /// The requirement tree.
    pub fn requirement(&self) -> &Requirement {
        &self.requirement
    }

    /// The strictest maximum age of any term, announced as the challenge's
    /// `max_age`.
    pub fn strictest_max_age(&self) -> Option<Duration> {
        let mut min: Option<Duration> = None;
        self.requirement.each_leaf(&mut |leaf| {
            if let Some(age) = leaf.max_age() {
                min = Some(min.map_or(age, |m| m.min(age)));
            }
        });
        min
    }

    /// The `acr` values that would satisfy the level terms, lowest first.
    /// Empty when the policy names only methods.
    pub fn acr_values<'t>(&self, levels: &'t LevelTable) -> Vec<&'t str> {
        let mut lowest: Option<u8> = None;
        self.requirement.each_leaf(&mut |leaf| {
            if let Requirement::Level { rank, .. } = leaf {
                lowest = Some(lowest.map_or(*rank, |l| l.min(*rank)));
            }
        });
        match lowest {
            Some(rank) => levels.at_least(rank).map(|l| l.acr()).collect(),
            None => Vec::new(),
        }
    }

    /// The methods that can help satisfy this policy, strongest first
    /// (built-in order), then custom methods in the order they appear. A
    /// method term counts every method that [satisfies](Method::satisfies)
    /// it: `passkey` lists `device_bound_passkey` and `passkey`.
    pub fn methods(&self, levels: &LevelTable) -> Vec<Method> {
        let mut named: Vec<Method> = Vec::new();
        let mut min_rank: Option<u8> = None;
        self.requirement.each_leaf(&mut |leaf| match leaf {
            Requirement::Method { method, .. } if !named.contains(method) => named.push(*method),
            Requirement::Level { rank, .. } => {
                min_rank = Some(min_rank.map_or(*rank, |r| r.min(*rank)));
            }
            _ => {}
        });
        let mut out: Vec<Method> = Method::BUILT_IN
            .into_iter()
            .filter(|m| {
                named.iter().any(|n| m.satisfies(n))
                    || min_rank.is_some_and(|r| levels.method_helps_reach(m, r))
            })
            .collect();
        let from_levels = min_rank.map_or_else(Vec::new, |r| levels.custom_methods_from(r));
        for m in named.into_iter().chain(from_levels) {
            if m.is_custom() && !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// Whether `proofs` alone meet this policy at `now` (with `granted`:
    /// a grant for the request's action was taken), ranked by `levels`;
    /// else why not (stale, level, method, or only the grant missing). A
    /// bound route checks the proofs of the step-ups made for its grant,
    /// so a grant never stands for more than they proved.
    ///
    /// ```
    /// use stepup_core::{LevelTable, Method, Policy, Proof, Timestamp};
    /// let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// let big: Policy = "level 2 within 5m and bound".parse()?;
    /// let levels = LevelTable::nist();
    /// assert!(big.met_by(&[Proof::new(Method::Totp, now)], &levels, now, true).is_ok());
    /// assert!(big.met_by(&[Proof::new(Method::Password, now)], &levels, now, true).is_err());
    /// assert!(big.met_by(&[Proof::new(Method::Totp, now)], &levels, now, false).is_err());
    /// # Ok::<(), stepup_core::PolicyParseError>(())
    /// ```
    pub fn met_by(
        &self,
        proofs: &[Proof],
        levels: &LevelTable,
        now: Timestamp,
        granted: bool,
    ) -> Result<(), ChallengeReason> {
        self.met_with(proofs, levels, now, Facts::default().with_granted(granted))
    }

    /// [`met_by`](Policy::met_by) with every fact of the request: when
    /// only the client context is wrong, the reason is
    /// [`OtherContext`](ChallengeReason::OtherContext).
    ///
    /// ```
    /// use stepup_core::{Facts, LevelTable, Method, Policy, Proof, Timestamp};
    /// let now = Timestamp::from_unix_seconds(1_700_000_000);
    /// let p: Policy = "level 2 within 1h and same_context or level 2 within 5m".parse()?;
    /// let half_an_hour_ago = [Proof::new(Method::Totp, Timestamp::from_unix_seconds(1_700_000_000 - 1800))];
    /// let levels = LevelTable::nist();
    /// let here = Facts::default().with_same_context(true);
    /// assert!(p.met_with(&half_an_hour_ago, &levels, now, here).is_ok());
    /// assert_eq!(
    ///     p.met_with(&half_an_hour_ago, &levels, now, Facts::default()),
    ///     Err(stepup_core::ChallengeReason::OtherContext)
    /// );
    /// # Ok::<(), stepup_core::PolicyParseError>(())
    /// ```
    pub fn met_with(
        &self,
        proofs: &[Proof],
        levels: &LevelTable,
        now: Timestamp,
        facts: Facts,
    ) -> Result<(), ChallengeReason> {
        if self.requirement.holds(proofs, levels, now, true, facts) {
            return Ok(());
        }
        // Only the context is in the way, even with a grant: said before
        // "unconfirmed", so a grant is never used up for a request from the
        // wrong context.
        let with_grant = facts.with_granted(true);
        if !facts.same_context
            && !self
                .requirement
                .holds(proofs, levels, now, true, with_grant)
            && self.requirement.holds(
                proofs,
                levels,
                now,
                true,
                with_grant.with_same_context(true),
            )
        {
            return Err(ChallengeReason::OtherContext);
        }
        if !facts.granted
            && self
                .requirement
                .holds(proofs, levels, now, true, facts.with_granted(true))
        {
            // Only the grant is missing.
            return Err(ChallengeReason::Unconfirmed);
        }
        let all = Facts {
            granted: true,
            same_context: true,
        };
        if self.requirement.holds(proofs, levels, now, false, all) {
            return Err(ChallengeReason::Stale);
        }
        let mut only_levels = true;
        self.requirement.each_leaf(&mut |leaf| {
            only_levels &= matches!(
                leaf,
                Requirement::Level { .. } | Requirement::Bound | Requirement::SameContext
            );
        });
        Err(if only_levels {
            ChallengeReason::InsufficientLevel
        } else {
            ChallengeReason::MissingMethod
        })
    }
}

impl Requirement {
    /// Joins terms with `and` (`all`) or `or`, flattening nested joins of
    /// the same kind; a single term stands alone.
    pub(crate) fn join(terms: Vec<Requirement>, all: bool) -> Requirement {
        let mut flat = Vec::with_capacity(terms.len());
        for term in terms {
            match (term, all) {
                (Requirement::All(inner), true) | (Requirement::Any(inner), false) => {
                    flat.extend(inner)
                }
                (single, _) => flat.push(single),
            }
        }
        match (flat.len(), all) {
            (1, _) => flat.pop().unwrap_or(Requirement::All(Vec::new())),
            (_, true) => Requirement::All(flat),
            (_, false) => Requirement::Any(flat),
        }
    }

    fn max_age(&self) -> Option<Duration> {
        match self {
            Requirement::Level { max_age, .. } | Requirement::Method { max_age, .. } => *max_age,
            _ => None,
        }
    }

    fn default_max_age(&mut self, age: Duration) {
        match self {
            Requirement::Level { max_age, .. } | Requirement::Method { max_age, .. } => {
                if max_age.is_none() {
                    *max_age = Some(age);
                }
            }
            Requirement::Any(terms) | Requirement::All(terms) => {
                terms.iter_mut().for_each(|t| t.default_max_age(age))
            }
            Requirement::Bound | Requirement::SameContext => {}
        }
    }

    fn each_leaf(&self, f: &mut dyn FnMut(&Requirement)) {
        match self {
            Requirement::Any(terms) | Requirement::All(terms) => {
                terms.iter().for_each(|t| t.each_leaf(f))
            }
            leaf => f(leaf),
        }
    }

    /// Whether the requirement holds; `check_age: false` ignores every
    /// maximum age (used to tell "stale" from "missing"); `facts`: what
    /// the request brings (a grant taken, the same client context).
    fn holds(
        &self,
        proofs: &[Proof],
        levels: &LevelTable,
        now: Timestamp,
        check_age: bool,
        facts: Facts,
    ) -> bool {
        let fresh = |p: &Proof, max_age: &Option<Duration>| match (check_age, max_age) {
            (true, Some(age)) => now.duration_since(p.at()) <= *age,
            _ => true,
        };
        match self {
            Requirement::Method { method, max_age } => proofs
                .iter()
                .any(|p| p.method().satisfies(method) && fresh(p, max_age)),
            Requirement::Level { rank, max_age } => {
                let mut methods = [Method::Password; MAX_PROOFS];
                let mut n = 0;
                for p in proofs.iter().filter(|p| fresh(p, max_age)).take(MAX_PROOFS) {
                    methods[n] = p.method();
                    n += 1;
                }
                levels.level_of(&methods[..n]) >= *rank
            }
            Requirement::Any(terms) => terms
                .iter()
                .any(|t| t.holds(proofs, levels, now, check_age, facts)),
            Requirement::All(terms) => terms
                .iter()
                .all(|t| t.holds(proofs, levels, now, check_age, facts)),
            Requirement::Bound => facts.granted,
            Requirement::SameContext => facts.same_context,
        }
    }
}

impl From<Requirement> for Policy {
    fn from(requirement: Requirement) -> Policy {
        Policy {
            requirement,
            reason: None,
        }
    }
}

impl FromStr for Policy {
    type Err = PolicyParseError;
    fn from_str(s: &str) -> Result<Policy, PolicyParseError> {
        Policy::parse(s)
    }
}

impl fmt::Display for Policy {
    /// The canonical expression, which parses back to an equal requirement
    /// (the reason is not part of the expression).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.requirement, f)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = |f: &mut fmt::Formatter<'_>, max_age: &Option<Duration>| match max_age {
            Some(a) => write!(f, " within {}", policy_syntax::DisplayDuration(*a)),
            None => Ok(()),
        };
        match self {
            Requirement::Level { rank, max_age } => {
                write!(f, "level {rank}")?;
                age(f, max_age)
            }
            Requirement::Method { method, max_age } => {
                write!(f, "{method}")?;
                age(f, max_age)
            }
            Requirement::Bound => f.write_str("bound"),
            Requirement::SameContext => f.write_str("same_context"),
            Requirement::Any(terms) | Requirement::All(terms) => {
                let all = matches!(self, Requirement::All(_));
                for (i, term) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if all { " and " } else { " or " })?;
                    }
                    let group = matches!(term, Requirement::Any(_) | Requirement::All(_));
                    if group {
                        write!(f, "({term})")?;
                    } else {
                        write!(f, "{term}")?;
                    }
                }
                Ok(())
            }
        }
    }
}
