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
//!
//! Here: the connection, its loop and each exchange's course. The request's
//! way to Nova is in `request`, the answer's way back in `answer`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, StatusCode};
use ipnetwork::IpNetwork;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::ServiceExt;

use super::head::{self, HeadError, HeadScanner, Limits, RequestHead, Version};
use super::io::{poll_read_waiting, release, release_vec, within, Deadline, Drain};
use crate::admit::{admit, Context as AdmitContext, Refusal};
use crate::error::{ErrorKind, ProxyError, CLIENT_CLOSED};
use crate::exchange::{
    trace_id, Exchange, HungUp, Peer, PeerText, Protocol, RequestId, Rule, ValidationInfo, Verdict,
};
use crate::guard::{self, Guard, Heads, Outcome, Plan};
use crate::log::access::finish;
use crate::metrics::Metrics;
use crate::rescue::Fault;
use crate::upstream::{Io, Upstream};
use crate::wire::chunked::ChunkedDecoder;
use crate::wire::Framing;

mod answer;
mod request;

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
    drain: Drain,
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
    deadline: Deadline,
    /// The listener's address: the Host of requests that name none.
    local_host: Arc<str>,
    /// The peer's address as text: the `X-Forwarded-For` of its requests,
    /// and their access lines' `peer` and `client`.
    peer_text: Arc<PeerText>,
    kept: Kept,
}

/// The last exchange's strings, emptied: the next exchange's path, user
/// agent and Nova's request id are copied into memory the connection
/// already holds rather than allocated and freed each time.
#[derive(Default)]
struct Kept {
    path: String,
    user_agent: String,
    upstream_request_id: String,
}

/// A kept string longer than this is let go: a connection holds no more
/// than a few small ones.
const KEPT_MAX_BYTES: usize = 512;

impl Kept {
    fn take_back(&mut self, x: &mut Exchange) {
        let slots = [
            (&mut x.path, &mut self.path),
            (&mut x.user_agent, &mut self.user_agent),
            (&mut x.upstream.request_id, &mut self.upstream_request_id),
        ];
        for (slot, kept) in slots {
            if let Some(mut text) = slot.take() {
                if text.capacity() <= KEPT_MAX_BYTES {
                    text.clear();
                    *kept = text;
                }
            }
        }
    }
}

/// [`crate::text::lossy`], written into `kept`'s memory.
fn text_in(kept: &mut String, bytes: &[u8]) -> String {
    let mut text = reuse(kept);
    crate::text::push_lossy(&mut text, bytes);
    text
}

/// `text`, copied into `kept`'s memory: text already known to be UTF-8 is
/// not checked again.
fn str_in(kept: &mut String, text: &str) -> String {
    let mut out = reuse(kept);
    out.push_str(text);
    out
}

