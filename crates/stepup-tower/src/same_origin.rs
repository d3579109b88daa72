//! `SameOriginLayer`: the origin check of the challenge routes, for an
//! application's own state-changing routes (log-in, log-out, transfers).

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ORIGIN;
use http::{HeaderName, HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::head::into_response;

static SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

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
/// the RFC 9457 body [`stepup_http::FORBIDDEN_BODY`], before the inner service runs.
/// Safe methods pass untouched.
///
/// `SameSite` cookies do not stop a sibling subdomain (same site) from
/// posting a form to your log-in or transfer route; this does. API clients
/// must send `Origin` too.
///
/// ```
/// use axum::{Router, routing::post};
/// use stepup_tower::SameOriginLayer;
///
/// let app: Router = Router::new()
///     .route("/login", post(|| async { "welcome" }))
///     .route("/transfer", post(|| async { "sent" }))
///     .route_layer(SameOriginLayer::new("https://bank.example"));
/// # let _ = app;
/// ```
#[derive(Clone, Debug)]
pub struct SameOriginLayer {
    origin: Arc<str>,
}

impl SameOriginLayer {
    /// Accepts state-changing requests from `origin` only
    /// (`scheme://host[:port]`; a trailing `/` is ignored).
    pub fn new(origin: &str) -> Self {
        SameOriginLayer {
            origin: Arc::from(origin.trim_end_matches('/')),
        }
    }

    /// The accepted origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOrigin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOrigin {
            inner,
            origin: self.origin.clone(),
        }
    }
}

/// The service made by [`SameOriginLayer`].
#[derive(Clone, Debug)]
pub struct SameOrigin<S> {
    inner: S,
    origin: Arc<str>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SameOrigin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        if request.method().is_safe()
            || stepup_http::same_origin(
                &self.origin,
                headers.get(ORIGIN).map(HeaderValue::as_bytes),
                headers.get(&SEC_FETCH_SITE).map(HeaderValue::as_bytes),
            )
        {
            return ResponseFuture::inner(self.inner.call(request));
        }
        tracing::info!(target: "stepup", outcome = "forbidden", method = %request.method(), "state-changing request from another origin");
        ResponseFuture::ready(into_response(stepup_http::Reply::forbidden()))
    }
}
