//! Refuses request framing that a server behind us could read differently
//! (request smuggling), and request targets over the length limit. hyper
//! already refuses differing or invalid `Content-Length`s, obs-folded lines
//! and a `Transfer-Encoding` whose last coding is not `chunked`; but it reads
//! a request with both `Content-Length` and `Transfer-Encoding` as chunked
//! and hides the `Content-Length`. The verdict taken on the wire
//! ([`crate::wire`]) catches that, bare-LF lines and bad chunk-size lines;
//! this layer also refuses any `Transfer-Encoding` other than exactly one
//! `chunked`, so that what is forwarded can only be read one way. Such a
//! request gets a 400 (a long target 414) and is never forwarded.

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
use crate::wire::WireVerdict;

#[derive(Debug, Clone, Copy)]
pub struct FramingLayer {
    max_uri_bytes: usize,
}

impl FramingLayer {
    pub fn new(max_uri_bytes: usize) -> Self {
        FramingLayer { max_uri_bytes }
    }
}

impl<S> Layer<S> for FramingLayer {
    type Service = Framing<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Framing {
            inner,
            max_uri_bytes: self.max_uri_bytes,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Framing<S> {
    inner: S,
    max_uri_bytes: usize,
}

/// The request target's length as sent (origin or absolute form).
fn target_len(uri: &http::Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path
}

/// `Some(reason)` when the request's framing is ambiguous.
pub fn ambiguous_framing<B>(req: &Request<B>) -> Option<&'static str> {
    if let Some(WireVerdict(Some(why))) = req.extensions().get::<WireVerdict>() {
        return Some(why.as_str());
    }
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
        let (kind, rule) = if let Some(why) = ambiguous_framing(&req) {
            (ErrorKind::AmbiguousFraming, why)
        } else if target_len(req.uri()) > self.max_uri_bytes {
            (ErrorKind::UriTooLong, "maxUriBytes")
        } else {
            return EitherFuture::left(self.inner.call(req));
        };
        let request_id = req
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_default();
        let error = ProxyError::new(kind);
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
        info.rule = Some(rule);
        response.extensions_mut().insert(info);
        response.extensions_mut().insert(UpstreamInfo {
            error: Some(kind),
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
