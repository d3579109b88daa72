//! The middleware's future: the handler's, or an answer ready at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::Error;
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use pin_project_lite::pin_project;

pin_project! {
    /// The future of [`RequireStepUpMiddleware`](crate::RequireStepUpMiddleware)
    /// and [`SameOriginMiddleware`](crate::SameOriginMiddleware): the wrapped
    /// service's when the request was allowed, or the answer the middleware
    /// wrote itself (a challenge, "log in first", or "forbidden"). No boxing
    /// but for a form it reads (kept across a step-up, or coming back).
    pub struct StepUpFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner {
            #[pin]
            future: F,
            // Add `Cache-Control: no-store` unless the response has its own.
            no_store: bool,
        },
        Ready {
            response: Option<ServiceResponse<EitherBody<B>>>,
        },
        Boxed {
            future: Boxed<B>,
        },
    }
}

/// The future of a request whose body the middleware reads first (a form
/// kept across a step-up, or coming back).
pub(crate) type Boxed<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, Error>>>>;

/// Adds `Cache-Control: no-store` unless the response has its own.
pub(crate) fn add_no_store<B>(response: &mut ServiceResponse<B>) {
    if !response.headers().contains_key(CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

impl<F, B> StepUpFuture<F, B> {
    /// The wrapped service's response, unchanged.
    pub(crate) fn inner(future: F) -> Self {
        StepUpFuture {
            kind: Kind::Inner {
                future,
                no_store: false,
            },
        }
    }

    /// The wrapped service's response, with `Cache-Control: no-store` unless
    /// the handler set its own `Cache-Control`.
    pub(crate) fn inner_no_store(future: F) -> Self {
        StepUpFuture {
            kind: Kind::Inner {
                future,
                no_store: true,
            },
        }
    }

    pub(crate) fn ready(response: ServiceResponse<EitherBody<B>>) -> Self {
        StepUpFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    pub(crate) fn boxed(future: Boxed<B>) -> Self {
        StepUpFuture {
            kind: Kind::Boxed { future },
        }
    }
}

impl<F, B> std::fmt::Debug for StepUpFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepUpFuture").finish_non_exhaustive()
    }
}

impl<F, B> Future for StepUpFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, no_store } => {
                let no_store = *no_store;
                future.poll(cx).map_ok(|mut response| {
                    if no_store {
                        add_no_store(&mut response);
                    }
                    response.map_into_left_body()
                })
            }
            KindProj::Boxed { future } => future.as_mut().poll(cx),
            KindProj::Ready { response } => Poll::Ready(response.take().ok_or_else(|| {
                actix_web::error::ErrorInternalServerError("step-up answer polled twice")
            })),
        }
    }
}
