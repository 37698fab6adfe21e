//! The one place where a fault becomes an answer: Nova's envelope
//! (`{"<faultName>": {"code": N, "message": "..."}}`, `json.dumps` layout,
//! Nova's headers) and the connection's fate. Layers and transports return
//! [`ProxyError`]s; they never render them.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{HeaderMap, Response, StatusCode};

use crate::error::{ErrorKind, ProxyError};
use crate::exchange::{RequestId, Rule, UpstreamInfo, ValidationInfo, Verdict};
use crate::nova::pyrepr::json_string;
use crate::nova::Microversion;
use crate::text;

/// An answer nova-guard gives itself, whole, with Nova's headers. Kept as
/// its parts: the HTTP/1 connection writes them straight out, and only the
/// layered (HTTP/2) path builds a `Response` of it.
#[derive(Debug, Clone)]
pub struct Answer {
    status: StatusCode,
    body: Bytes,
    request_id: RequestId,
    /// Nova's version headers go on answers to v2.1 requests.
    version: Option<Microversion>,
    /// Says `Connection: close` when built into a `Response`.
    close: bool,
}

impl Answer {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Its header lines as HTTP/1 writes them (`name: value\r\n` each),
    /// and as Nova sends them: content type and length, the request id
    /// under both names, and for a v2.1 request the version headers.
    /// `Connection` is left to the transport. Written as few pieces as
    /// possible: the connection writes this for every refusal.
    pub fn write_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"content-type: application/json; charset=UTF-8\r\ncontent-length: ");
        text::push_u64(out, self.body.len() as u64);
        // Nova sends the same id under both names.
        out.extend_from_slice(b"\r\nx-openstack-request-id: ");
        out.extend_from_slice(self.request_id.as_bytes());
        out.extend_from_slice(b"\r\nx-compute-request-id: ");
        out.extend_from_slice(self.request_id.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(version) = self.version {
            out.extend_from_slice(b"openstack-api-version: compute ");
            text::push_version(out, version);
            out.extend_from_slice(b"\r\nx-openstack-nova-api-version: ");
            text::push_version(out, version);
            out.extend_from_slice(
                b"\r\nvary: OpenStack-API-Version\r\nvary: X-OpenStack-Nova-API-Version\r\n",
            );
        }
    }

    /// The answer as a `Response`, for the layered path: its fields read
    /// back from the lines [`Self::write_fields`] writes.
    pub fn into_response(self) -> Response<Bytes> {
        let mut fields = Vec::with_capacity(384);
        self.write_fields(&mut fields);
        let mut headers = HeaderMap::with_capacity(8);
        for line in fields.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default().trim_ascii_start();
            // Lowercase constant names and ASCII values: both always parse.
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        if self.close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
    }
}

/// What a fault answer needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct FaultContext {
    pub request_id: RequestId,
    /// The microversion of a v2.1 request: Nova then adds its version headers.
    pub version: Option<Microversion>,
}

impl FaultContext {
    pub fn new(request_id: RequestId) -> Self {
        FaultContext {
            request_id,
            version: None,
        }
    }
}

/// An exchange that failed: the error, and what validation had decided
/// about the request when it did (for the log).
#[derive(Debug)]
pub struct Fault {
    pub error: ProxyError,
    pub validation: ValidationInfo,
}

impl Fault {
    pub fn new(error: impl Into<ProxyError>) -> Self {
        Fault {
            error: error.into(),
            validation: ValidationInfo::passthrough(),
        }
    }

    pub fn with(error: impl Into<ProxyError>, validation: ValidationInfo) -> Self {
        Fault {
            error: error.into(),
            validation,
        }
    }
}

impl From<ProxyError> for Fault {
    fn from(error: ProxyError) -> Self {
        Fault::new(error)
    }
}

