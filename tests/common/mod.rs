//! Test harness: the real nova-guard binary on real sockets, in front of a
//! small recording upstream, and a raw HTTP/1.1 client that sends exactly the
//! bytes a test writes.
//!
//! - [`guard`]: the binary, running, and what it logs;
//! - [`upstream`]: stand-ins for Nova, a recording one and a misbehaving one;
//! - [`client`]: a raw client connection and the answers it reads;
//! - [`requests`]: request bytes as the tests send them.
//!
//! Every wait is bounded; the bounds are hang guards, not claims about speed.

#![allow(dead_code, unused_imports)]

mod client;
mod guard;
mod requests;
mod upstream;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

pub use client::*;
pub use guard::*;
pub use requests::*;
pub use upstream::*;

/// Far longer than anything here should take; only a hang reaches it.
pub const BOUND: Duration = Duration::from_secs(20);

/// A body as JSON; panics, showing it, when it is not.
pub fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

/// An answer of nova-guard's own carries its request id under both of
/// Nova's names. `what` names the answer in the message.
#[track_caller]
pub fn assert_request_ids(what: &str, a: &Answer) {
    let id = a
        .header("x-openstack-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-openstack-request-id"));
    assert_eq!(a.header("x-compute-request-id"), Some(id), "{what}");
    assert!(id.starts_with("req-") && id.len() == 40, "{what}: {id}");
}

/// An address on the loopback where nothing listens (it was free a moment
/// ago).
pub fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Nanoseconds since the epoch: a name no other test run has.
pub fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Wait until `cond` holds; panics, naming `what`, at the bound.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = tokio::time::Instant::now() + BOUND;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The value of one series (its name and labels as written) in a
/// Prometheus text exposition; `None` when it is not there. Panics on a
/// value that is not a number.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{series} {v:?}: {e}"))
        })
}