fn reuse(kept: &mut String) -> String {
    let mut text = std::mem::take(kept);
    text.clear();
    text
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
    let Some(rest) = crate::nova::route::absolute_form(target) else {
        return (None, target);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, origin) = rest.split_at(end);
    // The fragment is not sent: `http://h#x/v2.1/...` goes as `/`, where
    // `#x/v2.1/...` would be a path to a server that keeps `#` in it.
    let origin = origin.split('#').next().unwrap_or_default();
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
            drain: Drain::new(drain),
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
            deadline: Deadline::new(),
            local_host: peer.local.to_string().into(),
            peer_text: Arc::new(PeerText::new(peer.remote)),
            kept: Kept::default(),
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
        let _ = within(&mut self.deadline, self.shared.send_timeout, |cx| {
            Pin::new(&mut self.client).poll_shutdown(cx)
        })
        .await;
        false
    }

    fn draining(&self) -> bool {
        self.drain.is_set()
    }

    /// The next request head: within the header timeout, counted from now
    /// (the connection's start or the previous exchange's end), which is
    /// also how long an idle connection is kept.
    async fn next_head(&mut self) -> Next {
        let first = self.served == 0;
        let limits = self.shared.limits;
        self.scanner.reset();
        self.deadline
            .set(tokio::time::Instant::now() + self.shared.header_timeout);
        loop {
            // A head that came whole in one read is parsed where it is; the
            // scanner follows one that comes in pieces (and the first,
            // which may be HTTP/2's preface instead).
            if !first && self.scanner.is_fresh() && !self.rbuf.is_empty() {
                if let Some(found) = head::parse_in_place(&self.rbuf, &limits) {
                    let bytes = take_front(&mut self.rbuf, found.end());
                    return read_head(found.keep(bytes));
                }
            }
            match self.scanner.scan(&self.rbuf, &limits, first) {
                Ok(Some(len)) => {
                    let bytes = take_front(&mut self.rbuf, len);
                    return read_head(head::parse_keeping(bytes, &limits));
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
                () = self.drain.wait_set(), if !draining => {}
                // Idle, or a head too slow: closed without an answer.
                () = self.deadline.passed() => return Next::Closed,
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
        x.peer_text = Some(Arc::clone(&self.peer_text));
        x.request_id = Some(request_id);
        let method = Method::from_bytes(head.method_bytes()).unwrap_or(Method::GET);
        x.method = Some(method.clone());
        let target = head.target();
        let (authority, origin) = split_target(target);
        x.path = Some(str_in(&mut self.kept.path, logged_path(origin)));

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
            peer_text: peer_text.ip.as_bytes(),
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
        x.user_agent = admitted
            .user_agent
            .map(|ua| text_in(&mut self.kept.user_agent, ua));
        x.global_request_id = admitted.global_request_id.map(crate::text::lossy);
        x.trace_id = admitted.traceparent.and_then(trace_id).map(str::to_owned);
        x.dropped_headers = admitted.underscored;

        let settings = shared.guard.settings();
        let heads = Heads {
            token: admitted.token,
            api_version: admitted.api_version.as_deref(),
            nova_api_version: admitted.nova_api_version.as_deref(),
            content_type: admitted.content_type,
            accept_apis: admitted.accept_apis,
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
        self.kept.take_back(x);
        fate
    }

    /// Give back the memory of the buffers that hold nothing: a connection
    /// waiting for its next request or for Nova's answer holds none (the
    /// allocator keeps them at hand for the next exchange).
    fn release_buffers(&mut self) {
        release(&mut self.rbuf);
        release(&mut self.ubuf);
        release_vec(&mut self.wbuf);
        release_vec(&mut self.obuf);
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
}

/// What happened while waiting on several things at once.
enum Event {
    Nova(io::Result<usize>),
    Wrote(io::Result<usize>),
    Client(io::Result<usize>),
}

/// Why a guarded body was not read whole.
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
/// that they are not held twice, and what follows them (most often nothing)
/// moves to memory of its own: a buffer the worker keeps for reuse never
/// shares its memory with bytes handed on.
fn take_front(buf: &mut BytesMut, len: usize) -> Bytes {
    if len <= COPY_AT_MOST {
        let taken = Bytes::copy_from_slice(&buf[..len]);
        buf.advance(len);
        taken
    } else {
        let taken = buf.split_to(len).freeze();
        *buf = BytesMut::from(&buf[..]);
        taken
    }
}

/// What a parsed head makes of the exchange.
fn read_head(parsed: Result<RequestHead, (HeadError, Bytes)>) -> Next {
    match parsed {
        Ok(head) => Next::Head(head),
        // A head that parsed is a request, logged as one; one that did not
        // has no method or path to log.
        Err((e @ (HeadError::Ambiguous(_) | HeadError::UriTooLong), bytes)) => {
            Next::Refused(e, request_line(&bytes))
        }
        Err((e, _)) => Next::Refused(e, None),
    }
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
    fn a_large_body_taken_shares_no_memory_with_what_follows() {
        let mut bytes = vec![b'b'; COPY_AT_MOST + 10];
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let mut buf = BytesMut::from(&bytes[..]);
        let body = take_front(&mut buf, COPY_AT_MOST + 10);
        assert_eq!(&body[..], &bytes[..COPY_AT_MOST + 10]);
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
        // The rest is not where it was read: right after the body.
        let read_into = body.as_ptr() as usize..body.as_ptr() as usize + bytes.len();
        assert!(!read_into.contains(&(buf.as_ptr() as usize)));
        // Nothing after it: nothing held.
        let mut buf = BytesMut::from(&bytes[..COPY_AT_MOST + 10]);
        let _body = take_front(&mut buf, COPY_AT_MOST + 10);
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn kept_strings_are_reused_and_read_as_fresh_ones() {
        let mut kept = Kept::default();
        let peer = Peer::new(
            "192.0.2.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            false,
        );
        let mut x = Exchange::new(peer, Protocol::Http11);
        x.path = Some(text_in(&mut kept.path, b"/v2.1/servers"));
        x.user_agent = Some(text_in(&mut kept.user_agent, b"curl/\xff8"));
        assert_eq!(x.user_agent.as_deref(), Some("curl/\u{fffd}8"));
        assert_eq!(x.user_agent, Some(crate::text::lossy(b"curl/\xff8")));
        x.upstream.request_id = Some("x".repeat(KEPT_MAX_BYTES + 1));
        let memory = x.path.as_ref().unwrap().as_ptr();
        kept.take_back(&mut x);
        assert!(x.path.is_none() && x.user_agent.is_none());
        assert!(kept.path.is_empty() && kept.path.as_ptr() == memory);
        // Too large to keep.
        assert_eq!(kept.upstream_request_id.capacity(), 0);
        let again = str_in(&mut kept.path, "/v2.1/flavors");
        assert_eq!((again.as_str(), again.as_ptr()), ("/v2.1/flavors", memory));
    }

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
        assert_eq!(split_target("http://h#x/v2.1/servers"), (Some("h"), "/"));
        assert_eq!(split_target("http://h/a?q#f"), (Some("h"), "/a?q"));
        assert_eq!(split_target("*"), (None, "*"));
        assert_eq!(split_target("nova.example:443"), (None, "nova.example:443"));
        assert_eq!(logged_path("/v2.1/servers?token=x#f"), "/v2.1/servers");
    }
}
