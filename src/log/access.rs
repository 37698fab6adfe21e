//! The access line: one per exchange, written when its answer has been
//! handed over (or the client went away). It never holds a token, a query
//! string or a body: only the path, the verdict, counts and ids.
//!
//! It is formatted from the [`Exchange`] straight into a per-thread buffer
//! (JSON, or `field=value` text), in the order of [`FIELDS`], without a
//! `tracing` event per exchange; the log filter is consulted once, at
//! start-up (target `nova_guard::access`, level INFO).

use std::cell::RefCell;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use super::json::push_json_bytes;
use super::{writer, Format, SINK};
use crate::exchange::{Exchange, Protocol, Rule, ValidationInfo};
use crate::metrics::Metrics;
use crate::nova::{Microversion, Mode};
use crate::text;

/// The fields an access line may carry, in the order written, besides
/// `timestamp`, `level`, `message` (`exchange`) and `target`
/// (`nova_guard::access`). A field without a value is left out.
pub const FIELDS: &[&str] = &[
    "request_id",
    "global_request_id",
    "trace_id",
    "peer",
    "client",
    "protocol",
    "method",
    "path",
    "user_agent",
    "mode",
    "microversion",
    "operation",
    "verdict",
    "would_status",
    "would_rewrite_ipv6",
    "status",
    "field",
    "rule",
    "ipv6_rewritten",
    "dropped_headers",
    "upstream_status",
    "upstream_request_id",
    "upstream_ms",
    "error",
    "cause",
    "bytes_in",
    "bytes_out",
    "complete",
    "hung_up",
    "duration_ms",
];

/// Log `x` and count it.
pub fn finish(metrics: &Metrics, x: &Exchange) {
    let duration = x.start.elapsed();
    if let Some(sink) = SINK.get() {
        if sink.access {
            LINE.with(|line| match line.try_borrow_mut() {
                Ok(mut line) => {
                    line.clear();
                    format_line(&mut line, x, duration, sink.format);
                    writer::write(&line);
                }
                Err(_) => {
                    let mut line = Vec::new();
                    format_line(&mut line, x, duration, sink.format);
                    writer::write(&line);
                }
            });
        }
    }
    metrics.observe(x, duration);
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A field's value. Addresses, versions and times are written digit by
/// digit rather than through `fmt`: this runs once per exchange.
enum Value<'a> {
    Str(&'a str),
    /// ASCII of nova-guard's own (a name, a request id) that neither format
    /// escapes: copied as is, without looking for what to escape.
    Plain(&'a [u8]),
    Addr(SocketAddr),
    Ip(IpAddr),
    /// An address already written as text ([`crate::exchange::PeerText`]).
    AddrText(&'a str),
    Version(Microversion),
    U64(u64),
    Bool(bool),
    /// Milliseconds, to the microsecond.
    Millis(Duration),
}

/// A field's name as each format writes it before the value, whole: one
/// copy per field.
#[derive(Clone, Copy)]
struct Key {
    json: &'static [u8],
    text: &'static [u8],
}

macro_rules! key {
    ($name:literal) => {
        Key {
            json: concat!(",\"", $name, "\":").as_bytes(),
            text: concat!(" ", $name, "=").as_bytes(),
        }
    };
}

/// Writes fields in one of the two formats.
struct Line<'a> {
    out: &'a mut Vec<u8>,
    format: Format,
}

impl Line<'_> {
    // Inlined at each field: the key's length and the value's kind are then
    // known where it is written, and the copies are a few moves.
    #[inline(always)]
    fn field(&mut self, key: Key, value: Value<'_>) {
        let out = &mut *self.out;
        match self.format {
            Format::Json => {
                out.extend_from_slice(key.json);
                match value {
                    Value::Str(s) => push_json_bytes(out, s.as_bytes()),
                    Value::Plain(s) => {
                        debug_assert!(!super::json::needs_escape(s));
                        out.push(b'"');
                        out.extend_from_slice(s);
                        out.push(b'"');
                    }
                    // Nothing in these needs escaping.
                    Value::Addr(_) | Value::Ip(_) | Value::AddrText(_) | Value::Version(_) => {
                        out.push(b'"');
                        push_plain(out, &value);
                        out.push(b'"');
                    }
                    _ => push_plain(out, &value),
                }
            }
            Format::Text => {
                out.extend_from_slice(key.text);
                match value {
                    Value::Str(s) => {
                        let _ = write!(out, "{s:?}");
                    }
                    Value::Plain(s) => {
                        let _ = write!(out, "{:?}", String::from_utf8_lossy(s));
                    }
                    _ => push_plain(out, &value),
                }
            }
        }
    }

    #[inline(always)]
    fn opt_str(&mut self, key: Key, value: Option<&str>) {
        if let Some(v) = value {
            self.field(key, Value::Str(v));
        }
    }

    #[inline(always)]
    fn opt_plain(&mut self, key: Key, value: Option<&[u8]>) {
        if let Some(v) = value {
            self.field(key, Value::Plain(v));
        }
    }

    #[inline(always)]
    fn opt_u64(&mut self, key: Key, value: Option<u64>) {
        if let Some(v) = value {
            self.field(key, Value::U64(v));
        }
    }
}

/// A value that is not a string, as both formats write it.
#[inline(always)]
fn push_plain(out: &mut Vec<u8>, value: &Value<'_>) {
    match *value {
        Value::Str(s) => out.extend_from_slice(s.as_bytes()),
        Value::Plain(s) => out.extend_from_slice(s),
        Value::Addr(a) => text::push_socket_addr(out, a),
        Value::Ip(ip) => text::push_ip(out, ip),
        Value::AddrText(s) => out.extend_from_slice(s.as_bytes()),
        Value::Version(v) => text::push_version(out, v),
        Value::U64(n) => text::push_u64(out, n),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Millis(d) => text::push_millis(out, d),
    }
}

fn mode(v: &ValidationInfo) -> Option<&'static str> {
    v.api.map(|m| match m {
        Mode::LegacyV2 => "v2",
        Mode::V21 => "v2.1",
    })
}

