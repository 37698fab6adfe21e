//! IP address text: validation as jsonschema's `ipv4`/`ipv6` formats do it
//! (Python's `ipaddress`), canonical IPv6 text as netaddr renders it.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `ipaddress.IPv4Address(s)` succeeds.
pub fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    let _ = s;
    unimplemented!("ipv4")
}

/// `ipaddress.IPv6Address(s)` succeeds and has no scope id.
pub fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    let _ = s;
    unimplemented!("ipv6")
}

/// `str(netaddr.IPAddress(addr))`.
pub fn canonical(addr: Ipv6Addr) -> String {
    let _ = addr;
    unimplemented!("canonical")
}
