//! A streamed body that fails when its sender pauses too long.
//!
//! Requests that are not validated are streamed to Nova as the client sends
//! them; a client that stops sending in the middle of its body would hold a
//! connection to Nova open for as long as it likes. Nova's answers are
//! streamed back the same way, and a Nova that stalls after its response
//! head would hold the client. This body counts only the time spent waiting
//! for the sender (not the time the receiver takes to read), and fails with
//! the given error kind once a wait exceeds the limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::error::{BoxError, ErrorKind, ProxyError};

pub struct IdleBody<B> {
    inner: B,
    limit: Duration,
    kind: ErrorKind,
    sleep: Pin<Box<Sleep>>,
    /// The last poll found nothing: the wait for the client is running.
    waiting: bool,
}

impl<B> IdleBody<B> {
    /// Fails with `kind` once the sender has paused longer than `limit`.
    pub fn new(inner: B, limit: Duration, kind: ErrorKind) -> Self {
        IdleBody {
            inner,
            limit,
            kind,
            sleep: Box::pin(tokio::time::sleep(limit)),
            waiting: false,
        }
    }
}

impl<B> Body for IdleBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = Instant::now() + this.limit;
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(ProxyError::new(this.kind))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