/// One access line, with its end of line.
pub fn format_line(out: &mut Vec<u8>, x: &Exchange, duration: Duration, format: Format) {
    match format {
        Format::Json => {
            out.extend_from_slice(b"{\"timestamp\":\"");
            text::push_timestamp(out, SystemTime::now());
            out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"exchange\"");
        }
        Format::Text => {
            text::push_timestamp(out, SystemTime::now());
            out.extend_from_slice(b"  INFO nova_guard::access: exchange");
        }
    }
    let mut line = Line { out, format };
    let v = &x.validation;
    let u = &x.upstream;
    line.opt_plain(
        key!("request_id"),
        x.request_id.as_ref().map(|id| id.as_bytes()),
    );
    line.opt_str(key!("global_request_id"), x.global_request_id.as_deref());
    line.opt_str(key!("trace_id"), x.trace_id.as_deref());
    let peer_text = x.peer_text.as_deref();
    line.field(
        key!("peer"),
        peer_text.map_or(Value::Addr(x.peer.remote), |t| Value::AddrText(&t.addr)),
    );
    line.field(
        key!("client"),
        match peer_text {
            Some(t) if x.client == x.peer.remote.ip() => Value::AddrText(&t.ip),
            _ => Value::Ip(x.client),
        },
    );
    line.field(
        key!("protocol"),
        Value::Plain(x.protocol.as_str().as_bytes()),
    );
    line.opt_str(key!("method"), x.method.as_ref().map(|m| m.as_str()));
    line.opt_str(key!("path"), x.path.as_deref());
    line.opt_str(key!("user_agent"), x.user_agent.as_deref());
    line.opt_plain(key!("mode"), mode(v).map(str::as_bytes));
    if let Some(mv) = v.microversion {
        line.field(key!("microversion"), Value::Version(mv));
    }
    // The operation of a request nova-guard routed (an action until its
    // body says which).
    if v.api.is_some() {
        line.field(
            key!("operation"),
            Value::Plain(v.operation.as_str().as_bytes()),
        );
    }
    line.field(key!("verdict"), Value::Plain(v.verdict.as_str().as_bytes()));
    line.opt_u64(key!("would_status"), v.would_status.map(u64::from));
    if let Some(w) = v.would_rewrite_ipv6 {
        line.field(key!("would_rewrite_ipv6"), Value::Bool(w));
    }
    line.field(key!("status"), Value::U64(u64::from(x.status)));
    line.opt_str(key!("field"), v.field);
    line.opt_plain(key!("rule"), v.rule.map(|r| r.as_str().as_bytes()));
    line.field(key!("ipv6_rewritten"), Value::Bool(v.ipv6_rewritten));
    if x.dropped_headers > 0 {
        line.field(
            key!("dropped_headers"),
            Value::U64(u64::from(x.dropped_headers)),
        );
    }
    line.opt_u64(key!("upstream_status"), u.status.map(u64::from));
    line.opt_str(key!("upstream_request_id"), u.request_id.as_deref());
    if let Some(d) = u.duration {
        line.field(key!("upstream_ms"), Value::Millis(d));
    }
    line.opt_plain(key!("error"), u.error.map(|e| e.as_str().as_bytes()));
    line.opt_str(key!("cause"), u.cause.as_deref());
    line.field(key!("bytes_in"), Value::U64(x.bytes_in));
    line.field(key!("bytes_out"), Value::U64(x.bytes_out));
    line.field(key!("complete"), Value::Bool(x.complete));
    line.opt_plain(key!("hung_up"), x.hung_up.map(|h| h.as_str().as_bytes()));
    line.field(key!("duration_ms"), Value::Millis(duration));
    match format {
        Format::Json => line
            .out
            .extend_from_slice(b",\"target\":\"nova_guard::access\"}\n"),
        Format::Text => line.out.push(b'\n'),
    }
}

