//! Numbers, IPv4 addresses and timestamps written as text without `fmt`:
//! each is written once or more for every exchange (the access line, the
//! `X-Forwarded-For` sent to Nova), where `fmt`'s machinery costs more than
//! the proxying around it.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::nova::Microversion;

/// Where ASCII text is appended: a log line (`String`) or a header value
/// (`Vec<u8>`).
pub trait Ascii {
    /// `bytes` are ASCII.
    fn push_ascii(&mut self, bytes: &[u8]);
}

impl Ascii for Vec<u8> {
    fn push_ascii(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Ascii for String {
    fn push_ascii(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(char::from(b));
        }
    }
}

/// Writes `value` in decimal into `buf` at `at`; returns the end. Numbers
/// are gathered in a small buffer and appended in one copy: a copy per
/// digit or per dot costs more than the digits.
pub(crate) fn put_decimal(buf: &mut [u8], at: usize, value: u64) -> usize {
    let mut digits = itoa::Buffer::new();
    put(buf, at, digits.format(value).as_bytes())
}

/// Writes `v` as Nova does (`2.19`) into `buf` at `at`; returns the end.
/// At most 11 bytes.
fn put_version(buf: &mut [u8], at: usize, v: Microversion) -> usize {
    let at = put_decimal(buf, at, u64::from(v.major));
    let at = put(buf, at, b".");
    put_decimal(buf, at, u64::from(v.minor))
}

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let end = at + bytes.len();
    buf[at..end].copy_from_slice(bytes);
    end
}

/// `bytes` as text, invalid UTF-8 replaced as `String::from_utf8_lossy`
/// does; valid text (nearly all of it) is checked and copied without its
/// character-by-character decoding.
pub fn lossy(bytes: &[u8]) -> String {
    let mut text = String::new();
    push_lossy(&mut text, bytes);
    text
}

/// [`lossy`], appended to `out` (whose memory may be reused).
pub fn push_lossy(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Appends `value` in decimal.
pub fn push_u64(out: &mut impl Ascii, value: u64) {
    out.push_ascii(itoa::Buffer::new().format(value).as_bytes());
}

/// Appends `v` as Nova writes it (`2.19`).
pub fn push_version(out: &mut impl Ascii, v: Microversion) {
    let mut buf = [0u8; 11];
    let end = put_version(&mut buf, 0, v);
    out.push_ascii(&buf[..end]);
}

/// Appends `ip` as its `Display` writes it.
pub fn push_ip(out: &mut impl Ascii, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            let mut buf = [0u8; 15];
            let end = put_ipv4(&mut buf, ip);
            out.push_ascii(&buf[..end]);
        }
        // Rare behind a load balancer, and `fmt` gets the zero-run rules right.
        IpAddr::V6(ip) => out.push_ascii(ip.to_string().as_bytes()),
    }
}

/// Writes `ip` at the start of `buf`; returns the end.
fn put_ipv4(buf: &mut [u8], ip: Ipv4Addr) -> usize {
    let [a, b, c, d] = ip.octets();
    let mut at = put_octet(buf, 0, a);
    for octet in [b, c, d] {
        buf[at] = b'.';
        at = put_octet(buf, at + 1, octet);
    }
    at
}

/// Writes `n` (at most three digits) at `at`; returns the end.
fn put_octet(buf: &mut [u8], at: usize, n: u8) -> usize {
    if n >= 100 {
        buf[at] = b'0' + n / 100;
        buf[at + 1] = b'0' + n / 10 % 10;
        buf[at + 2] = b'0' + n % 10;
        at + 3
    } else if n >= 10 {
        buf[at] = b'0' + n / 10;
        buf[at + 1] = b'0' + n % 10;
        at + 2
    } else {
        buf[at] = b'0' + n;
        at + 1
    }
}

/// Appends `addr` as its `Display` writes it.
pub fn push_socket_addr(out: &mut impl Ascii, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            let mut buf = [0u8; 21];
            let at = put_ipv4(&mut buf, *a.ip());
            buf[at] = b':';
            let end = put_decimal(&mut buf, at + 1, u64::from(a.port()));
            out.push_ascii(&buf[..end]);
        }
        SocketAddr::V6(a) => out.push_ascii(a.to_string().as_bytes()),
    }
}

/// Appends `d` in milliseconds with three decimals (to the microsecond).
pub fn push_millis(out: &mut impl Ascii, d: Duration) {
    // Whole milliseconds without 128-bit division, for any duration below
    // u64::MAX of them; beyond, as many as u64 holds.
    let micros = d.subsec_micros();
    let millis = d
        .as_secs()
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(u64::from(micros / 1000)))
        .unwrap_or(u64::MAX);
    let frac = micros % 1000;
    let mut buf = [0u8; 24];
    let at = put_decimal(&mut buf, 0, millis);
    buf[at] = b'.';
    // Below 10 each.
    buf[at + 1] = b'0' + (frac / 100) as u8;
    buf[at + 2] = b'0' + (frac / 10 % 10) as u8;
    buf[at + 3] = b'0' + (frac % 10) as u8;
    out.push_ascii(&buf[..at + 4]);
}

/// The text of one second, `2026-12-05T21:22:34.`, kept per thread: every
/// access line of that second starts with it.
#[derive(Clone, Copy)]
struct Second {
    secs: u64,
    text: [u8; 32],
    len: usize,
}

thread_local! {
    static SECOND: Cell<Option<Second>> = const { Cell::new(None) };
}

