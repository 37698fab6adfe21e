//! A future that is one of two: the inner service's, whose response body
//! becomes `Either::Left`, or an answer of nova-guard's own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;
use http_body_util::Either;
use pin_project_lite::pin_project;

pin_project! {
    #[project = EitherProj]
    pub enum EitherFuture<L, R> {
        Left { #[pin] inner: L },
        Right { #[pin] inner: R },
    }
}

impl<L, R> EitherFuture<L, R> {
    pub fn left(inner: L) -> Self {
        EitherFuture::Left { inner }
    }
    pub fn right(inner: R) -> Self {
        EitherFuture::Right { inner }
    }
}

impl<L, R, LB, RB, E> Future for EitherFuture<L, R>
where
    L: Future<Output = Result<Response<LB>, E>>,
    R: Future<Output = Result<Response<Either<LB, RB>>, E>>,
{
    type Output = Result<Response<Either<LB, RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Left { inner } => {
                inner.poll(cx).map(|r| r.map(|resp| resp.map(Either::Left)))
            }
            EitherProj::Right { inner } => inner.poll(cx),
        }
    }
}
