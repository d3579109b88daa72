//! The `Assurance` extractor and in-handler step-up.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use stepup_core::{Challenge, Policy, ReturnTo};

use crate::RequireStepUp;
use crate::respond::{Granted, Route, is_navigation, login_required};

/// The verified assurance of a request that passed a
/// [`RequireStepUp`](crate::RequireStepUp) middleware, for handlers.
/// Dereferences to [`stepup_core::Assurance`] (`level()`, `methods()`,
/// `proven_at(..)`, `age_of(..)`, `acr()`, `amr()`).
///
/// On a route without the middleware it still works when a
/// `RequireStepUp` is in the app's data (`App::new().app_data(stepup)`):
/// it then verifies the cookie itself and asks for any step-up at all
/// (level 1). `Option<Assurance>` is `None` whenever the extractor would
/// refuse (actix's rule for `Option`), including a missing configuration.
///
/// ```
/// use actix_web::{HttpResponse, web};
/// use stepup_actix::{Assurance, StepUpRequired};
/// use stepup_core::{Method, Policy};
///
/// async fn transfer(
///     assurance: Assurance,
///     amount: web::Query<u64>,
/// ) -> Result<HttpResponse, StepUpRequired> {
///     if *amount > 10_000 {
///         // Large transfers need a passkey: `?` answers with the challenge.
///         assurance.require(&Policy::method(Method::Passkey))?;
///     }
///     Ok(HttpResponse::Ok().body(format!("sent at level {}", assurance.level())))
/// }
/// # let _ = web::post().to(transfer);
/// ```
#[derive(Clone, Debug)]
pub struct Assurance {
    inner: stepup_core::Assurance,
    navigation: bool,
    return_to: ReturnTo,
    route: Arc<Route>,
}

impl Deref for Assurance {
    type Target = stepup_core::Assurance;
    fn deref(&self) -> &stepup_core::Assurance {
        &self.inner
    }
}

impl Assurance {
    /// Checks `policy` for a decision that depends on the request — "transfers
    /// over 10 000 need a passkey". The error answers exactly like the
    /// middleware (`303` for a browser, `401` with RFC 9470 and a problem body
    /// otherwise), so `?` in a handler is enough.
    pub fn require(&self, policy: &Policy) -> Result<(), StepUpRequired> {
        self.inner
            .require(policy, self.route.clock.now())
            .map_err(|challenge| {
                StepUpRequired::new(
                    challenge,
                    self.navigation,
                    self.return_to.clone(),
                    self.route.clone(),
                )
            })
    }

    /// The core assurance.
    pub fn into_inner(self) -> stepup_core::Assurance {
        self.inner
    }
}

/// A step-up the handler asked for with [`Assurance::require`]; answers like
/// the middleware.
#[derive(Debug)]
pub struct StepUpRequired(Box<Required>);

#[derive(Debug)]
struct Required {
    challenge: Challenge,
    navigation: bool,
    return_to: ReturnTo,
    route: Arc<Route>,
}

impl StepUpRequired {
    pub(crate) fn new(
        challenge: Challenge,
        navigation: bool,
        return_to: ReturnTo,
        route: Arc<Route>,
    ) -> Self {
        StepUpRequired(Box::new(Required {
            challenge,
            navigation,
            return_to,
            route,
        }))
    }

    /// The challenge.
    pub fn challenge(&self) -> &Challenge {
        &self.0.challenge
    }
}

impl fmt::Display for StepUpRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step-up required ({})", self.0.challenge.reason().code())
    }
}

impl ResponseError for StepUpRequired {
    fn status_code(&self) -> StatusCode {
        if self.0.navigation {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::UNAUTHORIZED
        }
    }

    fn error_response(&self) -> HttpResponse {
        let r = &self.0;
        r.route.respond(r.navigation, &r.return_to, &r.challenge)
    }
}

/// Why the [`Assurance`] extractor refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum AssuranceRejection {
    /// Neither a [`RequireStepUp`](crate::RequireStepUp) middleware ran nor
    /// is one in the `app_data`: a wiring mistake, answered with `500` and a
    /// message saying what to add.
    MissingConfiguration,
    /// Nobody is logged in: `401`, no step-up challenge.
    NotLoggedIn,
    /// Not enough assurance: the same challenge the middleware gives.
    StepUpRequired(StepUpRequired),
}

impl fmt::Display for AssuranceRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssuranceRejection::MissingConfiguration => f.write_str(
                "stepup is not configured for this route: wrap it in `RequireStepUp::new(gate, policy, subjects)`, \
                 or add one to the app with `.app_data(require_step_up)`",
            ),
            AssuranceRejection::NotLoggedIn => f.write_str("nobody is logged in"),
            AssuranceRejection::StepUpRequired(required) => fmt::Display::fmt(required, f),
        }
    }
}

impl ResponseError for AssuranceRejection {
    fn status_code(&self) -> StatusCode {
        match self {
            AssuranceRejection::MissingConfiguration => StatusCode::INTERNAL_SERVER_ERROR,
            AssuranceRejection::NotLoggedIn => StatusCode::UNAUTHORIZED,
            AssuranceRejection::StepUpRequired(required) => required.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AssuranceRejection::MissingConfiguration => {
                HttpResponse::InternalServerError().body(self.to_string())
            }
            AssuranceRejection::NotLoggedIn => login_required(),
            AssuranceRejection::StepUpRequired(required) => required.error_response(),
        }
    }
}

impl FromRequest for Assurance {
    type Error = AssuranceRejection;
    type Future = Ready<Result<Assurance, AssuranceRejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let granted = request
            .extensions()
            .get::<Granted>()
            .map(|g| (g.assurance.clone(), g.route.clone()));
        let found = match granted {
            Some((assurance, route)) => Ok((assurance, route)),
            None => match request.app_data::<RequireStepUp>() {
                Some(stepup) => stepup
                    .verify_any(request)
                    .map(|assurance| (assurance, stepup.route().clone())),
                None => {
                    tracing::error!(target: "stepup", "Assurance extractor used without RequireStepUp");
                    Err(AssuranceRejection::MissingConfiguration)
                }
            },
        };
        ready(found.map(|(inner, route)| Assurance {
            inner,
            navigation: is_navigation(request),
            return_to: route.return_to(request),
            route,
        }))
    }
}
