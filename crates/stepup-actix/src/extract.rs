//! The `Assurance` extractor and in-handler step-up.

use std::fmt;
use std::future::{Ready, ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use stepup_core::{Challenge, Policy};
use stepup_http::{Hold, Refusal, Reply};

use crate::head::{Granted, Head, into_response};
use crate::middleware::StepUpData;

/// The verified assurance of a request that passed a
/// [`RequireStepUp`](crate::RequireStepUp) middleware, for handlers.
/// Dereferences to [`stepup_core::Assurance`] (`level()`, `methods()`,
/// `proven_at(..)`, `age_of(..)`, `acr()`, `amr()`).
///
/// On a route without the middleware it still works when the
/// [`StepUpData`](crate::StepUpData) is in the app's data
/// (`App::new().app_data(stepup.app_data())`):
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
    /// over 10 000 need a passkey". The error answers exactly like the
    /// middleware (`303` for a browser, `401` with RFC 9470 and a problem body
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
/// the middleware.
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

impl fmt::Display for StepUpRequired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step-up required ({})",
            self.0.challenge().reason().code()
        )
    }
}

impl ResponseError for StepUpRequired {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.reply().status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        into_response(self.0.reply().clone())
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
                "stepup is not configured for this route: wrap it in `stepup.require(policy)`, \
                 or add `.app_data(stepup.app_data())` to the app",
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
            AssuranceRejection::NotLoggedIn => into_response(Reply::login_required()),
            AssuranceRejection::StepUpRequired(required) => required.error_response(),
        }
    }
}

impl FromRequest for Assurance {
    type Error = AssuranceRejection;
    type Future = Ready<Result<Assurance, AssuranceRejection>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(extract(request))
    }
}

fn extract(request: &HttpRequest) -> Result<Assurance, AssuranceRejection> {
    let head = Head(request);
    if let Some(granted) = request.extensions().get::<Granted>() {
        return Ok(Assurance {
            inner: granted.assurance.clone(),
            hold: Hold::new(granted.target.clone(), &head),
        });
    }
    let Some(data) = request.app_data::<StepUpData>() else {
        tracing::error!(target: "stepup", "Assurance extractor used without RequireStepUp");
        return Err(AssuranceRejection::MissingConfiguration);
    };
    let subject = data
        .subject(request)
        .ok_or(AssuranceRejection::NotLoggedIn)?;
    match data.guard().verify_any(&head, subject) {
        Ok(inner) => Ok(Assurance {
            inner,
            hold: data.guard().hold(&head),
        }),
        Err(refusal) => Err(AssuranceRejection::StepUpRequired(refusal.into())),
    }
}
