//! Where the proxy meets the Nova knowledge: for a request that Nova would
//! route to update-server (PUT), create-server or a server action (POST),
//! take the checks Nova makes before body validation in Nova's order (size
//! limit, token, microversion, Content-Type), read the body within the
//! limit, and answer, rewrite or pass it on.
//!
//! Requests that Nova would refuse before looking at the body are forwarded
//! unvalidated, so that the client gets Nova's own answer.
//!
//! In report-only mode every verdict is reached and logged the same way, but
//! the request always goes to Nova exactly as received.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Either, Full};
use tower::{Layer, Service};

use crate::config::GuardMode;
use crate::error::{fault_response, BoxError, ErrorKind, FaultContext, ProxyError};
use crate::layer::access_log::{UpstreamInfo, ValidationInfo, VerdictKind};
use crate::layer::idle_body::IdleBody;
use crate::layer::request_id::RequestId;
use crate::nova::microversion::{header_text, requested};
use crate::nova::route::{match_action, match_create, match_update};
use crate::nova::{
    check_request, is_rebuild_action, AccessIpPolicy, Microversion, Mode, Operation, Profile,
    Verdict,
};

/// What the validation layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    /// The Nova release and Python whose answers are matched.
    pub profile: Profile,
    pub path_prefix: String,
    pub max_body_bytes: u64,
    pub max_microversion: Microversion,
    /// The whole body of a validated request must arrive within this; a
    /// streamed body may not pause longer than this.
    pub body_timeout: std::time::Duration,
    pub mode: GuardMode,
    pub access_ip_policy: AccessIpPolicy,
}

#[derive(Debug, Clone)]
pub struct ValidateLayer {
    settings: Arc<ValidateSettings>,
}

impl ValidateLayer {
    pub fn new(settings: ValidateSettings) -> Self {
        ValidateLayer {
            settings: Arc::new(settings),
        }
    }
}

