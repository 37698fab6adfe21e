//! Refuses request framing that a server behind us could read differently
//! (request smuggling). hyper already refuses differing or invalid
//! `Content-Length`s, obs-folded lines and a `Transfer-Encoding` whose last
//! coding is not `chunked`; this layer also refuses any `Transfer-Encoding`
//! other than exactly one `chunked`, so that what is forwarded can only be
//! read one way. Such a request gets a 400 and is never forwarded.

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, TRANSFER_ENCODING};
use http::{Request, Response};
use http_body_util::{Either, Full};
use tower::{Layer, Service};

use crate::error::{ErrorKind, FaultContext, ProxyError};
use crate::layer::access_log::{UpstreamInfo, ValidationInfo, VerdictKind};
use crate::layer::either::EitherFuture;
use crate::layer::request_id::RequestId;

#[derive(Debug, Clone, Copy, Default)]
pub struct FramingLayer;

impl<S> Layer<S> for FramingLayer {
    type Service = Framing<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Framing { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Framing<S> {
    inner: S,
}

/// `Some(reason)` when the request's framing is ambiguous.
pub fn ambiguous_framing<B>(req: &Request<B>) -> Option<&'static str> {
    let mut te = req.headers().get_all(TRANSFER_ENCODING).iter();
    match (te.next(), te.next()) {
        (None, _) => None,
        (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"chunked") => None,
        _ => Some("transfer-encoding"),
    }
}

impl<S, B, RB> Service<Request<B>> for Framing<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<Either<RB, Full<Bytes>>>;
    type Error = S::Error;
    type Future = EitherFuture<S::Future, Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if ambiguous_framing(&req).is_none() {
            return EitherFuture::left(self.inner.call(req));
        }
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default();
        let error = ProxyError::new(ErrorKind::AmbiguousFraming);
        let mut response = error.to_response(&FaultContext {
            request_id: &request_id,
            version: None,
        });
        // The rest of the connection cannot be trusted to be framed right.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        let mut info = ValidationInfo::passthrough();
        info.verdict = VerdictKind::Rejected;
        info.rule = Some("framing");
        response.extensions_mut().insert(info);
        response.extensions_mut().insert(UpstreamInfo {
            error: Some(ErrorKind::AmbiguousFraming),
            ..UpstreamInfo::default()
        });
        EitherFuture::right(ready(Ok(response.map(Either::Right))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(te: &[&str]) -> Request<()> {
        let mut b = Request::builder().method("PUT").uri("/v2.1/servers/x");
        for v in te {
            b = b.header(TRANSFER_ENCODING, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn only_a_single_chunked_is_unambiguous() {
        assert_eq!(ambiguous_framing(&req(&[])), None);
        assert_eq!(ambiguous_framing(&req(&["chunked"])), None);
        assert_eq!(ambiguous_framing(&req(&["Chunked"])), None);
        for bad in [
            &["gzip, chunked"][..],
            &["chunked, chunked"],
            &["identity"],
            &["chunked", "chunked"],
            &[" chunked"],
        ] {
            assert!(ambiguous_framing(&req(bad)).is_some(), "{bad:?}");
        }
    }
}