/// A fault's answer, whether the connection must close after it, and what
/// the access log says of it.
#[derive(Debug)]
pub struct Rescued {
    pub answer: Answer,
    /// The rest of the connection cannot be trusted to be framed right, or
    /// part of the request is still unread.
    pub close: bool,
    pub validation: ValidationInfo,
    pub upstream: UpstreamInfo,
}

/// The answer to `fault`, the connection's fate, and the exchange's labels.
pub fn rescue(fault: Fault, request_id: RequestId) -> Rescued {
    let Fault {
        error,
        mut validation,
    } = fault;
    let kind = error.kind;
    let close = closes_connection(kind);
    let mut answer = fault_answer(
        kind.status(),
        &json_string(kind.message()),
        &FaultContext::new(request_id),
    );
    answer.close = close;
    // Whoever raised the fault said whether Nova saw the request (a body
    // that broke off on its way to Nova keeps its verdict); a rejection is
    // logged with its rule.
    if validation.verdict == Verdict::Rejected && validation.rule.is_none() {
        validation.rule = rule_of(kind);
    }
    let upstream = UpstreamInfo {
        error: Some(kind),
        cause: Some(error.chain()),
        ..UpstreamInfo::default()
    };
    Rescued {
        answer,
        close,
        validation,
        upstream,
    }
}

/// The rule logged for a fault of the client's.
fn rule_of(kind: ErrorKind) -> Option<Rule> {
    Some(match kind {
        ErrorKind::BodyTooLarge => Rule::MaxBodyBytes,
        ErrorKind::ClientBody => Rule::ClientBody,
        ErrorKind::ClientBodyTimeout => Rule::ClientBodyTimeout,
        ErrorKind::UriTooLong => Rule::MaxUriBytes,
        ErrorKind::HeadTooLarge => Rule::HeadTooLarge,
        ErrorKind::MalformedHead => Rule::MalformedHead,
        ErrorKind::AmbiguousFraming => Rule::Framing(crate::wire::Ambiguity::Unfollowed),
        ErrorKind::ConflictingHeader => Rule::ConflictingHeader,
        ErrorKind::DuplicateHost => Rule::DuplicateHost,
        ErrorKind::UpstreamConnect
        | ErrorKind::UpstreamTimeout
        | ErrorKind::UpstreamProtocol
        | ErrorKind::Overloaded
        | ErrorKind::ClientGone => return None,
    })
}

