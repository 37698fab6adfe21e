//! Small I/O pieces of the codec: the connection's timer and polling with a
//! stall limit, reading into a growable buffer, the buffers a worker keeps
//! between exchanges, the HTTP `Date`, and the stream handed to hyper when
//! a connection turns out to be HTTP/2.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

/// A connection's one timer. Setting a deadline later than the one the
/// timer is armed for leaves the timer where it is: it fires early, sees
/// the deadline has moved, and is moved then. A connection that sets a
/// deadline for every wait (every exchange) so moves its timer about once
/// per timeout, not once per exchange.
pub struct Deadline {
    sleep: Pin<Box<Sleep>>,
    at: Instant,
}

impl Deadline {
    /// A deadline of now: every wait sets its own.
    pub fn new() -> Self {
        let sleep = Box::pin(tokio::time::sleep(Duration::ZERO));
        let at = sleep.deadline();
        Deadline { sleep, at }
    }

    pub fn set(&mut self, at: Instant) {
        self.at = at;
        if self.sleep.deadline() > at {
            self.sleep.as_mut().reset(at);
        }
    }

    /// Ready once the deadline has passed.
    pub fn poll_passed(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if self.sleep.deadline() >= self.at => return Poll::Ready(()),
                // Fired for an earlier deadline than the one set since.
                Poll::Ready(()) => self.sleep.as_mut().reset(self.at),
            }
        }
    }

    /// [`Self::poll_passed`] as a future, for `select!`.
    pub fn passed(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_passed(cx))
    }
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

/// Poll `op` until it is ready, or until it has stayed pending for `limit`
/// (`None`). The deadline is only set when `op` has to wait.
pub async fn within<T>(
    deadline: &mut Deadline,
    limit: Duration,
    mut op: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = op(cx) {
            return Poll::Ready(Some(v));
        }
        if !armed {
            armed = true;
            deadline.set(Instant::now() + limit);
        }
        match deadline.poll_passed(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// A connection's view of its listener's drain signal, which goes from
/// `false` to `true` once. Asking whether it is set reads the channel's
/// version, not its locked value; waiting for it keeps one registration
/// for the connection's life, where a `changed()` per wait would make and
/// drop one every exchange.
pub struct Drain {
    rx: watch::Receiver<bool>,
    /// Ready with the value once it changes (or the channel closes); gone
    /// once it has been.
    wait: Option<Pin<Box<dyn Future<Output = bool> + Send>>>,
}

impl Drain {
    pub fn new(rx: watch::Receiver<bool>) -> Self {
        let mut waiting = rx.clone();
        let wait = Box::pin(async move {
            let _ = waiting.changed().await;
            *waiting.borrow()
        });
        Drain {
            rx,
            wait: Some(wait),
        }
    }

    /// Whether the listener is draining. `rx` is never marked seen, so a
    /// change stays a change.
    pub fn is_set(&self) -> bool {
        match self.rx.has_changed() {
            Ok(false) => false,
            Ok(true) | Err(_) => *self.rx.borrow(),
        }
    }

    /// Ready once draining begins; never, if the channel closes without it.
    pub fn poll_set(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(wait) = self.wait.as_mut() else {
            return Poll::Pending;
        };
        match wait.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(set) => {
                self.wait = None;
                if set {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
        }
    }

    /// [`Self::poll_set`] as a future, for `select!`.
    pub fn wait_set(&mut self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| self.poll_set(cx))
    }
}

/// A released buffer's first read goes through this much room on the
/// stack (see [`poll_read_waiting`]).
const FIRST_READ: usize = 8 * 1024;

/// Emptied buffers a worker keeps for its connections' next exchanges, of
/// each kind. Taking one back costs a fraction of allocating 16–32 KiB and
/// freeing it again every exchange; the bound keeps what a burst leaves
/// behind to a few hundred KiB per worker.
const SPARE_BUFFERS: usize = 16;

/// A buffer with more room than this is freed rather than kept: a large
/// body read once does not stay resident.
const SPARE_MAX_BYTES: usize = 64 * 1024;

thread_local! {
    static SPARE_READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static SPARE_WRITE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Keep `buf`, whose memory is `size` bytes, for this worker's next
/// exchange; or drop it when it is too large, when enough are kept, or when
/// the thread is ending.
fn keep<T>(spare: &'static std::thread::LocalKey<RefCell<Vec<T>>>, buf: T, size: usize) {
    if size > SPARE_MAX_BYTES {
        return;
    }
    let _ = spare.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            if s.len() < SPARE_BUFFERS {
                s.push(buf);
            }
        }
    });
}

