//! Python `str()` / `repr()` of JSON values, and `json.dumps` string encoding.
//!
//! Nova's validation messages embed `str(value)` and jsonschema's `repr()`
//! of values, exactly as CPython prints them, and the message is then
//! serialised with `json.dumps`. What `repr()` escapes depends on the
//! interpreter's Unicode database, hence the [`Unicode`] argument. Text is
//! built as generalized UTF-8 bytes (see [`super::json::PyStr`]) because
//! `str(value)` can hold lone surrogates.

use super::json::{push_code_point, CodePoints, Object, Value};
use super::unicode::Unicode;
use crate::swar::{bytes_equal, controls, first_flagged, word, HIGH};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut Vec<u8>, v: u32, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xF) as usize]);
    }
}

/// Append `repr(s)` (CPython `unicode_repr`): single quotes unless the text
/// holds `'` and no `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped with a
/// backslash; other non-printables (`str.isprintable()` of Unicode `u`) as
/// `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
pub fn repr_str(s: &[u8], u: Unicode, out: &mut Vec<u8>) {
    let has_single = s.contains(&b'\'');
    let has_double = s.contains(&b'"');
    let quote = if has_single && !has_double {
        b'"'
    } else {
        b'\''
    };
    out.push(quote);
    // Printable ASCII other than the quote and `\` is written as it is, in
    // runs; a run of anything else holds whole code points, as no byte of a
    // multi-byte sequence is ASCII.
    let plain = |b: u8| matches!(b, 0x20..=0x7E) && b != quote && b != b'\\';
    let mut rest = s;
    while !rest.is_empty() {
        let (run, tail) = rest.split_at(rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len()));
        out.extend_from_slice(run);
        let (other, tail) =
            tail.split_at(tail.iter().position(|&b| plain(b)).unwrap_or(tail.len()));
        repr_escaped(other, quote, u, out);
        rest = tail;
    }
    out.push(quote);
}

/// `repr()`'s text for code points it does not write as they are.
fn repr_escaped(s: &[u8], quote: u8, u: Unicode, out: &mut Vec<u8>) {
    for cp in CodePoints::new(s) {
        match cp {
            _ if cp == u32::from(quote) || cp == u32::from(b'\\') => {
                out.push(b'\\');
                out.push(cp as u8);
            }
            0x09 => out.extend_from_slice(b"\\t"),
            0x0A => out.extend_from_slice(b"\\n"),
            0x0D => out.extend_from_slice(b"\\r"),
            0x20..=0x7E => out.push(cp as u8),
            _ if cp < 0x80 => {
                out.extend_from_slice(b"\\x");
                push_hex(out, cp, 2);
            }
            _ if u.is_py_printable(cp) => push_code_point(out, cp),
            0x80..=0xFF => {
                out.extend_from_slice(b"\\x");
                push_hex(out, cp, 2);
            }
            0x100..=0xFFFF => {
                out.extend_from_slice(b"\\u");
                push_hex(out, cp, 4);
            }
            _ => {
                out.extend_from_slice(b"\\U");
                push_hex(out, cp, 8);
            }
        }
    }
}

/// Append `repr(f)` (float_repr_style 'short'): the shortest text that
/// reads back as `f`, positional when the decimal exponent is in -4..16,
/// else scientific with a signed, at least two-digit exponent.
pub fn repr_float(f: f64, out: &mut Vec<u8>) {
    if f.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    if f.is_infinite() {
        out.extend_from_slice(b"inf");
        return;
    }
    let (digits, exp) = shortest_digits(f.abs());
    let n = digits.len() as i32;
    let decpt = exp + 1; // digits[..decpt] are the integer part
    if decpt <= -4 || decpt > 16 {
        out.extend_from_slice(digits.get(..1).unwrap_or(b"0"));
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(digits.get(1..).unwrap_or(&[]));
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        out.extend_from_slice(e.to_string().as_bytes());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', decpt.unsigned_abs() as usize));
        out.extend_from_slice(&digits);
    } else if decpt >= n {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (decpt - n) as usize));
        out.extend_from_slice(b".0");
    } else {
        let (int, frac) = digits.split_at(decpt as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    }
}

