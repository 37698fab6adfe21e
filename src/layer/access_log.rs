//! One access event per exchange (see [`crate::log::access`]), written when
//! the response body has been sent, or when the client went away: before
//! the answer (logged 499, as nginx does) or in the middle of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::error::{ErrorKind, ProxyError, CLIENT_CLOSED};
use crate::exchange::{
    Admission, Exchange, HungUp, Peer, Protocol, RequestId, UpstreamInfo, ValidationInfo,
};
use crate::log::access::finish;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    metrics: Arc<Metrics>,
}

impl AccessLogLayer {
    /// Every exchange is also counted in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AccessLogLayer { metrics }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

pub fn protocol(version: Version) -> Protocol {
    match version {
        Version::HTTP_2 => Protocol::H2,
        Version::HTTP_10 | Version::HTTP_09 => Protocol::Http10,
        _ => Protocol::Http11,
    }
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
        let peer = req
            .extensions()
            .get::<Peer>()
            .copied()
            .unwrap_or_else(Peer::unknown);
        let mut x = Exchange::new(peer, protocol(req.version()));
        x.request_id = req.extensions().get::<RequestId>().copied();
        x.method = Some(req.method().clone());
        x.path = Some(req.uri().path().to_owned());
        if let Some(admission) = req.extensions().get::<Admission>() {
            admission.fill(&mut x);
        }
        let req = req.map(|body| Counted {
            inner: body,
            count: bytes_in.clone(),
        });
        AccessLogFuture {
            inner: self.inner.call(req),
            record: Some(Record {
                exchange: x,
                bytes_in,
                metrics: self.metrics.clone(),
            }),
        }
    }
}

/// An exchange in progress: finished (logged and counted) exactly once.
struct Record {
    exchange: Exchange,
    bytes_in: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
}

impl Record {
    fn finish(mut self) {
        self.exchange.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        finish(&self.metrics, &self.exchange);
    }
}

pin_project! {
    pub struct AccessLogFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }

    impl<F> PinnedDrop for AccessLogFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the answer: the client went away (or the
            // connection was torn down) while Nova was being asked.
            if let Some(mut record) = this.project().record.take() {
                let x = &mut record.exchange;
                x.status = CLIENT_CLOSED;
                x.complete = false;
                x.hung_up = Some(HungUp::Client);
                record.finish();
            }
        }
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
        let record = this.record.take().map(|mut record| {
            let x = &mut record.exchange;
            x.status = response.status().as_u16();
            if let Some(v) = response.extensions().get::<ValidationInfo>() {
                x.validation = v.clone();
            }
            if let Some(u) = response.extensions().get::<UpstreamInfo>() {
                x.upstream = u.clone();
            }
            x.complete = response.body().is_end_stream();
            record
        });
        Poll::Ready(Ok(response.map(|inner| Logged { inner, record })))
    }
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
    /// A response body that finishes the exchange's record when it is done,
    /// or dropped.
    pub struct Logged<B> {
        #[pin]
        inner: B,
        record: Option<Record>,
    }

    impl<B> PinnedDrop for Logged<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(mut record) = this.project().record.take() {
                let x = &mut record.exchange;
                if !x.complete && x.hung_up.is_none() {
                    x.hung_up = Some(HungUp::Client);
                }
                record.finish();
            }
        }
    }
}

impl<B> Body for Logged<B>
where
    B: Body,
    B::Error: std::fmt::Display + AsErrorKind,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(record) = this.record.as_mut() {
            let x = &mut record.exchange;
            match &frame {
                Some(Ok(f)) => {
                    if let Some(data) = f.data_ref() {
                        x.bytes_out += data.remaining() as u64;
                    }
                }
                // Only Nova's streamed answers can fail here: the answer is
                // cut, because Nova stalled (a timeout of ours) or failed.
                Some(Err(e)) => {
                    x.hung_up = Some(HungUp::Upstream);
                    if x.upstream.error.is_none() {
                        let ours = e.error_kind();
                        let kind = ours.unwrap_or(ErrorKind::UpstreamProtocol);
                        x.upstream.error = Some(kind);
                        x.upstream.cause = Some(match ours {
                            Some(_) => format!("{e}: in the response body"),
                            None => format!("{kind}: response body: {e}"),
                        });
                    }
                }
                None => {}
            }
            // hyper stops polling once a body says it has ended.
            x.complete = frame.is_none() || this.inner.is_end_stream();
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

/// The kind of a body error, when it is one of ours (a timeout).
pub trait AsErrorKind {
    fn error_kind(&self) -> Option<ErrorKind>;
}

impl AsErrorKind for crate::error::BoxError {
    fn error_kind(&self) -> Option<ErrorKind> {
        ProxyError::kind_in(self.as_ref())
    }
}