/// A request refused while its head was read, before there was a request
/// to log: 431 for a head over the byte or line limit, 400 for one that is
/// not HTTP. Logged and counted once, with neither method nor path. Other
/// connection errors (the client went away, a timeout) had no request to
/// answer and are not exchanges.
pub fn refused_head(
    metrics: &Metrics,
    peer: crate::exchange::Peer,
    error: &(dyn std::error::Error + 'static),
) {
    let Some((status, rule)) = crate::error::causes(error)
        .find_map(|c| {
            let e = c.downcast_ref::<hyper::Error>()?;
            Some(if e.is_parse_too_large() {
                Some((431, Rule::HeadTooLarge))
            } else if e.is_parse() {
                Some((400, Rule::MalformedHead))
            } else {
                None
            })
        })
        .flatten()
    else {
        return;
    };
    let mut x = Exchange::new(peer, Protocol::Http11);
    x.status = status;
    x.validation = ValidationInfo::rejected(rule);
    x.complete = true;
    finish(metrics, &x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::exchange::{HungUp, Operation, Peer, RequestId, Verdict};
    use crate::nova::Microversion;

    /// An exchange with every field set.
    fn full() -> Exchange {
        let peer = Peer::new(
            "[::ffff:192.0.2.1]:40000".parse().unwrap(),
            "127.0.0.1:8775".parse().unwrap(),
            false,
        );
        let mut x = Exchange::new(peer, Protocol::Http11);
        x.request_id = Some(RequestId::new());
        x.global_request_id = Some("req-11111111-2222-3333-4444-555555555555".into());
        x.trace_id = Some("0af7651916cd43dd8448eb211c80319c".into());
        x.method = Some(http::Method::PUT);
        x.path = Some("/v2.1/servers/x\"y".into());
        x.user_agent = Some("python-novaclient\n".into());
        x.dropped_headers = 2;
        x.validation = ValidationInfo {
            verdict: Verdict::Reported,
            operation: Operation::Update,
            api: Some(Mode::V21),
            microversion: Some(Microversion::new(2, 94)),
            field: Some("name"),
            rule: Some(Rule::Check(crate::nova::Rule::MinLength)),
            ipv6_rewritten: false,
            would_status: Some(400),
            would_rewrite_ipv6: Some(true),
        };
        x.status = 200;
        x.upstream.status = Some(200);
        x.upstream.request_id = Some("req-x".into());
        x.upstream.duration = Some(std::time::Duration::from_micros(1500));
        x.upstream.error = Some(ErrorKind::UpstreamProtocol);
        x.upstream.cause = Some("upstream_protocol: reset".into());
        x.bytes_in = 10;
        x.bytes_out = 20;
        x.complete = false;
        x.hung_up = Some(HungUp::Client);
        x
    }

    #[test]
    fn every_field_in_order_as_json() {
        let mut bytes = Vec::new();
        format_line(
            &mut bytes,
            &full(),
            Duration::from_micros(1500),
            Format::Json,
        );
        let line = String::from_utf8(bytes).unwrap();
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec!["timestamp", "level", "message"];
        expected.extend_from_slice(FIELDS);
        expected.push("target");
        // serde_json's map is ordered by key: compare as sets, then check
        // the written order on the text itself.
        let mut sorted = expected.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        let mut at = 0;
        for key in &expected {
            let found = line[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} out of order in {line}"));
            at += found;
        }
        assert_eq!(v["peer"], "192.0.2.1:40000");
        assert_eq!(v["path"], "/v2.1/servers/x\"y");
        assert_eq!(v["user_agent"], "python-novaclient\n");
        assert_eq!(v["microversion"], "2.94");
        assert_eq!(v["upstream_ms"], 1.5);
        assert_eq!(v["target"], "nova_guard::access");
    }

    #[test]
    fn names_written_plain_need_no_escape() {
        use crate::error::ErrorKind;
        use crate::exchange::{HungUp, Operation, Verdict};
        let id = RequestId::new();
        let mut names: Vec<&str> = vec!["v2", "v2.1", id.as_str()];
        names.extend([Protocol::Http10, Protocol::Http11, Protocol::H2].map(Protocol::as_str));
        names.extend(Operation::ALL.map(Operation::as_str));
        names.extend(Verdict::ALL.map(Verdict::as_str));
        names.extend(ErrorKind::ALL.map(ErrorKind::as_str));
        names.extend([HungUp::Client, HungUp::Upstream].map(HungUp::as_str));
        names.extend(Rule::proxy_rules().map(|r| r.as_str()));
        names.extend(crate::nova::Rule::ALL.map(|r| Rule::Check(r).as_str()));
        for name in names {
            assert!(!crate::log::json::needs_escape(name.as_bytes()), "{name}");
            assert_eq!(format!("{name:?}"), format!("\"{name}\""));
        }
    }

    #[test]
    fn text_lines_are_one_line() {
        let mut bytes = Vec::new();
        format_line(
            &mut bytes,
            &full(),
            Duration::from_micros(1500),
            Format::Text,
        );
        let line = String::from_utf8(bytes).unwrap();
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.contains(" INFO nova_guard::access: exchange request_id=\"req-"),
            "{line}"
        );
        assert!(line.contains(" status=200 "), "{line}");
        assert!(
            line.contains(" user_agent=\"python-novaclient\\n\""),
            "{line}"
        );
    }

    #[test]
    fn addresses_versions_and_times_are_written_as_fmt_would() {
        let cases: &[(Value<'_>, &str)] = &[
            (
                Value::Addr("192.0.2.1:40000".parse().unwrap()),
                "192.0.2.1:40000",
            ),
            (Value::Addr("0.0.0.0:0".parse().unwrap()), "0.0.0.0:0"),
            (
                Value::Addr("[2001:db8::1]:8775".parse().unwrap()),
                "[2001:db8::1]:8775",
            ),
            (
                Value::Ip("255.255.255.255".parse().unwrap()),
                "255.255.255.255",
            ),
            (Value::Ip("::1".parse().unwrap()), "::1"),
            (Value::Version(Microversion::new(2, 104)), "2.104"),
            (Value::Millis(Duration::ZERO), "0.000"),
            (Value::Millis(Duration::from_nanos(999)), "0.000"),
            (Value::Millis(Duration::from_micros(1_500)), "1.500"),
            (Value::Millis(Duration::from_micros(1_234_567)), "1234.567"),
            (Value::Millis(Duration::from_micros(10_005)), "10.005"),
            (Value::U64(u64::MAX), "18446744073709551615"),
        ];
        for (value, expected) in cases {
            let mut out = Vec::new();
            push_plain(&mut out, value);
            assert_eq!(out, expected.as_bytes());
        }
    }

    #[test]
    fn a_peer_written_once_per_connection_reads_as_one_written_each_time() {
        let peers = [
            "192.0.2.1:40000",
            "[::ffff:198.51.100.7]:1",
            "[2001:db8::1]:8775",
        ];
        for peer in peers {
            let peer = Peer::new(
                peer.parse().unwrap(),
                "127.0.0.1:8775".parse().unwrap(),
                false,
            );
            // The client as the peer, and as an address a trusted proxy named.
            for client in [peer.remote.ip(), "203.0.113.9".parse().unwrap()] {
                for format in [Format::Json, Format::Text] {
                    let mut x = full();
                    x.peer = peer;
                    x.client = client;
                    let line = |x: &Exchange| {
                        let mut bytes = Vec::new();
                        format_line(&mut bytes, x, Duration::from_micros(1500), format);
                        // The timestamps differ; the rest must not.
                        let at = bytes.iter().position(|&b| b == b',' || b == b' ');
                        bytes.split_off(at.unwrap())
                    };
                    let each_time = line(&x);
                    x.peer_text = Some(std::sync::Arc::new(crate::exchange::PeerText::new(
                        peer.remote,
                    )));
                    assert_eq!(
                        String::from_utf8(line(&x)).unwrap(),
                        String::from_utf8(each_time).unwrap()
                    );
                }
            }
        }
    }
}