impl<S> Layer<S> for ValidateLayer {
    type Service = Validate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Validate {
            inner,
            settings: self.settings.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Validate<S> {
    inner: S,
    settings: Arc<ValidateSettings>,
}

/// The body sent on: the client's stream (after what was already read of
/// it, in report mode for a body over the limit), or a validated buffer.
pub type ForwardBody<B> = Either<IdleBody<Resumed<B>>, Full<Bytes>>;

/// The client's body passed on as a stream, within the pause limit.
fn streamed<B>(req: Request<B>, limit: std::time::Duration) -> Request<ForwardBody<B>> {
    req.map(|body| {
        Either::Left(IdleBody::new(
            Resumed::new(body),
            limit,
            ErrorKind::ClientBodyTimeout,
        ))
    })
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, RB> Service<Request<B>> for Validate<S>
where
    S: Service<Request<ForwardBody<B>>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type Response = Response<Either<RB, Full<Bytes>>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was not polled ready stays behind (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = self.settings.clone();

        let plan = plan(&settings, &req);
        Box::pin(async move {
            let report = settings.mode == GuardMode::Report;
            let (op, mode, version) = match plan {
                Plan::Pass(info) => {
                    let req = streamed(req, settings.body_timeout);
                    let resp = inner.call(req).await?;
                    return Ok(with_info(resp.map(Either::Left), info));
                }
                Plan::TooLarge(mut info) if report => {
                    info.verdict = VerdictKind::Reported;
                    info.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
                    let req = streamed(req, settings.body_timeout);
                    let resp = inner.call(req).await?;
                    return Ok(with_info(resp.map(Either::Left), info));
                }
                Plan::TooLarge(info) => {
                    let id = request_id(&req);
                    let resp = too_large(&id);
                    return Ok(with_info(resp, info));
                }
                Plan::Validate { op, mode, version } => (op, mode, version),
            };
            let info = |verdict| ValidationInfo {
                verdict,
                mode: Some(mode),
                microversion: (mode == Mode::V21).then_some(version),
                operation: Some(op.as_str()),
                ..ValidationInfo::passthrough()
            };
            let id = request_id(&req);
            let (mut parts, body) = req.into_parts();
            let limit = body_limit(settings.max_body_bytes);
            let read = tokio::time::timeout(settings.body_timeout, read_body(body, limit));
            let read = match read.await {
                Ok(result) => result,
                Err(_) => Err(ReadError::Failed(ProxyError::new(
                    ErrorKind::ClientBodyTimeout,
                ))),
            };
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(ReadError::TooLarge(resumed)) => {
                    let mut i = info(VerdictKind::Rejected);
                    i.rule = Some("maxBodyBytes");
                    if report {
                        i.verdict = VerdictKind::Reported;
                        i.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
                        let body = IdleBody::new(
                            resumed,
                            settings.body_timeout,
                            ErrorKind::ClientBodyTimeout,
                        );
                        let req = Request::from_parts(parts, Either::Left(body));
                        let resp = inner.call(req).await?;
                        return Ok(with_info(resp.map(Either::Left), i));
                    }
                    return Ok(with_info(too_large(&id), i));
                }
                Err(ReadError::Failed(err)) => {
                    let mut r = err.to_response(&FaultContext {
                        request_id: &id,
                        version: None,
                    });
                    r.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                    r.extensions_mut().insert(UpstreamInfo {
                        error: Some(err.kind),
                        cause: Some(err.to_string()),
                        ..UpstreamInfo::default()
                    });
                    let mut i = info(VerdictKind::Rejected);
                    i.rule = Some(match err.kind {
                        ErrorKind::ClientBodyTimeout => "clientBodyTimeout",
                        _ => "clientBody",
                    });
                    return Ok(with_info(r.map(Either::Right), i));
                }
            };
            let verdict = check_request(
                settings.profile,
                op,
                mode,
                version,
                &bytes,
                &settings.access_ip_policy,
            );
            // The operation the body turned out to be (an action may be another one).
            let mut i = info(VerdictKind::Forwarded);
            if op == Operation::Rebuild && verdict == Verdict::Defer && !is_rebuild_action(&bytes) {
                i.operation = Some("action");
            }
            let (forward, i) = match verdict {
                Verdict::Reject(rejection) => {
                    i.field = rejection.field;
                    i.rule = Some(rejection.rule);
                    if !report {
                        let ctx = FaultContext {
                            request_id: &id,
                            version: (mode == Mode::V21).then_some(version),
                        };
                        let status = StatusCode::from_u16(rejection.status())
                            .unwrap_or(StatusCode::BAD_REQUEST);
                        let resp = fault_response(status, &rejection.message_json, &ctx);
                        i.verdict = VerdictKind::Rejected;
                        return Ok(with_info(resp.map(Either::Right), i));
                    }
                    i.verdict = VerdictKind::Reported;
                    i.would_status = Some(rejection.status());
                    (bytes, i)
                }
                Verdict::Defer => {
                    i.verdict = VerdictKind::Deferred;
                    (bytes, i)
                }
                Verdict::Accept { rewrite } => match rewrite {
                    Some(rw) if !report => {
                        i.ipv6_rewritten = true;
                        (Bytes::from(rw.apply(&bytes)), i)
                    }
                    rw => {
                        if report {
                            i.would_rewrite_ipv6 = Some(rw.is_some());
                        }
                        (bytes, i)
                    }
                },
            };
            // The body is whole now: frame it by length.
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(forward.len()));
            let req = Request::from_parts(parts, Either::Right(Full::new(forward)));
            let resp = inner.call(req).await?;
            Ok(with_info(resp.map(Either::Left), i))
        })
    }
}

enum ReadError<B> {
    /// Over the limit: what was read, and the rest of the stream.
    TooLarge(Resumed<B>),
    /// The client's body failed or took too long.
    Failed(ProxyError),
}

/// Read a whole body of at most `limit` bytes. Trailers are dropped: Nova
/// reads the body only.
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, ReadError<B>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let mut body = body;
    let mut chunks: VecDeque<Bytes> = VecDeque::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ReadError::Failed(ProxyError::with_source(ErrorKind::ClientBody, e)))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len());
        chunks.push_back(data);
        if total > limit {
            return Err(ReadError::TooLarge(Resumed {
                prefix: chunks,
                inner: body,
            }));
        }
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop_front().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(total);
            for c in &chunks {
                all.extend_from_slice(c);
            }
            Bytes::from(all)
        }
    })
}

/// A body of which some chunks were already read: those first, then the rest.
pub struct Resumed<B> {
    prefix: VecDeque<Bytes>,
    inner: B,
}

