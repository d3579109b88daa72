//! The risk hook: an application closure that looks at the request (a new
//! device cookie, its own geo-IP database, impossible travel) and the
//! current assurance, and says how risky the request is; the guard then
//! requires the policy the application set for that risk.

use std::sync::Arc;

use stepup_core::{Assurance, Policy};

/// How risky a request is, as the application's hook judges it.
///
/// ```
/// use stepup_http::Risk;
/// assert!(Risk::Low < Risk::Elevated && Risk::Elevated < Risk::High);
/// assert_eq!(Risk::High.as_str(), "high");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Risk {
    /// Nothing unusual.
    Low,
    /// Something unusual (a new network, a new device).
    Elevated,
    /// Something alarming (impossible travel, a known-bad address).
    High,
}

impl Risk {
    /// A stable name: `low`, `elevated`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Elevated => "elevated",
            Risk::High => "high",
        }
    }
}

/// What the guard knows when it asks the hook.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RiskFacts<'a> {
    /// The current assurance, if the request's token verified.
    pub assurance: Option<&'a Assurance>,
    /// Whether the request comes from the client context (network prefix,
    /// browser family) its token was minted in; `None` without a token or
    /// a context in it.
    pub same_context: Option<bool>,
}

impl<'a> RiskFacts<'a> {
    /// Facts for the hook (the guard makes them; tests of a hook too).
    pub fn new(assurance: Option<&'a Assurance>, same_context: Option<bool>) -> RiskFacts<'a> {
        RiskFacts {
            assurance,
            same_context,
        }
    }
}

/// The policy for each [`Risk`].
///
/// ```
/// use std::time::Duration;
/// use stepup_core::Policy;
/// use stepup_http::{Risk, RiskPolicies};
///
/// let policies = RiskPolicies::new(
///     Policy::level(2).max_age(Duration::from_secs(3600)),
///     Policy::level(2).max_age(Duration::from_secs(300)),
///     Policy::level(3).max_age(Duration::from_secs(0)),
/// );
/// assert_eq!(policies.policy(Risk::Elevated).to_string(), "level 2 within 5m");
/// ```
#[derive(Clone, Debug)]
pub struct RiskPolicies {
    low: Arc<Policy>,
    elevated: Arc<Policy>,
    high: Arc<Policy>,
}

impl RiskPolicies {
    /// `low`, `elevated` and `high`: the policy for each risk.
    pub fn new(low: Policy, elevated: Policy, high: Policy) -> RiskPolicies {
        RiskPolicies {
            low: Arc::new(low),
            elevated: Arc::new(elevated),
            high: Arc::new(high),
        }
    }

    /// The policy for `risk`.
    pub fn policy(&self, risk: Risk) -> &Arc<Policy> {
        match risk {
            Risk::Low => &self.low,
            Risk::Elevated => &self.elevated,
            Risk::High => &self.high,
        }
    }

    /// Every policy, low to high.
    pub fn all(&self) -> [&Arc<Policy>; 3] {
        [&self.low, &self.elevated, &self.high]
    }
}
