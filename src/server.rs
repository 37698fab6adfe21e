//! The listener and its workers: one thread per CPU, each with its own
//! single-threaded runtime accepting on the shared socket, so that a
//! connection lives on one thread from accept to close, with no hand-off.
//! HTTP/1 connections are served by nova-guard's own codec ([`crate::h1`]),
//! HTTP/2 ones by hyper ([`crate::h2`]). On shutdown every worker stops
//! accepting, idle connections close, and exchanges in flight finish within
//! the grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::admin::{self, Readiness};
use crate::config::Config;
use crate::error::BoxError;
use crate::exchange::Peer;
use crate::guard::Guard;
use crate::h1::{self, Ending};
use crate::h2;
use crate::metrics::{Build, Metrics};
use crate::tls;
use crate::upstream::Upstream;

/// What every worker shares.
struct Server {
    config: Config,
    metrics: Arc<Metrics>,
    shared: Arc<h1::Shared>,
    guard: Guard,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    slots: Arc<Semaphore>,
    drain: watch::Receiver<bool>,
    /// Workers still running.
    running: AtomicUsize,
    stopped: Notify,
    /// Workers still holding the listening socket.
    listening: AtomicUsize,
    closed: Notify,
    /// When each worker last ran a task, in milliseconds since `born`.
    heartbeats: Vec<AtomicU64>,
    born: Instant,
}

/// Bind the listening socket.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// How many workers: as configured, or one per CPU this process may run on
/// (its affinity and cgroup CPU quota counted).
fn workers(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Serve on `listener` until `shutdown` resolves, then stop accepting, let
/// in-flight exchanges finish within the grace period, and return. Runs the
/// admin listener and the certificate reloader on the calling runtime.
pub async fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let metrics = Metrics::new(Build {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("NOVA_GUARD_COMMIT"),
        mode: config.validation.enforcement.as_str(),
        log_lines_dropped: crate::log::dropped_lines,
    });
    let upstream = Upstream::new(&config.upstream)?;
    let readiness = Readiness::new();
    let check = config.admin.readiness;
    // Readiness is for the admin listener to tell: without one, Nova is
    // not checked.
    let admin_server = match config.admin.listen {
        Some(addr) => {
            admin::first_check(&upstream, check, &readiness, &metrics).await;
            let checker = tokio::spawn(admin::watch_upstream(
                upstream.clone(),
                check,
                readiness.clone(),
                metrics.clone(),
            ));
            let listener = admin::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (admin): {e}"))?;
            tracing::info!(admin = %listener.local_addr()?, "admin listening");
            let server = tokio::spawn(admin::serve(listener, metrics.clone(), readiness.clone()));
            Some((server, checker))
        }
        None => None,
    };
    // The certificate was loaded with the configuration.
    let (acceptor, reload) = match &config.listener.tls {
        Some(cert) => {
            let tls = tls::server_config(cert.clone())?;
            (
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))),
                Some(cert.clone()),
            )
        }
        None => (None, None),
    };
    let reloader = tokio::spawn(crate::reload::run(reload));
    let guard = Guard::new(Arc::new(config.guard_settings()));
    let shared = Arc::new(h1::Shared {
        limits: h1::head::Limits {
            max_head_bytes: config.limits.max_header_bytes,
            max_headers: config.limits.max_headers,
            max_uri_bytes: config.limits.max_uri_bytes,
        },
        header_timeout: config.limits.header_timeout,
        body_timeout: config.limits.body_timeout,
        send_timeout: config.limits.send_timeout,
        upstream_timeout: config.upstream.timeout,
        max_requests: config.limits.max_requests_per_connection,
        guard: guard.clone(),
        upstream,
        trusted_proxies: Arc::new(config.listener.trusted_proxies.clone()),
        metrics: metrics.clone(),
    });
    let (drain_tx, drain) = watch::channel(false);
    let count = workers(config.listener.workers);
    let server = Arc::new(Server {
        config: config.clone(),
        metrics: metrics.clone(),
        shared,
        guard,
        acceptor,
        slots: Arc::new(Semaphore::new(config.listener.max_connections)),
        drain,
        running: AtomicUsize::new(count),
        stopped: Notify::new(),
        listening: AtomicUsize::new(count),
        closed: Notify::new(),
        heartbeats: (0..count).map(|_| AtomicU64::new(0)).collect(),
        born: Instant::now(),
    });
    // Everything that can fail is built before the workers start: a
    // worker either serves or the process does not start.
    let h2_service = h2::build_service(
        &config.upstream,
        config.limits.max_uri_bytes,
        config.listener.trusted_proxies.clone(),
        server.guard.clone(),
        metrics.clone(),
    )?;
    let mut runtimes = Vec::with_capacity(count);
    for _ in 0..count {
        runtimes.push(
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        );
    }
    for (n, runtime) in runtimes.into_iter().enumerate() {
        let listener = tokio_listener(&listener)?;
        let server = server.clone();
        let h2_service = h2_service.clone();
        std::thread::Builder::new()
            .name(format!("nova-guard-{n}"))
            .spawn(move || {
                runtime.block_on(worker(n, listener, server.clone(), h2_service));
                if server.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                    server.stopped.notify_one();
                }
            })?;
    }
    drop(listener);
    crate::systemd::ready();
    let watchdog = crate::systemd::watchdog_interval().map(|interval| {
        let server = server.clone();
        tokio::spawn(crate::systemd::watchdog(interval, move || {
            server.workers_alive()
        }))
    });
    shutdown.await;
    let _ = drain_tx.send(true);
    // New connections are refused from the moment this is logged.
    wait_until_zero(&server.listening, &server.closed).await;
    readiness.set_stopping(&metrics);
    tracing::info!(
        grace_ms = config.listener.shutdown_grace.as_millis() as u64,
        "shutting down"
    );
    tokio::select! {
        () = wait_until_zero(&server.running, &server.stopped) => {
            tracing::info!("all connections closed");
        }
        () = tokio::time::sleep(config.listener.shutdown_grace) => {
            tracing::warn!("grace period over; closing the remaining connections");
        }
    }
    if let Some((server, checker)) = admin_server {
        server.abort();
        checker.abort();
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    reloader.abort();
    Ok(())
}

