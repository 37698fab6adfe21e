//! The answer's way back: Nova's answer relayed to the client by its
//! framing, or nova-guard's own answer written in its place.

use std::io;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Buf;

use super::{
    gone, push_chunk, push_line, take_front, upstream_error, ClientStream, Conn, Event, Failure,
    Fate, HEAD_ROOM, LINGER, LINGER_BYTES, READ_CHUNK, UPSTREAM_CHUNK, WRITE_BATCH,
};
use crate::error::{ErrorKind, ProxyError};
use crate::exchange::{Exchange, HungUp};
use crate::h1::head::Version;
use crate::h1::io::{poll_read_buf, poll_read_waiting, push_date, reserve_vec, within, Deadline};
use crate::h1::response::{self, BodyFraming, ResponseHead};
use crate::rescue::{rescue, Answer, Fault};
use crate::upstream::Io;
use crate::wire::chunked::ChunkedDecoder;

impl<C> Conn<C>
where
    C: ClientStream,
{
    /// Nova's response head (informational answers skipped), within the
    /// upstream timeout, the client watched meanwhile: a reset means it is
    /// gone (the request to Nova is then dropped); its closing only its
    /// sending side is a half-close, and it still gets its answer. On
    /// failure, whether nothing at all came back from Nova.
    pub(super) async fn response_head(
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
            if let Some(parsed) = self.next_response_head(max_head, max_headers, head_request) {
                match parsed {
                    Ok(r) if r.status == 101 => {
                        return Err((
                            upstream_error(ErrorKind::UpstreamProtocol, "Nova switched protocols"),
                            false,
                        ))
                    }
                    Ok(r) if r.is_informational() => continue,
                    Ok(r) => return Ok(r),
                    Err(e) => return Err((upstream_error(ErrorKind::UpstreamProtocol, e), false)),
                }
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
                    self.deadline
                        .set(tokio::time::Instant::now() + self.shared.upstream_timeout);
                }
                match self.deadline.poll_passed(cx) {
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

    /// The response head at the start of what was read from Nova, taken
    /// out of it; `None` while it is not all there.
    fn next_response_head(
        &mut self,
        max_head: usize,
        max_headers: usize,
        head_request: bool,
    ) -> Option<Result<ResponseHead, response::BadResponse>> {
        // Most heads come whole in one read: parsed where they are.
        if let Some(found) =
            response::parse_in_place(&self.ubuf, max_head, max_headers, head_request)
        {
            let bytes = take_front(&mut self.ubuf, found.end());
            return Some(found.keep(bytes));
        }
        match response::head_len(&self.ubuf, max_head) {
            Ok(Some(len)) => {
                let bytes = take_front(&mut self.ubuf, len);
                Some(response::parse(bytes, max_headers, head_request))
            }
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Relay Nova's answer to the client. `Err`: who hung up first.
    pub(super) async fn relay_response(
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
        reserve_vec(out, HEAD_ROOM + response_room(response.framing));
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
                        write_all(&mut self.client, &mut self.deadline, timeout, piece)
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
                write_all(&mut self.client, &mut self.deadline, timeout, &self.ubuf)
                    .await
                    .map_err(|_| HungUp::Client)?;
                self.ubuf.clear();
                let read = within(&mut self.deadline, upstream_timeout, |cx| {
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
        let read = within(&mut self.deadline, limit, |cx| {
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
    pub(super) async fn flush_client(&mut self) -> io::Result<()> {
        let timeout = self.shared.send_timeout;
        let wrote = write_all(&mut self.client, &mut self.deadline, timeout, &self.wbuf).await;
        self.wbuf.clear();
        wrote
    }

    /// Answer a fault, through the one rescue step.
    pub(super) fn answer_fault(
        &mut self,
        fault: Fault,
        x: &mut Exchange,
        version: Version,
    ) -> Fate {
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
    pub(super) fn answer(
        &mut self,
        answer: &Answer,
        x: &mut Exchange,
        version: Version,
        fate: Fate,
    ) -> Fate {
        let close = fate == Fate::Close
            || self.close_requested
            || self.client_eof
            || self.draining()
            || self.served >= self.shared.max_requests;
        let out = &mut self.wbuf;
        out.clear();
        reserve_vec(out, HEAD_ROOM + answer.body().len());
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
    pub(super) async fn linger(&mut self) {
        if self.client_eof {
            return;
        }
        let _ = within(&mut self.deadline, self.shared.send_timeout, |cx| {
            Pin::new(&mut self.client).poll_shutdown(cx)
        })
        .await;
        let mut dropped = 0usize;
        self.deadline.set(tokio::time::Instant::now() + LINGER);
        while dropped < LINGER_BYTES {
            self.rbuf.clear();
            let read = tokio::select! {
                biased;
                read = std::future::poll_fn(|cx| poll_read_buf(&mut self.client, cx, &mut self.rbuf, READ_CHUNK)) => read,
                () = self.deadline.passed() => break,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
        self.client_eof = true;
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
    deadline: &mut Deadline,
    limit: Duration,
    bytes: &[u8],
) -> io::Result<()> {
    let mut at = 0;
    while at < bytes.len() {
        let wrote = within(deadline, limit, |cx| {
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
