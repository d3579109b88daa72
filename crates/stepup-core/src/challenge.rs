//! Why a request was not allowed and what would satisfy it, rendered
//! framework-neutrally as an RFC 9470 header value and an RFC 9457 body.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::json::JsonObject;
use crate::level::LevelTable;
use crate::method::Method;
use crate::policy::Policy;

/// Why the gate asks for a step-up, in machine-readable form.
///
/// Every malformed, tampered, wrongly keyed, foreign-purpose or future-dated
/// token is [`Invalid`](ChallengeReason::Invalid): one outcome, one code path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeReason {
    /// No assurance token was presented.
    #[error("no step-up assurance was presented")]
    NoAssurance,
    /// The token is malformed, tampered with, signed with an unknown key or
    /// for another purpose, or dated in the future.
    #[error("the assurance token is not valid")]
    Invalid,
    /// The token's lifetime is over.
    #[error("the assurance token has expired")]
    Expired,
    /// The token was minted under an earlier epoch of the subject
    /// (logout everywhere, a factor removed, the password changed).
    #[error("the assurance token was revoked")]
    Revoked,
    /// A genuine token, but minted for another subject or session.
    #[error("the assurance token belongs to another user or session")]
    OtherBinding,
    /// The proven methods do not reach the required level.
    #[error("a higher level of assurance is required")]
    InsufficientLevel,
    /// A required method was not proven.
    #[error("a different authentication method is required")]
    MissingMethod,
    /// The required methods were proven, but too long ago.
    #[error("a more recent authentication is required")]
    Stale,
    /// Everything else holds, but the request's exact action was not
    /// confirmed by a step-up made for it (a [`Bound`](crate::Requirement::Bound)
    /// term without a grant).
    #[error("this action must be confirmed on its own")]
    Unconfirmed,
    /// Everything else holds, but the request does not come from the
    /// client context (network, browser) the step-up was made in, and the
    /// policy wants the same one (a [`SameContext`](crate::Requirement::SameContext)
    /// term).
    #[error("this request comes from another network or browser")]
    OtherContext,
}

impl ChallengeReason {
    /// A stable snake_case code, used in the problem body and in events.
    pub fn code(&self) -> &'static str {
        match self {
            ChallengeReason::NoAssurance => "no_assurance",
            ChallengeReason::Invalid => "invalid_token",
            ChallengeReason::Expired => "expired",
            ChallengeReason::Revoked => "revoked",
            ChallengeReason::OtherBinding => "other_binding",
            ChallengeReason::InsufficientLevel => "insufficient_level",
            ChallengeReason::MissingMethod => "missing_method",
            ChallengeReason::Stale => "stale",
            ChallengeReason::Unconfirmed => "action_not_confirmed",
            ChallengeReason::OtherContext => "other_context",
        }
    }

    /// Whether a fresher proof of something already proven would do
    /// (as opposed to a stronger or different method).
    pub fn wants_recent(&self) -> bool {
        matches!(self, ChallengeReason::Stale | ChallengeReason::Expired)
    }
}

/// The RFC 9470 error code.
pub const ERROR_CODE: &str = "insufficient_user_authentication";
/// The `type` of the problem body.
pub const PROBLEM_TYPE: &str = "urn:stepup:problem:insufficient-user-authentication";
/// The media type of the problem body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
const PROBLEM_TITLE: &str = "Step-up authentication required";
const DEFAULT_DETAIL: &str = "Please confirm it's really you to continue.";

/// A request for the user to step up: why, and what would satisfy it.
///
/// Everything in it comes from configuration (the route's [`Policy`] and the
/// [`LevelTable`]) plus the reason code; nothing comes from the request, so
/// it is safe to put in headers and pages as it is.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::{Challenge, ChallengeReason, LevelTable, Method, Policy};
///
/// let policy = Policy::level(2).max_age(Duration::from_secs(300))
///     .with_reason("We need to confirm it's really you before moving money.");
/// let challenge = Challenge::new(ChallengeReason::Stale, &policy, &LevelTable::nist());
///
/// assert_eq!(
///     challenge.www_authenticate(),
///     r#"Bearer error="insufficient_user_authentication", error_description="More recent authentication is required", acr_values="aal2 aal3", max_age="300""#
/// );
/// assert_eq!(challenge.methods(), [Method::DeviceBoundPasskey, Method::Passkey, Method::Totp, Method::RecoveryCode]);
/// let body = challenge.problem_json();
/// assert!(body.contains(r#""status":401"#));
/// assert!(body.contains(r#""reason":"stale""#));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    reason: ChallengeReason,
    acr_values: Vec<String>,
    methods: Vec<Method>,
    max_age: Option<Duration>,
    message: Option<Arc<str>>,
    policy: String,
}

impl Challenge {
    /// The challenge for `policy` not being met, for `reason`.
    pub fn new(reason: ChallengeReason, policy: &Policy, levels: &LevelTable) -> Challenge {
        Challenge {
            reason,
            acr_values: policy
                .acr_values(levels)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            methods: policy.methods(levels),
            max_age: policy.strictest_max_age(),
            message: policy.reason().map(Arc::from),
            policy: policy.to_string(),
        }
    }

    /// Why.
    pub fn reason(&self) -> ChallengeReason {
        self.reason
    }

    /// The acceptable `acr` values, in order of preference (lowest sufficient
    /// level first). Empty when the policy names methods only.
    pub fn acr_values(&self) -> &[String] {
        &self.acr_values
    }