/// A kept buffer, or a new one without memory.
fn spare<T: Default>(spare: &'static std::thread::LocalKey<RefCell<Vec<T>>>) -> T {
    spare
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.pop()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// One read into `buf`'s spare room (at least `room` bytes of it).
pub fn poll_read_buf<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    room: usize,
) -> Poll<io::Result<usize>> {
    buf.reserve(room);
    let read = io.read_buf(buf);
    std::pin::pin!(read).poll(cx)
}

/// [`poll_read_buf`] for a read that may wait long (a client's next
/// request, Nova's answer): a buffer without room is only given memory
/// once there are bytes to put in it, so that a waiting connection holds
/// none. Not for reads in the middle of a stream, whose drained buffer
/// would be read 8 KiB at a time.
pub fn poll_read_waiting<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    room: usize,
) -> Poll<io::Result<usize>> {
    if buf.capacity() > 0 {
        return poll_read_buf(io, cx, buf, room);
    }
    let mut stack = [const { MaybeUninit::<u8>::uninit() }; FIRST_READ];
    let mut read = ReadBuf::uninit(&mut stack);
    Pin::new(io).poll_read(cx, &mut read).map_ok(|()| {
        let filled = read.filled();
        if !filled.is_empty() {
            *buf = spare(&SPARE_READ);
            buf.reserve(room.max(filled.len()));
            buf.extend_from_slice(filled);
        }
        filled.len()
    })
}

/// Give back an empty buffer's memory (see [`poll_read_waiting`]) to the
/// worker, for another connection's next read.
pub fn release(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        let mut buf = std::mem::take(buf);
        // Room taken by bytes already read is given back first (no copy:
        // the buffer is empty), so that the capacity is all its memory.
        let _ = buf.try_reclaim(buf.capacity() + 1);
        let size = buf.capacity();
        keep(&SPARE_READ, buf, size);
    }
}

/// [`release`] for a buffer that is written from.
pub fn release_vec(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > 0 {
        let size = buf.capacity();
        keep(&SPARE_WRITE, std::mem::take(buf), size);
    }
}

/// Room for at least `room` more bytes in a write buffer, from the worker's
/// kept ones when `out` holds no memory.
pub fn reserve_vec(out: &mut Vec<u8>, room: usize) {
    if out.capacity() == 0 {
        *out = spare(&SPARE_WRITE);
    }
    out.reserve(room);
}