fn second(secs: u64) -> Second {
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = [0u8; 32];
    let mut at = put_decimal(&mut text, 0, year);
    for (sep, n) in [
        (b'-', month),
        (b'-', day),
        (b'T', of_day / 3600),
        (b':', of_day / 60 % 60),
        (b':', of_day % 60),
    ] {
        // n is below 100: two digits.
        text[at] = sep;
        text[at + 1] = b'0' + (n / 10 % 10) as u8;
        text[at + 2] = b'0' + (n % 10) as u8;
        at += 3;
    }
    text[at] = b'.';
    Second {
        secs,
        text,
        len: at + 1,
    }
}

/// Appends the time `now` as RFC 3339 in UTC to the microsecond,
/// `2026-12-05T21:22:34.434117Z`, as tracing-subscriber's `SystemTime`
/// writes it.
pub fn push_timestamp(out: &mut impl Ascii, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let cached = SECOND.with(Cell::get).filter(|s| s.secs == secs);
    let s = cached.unwrap_or_else(|| {
        let s = second(secs);
        SECOND.with(|c| c.set(Some(s)));
        s
    });
    let mut buf = [0u8; 40];
    buf[..s.len].copy_from_slice(&s.text[..s.len]);
    let mut micros = since.subsec_micros();
    for slot in buf[s.len..s.len + 6].iter_mut().rev() {
        // A digit: below 10.
        *slot = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    buf[s.len + 6] = b'Z';
    out.push_ascii(&buf[..s.len + 7]);
}

/// (year, month, day) of the day `days` after 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`, for days on or
/// after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::FormatTime;

    fn text(f: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        f(&mut out);
        out
    }

    #[test]
    fn numbers_and_addresses_as_display_writes_them() {
        let mut numbers = vec![0, 7, 10, 99, 255, 1000, u64::from(u32::MAX), u64::MAX];
        for p in 1..20 {
            let ten = 10u64.pow(p);
            numbers.extend([ten - 1, ten, ten + 1, ten + ten / 2 + 7]);
        }
        for n in numbers {
            assert_eq!(text(|o| push_u64(o, n)), n.to_string());
        }
        for ip in [
            "0.0.0.0",
            "192.0.2.1",
            "255.255.255.255",
            "10.0.100.9",
            "::1",
            "2001:db8::1",
            "::ffff:192.0.2.1",
            "1.22.3.100",
            "9.99.100.0",
            "100.10.1.0",
            "199.200.209.250",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(text(|o| push_ip(o, ip)), ip.to_string());
            let mut header = b"x, ".to_vec();
            push_ip(&mut header, ip);
            assert_eq!(header, format!("x, {ip}").into_bytes());
            let addr = SocketAddr::new(ip, 8775);
            assert_eq!(text(|o| push_socket_addr(o, addr)), addr.to_string());
        }
    }

    #[test]
    fn versions_as_display_writes_them() {
        for (major, minor) in [(2, 1), (2, 19), (2, 100), (0, 0), (u16::MAX, u16::MAX)] {
            let v = Microversion::new(major, minor);
            let mut buf = [0u8; 11];
            let end = put_version(&mut buf, 0, v);
            assert_eq!(&buf[..end], v.to_string().as_bytes());
        }
    }

    #[test]
    fn every_octet_as_display_writes_it() {
        for n in 0..=255u8 {
            let ip = Ipv4Addr::new(n, 255 - n, n / 2, n % 7);
            assert_eq!(text(|o| push_ip(o, IpAddr::V4(ip))), ip.to_string());
        }
    }

    #[test]
    fn lossy_text_as_from_utf8_lossy() {
        for bytes in [
            &b""[..],
            b"req-1",
            b"caf\xc3\xa9",
            b"a\xffb",
            b"\xe2\x82",
            b"\xc3\xa9\xc3",
        ] {
            assert_eq!(lossy(bytes), String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn milliseconds_to_the_microsecond() {
        for (d, expected) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(1_500), "1.500"),
            (Duration::from_micros(10_005), "10.005"),
            (Duration::from_micros(1_234_567), "1234.567"),
        ] {
            assert_eq!(text(|o| push_millis(o, d)), expected);
        }
        // Near and past u64::MAX milliseconds, as the exact count caps them.
        for d in [
            Duration::new(u64::MAX / 1000, 614_999_999),
            Duration::new(u64::MAX / 1000, 615_000_000),
            Duration::new(u64::MAX / 1000, 999_999_999),
            Duration::new(u64::MAX / 1000 + 1, 0),
            Duration::MAX,
        ] {
            let micros = d.as_micros();
            let expected = format!(
                "{}.{:03}",
                u64::try_from(micros / 1000).unwrap_or(u64::MAX),
                micros % 1000
            );
            assert_eq!(text(|o| push_millis(o, d)), expected);
        }
    }

    #[test]
    fn timestamps_as_tracing_writes_them() {
        for (secs, micros, expected) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
            (1_796_505_754, 434_117, "2026-12-05T21:22:34.434117Z"),
            // The same second again, then the next one: the kept text of a
            // second is reused, then replaced.
            (1_796_505_754, 7, "2026-12-05T21:22:34.000007Z"),
            (1_796_505_755, 0, "2026-12-05T21:22:35.000000Z"),
            (4_102_444_800, 0, "2100-01-01T00:00:00.000000Z"),
        ] {
            let t = UNIX_EPOCH + Duration::new(secs, micros * 1000);
            assert_eq!(text(|o| push_timestamp(o, t)), expected);
        }
        // The clock as tracing-subscriber reads it, to the second.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        let ours = text(|o| push_timestamp(o, SystemTime::now()));
        assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
        assert_eq!(ours[..16], theirs[..16], "{ours} {theirs}");
    }
}
