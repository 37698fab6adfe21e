//! Counters, gauges and histograms of the proxy, rendered in the Prometheus
//! text exposition format (version 0.0.4) by hand, and the admin listener
//! that serves them with `/healthz` and `/readyz`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::exchange::{Exchange, Verdict};

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// How recent an answer from Nova must be for `/readyz` not to check again.
const READY_FRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str) {
        for (bucket, le) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {bucket}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Tables {
    /// (route class, verdict, status) → requests.
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    /// field (or rule, for rejections that name no field) → rejections.
    rejections: BTreeMap<&'static str, u64>,
    /// field (or rule) → requests report-only mode would have rejected.
    reports: BTreeMap<&'static str, u64>,
    /// error kind → upstream errors.
    upstream_errors: BTreeMap<&'static str, u64>,
    duration: Histogram,
    upstream_duration: Histogram,
}

/// The proxy's metrics; shared by the layers, the server and the admin listener.
#[derive(Debug, Default)]
pub struct Metrics {
    tables: Mutex<Tables>,
    open_connections: AtomicI64,
    refused_connections: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    dropped_headers: AtomicU64,
    /// When Nova last answered anything (or was last found reachable).
    upstream_seen: Mutex<Option<Instant>>,
    /// Shutting down: no longer ready for new traffic.
    draining: std::sync::atomic::AtomicBool,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count one finished exchange.
    pub fn observe(&self, x: &Exchange) {
        let v = &x.validation;
        self.bytes_in.fetch_add(x.bytes_in, Ordering::Relaxed);
        self.bytes_out.fetch_add(x.bytes_out, Ordering::Relaxed);
        if x.dropped_headers > 0 {
            self.dropped_headers
                .fetch_add(u64::from(x.dropped_headers), Ordering::Relaxed);
        }
        if x.upstream.status.is_some() {
            self.upstream_answered();
        }
        let mut t = self.tables();
        *t.requests
            .entry((v.operation.as_str(), v.verdict.as_str(), x.status))
            .or_default() += 1;
        let what = match (v.field, v.rule) {
            (Some(f), _) => f,
            (None, Some(r)) => r.as_str(),
            (None, None) => "other",
        };
        match v.verdict {
            Verdict::Rejected => *t.rejections.entry(what).or_default() += 1,
            Verdict::Reported => *t.reports.entry(what).or_default() += 1,
            _ => {}
        }
        if let Some(kind) = x.upstream.error.filter(|k| k.is_upstream()) {
            *t.upstream_errors.entry(kind.as_str()).or_default() += 1;
        }
        t.duration.observe(x.start.elapsed().as_secs_f64());
        if let Some(d) = x.upstream.duration {
            t.upstream_duration.observe(d.as_secs_f64());
        }
    }

    /// The listener is closed and in-flight exchanges are draining.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Nova answered (any status).
    pub fn upstream_answered(&self) {
        *self.upstream_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn upstream_recent(&self) -> bool {
        self.upstream_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < READY_FRESH)
    }

    /// A client connection is being served until the guard is dropped.
    pub fn connection_opened(self: &Arc<Self>) -> ConnectionGauge {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGauge(self.clone())
    }

    pub fn connection_refused(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let t = self.tables();
        out.push_str(
            "# HELP nova_guard_requests_total Exchanges by route class, verdict and status.\n\
             # TYPE nova_guard_requests_total counter\n",
        );
        for ((route, verdict, status), n) in &t.requests {
            let _ = writeln!(
                out,
                "nova_guard_requests_total{{route=\"{route}\",verdict=\"{verdict}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP nova_guard_rejections_total Rejected requests by field (or rule).\n\
             # TYPE nova_guard_rejections_total counter\n",
        );
        for (field, n) in &t.rejections {
            let _ = writeln!(out, "nova_guard_rejections_total{{field=\"{field}\"}} {n}");
        }
        out.push_str(
            "# HELP nova_guard_reported_total Requests report-only mode forwarded that enforce mode would reject, by field (or rule).\n\
             # TYPE nova_guard_reported_total counter\n",
        );
        for (field, n) in &t.reports {
            let _ = writeln!(out, "nova_guard_reported_total{{field=\"{field}\"}} {n}");
        }
        out.push_str(
            "# HELP nova_guard_upstream_errors_total Failed exchanges with Nova by kind.\n\
             # TYPE nova_guard_upstream_errors_total counter\n",
        );
        for (kind, n) in &t.upstream_errors {
            let _ = writeln!(
                out,
                "nova_guard_upstream_errors_total{{kind=\"{kind}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP nova_guard_request_duration_seconds Time from request head to the end of the response.\n\
             # TYPE nova_guard_request_duration_seconds histogram\n",
        );
        t.duration
            .render(&mut out, "nova_guard_request_duration_seconds");
        out.push_str(
            "# HELP nova_guard_upstream_duration_seconds Time from sending to Nova to its response head.\n\
             # TYPE nova_guard_upstream_duration_seconds histogram\n",
        );
        t.upstream_duration
            .render(&mut out, "nova_guard_upstream_duration_seconds");
        drop(t);
        let _ = write!(
            out,
            "# HELP nova_guard_open_connections Client connections being served.\n\
             # TYPE nova_guard_open_connections gauge\n\
             nova_guard_open_connections {}\n\
             # HELP nova_guard_refused_connections_total Client connections refused at the connection limit.\n\
             # TYPE nova_guard_refused_connections_total counter\n\
             nova_guard_refused_connections_total {}\n\
             # HELP nova_guard_body_bytes_received_total Request body bytes received from clients.\n\
             # TYPE nova_guard_body_bytes_received_total counter\n\
             nova_guard_body_bytes_received_total {}\n\
             # HELP nova_guard_body_bytes_sent_total Response body bytes sent to clients.\n\
             # TYPE nova_guard_body_bytes_sent_total counter\n\
             nova_guard_body_bytes_sent_total {}\n\
             # HELP nova_guard_dropped_headers_total Request header lines dropped because their name has an underscore.\n\
             # TYPE nova_guard_dropped_headers_total counter\n\
             nova_guard_dropped_headers_total {}\n",
            self.open_connections.load(Ordering::Relaxed),
            self.refused_connections.load(Ordering::Relaxed),
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
            self.dropped_headers.load(Ordering::Relaxed),
        );
        out
    }
}

/// Decrements the open-connections gauge when dropped.
pub struct ConnectionGauge(Arc<Metrics>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What `/readyz` checks: Nova answered recently, or can be connected to now.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub upstream: String,
    pub connect_timeout: Duration,
}

/// Serve `/healthz`, `/readyz` and `/metrics` on `listener`, forever.
pub async fn serve_admin(listener: TcpListener, metrics: Arc<Metrics>, readiness: Readiness) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let metrics = metrics.clone();
        let readiness = readiness.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let metrics = metrics.clone();
            let readiness = readiness.clone();
            async move { Ok::<_, Infallible>(admin_answer(&req, &metrics, &readiness).await) }
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

async fn admin_answer(
    req: &Request<Incoming>,
    metrics: &Metrics,
    readiness: &Readiness,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if metrics.draining.load(Ordering::Relaxed) {
                text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else if metrics.upstream_recent() || upstream_reachable(readiness).await {
                metrics.upstream_answered();
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "upstream unreachable\n")
            }
        }
        "/metrics" => {
            let mut r = text(StatusCode::OK, &metrics.render());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn upstream_reachable(readiness: &Readiness) -> bool {
    matches!(
        tokio::time::timeout(
            readiness.connect_timeout,
            tokio::net::TcpStream::connect(readiness.upstream.as_str()),
        )
        .await,
        Ok(Ok(_))
    )
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

/// Bind the admin listener.
pub async fn bind_admin(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format() {
        use crate::error::ErrorKind;
        use crate::exchange::{Peer, Protocol, Rule, ValidationInfo};
        let peer = Peer::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            false,
        );
        let m = Metrics::new();
        let mut rejected = Exchange::new(peer, Protocol::Http11);
        rejected.validation = ValidationInfo {
            operation: crate::exchange::Operation::Update,
            field: Some("name"),
            ..ValidationInfo::rejected(Rule::Check("minLength"))
        };
        rejected.status = 400;
        rejected.bytes_in = 10;
        rejected.bytes_out = 20;
        m.observe(&rejected);
        let mut failed = Exchange::new(peer, Protocol::Http11);
        failed.status = 502;
        failed.upstream.error = Some(ErrorKind::UpstreamConnect);
        failed.upstream.duration = Some(Duration::from_millis(20));
        failed.bytes_out = 5;
        m.observe(&failed);
        let _gauge = m.connection_opened();
        let text = m.render();
        for line in [
            "nova_guard_requests_total{route=\"update\",verdict=\"rejected\",status=\"400\"} 1",
            "nova_guard_requests_total{route=\"other\",verdict=\"passthrough\",status=\"502\"} 1",
            "nova_guard_rejections_total{field=\"name\"} 1",
            "nova_guard_upstream_errors_total{kind=\"upstream_connect\"} 1",
            "nova_guard_request_duration_seconds_bucket{le=\"+Inf\"} 2",
            "nova_guard_request_duration_seconds_count 2",
            "nova_guard_upstream_duration_seconds_bucket{le=\"0.025\"} 1",
            "nova_guard_open_connections 1",
            "nova_guard_body_bytes_received_total 10",
            "nova_guard_body_bytes_sent_total 25",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
