//! nova-guard's own HTTP/1.1, for plain and TLS client connections: one task
//! per client connection, each head parsed once (httparse), re-emitted to
//! Nova with the admitted header lines, bodies relayed by their framing with
//! reused buffers, and guarded bodies read whole and handed to the
//! [`crate::guard::Guard`] service. The HTTP/2 preface is declined and served
//! by hyper ([`crate::h2`]).
//!
//! This is the code a smuggling attempt meets first, so it refuses every
//! framing that could be read two ways ([`crate::wire::framing`]), reads
//! chunked bodies with the one chunk grammar ([`crate::wire::chunked`]), and
//! never passes on a byte it has not framed itself.

//!
//! Heads and their framing ([`head`], [`response`]) are pure and build
//! without the `proxy` feature, for the fuzz targets.

#[cfg(feature = "proxy")]
mod conn;
pub mod head;
#[cfg(feature = "proxy")]
mod io;
pub mod response;

#[cfg(feature = "proxy")]
pub use conn::{refuse_overloaded, serve, ClientStream, Ending, Shared};
#[cfg(feature = "proxy")]
pub use io::Rewind;
