//! The response future: the inner service's future, or a response the layer
//! wrote itself — no boxing on those paths — or, for a form the layer reads
//! (kept across a step-up, or coming back), a boxed future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::CACHE_CONTROL;
use http::{Response, StatusCode};
use pin_project_lite::pin_project;

const NO_STORE: http::HeaderValue = http::HeaderValue::from_static("no-store");

pin_project! {
    /// The future returned by [`RequireStepUp`](crate::RequireStepUp) and
    /// [`SameOrigin`](crate::SameOrigin): the inner service's future when the
    /// request was allowed, or the answer the layer wrote itself (a
    /// challenge, "not logged in", or "forbidden").
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Inner {
            #[pin]
            future: F,
            // Add `Cache-Control: no-store` unless the response has its own.
            no_store: bool,
        },
        Ready {
            response: Option<Response<B>>,
        },
        Boxed {
            future: Boxed<B, E>,
        },
    }
}

/// The future of a request whose body the layer reads first.
pub(crate) type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

/// Adds `Cache-Control: no-store` unless the response has its own.
pub(crate) fn add_no_store<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(NO_STORE);
}

impl<F, B, E> ResponseFuture<F, B, E> {
    /// The inner service's response, unchanged.
    pub(crate) fn inner(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner {
                future,
                no_store: false,
            },
        }
    }

    /// The inner service's response, with `Cache-Control: no-store` unless
    /// the handler set its own `Cache-Control`.
    pub(crate) fn inner_no_store(future: F) -> Self {
        ResponseFuture {
            kind: Kind::Inner {
                future,
                no_store: true,
            },
        }
    }

    pub(crate) fn ready(response: Response<B>) -> Self {
        ResponseFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn boxed(future: Boxed<B, E>) -> Self {
        ResponseFuture {
            kind: Kind::Boxed { future },
        }
    }
}

impl<F, B, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Ready { .. } => "Ready",
            Kind::Boxed { .. } => "Boxed",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, no_store } => {
                let mut polled = future.poll(cx);
                if *no_store && let Poll::Ready(Ok(response)) = &mut polled {
                    // One lookup; an existing value (the handler's) is kept.
                    add_no_store(response);
                }
                polled
            }
            KindProj::Boxed { future } => future.as_mut().poll(cx),
            KindProj::Ready { response } => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                // Polled again after completion: a caller bug. Answer with an
                // error response rather than panicking.
                let mut r = Response::new(B::from(String::new()));
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }))),
        }
    }
}
