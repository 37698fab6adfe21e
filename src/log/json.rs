//! The JSON log line: one object per event, built in a per-thread buffer
//! and handed to the subscriber in one piece.
//!
//! Same shape as tracing-subscriber's flattened JSON format (`timestamp`,
//! `level`, the event's fields in order, `target`), without its serializer:
//! the access log writes one line per exchange, so this is on every
//! request's path. Pieces are pushed onto a `String` directly rather than
//! through `fmt::Write` calls one character at a time.

use std::cell::RefCell;
use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;

use crate::text::push_u64;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A `FormatEvent` writing one JSON object per line.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

thread_local! {
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                push_line(&mut line, event)?;
                writer.write_str(&line)
            }
            // An event logged while another one is being formatted.
            Err(_) => {
                let mut line = String::new();
                push_line(&mut line, event)?;
                writer.write_str(&line)
            }
        })
    }
}

/// `now`, as every line of the log writes it (tracing-subscriber's
/// `SystemTime` format).
pub(crate) fn push_timestamp(line: &mut String) -> fmt::Result {
    crate::text::push_timestamp(line, std::time::SystemTime::now());
    Ok(())
}

fn push_line(line: &mut String, event: &Event<'_>) -> fmt::Result {
    let meta = event.metadata();
    line.push_str("{\"timestamp\":\"");
    push_timestamp(line)?;
    line.push_str("\",\"level\":\"");
    line.push_str(meta.level().as_str());
    line.push('"');
    let mut fields = Fields {
        out: line,
        result: Ok(()),
    };
    event.record(&mut fields);
    fields.result?;
    line.push_str(",\"target\":");
    push_json_str(line, meta.target());
    line.push_str("}\n");
    Ok(())
}

/// Pushes each field as `,"name":value`.
struct Fields<'a> {
    out: &'a mut String,
    /// Only a `Debug` or `Display` implementation can fail.
    result: fmt::Result,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        self.out.push(',');
        push_json_str(self.out, field.name());
        self.out.push(':');
        self.out
    }

    /// A value written by `fmt`, as a JSON string.
    fn formatted(&mut self, field: &Field, args: fmt::Arguments<'_>) {
        let out = self.key(field);
        out.push('"');
        let written = Escaped(out).write_fmt(args);
        out.push('"');
        if self.result.is_ok() {
            self.result = written;
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let out = self.key(field);
        push_json_str(out, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let out = self.key(field);
        push_u64(out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let out = self.key(field);
        if value < 0 {
            out.push('-');
        }
        push_u64(out, value.unsigned_abs());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let out = self.key(field);
        out.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let out = self.key(field);
        // JSON has no NaN or infinity; serde_json writes null for them too.
        if value.is_finite() {
            // Writing to a String cannot fail.
            let _ = write!(out, "{value:?}");
        } else {
            out.push_str("null");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.formatted(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.formatted(field, format_args!("{value:?}"));
    }
}

/// A JSON string token.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    // Writing to a String cannot fail.
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// A JSON string token of `s` (UTF-8), escaped as [`Escaped`] does; runs
/// that need no escape are copied whole.
pub(crate) fn push_json_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    // Most values (ids, paths, user agents) need no escape: one copy.
    if !needs_escape(s) {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, &b) in s.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.extend_from_slice(&s[plain..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        plain = i + 1;
    }
    out.extend_from_slice(&s[plain..]);
    out.push(b'"');
}

/// Whether `s` has a byte a JSON string escapes (a control, `"`, `\\`):
/// where the validator's JSON parser stops a string's plain run.
pub(crate) fn needs_escape(s: &[u8]) -> bool {
    crate::nova::json::string_stop(s).is_some()
}

/// Escapes what it is given as the inside of a JSON string.
pub(crate) struct Escaped<'a>(pub(crate) &'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[plain..i]);
            if escape.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.0.push_str("\\u00");
                self.0.push(char::from(HEX[usize::from(b >> 4)]));
                self.0.push(char::from(HEX[usize::from(b & 0xf)]));
            } else {
                self.0.push_str(escape);
            }
            plain = i + 1;
        }
        self.0.push_str(&s[plain..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(emit: impl FnOnce()) -> Vec<serde_json::Value> {
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn the_word_at_a_time_escape_check_is_the_byte_check() {
        let bytewise = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        for filler in [b'a', 0x7f, 0x80, 0xff, 0x21, 0x23, 0x5b, 0x5d] {
            for len in [7, 8, 9, 16, 17] {
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![filler; len];
                        s[at] = b;
                        assert_eq!(needs_escape(&s), bytewise(&s), "{s:?}");
                        if at + 1 < len {
                            for c in [0u8, 0x1f, 0x20, 0x22, 0x5c, 0x7f, 0x80, 0xff] {
                                s[at + 1] = c;
                                assert_eq!(needs_escape(&s), bytewise(&s), "{s:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_kind_of_field_is_valid_json() {
        let addr: std::net::SocketAddr = "[2001:db8::1]:8775".parse().unwrap();
        let got = lines(|| {
            tracing::info!(
                target: "nova_guard::access",
                s = "q\"b\\s\n\r\t\u{1}\u{7f}é\u{10000}",
                n = 18_446_744_073_709_551_615_u64,
                i = -5_i64,
                zero = 0_u64,
                min = i64::MIN,
                t = true,
                f = 1.5_f64,
                nan = f64::NAN,
                peer = %addr,
                dbg = ?"x\"y",
                none = Option::<u16>::None,
                "exchange"
            )
        });
        assert_eq!(got.len(), 1);
        let v = &got[0];
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "exchange");
        assert_eq!(v["target"], "nova_guard::access");
        assert_eq!(v["s"], "q\"b\\s\n\r\t\u{1}\u{7f}é\u{10000}");
        assert_eq!(v["n"], 18_446_744_073_709_551_615_u64);
        assert_eq!(v["i"], -5);
        assert_eq!(v["zero"], 0);
        assert_eq!(v["min"], i64::MIN);
        assert_eq!(v["t"], true);
        assert_eq!(v["f"], 1.5);
        assert!(v["nan"].is_null());
        assert_eq!(v["peer"], "[2001:db8::1]:8775");
        assert_eq!(v["dbg"], "\"x\\\"y\"");
        assert!(v.get("none").is_none());
        let ts = v["timestamp"].as_str().unwrap_or_default();
        assert!(ts.ends_with('Z') && ts.len() == 27, "{ts}");
    }

    #[test]
    fn the_same_line_as_the_generic_json_format() {
        let ours = lines(|| tracing::warn!(error = %"boom", count = 3_u64, "accept failed"));
        let sink = Sink::default();
        let out = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(
            subscriber,
            || tracing::warn!(error = %"boom", count = 3_u64, "accept failed"),
        );
        let bytes = sink.0.lock().map(|b| b.clone()).unwrap_or_default();
        let mut theirs: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let mut ours = ours[0].clone();
        for v in [&mut ours, &mut theirs] {
            v.as_object_mut().map(|o| o.remove("timestamp"));
        }
        assert_eq!(ours, theirs);
    }

    proptest::proptest! {
        #[test]
        fn bytes_and_fmt_escape_alike(s in "(\\PC|[\\x00-\\x1f\"\\\\])*") {
            let mut text = String::new();
            push_json_str(&mut text, &s);
            let mut bytes = Vec::new();
            push_json_bytes(&mut bytes, s.as_bytes());
            proptest::prop_assert_eq!(text.as_bytes(), bytes.as_slice());
            let back: String = serde_json::from_slice(&bytes).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