thread_local! {
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// `Date: <IMF-fixdate>\r\n`, formatted once a second per worker.
pub fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        if date.0 != secs || date.1.is_empty() {
            *date = (secs, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.1.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// A stream whose first bytes were already read: those are read again first.
#[derive(Debug)]
pub struct Rewind<IO> {
    read: Bytes,
    io: IO,
}

impl<IO> Rewind<IO> {
    pub fn new(read: Bytes, io: IO) -> Self {
        Rewind { read, io }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Rewind<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read.is_empty() {
            let n = self.read.len().min(buf.remaining());
            buf.put_slice(&self.read[..n]);
            self.read.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Rewind<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One read from `source` into `buf`, as a waiting read or a plain one.
    fn read_once(waiting: bool, source: &mut &[u8], buf: &mut BytesMut, room: usize) -> usize {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let read = if waiting {
            poll_read_waiting(source, &mut cx, buf, room)
        } else {
            poll_read_buf(source, &mut cx, buf, room)
        };
        match read {
            Poll::Ready(Ok(n)) => n,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_drained_buffer_mid_stream_is_read_with_all_its_room() {
        let data = vec![7u8; 96 * 1024];
        let mut source = &data[..];
        let mut buf = BytesMut::new();
        assert_eq!(
            read_once(false, &mut source, &mut buf, 32 * 1024),
            32 * 1024
        );
        buf.advance(32 * 1024);
        // Drained to its end: no room left, but not released.
        assert_eq!(buf.capacity(), 0);
        assert_eq!(
            read_once(false, &mut source, &mut buf, 32 * 1024),
            32 * 1024
        );
    }

    #[test]
    fn a_released_buffer_gets_memory_only_with_its_first_bytes() {
        let data = vec![7u8; 20 * 1024];
        let mut empty: &[u8] = &[];
        let mut buf = BytesMut::new();
        assert_eq!(read_once(true, &mut empty, &mut buf, 16 * 1024), 0);
        assert_eq!(buf.capacity(), 0, "nothing read, nothing held");
        let mut source = &data[..];
        assert_eq!(
            read_once(true, &mut source, &mut buf, 16 * 1024),
            FIRST_READ
        );
        assert!(buf.capacity() >= 16 * 1024);
        assert_eq!(&buf[..], &data[..FIRST_READ]);
        // With memory, the next read uses the buffer's room.
        let n = read_once(true, &mut source, &mut buf, 16 * 1024);
        assert_eq!(n, 20 * 1024 - FIRST_READ);
        release(&mut buf);
        assert!(buf.capacity() > 0, "a buffer holding bytes is kept");
        buf.clear();
        release(&mut buf);
        assert_eq!(buf.capacity(), 0);
    }

    fn kept_read_buffers() -> usize {
        SPARE_READ.with(|s| s.borrow().len())
    }

    #[test]
    fn a_released_buffer_serves_the_next_waiting_read() {
        let data = [7u8; 100];
        let mut first = BytesMut::with_capacity(16 * 1024);
        let memory = first.as_ptr();
        release(&mut first);
        assert_eq!(first.capacity(), 0);
        assert_eq!(kept_read_buffers(), 1);
        let mut second = BytesMut::new();
        assert_eq!(read_once(true, &mut &data[..], &mut second, 16 * 1024), 100);
        assert_eq!(second.as_ptr(), memory, "the kept buffer is reused");
        assert_eq!(&second[..], &data[..]);
        assert_eq!(kept_read_buffers(), 0);
    }

    #[test]
    fn buffers_are_kept_up_to_a_bound_and_a_size() {
        for _ in 0..SPARE_BUFFERS + 5 {
            release(&mut BytesMut::with_capacity(1024));
        }
        assert_eq!(kept_read_buffers(), SPARE_BUFFERS);
        SPARE_READ.with(|s| s.borrow_mut().clear());
        release(&mut BytesMut::with_capacity(SPARE_MAX_BYTES + 1));
        assert_eq!(kept_read_buffers(), 0, "a large buffer is freed");
        // Read past, its room is smaller than its memory: the memory counts.
        let mut read = BytesMut::with_capacity(SPARE_MAX_BYTES + 1024);
        read.extend_from_slice(&vec![1u8; SPARE_MAX_BYTES]);
        read.advance(SPARE_MAX_BYTES);
        assert!(read.capacity() <= SPARE_MAX_BYTES);
        release(&mut read);
        assert_eq!(kept_read_buffers(), 0, "a large buffer read past is freed");
        let mut holding = BytesMut::from(&b"x"[..]);
        release(&mut holding);
        assert_eq!((kept_read_buffers(), &holding[..]), (0, &b"x"[..]));

        let mut out = Vec::with_capacity(4096);
        let memory = out.as_ptr();
        release_vec(&mut out);
        assert_eq!(out.capacity(), 0);
        let mut next = Vec::new();
        reserve_vec(&mut next, 100);
        assert_eq!(next.as_ptr(), memory);
    }

    #[tokio::test]
    async fn a_later_deadline_is_still_kept_to() {
        let mut deadline = Deadline::new();
        let start = Instant::now();
        deadline.set(start + Duration::from_millis(10));
        let later = start + Duration::from_millis(60);
        deadline.set(later);
        assert!(deadline.sleep.deadline() < later, "not moved yet");
        // The timer fires for the first deadline and is moved to the second.
        deadline.passed().await;
        assert!(Instant::now() >= later);
    }

    #[tokio::test]
    async fn an_earlier_deadline_moves_the_timer() {
        let mut deadline = Deadline::new();
        deadline.set(Instant::now() + Duration::from_secs(600));
        assert!(!futures_ready(deadline.passed()));
        let soon = Instant::now() + Duration::from_millis(20);
        deadline.set(soon);
        tokio::time::timeout(Duration::from_secs(60), deadline.passed())
            .await
            .expect("the earlier deadline fires");
        assert!(Instant::now() >= soon);
    }

    #[tokio::test]
    async fn within_gives_up_after_the_limit() {
        let mut deadline = Deadline::new();
        let start = Instant::now();
        let never = within(&mut deadline, Duration::from_millis(20), |_| {
            Poll::<()>::Pending
        })
        .await;
        assert_eq!(never, None);
        assert!(Instant::now() >= start + Duration::from_millis(20));
        let ready = within(&mut deadline, Duration::from_millis(20), |_| Poll::Ready(5)).await;
        assert_eq!(ready, Some(5));
    }

    /// Whether `f` is ready at its first poll.
    fn futures_ready(f: impl Future<Output = ()>) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        std::pin::pin!(f).poll(&mut cx).is_ready()
    }
}