/// How often a worker shows it still runs its tasks.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// A worker's log lines wait at most this long before they are written.
const LOG_FLUSH: Duration = Duration::from_millis(50);

impl Server {
    fn millis(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Every worker ran a task within the last few heartbeats.
    fn workers_alive(&self) -> bool {
        let now = self.millis();
        let late = 4 * u64::try_from(HEARTBEAT.as_millis()).unwrap_or(u64::MAX);
        self.heartbeats
            .iter()
            .all(|beat| now.saturating_sub(beat.load(Ordering::Relaxed)) < late)
    }

    fn stopped_listening(&self) {
        if self.listening.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.closed.notify_one();
        }
    }
}

/// Wait until `count` (counting down, with `notify` at zero) is zero.
async fn wait_until_zero(count: &AtomicUsize, notify: &Notify) {
    loop {
        let notified = notify.notified();
        if count.load(Ordering::SeqCst) == 0 {
            return;
        }
        notified.await;
    }
}

/// A worker's handle on the shared listening socket, registered with the
/// worker's runtime when it first accepts.
fn tokio_listener(listener: &std::net::TcpListener) -> std::io::Result<std::net::TcpListener> {
    let own = listener.try_clone()?;
    own.set_nonblocking(true)?;
    Ok(own)
}

/// One worker: accept, serve, and on drain wait for its connections.
async fn worker<S, RB>(
    n: usize,
    listener: std::net::TcpListener,
    server: Arc<Server>,
    h2_service: S,
) where
    S: h2::HttpService<RB>,
    RB: http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "a worker cannot use the listener");
            server.stopped_listening();
            return;
        }
    };
    let upstream = server.shared.upstream.clone();
    let sweeper = tokio::spawn(async move {
        let mut every = tokio::time::interval(upstream.sweep_interval());
        loop {
            every.tick().await;
            upstream.sweep_idle();
        }
    });
    let beating = server.clone();
    let heart = tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT);
        loop {
            every.tick().await;
            if let Some(beat) = beating.heartbeats.get(n) {
                beat.store(beating.millis(), Ordering::Relaxed);
            }
        }
    });
    // This thread's log lines go out in batches, at least every tick.
    crate::log::batch_this_thread();
    let log_flusher = tokio::spawn(async move {
        let mut every = tokio::time::interval(LOG_FLUSH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            crate::log::flush();
        }
    });
    let local_addr = listener.local_addr().ok();
    let mut connections = JoinSet::new();
    let mut drain = server.drain.clone();
    loop {
        if *drain.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok().or(local_addr).unwrap_or(remote);
                let tls = server.acceptor.is_some();
                let peer = Peer::new(remote, local, tls);
                let Ok(slot) = server.slots.clone().try_acquire_owned() else {
                    server.metrics.connection_refused();
                    tracing::warn!(
                        peer = %peer.remote,
                        max_connections = server.config.listener.max_connections,
                        "connection limit reached; answering 503 and closing"
                    );
                    // Over TLS, a plain answer would be noise: close instead.
                    if !tls {
                        let shared = server.shared.clone();
                        // A silent client must not hold the socket either.
                        let limit = server.config.limits.header_timeout.saturating_mul(2);
                        connections.spawn(async move {
                            let _ = tokio::time::timeout(limit, h1::refuse_overloaded(stream, peer, shared)).await;
                        });
                    }
                    continue;
                };
                let gauge = server.metrics.connection_opened();
                let server = server.clone();
                let h2_service = h2_service.clone();
                connections.spawn(async move {
                    connection(stream, peer, &server, h2_service).await;
                    drop(gauge);
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = drain.changed() => {}
        }
    }
    drop(listener);
    server.stopped_listening();
    while connections.join_next().await.is_some() {}
    sweeper.abort();
    heart.abort();
    log_flusher.abort();
    crate::log::flush();
}

