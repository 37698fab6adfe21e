//! One structured event per exchange, written when the response body has
//! been sent (or dropped, when the client goes away). It never holds a
//! token or a body: only the request line's path, the verdict and counts.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Buf;
use http::header::HeaderValue;
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
// Formatted straight into the event: no String per field.
use tracing::field::display;

use ipnetwork::IpNetwork;

use crate::error::ErrorKind;
use crate::forward::client_address;
use crate::layer::request_id::RequestId;
use crate::metrics::{Metrics, Observation};
use crate::nova::{Microversion, Mode};

/// The client's address, put in the request's extensions by the server.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    /// Validated and sent to Nova.
    Forwarded,
    /// Answered by nova-guard; Nova never saw it.
    Rejected,
    /// Not validated (not an update, create or action request, or left to
    /// Nova's own earlier checks).
    Passthrough,
    /// A create or rebuild body nova-guard could not judge with certainty
    /// (or an action other than rebuild): sent to Nova unchanged.
    Deferred,
    /// Report-only mode: enforce mode would have answered it itself
    /// (`would_status`, `field`, `rule` say how); sent to Nova unchanged.
    Reported,
}

impl VerdictKind {
    fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Forwarded => "forwarded",
            VerdictKind::Rejected => "rejected",
            VerdictKind::Passthrough => "passthrough",
            VerdictKind::Deferred => "deferred",
            VerdictKind::Reported => "reported",
        }
    }
}

/// What the validation layer decided; carried in the response's extensions.
#[derive(Debug, Clone)]
pub struct ValidationInfo {
    pub verdict: VerdictKind,
    pub mode: Option<Mode>,
    pub microversion: Option<Microversion>,
    pub field: Option<&'static str>,
    pub rule: Option<&'static str>,
    pub ipv6_rewritten: bool,
    /// `update`, `create` or `rebuild` (`action` when the body was not read).
    pub operation: Option<&'static str>,
    /// Report-only mode: the status enforce mode would have answered with.
    pub would_status: Option<u16>,
    /// Report-only mode: whether enforce mode would have rewritten `accessIPv6`.
    pub would_rewrite_ipv6: Option<bool>,
}

impl ValidationInfo {
    pub fn passthrough() -> Self {
        ValidationInfo {
            verdict: VerdictKind::Passthrough,
            mode: None,
            microversion: None,
            field: None,
            rule: None,
            ipv6_rewritten: false,
            operation: None,
            would_status: None,
            would_rewrite_ipv6: None,
        }
    }
}

