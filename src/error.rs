//! The proxy's one error type, and the one place where Nova-shaped fault
//! answers (`{"<faultName>": {"code": N, "message": "..."}}`) are built.

use std::fmt;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::layer::request_id::RequestId;
use crate::nova::pyrepr::json_string;
use crate::nova::Microversion;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nova could not be connected to.
    UpstreamConnect,
    /// Nova's response head did not arrive within the upstream timeout.
    UpstreamTimeout,
    /// The exchange with Nova failed after connecting (reset, bad response).
    UpstreamProtocol,
    /// A validated request's body is over the configured limit.
    BodyTooLarge,
    /// Reading a validated request's body from the client failed.
    ClientBody,
    /// Request framing that could be read two ways.
    AmbiguousFraming,
    /// A validated request's body did not arrive within the body timeout.
    ClientBodyTimeout,
    /// The request target is longer than the configured limit.
    UriTooLong,
    /// The connection limit is reached.
    Overloaded,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamProtocol => "upstream_protocol",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::ClientBody => "client_body",
            ErrorKind::AmbiguousFraming => "ambiguous_framing",
            ErrorKind::ClientBodyTimeout => "client_body_timeout",
            ErrorKind::UriTooLong => "uri_too_long",
            ErrorKind::Overloaded => "overloaded",
        }
    }

    /// Whether this is a failure of the exchange with Nova.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamTimeout | ErrorKind::UpstreamProtocol
        )
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ClientBody | ErrorKind::AmbiguousFraming => StatusCode::BAD_REQUEST,
            ErrorKind::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(self) -> &'static str {
        match self {
            ErrorKind::UpstreamConnect => "The compute API could not be reached.",
            ErrorKind::UpstreamTimeout => "The compute API did not answer in time.",
            ErrorKind::UpstreamProtocol => "The compute API connection failed.",
            ErrorKind::BodyTooLarge => "Request is too large.",
            ErrorKind::ClientBody => "Malformed request body",
            ErrorKind::AmbiguousFraming => "Malformed request framing",
            ErrorKind::ClientBodyTimeout => "Request body not received in time.",
            ErrorKind::UriTooLong => "Request URI too long.",
            ErrorKind::Overloaded => "Too many connections; try again later.",
        }
    }
}

/// An error of the proxy: what kind, and what caused it (for the logs only;
/// the client sees the kind's fixed message).
#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub source: Option<BoxError>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind) -> Self {
        ProxyError { kind, source: None }
    }

    pub fn with_source(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        ProxyError {
            kind,
            source: Some(source.into()),
        }
    }

    /// The Nova-shaped answer for this error.
    pub fn to_response(&self, ctx: &FaultContext<'_>) -> Response<Full<Bytes>> {
        fault_response(self.kind.status(), &json_string(self.kind.message()), ctx)
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
            let mut cause = source.source();
            while let Some(c) = cause {
                write!(f, ": {c}")?;
                cause = c.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// What a fault answer needs to know about the request.
pub struct FaultContext<'a> {
    pub request_id: &'a RequestId,
    /// The microversion of a v2.1 request: Nova then adds its version headers.
    pub version: Option<Microversion>,
}

/// Nova's fault name for a status (`nova/api/openstack/wsgi.py` `_fault_names`).
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// A fault answer as Nova sends it: `json.dumps` layout, Nova's headers.
/// `message_json` is a complete JSON string token.
pub fn fault_response(
    status: StatusCode,
    message_json: &str,
    ctx: &FaultContext<'_>,
) -> Response<Full<Bytes>> {
    let body = format!(
        "{{\"{}\": {{\"code\": {}, \"message\": {}}}}}",
        fault_name(status),
        status.as_u16(),
        message_json
    );
    let mut response = Response::new(Full::new(Bytes::from(body.into_bytes())));
    *response.status_mut() = status;
    let len = response_len(&response);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    ctx.request_id.set_response_headers(headers);
    if let Some(version) = ctx.version {
        // Formatted from two integers: always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&format!("compute {version}")) {
            headers.insert("openstack-api-version", v);
        }
        if let Ok(v) = HeaderValue::from_str(&version.to_string()) {
            headers.insert("x-openstack-nova-api-version", v);
        }
        headers.append(VARY, HeaderValue::from_static("OpenStack-API-Version"));
        headers.append(
            VARY,
            HeaderValue::from_static("X-OpenStack-Nova-API-Version"),
        );
    }
    response
}

fn response_len(response: &Response<Full<Bytes>>) -> u64 {
    use http_body::Body;
    response.body().size_hint().exact().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn fault_layout_and_headers_match_nova() {
        let id = RequestId::new();
        let ctx = FaultContext {
            request_id: &id,
            version: Some(Microversion::new(2, 19)),
        };
        let r = fault_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json_string("Unable to process the contained instructions"),
            &ctx,
        );
        assert_eq!(r.status(), 422);
        let h = r.headers();
        assert_eq!(h["content-type"], "application/json; charset=UTF-8");
        assert_eq!(h["openstack-api-version"], "compute 2.19");
        assert_eq!(h["x-openstack-nova-api-version"], "2.19");
        assert_eq!(h.get_all("vary").iter().count(), 2);
        assert_eq!(h["x-openstack-request-id"], id.as_str());
        assert_eq!(h["x-compute-request-id"], id.as_str());
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#
        );
    }

    #[test]
    fn fault_names() {
        assert_eq!(fault_name(StatusCode::BAD_REQUEST), "badRequest");
        assert_eq!(fault_name(StatusCode::PAYLOAD_TOO_LARGE), "overLimit");
        assert_eq!(fault_name(StatusCode::NOT_ACCEPTABLE), "computeFault");
        assert_eq!(fault_name(StatusCode::BAD_GATEWAY), "computeFault");
        assert_eq!(fault_name(StatusCode::GATEWAY_TIMEOUT), "computeFault");
    }
}
