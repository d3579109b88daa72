//! The middleware's future: the handler's, or an answer ready at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::Error;
use actix_web::body::EitherBody;
use actix_web::dev::ServiceResponse;
use pin_project_lite::pin_project;

pin_project! {
    /// The future of [`RequireStepUpMiddleware`](crate::RequireStepUpMiddleware):
    /// the wrapped service's when the request was allowed, or the answer the
    /// middleware wrote itself (a challenge, or "log in first"). No boxing.
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
        },
        Ready {
            response: Option<ServiceResponse<EitherBody<B>>>,
        },
    }
}

impl<F, B> StepUpFuture<F, B> {
    pub(crate) fn inner(future: F) -> Self {
        StepUpFuture {
            kind: Kind::Inner { future },
        }
    }

    pub(crate) fn ready(response: ServiceResponse<EitherBody<B>>) -> Self {
        StepUpFuture {
            kind: Kind::Ready {
                response: Some(response),
            },
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
            KindProj::Inner { future } => {
                future.poll(cx).map_ok(ServiceResponse::map_into_left_body)
            }
            KindProj::Ready { response } => Poll::Ready(response.take().ok_or_else(|| {
                actix_web::error::ErrorInternalServerError("step-up answer polled twice")
            })),
        }
    }
}