/// What the forwarding service saw of Nova; carried in the response's extensions.
#[derive(Debug, Clone, Default)]
pub struct UpstreamInfo {
    pub status: Option<u16>,
    pub request_id: Option<HeaderValue>,
    pub error: Option<ErrorKind>,
    /// The error's cause chain, for operators.
    pub cause: Option<String>,
    /// Time from sending the request to Nova to its response head (or the error).
    pub duration: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct AccessLogLayer {
    metrics: Arc<Metrics>,
    trusted_proxies: Arc<Vec<IpNetwork>>,
}

impl AccessLogLayer {
    /// Every exchange is also counted in `metrics`; the client address is
    /// read from `X-Forwarded-For` only behind `trusted_proxies`.
    pub fn new(metrics: Arc<Metrics>, trusted_proxies: Vec<IpNetwork>) -> Self {
        AccessLogLayer {
            metrics,
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            metrics: self.metrics.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    metrics: Arc<Metrics>,
    trusted_proxies: Arc<Vec<IpNetwork>>,
}

impl<S, B, RB> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<Counted<B>>, Response = Response<RB>>,
    RB: Body,
{
    type Response = Response<Logged<RB>>;
    type Error = S::Error;
    type Future = AccessLogFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let bytes_in = Arc::new(AtomicU64::new(0));
        let record = Record {
            start: Instant::now(),
            method: req.method().clone(),
            // The path only: a query string may carry anything.
            path: req.uri().path().to_owned(),
            request_id: req.extensions().get::<RequestId>().cloned(),
            peer: req.extensions().get::<Peer>().copied(),
            client: req
                .extensions()
                .get::<Peer>()
                .map(|p| client_address(p.0.ip(), req.headers(), &self.trusted_proxies)),
            bytes_in: bytes_in.clone(),
            metrics: self.metrics.clone(),
        };
        let req = req.map(|body| Counted {
            inner: body,
            count: bytes_in,
        });
        AccessLogFuture {
            inner: self.inner.call(req),
            record: Some(record),
        }
    }
}

struct Record {
    start: Instant,
    method: Method,
    path: String,
    request_id: Option<RequestId>,
    peer: Option<Peer>,
    client: Option<std::net::IpAddr>,
    bytes_in: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

pin_project! {
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, RB, E> Future for AccessLogFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
    RB: Body,
{
    type Output = Result<Response<Logged<RB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let event = this.record.take().map(|record| Event {
            record,
            status: response.status().as_u16(),
            validation: response.extensions().get::<ValidationInfo>().cloned(),
            upstream: response.extensions().get::<UpstreamInfo>().cloned(),
            bytes_out: 0,
            complete: response.body().is_end_stream(),
        });
        Poll::Ready(Ok(response.map(|inner| Logged { inner, event })))
    }
}

struct Event {
    record: Record,
    status: u16,
    validation: Option<ValidationInfo>,
    upstream: Option<UpstreamInfo>,
    bytes_out: u64,
    complete: bool,
}

impl Event {
    fn emit(&self) {
        let r = &self.record;
        let v = self.validation.as_ref();
        let u = self.upstream.as_ref();
        let verdict = v.map_or("passthrough", |v| v.verdict.as_str());
        let mode = v.and_then(|v| v.mode).map(|m| match m {
            Mode::LegacyV2 => "v2",
            Mode::V21 => "v2.1",
        });
        let microversion = v.and_then(|v| v.microversion).map(display);
        let upstream_request_id = u
            .and_then(|u| u.request_id.as_ref())
            .and_then(|h| h.to_str().ok());
        tracing::info!(
            target: "nova_guard::access",
            request_id = r.request_id.as_ref().map(RequestId::as_str),
            peer = r.peer.map(|p| display(p.0)),
            client = r.client.map(display),
            method = r.method.as_str(),
            path = r.path.as_str(),
            mode,
            microversion,
            operation = v.and_then(|v| v.operation),
            verdict,
            would_status = v.and_then(|v| v.would_status),
            would_rewrite_ipv6 = v.and_then(|v| v.would_rewrite_ipv6),
            status = self.status,
            field = v.and_then(|v| v.field),
            rule = v.and_then(|v| v.rule),
            ipv6_rewritten = v.is_some_and(|v| v.ipv6_rewritten),
            upstream_status = u.and_then(|u| u.status),
            upstream_request_id,
            error = u.and_then(|u| u.error).map(ErrorKind::as_str),
            cause = u.and_then(|u| u.cause.as_deref()),
            bytes_in = r.bytes_in.load(Ordering::Relaxed),
            bytes_out = self.bytes_out,
            complete = self.complete,
            duration_ms = r.start.elapsed().as_secs_f64() * 1000.0,
            "exchange"
        );
        if u.is_some_and(|u| u.status.is_some()) {
            r.metrics.upstream_answered();
        }
        r.metrics.observe(&Observation {
            route: v.and_then(|v| v.operation).unwrap_or("other"),
            verdict,
            status: self.status,
            rejected_field: v.and_then(|v| v.field),
            rejected_rule: v.and_then(|v| v.rule),
            upstream_error: u.and_then(|u| u.error),
            duration: r.start.elapsed(),
            upstream_duration: u.and_then(|u| u.duration),
            bytes_in: r.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out,
        });
    }
}

/// A request hyper refused while reading its head, and answered itself
/// before any layer saw it: 431 for a head over the byte or line limit, 400
/// for one that is not HTTP. Logged and counted here, once, as an exchange
/// with neither method nor path. Other connection errors (the client went
/// away, a timeout) had no request to answer and are not exchanges.
pub fn log_refused_head(
    metrics: &Metrics,
    peer: std::net::SocketAddr,
    error: &(dyn std::error::Error + 'static),
) {
    let Some((status, rule)) = refused_head(error) else {
        return;
    };
    tracing::info!(
        target: "nova_guard::access",
        peer = display(peer),
        client = display(peer.ip()),
        verdict = "rejected",
        status,
        rule,
        complete = true,
        "exchange"
    );
    metrics.observe(&Observation {
        route: "other",
        verdict: "rejected",
        status,
        rejected_field: None,
        rejected_rule: Some(rule),
        upstream_error: None,
        duration: std::time::Duration::ZERO,
        upstream_duration: None,
        bytes_in: 0,
        bytes_out: 0,
    });
}

/// The status hyper answered a head it could not parse with, and our rule name.
fn refused_head(error: &(dyn std::error::Error + 'static)) -> Option<(u16, &'static str)> {
    let mut cause = Some(error);
    while let Some(c) = cause {
        if let Some(e) = c.downcast_ref::<hyper::Error>() {
            return if e.is_parse_too_large() {
                Some((431, "headTooLarge"))
            } else if e.is_parse() {
                Some((400, "malformedHead"))
            } else {
                None
            };
        }
        cause = c.source();
    }
    None
}

pin_project! {
    /// A request body that counts the bytes read from the client.
    pub struct Counted<B> {
        #[pin]
        inner: B,
        count: Arc<AtomicU64>,
    }
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(f)) = &frame {
            if let Some(data) = f.data_ref() {
                this.count
                    .fetch_add(data.remaining() as u64, Ordering::Relaxed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body that writes the exchange's event when it is done.
    pub struct Logged<B> {
        #[pin]
        inner: B,
        event: Option<Event>,
    }

    impl<B> PinnedDrop for Logged<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(event) = this.project().event.take() {
                event.emit();
            }
        }
    }
}

/// The kind of a body error, when it is one of ours (a timeout).
pub trait ErrorKindOf {
    fn error_kind(&self) -> Option<ErrorKind>;
}

impl ErrorKindOf for crate::error::BoxError {
    fn error_kind(&self) -> Option<ErrorKind> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self.as_ref());
        while let Some(c) = cause {
            if let Some(e) = c.downcast_ref::<crate::error::ProxyError>() {
                return Some(e.kind);
            }
            cause = c.source();
        }
        None
    }
}

impl<B> Body for Logged<B>
where
    B: Body,
    B::Error: std::fmt::Display + ErrorKindOf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(event) = this.event.as_mut() {
            match &frame {
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        event.bytes_out += data.remaining() as u64;
                    }
                }
                // Only Nova's streamed answers can fail here: the answer is cut,
                // because Nova stalled (a timeout of ours) or failed.
                Some(Err(e)) => {
                    let upstream = event.upstream.get_or_insert_with(UpstreamInfo::default);
                    if upstream.error.is_none() {
                        let kind = e.error_kind().unwrap_or(ErrorKind::UpstreamProtocol);
                        upstream.error = Some(kind);
                        upstream.cause = Some(match e.error_kind() {
                            Some(_) => format!("{e}: in the response body"),
                            None => format!("{}: response body: {e}", kind.as_str()),
                        });
                    }
                }
                None => {}
            }
            // hyper stops polling once a body says it has ended.
            event.complete = frame.is_none() || this.inner.is_end_stream();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
