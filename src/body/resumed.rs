//! A request body some of whose chunks were already read (a guarded body
//! over the limit, in report mode): those first, then the rest.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A body of which some chunks were already read: those first, then the rest.
pub struct Resumed<B> {
    prefix: VecDeque<Bytes>,
    inner: B,
}

impl<B> Resumed<B> {
    /// Nothing read yet.
    pub fn new(inner: B) -> Self {
        Resumed {
            prefix: VecDeque::new(),
            inner,
        }
    }

    /// `read` was taken from `inner` already.
    pub fn after(read: VecDeque<Bytes>, inner: B) -> Self {
        Resumed {
            prefix: read,
            inner,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Resumed<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(chunk) = self.prefix.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self.prefix.iter().map(|c| c.len() as u64).sum();
        let rest = self.inner.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(read));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(read));
        }
        hint
    }
}