/// Whether a connection can carry on after answering `kind`.
fn closes_connection(kind: ErrorKind) -> bool {
    match kind {
        // The request was read whole, or is Nova's to have failed on.
        ErrorKind::UpstreamConnect | ErrorKind::UpstreamTimeout | ErrorKind::UpstreamProtocol => {
            false
        }
        // An unread body would be taken for the next request; a framing or
        // head that could be read two ways taints everything after it.
        ErrorKind::BodyTooLarge
        | ErrorKind::ClientBody
        | ErrorKind::AmbiguousFraming
        | ErrorKind::ClientBodyTimeout
        | ErrorKind::UriTooLong
        | ErrorKind::HeadTooLarge
        | ErrorKind::MalformedHead
        | ErrorKind::ConflictingHeader
        | ErrorKind::DuplicateHost
        | ErrorKind::Overloaded
        | ErrorKind::ClientGone => true,
    }
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

/// A fault answer as Nova sends it. `message_json` is a complete JSON
/// string token (quotes included, `json.dumps` escaping).
pub fn fault_answer(status: StatusCode, message_json: &str, ctx: &FaultContext) -> Answer {
    let name = fault_name(status);
    let mut body = Vec::with_capacity(40 + name.len() + message_json.len());
    body.extend_from_slice(b"{\"");
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(b"\": {\"code\": ");
    body.extend_from_slice(status.as_str().as_bytes());
    body.extend_from_slice(b", \"message\": ");
    body.extend_from_slice(message_json.as_bytes());
    body.extend_from_slice(b"}}");
    Answer {
        status,
        body: Bytes::from(body),
        request_id: ctx.request_id,
        version: ctx.version,
        close: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_layout_and_headers_match_nova() {
        let id = RequestId::new();
        let ctx = FaultContext {
            request_id: id,
            version: Some(Microversion::new(2, 19)),
        };
        let r = fault_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json_string("Unable to process the contained instructions"),
            &ctx,
        );
        assert_eq!(r.status(), 422);
        let mut fields = Vec::new();
        r.write_fields(&mut fields);
        assert_eq!(
            String::from_utf8(fields).unwrap(),
            format!(
                "content-type: application/json; charset=UTF-8\r\n\
                 content-length: {}\r\n\
                 x-openstack-request-id: {id}\r\n\
                 x-compute-request-id: {id}\r\n\
                 openstack-api-version: compute 2.19\r\n\
                 x-openstack-nova-api-version: 2.19\r\n\
                 vary: OpenStack-API-Version\r\n\
                 vary: X-OpenStack-Nova-API-Version\r\n",
                r.body().len(),
                id = id.as_str()
            )
        );
        let r = r.into_response();
        let h = r.headers();
        assert_eq!(h["content-type"], "application/json; charset=UTF-8");
        assert_eq!(h["openstack-api-version"], "compute 2.19");
        assert_eq!(h["x-openstack-nova-api-version"], "2.19");
        assert_eq!(h.get_all("vary").iter().count(), 2);
        assert_eq!(h["x-openstack-request-id"], id.as_str());
        assert_eq!(h["x-compute-request-id"], id.as_str());
        assert_eq!(
            &r.body()[..],
            br#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#
        );
        assert_eq!(h["content-length"], r.body().len().to_string().as_str());
    }

    #[test]
    fn fault_names() {
        assert_eq!(fault_name(StatusCode::BAD_REQUEST), "badRequest");
        assert_eq!(fault_name(StatusCode::PAYLOAD_TOO_LARGE), "overLimit");
        assert_eq!(fault_name(StatusCode::NOT_ACCEPTABLE), "computeFault");
        assert_eq!(fault_name(StatusCode::BAD_GATEWAY), "computeFault");
        assert_eq!(fault_name(StatusCode::GATEWAY_TIMEOUT), "computeFault");
    }

    #[test]
    fn every_kind_gets_an_envelope_and_a_fate() {
        let ctx = FaultContext::new(RequestId::new());
        for (kind, status, close) in [
            (ErrorKind::UpstreamConnect, 502, false),
            (ErrorKind::UpstreamTimeout, 504, false),
            (ErrorKind::UpstreamProtocol, 502, false),
            (ErrorKind::BodyTooLarge, 413, true),
            (ErrorKind::ClientBody, 400, true),
            (ErrorKind::AmbiguousFraming, 400, true),
            (ErrorKind::ClientBodyTimeout, 408, true),
            (ErrorKind::UriTooLong, 414, true),
            (ErrorKind::HeadTooLarge, 431, true),
            (ErrorKind::MalformedHead, 400, true),
            (ErrorKind::ConflictingHeader, 400, true),
            (ErrorKind::DuplicateHost, 400, true),
            (ErrorKind::Overloaded, 503, true),
        ] {
            let r = rescue(Fault::new(kind), ctx.request_id);
            assert_eq!(r.answer.status(), status, "{kind:?}");
            assert_eq!(r.upstream.error, Some(kind));
            assert_eq!(r.close, close, "{kind:?}");
            let response = r.answer.clone().into_response();
            assert_eq!(
                response.headers().get("connection").is_some(),
                close,
                "{kind:?}"
            );
            let body: serde_json::Value = serde_json::from_slice(r.answer.body()).unwrap();
            let name = fault_name(r.answer.status());
            assert_eq!(body[name]["code"], status, "{kind:?}");
            assert_eq!(body[name]["message"], kind.message(), "{kind:?}");
        }
    }
}
