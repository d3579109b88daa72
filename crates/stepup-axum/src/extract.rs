//! The `Assurance` extractor and in-handler step-up.

use std::ops::Deref;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use stepup_core::{Challenge, ChallengeReason, Policy, ReturnTo};
use stepup_tower::{ChallengeTarget, find_token, is_navigation};

use crate::context::StepUpContext;

/// The verified assurance of the request, for handlers.
///
/// Taken from the request extensions when a [`require`](crate::StepUp::require)
/// layer ran; otherwise verified here from the cookie, using the
/// [`StepUpContext`] that [`StepUp::extension`](crate::StepUp::extension)
/// puts in every request. Dereferences to [`stepup_core::Assurance`]
/// (`level()`, `methods()`, `proven_at(..)`, `age_of(..)`, `acr()`, `amr()`).
///
/// `Option<Assurance>` is `None` for a request without (valid) assurance or
/// without a logged-in user.
#[derive(Clone, Debug)]
pub struct Assurance {
    inner: stepup_core::Assurance,
    navigation: bool,
    return_to: ReturnTo,
    context: Option<StepUpContext>,
}

impl Deref for Assurance {
    type Target = stepup_core::Assurance;
    fn deref(&self) -> &stepup_core::Assurance {
        &self.inner
    }
}

impl Assurance {
    fn new(inner: stepup_core::Assurance, parts: &Parts, context: Option<StepUpContext>) -> Self {
        let target = context
            .as_ref()
            .map_or_else(ChallengeTarget::default, |c| c.inner.target());
        Assurance {
            inner,
            navigation: is_navigation(parts),
            return_to: target.return_to(parts),
            context,
        }
    }

    /// Checks `policy` for a decision that depends on the request body —
    /// "transfers over 10 000 need a passkey". The error renders exactly the
    /// challenge the layer gives (`303` for a browser, `401` with RFC 9470
    /// and a problem body otherwise), so `?` in a handler is enough.
    pub fn require(&self, policy: &Policy) -> Result<(), StepUpRequired> {
        let now = match &self.context {
            Some(c) => c.inner.now(),
            None => stepup_core::Clock::now(&stepup_core::SystemClock),
        };
        self.inner.require(policy, now).map_err(|challenge| {
            StepUpRequired::new(
                challenge,
                self.navigation,
                self.return_to.clone(),
                self.context
                    .as_ref()
                    .map_or_else(ChallengeTarget::default, |c| c.inner.target()),
            )
        })
    }

    /// The core assurance.
    pub fn into_inner(self) -> stepup_core::Assurance {
        self.inner
    }
}

/// A step-up the handler asked for with [`Assurance::require`]; answers like
/// the layer.
#[derive(Debug)]
pub struct StepUpRequired(Box<Required>);

#[derive(Debug)]
struct Required {
    challenge: Challenge,
    navigation: bool,
    return_to: ReturnTo,
    target: ChallengeTarget,
}

impl StepUpRequired {
    fn new(
        challenge: Challenge,
        navigation: bool,
        return_to: ReturnTo,
        target: ChallengeTarget,
    ) -> Self {
        StepUpRequired(Box::new(Required {
            challenge,
            navigation,
            return_to,
            target,
        }))
    }

    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.0.challenge
    }
}

impl IntoResponse for StepUpRequired {
    fn into_response(self) -> Response {
        let r = self.0;
        r.target
            .respond_to(r.navigation, &r.return_to, &r.challenge)
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
                     to it, or `.layer(stepup.extension())` to the router",
                )
                    .into_response()
            }
            AssuranceRejection::NotLoggedIn => stepup_tower::login_required(),
            AssuranceRejection::StepUpRequired(required) => required.into_response(),
        }
    }
}

/// Verifies the cookie with the context; the policy for a bare extractor is
/// "any step-up at all" (level 1 of the table).
fn verify(
    parts: &Parts,
    context: &StepUpContext,
) -> Result<stepup_core::Assurance, AssuranceRejection> {
    let subject = context
        .subject(parts)
        .ok_or(AssuranceRejection::NotLoggedIn)?;
    let c = &context.inner;
    let outcome = match find_token(&parts.headers, c.cookie_name()) {
        Ok(token) => c.gate().verify(subject, token, c.now()),
        Err(()) => Err(ChallengeReason::Invalid),
    };
    outcome.map_err(|reason| {
        AssuranceRejection::StepUpRequired(StepUpRequired::new(
            c.gate().challenge(reason, &Policy::level(1)),
            is_navigation(parts),
            c.target().return_to(parts),
            c.target(),
        ))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Assurance {
    type Rejection = AssuranceRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<StepUpContext>().cloned();
        if let Some(assurance) = parts.extensions.get::<stepup_core::Assurance>() {
            return Ok(Assurance::new(assurance.clone(), parts, context));
        }
        let context = context.ok_or(AssuranceRejection::MissingConfiguration)?;
        let assurance = verify(parts, &context)?;
        Ok(Assurance::new(assurance, parts, Some(context)))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Assurance {
    type Rejection = AssuranceRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let context = parts.extensions.get::<StepUpContext>().cloned();
        if let Some(assurance) = parts.extensions.get::<stepup_core::Assurance>() {
            return Ok(Some(Assurance::new(assurance.clone(), parts, context)));
        }
        let context = context.ok_or(AssuranceRejection::MissingConfiguration)?;
        match verify(parts, &context) {
            Ok(assurance) => Ok(Some(Assurance::new(assurance, parts, Some(context)))),
            Err(AssuranceRejection::MissingConfiguration) => {
                Err(AssuranceRejection::MissingConfiguration)
            }
            Err(_) => Ok(None),
        }
    }
}
