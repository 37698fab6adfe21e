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

/// A released buffer's first read goes through this much room on the
/// stack (see [`poll_read_waiting`]).
const FIRST_READ: usize = 8 * 1024;

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
            buf.reserve(room.max(filled.len()));
            buf.extend_from_slice(filled);
        }
        filled.len()
    })
}

/// Give back an empty buffer's memory (see [`poll_read_waiting`]).
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
}
