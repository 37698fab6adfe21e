//! HTTP/2 client connections, served by hyper through the tower stack
//! (request id → admission → access log → rescue → validation → forwarding,
//! see [`crate::layer`]): TLS connections that chose `h2`, and cleartext
//! ones that open with the HTTP/2 preface (the HTTP/1 codec declines those).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use ipnetwork::IpNetwork;

use crate::error::BoxError;
use crate::exchange::Peer;
use crate::forward::Forward;
use crate::guard::Guard;
use crate::metrics::Metrics;
use crate::wire::{InFlight, InFlightGuard, Tracker, Watched, WireWatch};

/// The whole request path of the hyper side, counting every exchange in
/// `metrics`.
pub fn build_service(
    upstream: &crate::upstream::Settings,
    max_uri_bytes: usize,
    trusted_proxies: Vec<IpNetwork>,
    guard: Guard,
    metrics: Arc<Metrics>,
) -> Result<
    impl Service<
            Request<Incoming>,
            Response = Response<
                impl http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
            >,
            Error = Infallible,
            Future = impl Send,
        > + Clone
        + Send
        + 'static,
    BoxError,
> {
    let forward = Forward::new(upstream)?;
    Ok(crate::layer::layers(max_uri_bytes, trusted_proxies, guard, metrics).service(forward))
}

/// What serves the hyper side's requests ([`build_service`]'s stack), with
/// answers of body `B`; named once for every function that passes it on.
pub trait HttpService<B>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// What an HTTP/2 connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// A connection with no stream open and nothing received this long is closed.
    pub idle: Duration,
    /// A client that takes none of our bytes this long is dropped.
    pub send: Duration,
}

pin_project_lite::pin_project! {
    /// A response body that keeps its exchange counted as in flight.
    struct InFlightBody<B> {
        #[pin]
        inner: B,
        guard: InFlightGuard,
    }
}

impl<B: http_body::Body> http_body::Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Serve one HTTP/2 connection until it ends; on drain, finish the streams
/// in flight and refuse new ones (GOAWAY).
pub async fn serve<IO, S, RB>(
    io: IO,
    peer: Peer,
    service: S,
    limits: Limits,
    mut drain: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<RB>,
    RB: http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
{
    let in_flight = InFlight::new();
    // The tracker sees the preface and stands aside; the wrapper keeps the
    // idle and send limits.
    let tracker = Tracker::new(
        WireWatch::new(),
        limits.max_header_bytes,
        limits.max_headers,
    );
    let io = Watched::new(io, tracker, limits.idle, in_flight.clone(), limits.send);
    let hyper_service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let guard = in_flight.enter();
        req.extensions_mut().insert(peer);
        let call = service.clone().oneshot(req);
        async move {
            let resp = call.await?;
            Ok::<_, Infallible>(resp.map(|inner| InFlightBody { inner, guard }))
        }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection(TokioIo::new(io), hyper_service);
    tokio::pin!(conn);
    let draining = *drain.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(peer = %peer.remote, error = %e, "HTTP/2 connection ended with an error");
            }
            return;
        }
        _ = drain.changed(), if !draining => {}
    }
    conn.as_mut().graceful_shutdown();
    if let Err(e) = conn.await {
        tracing::debug!(peer = %peer.remote, error = %e, "HTTP/2 connection ended with an error");
    }
}
