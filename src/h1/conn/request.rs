//! The request's way to Nova: a guarded body read whole, the head and
//! body written to Nova's connection, Nova's answer awaited.

use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Buf, Bytes, BytesMut};
use http::Method;
use tokio::io::AsyncWrite;

use super::{
    push_chunk, push_line, split_target, take_front, text_in, upstream_error, Body, ClientStream,
    Conn, Event, Failure, Fate, Read, HEAD_ROOM, READ_CHUNK, WRITE_BATCH,
};
use crate::admit::Line;
use crate::error::{ErrorKind, ProxyError, CLIENT_CLOSED};
use crate::exchange::{Exchange, HungUp, Rule, Verdict};
use crate::h1::head::{RequestHead, Version};
use crate::h1::io::{poll_read_buf, poll_read_waiting, reserve_vec, within};
use crate::h1::response::{BodyFraming, ResponseHead};
use crate::rescue::Fault;
use crate::upstream::Io;
use crate::wire::chunked::ChunkedDecoder;
use crate::wire::Framing;

impl<C> Conn<C>
where
    C: ClientStream,
{
    /// Read a guarded request's whole body, at most `limit` bytes, within
    /// the body timeout. The timer is set only when there is something to
    /// wait for: most bodies came with their head.
    pub(super) async fn read_body(
        &mut self,
        framing: Framing,
        limit: usize,
    ) -> Result<Bytes, Read> {
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
                self.deadline
                    .set(tokio::time::Instant::now() + self.shared.body_timeout);
            }
            let read = tokio::select! {
                biased;
                read = std::future::poll_fn(|cx| poll_read_buf(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)) => read,
                () = self.deadline.passed() => {
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
    pub(super) async fn forward(
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
            .request_id()
            .map(|id| text_in(&mut self.kept.upstream_request_id, id));
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
        reserve_vec(out, HEAD_ROOM + whole);
        out.extend_from_slice(head.method_bytes());
        out.push(b' ');
        // Nearly every target is already in origin form.
        let target = head.target_bytes();
        let origin = if target.starts_with(b"/") {
            target
        } else {
            split_target(head.target()).1.as_bytes()
        };
        if origin.starts_with(b"/") || origin.starts_with(b"?") {
            out.extend_from_slice(self.shared.upstream.base_path.as_bytes());
        }
        if origin.starts_with(b"?") {
            out.push(b'/');
        }
        out.extend_from_slice(origin);
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
            let wrote = within(&mut self.deadline, self.shared.upstream_timeout, |cx| {
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
            let event = within(&mut self.deadline, limit, |cx| {
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
}

/// Safe to send again (RFC 9110 §9.2.2) when a kept Nova connection
/// turns out to have been closed without a byte of answer.
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// What is left of a streamed request body, by its framing.
enum Relay {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// How much of a request body went to Nova.
struct Sent {
    /// Body bytes sent (decoded, for a chunked body).
    bytes: u64,
    /// All of it: Nova did not answer before the end of the body.
    whole: bool,
}
