//! Test harness: the real nova-guard binary on real sockets, in front of a
//! small recording upstream, and a raw HTTP/1.1 client that sends exactly the
//! bytes a test writes.

#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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
    pub async fn start_on(addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).await.unwrap();
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
                        if !is_readiness_check(&req) && !counted.swap(true, Ordering::SeqCst) {
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
fn is_readiness_check(req: &Request<Incoming>) -> bool {
    req.headers()
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
    if parts
        .headers
        .get("user-agent")
        .is_none_or(|v| v != "nova-guard-readiness")
    {
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
                            let _ = stream
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
                                )
                                .await;
                            let _ = stream.flush().await;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            // An RST rather than a FIN.
                            #[allow(deprecated)]
                            let _ = stream.set_linger(Some(Duration::ZERO));
                        }
                        Misbehaviour::Close => {}
                        Misbehaviour::StallMidResponse => {
                            let _ = stream
                                .write_all(
                                    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789",
                                )
                                .await;
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

/// The nova-guard binary, running.
pub struct Guard {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Guard {
    pub fn start(upstream: &str, extra: &[(&str, &str)]) -> Guard {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-guard"));
        cmd.env_clear()
            .env("NOVA_GUARD_LISTEN", "127.0.0.1:0")
            .env("NOVA_GUARD_UPSTREAM", upstream)
            .env("NOVA_GUARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start nova-guard");
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    if v["message"] == "listening" {
                        let _ = tx.send(v["listen"].as_str().unwrap_or_default().to_owned());
                    }
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("nova-guard did not say it was listening");
        Guard {
            child,
            addr: addr.parse().unwrap(),
            logs,
        }
    }

    /// Access-log events (one per exchange) seen so far.
    pub fn exchanges(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["message"] == "exchange")
            .collect()
    }

    /// Wait until `n` exchanges were logged (the event follows the response body).
    pub async fn wait_exchanges(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let ex = self.exchanges();
            if ex.len() >= n {
                return ex;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.exchanges()
    }

    /// Every log line that parses as JSON, so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .collect()
    }

    /// Wait (bounded) until a log event with this message appears.
    pub async fn wait_event(&self, message: &str) -> Option<serde_json::Value> {
        for _ in 0..1000 {
            if let Some(e) = self.events().into_iter().find(|e| e["message"] == message) {
                return Some(e);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Send a signal (`TERM`, `INT`) to the proxy.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait, within a generous bound, for the proxy to exit.
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Peak resident memory of the proxy process, in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Far longer than any answer here should take; only a hang reaches it.
const ANSWER_BOUND: Duration = Duration::from_secs(20);

/// A client connection that reads HTTP/1.1 answers one after another,
/// keeping what it read past one answer for the next, so that pipelined
/// answers arriving in one read are all kept. Plain TCP by default; any
/// stream (TLS) through [`Conn::new`].
pub struct Conn<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Conn<TcpStream> {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn::new(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Write all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Read more; false at EOF or on an error. Panics at the bound.
    async fn fill(&mut self) -> bool {
        let mut tmp = vec![0u8; 16384];
        match tokio::time::timeout(ANSWER_BOUND, self.stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(_) => panic!("no answer within the bound: {:?}", self.text()),
        }
    }

    /// The next answer, or why not. Its body is framed by Content-Length,
    /// chunked, absent (1xx, 204, 304), or else runs until the peer closes.
    pub async fn try_answer(&mut self) -> Result<Answer, String> {
        let (mut answer, head) = loop {
            match parse_head(&self.buf) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(e) => return Err(format!("{e}: {:?}", self.text())),
            }
            if !self.fill().await {
                return Err(format!("closed before an answer head: {:?}", self.text()));
            }
        };
        let status = answer.status;
        let mut at = head;
        let length = answer.header("content-length").map(str::to_owned);
        let chunked = answer.header("transfer-encoding").is_some();
        if let Some(len) = length {
            let len: usize = len
                .parse()
                .map_err(|e| format!("bad Content-Length {len:?}: {e}"))?;
            while self.buf.len() < at + len {
                if !self.fill().await {
                    return Err(format!("closed inside a body: {:?}", self.text()));
                }
            }
            answer.body = self.buf[at..at + len].to_vec();
            at += len;
        } else if chunked {
            at = self.read_chunked(at, &mut answer.body).await?;
        } else if !matches!(status, 100..=199 | 204 | 304) {
            while self.fill().await {}
            at = self.buf.len();
            answer.body = self.buf[head..].to_vec();
        }
        self.buf.drain(..at);
        Ok(answer)
    }

    /// A chunked body from `at` into `body`; where it ends (after the
    /// empty trailer section).
    async fn read_chunked(&mut self, mut at: usize, body: &mut Vec<u8>) -> Result<usize, String> {
        loop {
            let Some(eol) = self.buf[at..].windows(2).position(|w| w == b"\r\n") else {
                if !self.fill().await {
                    return Err("closed inside a chunked body".into());
                }
                continue;
            };
            let line = String::from_utf8_lossy(&self.buf[at..at + eol]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
            let start = at + eol + 2;
            // The last chunk is followed by an empty trailer section.
            let need = if size == 0 {
                start + 2
            } else {
                start + size + 2
            };
            while self.buf.len() < need {
                if !self.fill().await {
                    return Err("closed inside a chunked body".into());
                }
            }
            if size == 0 {
                return Ok(need);
            }
            body.extend_from_slice(&self.buf[start..start + size]);
            at = need;
        }
    }

    /// The next answer; panics if there is none.
    pub async fn answer(&mut self) -> Answer {
        self.try_answer().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// What was read and not yet taken by an answer.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Everything not yet taken, and all the peer sends until it closes (EOF
    /// or reset) within the bound; `None` when it is still open at the bound.
    pub async fn until_closed(&mut self) -> Option<Vec<u8>> {
        let rest = until_closed(&mut self.stream).await?;
        let mut got = std::mem::take(&mut self.buf);
        got.extend_from_slice(&rest);
        Some(got)
    }

    /// Whether the peer closes the connection within the bound, whatever
    /// it still sends.
    pub async fn closed_by_peer(&mut self) -> bool {
        self.until_closed().await.is_some()
    }

    /// Whether the peer closes the connection within the bound, sending
    /// nothing more.
    pub async fn closed_quietly(&mut self) -> bool {
        self.until_closed().await == Some(Vec::new())
    }
}

/// An answer's head at the start of `bytes` (with an empty body) and its
/// length; `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<(Answer, usize)>, String> {
    let mut h = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut h);
    match resp.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let answer = Answer {
                status: resp.code.unwrap_or(0),
                headers,
                body: Vec::new(),
            };
            Ok(Some((answer, head)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad answer ({e})")),
    }
}

/// The first answer in `bytes` (all a peer sent before it closed), if its
/// head arrived, and whether its body (by Content-Length) arrived whole.
pub fn first_answer(bytes: &[u8]) -> Option<(Answer, bool)> {
    let (mut answer, head) = parse_head(bytes).ok()??;
    let rest = &bytes[head..];
    let whole = match answer.header("content-length") {
        Some(len) => {
            let len: usize = len.parse().unwrap();
            answer.body = rest[..rest.len().min(len)].to_vec();
            rest.len() >= len
        }
        None => {
            answer.body = rest.to_vec();
            false
        }
    };
    Some((answer, whole))
}

/// Everything the peer sends until it closes (EOF or reset), within the
/// bound; `None` when it is still open at the bound.
pub async fn until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut tmp = vec![0u8; 65536];
    let until = tokio::time::Instant::now() + ANSWER_BOUND;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&tmp[..n]),
            Err(_) => return None,
        }
    }
}

/// Send raw bytes on a fresh connection, read one answer.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut conn = Conn::open(addr).await;
    conn.send(request).await;
    conn.answer().await
}

/// A PUT request with a token and a JSON body, as bytes.
pub fn put(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    request("PUT", path, headers, body)
}

/// A request with a token (unless `headers` has one), a JSON Content-Type
/// (likewise) and a body, as bytes.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: nova.example:8774\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("x-auth-token") {
        req.push_str("X-Auth-Token: user:deadbeef\r\n");
    }
    if !has("content-type") {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
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

/// Close `stream` with a reset, as a client that is killed or gives up
/// abruptly does.
pub fn reset(stream: TcpStream) {
    // A zero linger sends a reset at once; nothing waits on it.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}
