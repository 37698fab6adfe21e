//! `nova::ipv6`: CPython `ipaddress` acceptance, netaddr canonical text.
//!
//! Oracles:
//! - `canonical(a)` re-parses with `parse_ipv6` to `a`, and std's
//!   `Ipv6Addr` parser reads the same address from it (canonical text is in
//!   the grammar both share);
//! - whenever both `parse_ipv6` and std's parser accept an input they give
//!   the same address. Acceptance is not compared: CPython and std differ
//!   on some inputs (e.g. CPython accepts `::` standing for a single zero
//!   group in more positions; std refuses some forms CPython takes);
//! - `parse_ipv4` agrees with std's `Ipv4Addr` parser on every input, both
//!   on acceptance and value (both refuse leading zeros, require four
//!   decimal octets of at most three ASCII digits each).
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use nova_guard::nova::ipv6::{canonical, parse_ipv4, parse_ipv6};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let ours = parse_ipv6(s);
    let std6 = s.parse::<Ipv6Addr>().ok();
    if let (Some(a), Some(b)) = (ours, std6) {
        assert_eq!(a, b, "parse_ipv6 and std disagree on {s:?}");
    }
    if let Some(a) = ours {
        let text = canonical(a);
        assert_eq!(parse_ipv6(&text), Some(a), "canonical {text:?} of {s:?}");
        assert_eq!(text.parse::<Ipv6Addr>().ok(), Some(a), "std on {text:?}");
        assert_eq!(canonical(a), text);
    }
    assert_eq!(parse_ipv4(s), s.parse::<Ipv4Addr>().ok(), "ipv4 {s:?}");
});
