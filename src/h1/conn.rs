//! One HTTP/1 client connection, served by one task from its first byte to
//! its close: heads read and judged, each exchange admitted, planned,
//! guarded and forwarded over the Nova connection the client connection
//! holds, answers relayed back by their framing, every exchange logged once.
//!
//! Timers are per connection, armed only while something waits: the head
//! (and the idle keep-alive time) within the header timeout, a guarded
//! body within the body timeout, a streamed body never pausing longer than
//! that, Nova's response head within the upstream timeout and its answer
//! never pausing longer, and a client that takes none of its answer for the
//! send timeout is let go.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, StatusCode};
use ipnetwork::IpNetwork;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Sleep;
use tower::ServiceExt;

use super::head::{self, HeadError, HeadScanner, Limits, RequestHead, Version};
use super::io::{poll_read_buf, poll_read_waiting, push_date, release, within};
use super::response::{self, BodyFraming, ResponseHead};
use crate::admit::{admit, Context as AdmitContext, Line, Refusal};
use crate::error::{ErrorKind, ProxyError, CLIENT_CLOSED};
use crate::exchange::{
    trace_id, Exchange, HungUp, Peer, Protocol, RequestId, Rule, ValidationInfo, Verdict,
};
use crate::guard::{self, Guard, Heads, Outcome, Plan};
use crate::log::access::finish;
use crate::metrics::Metrics;
use crate::rescue::{rescue, Answer, Fault};
use crate::upstream::{Io, Upstream};
use crate::wire::chunked::ChunkedDecoder;
use crate::wire::Framing;

/// Room asked for on each read.
const READ_CHUNK: usize = 16 * 1024;
/// Nova's answers are read at most this much at a time (bounded memory per
/// streamed answer).
const UPSTREAM_CHUNK: usize = 32 * 1024;
/// Heads and bodies up to this size are copied out of the read buffers.
const COPY_AT_MOST: usize = 4 * 1024;
/// Answer bytes gathered before they are written on; larger pieces of a
/// streamed answer are written from the buffer they were read into.
const WRITE_BATCH: usize = 16 * 1024;
/// Room for a head written out, so that its buffer is sized once rather
/// than grown line by line.
const HEAD_ROOM: usize = 1024;
/// After an answer that closes the connection with some of the request
/// unread, the client's bytes are read and dropped for this long (or this
/// much) so that its answer is not destroyed by a reset.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// A client connection's stream, which can tell whether the client has
/// reset it.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin {
    /// A reset (or any error) is pending on the socket.
    fn was_reset(&self) -> bool;
}

impl ClientStream for tokio::net::TcpStream {
    fn was_reset(&self) -> bool {
        !matches!(self.take_error(), Ok(None))
    }
}

impl ClientStream for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn was_reset(&self) -> bool {
        self.get_ref().0.was_reset()
    }
}

/// How long a client that shut its sending side is watched, after its
/// answer, for the reset that says it had gone away altogether.
const RESET_WATCH: Duration = Duration::from_millis(100);

/// What every connection of a listener shares.
pub struct Shared {
    pub limits: Limits,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub send_timeout: Duration,
    pub upstream_timeout: Duration,
    pub max_requests: u64,
    pub guard: Guard,
    pub upstream: Arc<Upstream>,
    pub trusted_proxies: Arc<Vec<IpNetwork>>,
    pub metrics: Arc<Metrics>,
}

/// How a connection ended.
pub enum Ending<C> {
    Closed,
    /// It is HTTP/2: serve `io` with hyper, `read` first.
    Http2 {
        io: C,
        read: Bytes,
    },
}

/// Serve one client connection until it closes, or until it turns out to
/// be HTTP/2.
pub async fn serve<C>(
    client: C,
    peer: Peer,
    shared: Arc<Shared>,
    drain: watch::Receiver<bool>,
) -> Ending<C>
where
    C: ClientStream,
{
    let mut conn = Conn::new(client, peer, shared, drain);
    let http2 = conn.run().await;
    if let Some(io) = conn.upstream.take() {
        conn.shared.upstream.put_idle(io);
    }
    if http2 {
        let read = conn.rbuf.split().freeze();
        return Ending::Http2 {
            io: conn.client,
            read,
        };
    }
    Ending::Closed
}

/// A connection over the limit: its head is read (within the header
/// timeout) and answered with a Nova-shaped 503, and it is closed, so that
/// the client is told rather than cut off.
pub async fn refuse_overloaded<C>(client: C, peer: Peer, shared: Arc<Shared>)
where
    C: ClientStream,
{
    let (_keep, drain) = watch::channel(false);
    let mut conn = Conn::new(client, peer, shared, drain);
    let version = match conn.next_head().await {
        Next::Head(head) => head.version,
        Next::Refused(..) => Version::Http11,
        Next::Closed | Next::Http2 => return,
    };
    let mut x = Exchange::new(peer, protocol(version));
    x.request_id = Some(RequestId::new());
    conn.answer_fault(Fault::new(ErrorKind::Overloaded), &mut x, version);
    conn.linger_after = true;
    conn.end_exchange(&mut x, Fate::Close).await;
}

struct Conn<C> {
    client: C,
    peer: Peer,
    shared: Arc<Shared>,
    drain: watch::Receiver<bool>,
    /// Read from the client, not yet used.
    rbuf: BytesMut,
    /// To write to the client.
    wbuf: Vec<u8>,
    /// Read from Nova, not yet used.
    ubuf: BytesMut,
    /// To write to Nova.
    obuf: Vec<u8>,
    /// The Nova connection this client connection keeps between exchanges.
    upstream: Option<Io>,
    scanner: HeadScanner,
    served: u64,
    /// The client has shut its sending side (it may still read).
    client_eof: bool,
    /// The current request asked for the connection to end after it.
    close_requested: bool,
    /// Part of the request is unread: linger before closing.
    linger_after: bool,
    /// The client shut its sending side while its request was at Nova: it
    /// may have given up, or only half-closed.
    closed_while_waiting: bool,
    sleep: Pin<Box<Sleep>>,
    /// The listener's address: the Host of requests that name none.
    local_host: Arc<str>,
    /// The peer's address as text: the `X-Forwarded-For` of its requests.
    peer_text: Arc<str>,
}

enum Next {
    Head(RequestHead),
    Closed,
    Http2,
    Refused(HeadError, Option<RequestLine>),
}

/// What is known of a refused head's request line, for its log line.
struct RequestLine {
    method: Method,
    path: String,
}

/// How an exchange left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    KeepAlive,
    Close,
}