impl<B> Resumed<B> {
    /// Nothing read yet.
    pub fn new(inner: B) -> Self {
        Resumed {
            prefix: VecDeque::new(),
            inner,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Resumed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(chunk) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.prefix.iter().map(|c| c.len() as u64).sum();
        let rest = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}

enum Plan {
    /// Not validated: forward as it is.
    Pass(ValidationInfo),
    /// Content-Length over the limit: 413 without reading.
    TooLarge(ValidationInfo),
    Validate {
        op: Operation,
        mode: Mode,
        version: Microversion,
    },
}

/// Decide from the request head alone, in Nova's order of checks
/// (nova-facts §5): size limit, token, routing, microversion, Content-Type.
fn plan<B>(settings: &ValidateSettings, req: &Request<B>) -> Plan {
    let pass = Plan::Pass(ValidationInfo::passthrough());
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let prefix = &settings.path_prefix;
    let routed = match *req.method() {
        Method::PUT => match_update(prefix, target).map(|m| (Operation::Update, m)),
        Method::POST => match_create(prefix, target)
            .map(|m| (Operation::Create, m))
            .or_else(|| match_action(prefix, target).map(|m| (Operation::Rebuild, m))),
        _ => None,
    };
    let Some((op, mode)) = routed else {
        return pass;
    };
    let headers = req.headers();
    let mut info = ValidationInfo::passthrough();
    info.mode = Some(mode);
    // Until the body is read, an action is only an action.
    info.operation = Some(match op {
        Operation::Rebuild => "action",
        other => other.as_str(),
    });
    if content_length(headers).is_some_and(|len| len > settings.max_body_bytes) {
        info.verdict = VerdictKind::Rejected;
        info.rule = Some("maxBodyBytes");
        return Plan::TooLarge(info);
    }
    let has_token = headers
        .get_all("x-auth-token")
        .iter()
        .any(|v| !v.as_bytes().is_empty());
    if !has_token {
        return Plan::Pass(info);
    }
    let version = match mode {
        // The legacy endpoint deletes the microversion headers.
        Mode::LegacyV2 => Microversion::MIN,
        Mode::V21 => match request_version(headers, settings.max_microversion) {
            Some(v) => v,
            None => return Plan::Pass(info),
        },
    };
    if !content_type_accepted(headers) {
        return Plan::Pass(info);
    }
    Plan::Validate { op, mode, version }
}

fn request_version(headers: &HeaderMap, max: Microversion) -> Option<Microversion> {
    // As the WSGI server hands them to Nova: Latin-1 text.
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| header_text(v.as_bytes()))
            .collect()
    };
    let standard = values("openstack-api-version");
    let legacy = values("x-openstack-nova-api-version");
    let standard: Vec<&str> = standard.iter().map(String::as_str).collect();
    let legacy: Vec<&str> = legacy.iter().map(String::as_str).collect();
    requested(&standard, &legacy, max).ok()
}

/// Nova's `Request.get_content_type()`: absent, empty or exactly
/// `text/plain` means "none" (the body is still parsed); otherwise the part
/// before `;`, case- and space-sensitive, must be one of Nova's two types.
fn content_type_accepted(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return true,
        (Some(v), None) => v.as_bytes(),
        // Joined by the WSGI server into a value Nova does not know.
        (Some(_), Some(_)) => return false,
    };
    let media_type = value.split(|b| *b == b';').next().unwrap_or_default();
    matches!(
        media_type,
        b"" | b"text/plain" | b"application/json" | b"application/vnd.openstack.compute+json"
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

fn body_limit(max: u64) -> usize {
    usize::try_from(max).unwrap_or(usize::MAX)
}

fn request_id<B>(req: &Request<B>) -> RequestId {
    req.extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_default()
}

fn too_large<RB>(id: &RequestId) -> Response<Either<RB, Full<Bytes>>> {
    let mut resp = ProxyError::new(ErrorKind::BodyTooLarge).to_response(&FaultContext {
        request_id: id,
        version: None,
    });
    // The unread rest of the body would otherwise be taken for the next request.
    resp.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    resp.map(Either::Right)
}

fn with_info<T>(mut resp: Response<T>, info: ValidationInfo) -> Response<T> {
    resp.extensions_mut().insert(info);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn content_types_as_nova_reads_them() {
        for ok in [
            &[][..],
            &[("content-type", "")],
            &[("content-type", "text/plain")],
            &[("content-type", "text/plain; charset=UTF-8")],
            &[("content-type", "application/json")],
            &[("content-type", "application/json; charset=UTF-8")],
            &[("content-type", "application/json;foo")],
            &[("content-type", "application/vnd.openstack.compute+json")],
        ] {
            assert!(content_type_accepted(&headers(ok)), "{ok:?}");
        }
        for refused in [
            &[("content-type", "Application/JSON")][..],
            &[("content-type", "application/json ; charset=UTF-8")],
            &[("content-type", "application/xml")],
            &[
                ("content-type", "application/json"),
                ("content-type", "application/json"),
            ],
        ] {
            assert!(!content_type_accepted(&headers(refused)), "{refused:?}");
        }
    }
}