    /// The methods that can help satisfy the policy, strongest first.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The strictest maximum age the policy sets.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The sentence for the user: the policy's reason, or a generic one.
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or(DEFAULT_DETAIL)
    }

    /// The policy expression that was not met.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The HTTP status for API clients: 401.
    pub fn status(&self) -> u16 {
        401
    }

    /// The RFC 9470 `WWW-Authenticate` value:
    /// `Bearer error="insufficient_user_authentication", error_description="…", acr_values="…", max_age="…"`.
    ///
    /// `error_description` is one of RFC 9470's own two sentences;
    /// `acr_values` and `max_age` appear when the policy sets them. Every
    /// part comes from configuration that was checked to be header-safe.
    pub fn www_authenticate(&self) -> String {
        let description = if self.reason.wants_recent() {
            "More recent authentication is required"
        } else {
            "A different authentication level is required"
        };
        let mut out = format!("Bearer error=\"{ERROR_CODE}\", error_description=\"{description}\"");
        if !self.acr_values.is_empty() {
            out.push_str(", acr_values=\"");
            out.push_str(&self.acr_values.join(" "));
            out.push('"');
        }
        if let Some(age) = self.max_age {
            out.push_str(&format!(", max_age=\"{}\"", age.as_secs()));
        }
        out
    }

    /// The RFC 9457 `application/problem+json` body.
    pub fn problem_json(&self) -> String {
        self.problem_json_with(&[])
    }

    /// The problem body with extra string members, such as the URL of the
    /// challenge page an adapter mounted (`("step_up_url", "/step-up?…")`).
    /// An extra member whose name the body already uses is left out.
    ///
    /// The members: `type`, `title`, `status` (401), `detail` (the
    /// message), `error` (`insufficient_user_authentication`), `reason`
    /// ([`ChallengeReason::code`]), `policy`, `methods`, and when set,
    /// `acr_values` (array) and `max_age` (seconds).
    pub fn problem_json_with(&self, extra: &[(&str, &str)]) -> String {
        self.problem_json_for(extra, None)
    }

    /// The problem body of a challenge for a bound `action`, with `extra`
    /// string members (the ceremony id the client steps up for, the
    /// challenge page URL): besides the usual members, the RFC 9396
    /// `authorization_details` (an array holding the action's canonical
    /// object) and `action_digest` (its [`ActionDigest`](crate::ActionDigest)
    /// in hex), so an API client can show what it confirms and check the
    /// digest itself.
    ///
    /// ```
    /// use stepup_core::{Action, Challenge, ChallengeReason, LevelTable, Policy};
    /// let action = Action::new("payment", "POST", "/transfer")?.with_detail("amount", "12000.00")?;
    /// let policy = Policy::level(2).and(Policy::bound());
    /// let challenge = Challenge::new(ChallengeReason::Unconfirmed, &policy, &LevelTable::nist());
    /// let body = challenge.problem_json_for_action(&[("confirmation", "0123")], &action);
    /// assert!(body.contains(r#""authorization_details":[{"details":{"amount":"12000.00"},"method":"POST","route":"/transfer","type":"payment"}]"#));
    /// assert!(body.contains(&format!(r#""action_digest":"{}""#, action.digest())));
    /// assert!(body.contains(r#""reason":"action_not_confirmed""#));
    /// # Ok::<(), stepup_core::ActionError>(())
    /// ```
    pub fn problem_json_for_action(
        &self,
        extra: &[(&str, &str)],
        action: &crate::Action,
    ) -> String {
        self.problem_json_for(extra, Some(action))
    }

    fn problem_json_for(&self, extra: &[(&str, &str)], action: Option<&crate::Action>) -> String {
        const OWN: [&str; 10] = [
            "type",
            "title",
            "status",
            "detail",
            "error",
            "reason",
            "policy",
            "methods",
            "acr_values",
            "max_age",
        ];
        const ACTION_OWN: [&str; 2] = ["authorization_details", "action_digest"];
        let methods: Vec<String> = self.methods.iter().map(|m| m.to_string()).collect();
        let mut json = JsonObject::new();
        json.string("type", PROBLEM_TYPE)
            .string("title", PROBLEM_TITLE)
            .number("status", u64::from(self.status()))
            .string("detail", self.message())
            .string("error", ERROR_CODE)
            .string("reason", self.reason.code())
            .string("policy", &self.policy)
            .strings("methods", methods.iter().map(String::as_str));
        if !self.acr_values.is_empty() {
            json.strings("acr_values", self.acr_values.iter().map(String::as_str));
        }
        if let Some(age) = self.max_age {
            json.number("max_age", age.as_secs());
        }
        if let Some(action) = action {
            // The canonical JSON with `<`, `>` and `&` escaped as the rest
            // of the body is (they occur only inside its strings, so the
            // values a client parses — and canonicalizes again to check the
            // digest — are the same).
            let details = action
                .authorization_details()
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026");
            json.raw("authorization_details", &details);
            json.string("action_digest", &action.digest().to_hex());
        }
        for (name, value) in extra {
            if !OWN.contains(name) && (action.is_none() || !ACTION_OWN.contains(name)) {
                json.string(name, value);
            }
        }
        json.finish()
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Challenge")
            .field("reason", &self.reason)
            .field("policy", &self.policy)
            .field("acr_values", &self.acr_values)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step-up required ({}): {}", self.reason, self.policy)
    }
}

impl std::error::Error for Challenge {}
