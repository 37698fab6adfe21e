//! Numbers, IPv4 addresses and timestamps written as text without `fmt`:
//! each is written once or more for every exchange (the access line, the
//! `X-Forwarded-For` sent to Nova), where `fmt`'s machinery costs more than
//! the proxying around it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Appends `value` in decimal.
pub fn push_u64(out: &mut impl Ascii, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // The remainder is below 10: the cast keeps it.
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.push_ascii(&digits[start..]);
}

/// Appends `ip` as its `Display` writes it.
pub fn push_ip(out: &mut impl Ascii, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => push_ipv4(out, ip),
        // Rare behind a load balancer, and `fmt` gets the zero-run rules right.
        IpAddr::V6(ip) => out.push_ascii(ip.to_string().as_bytes()),
    }
}

fn push_ipv4(out: &mut impl Ascii, ip: Ipv4Addr) {
    let [a, b, c, d] = ip.octets();
    push_u64(out, u64::from(a));
    for octet in [b, c, d] {
        out.push_ascii(b".");
        push_u64(out, u64::from(octet));
    }
}

/// Appends `addr` as its `Display` writes it.
pub fn push_socket_addr(out: &mut impl Ascii, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            push_ipv4(out, *a.ip());
            out.push_ascii(b":");
            push_u64(out, u64::from(a.port()));
        }
        SocketAddr::V6(a) => out.push_ascii(a.to_string().as_bytes()),
    }
}

/// Appends `d` in milliseconds with three decimals (to the microsecond).
pub fn push_millis(out: &mut impl Ascii, d: Duration) {
    let micros = d.as_micros();
    push_u64(out, u64::try_from(micros / 1000).unwrap_or(u64::MAX));
    let frac = micros % 1000;
    // Each is a digit: below 10.
    let digits = [frac / 100, frac / 10 % 10, frac % 10].map(|d| b'0' + d as u8);
    out.push_ascii(b".");
    out.push_ascii(&digits);
}

/// Appends the time `now` as RFC 3339 in UTC to the microsecond,
/// `2026-12-05T21:22:34.434117Z`, as tracing-subscriber's `SystemTime`
/// writes it.
pub fn push_timestamp(out: &mut impl Ascii, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    push_u64(out, year);
    for (sep, n) in [
        (b'-', month),
        (b'-', day),
        (b'T', of_day / 3600),
        (b':', of_day / 60 % 60),
        (b':', of_day % 60),
    ] {
        // n is below 100: two digits.
        out.push_ascii(&[sep, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
    }
    out.push_ascii(b".");
    let micros = u64::from(since.subsec_micros());
    let mut digits = [b'0'; 6];
    for (i, slot) in digits.iter_mut().enumerate() {
        // A digit: below 10.
        *slot = b'0' + (micros / 10u64.pow(5 - i as u32) % 10) as u8;
    }
    out.push_ascii(&digits);
    out.push_ascii(b"Z");
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
        for n in [0, 7, 10, 99, 255, 1000, u64::from(u32::MAX), u64::MAX] {
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
    }

    #[test]
    fn timestamps_as_tracing_writes_them() {
        for (secs, micros, expected) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
            (1_709_251_199, 999_999, "2024-02-29T23:59:59.999999Z"),
            (1_796_505_754, 434_117, "2026-12-05T21:22:34.434117Z"),
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