/// The request body as it goes to Nova.
enum Body {
    /// Read whole (validated, possibly rewritten).
    Whole(Bytes),
    /// Relayed from the client by its framing; `read` holds body bytes
    /// already taken from the client (in report mode, a body over the
    /// limit), and `decoder` a chunked body's state after them.
    Stream {
        framing: Framing,
        read: Bytes,
        decoder: Option<ChunkedDecoder>,
    },
}

/// Why an exchange with Nova ended before its answer.
enum Failure {
    /// Answer the client with this fault (nothing of Nova's answer went out).
    Fault(Fault),
    /// The client went away (or stopped reading): nothing more to send.
    ClientGone(ProxyError),
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure::Fault(fault)
    }
}

fn upstream_error(kind: ErrorKind, source: impl Into<crate::error::BoxError>) -> Failure {
    Failure::Fault(Fault::new(ProxyError::with_source(kind, source)))
}

fn protocol(version: Version) -> Protocol {
    match version {
        Version::Http10 => Protocol::Http10,
        Version::Http11 => Protocol::Http11,
    }
}

/// A target's authority (absolute-form) and the form sent to Nova: origin
/// form (`/path?query`), `*`, or an authority (CONNECT), as received.
fn split_target(target: &str) -> (Option<&str>, &str) {
    if target.starts_with('/') || target == "*" {
        return (None, target);
    }
    let Some((scheme, rest)) = target.split_once("://") else {
        return (None, target);
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return (None, target);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(end);
    (
        Some(authority),
        if origin.is_empty() { "/" } else { origin },
    )
}

/// The path as logged: no query string (it may carry anything), no fragment.
fn logged_path(origin: &str) -> &str {
    // By byte: a char-set search costs more than the path is long.
    let end = origin
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(origin.len());
    origin.get(..end).unwrap_or(origin)
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A chunk of the chunked coding: size line, data, CRLF.
fn push_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

impl<C> Conn<C>
where
    C: ClientStream,
{
    fn new(client: C, peer: Peer, shared: Arc<Shared>, drain: watch::Receiver<bool>) -> Self {
        Conn {
            client,
            peer,
            shared,
            drain,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            ubuf: BytesMut::new(),
            obuf: Vec::new(),
            upstream: None,
            scanner: HeadScanner::default(),
            served: 0,
            client_eof: false,
            close_requested: false,
            linger_after: false,
            closed_while_waiting: false,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            local_host: peer.local.to_string().into(),
            peer_text: {
                let mut text = String::new();
                crate::text::push_ip(&mut text, peer.remote.ip());
                text.into()
            },
        }
    }

    /// Serve exchanges until the connection ends. `true`: it is HTTP/2.
    async fn run(&mut self) -> bool {
        loop {
            let head = match self.next_head().await {
                Next::Head(head) => head,
                Next::Closed => break,
                Next::Http2 => return true,
                Next::Refused(error, line) => {
                    self.refuse(error, line).await;
                    break;
                }
            };
            self.served += 1;
            if self.exchange(head).await == Fate::Close {
                break;
            }
        }
        let _ = within(&mut self.sleep, self.shared.send_timeout, |cx| {
            Pin::new(&mut self.client).poll_shutdown(cx)
        })
        .await;
        false
    }

    fn draining(&self) -> bool {
        *self.drain.borrow()
    }

    /// The next request head: within the header timeout, counted from now
    /// (the connection's start or the previous exchange's end), which is
    /// also how long an idle connection is kept.
    async fn next_head(&mut self) -> Next {
        let first = self.served == 0;
        let limits = self.shared.limits;
        self.scanner.reset();
        let deadline = tokio::time::Instant::now() + self.shared.header_timeout;
        self.sleep.as_mut().reset(deadline);
        loop {
            match self.scanner.scan(&self.rbuf, &limits, first) {
                Ok(Some(len)) => {
                    let bytes = take_front(&mut self.rbuf, len);
                    return match head::parse_keeping(bytes, &limits) {
                        Ok(head) => Next::Head(head),
                        // A head that parsed is a request, logged as one; one
                        // that did not has no method or path to log.
                        Err((e @ (HeadError::Ambiguous(_) | HeadError::UriTooLong), bytes)) => {
                            Next::Refused(e, request_line(&bytes))
                        }
                        Err((e, _)) => Next::Refused(e, None),
                    };
                }
                Ok(None) => {}
                Err(HeadError::Http2) => return Next::Http2,
                Err(e) => return Next::Refused(e, None),
            }
            if self.client_eof || (self.draining() && self.rbuf.is_empty()) {
                return Next::Closed;
            }
            let draining = self.draining();
            tokio::select! {
                biased;
                read = std::future::poll_fn(|cx| poll_read_waiting(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)) => {
                    match read {
                        Ok(0) => self.client_eof = true,
                        Ok(_) => {}
                        Err(_) => return Next::Closed,
                    }
                }
                // Re-checked at the top of the loop.
                _ = self.drain.changed(), if !draining => {}
                // Idle, or a head too slow: closed without an answer.
                () = &mut self.sleep => return Next::Closed,
            }
        }
    }

    /// Answer a head that is refused, log it, and end the connection.
    async fn refuse(&mut self, error: HeadError, line: Option<RequestLine>) {
        let (kind, rule) = match error {
            HeadError::TooLarge => (ErrorKind::HeadTooLarge, Rule::HeadTooLarge),
            HeadError::Malformed => (ErrorKind::MalformedHead, Rule::MalformedHead),
            HeadError::UriTooLong => (ErrorKind::UriTooLong, Rule::MaxUriBytes),
            HeadError::Ambiguous(why) => (ErrorKind::AmbiguousFraming, Rule::Framing(why)),
            HeadError::Http2 => return,
        };
        let mut x = Exchange::new(self.peer, Protocol::Http11);
        // A head that could not be read has no request yet.
        if let Some(line) = line {
            x.request_id = Some(RequestId::new());
            x.method = Some(line.method);
            x.path = Some(line.path);
        }
        let fault = Fault::with(kind, ValidationInfo::rejected(rule));
        self.answer_fault(fault, &mut x, Version::Http11);
        self.linger_after = true;
        self.end_exchange(&mut x, Fate::Close).await;
    }

    fn finish(&self, x: &Exchange) {
        finish(&self.shared.metrics, x);
    }

    /// One exchange, from its head to the end of its answer.
    async fn exchange(&mut self, head: RequestHead) -> Fate {
        let request_id = RequestId::new();
        let version = head.version;
        self.close_requested = head.close;
        let mut x = Exchange::new(self.peer, protocol(version));
        x.request_id = Some(request_id);
        let method = Method::from_bytes(head.method_bytes()).unwrap_or(Method::GET);
        x.method = Some(method.clone());
        let target = head.target();
        let (authority, origin) = split_target(target);
        x.path = Some(logged_path(origin).to_owned());

        let shared = self.shared.clone();
        // Shared, not copied: the admitted lines borrow them across `forward`.
        let local_host = Arc::clone(&self.local_host);
        let peer_text = Arc::clone(&self.peer_text);
        let default_host = authority.unwrap_or(&local_host);
        let ctx = AdmitContext {
            peer: self.peer.remote.ip(),
            trusted_proxies: &shared.trusted_proxies,
            tls: self.peer.tls,
            default_host: default_host.as_bytes(),
            peer_text: peer_text.as_bytes(),
            request_id: &request_id,
        };
        let admitted = match admit(head.headers(), &ctx) {
            Ok(a) => a,
            Err(refusal) => {
                let (kind, rule) = match refusal {
                    Refusal::ConflictingContentType => {
                        (ErrorKind::ConflictingHeader, Rule::ConflictingHeader)
                    }
                    Refusal::DuplicateHost => (ErrorKind::DuplicateHost, Rule::DuplicateHost),
                };
                let fault = Fault::with(kind, ValidationInfo::rejected(rule));
                self.answer_fault(fault, &mut x, version);
                self.linger_after = true;
                return self.end_exchange(&mut x, Fate::Close).await;
            }
        };
        x.client = admitted.client;
        x.user_agent = admitted.user_agent.map(crate::text::lossy);
        x.global_request_id = admitted.global_request_id.map(crate::text::lossy);
        x.trace_id = admitted.traceparent.and_then(trace_id).map(str::to_owned);
        x.dropped_headers = admitted.underscored;

        let settings = shared.guard.settings();
        let heads = Heads {
            token: admitted.token,
            api_version: admitted.api_version.as_deref(),
            nova_api_version: admitted.nova_api_version.as_deref(),
            content_type: admitted.content_type,
            content_length: match head.framing {
                Framing::Length(n) => Some(n),
                Framing::None | Framing::Chunked => None,
            },
        };
        let plan = guard::plan(settings, &method, target, &heads);
        let report = settings.report();
        let stream = || Body::Stream {
            framing: head.framing,
            read: Bytes::new(),
            decoder: None,
        };
        let fate = match plan {
            Plan::Pass(info) => {
                x.validation = info;
                self.forward(&head, &method, &admitted.lines, stream(), &mut x)
                    .await
            }
            Plan::TooLarge(mut info) if report => {
                info.verdict = Verdict::Reported;
                info.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
                x.validation = info;
                self.forward(&head, &method, &admitted.lines, stream(), &mut x)
                    .await
            }
            Plan::TooLarge(info) => {
                // Not a byte of the body is read: answered, and closed.
                self.answer_fault(Fault::with(ErrorKind::BodyTooLarge, info), &mut x, version);
                self.linger_after = true;
                Fate::Close
            }
            Plan::Validate(guarded) => {
                let mut info = guarded.info();
                if head.expect_continue && self.rbuf.is_empty() {
                    self.wbuf
                        .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    if self.flush_client().await.is_err() {
                        return self.client_gone(&mut x, info);
                    }
                }
                match self.read_body(head.framing, settings.body_limit()).await {
                    Ok(body) => {
                        x.bytes_in = body.len() as u64;
                        let request = guard::Request {
                            guarded,
                            body,
                            request_id,
                        };
                        let outcome = match shared.guard.clone().oneshot(request).await {
                            Ok(outcome) => outcome,
                            Err(never) => match never {},
                        };
                        match outcome {
                            Outcome::Answer { answer, info } => {
                                x.validation = info;
                                self.answer(&answer, &mut x, version, Fate::KeepAlive)
                            }
                            Outcome::Forward { body, info } => {
                                x.validation = info;
                                let body = Body::Whole(body);
                                self.forward(&head, &method, &admitted.lines, body, &mut x)
                                    .await
                            }
                        }
                    }
                    Err(Read::TooLarge { read, decoder }) => {
                        info.rule = Some(Rule::MaxBodyBytes);
                        x.bytes_in = read.len() as u64;
                        if report {
                            info.verdict = Verdict::Reported;
                            info.would_status = Some(StatusCode::PAYLOAD_TOO_LARGE.as_u16());
                            x.validation = info;
                            let body = Body::Stream {
                                framing: head.framing,
                                read,
                                decoder,
                            };
                            self.forward(&head, &method, &admitted.lines, body, &mut x)
                                .await
                        } else {
                            info.verdict = Verdict::Rejected;
                            let fault = Fault::with(ErrorKind::BodyTooLarge, info);
                            self.answer_fault(fault, &mut x, version);
                            self.linger_after = true;
                            Fate::Close
                        }
                    }
                    Err(Read::Failed(error)) => {
                        // Nova never sees it: answered by nova-guard.
                        info.verdict = Verdict::Rejected;
                        self.answer_fault(Fault::with(error, info), &mut x, version);
                        Fate::Close
                    }
                }
            }
        };
        self.end_exchange(&mut x, fate).await
    }

    /// Log the exchange, then hand over what is left of its answer (all of a
    /// small one): a small answer's line is queued before the client can see
    /// the answer end.
    async fn end_exchange(&mut self, x: &mut Exchange, fate: Fate) -> Fate {
        let mut fate = fate;
        if std::mem::take(&mut self.closed_while_waiting) && x.complete {
            // A client that shut its sending side may have closed for good
            // (it gave up): its reset to the answer says so. One that only
            // half-closed reads it. Logged once that is known.
            if self.flush_client().await.is_err() || self.reset_after_answer().await {
                x.status = CLIENT_CLOSED;
                x.complete = false;
                x.hung_up = Some(HungUp::Client);
                x.upstream.error.get_or_insert(ErrorKind::ClientGone);
                fate = Fate::Close;
            }
            self.finish(x);
        } else {
            self.finish(x);
            if self.flush_client().await.is_err() {
                fate = Fate::Close;
            }
        }
        if std::mem::take(&mut self.linger_after) && fate == Fate::Close {
            self.linger().await;
        }
        self.release_buffers();
        fate
    }

    /// Give back the memory of the buffers that hold nothing: a connection
    /// waiting for its next request or for Nova's answer holds none (the
    /// allocator keeps them at hand for the next exchange).
    fn release_buffers(&mut self) {
        release(&mut self.rbuf);
        release(&mut self.ubuf);
        if self.wbuf.is_empty() {
            self.wbuf = Vec::new();
        }
        if self.obuf.is_empty() {
            self.obuf = Vec::new();
        }
    }

    /// Whether the client resets the connection within a moment of its answer.
    async fn reset_after_answer(&mut self) -> bool {
        let step = Duration::from_millis(5);
        let mut waited = Duration::ZERO;
        while waited < RESET_WATCH {
            if self.client.was_reset() {
                return true;
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
        self.client.was_reset()
    }

    /// The client went away before its answer.
    fn client_gone(&mut self, x: &mut Exchange, info: ValidationInfo) -> Fate {
        x.validation = info;
        x.status = CLIENT_CLOSED;
        x.complete = false;
        x.hung_up = Some(HungUp::Client);
        x.upstream.error.get_or_insert(ErrorKind::ClientGone);
        self.finish(x);
        Fate::Close
    }

    /// Read a guarded request's whole body, at most `limit` bytes, within
    /// the body timeout. The timer is set only when there is something to
    /// wait for: most bodies came with their head.
    async fn read_body(&mut self, framing: Framing, limit: usize) -> Result<Bytes, Read> {
        let mut armed = false;
        let max_trailers = self.shared.limits.max_headers;
        let mut decoder = match framing {
            Framing::None | Framing::Length(0) => return Ok(Bytes::new()),
            Framing::Length(_) => None,
            Framing::Chunked => Some(ChunkedDecoder::new(max_trailers)),
        };
        let mut body = BytesMut::new();
        loop {
            match (&mut decoder, framing) {
                // Gathered in place (the plan refused lengths over the limit).
                (None, Framing::Length(n)) => {
                    let want = usize::try_from(n).unwrap_or(usize::MAX);
                    if self.rbuf.len() >= want {
                        return Ok(take_front(&mut self.rbuf, want));
                    }
                }
                (Some(d), _) => {
                    while !self.rbuf.is_empty() && !d.is_done() {
                        let step = d.decode(&self.rbuf).map_err(|_| {
                            Read::Failed(ProxyError::with_source(
                                ErrorKind::ClientBody,
                                "malformed chunk",
                            ))
                        })?;
                        body.extend_from_slice(&self.rbuf[step.data.clone()]);
                        self.rbuf.advance(step.consumed);
                        if body.len() > limit {
                            return Err(Read::TooLarge {
                                read: body.freeze(),
                                decoder: Some(d.clone()),
                            });
                        }
                    }
                    if d.is_done() {
                        return Ok(body.freeze());
                    }
                }
                (None, _) => return Ok(Bytes::new()),
            }
            if !armed {
                armed = true;
                let deadline = tokio::time::Instant::now() + self.shared.body_timeout;
                self.sleep.as_mut().reset(deadline);
            }
            let read = tokio::select! {
                biased;
                read = std::future::poll_fn(|cx| poll_read_buf(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)) => read,
                () = &mut self.sleep => {
                    return Err(Read::Failed(ProxyError::new(ErrorKind::ClientBodyTimeout)));
                }
            };
            match read {
                Ok(0) => {
                    self.client_eof = true;
                    return Err(Read::Failed(ProxyError::with_source(
                        ErrorKind::ClientBody,
                        "the client closed its side before the end of the body",
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(Read::Failed(ProxyError::with_source(
                        ErrorKind::ClientBody,
                        e,
                    )))
                }
            }
        }
    }

    /// Send the request to Nova and relay its answer back.
    async fn forward(
        &mut self,
        head: &RequestHead,
        method: &Method,
        lines: &[Line<'_>],
        mut body: Body,
        x: &mut Exchange,
    ) -> Fate {
        let version = head.version;
        if let Body::Stream {
            framing: Framing::Chunked,
            read,
            decoder: decoder @ None,
        } = &mut body
        {
            // The chunks that came with the head are judged before Nova
            // sees the head: a malformed one never reaches it.
            match self.decode_buffered() {
                Ok((data, d)) => {
                    *read = data;
                    *decoder = Some(d);
                }
                Err(()) => {
                    let mut info = x.validation.clone();
                    info.verdict = Verdict::Rejected;
                    info.rule = Some(Rule::Framing(crate::wire::Ambiguity::BadChunk));
                    let fault = Fault::with(ErrorKind::AmbiguousFraming, info);
                    self.answer_fault(fault, x, version);
                    self.linger_after = true;
                    return Fate::Close;
                }
            }
        }
        let replayable = match &body {
            Body::Whole(_) => true,
            Body::Stream { framing, read, .. } => {
                read.is_empty() && matches!(framing, Framing::None | Framing::Length(0))
            }
        };
        let started = std::time::Instant::now();
        let mut fresh_only = false;
        let (mut io, response, sent) = loop {
            match self
                .ask_nova(head, method, lines, &mut body, fresh_only)
                .await
            {
                Ok(ok) => break ok,
                // A kept connection Nova had closed: once more, anew.
                Err((_, true)) if !fresh_only && replayable && idempotent(method) => {
                    fresh_only = true;
                }
                Err((failure, _)) => {
                    x.upstream.duration = Some(started.elapsed());
                    return match failure {
                        Failure::Fault(mut fault) => {
                            // On its way to Nova: the verdict it had.
                            fault.validation = x.validation.clone();
                            let consumed = self.request_consumed(&body);
                            match self.answer_fault(fault, x, version) {
                                Fate::KeepAlive if consumed => Fate::KeepAlive,
                                _ => Fate::Close,
                            }
                        }
                        Failure::ClientGone(error) => {
                            x.status = CLIENT_CLOSED;
                            x.complete = false;
                            x.hung_up = Some(HungUp::Client);
                            x.upstream.error = Some(ErrorKind::ClientGone);
                            x.upstream.cause = Some(error.chain());
                            Fate::Close
                        }
                    };
                }
            }
        };
        x.upstream.duration = Some(started.elapsed());
        x.upstream.status = Some(response.status);
        x.upstream.request_id = response
            .header("x-openstack-request-id")
            .map(crate::text::lossy);
        if let Body::Stream { .. } = body {
            x.bytes_in = x.bytes_in.max(sent.bytes);
        }
        let request_done = sent.whole;
        let keep = !head.close
            && !response.close
            && request_done
            && !self.client_eof
            && self.served < self.shared.max_requests
            && !self.draining()
            && !(version == Version::Http10 && response.framing == BodyFraming::Chunked);
        let head_request = *method == Method::HEAD;
        let relayed = self
            .relay_response(&mut io, &response, version, keep, head_request, x)
            .await;
        let fate = match relayed {
            Ok(()) => {
                if !response.close && request_done {
                    self.upstream = Some(io);
                }
                if keep {
                    Fate::KeepAlive
                } else {
                    Fate::Close
                }
            }
            Err(hung_up) => {
                x.complete = false;
                x.hung_up = Some(hung_up);
                Fate::Close
            }
        };
        if fate == Fate::Close && !request_done {
            self.linger_after = true;
        }
        fate
    }

    /// Decode the chunked body bytes already read from the client.
    fn decode_buffered(&mut self) -> Result<(Bytes, ChunkedDecoder), ()> {
        let limits = self.shared.limits;
        let mut d = ChunkedDecoder::new(limits.max_headers);
        let mut data = BytesMut::new();
        while !self.rbuf.is_empty() && !d.is_done() {
            let step = d.decode(&self.rbuf).map_err(|_| ())?;
            data.extend_from_slice(&self.rbuf[step.data.clone()]);
            self.rbuf.advance(step.consumed);
        }
        Ok((data.freeze(), d))
    }

    /// Whether nothing of the request is left unread from the client.
    fn request_consumed(&self, body: &Body) -> bool {
        match body {
            Body::Whole(_) => true,
            Body::Stream { framing, read, .. } => {
                read.is_empty() && matches!(framing, Framing::None | Framing::Length(0))
            }
        }
    }

    /// One attempt: a connection to Nova, the request on it, Nova's
    /// response head back. On failure, whether a retry on a new connection
    /// could help (a kept connection that Nova had closed: nothing came
    /// back, and the request can be sent again).
    async fn ask_nova(
        &mut self,
        head: &RequestHead,
        method: &Method,
        lines: &[Line<'_>],
        body: &mut Body,
        fresh_only: bool,
    ) -> Result<(Io, ResponseHead, Sent), (Failure, bool)> {
        let kept = if fresh_only {
            None
        } else {
            self.upstream.take()
        };
        let kept = kept.and_then(|mut io| io.is_open().then_some(io));
        let (mut io, reused) = match kept {
            Some(io) => (io, true),
            None => {
                let got = if fresh_only {
                    self.shared.upstream.connect().await.map(|io| (io, false))
                } else {
                    self.shared.upstream.connection().await
                };
                got.map_err(|e| (Failure::Fault(Fault::new(e)), false))?
            }
        };
        self.encode_request(head, method, lines, body);
        let wrote = self.write_upstream(&mut io).await;
        if let Err(failure) = wrote {
            return Err((failure, reused));
        }
        let mut sent = Sent {
            bytes: 0,
            whole: true,
        };
        if let Body::Stream {
            framing,
            read,
            decoder,
        } = body
        {
            sent = self
                .send_body(&mut io, *framing, std::mem::take(read), decoder.take())
                .await
                .map_err(|failure| (failure, false))?;
        }
        match self.response_head(&mut io, *method == Method::HEAD).await {
            Ok(response) => Ok((io, response, sent)),
            Err((failure, nothing_back)) => Err((failure, reused && nothing_back)),
        }
    }

    /// The request head (and a whole body) for Nova, into `obuf`.
    fn encode_request(
        &mut self,
        head: &RequestHead,
        method: &Method,
        lines: &[Line<'_>],
        body: &Body,
    ) {
        let out = &mut self.obuf;
        out.clear();
        let whole = match body {
            Body::Whole(bytes) => bytes.len(),
            Body::Stream { .. } => 0,
        };
        out.reserve(HEAD_ROOM + whole);
        out.extend_from_slice(head.method_bytes());
        out.push(b' ');
        let (_, origin) = split_target(head.target());
        if origin.starts_with(['/', '?']) {
            out.extend_from_slice(self.shared.upstream.base_path.as_bytes());
        }
        if origin.starts_with('?') {
            out.push(b'/');
        }
        out.extend_from_slice(origin.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for line in lines {
            push_line(out, line.name, &line.value);
        }
        match body {
            Body::Whole(bytes) => {
                out.extend_from_slice(b"content-length: ");
                crate::text::push_u64(out, bytes.len() as u64);
                out.extend_from_slice(b"\r\n\r\n");
                out.extend_from_slice(bytes);
            }
            Body::Stream { framing, read, .. } => {
                match framing {
                    Framing::Length(n) => {
                        out.extend_from_slice(b"content-length: ");
                        crate::text::push_u64(out, *n);
                        out.extend_from_slice(b"\r\n");
                    }
                    Framing::Chunked => {
                        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
                    }
                    // As hyper frames a bodiless request of a method that
                    // usually has one.
                    Framing::None => {
                        if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                            out.extend_from_slice(b"content-length: 0\r\n");
                        }
                    }
                }
                out.extend_from_slice(b"\r\n");
                match framing {
                    Framing::Chunked => push_chunk(out, read),
                    _ => out.extend_from_slice(read),
                }
            }
        }
    }

    /// Write `obuf` to Nova, each write within the upstream timeout.
    async fn write_upstream(&mut self, io: &mut Io) -> Result<(), Failure> {
        let mut at = 0;
        while at < self.obuf.len() {
            let wrote = within(&mut self.sleep, self.shared.upstream_timeout, |cx| {
                Pin::new(&mut *io).poll_write(cx, &self.obuf[at..])
            })
            .await;
            match wrote {
                Some(Ok(0)) => {
                    return Err(upstream_error(
                        ErrorKind::UpstreamProtocol,
                        io::Error::from(io::ErrorKind::WriteZero),
                    ))
                }
                Some(Ok(n)) => at += n,
                Some(Err(e)) => return Err(upstream_error(ErrorKind::UpstreamProtocol, e)),
                None => {
                    return Err(upstream_error(
                        ErrorKind::UpstreamTimeout,
                        "Nova took none of the request",
                    ))
                }
            }
        }
        self.obuf.clear();
        Ok(())
    }

    /// Relay a streamed request body to Nova by its framing, watching Nova
    /// for an early answer (it may answer before reading the whole body).
    async fn send_body(
        &mut self,
        io: &mut Io,
        framing: Framing,
        read: Bytes,
        decoder: Option<ChunkedDecoder>,
    ) -> Result<Sent, Failure> {
        let max_trailers = self.shared.limits.max_headers;
        let mut sent = read.len() as u64;
        let mut state = match framing {
            Framing::None | Framing::Length(0) => {
                return Ok(Sent {
                    bytes: 0,
                    whole: true,
                })
            }
            Framing::Length(n) => Relay::Length(n - sent.min(n)),
            Framing::Chunked => {
                Relay::Chunked(decoder.unwrap_or_else(|| ChunkedDecoder::new(max_trailers)))
            }
        };
        if let Relay::Chunked(d) = &state {
            if d.is_done() {
                self.obuf.extend_from_slice(b"0\r\n\r\n");
            }
        }
        let body_timeout = self.shared.body_timeout;
        let upstream_timeout = self.shared.upstream_timeout;
        loop {
            // Move what the client sent into what goes to Nova.
            if self.obuf.len() < WRITE_BATCH {
                match &mut state {
                    Relay::Length(remaining) => {
                        let n = (*remaining).min(self.rbuf.len() as u64) as usize;
                        self.obuf.extend_from_slice(&self.rbuf[..n]);
                        self.rbuf.advance(n);
                        *remaining -= n as u64;
                        sent += n as u64;
                    }
                    Relay::Chunked(d) => {
                        while !self.rbuf.is_empty() && !d.is_done() && self.obuf.len() < WRITE_BATCH
                        {
                            let step = d.decode(&self.rbuf).map_err(|_| {
                                Failure::Fault(Fault::new(ProxyError::with_source(
                                    ErrorKind::ClientBody,
                                    "malformed chunk",
                                )))
                            })?;
                            push_chunk(&mut self.obuf, &self.rbuf[step.data.clone()]);
                            sent += step.data.len() as u64;
                            self.rbuf.advance(step.consumed);
                            if d.is_done() {
                                self.obuf.extend_from_slice(b"0\r\n\r\n");
                            }
                        }
                    }
                }
            }
            let done = match &state {
                Relay::Length(remaining) => *remaining == 0,
                Relay::Chunked(d) => d.is_done(),
            };
            if done && self.obuf.is_empty() {
                return Ok(Sent {
                    bytes: sent,
                    whole: true,
                });
            }
            let writing = !self.obuf.is_empty();
            let limit = if writing {
                upstream_timeout
            } else {
                body_timeout
            };
            let event = within(&mut self.sleep, limit, |cx| {
                // Nova answering already: stop sending.
                if let Poll::Ready(r) = poll_read_waiting(&mut *io, cx, &mut self.ubuf, 4096) {
                    return Poll::Ready(Event::Nova(r));
                }
                if writing {
                    Pin::new(&mut *io)
                        .poll_write(cx, &self.obuf)
                        .map(Event::Wrote)
                } else {
                    poll_read_buf(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)
                        .map(Event::Client)
                }
            })
            .await;
            match event {
                None if writing => {
                    return Err(upstream_error(
                        ErrorKind::UpstreamTimeout,
                        "Nova took none of the request body",
                    ))
                }
                None => {
                    return Err(Failure::Fault(Fault::new(ProxyError::new(
                        ErrorKind::ClientBodyTimeout,
                    ))))
                }
                Some(Event::Nova(Ok(0))) => {
                    return Err(upstream_error(
                        ErrorKind::UpstreamProtocol,
                        "Nova closed the connection while the request body was sent",
                    ))
                }
                Some(Event::Nova(Ok(_))) => {
                    return Ok(Sent {
                        bytes: sent,
                        whole: false,
                    })
                }
                Some(Event::Nova(Err(e))) => {
                    return Err(upstream_error(ErrorKind::UpstreamProtocol, e))
                }
                Some(Event::Wrote(Ok(0))) => {
                    return Err(upstream_error(
                        ErrorKind::UpstreamProtocol,
                        io::Error::from(io::ErrorKind::WriteZero),
                    ))
                }
                Some(Event::Wrote(Ok(n))) => {
                    self.obuf.drain(..n);
                }
                Some(Event::Wrote(Err(e))) => {
                    return Err(upstream_error(ErrorKind::UpstreamProtocol, e))
                }
                Some(Event::Client(Ok(0))) => {
                    self.client_eof = true;
                    return Err(Failure::Fault(Fault::new(ProxyError::with_source(
                        ErrorKind::ClientBody,
                        "the client closed its side before the end of the body",
                    ))));
                }
                Some(Event::Client(Ok(_))) => {}
                // A body that breaks off is the client's fault, however it
                // left: Nova's request is aborted.
                Some(Event::Client(Err(e))) => {
                    return Err(Failure::Fault(Fault::new(ProxyError::with_source(
                        ErrorKind::ClientBody,
                        e,
                    ))))
                }
            }
        }
    }

    /// Nova's response head (informational answers skipped), within the
    /// upstream timeout, the client watched meanwhile: a reset means it is
    /// gone (the request to Nova is then dropped); its closing only its
    /// sending side is a half-close, and it still gets its answer. On
    /// failure, whether nothing at all came back from Nova.
    async fn response_head(
        &mut self,
        io: &mut Io,
        head_request: bool,
    ) -> Result<ResponseHead, (Failure, bool)> {
        let max_head = self.shared.limits.max_head_bytes.max(64 * 1024);
        let max_headers = self.shared.limits.max_headers.max(100);
        let mut received = 0usize;
        let mut armed = false;
        // The request is sent: nothing is held while Nova works on it.
        self.release_buffers();
        loop {
            match response::head_len(&self.ubuf, max_head) {
                Ok(Some(len)) => {
                    let bytes = take_front(&mut self.ubuf, len);
                    match response::parse(bytes, max_headers, head_request) {
                        Ok(r) if r.status == 101 => {
                            return Err((
                                upstream_error(
                                    ErrorKind::UpstreamProtocol,
                                    "Nova switched protocols",
                                ),
                                false,
                            ))
                        }
                        Ok(r) if r.is_informational() => continue,
                        Ok(r) => return Ok(r),
                        Err(e) => {
                            return Err((upstream_error(ErrorKind::UpstreamProtocol, e), false))
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => return Err((upstream_error(ErrorKind::UpstreamProtocol, e), false)),
            }
            let watch_client =
                !self.client_eof && self.rbuf.len() < self.shared.limits.max_head_bytes;
            let event = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) =
                    poll_read_waiting(&mut *io, cx, &mut self.ubuf, UPSTREAM_CHUNK)
                {
                    return Poll::Ready(Some(Event::Nova(r)));
                }
                if watch_client {
                    if let Poll::Ready(r) =
                        poll_read_waiting(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)
                    {
                        return Poll::Ready(Some(Event::Client(r)));
                    }
                }
                if !armed {
                    armed = true;
                    let deadline = tokio::time::Instant::now() + self.shared.upstream_timeout;
                    self.sleep.as_mut().reset(deadline);
                }
                match self.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            match event {
                None => {
                    return Err((
                        Failure::Fault(Fault::new(ProxyError::new(ErrorKind::UpstreamTimeout))),
                        false,
                    ))
                }
                Some(Event::Nova(Ok(0))) => {
                    return Err((
                        upstream_error(
                            ErrorKind::UpstreamProtocol,
                            "Nova closed the connection before its response head",
                        ),
                        received == 0,
                    ))
                }
                Some(Event::Nova(Ok(n))) => received += n,
                Some(Event::Nova(Err(e))) => {
                    let nothing = received == 0 && gone(&e);
                    return Err((upstream_error(ErrorKind::UpstreamProtocol, e), nothing));
                }
                Some(Event::Client(Ok(0))) => {
                    self.client_eof = true;
                    self.closed_while_waiting = true;
                }
                Some(Event::Client(Ok(_))) => {}
                Some(Event::Client(Err(e))) => {
                    return Err((
                        Failure::ClientGone(ProxyError::with_source(ErrorKind::ClientGone, e)),
                        false,
                    ))
                }
                Some(Event::Wrote(_)) => {}
            }
        }
    }

    /// Relay Nova's answer to the client. `Err`: who hung up first.
    async fn relay_response(
        &mut self,
        io: &mut Io,
        response: &ResponseHead,
        version: Version,
        keep: bool,
        head_request: bool,
        x: &mut Exchange,
    ) -> Result<(), HungUp> {
        x.status = response.status;
        let out = &mut self.wbuf;
        out.clear();
        out.reserve(HEAD_ROOM + response_room(response.framing));
        out.extend_from_slice(b"HTTP/1.1 ");
        crate::text::push_u64(out, u64::from(response.status));
        out.push(b' ');
        out.extend_from_slice(response.reason());
        out.extend_from_slice(b"\r\n");
        for (name, value) in response.end_to_end() {
            push_line(out, name, value);
        }
        let chunked_out = response.framing == BodyFraming::Chunked && version == Version::Http11;
        match response.framing {
            BodyFraming::Length(n) => {
                out.extend_from_slice(b"content-length: ");
                crate::text::push_u64(out, n);
                out.extend_from_slice(b"\r\n");
            }
            BodyFraming::Chunked if chunked_out => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            // The length Nova announced for a HEAD or a 304.
            BodyFraming::Empty if head_request || response.status == 304 => {
                if let Some(v) = response.header("content-length") {
                    push_line(out, b"content-length", v);
                }
            }
            _ => {}
        }
        if !keep {
            if version == Version::Http11 {
                out.extend_from_slice(b"connection: close\r\n");
            }
        } else if version == Version::Http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        x.complete = false;
        let upstream_timeout = self.shared.upstream_timeout;
        match response.framing {
            BodyFraming::Empty => {}
            BodyFraming::Length(n) => {
                let mut remaining = n;
                loop {
                    let take = remaining.min(self.ubuf.len() as u64) as usize;
                    if self.wbuf.len() + take <= WRITE_BATCH {
                        // A small answer goes out with its head in one write.
                        self.wbuf.extend_from_slice(&self.ubuf[..take]);
                    } else {
                        self.flush_client().await.map_err(|_| HungUp::Client)?;
                        let timeout = self.shared.send_timeout;
                        let piece = &self.ubuf[..take];
                        write_all(&mut self.client, &mut self.sleep, timeout, piece)
                            .await
                            .map_err(|_| HungUp::Client)?;
                    }
                    self.ubuf.advance(take);
                    remaining -= take as u64;
                    x.bytes_out += take as u64;
                    if remaining == 0 {
                        break;
                    }
                    self.flush_client().await.map_err(|_| HungUp::Client)?;
                    self.fill_upstream(io, upstream_timeout, x).await?;
                }
            }
            BodyFraming::Chunked => {
                let mut d = ChunkedDecoder::new(self.shared.limits.max_headers.max(100));
                loop {
                    while !self.ubuf.is_empty() && !d.is_done() && self.wbuf.len() < WRITE_BATCH {
                        let step = match d.decode(&self.ubuf) {
                            Ok(step) => step,
                            Err(_) => {
                                x.upstream.error = Some(ErrorKind::UpstreamProtocol);
                                x.upstream.cause = Some(
                                    "upstream_protocol: malformed chunk in the response".into(),
                                );
                                let _ = self.flush_client().await;
                                return Err(HungUp::Upstream);
                            }
                        };
                        let data = &self.ubuf[step.data.clone()];
                        x.bytes_out += data.len() as u64;
                        if chunked_out {
                            push_chunk(&mut self.wbuf, data);
                        } else {
                            self.wbuf.extend_from_slice(data);
                        }
                        self.ubuf.advance(step.consumed);
                    }
                    if d.is_done() {
                        if chunked_out {
                            self.wbuf.extend_from_slice(b"0\r\n\r\n");
                        }
                        break;
                    }
                    if self.wbuf.len() >= WRITE_BATCH || self.ubuf.is_empty() {
                        self.flush_client().await.map_err(|_| HungUp::Client)?;
                    }
                    if self.ubuf.is_empty() {
                        self.fill_upstream(io, upstream_timeout, x).await?;
                    }
                }
            }
            BodyFraming::UntilClose => loop {
                x.bytes_out += self.ubuf.len() as u64;
                self.flush_client().await.map_err(|_| HungUp::Client)?;
                let timeout = self.shared.send_timeout;
                write_all(&mut self.client, &mut self.sleep, timeout, &self.ubuf)
                    .await
                    .map_err(|_| HungUp::Client)?;
                self.ubuf.clear();
                let read = within(&mut self.sleep, upstream_timeout, |cx| {
                    poll_read_buf(&mut *io, cx, &mut self.ubuf, UPSTREAM_CHUNK)
                })
                .await;
                match read {
                    Some(Ok(0)) => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        x.upstream.error = Some(ErrorKind::UpstreamProtocol);
                        x.upstream.cause = Some(format!("upstream_protocol: response body: {e}"));
                        return Err(HungUp::Upstream);
                    }
                    None => {
                        x.upstream.error = Some(ErrorKind::UpstreamTimeout);
                        x.upstream.cause = Some("upstream_timeout: in the response body".into());
                        return Err(HungUp::Upstream);
                    }
                }
            },
        }
        // What is left in `wbuf` goes out once the exchange is logged.
        x.complete = true;
        Ok(())
    }

    /// More of Nova's answer into `ubuf`, within the pause limit.
    async fn fill_upstream(
        &mut self,
        io: &mut Io,
        limit: Duration,
        x: &mut Exchange,
    ) -> Result<(), HungUp> {
        let read = within(&mut self.sleep, limit, |cx| {
            poll_read_buf(&mut *io, cx, &mut self.ubuf, UPSTREAM_CHUNK)
        })
        .await;
        let (kind, cause) = match read {
            Some(Ok(n)) if n > 0 => return Ok(()),
            Some(Ok(_)) => (
                ErrorKind::UpstreamProtocol,
                "upstream_protocol: response body: Nova closed the connection before the end of its answer".to_owned(),
            ),
            Some(Err(e)) => (
                ErrorKind::UpstreamProtocol,
                format!("upstream_protocol: response body: {e}"),
            ),
            None => (
                ErrorKind::UpstreamTimeout,
                "upstream_timeout: in the response body".to_owned(),
            ),
        };
        // What arrived before the cut still goes out.
        let _ = self.flush_client().await;
        x.upstream.error = Some(kind);
        x.upstream.cause = Some(cause);
        Err(HungUp::Upstream)
    }

    /// Write `wbuf` to the client; it must take bytes within the send timeout.
    async fn flush_client(&mut self) -> io::Result<()> {
        let timeout = self.shared.send_timeout;
        let wrote = write_all(&mut self.client, &mut self.sleep, timeout, &self.wbuf).await;
        self.wbuf.clear();
        wrote
    }

    /// Answer a fault, through the one rescue step.
    fn answer_fault(&mut self, fault: Fault, x: &mut Exchange, version: Version) -> Fate {
        let request_id = x.request_id.unwrap_or_default();
        let rescued = rescue(fault, request_id);
        x.validation = rescued.validation;
        let (error, cause) = (rescued.upstream.error, rescued.upstream.cause);
        x.upstream.error = error;
        x.upstream.cause = cause;
        let fate = if rescued.close {
            Fate::Close
        } else {
            Fate::KeepAlive
        };
        self.answer(&rescued.answer, x, version, fate)
    }

    /// Put one of nova-guard's own answers in `wbuf` (written once the
    /// exchange is logged).
    fn answer(&mut self, answer: &Answer, x: &mut Exchange, version: Version, fate: Fate) -> Fate {
        let close = fate == Fate::Close
            || self.close_requested
            || self.client_eof
            || self.draining()
            || self.served >= self.shared.max_requests;
        let out = &mut self.wbuf;
        out.clear();
        out.reserve(HEAD_ROOM + answer.body().len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(answer.status().as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            answer
                .status()
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        answer.write_fields(out);
        push_date(out);
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if version == Version::Http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(answer.body());
        x.status = answer.status().as_u16();
        x.bytes_out = answer.body().len() as u64;
        x.complete = true;
        if close {
            Fate::Close
        } else {
            Fate::KeepAlive
        }
    }

    /// Read and drop what the client still sends, for a short while, so
    /// that closing with unread bytes does not reset the connection before
    /// the client has read its answer.
    async fn linger(&mut self) {
        if self.client_eof {
            return;
        }
        let _ = within(&mut self.sleep, self.shared.send_timeout, |cx| {
            Pin::new(&mut self.client).poll_shutdown(cx)
        })
        .await;
        let mut dropped = 0usize;
        let deadline = tokio::time::Instant::now() + LINGER;
        self.sleep.as_mut().reset(deadline);
        while dropped < LINGER_BYTES {
            self.rbuf.clear();
            let read = tokio::select! {
                biased;
                read = std::future::poll_fn(|cx| poll_read_buf(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)) => read,
                () = &mut self.sleep => break,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
        self.client_eof = true;
    }
}

/// What happened while waiting on several things at once.
enum Event {
    Nova(io::Result<usize>),
    Wrote(io::Result<usize>),
    Client(io::Result<usize>),
}

enum Relay {
    Length(u64),
    Chunked(ChunkedDecoder),
}

struct Sent {
    /// Body bytes sent (decoded, for a chunked body).
    bytes: u64,
    /// All of it: Nova did not answer before the end of the body.
    whole: bool,
}

enum Read {
    /// Over the limit: what was read, and a chunked body's state.
    TooLarge {
        read: Bytes,
        decoder: Option<ChunkedDecoder>,
    },
    Failed(ProxyError),
}

/// The first `len` bytes of `buf`, taken out of it. Small ones (heads, most
/// bodies) are copied, so that the buffer is not held by them for the rest
/// of the exchange and its next reads reuse it; large ones are split off, so
/// that they are not held twice.
fn take_front(buf: &mut BytesMut, len: usize) -> Bytes {
    if len <= COPY_AT_MOST {
        let taken = Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        taken
    } else {
        buf.split_to(len).freeze()
    }
}

/// Room for the body of Nova's answer gathered behind its head.
fn response_room(framing: BodyFraming) -> usize {
    match framing {
        BodyFraming::Length(n) => usize::try_from(n).map_or(WRITE_BATCH, |n| n.min(WRITE_BATCH)),
        BodyFraming::Chunked => WRITE_BATCH,
        // Written from the buffer it is read into.
        BodyFraming::Empty | BodyFraming::UntilClose => 0,
    }
}

/// Write all of `bytes` to the client; it must take some within `limit`
/// each time it is asked.
async fn write_all<C: ClientStream>(
    client: &mut C,
    sleep: &mut Pin<Box<Sleep>>,
    limit: Duration,
    bytes: &[u8],
) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let wrote = within(sleep, limit, |cx| {
            Pin::new(&mut *client).poll_write(cx, &bytes[at..])
        })
        .await;
        match wrote {
            Some(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
            Some(Ok(n)) => at += n,
            Some(Err(e)) => return Err(e),
            None => return Err(io::ErrorKind::TimedOut.into()),
        }
    }
    Ok(())
}

/// A connection the other side reset or abandoned.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// The method and path of a head that parsed far enough, for its log line.
fn request_line(bytes: &[u8]) -> Option<RequestLine> {
    let mut headers = [httparse::EMPTY_HEADER; 0];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(bytes);
    let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
    let (_, origin) = split_target(req.path?);
    Some(RequestLine {
        method,
        path: logged_path(origin).to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_as_sent_to_nova() {
        assert_eq!(
            split_target("/v2.1/servers?x=1"),
            (None, "/v2.1/servers?x=1")
        );
        assert_eq!(
            split_target("http://nova.example:8774/v2.1/servers"),
            (Some("nova.example:8774"), "/v2.1/servers")
        );
        assert_eq!(
            split_target("http://nova.example"),
            (Some("nova.example"), "/")
        );
        assert_eq!(split_target("http://h?q"), (Some("h"), "?q"));
        assert_eq!(split_target("*"), (None, "*"));
        assert_eq!(split_target("nova.example:443"), (None, "nova.example:443"));
        assert_eq!(logged_path("/v2.1/servers?token=x#f"), "/v2.1/servers");
    }
}
