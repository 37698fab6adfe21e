//! Gives every exchange its own `req-<uuid4>`, as Nova's request-id
//! middleware does. It is logged with the exchange and sent on the answers
//! nova-guard gives itself, so a rejected request can be found in the logs by
//! the id the client saw. A client's own `X-OpenStack-Request-ID` is left in
//! the request and reaches Nova unchanged.

use std::task::{Context, Poll};

use http::header::HeaderValue;
use http::{HeaderMap, Request};
use tower::{Layer, Service};

/// `req-` followed by a lowercase uuid4, as `oslo_context.generate_request_id()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn new() -> Self {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
        let text = format!("req-{id}");
        // Only ASCII letters, digits and dashes: always a valid header value.
        RequestId(HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("req-")))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }

    /// Nova sends the same id under both names.
    pub fn set_response_headers(&self, headers: &mut HeaderMap) {
        headers.insert("x-openstack-request-id", self.0.clone());
        headers.insert("x-compute-request-id", self.0.clone());
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_is_nova_s() {
        let id = RequestId::new();
        let s = id.as_str();
        assert_eq!(s.len(), 40);
        assert!(s.starts_with("req-"));
        let u = uuid::Uuid::parse_str(&s[4..]).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_ne!(RequestId::new(), id);
    }
}