/// One client connection, plain or TLS, HTTP/1 or HTTP/2.
async fn connection<S, RB>(stream: TcpStream, peer: Peer, server: &Server, h2_service: S)
where
    S: h2::HttpService<RB>,
    RB: http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
{
    let config = &server.config;
    let limits = h2::Limits {
        max_header_bytes: config.limits.max_header_bytes,
        max_headers: config.limits.max_headers,
        idle: config.limits.header_timeout,
        send: config.limits.send_timeout,
    };
    let drain = server.drain.clone();
    // The future of a plain HTTP/1 connection, which most are, is as large
    // as its largest state: HTTP/2 and TLS are boxed so that each plain
    // connection's task stays a few KiB.
    let Some(acceptor) = &server.acceptor else {
        if let Ending::Http2 { io, read } =
            h1::serve(stream, peer, server.shared.clone(), drain.clone()).await
        {
            let io = h1::Rewind::new(read, io);
            Box::pin(h2::serve(io, peer, h2_service, limits, drain)).await;
        }
        return;
    };
    Box::pin(tls_connection(
        acceptor, stream, peer, server, h2_service, limits,
    ))
    .await;
}

async fn tls_connection<S, RB>(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: Peer,
    server: &Server,
    h2_service: S,
    limits: h2::Limits,
) where
    S: h2::HttpService<RB>,
    RB: http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + 'static,
{
    let config = &server.config;
    let drain = server.drain.clone();
    let handshake = tokio::time::timeout(config.limits.header_timeout, acceptor.accept(stream));
    let tls = match handshake.await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer.remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %peer.remote, "TLS handshake timed out");
            return;
        }
    };
    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        h2::serve(tls, peer, h2_service, limits, drain).await;
        return;
    }
    if let Ending::Http2 { io, read } =
        h1::serve(tls, peer, server.shared.clone(), drain.clone()).await
    {
        h2::serve(h1::Rewind::new(read, io), peer, h2_service, limits, drain).await;
    }
}
