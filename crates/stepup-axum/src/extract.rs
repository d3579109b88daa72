//! The `Assurance` extractor and in-handler step-up.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use stepup_core::{Challenge, Policy};
use stepup_http::{ChallengeTarget, Hold, Refusal, Reply};
use stepup_tower::{HeadAt, into_response};

use crate::context::StepUpContext;

/// The verified assurance of the request, for handlers.
///
/// Taken from the request extensions when a [`require`](crate::StepUp::require)
/// layer ran; otherwise verified here from the cookie, using the
/// [`StepUpContext`] that [`StepUp::layer`](crate::StepUp::layer)
/// puts in every request. Dereferences to [`stepup_core::Assurance`]
/// (`level()`, `methods()`, `proven_at(..)`, `age_of(..)`, `acr()`, `amr()`).
///
/// `Option<Assurance>` is `None` for a request without (valid) assurance or
/// without a logged-in user.
#[derive(Clone, Debug)]
pub struct Assurance {
    inner: stepup_core::Assurance,
    hold: Hold,
}

impl Deref for Assurance {
    type Target = stepup_core::Assurance;
    fn deref(&self) -> &stepup_core::Assurance {
        &self.inner
    }
}

impl Assurance {
    /// Checks `policy` for a decision that depends on the request — "transfers
    /// over 10 000 need a passkey". The error answers exactly like the layer
    /// (`303` for a browser, `401` with RFC 9470 and a problem body
    /// otherwise), so `?` in a handler is enough. A `same_context` term is
    /// never met here (the handler's request is not compared): put
    /// contextual policies on the route, or in a risk hook.
    pub fn require(&self, policy: &Policy) -> Result<(), StepUpRequired> {
        self.hold
            .require(&self.inner, policy)
            .map_err(StepUpRequired::from)
    }

    /// The core assurance.
    pub fn into_inner(self) -> stepup_core::Assurance {
        self.inner
    }
}

/// A step-up the handler asked for with [`Assurance::require`]; answers like
/// the layer.
#[derive(Debug)]
pub struct StepUpRequired(Box<Refusal>);

impl From<Box<Refusal>> for StepUpRequired {
    fn from(refusal: Box<Refusal>) -> Self {
        StepUpRequired(refusal)
    }
}

impl StepUpRequired {
    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        self.0.challenge()
    }

    /// The answer, as every adapter writes it.
    pub fn reply(&self) -> &Reply {
        self.0.reply()
    }
}

impl IntoResponse for StepUpRequired {
    fn into_response(self) -> Response {
        into_response(self.0.into_reply())
    }
}

/// Why the [`Assurance`] extractor refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum AssuranceRejection {
    /// Neither a `require` layer ran nor is a [`StepUpContext`] in the
    /// request: a wiring mistake, answered with 500 and a message saying what
    /// to add.
    MissingConfiguration,
    /// Nobody is logged in: 401, no step-up challenge.
    NotLoggedIn,
    /// Not enough assurance: the same challenge the layer gives.
    StepUpRequired(StepUpRequired),
}

impl IntoResponse for AssuranceRejection {
    fn into_response(self) -> Response {
        match self {
            AssuranceRejection::MissingConfiguration => {
                tracing::error!(target: "stepup", "Assurance extractor used without configuration");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "stepup is not configured for this route: add `.route_layer(stepup.require(policy))` \
                     to it, or `.layer(stepup.layer())` to the router",
                )
                    .into_response()
            }
            AssuranceRejection::NotLoggedIn => into_response(Reply::login_required()),
            AssuranceRejection::StepUpRequired(required) => required.into_response(),
        }
    }
}

/// The path and query the client sent: axum's `OriginalUri` (a nested
/// router's routes see their URI without the prefix).
pub(crate) fn original_uri(parts: &Parts) -> Option<&str> {
    let original = parts.extensions.get::<axum::extract::OriginalUri>()?;
    original.0.path_and_query().map(|pq| pq.as_str())
}

/// Where challenges go when only a layer ran and no context was given: the
/// defaults, built once.
static DEFAULT_TARGET: LazyLock<Arc<ChallengeTarget>> =
    LazyLock::new(|| Arc::new(ChallengeTarget::default()));

/// The assurance of a request: the layer's, or verified here with the
/// context (the policy for a bare extractor is "any step-up at all", level
/// 1 of the table).
fn extract(parts: &Parts) -> Result<Assurance, AssuranceRejection> {
    let head = HeadAt::of(parts, Some(original_uri));
    let context = parts.extensions.get::<StepUpContext>();
    if let Some(assurance) = parts.extensions.get::<stepup_core::Assurance>() {
        let hold = match context {
            Some(context) => context.guard().hold(&head),
            None => Hold::new(DEFAULT_TARGET.clone(), &head),
        };
        return Ok(Assurance {
            inner: assurance.clone(),
            hold,
        });
    }
    let context = context.ok_or(AssuranceRejection::MissingConfiguration)?;
    let subject = context
        .subject(parts)
        .ok_or(AssuranceRejection::NotLoggedIn)?;
    match context.guard().verify_any(&head, subject) {
        Ok(inner) => Ok(Assurance {
            inner,
            hold: context.guard().hold(&head),
        }),
        Err(refusal) => Err(AssuranceRejection::StepUpRequired(refusal.into())),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Assurance {
    type Rejection = AssuranceRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        extract(parts)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Assurance {
    type Rejection = AssuranceRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match extract(parts) {
            Ok(assurance) => Ok(Some(assurance)),
            Err(AssuranceRejection::MissingConfiguration) => {
                Err(AssuranceRejection::MissingConfiguration)
            }
            Err(_) => Ok(None),
        }
    }
}
