//! Gives every exchange its own `req-<uuid4>`, as Nova's request-id
//! middleware does. It is logged with the exchange, sent on the answers
//! nova-guard gives itself, and sent to Nova as `X-OpenStack-Request-ID`
//! when the client sent none (see [`crate::admit`]).

use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::exchange::RequestId;

#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        req.extensions_mut().insert(RequestId::new());
        self.inner.call(req)
    }
}

/// The request's id (a fresh one if no layer gave it one).
pub fn of<B>(req: &Request<B>) -> RequestId {
    req.extensions()
        .get::<RequestId>()
        .copied()
        .unwrap_or_default()
}
