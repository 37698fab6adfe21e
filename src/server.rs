//! The listener: accepts connections, serves HTTP/1.1 (keep-alive) and
//! HTTP/2 through the service stack, and drains gracefully on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, CONNECTION};
use http::Version;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::config::Config;
use crate::error::{BoxError, ErrorKind, FaultContext, ProxyError};
use crate::forward::{Forward, ViaTls};
use crate::layer::access_log::{log_refused_head, AccessLogLayer, Peer};
use crate::layer::framing::FramingLayer;
use crate::layer::request_id::RequestId;
use crate::layer::request_id::RequestIdLayer;
use crate::layer::validate::{ValidateLayer, ValidateSettings};
use crate::metrics::{bind_admin, serve_admin, Metrics, Readiness};
use crate::tls::{self, ReloadingCert};
use crate::wire::{InFlight, InFlightGuard, Tracker, Watched, WireWatch};

/// The whole request path, from the client's request to the response body,
/// counting every exchange in `metrics`.
pub fn build_service(
    config: &Config,
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
    let forward = Forward::new(config)?;
    Ok(ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(AccessLogLayer::new(metrics, config.trusted_proxies.clone()))
        .layer(FramingLayer::new(config.max_uri_bytes))
        .layer(ValidateLayer::new(ValidateSettings {
            profile: config.profile,
            path_prefix: config.path_prefix.clone(),
            max_body_bytes: config.max_body_bytes,
            max_microversion: config.max_microversion,
            body_timeout: config.client_body_timeout,
            mode: config.mode,
            access_ip_policy: config.access_ip_policy.clone(),
        }))
        .service(forward))
}

/// Serve on `listener` until `shutdown` resolves, then stop accepting, let
/// in-flight exchanges finish within the grace period, and return.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let metrics = Metrics::new();
    let admin = match config.admin_listen {
        Some(addr) => {
            let listener = bind_admin(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (admin): {e}"))?;
            tracing::info!(admin = %listener.local_addr()?, "admin listening");
            let readiness = Readiness {
                upstream: upstream_host_port(&config.upstream.uri),
                connect_timeout: config.upstream_connect_timeout,
            };
            Some(tokio::spawn(serve_admin(
                listener,
                metrics.clone(),
                readiness,
            )))
        }
        None => None,
    };
    let service = build_service(config, metrics.clone())?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.client_header_timeout)
        .max_buf_size(config.max_header_bytes)
        .max_headers(config.max_headers)
        // A client may shut its sending side once its request is out, and
        // still get the answer, as from Nova.
        .half_close(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));

    let (acceptor, reload) = match &config.tls {
        Some((cert, key)) => {
            let cert = Arc::new(ReloadingCert::load(cert, key)?);
            let tls = tls::server_config(cert.clone())?;
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))),
                Some(cert),
            )
        }
        None => (None, None),
    };
    let reloader = tokio::spawn(reload_on_sighup(reload));

    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    metrics.connection_refused();
                    tracing::warn!(
                        peer = %peer,
                        max_connections = config.max_connections,
                        "connection limit reached; answering 503 and closing"
                    );
                    // Over TLS, a plain answer would be noise: close instead.
                    if acceptor.is_none() {
                        let conn = refuse_connection(stream, config.client_header_timeout);
                        // A silent client must not hold the socket either.
                        let limit = config.client_header_timeout.saturating_mul(2);
                        tokio::spawn(tokio::time::timeout(limit, graceful.watch(conn)));
                    }
                    continue;
                };
                let settings = ConnectionSettings {
                    max_header_bytes: config.max_header_bytes,
                    max_headers: config.max_headers,
                    max_requests: config.max_requests_per_connection,
                    idle_limit: config.client_header_timeout,
                    send_limit: config.client_send_timeout,
                };
                let gauge = metrics.connection_opened();
                let Some(acceptor) = acceptor.clone() else {
                    let conn = serve_connection(&builder, stream, peer, service.clone(), settings, false);
                    let conn = graceful.watch(conn);
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                            log_refused_head(&metrics, peer, e.as_ref());
                        }
                        drop(gauge);
                        drop(slot);
                    });
                    continue;
                };
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let service = service.clone();
                let handshake_timeout = config.client_header_timeout;
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = serve_connection(&builder, tls, peer, service, settings, true);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                        log_refused_head(&metrics, peer, e.as_ref());
                    }
                    drop(gauge);
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    metrics.set_draining();
    tracing::info!(
        grace_ms = config.shutdown_grace.as_millis() as u64,
        "shutting down"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
        }
    }
    if let Some(admin) = admin {
        admin.abort();
    }
    reloader.abort();
    Ok(())
}

