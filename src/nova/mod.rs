//! What nova-guard knows about Nova: routes, microversions, the update-server
//! schemas of each release, Python's JSON and `repr()` semantics, Nova's
//! printable class per Unicode version, netaddr's IPv6 text, and the names
//! of the rules a rejection cites. Pure
//! functions only: no I/O, no async, no HTTP types, so every piece can be
//! unit-tested, fuzzed and benchmarked on its own.

pub mod check;
pub mod ipv6;
pub mod json;
pub mod microversion;
pub mod policy;
pub mod profile;
pub mod pyrepr;
pub mod route;
pub mod rule;
pub mod unicode;
pub mod urlmap;

pub use check::{
    check, check_request, is_rebuild_action, Operation, RejectKind, Rejection, Rewrite, Verdict,
};
pub use microversion::Microversion;
pub use policy::AccessIpPolicy;
pub use profile::{Profile, Python, Release, UnknownPython, UnknownRelease};
pub use route::Mode;
pub use rule::Rule;
pub use unicode::Unicode;

/// One ASCII hex digit's value, either case: the digits `int(_, 16)`, JSON's
/// `\u` escapes and `%XX` escapes take. `None` for any other byte.
#[inline]
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