/// The digits and decimal exponent (of the first digit) of Python's
/// `repr(f)` for a finite `f >= 0`.
///
/// Python (David Gay's dtoa, mode 0) returns the shortest digit string that
/// reads back as `f` and, among those, the one nearest to `f`, ties to even.
/// Rust's `{:e}` finds the same length but may break a tie the other way
/// (`1713676565829272.25` → `…272.3`, Python `…272.2`), so we redo the
/// rounding at that length exactly (`{:.N$e}` rounds half to even) and keep
/// it when it still reads back as `f`.
fn shortest_digits(f: f64) -> (Vec<u8>, i32) {
    fn split(sci: &str) -> (Vec<u8>, i32) {
        let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
        let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        (digits, exp.parse().unwrap_or(0))
    }
    let shortest = format!("{f:e}");
    let (digits, exp) = split(&shortest);
    let exact = format!("{:.*e}", digits.len().saturating_sub(1), f);
    if exact != shortest && exact.parse::<f64>() == Ok(f) {
        return split(&exact);
    }
    (digits, exp)
}

/// Append `str(int(literal))` for a JSON integer literal: the literal
/// itself, except that `-0` is `0`.
pub fn str_int(literal: &str, out: &mut Vec<u8>) {
    if literal == "-0" {
        out.push(b'0');
    } else {
        out.extend_from_slice(literal.as_bytes());
    }
}

/// Append `repr(v)`.
pub fn repr_value(v: &Value<'_>, u: Unicode, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"None"),
        Value::Bool(true) => out.extend_from_slice(b"True"),
        Value::Bool(false) => out.extend_from_slice(b"False"),
        Value::Int(lit) => str_int(lit, out),
        Value::Float(f) => repr_float(*f, out),
        Value::Str(s) => repr_str(s.text.as_bytes(), u, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                repr_value(item, u, out);
            }
            out.push(b']');
        }
        Value::Object(obj) => repr_object(obj, u, out),
    }
}

/// Append `repr(dict)` of a JSON object (Python's dict: first position of
/// each key, last value).
pub fn repr_object(obj: &Object<'_>, u: Unicode, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, item)) in obj.dict_items().into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        repr_str(k.as_bytes(), u, out);
        out.extend_from_slice(b": ");
        repr_value(item, u, out);
    }
    out.push(b'}');
}

/// Append `str(v)`: a string as it is, anything else as its `repr()`.
pub fn str_value(v: &Value<'_>, u: Unicode, out: &mut Vec<u8>) {
    match v {
        Value::Str(s) => out.extend_from_slice(s.text.as_bytes()),
        other => repr_value(other, u, out),
    }
}

/// `json.dumps(s)` for generalized UTF-8 text (ensure_ascii): a complete
/// JSON string token, ASCII only, lowercase `\uXXXX` escapes, characters
/// above U+FFFF as surrogate pairs.
pub fn json_string_wtf8(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // Printable ASCII other than `"` and `\` is copied as it is, in runs;
        // a run of anything else holds whole code points, as no byte of a
        // multi-byte sequence is ASCII.
        let (run, tail) = rest.split_at(plain_run(rest));
        if let Ok(run) = std::str::from_utf8(run) {
            out.push_str(run);
        }
        let other = tail.iter().position(|&b| is_plain(b)).unwrap_or(tail.len());
        let (escaped, tail) = tail.split_at(other);
        for cp in CodePoints::new(escaped) {
            push_escaped(&mut out, cp);
        }
        rest = tail;
    }
    out.push('"');
    out
}

/// `json.dumps`'s text for a code point it does not write as it is.
fn push_escaped(out: &mut String, cp: u32) {
    match cp {
        0x22 => out.push_str("\\\""),
        0x5C => out.push_str("\\\\"),
        0x0A => out.push_str("\\n"),
        0x0D => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0C => out.push_str("\\f"),
        0x10000.. => {
            let v = cp - 0x10000;
            push_u_escape(out, 0xD800 | (v >> 10));
            push_u_escape(out, 0xDC00 | (v & 0x3FF));
        }
        _ => push_u_escape(out, cp),
    }
}

