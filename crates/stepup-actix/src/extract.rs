//! The `Assurance` extractor and in-handler step-up.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use stepup_core::{Challenge, Policy, ReturnTo};

use crate::respond::{Granted, Route, is_navigation};

/// The verified assurance of a request that passed a
/// [`RequireStepUp`](crate::RequireStepUp) middleware, for handlers.
/// Dereferences to [`stepup_core::Assurance`] (`level()`, `methods()`,
/// `proven_at(..)`, `age_of(..)`, `acr()`, `amr()`).
///
/// `Option<Assurance>` is `None` on a route without the middleware.
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
                StepUpRequired(Box::new(Required {
                    challenge,
                    navigation: self.navigation,
                    return_to: self.return_to.clone(),
                    route: self.route.clone(),
                }))
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

/// Why the [`Assurance`] extractor refused: the route has no
/// [`RequireStepUp`](crate::RequireStepUp) middleware. A wiring mistake,
/// answered with `500` and a message saying what to add.
#[derive(Debug)]
#[non_exhaustive]
pub struct MissingStepUp;

impl fmt::Display for MissingStepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "stepup is not configured for this route: wrap it in `RequireStepUp::new(gate, policy, subjects)`",
        )
    }
}

impl ResponseError for MissingStepUp {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl FromRequest for Assurance {
    type Error = MissingStepUp;
    type Future = Ready<Result<Assurance, MissingStepUp>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = match request.extensions().get::<Granted>() {
            Some(granted) => Ok(Assurance {
                inner: granted.assurance.clone(),
                navigation: is_navigation(request),
                return_to: granted.route.return_to(request),
                route: granted.route.clone(),
            }),
            None => {
                tracing::error!(target: "stepup", "Assurance extractor used without RequireStepUp");
                Err(MissingStepUp)
            }
        };
        ready(found)
    }
}
