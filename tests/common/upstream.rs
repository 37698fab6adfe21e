//! Stand-ins for Nova: [`Upstream`], which answers and records every
//! request it gets, and [`BadUpstream`], which misbehaves on purpose.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A local stand-in for Nova that records every request it gets.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// TCP connections that carried a client's request so far.
    pub connections: Arc<AtomicUsize>,
    /// The accept loop and every connection's task, for [`Upstream::stop`].
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Listen on `addr` (a fixed port, to stand for a Nova that restarts).
    /// The port was free a moment ago; while it is taken (another test's
    /// connection may hold it for an instant), binding is tried again.
    pub async fn start_on(addr: SocketAddr) -> Upstream {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let connections = Arc::new(AtomicUsize::new(0));
        let connections2 = connections.clone();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let tasks2 = tasks.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                // Counted once it carries a client's request (nova-guard's
                // readiness checks come on connections of their own).
                let counted = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let connections = connections2.clone();
                let conn = tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        if !is_readiness_check(req.headers())
                            && !counted.swap(true, Ordering::SeqCst)
                        {
                            connections.fetch_add(1, Ordering::SeqCst);
                        }
                        async move { Ok::<_, Infallible>(upstream_answer(req, seen).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                tasks2.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Upstream {
            addr,
            seen,
            connections,
            tasks,
        }
    }

    /// Stop as a crashing Nova would: the listening socket and every open
    /// connection closed, answers in progress dropped. Returns once they are.
    pub async fn stop(&self) {
        // Until none is left: the accept loop may add one while it stops.
        loop {
            let tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
            if tasks.is_empty() {
                return;
            }
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("upstream saw no request")
    }
}

/// Streams `remaining` bytes in 64 KiB chunks without holding them.
pub struct Zeros {
    pub remaining: u64,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [b'z'; 65536];
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(CHUNK.len() as u64);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &CHUNK[..n as usize],
        )))))
    }
}

type AnyBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A readiness check of nova-guard's own, not a client's request.
fn is_readiness_check(headers: &http::HeaderMap) -> bool {
    headers
        .get("user-agent")
        .is_some_and(|v| v == "nova-guard-readiness")
}

async fn upstream_answer(req: Request<Incoming>, seen: Arc<Mutex<Vec<Seen>>>) -> Response<AnyBody> {
    let (parts, body) = req.into_parts();
    let uri = parts.uri.to_string();
    // Big uploads are counted, not kept.
    let mut body = body;
    let mut kept = Vec::new();
    let mut total = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(d) = frame.data_ref() {
            total += d.len() as u64;
            if kept.len() < 1 << 20 {
                kept.extend_from_slice(d);
            }
        }
    }
    // nova-guard's own readiness checks are answered, not recorded: the
    // tests count what clients sent through it.
    if !is_readiness_check(&parts.headers) {
        seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            uri: uri.clone(),
            headers: parts.headers.clone(),
            body: Bytes::from(kept),
        });
    }
    // `/slow/{ms}` (or `/slow/{ms}/anything`): answer after a delay.
    if let Some(ms) = number_after(&uri, "/slow/") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"slow\": true}")).boxed())
            .unwrap();
    }
    // `/status/{code}`: a Nova-like fault with that status.
    if let Some(code) = uri.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        let body =
            format!("{{\"computeFault\": {{\"code\": {code}, \"message\": \"from nova\"}}}}");
        return Response::builder()
            .status(code)
            .header("content-type", "application/json; charset=UTF-8")
            .header(
                "x-openstack-request-id",
                "req-11111111-1111-4111-8111-111111111111",
            )
            .body(Full::new(Bytes::from(body)).boxed())
            .unwrap();
    }
    // `/pattern/{bytes}`: that many bytes of a pattern (`pattern`), with a
    // `Content-Length`.
    if let Some(n) = number_after(&uri, "/pattern/") {
        return Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Full::new(Bytes::from(pattern(n as usize))).boxed())
            .unwrap();
    }
    // `/stream/{bytes}` (or `/stream/{bytes}/anything`): that many bytes.
    if let Some(n) = number_after(&uri, "/stream/") {
        return Response::builder()
            .header("content-type", "application/octet-stream")
            .body(Zeros { remaining: n }.boxed())
            .unwrap();
    }
    let body = format!("{{\"upstream\": true, \"received\": {total}}}");
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header(
            "x-openstack-request-id",
            "req-00000000-0000-4000-8000-000000000000",
        )
        .header("connection", "keep-alive")
        .header("keep-alive", "timeout=5")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap()
}

/// The body `/pattern/{len}` answers: bytes that differ from their
/// neighbours, so that a lost, doubled or moved piece shows.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// For a URI under `prefix`, the number right after it (up to a `/` or a
/// `?`; 0 when it is not one).
fn number_after(uri: &str, prefix: &str) -> Option<u64> {
    let rest = uri.strip_prefix(prefix)?;
    Some(
        rest.split(['/', '?'])
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or(0),
    )
}

/// What a misbehaving upstream does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Reads the request and never answers.
    Stall,
    /// Answers bytes that are not HTTP, then closes.
    Garbage,
    /// Sends a response head promising 1000 bytes, 10 of them, then resets.
    ResetMidResponse,
    /// Closes the connection as soon as the request arrives.
    Close,
    /// Sends a response head promising 1000 bytes, 10 of them, then stalls.
    StallMidResponse,
}

/// The start of an answer that promises 1000 bytes and holds 10.
const CUT_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";

/// An upstream that misbehaves on purpose; counts the connections it got.
pub struct BadUpstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
}

impl BadUpstream {
    pub async fn start(how: Misbehaviour) -> BadUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let connections2 = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                connections2.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    // Wait for the end of the request head.
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&tmp[..n]),
                        }
                    }
                    match how {
                        Misbehaviour::Stall => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                        Misbehaviour::Garbage => {
                            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
                        }
                        Misbehaviour::ResetMidResponse => {
                            let _ = stream.write_all(CUT_ANSWER).await;
                            let _ = stream.flush().await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            // An RST rather than a FIN.
                            super::reset(stream);
                        }
                        Misbehaviour::Close => {}
                        Misbehaviour::StallMidResponse => {
                            let _ = stream.write_all(CUT_ANSWER).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                });
            }
        });
        BadUpstream { addr, connections }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Header map lookups for the upstream's view.
pub fn headers_of(seen: &Seen) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in &seen.headers {
        map.entry(k.as_str().to_owned())
            .or_default()
            .push(v.to_str().unwrap_or("").to_owned());
    }
    map
}
