//! The HTTP/2 (and hyper) path's validation layer: [`guard::plan`] from the
//! admitted head, the body read within the limit and the body timeout, then
//! the [`Guard`] service's outcome applied: an answer of nova-guard's own, or
//! the (possibly rewritten) body sent on to Nova. Requests that are not
//! guarded are streamed on as they come.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full};
use tower::{Layer, Service, ServiceExt};

use crate::body::{IdleBody, Resumed};
use crate::error::{BoxError, ErrorKind, ProxyError};
use crate::exchange::{Admission, ValidationInfo, Verdict};
use crate::guard::{self, Guard, Guarded, Heads, Outcome, Plan};
use crate::rescue::Fault;

#[derive(Debug, Clone)]
pub struct ValidateLayer {
    guard: Guard,
}

impl ValidateLayer {
    pub fn new(guard: Guard) -> Self {
        ValidateLayer { guard }
    }
}

impl<S> Layer<S> for ValidateLayer {
    type Service = Validate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Validate {
            inner,
            guard: self.guard.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Validate<S> {
    inner: S,
    guard: Guard,
}

/// The body sent on: the client's stream (after what was already read of
/// it, in report mode for a body over the limit), or a validated buffer.
pub type ForwardBody<B> = Either<IdleBody<Resumed<B>>, Full<Bytes>>;

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

fn heads<'a>(admission: &'a Admission, content_length: Option<u64>) -> Heads<'a> {
    Heads {
        token: admission.token,
        api_version: admission.api_version.as_deref(),
        nova_api_version: admission.nova_api_version.as_deref(),
        content_type: admission.content_type.as_deref(),
        accept_apis: admission.accept_apis,
        content_length,
    }
}

fn content_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

impl<S, B, RB> Service<Request<B>> for Validate<S>
where
    S: Service<Request<ForwardBody<B>>, Response = Response<RB>, Error = Fault>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
    RB: Send + 'static,
{
    type Response = Response<Either<RB, Full<Bytes>>>;
    type Error = Fault;
    type Future = BoxFuture<Self::Response, Fault>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was not polled ready stays behind (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        let settings = guard.settings();
        let plan = {
            let admission = req.extensions().get::<Admission>();
            let empty = Admission::default();
            let heads = heads(admission.unwrap_or(&empty), content_length(&req));
            let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
            guard::plan(settings, req.method(), target, &heads)
        };
        let report = settings.report();
        let timeout = settings.body_timeout;
        let limit = settings.body_limit();
        Box::pin(async move {
            let guarded = match plan {
                Plan::Pass(info) => {
                    let resp = inner
                        .call(streamed(req, timeout))
                        .await
                        .map_err(tag(&info))?;
                    return Ok(with_info(resp.map(Either::Left), info));
                }
                Plan::TooLarge(mut info) if report => {
                    info.verdict = Verdict::Reported;
                    info.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
                    let resp = inner
                        .call(streamed(req, timeout))
                        .await
                        .map_err(tag(&info))?;
                    return Ok(with_info(resp.map(Either::Left), info));
                }
                Plan::TooLarge(info) => {
                    return Err(Fault::with(ErrorKind::BodyTooLarge, info));
                }
                Plan::Validate(guarded) => guarded,
            };
            validate(inner, guard, guarded, req, limit).await
        })
    }
}

async fn validate<S, B, RB>(
    mut inner: S,
    guard: Guard,
    guarded: Guarded,
    req: Request<B>,
    limit: usize,
) -> Result<Response<Either<RB, Full<Bytes>>>, Fault>
where
    S: Service<Request<ForwardBody<B>>, Response = Response<RB>, Error = Fault>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    let settings = guard.settings();
    let report = settings.report();
    let timeout = settings.body_timeout;
    let request_id = super::request_id::of(&req);
    let (mut parts, body) = req.into_parts();
    let read = match tokio::time::timeout(timeout, read_body(body, limit)).await {
        Ok(result) => result,
        Err(_) => Err(ReadError::Failed(ProxyError::new(
            ErrorKind::ClientBodyTimeout,
        ))),
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(ReadError::TooLarge(resumed)) => {
            let mut info = guarded.info();
            info.verdict = Verdict::Rejected;
            info.rule = Some(crate::exchange::Rule::MaxBodyBytes);
            if !report {
                return Err(Fault::with(ErrorKind::BodyTooLarge, info));
            }
            info.verdict = Verdict::Reported;
            info.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
            let body = IdleBody::new(resumed, timeout, ErrorKind::ClientBodyTimeout);
            let resp = inner
                .call(Request::from_parts(parts, Either::Left(body)))
                .await
                .map_err(tag(&info))?;
            return Ok(with_info(resp.map(Either::Left), info));
        }
        Err(ReadError::Failed(err)) => {
            // Nova never sees it: answered by nova-guard.
            let mut info = guarded.info();
            info.verdict = Verdict::Rejected;
            return Err(Fault::with(err, info));
        }
    };
    let request = guard::Request {
        guarded,
        body: bytes,
        request_id,
    };
    let outcome = match guard.oneshot(request).await {
        Ok(outcome) => outcome,
        Err(never) => match never {},
    };
    match outcome {
        Outcome::Answer { answer, info } => Ok(with_info(
            answer.into_response().map(|b| Either::Right(Full::new(b))),
            info,
        )),
        Outcome::Forward { body, info } => {
            // The body is whole now: frame it by length.
            parts.headers.remove(TRANSFER_ENCODING);
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let req = Request::from_parts(parts, Either::Right(Full::new(body)));
            let resp = inner.call(req).await.map_err(tag(&info))?;
            Ok(with_info(resp.map(Either::Left), info))
        }
    }
}

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
            return Err(ReadError::TooLarge(Resumed::after(chunks, body)));
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

/// A fault of the exchange with Nova, labelled with what validation decided.
fn tag(info: &ValidationInfo) -> impl FnOnce(Fault) -> Fault + '_ {
    move |fault| Fault {
        validation: info.clone(),
        ..fault
    }
}

fn with_info<T>(mut resp: Response<T>, info: ValidationInfo) -> Response<T> {
    resp.extensions_mut().insert(info);
    resp
}
