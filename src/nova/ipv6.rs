//! IP address text: validation as jsonschema's `ipv4`/`ipv6` formats do it
//! (Python's `ipaddress`), canonical IPv6 text as netaddr renders it.
//!
//! jsonschema (4.x, `_format.py`) checks `ipv4` with
//! `ipaddress.IPv4Address(s)` and `ipv6` with `ipaddress.IPv6Address(s)`
//! plus "no scope id". The parsers below follow CPython 3.11's
//! `_ip_int_from_string` step by step, so that every string is accepted or
//! refused exactly as Nova's validator does. Nova then stores and returns
//! `str(netaddr.IPAddress(s))`, which on Linux is glibc's `inet_ntop`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::hex_digit;

/// `ipaddress.IPv4Address(s)` succeeds: exactly four '.'-separated
/// octets, each as `IPv4Address._parse_octet` takes it (1-3 ASCII digits,
/// `str.isascii() and str.isdigit()` being exactly "only 0-9"; no leading
/// zero, refused as glibc's inet_pton does since bpo-36384; at most 255).
/// One pass, as the address in a body is read on every update.
pub fn parse_ipv4(s: impl AsRef<[u8]>) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut done = 0;
    let mut value = 0u16;
    let mut digits = 0;
    // A '.' after the last byte closes the fourth octet.
    for &b in s.as_ref().iter().chain([&b'.']) {
        match b {
            b'0'..=b'9' => {
                // A fourth digit, or a second after a leading '0'.
                if digits == 3 || (digits == 1 && value == 0) {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
                digits += 1;
            }
            b'.' => {
                if digits == 0 || done == 4 {
                    return None;
                }
                *octets.get_mut(done)? = u8::try_from(value).ok()?;
                done += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    (done == 4).then(|| Ipv4Addr::from(octets))
}

/// One ':'-separated piece of an IPv6 string; an IPv4 suffix becomes two
/// already-numeric hextets, as CPython appends `'%x'` strings for it.
#[derive(Clone, Copy)]
enum Part<'a> {
    Text(&'a [u8]),
    Value(u16),
}

impl Part<'_> {
    fn is_empty(self) -> bool {
        matches!(self, Part::Text([]))
    }

    /// `IPv6Address._parse_hextet`: 1-4 hex digits (an empty part fails in
    /// `int('', 16)`).
    fn hextet(self) -> Option<u16> {
        match self {
            Part::Value(v) => Some(v),
            Part::Text(b) => {
                if b.is_empty() || b.len() > 4 {
                    return None;
                }
                // At most 4 digits: no overflow. Exactly the ASCII hex
                // digits, as `int(s, 16)` after CPython's `_HEX_DIGITS` check.
                b.iter()
                    .try_fold(0u16, |acc, &d| Some(acc << 4 | u16::from(hex_digit(d)?)))
            }
        }
    }
}

/// Most parts CPython accepts: 8 hextets plus one for a leading or trailing
/// `::`. More pieces than this are refused before anything else matters.
const MAX_PARTS: usize = 9;

/// `ipaddress.IPv6Address(s)` succeeds and has no scope id.
pub fn parse_ipv6(s: impl AsRef<[u8]>) -> Option<Ipv6Addr> {
    let s = s.as_ref();
    eight_groups(s).or_else(|| parse_ipv6_any(s))
}

/// The common spelling alone, in one pass: eight groups of 1-4 hex digits
/// and seven single colons, which [`parse_ipv6_any`] reads to the same
/// address. `None`: some other spelling (valid or not), for it to judge.
fn eight_groups(s: &[u8]) -> Option<Ipv6Addr> {
    let mut words = [0u16; 8];
    let mut done = 0;
    let mut value = 0u16;
    let mut digits = 0;
    for &b in s.iter().chain([&b':']) {
        if b == b':' && digits > 0 {
            *words.get_mut(done)? = value;
            done += 1;
            value = 0;
            digits = 0;
            continue;
        }
        let digit = hex_digit(b)?;
        if digits == 4 {
            return None;
        }
        value = value << 4 | u16::from(digit);
        digits += 1;
    }
    (done == 8).then(|| Ipv6Addr::from(words))
}

/// [`parse_ipv6`] for any spelling, step by step as CPython does it.
fn parse_ipv6_any(s: &[u8]) -> Option<Ipv6Addr> {
    // Collect at most MAX_PARTS + 1 pieces: enough to tell "too many" while
    // keeping the work bounded for hostile input. The IPv4 suffix turns one
    // piece into two, so allow one more before deciding. A fixed array: no
    // allocation per address. One pass over bytes: addresses are short.
    let mut slots = [Part::Text(&[]); MAX_PARTS + 2];
    let mut n = 0;
    let mut start = 0;
    for (at, &b) in s.iter().enumerate().chain([(s.len(), &b':')]) {
        match b {
            // `_split_scope_id` refuses an empty scope or a second '%';
            // jsonschema refuses any non-empty scope. So no '%' survives
            // either way. '/' is refused by the constructor.
            b'%' | b'/' => return None,
            b':' => {
                if n == MAX_PARTS + 1 {
                    return None;
                }
                slots[n] = Part::Text(s.get(start..at)?);
                n += 1;
                start = at + 1;
            }
            _ => {}
        }
    }

    // At least 2 colons (3 parts).
    if n < 3 {
        return None;
    }

    // An IPv4 suffix is converted into two hextets.
    if let Part::Text(last) = slots[n - 1] {
        if last.contains(&b'.') {
            let v4 = u32::from(parse_ipv4(last)?);
            // Truncation intended: the high and low 16 bits.
            slots[n - 1] = Part::Value((v4 >> 16) as u16);
            slots[n] = Part::Value((v4 & 0xFFFF) as u16);
            n += 1;
        }
    }

    if n > MAX_PARTS {
        return None;
    }
    let parts = &slots[..n];

    // '::' in the interior: an empty part other than the first and last.
    let mut skip_index = None;
    for (i, p) in parts.iter().enumerate().take(n - 1).skip(1) {
        if p.is_empty() {
            if skip_index.is_some() {
                return None; // more than one '::'
            }
            skip_index = Some(i);
        }
    }

    let first_empty = parts.first().is_some_and(|p| p.is_empty());
    let last_empty = parts.last().is_some_and(|p| p.is_empty());
    let (parts_hi, parts_lo, parts_skipped) = match skip_index {
        Some(skip) => {
            let mut hi = skip;
            let mut lo = n - skip - 1;
            if first_empty {
                hi -= 1;
                if hi != 0 {
                    return None; // leading ':' only as part of '::'
                }
            }
            if last_empty {
                lo -= 1;
                if lo != 0 {
                    return None; // trailing ':' only as part of '::'
                }
            }
            // '::' must stand for at least one group.
            if hi + lo > 7 {
                return None;
            }
            (hi, lo, 8 - (hi + lo))
        }
        None => {
            if n != 8 || first_empty || last_empty {
                return None;
            }
            (n, 0, 0)
        }
    };

    let mut words = [0u16; 8];
    let mut w = 0;
    for p in parts.iter().take(parts_hi) {
        *words.get_mut(w)? = p.hextet()?;
        w += 1;
    }
    w += parts_skipped;
    for p in parts.iter().skip(n - parts_lo) {
        *words.get_mut(w)? = p.hextet()?;
        w += 1;
    }
    Some(Ipv6Addr::from(words))
}

/// `str(netaddr.IPAddress(addr))`.
///
/// netaddr formats with `socket.inet_ntop`, i.e. glibc's `inet_ntop6`:
/// lowercase hex without leading zeros; the longest run (leftmost on ties)
/// of two or more zero groups becomes `::`; the last 32 bits are written as
/// dotted IPv4 when the first zero run is exactly groups 0-5
/// (IPv4-compatible, `::a.b.c.d` with a non-zero group 6) or exactly
/// groups 0-4 followed by `ffff` (IPv4-mapped).
pub fn canonical(addr: Ipv6Addr) -> String {
    let mut out = String::with_capacity(39);
    push_canonical(&mut out, addr);
    out
}

/// [`canonical`], appended to `out`.
pub fn push_canonical(out: &mut String, addr: Ipv6Addr) {
    let words = addr.segments();

    // Longest run of zero groups; `>` keeps the leftmost on ties.
    let mut best: Option<(usize, usize)> = None; // (base, len)
    let mut cur: Option<(usize, usize)> = None;
    for (i, &word) in words.iter().enumerate() {
        if word == 0 {
            cur = Some(match cur {
                Some((base, len)) => (base, len + 1),
                None => (i, 1),
            });
        } else if let Some(run) = cur.take() {
            if best.is_none_or(|b| run.1 > b.1) {
                best = Some(run);
            }
        }
    }
    if let Some(run) = cur {
        if best.is_none_or(|b| run.1 > b.1) {
            best = Some(run);
        }
    }
    // A single zero group is written as "0", not "::".
    let best = best.filter(|&(_, len)| len >= 2);

    for (i, &word) in words.iter().enumerate() {
        if let Some((base, len)) = best {
            if i >= base && i < base + len {
                if i == base {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        let embedded_v4 = i == 6
            && matches!(best, Some((0, len)) if len == 6 || (len == 5 && words[5] == 0xffff));
        if embedded_v4 {
            for (k, octet) in addr.octets()[12..].iter().enumerate() {
                if k != 0 {
                    out.push('.');
                }
                push_decimal(out, *octet);
            }
            return;
        }
        push_hex(out, word);
    }
    if best.is_some_and(|(base, len)| base + len == 8) {
        out.push(':');
    }
}

/// `'%x' % word`: lowercase, no leading zeros.
fn push_hex(out: &mut String, word: u16) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut started = false;
    for shift in [12, 8, 4, 0] {
        let nibble = usize::from((word >> shift) & 0xf);
        if started || nibble != 0 || shift == 0 {
            started = true;
            out.push(char::from(DIGITS[nibble]));
        }
    }
}

fn push_decimal(out: &mut String, octet: u8) {
    if octet >= 100 {
        out.push(char::from(b'0' + octet / 100));
    }
    if octet >= 10 {
        out.push(char::from(b'0' + octet / 10 % 10));
    }
    out.push(char::from(b'0' + octet % 10));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v6(s: &str) -> Ipv6Addr {
        match parse_ipv6(s) {
            Some(a) => a,
            None => panic!("{s:?} should parse as IPv6"),
        }
    }

    #[test]
    fn ipv4_accepted() {
        for (s, want) in [
            ("0.0.0.0", [0, 0, 0, 0]),
            ("255.255.255.255", [255, 255, 255, 255]),
            ("192.168.0.10", [192, 168, 0, 10]),
            ("1.1.1.1", [1, 1, 1, 1]),
            ("10.0.100.200", [10, 0, 100, 200]),
        ] {
            assert_eq!(parse_ipv4(s), Some(Ipv4Addr::from(want)), "{s:?}");
        }
    }

    #[test]
    fn ipv4_rejected() {
        for s in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "1.1.1.1.1.1",
            "256.1.1.1",
            "1.2.3.256",
            "999.1.1.1",
            "0x1.2.3.4",
            "1..3.4",
            ".1.2.3",
            "1.2.3.",
            "01.2.3.4",
            "1.2.3.04",
            "00.1.2.3",
            "0000.1.2.3",
            "1.2.3.4\n",
            " 1.2.3.4",
            "1.2.3.4 ",
            "+1.2.3.4",
            "1.2.3.-4",
            "1_0.2.3.4",
            "\u{0661}.2.3.4", // Arabic-Indic digit one
            "\u{FF11}.2.3.4", // fullwidth digit one
            "1.2.3.4/32",
            "::1",
            "1.2.3.4:80",
        ] {
            assert_eq!(parse_ipv4(s), None, "{s:?}");
        }
    }

    #[test]
    fn ipv6_accepted() {
        // nova-facts §2.1 [checked] list, plus values used by tempest and
        // Nova's own tests.
        for s in [
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "1:2:3:4:5:6:1.2.3.4",
            "0001:0002::",
            "FE80::ABCD",
            "::FFFF:1.2.3.4",
            "::babe:67.23.10.132",
            "::babe:202:202",
            "0000:0000:0000:0000:0000:babe:220.12.22.2",
            "2001:2001::3",
            "2001:db8::9abc",
            "::",
            "::1",
            "1::",
            "::0:0:0:0:0:0:0",
            "1:2:3:4:5:6:7:8",
            "1::2:3:4:5:6:7",
            "::1.2.3.4",
            "::0.0.0.0",
            "fe80::1",
        ] {
            assert!(parse_ipv6(s).is_some(), "{s:?}");
        }
        assert_eq!(
            v6("1:2:3:4:5:6:1.2.3.4").segments(),
            [1, 2, 3, 4, 5, 6, 0x102, 0x304]
        );
        assert_eq!(v6("1:2:3:4:5:6:7::").segments(), [1, 2, 3, 4, 5, 6, 7, 0]);
        // The one-pass spelling, and those it leaves to the general parser.
        assert_eq!(
            eight_groups(b"2001:0DB8:0000:0000:0000:0000:0000:0001"),
            Some(v6("2001:db8::1"))
        );
        for other in [
            "1::2",
            "1:2:3:4:5:6:7:8:",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:00000",
        ] {
            assert_eq!(eight_groups(other.as_bytes()), None, "{other:?}");
        }
        assert_eq!(v6("::1:2:3:4:5:6:7").segments(), [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            v6("FE80::ABCD").segments(),
            [0xfe80, 0, 0, 0, 0, 0, 0, 0xabcd]
        );
    }

    #[test]
    fn ipv6_rejected() {
        for s in [
            "",
            "00001::",
            "1::2::3",
            ":1::2",
            "1::2:",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::ffff:1.2.3",
            "::ffff:01.2.3.4",
            "::ffff:256.2.3.4",
            "2001:db8::1/64",
            "[::1]",
            " ::1",
            "::1 ",
            "::1\n",
            "::\u{0661}", // Arabic-Indic digit one
            "1.2.3",
            "1.2.3.4",
            "256.1.1.1",
            "0x1.2.3.4",
            "1..3.4",
            "\u{0661}.2.3.4",
            "fe80::1%eth0",
            "fe80::1%",
            "fe80::1%%",
            "fe80::1%1",
            "%",
            "::%eth0",
            "fe80:::::::",
            ":::",
            "1:::2",
            ":",
            "::::",
            "1:2",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4::5:6:7:8",
            "1:2:3:4:5:6:7:8:",
            ":1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:",
            "g::",
            "::-1",
            "::+1",
            "::1_0",
            "::0x1",
            "1.2.3.4::",
            "::1.2.3.4:1",
            "::1.2.3.4.5",
            "::１",   // fullwidth digit one
            "::ＡＢ", // fullwidth letters
            "0:0:0:0:0:0:0:0:0",
        ] {
            assert_eq!(parse_ipv6(s), None, "{s:?}");
        }
    }

    #[test]
    fn canonical_text_table() {
        // nova-facts §2.2 [checked, netaddr 1.3.0].
        for (input, want) in [
            ("::babe:67.23.10.132", "::babe:4317:a84"),
            (
                "0000:0000:0000:0000:0000:babe:220.12.22.2",
                "::babe:dc0c:1602",
            ),
            ("::babe:202:202", "::babe:202:202"),
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:0DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::FFFF:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:abcd:1234", "::ffff:171.205.18.52"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.1.0.0", "::0.1.0.0"),
            ("::0.0.0.1", "::1"),
            ("::0.0.255.255", "::ffff"),
            ("::255.255.255.255", "::255.255.255.255"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
            ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
            ("FE80::ABCD", "fe80::abcd"),
            // Checked against glibc 2.36 inet_ntop and netaddr 1.3.0.
            ("::", "::"),
            ("::1", "::1"),
            ("::0.0.0.2", "::2"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("::ffff", "::ffff"),
            ("::1:0:0", "::1:0:0"),
            ("::ffff:0:0:0", "::ffff:0:0:0"),
            ("0:0:0:0:1:ffff::", "::1:ffff:0:0"),
            ("::1:ffff:1.2.3.4", "::1:ffff:102:304"),
            ("0:0:0:0:0:0:0:0", "::"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
            ("1:0:0:2:3:0:0:4", "1::2:3:0:0:4"),
            ("1:2:0:0:3:0:0:0", "1:2:0:0:3::"),
            ("0:0:1:2:3:4:5:6", "::1:2:3:4:5:6"),
            (
                "abcd:ef01:2345:6789:ABCD:EF01:2345:6789",
                "abcd:ef01:2345:6789:abcd:ef01:2345:6789",
            ),
            ("0:0:0:0:0:1:0:0", "::1:0:0"),
        ] {
            assert_eq!(canonical(v6(input)), want, "{input:?}");
        }
    }

    #[test]
    fn canonical_is_not_std_display() {
        // Rust's Display writes IPv4-compatible addresses in hex; glibc does not.
        let a = v6("::1.2.3.4");
        assert_eq!(canonical(a), "::1.2.3.4");
        assert_ne!(a.to_string(), canonical(a));
    }

    fn text_of_words() -> impl Strategy<Value = Ipv6Addr> {
        // Favour zeros and the special v4 prefixes so that compression and
        // dotted-quad branches are exercised often.
        let word = prop_oneof![
            4 => Just(0u16),
            1 => Just(0xffffu16),
            1 => Just(1u16),
            4 => any::<u16>(),
        ];
        prop::array::uniform8(word).prop_map(Ipv6Addr::from)
    }

    proptest! {
        #[test]
        fn canonical_is_a_fixed_point(a in text_of_words()) {
            let text = canonical(a);
            prop_assert_eq!(parse_ipv6(&text), Some(a), "{}", text);
            prop_assert_eq!(canonical(parse_ipv6(&text).unwrap_or(Ipv6Addr::UNSPECIFIED)), text);
        }

        #[test]
        fn canonical_is_a_fixed_point_any(bits in any::<u128>()) {
            let a = Ipv6Addr::from(bits);
            let text = canonical(a);
            prop_assert_eq!(parse_ipv6(&text), Some(a), "{}", text);
            prop_assert!(text.len() <= 45);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,64}") {
            let _ = parse_ipv6(&s);
            let _ = parse_ipv4(&s);
        }

        #[test]
        fn parse_never_panics_on_address_alphabet(s in "[0-9a-fA-F:.%/ ]{0,60}") {
            if let Some(a) = parse_ipv6(&s) {
                prop_assert_eq!(parse_ipv6(canonical(a)), Some(a));
            }
            let _ = parse_ipv4(&s);
        }

        #[test]
        fn eight_groups_reads_as_the_general_parser_does(
            groups in prop::collection::vec("[0-9a-fA-F]{0,5}|[.%/ g]", 6..10),
            noise in "[0-9a-fA-F:]{0,45}",
        ) {
            for s in [groups.join(":"), noise] {
                let fast = eight_groups(s.as_bytes());
                prop_assert!(fast.is_none() || fast == parse_ipv6_any(s.as_bytes()), "{}", s);
            }
        }

        #[test]
        fn ipv4_is_read_as_the_standard_library_reads_it(
            parts in prop::collection::vec("[0-9]{0,4}|[12][0-9]{2}|[+ a]", 0..6),
        ) {
            let s = parts.join(".");
            // Both take exactly four decimal octets up to 255 without
            // leading zeros: the same rule, written twice.
            prop_assert_eq!(parse_ipv4(&s), s.parse::<Ipv4Addr>().ok());
        }
    }
}
