//! Watches the bytes of an HTTP/1 connection as they arrive, before hyper
//! parses them, to judge each request head's framing on what was actually
//! sent.
//!
//! hyper reads a request with both `Content-Length` and `Transfer-Encoding:
//! chunked` as chunked and drops the `Content-Length` before the service sees
//! it, so that request smuggling attempt cannot be recognised from the parsed
//! request. [`Watched`] wraps the client's stream: every request head is
//! parsed here too (with the same parser and header limit hyper uses), its
//! framing judged, and the verdict queued on the connection's [`WireWatch`].
//! The message's body is then followed (by length or chunk by chunk, as
//! hyper's decoder reads it) so that a body is never taken for a head. The
//! service takes one verdict per request, in order: hyper serves an HTTP/1
//! connection's requests one after another, and it can only parse bytes that
//! went through here first.
//!
//! When the watcher cannot follow the stream (a head httparse refuses, a
//! malformed chunk), hyper fails on the same bytes and closes the
//! connection; should it not, every later request on the connection is
//! refused, never passed on unjudged. HTTP/2 connections (the client preface)
//! are not watched: their framing is not textual.
//!
//! The watcher never holds bytes back and never changes them. It also ends a
//! connection on which the client has sent nothing for the idle limit while
//! no exchange was in flight (a silent new connection, an idle kept-alive
//! one, HTTP/1 or HTTP/2), by reading as closed.
//!
//! The tracker itself ([`Tracker`], [`WireWatch`]) is pure and builds
//! without the `proxy` feature; the stream wrapper needs tokio.

pub mod chunked;
pub mod framing;
mod tracker;

pub use framing::{Ambiguity, Framing};
pub use tracker::{Tracker, WireVerdict, WireWatch};

#[cfg(feature = "proxy")]
mod watched;
#[cfg(feature = "proxy")]
pub use watched::{InFlight, InFlightGuard, Watched};