/// On SIGHUP, read the listener's certificate and key again. Handshakes from
/// then on get the new certificate; open connections are not touched. A
/// certificate that does not load leaves the current one in place.
async fn reload_on_sighup(cert: Option<Arc<ReloadingCert>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; certificates will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        match &cert {
            None => tracing::info!("SIGHUP: no TLS certificate to reload"),
            Some(cert) => match cert.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!(
                    error = %e,
                    "TLS certificate reload failed; keeping the current one"
                ),
            },
        }
    }
}

/// `host:port` of the upstream, the port defaulted by scheme.
fn upstream_host_port(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    format!("{host}:{port}")
}

#[derive(Debug, Clone, Copy)]
struct ConnectionSettings {
    max_header_bytes: usize,
    max_headers: usize,
    max_requests: u64,
    idle_limit: Duration,
    send_limit: Duration,
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

/// One client connection: its bytes watched for ambiguous framing, each
/// request given the peer address and its framing verdict, and the
/// connection closed after its last allowed request.
fn serve_connection<IO, S, RB>(
    builder: &auto::Builder<TokioExecutor>,
    stream: IO,
    peer: SocketAddr,
    service: S,
    settings: ConnectionSettings,
    via_tls: bool,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = BoxError> + Send + 'static
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<RB>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RB: http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
{
    let watch = WireWatch::new();
    let tracker = Tracker::new(
        watch.clone(),
        settings.max_header_bytes,
        settings.max_headers,
    );
    let in_flight = InFlight::new();
    let io = Watched::new(
        stream,
        tracker,
        settings.idle_limit,
        in_flight.clone(),
        settings.send_limit,
    );
    let served = Arc::new(AtomicU64::new(0));
    let hyper_service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let guard = in_flight.enter();
        req.extensions_mut().insert(Peer(peer));
        if via_tls {
            req.extensions_mut().insert(ViaTls);
        }
        if req.version() != Version::HTTP_2 {
            req.extensions_mut().insert(watch.next_verdict());
        }
        let n = served.fetch_add(1, Ordering::Relaxed) + 1;
        let last = n >= settings.max_requests && req.version() != Version::HTTP_2;
        let call = service.clone().oneshot(req);
        async move {
            let mut resp = call.await?;
            if last {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(resp.map(|inner| InFlightBody { inner, guard }))
        }
    });
    builder
        .serve_connection(TokioIo::new(io), hyper_service)
        .into_owned()
}

/// A connection over the limit: read its request head, answer a Nova-shaped
/// 503 and close, so that the client is told rather than cut off.
fn refuse_connection(
    stream: TcpStream,
    header_timeout: Duration,
) -> impl hyper_util::server::graceful::GracefulConnection<Error = BoxError> + Send + 'static {
    let service = hyper::service::service_fn(|req: Request<Incoming>| {
        let request_id = RequestId::new();
        let mut resp = ProxyError::new(ErrorKind::Overloaded).to_response(&FaultContext {
            request_id: &request_id,
            version: None,
        });
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        drop(req);
        std::future::ready(Ok::<_, Infallible>(resp))
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false);
    builder
        .serve_connection(TokioIo::new(stream), service)
        .into_owned()
}

/// Bind the listening socket.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