/// The length of the run of plain bytes `s` starts with: eight bytes at a
/// time (a message is mostly plain), then byte by byte.
fn plain_run(s: &[u8]) -> usize {
    let mut offset = 0;
    for chunk in s.chunks_exact(8) {
        // Each test is exact when it finds nothing, so a word that passes
        // them all is plain throughout; and exact for its lowest flag, so
        // the first byte that is not plain is the lowest flagged.
        let x = word(chunk);
        let stops = bytes_equal(x, b'"')
            | bytes_equal(x, b'\\')
            | bytes_equal(x, 0x7F)
            | (x & HIGH)
            | controls(x);
        if stops != 0 {
            return offset + first_flagged(stops);
        }
        offset += 8;
    }
    let tail = &s[offset..];
    offset
        + tail
            .iter()
            .position(|&b| !is_plain(b))
            .unwrap_or(tail.len())
}

/// A byte `json.dumps` writes as it is.
fn is_plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7E) && b != b'"' && b != b'\\'
}

fn push_u_escape(out: &mut String, unit: u32) {
    out.push_str("\\u");
    for i in (0..4).rev() {
        out.push(char::from(HEX[((unit >> (4 * i)) & 0xF) as usize]));
    }
}

/// `json.dumps(s)` for a Rust string: a complete JSON string token, ASCII only.
pub fn json_string(s: &str) -> String {
    json_string_wtf8(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nova::json::parse;

    /// `json.dumps` one code point at a time, as a reference for the runs.
    fn json_string_by_code_point(s: &[u8]) -> String {
        let mut out = String::from("\"");
        for cp in CodePoints::new(s) {
            match u8::try_from(cp) {
                Ok(b) if is_plain(b) => out.push(char::from(b)),
                _ => push_escaped(&mut out, cp),
            }
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn json_string_copies_runs_as_one_code_point_at_a_time_would(
            cps in proptest::collection::vec(
                // Mostly printable ASCII, so that long plain runs occur.
                proptest::prop_oneof![
                    8 => 0x20u32..0x7F,
                    1 => 0u32..0x80,
                    1 => 0u32..0x110000,
                    1 => proptest::strategy::Just(0x22u32),
                    1 => proptest::strategy::Just(0x5Cu32),
                ],
                0..64,
            )
        ) {
            let mut bytes = Vec::new();
            for cp in cps {
                crate::nova::json::push_code_point(&mut bytes, cp);
            }
            proptest::prop_assert_eq!(json_string_wtf8(&bytes), json_string_by_code_point(&bytes));
        }
    }

    fn repr_of(json: &str) -> String {
        repr_in(Unicode::V14_0, json)
    }

    fn repr_in(u: Unicode, json: &str) -> String {
        let v = parse(json.as_bytes()).expect("valid json");
        let mut out = Vec::new();
        repr_value(&v, u, &mut out);
        String::from_utf8(out).expect("repr output has no lone surrogate")
    }

    fn str_of(json: &str) -> Vec<u8> {
        let v = parse(json.as_bytes()).expect("valid json");
        let mut out = Vec::new();
        str_value(&v, Unicode::V14_0, &mut out);
        out
    }

    fn float(f: f64) -> String {
        let mut out = Vec::new();
        repr_float(f, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_like_python() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-2.5, "-2.5"),
            (0.001234, "0.001234"),
            (123.456, "123.456"),
            (1e22, "1e+22"),
            (1.0e-10, "1e-10"),
            // Ties between two shortest candidates go to the even digit.
            (-1713676565829272.2, "-1713676565829272.2"),
            (30819914547316.062, "30819914547316.062"),
            (263154756531999.62, "263154756531999.62"),
            (9007199254740993.0, "9007199254740992.0"),
        ];
        for &(f, want) in cases {
            assert_eq!(float(f), want, "{f:e}");
        }
    }

    #[test]
    fn values_like_python() {
        assert_eq!(repr_of("null"), "None");
        assert_eq!(repr_of("true"), "True");
        assert_eq!(repr_of("false"), "False");
        assert_eq!(repr_of("-0"), "0");
        assert_eq!(repr_of("-12"), "-12");
        assert_eq!(repr_of("1E2"), "100.0");
        assert_eq!(repr_of("1e400"), "inf");
        assert_eq!(repr_of("-Infinity"), "-inf");
        assert_eq!(repr_of("NaN"), "nan");
        assert_eq!(repr_of("[]"), "[]");
        assert_eq!(repr_of("{}"), "{}");
        assert_eq!(repr_of(r#"["a", 1]"#), "['a', 1]");
        assert_eq!(repr_of(r#"{"a": null}"#), "{'a': None}");
        assert_eq!(
            repr_of(r#"{"b":[1.0,{"c":true}],"a":"x","b":2}"#),
            "{'b': 2, 'a': 'x'}"
        );
        assert_eq!(repr_of(r#"[[[]],{"k":[{}]}]"#), "[[[]], {'k': [{}]}]");
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(repr_of(r#""abc""#), "'abc'");
        assert_eq!(repr_of(r#""""#), "''");
        assert_eq!(repr_of(r#""it's""#), "\"it's\"");
        assert_eq!(repr_of(r#""say \"hi\"""#), "'say \"hi\"'");
        assert_eq!(repr_of(r#""it's \"x\"""#), "'it\\'s \"x\"'");
        assert_eq!(repr_of(r#""a\\b""#), "'a\\\\b'");
        assert_eq!(repr_of(r#""\t\n\r""#), "'\\t\\n\\r'");
        assert_eq!(repr_of(r#""\u0001\u001f\u007f""#), "'\\x01\\x1f\\x7f'");
        assert_eq!(repr_of(r#""\u0080\u00a0\u00ad""#), "'\\x80\\xa0\\xad'");
        assert_eq!(repr_of(r#""é€""#), "'é€'");
        assert_eq!(
            repr_of(r#""\u2028\u200b\u3000\ufeff""#),
            "'\\u2028\\u200b\\u3000\\ufeff'"
        );
        assert_eq!(repr_of(r#""\udfff\ud800""#), "'\\udfff\\ud800'");
        assert_eq!(repr_of(r#""\ud800\udfff""#), "'\\U000103ff'"); // a pair, unassigned
        assert_eq!(repr_of(r#""\ud83d\ude00""#), "'\u{1f600}'");
        assert_eq!(
            repr_of(r#""\udb40\udc01\udbff\udfff""#),
            "'\\U000e0001\\U0010ffff'"
        );
        assert_eq!(repr_of(r#""\ue000""#), "'\\ue000'");
        // Plain runs between escaped ones.
        assert_eq!(
            repr_of(r#""web 01\té\u0000x\\y\u2028""#),
            "'web 01\\té\\x00x\\\\y\\u2028'"
        );
        assert_eq!(repr_of(r#""\u0378""#), "'\\u0378'"); // unassigned
    }

    #[test]
    fn str_is_raw_for_strings() {
        assert_eq!(str_of(r#""a'b\n""#), b"a'b\n");
        assert_eq!(str_of(r#""\ud800""#), vec![0xED, 0xA0, 0x80]);
        assert_eq!(str_of("1.0"), b"1.0");
        assert_eq!(str_of(r#"["x"]"#), b"['x']");
    }

    #[test]
    fn json_dumps_strings() {
        assert_eq!(json_string("abc"), "\"abc\"");
        assert_eq!(json_string("a\"b\\c/"), r#""a\"b\\c/""#);
        assert_eq!(
            json_string("\u{8}\u{c}\n\r\t\u{0}\u{1f}\u{7f}"),
            r#""\b\f\n\r\t\u0000\u001f\u007f""#
        );
        assert_eq!(json_string("é\u{20ac}\u{fffd}"), r#""\u00e9\u20ac\ufffd""#);
        assert_eq!(json_string("\u{1f600}"), r#""\ud83d\ude00""#);
        assert_eq!(json_string("\u{10ffff}"), r#""\udbff\udfff""#);
        assert_eq!(json_string_wtf8(&[0xED, 0xA0, 0x80]), r#""\ud800""#);
    }

    #[test]
    fn escapes_follow_the_unicode_version() {
        // U+0ECE LAO YAMAKKAN and U+31350 (CJK Ext H) were assigned in 15.0:
        // Python 3.11 escapes them, 3.12 prints them.
        let s = r#""\u0ece\ud884\udf50""#;
        assert_eq!(repr_in(Unicode::V14_0, s), "'\\u0ece\\U00031350'");
        assert_eq!(repr_in(Unicode::V15_0, s), "'\u{0ece}\u{31350}'");
        // U+0870, new in 14.0: escaped by Python 3.10.
        assert_eq!(repr_in(Unicode::V13_0, r#""\u0870""#), "'\\u0870'");
        assert_eq!(repr_in(Unicode::V14_0, r#""\u0870""#), "'\u{0870}'");
    }
}
