//! `SameOrigin`: the origin check of the challenge routes, for an
//! application's own state-changing routes (log-in, log-out, transfers).

use std::fmt;
use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderValue, ORIGIN};

use crate::future::StepUpFuture;

/// Refuses state-changing requests that do not come from the application's
/// own origin — the rule of the challenge routes
/// ([`stepup_http::same_origin`]), for the application's own routes.
///
/// A request whose method is not safe (anything but `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`: `POST`, `PUT`, `PATCH`, `DELETE` …) must carry an
/// `Origin` equal to the configured origin, or — from a browser that sends
/// no `Origin` — `Sec-Fetch-Site: same-origin`. Anything else (another site,
/// another origin of the same site such as a sibling subdomain or port, or
/// no origin at all) is answered `403` with `Cache-Control: no-store` and
/// the RFC 9457 body [`stepup_http::FORBIDDEN_BODY`], before the handler runs — the
/// bytes the challenge routes and the tower `SameOriginLayer` write. Safe
/// methods pass untouched.
///
/// `SameSite` cookies do not stop a sibling subdomain (same site) from
/// posting a form to your log-in or transfer route; this does. API clients
/// must send `Origin` too.
///
/// ```
/// use actix_web::{App, web};
/// use stepup_actix::SameOrigin;
///
/// let app = App::new().service(
///     web::scope("")
///         .wrap(SameOrigin::new("https://bank.example"))
///         .route("/login", web::post().to(|| async { "welcome" }))
///         .route("/transfer", web::post().to(|| async { "sent" })),
/// );
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct SameOrigin {
    origin: Arc<str>,
}

impl SameOrigin {
    /// Accepts state-changing requests from `origin` only
    /// (`scheme://host[:port]`; a trailing `/` is ignored).
    pub fn new(origin: &str) -> Self {
        SameOrigin {
            origin: Arc::from(origin.trim_end_matches('/')),
        }
    }

    /// The accepted origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl<S, B> Transform<S, ServiceRequest> for SameOrigin
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = SameOriginMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SameOriginMiddleware {
            service,
            origin: self.origin.clone(),
        }))
    }
}

/// The service [`SameOrigin`] wraps around a resource or scope.
pub struct SameOriginMiddleware<S> {
    service: S,
    origin: Arc<str>,
}

impl<S> fmt::Debug for SameOriginMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SameOriginMiddleware")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for SameOriginMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = StepUpFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let headers = request.headers();
        if request.method().is_safe()
            || stepup_http::same_origin(
                &self.origin,
                headers.get(ORIGIN).map(HeaderValue::as_bytes),
                headers.get("sec-fetch-site").map(HeaderValue::as_bytes),
            )
        {
            return StepUpFuture::inner(self.service.call(request));
        }
        tracing::info!(target: "stepup", outcome = "forbidden", method = %request.method(), "state-changing request from another origin");
        let answer = crate::head::into_response(stepup_http::Reply::forbidden());
        StepUpFuture::ready(request.into_response(answer).map_into_right_body())
    }
}
