//! The I/O half of the wire watcher: the client stream wrapper that feeds
//! the [`Tracker`] and applies the idle and send limits (needs tokio).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::Tracker;

/// The exchanges in flight on one connection, counted so that the
/// connection is only called idle when none is.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<InFlightState>);

#[derive(Debug, Default)]
struct InFlightState {
    count: AtomicUsize,
    /// The reader that saw an exchange in flight: woken when the last one
    /// ends, so that the idle limit starts then even if no byte arrives.
    reader: Mutex<Option<Waker>>,
}

impl InFlight {
    pub fn new() -> Self {
        InFlight::default()
    }

    /// One more exchange, until the guard is dropped.
    pub fn enter(&self) -> InFlightGuard {
        self.0.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self.0.clone())
    }

    fn idle(&self) -> bool {
        self.0.count.load(Ordering::SeqCst) == 0
    }

    /// Wake `waker` when the last exchange in flight ends.
    fn wake_when_idle(&self, waker: &Waker) {
        let mut reader = self.0.reader.lock().unwrap_or_else(|e| e.into_inner());
        if !reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *reader = Some(waker.clone());
        }
    }
}

/// Ends its exchange's count when dropped.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlightState>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            let reader = self
                .0
                .reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(waker) = reader {
                waker.wake();
            }
        }
    }
}

/// Closes a connection on which the client sends nothing while no exchange
/// is in flight: a silent new connection, or an idle kept-alive one, HTTP/1
/// or HTTP/2 alike.
struct IdleLimit {
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
    in_flight: InFlight,
}

/// A client stream whose incoming bytes are watched by a [`Tracker`], which
/// reads as ended once the client has been idle for the limit, and whose
/// writes fail once the client has taken nothing for the send limit.
pub struct Watched<IO> {
    io: IO,
    tracker: Tracker,
    idle: IdleLimit,
    stall: StallLimit,
}

impl<IO> Watched<IO> {
    pub fn new(
        io: IO,
        tracker: Tracker,
        idle_limit: Duration,
        in_flight: InFlight,
        send_limit: Duration,
    ) -> Self {
        Watched {
            io,
            tracker,
            stall: StallLimit::new(send_limit),
            idle: IdleLimit {
                limit: idle_limit,
                sleep: Box::pin(tokio::time::sleep(idle_limit)),
                armed: false,
                in_flight,
            },
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        match &result {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                if !new.is_empty() {
                    this.idle.armed = false;
                    this.tracker.feed(new);
                }
            }
            Poll::Ready(Err(_)) => {}
            Poll::Pending => {
                let idle = &mut this.idle;
                if !idle.in_flight.idle() {
                    idle.in_flight.wake_when_idle(cx.waker());
                }
                if !idle.in_flight.idle() {
                    // An exchange is under way: its own timeouts apply.
                    idle.armed = false;
                } else {
                    if !idle.armed {
                        idle.armed = true;
                        let deadline = Instant::now() + idle.limit;
                        idle.sleep.as_mut().reset(deadline);
                    }
                    if idle.sleep.as_mut().poll(cx).is_ready() {
                        tracing::debug!("client idle past the limit; closing the connection");
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
        result
    }
}

/// Fails writes to a client that has taken none of our bytes for the limit
/// (it stopped reading its answer): the connection is then dropped.
struct StallLimit {
    limit: Duration,
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl StallLimit {
    fn new(limit: Duration) -> Self {
        StallLimit {
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
            armed: false,
        }
    }

    /// Pass a write-side poll through, failing it once stalled too long.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.armed = false;
            return poll;
        }
        if !self.armed {
            self.armed = true;
            let deadline = Instant::now() + self.limit;
            self.sleep.as_mut().reset(deadline);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            tracing::debug!("client stopped reading its answer; dropping the connection");
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.stall.check(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.stall.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.stall.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.stall.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
