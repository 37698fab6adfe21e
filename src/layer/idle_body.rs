//! A streamed request body that fails when the client pauses too long.
//!
//! Requests that are not validated are streamed to Nova as the client sends
//! them; a client that stops sending in the middle of its body would hold a
//! connection to Nova open for as long as it likes. This body counts only the
//! time spent waiting for the client (not the time Nova takes to read), and
//! fails with [`ErrorKind::ClientBodyTimeout`] once a wait exceeds the limit.

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
    sleep: Pin<Box<Sleep>>,
    /// The last poll found nothing: the wait for the client is running.
    waiting: bool,
}

impl<B> IdleBody<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        IdleBody {
            inner,
            limit,
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
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(ProxyError::new(
                        ErrorKind::ClientBodyTimeout,
                    ))))),
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
