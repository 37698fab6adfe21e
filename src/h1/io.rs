//! Small I/O pieces of the codec: polling with a stall limit, reading into a
//! growable buffer, the HTTP `Date`, and the stream handed to hyper when a
//! connection turns out to be HTTP/2.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Poll `op` until it is ready, or until it has stayed pending for `limit`
/// (`None`). The timer is only touched when `op` has to wait.
pub async fn within<T>(
    sleep: &mut Pin<Box<Sleep>>,
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
            sleep.as_mut().reset(Instant::now() + limit);
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// The first read into a buffer that holds no memory goes through this
/// much room on the stack: a connection waiting for its client or for Nova
/// holds no buffer until bytes arrive.
const FIRST_READ: usize = 8 * 1024;

/// One read into `buf`'s spare room (at least `room` bytes of it). A
/// released buffer (no capacity) is only given memory once there are bytes
/// to put in it.
pub fn poll_read_buf<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    room: usize,
) -> Poll<io::Result<usize>> {
    if buf.capacity() == 0 {
        let mut stack = [const { MaybeUninit::<u8>::uninit() }; FIRST_READ];
        let mut read = ReadBuf::uninit(&mut stack);
        return Pin::new(io).poll_read(cx, &mut read).map_ok(|()| {
            let filled = read.filled();
            if !filled.is_empty() {
                buf.reserve(room.max(filled.len()));
                buf.extend_from_slice(filled);
            }
            filled.len()
        });
    }
    buf.reserve(room);
    let read = io.read_buf(buf);
    std::pin::pin!(read).poll(cx)
}

/// Give back an empty buffer's memory (see [`poll_read_buf`]).
pub fn release(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        *buf = BytesMut::new();
    }
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
