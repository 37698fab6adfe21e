//! The stack's rescue step: every [`Fault`] a layer below returns becomes
//! Nova's envelope here, with the connection's fate and the exchange's
//! labels, through [`crate::rescue::rescue`] (the one place answers to
//! faults are built, for every transport).

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::exchange::{Refused, RequestId, ValidationInfo};
use crate::rescue::{rescue, Fault};

#[derive(Debug, Clone, Copy, Default)]
pub struct RescueLayer;

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Rescue { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Rescue<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<RB>, Error = Fault>,
{
    type Response = Response<Either<RB, Full<Bytes>>>;
    type Error = std::convert::Infallible;
    type Future = RescueFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The stack below never fails to be ready (its services are clones
        // of ready ones); a fault there would surface on the call.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let request_id = super::request_id::of(&req);
        if let Some(refused) = req.extensions().get::<Refused>() {
            let fault = Fault::with(refused.kind, ValidationInfo::rejected(refused.rule));
            return RescueFuture::Refused {
                answer: Some(rescued(fault, request_id)),
            };
        }
        RescueFuture::Called {
            request_id,
            inner: self.inner.call(req),
        }
    }
}

pin_project! {
    #[project = RescueProj]
    pub enum RescueFuture<F> {
        Called {
            #[pin]
            inner: F,
            request_id: RequestId,
        },
        Refused {
            answer: Option<Response<Full<Bytes>>>,
        },
    }
}

/// The answer to a fault, with the labels the access log reads.
fn rescued(fault: Fault, request_id: RequestId) -> Response<Full<Bytes>> {
    let rescued = rescue(fault, request_id);
    let mut answer = rescued.answer.into_response().map(Full::new);
    answer.extensions_mut().insert(rescued.validation);
    answer.extensions_mut().insert(rescued.upstream);
    answer
}

impl<F, RB> Future for RescueFuture<F>
where
    F: Future<Output = Result<Response<RB>, Fault>>,
{
    type Output = Result<Response<Either<RB, Full<Bytes>>>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RescueProj::Called { inner, request_id } => {
                Poll::Ready(Ok(match ready!(inner.poll(cx)) {
                    Ok(response) => response.map(Either::Left),
                    Err(fault) => rescued(fault, *request_id).map(Either::Right),
                }))
            }
            RescueProj::Refused { answer } => Poll::Ready(Ok(answer
                .take()
                .unwrap_or_else(|| {
                    rescued(
                        Fault::new(crate::error::ErrorKind::ClientBody),
                        RequestId::new(),
                    )
                })
                .map(Either::Right))),
        }
    }
}
