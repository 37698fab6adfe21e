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
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::config::Config;
use crate::error::BoxError;
use crate::forward::Forward;
use crate::layer::access_log::{AccessLogLayer, Peer};
use crate::layer::framing::FramingLayer;
use crate::layer::request_id::RequestIdLayer;
use crate::layer::validate::{ValidateLayer, ValidateSettings};

/// The whole request path, from the client's request to the response body.
pub fn build_service(
    config: &Config,
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
        .layer(AccessLogLayer)
        .layer(FramingLayer)
        .layer(ValidateLayer::new(ValidateSettings {
            path_prefix: config.path_prefix.clone(),
            max_body_bytes: config.max_body_bytes,
            max_microversion: config.max_microversion,
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
    let service = build_service(config)?;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.client_header_timeout)
        .max_buf_size(config.max_header_bytes)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());

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
                let service = service.clone();
                let hyper_service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(Peer(peer));
                    service.clone().oneshot(req)
                });
                let conn = builder.serve_connection(TokioIo::new(stream), hyper_service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
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
    Ok(())
}

/// Bind the listening socket.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
