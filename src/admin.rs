//! The admin listener (`NOVA_GUARD_ADMIN_LISTEN`): `/healthz` (the process
//! answers), `/readyz` (send it traffic: Nova answers and nova-guard is not
//! draining), `/metrics`, and `/drain` (`POST` takes this instance out of
//! rotation while it keeps serving what comes, `DELETE` puts it back).
//!
//! Readiness follows Nova's health by an active check: `GET /` on Nova
//! (its version document, which needs no token) on a fresh connection,
//! every interval, within a timeout. Any answer below 500 is health; no
//! answer in time, or a 5xx, is not.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::{Metrics, CONTENT_TYPE as METRICS_CONTENT_TYPE};
use crate::upstream::Upstream;

/// Whether this instance should get traffic.
#[derive(Debug, Default)]
pub struct Readiness {
    /// An operator asked for it (`POST /drain`).
    drained: AtomicBool,
    /// Shutdown has begun.
    stopping: AtomicBool,
    /// The last check of Nova got an answer.
    upstream_up: AtomicBool,
}

/// Why `/readyz` says no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    ShuttingDown,
    Drained,
    UpstreamDown,
}

impl NotReady {
    fn text(self) -> &'static str {
        match self {
            NotReady::ShuttingDown => "shutting down\n",
            NotReady::Drained => "draining\n",
            NotReady::UpstreamDown => "upstream unreachable\n",
        }
    }
}

impl Readiness {
    pub fn new() -> Arc<Readiness> {
        Arc::new(Readiness::default())
    }

    pub fn state(&self) -> Result<(), NotReady> {
        if self.stopping.load(Ordering::SeqCst) {
            Err(NotReady::ShuttingDown)
        } else if self.drained.load(Ordering::SeqCst) {
            Err(NotReady::Drained)
        } else if !self.upstream_up.load(Ordering::SeqCst) {
            Err(NotReady::UpstreamDown)
        } else {
            Ok(())
        }
    }

    pub fn set_stopping(&self, metrics: &Metrics) {
        self.stopping.store(true, Ordering::SeqCst);
        self.publish(metrics);
    }

    fn set_drained(&self, drained: bool, metrics: &Metrics) {
        self.drained.store(drained, Ordering::SeqCst);
        self.publish(metrics);
    }

    fn set_upstream_up(&self, up: bool, metrics: &Metrics) {
        let was = self.upstream_up.swap(up, Ordering::SeqCst);
        if was != up {
            if up {
                tracing::info!("Nova answers: ready");
            } else {
                tracing::warn!("Nova does not answer: not ready");
            }
        }
        self.publish(metrics);
    }

    fn publish(&self, metrics: &Metrics) {
        let draining = self.stopping.load(Ordering::SeqCst) || self.drained.load(Ordering::SeqCst);
        metrics.set_readiness(
            self.state().is_ok(),
            draining,
            self.upstream_up.load(Ordering::SeqCst),
        );
    }
}

/// How Nova is checked.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub interval: Duration,
    pub timeout: Duration,
}

/// One check of Nova: `GET /` answered below 500 within the timeout.
pub async fn check_once(upstream: &Upstream, timeout: Duration) -> Result<u16, String> {
    let check = async {
        let mut io = upstream.connect().await.map_err(|e| e.chain())?;
        let request = format!(
            "GET {}/ HTTP/1.1\r\nHost: {}\r\nUser-Agent: nova-guard-readiness\r\nConnection: close\r\n\r\n",
            upstream.base_path,
            upstream.authority()
        );
        io.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            if let Some(len) =
                crate::h1::response::head_len(&buf, 65536).map_err(|e| e.to_string())?
            {
                let head = crate::h1::response::parse(buf.split_to(len).freeze(), 100, false)
                    .map_err(|e| e.to_string())?;
                if head.is_informational() {
                    continue;
                }
                return Ok(head.status);
            }
            if io.read_buf(&mut buf).await.map_err(|e| e.to_string())? == 0 {
                return Err("Nova closed the connection before its answer".to_owned());
            }
        }
    };
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(status)) if status < 500 => Ok(status),
        Ok(Ok(status)) => Err(format!("Nova answered {status}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Check Nova now and then every interval, for as long as it runs.
pub async fn watch_upstream(
    upstream: Arc<Upstream>,
    check: Check,
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
) {
    // The first check was made at start-up.
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + check.interval, check.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let up = match check_once(&upstream, check.timeout).await {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(error = %e, "readiness check of Nova failed");
                false
            }
        };
        readiness.set_upstream_up(up, &metrics);
    }
}

/// Check Nova once, before anything is served, so that `/readyz` starts
/// out telling the truth.
pub async fn first_check(
    upstream: &Upstream,
    check: Check,
    readiness: &Readiness,
    metrics: &Metrics,
) {
    match check_once(upstream, check.timeout).await {
        Ok(_) => readiness.set_upstream_up(true, metrics),
        Err(e) => {
            tracing::warn!(error = %e, "Nova does not answer: not ready");
            readiness.set_upstream_up(false, metrics);
        }
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve the admin endpoints on `listener`, forever.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, readiness: Arc<Readiness>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let readiness = readiness.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let answer = answer(&req, &metrics, &readiness);
            async move { Ok::<_, Infallible>(answer) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(
    req: &Request<Incoming>,
    metrics: &Metrics,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    let method = req.method();
    let read = *method == Method::GET || *method == Method::HEAD;
    match (req.uri().path(), read) {
        ("/healthz", true) => text(StatusCode::OK, "ok\n"),
        ("/readyz", true) => match readiness.state() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, why.text()),
        },
        ("/metrics", true) => {
            let mut r = text(StatusCode::OK, &metrics.render());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            r
        }
        ("/drain", true) => {
            let drained = readiness.drained.load(Ordering::SeqCst);
            text(
                StatusCode::OK,
                if drained { "draining\n" } else { "serving\n" },
            )
        }
        ("/drain", false) if *method == Method::POST => {
            if !readiness.drained.swap(true, Ordering::SeqCst) {
                tracing::info!(
                    "draining on request: /readyz says no, connections are still served"
                );
            }
            readiness.set_drained(true, metrics);
            text(StatusCode::OK, "draining\n")
        }
        ("/drain", false) if *method == Method::DELETE => {
            if readiness.drained.swap(false, Ordering::SeqCst) {
                tracing::info!("drain undone on request");
            }
            readiness.set_drained(false, metrics);
            text(StatusCode::OK, "serving\n")
        }
        ("/healthz" | "/readyz" | "/metrics" | "/drain", _) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// `nova-guard --drain`: ask the running instance's admin listener to
/// drain, then wait `wait` (for load balancers and endpoints to notice)
/// before returning. For a Kubernetes `preStop` hook, which can run the
/// binary but has no shell or curl in a `FROM scratch` image.
pub fn request_drain(admin: SocketAddr, wait: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    // A listener on all addresses is reached on loopback.
    let target = match admin.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], admin.port()))
        }
        ip if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, admin.port()))
        }
        _ => admin,
    };
    let mut stream = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(5))
        .map_err(|e| format!("cannot reach the admin listener at {target}: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    stream
        .write_all(
            format!(
                "POST /drain HTTP/1.1\r\nHost: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "the admin listener answered: {}",
            answer.lines().next().unwrap_or_default()
        ));
    }
    std::thread::sleep(wait);
    Ok(format!("draining ({target})"))
}
