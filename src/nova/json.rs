//! A JSON reader with Python's `json.loads` semantics.
//!
//! Written by hand because no general-purpose JSON crate reads JSON the way
//! Nova does (`json.loads(body.decode('utf-8'))`, CPython 3.11 C scanner):
//! `NaN`, `Infinity` and `-Infinity` are values; duplicate keys are kept (a
//! Python dict keeps the first key's position and the last value); strings
//! are sequences of code points in which a `\ud800` escape stays a lone
//! surrogate; integers have arbitrary size but more than 4300 digits is a
//! `ValueError`. We also need the byte span of every string token, to
//! rewrite `server.accessIPv6` in place.
//!
//! Python's own limit on nesting is its recursion limit (~1000 minus the
//! frames already on the stack, so it depends on the server running Nova),
//! and hitting it is a `RecursionError`, which Nova turns into a 500. We
//! refuse anything nested deeper than [`MAX_DEPTH`] as malformed instead; the
//! reader is iterative, so no input can exhaust the stack.

use std::borrow::Cow;
use std::ops::Range;

use crate::swar::{bytes_equal, controls, first_flagged, word};

/// Deepest nesting of arrays and objects judged. CPython counts each level
/// against its recursion limit of 1000, shared with the Python frames of the
/// WSGI stack under `json.loads`, so no WSGI server lets Nova parse anything
/// deeper than this (about 900 levels under cheroot); everything Nova can
/// parse is judged, and deeper bodies, which Nova answers with a 500, are
/// malformed.
pub const MAX_DEPTH: usize = 1000;

/// CPython's default `sys.int_info.default_max_str_digits`: a longer integer
/// literal makes `json.loads` raise `ValueError`.
pub const MAX_INT_DIGITS: usize = 4300;

/// Why a body is not JSON for Python. Only the fact matters to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// A Python `str`: a sequence of code points, lone surrogates included.
///
/// Stored as generalized UTF-8 (surrogates encoded like any other BMP code
/// point, as three bytes), borrowed from the body when the JSON token holds
/// no escape. Because a `\uD8xx\uDCxx` escape pair is always joined, the
/// encoding of a given code point sequence is unique: comparing bytes
/// compares strings, and byte order is code point order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyStr<'a>(Cow<'a, [u8]>);

impl<'a> PyStr<'a> {
    /// The generalized UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text, when it holds no lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The code points.
    pub fn code_points(&self) -> CodePoints<'_> {
        CodePoints { bytes: &self.0 }
    }

    /// Python's `len()`: the number of code points.
    pub fn len(&self) -> usize {
        // Every code point has exactly one byte that is not 0b10xx_xxxx.
        self.0.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Iterator over the code points of generalized UTF-8 bytes.
#[derive(Debug, Clone)]
pub struct CodePoints<'b> {
    bytes: &'b [u8],
}

impl<'b> CodePoints<'b> {
    pub fn new(bytes: &'b [u8]) -> Self {
        CodePoints { bytes }
    }
}

impl Iterator for CodePoints<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (&b0, rest) = self.bytes.split_first()?;
        let (len, init) = match b0 {
            0x00..=0x7F => {
                self.bytes = rest;
                return Some(u32::from(b0));
            }
            0xC0..=0xDF => (2, u32::from(b0 & 0x1F)),
            0xE0..=0xEF => (3, u32::from(b0 & 0x0F)),
            _ => (4, u32::from(b0 & 0x07)),
        };
        // Well-formed by construction; a truncated tail just ends early.
        let tail = rest.get(..len - 1).unwrap_or(rest);
        let cp = tail
            .iter()
            .fold(init, |acc, &b| (acc << 6) | u32::from(b & 0x3F));
        self.bytes = rest.get(len - 1..).unwrap_or(&[]);
        Some(cp)
    }
}

/// Append `cp` to `out` as generalized UTF-8 (surrogates allowed).
pub fn push_code_point(out: &mut Vec<u8>, cp: u32) {
    // The `as u8` casts keep the low bits on purpose.
    match cp {
        0..=0x7F => out.push(cp as u8),
        0x80..=0x7FF => out.extend_from_slice(&[0xC0 | (cp >> 6) as u8, 0x80 | (cp & 0x3F) as u8]),
        0x800..=0xFFFF => out.extend_from_slice(&[
            0xE0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
        _ => out.extend_from_slice(&[
            0xF0 | ((cp >> 18) & 0x07) as u8,
            0x80 | ((cp >> 12) & 0x3F) as u8,
            0x80 | ((cp >> 6) & 0x3F) as u8,
            0x80 | (cp & 0x3F) as u8,
        ]),
    }
}

/// A decoded JSON value, as Python's `json` module builds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// `None`
    Null,
    Bool(bool),
    /// An `int`, as its literal text (JSON grammar: `-?(0|[1-9][0-9]*)`).
    Int(&'a str),
    Float(f64),
    Str(JStr<'a>),
    Array(Vec<Value<'a>>),
    /// Members in body order, duplicates included; see [`Object`].
    Object(Object<'a>),
}

/// A string value and where its token is in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JStr<'a> {
    pub text: PyStr<'a>,
    /// The whole token, quotes included.
    pub span: Range<usize>,
}

/// A JSON object, every member in body order (duplicate keys included).
///
/// As a Python dict it holds each distinct key once, at the position of its
/// first occurrence, with the value of its last occurrence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<'a> {
    pub members: Vec<(PyStr<'a>, Value<'a>)>,
}

impl<'a> Object<'a> {
    /// `dict.get(key)`: the value of the last occurrence.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// Whether the body repeats any key (then Python's view differs from
    /// the member list).
    fn has_duplicates(&self) -> bool {
        let m = &self.members;
        if m.len() <= 16 {
            return m
                .iter()
                .enumerate()
                .any(|(i, (k, _))| m[..i].iter().any(|(k2, _)| k2 == k));
        }
        let mut keys: Vec<&[u8]> = m.iter().map(|(k, _)| k.as_bytes()).collect();
        keys.sort_unstable();
        keys.windows(2).any(|w| w[0] == w[1])
    }

    /// The dict Python builds: `(key, value)` for each distinct key, in the
    /// order of first occurrence, each with its last value.
    pub fn dict_items(&self) -> Vec<(&PyStr<'a>, &Value<'a>)> {
        if !self.has_duplicates() {
            return self.members.iter().map(|(k, v)| (k, v)).collect();
        }
        // Group member indices by key; within a group, indices ascend.
        let mut idx: Vec<usize> = (0..self.members.len()).collect();
        idx.sort_by(|&a, &b| {
            self.members[a]
                .0
                .as_bytes()
                .cmp(self.members[b].0.as_bytes())
                .then(a.cmp(&b))
        });
        // (first index, last index) of each distinct key.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for &i in &idx {
            match groups.last_mut() {
                Some((first, last)) if self.members[*first].0 == self.members[i].0 => *last = i,
                _ => groups.push((i, i)),
            }
        }
        groups.sort_unstable_by_key(|&(first, _)| first);
        groups
            .into_iter()
            .map(|(first, last)| (&self.members[first].0, &self.members[last].1))
            .collect()
    }

    /// The distinct keys (first-occurrence order not kept: sorted by code
    /// point, as `sorted(set(keys))`).
    pub fn sorted_keys(&self) -> Vec<&PyStr<'a>> {
        let mut keys: Vec<&PyStr<'a>> = self.members.iter().map(|(k, _)| k).collect();
        keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        keys.dedup();
        keys
    }
}

/// `json.loads(body.decode('utf-8'))`, or [`Malformed`] wherever Python
/// raises `ValueError` (and for nesting deeper than [`MAX_DEPTH`]).
pub fn parse(body: &[u8]) -> Result<Value<'_>, Malformed> {
    // Invalid UTF-8 fails the decode; Rust and Python agree on what is
    // valid (no surrogates, no overlongs, nothing above U+10FFFF).
    let text = std::str::from_utf8(body).map_err(|_| Malformed)?;
    let mut p = Parser {
        src: text,
        b: body,
        pos: 0,
    };
    // A leading U+FEFF (BOM) is no value start, so it fails like Python's
    // explicit BOM check does.
    p.skip_ws();
    let v = p.value_tree()?;
    p.skip_ws();
    if p.pos != p.b.len() {
        return Err(Malformed); // "Extra data"
    }
    Ok(v)
}

/// Index of the first byte that ends the plain part of a string: `"`,
/// `\\` or a control character. Eight bytes at a time (strings are most of
/// a body), then byte by byte.
pub(crate) fn string_stop(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        // Exact for "none" and for the lowest flag: a clean word is skipped
        // whole, and the first stop byte is the lowest flagged one.
        let x = word(chunk);
        let stops = bytes_equal(x, b'"') | bytes_equal(x, b'\\') | controls(x);
        if stops != 0 {
            return Some(offset + first_flagged(stops));
        }
        offset += 8;
    }
    s.get(offset..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|i| offset + i)
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
}

/// A container being read.
enum Frame<'a> {
    Array(Vec<Value<'a>>),
    /// Members so far and the key whose value comes next.
    Object(Vec<(PyStr<'a>, Value<'a>)>, PyStr<'a>),
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Python's JSON whitespace: space, tab, newline, carriage return only.
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), Malformed> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    fn starts_with(&self, lit: &[u8]) -> bool {
        self.b
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(lit))
    }

    /// Read one value, containers included, without recursion.
    fn value_tree(&mut self) -> Result<Value<'a>, Malformed> {
        // The capacities a first push would give, without its slower path.
        let mut stack: Vec<Frame<'a>> = Vec::with_capacity(4);
        'value: loop {
            // Here: at the start of a value (whitespace already skipped).
            let mut value = match self.peek() {
                Some(b'{') => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(Malformed);
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        Value::Object(Object::default())
                    } else {
                        let key = self.key()?;
                        stack.push(Frame::Object(Vec::with_capacity(4), key));
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(Malformed);
                    }
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        Value::Array(Vec::new())
                    } else {
                        stack.push(Frame::Array(Vec::with_capacity(4)));
                        continue 'value;
                    }
                }
                _ => self.scalar()?,
            };
            // Attach the finished value to its container; close containers.
            loop {
                let Some(top) = stack.last_mut() else {
                    return Ok(value);
                };
                self.skip_ws();
                match top {
                    Frame::Array(items) => {
                        items.push(value);
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                continue 'value;
                            }
                            Some(b']') => {
                                self.pos += 1;
                                let Some(Frame::Array(items)) = stack.pop() else {
                                    return Err(Malformed);
                                };
                                value = Value::Array(items);
                            }
                            _ => return Err(Malformed),
                        }
                    }
                    Frame::Object(members, key) => {
                        let k = std::mem::replace(key, PyStr(Cow::Borrowed(&[])));
                        members.push((k, value));
                        match self.peek() {
                            Some(b',') => {
                                self.pos += 1;
                                self.skip_ws();
                                *key = self.key()?;
                                continue 'value;
                            }
                            Some(b'}') => {
                                self.pos += 1;
                                let Some(Frame::Object(members, _)) = stack.pop() else {
                                    return Err(Malformed);
                                };
                                value = Value::Object(Object { members });
                            }
                            _ => return Err(Malformed),
                        }
                    }
                }
            }
        }
    }

    /// `"key"`, whitespace, `:`, whitespace.
    fn key(&mut self) -> Result<PyStr<'a>, Malformed> {
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        let key = self.string()?.text;
        self.skip_ws();
        self.eat(b':')?;
        self.skip_ws();
        Ok(key)
    }

    fn scalar(&mut self) -> Result<Value<'a>, Malformed> {
        let literal = |p: &mut Self, lit: &[u8], v: Value<'a>| {
            if p.starts_with(lit) {
                p.pos += lit.len();
                Ok(v)
            } else {
                Err(Malformed)
            }
        };
        match self.peek() {
            Some(b'"') => Ok(Value::Str(self.string()?)),
            Some(b'n') => literal(self, b"null", Value::Null),
            Some(b't') => literal(self, b"true", Value::Bool(true)),
            Some(b'f') => literal(self, b"false", Value::Bool(false)),
            Some(b'N') => literal(self, b"NaN", Value::Float(f64::NAN)),
            Some(b'I') => literal(self, b"Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.starts_with(b"-Infinity") => {
                self.pos += b"-Infinity".len();
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            _ => self.number(),
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`; a `.` or exponent
    /// without digits is not part of the number (and then fails as extra
    /// data, as in Python).
    fn number(&mut self) -> Result<Value<'a>, Malformed> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let s = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - s
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(Malformed), // "Expecting value"
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') && self.b.get(self.pos + 1).is_some_and(|c| c.is_ascii_digit())
        {
            self.pos += 1;
            digits(self);
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let e_start = self.pos;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if digits(self) > 0 {
                is_float = true;
            } else {
                self.pos = e_start;
            }
        }
        let text = self.src.get(start..self.pos).ok_or(Malformed)?;
        if is_float {
            // Correctly rounded like Python's float(); overflow gives ±inf.
            text.parse::<f64>().map(Value::Float).map_err(|_| Malformed)
        } else {
            let n_digits = int_end - start - usize::from(text.starts_with('-'));
            if n_digits > MAX_INT_DIGITS {
                return Err(Malformed);
            }
            Ok(Value::Int(text))
        }
    }

    /// A string token starting at `"`.
    fn string(&mut self) -> Result<JStr<'a>, Malformed> {
        let start = self.pos;
        self.pos += 1;
        let content = self.pos;
        // Fast path: no escape, borrow the bytes.
        let rest = self.b.get(content..).unwrap_or(&[]);
        let stop = string_stop(rest).ok_or(Malformed)?;
        self.pos = content + stop;
        match rest.get(stop) {
            Some(b'"') => {
                let text = rest.get(..stop).ok_or(Malformed)?;
                self.pos += 1;
                return Ok(JStr {
                    text: PyStr(Cow::Borrowed(text)),
                    span: start..self.pos,
                });
            }
            Some(b'\\') => {}
            _ => return Err(Malformed), // "Invalid control character"
        }
        let mut buf: Vec<u8> = self.b.get(content..self.pos).ok_or(Malformed)?.to_vec();
        loop {
            match self.peek() {
                None => return Err(Malformed),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(JStr {
                        text: PyStr(Cow::Owned(buf)),
                        span: start..self.pos,
                    });
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or(Malformed)?;
                    self.pos += 1;
                    let c = match esc {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b'f' => 0x0C,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            // A high surrogate joins a directly following
                            // low-surrogate escape; otherwise both stay lone.
                            if (0xD800..0xDC00).contains(&cp) && self.starts_with(b"\\u") {
                                let save = self.pos;
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.pos = save;
                                }
                            }
                            push_code_point(&mut buf, cp);
                            continue;
                        }
                        _ => return Err(Malformed), // "Invalid \escape"
                    };
                    buf.push(c);
                }
                Some(c) if c < 0x20 => return Err(Malformed), // "Invalid control character"
                Some(c) => {
                    buf.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Four ASCII hex digits, either case.
    fn hex4(&mut self) -> Result<u32, Malformed> {
        let digits = self.b.get(self.pos..self.pos + 4).ok_or(Malformed)?;
        let mut v = 0u32;
        for &d in digits {
            v = (v << 4) | u32::from(super::hex_digit(d).ok_or(Malformed)?);
        }
        self.pos += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Value<'_>, Malformed> {
        parse(s.as_bytes())
    }

    fn cps(v: &Value<'_>) -> Vec<u32> {
        match v {
            Value::Str(s) => s.text.code_points().collect(),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(p("null"), Ok(Value::Null));
        assert_eq!(p(" true "), Ok(Value::Bool(true)));
        assert_eq!(p("\t\r\nfalse\n"), Ok(Value::Bool(false)));
        assert_eq!(p("0"), Ok(Value::Int("0")));
        assert_eq!(p("-0"), Ok(Value::Int("-0")));
        assert_eq!(p("123"), Ok(Value::Int("123")));
        assert_eq!(p("1E2"), Ok(Value::Float(100.0)));
        assert_eq!(p("1.5e-3"), Ok(Value::Float(0.0015)));
        assert_eq!(p("1e400"), Ok(Value::Float(f64::INFINITY)));
        assert_eq!(p("-1e400"), Ok(Value::Float(f64::NEG_INFINITY)));
        assert_eq!(p("Infinity"), Ok(Value::Float(f64::INFINITY)));
        assert_eq!(p("-Infinity"), Ok(Value::Float(f64::NEG_INFINITY)));
        assert!(matches!(p("NaN"), Ok(Value::Float(f)) if f.is_nan()));
        match p("-0.0") {
            Ok(Value::Float(f)) => assert!(f == 0.0 && f.is_sign_negative()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn python_rejects() {
        for bad in [
            "",
            " ",
            "\t\n",
            "nul",
            "True",
            "nan",
            "-NaN",
            "+1",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "-",
            "--1",
            "1 2",
            "[1,]",
            "[,1]",
            "{\"a\":1,}",
            "{'a':1}",
            "{\"a\"}",
            "{\"a\" 1}",
            "{1:2}",
            "[1",
            "{",
            "\"abc",
            "\"\\x41\"",
            "\"\\u12\"",
            "\"\\u12G4\"",
            "\"\\U0041\"",
            "\"a\tb\"",
            "\"a\nb\"",
            "\"\u{1f}\"",
            "\u{feff}{}",
            " \u{feff}1",
            "\u{a0}1",
            "\u{b}1",
            "\u{c}1",
            "[]]",
            "{}x",
            "null null",
            "-Infinityx",
            "infinity",
            "1.0e",
            "0x10",
        ] {
            assert_eq!(p(bad), Err(Malformed), "{bad:?}");
        }
        assert_eq!(parse(b"\"\xff\""), Err(Malformed));
        assert_eq!(parse(b"\"\xed\xa0\x80\""), Err(Malformed)); // encoded surrogate
        assert_eq!(parse(b"\"\xc0\xaf\""), Err(Malformed)); // overlong
        assert_eq!(parse(b"\xef\xbb\xbf{}"), Err(Malformed)); // BOM
    }

    #[test]
    fn del_and_non_ascii_are_fine_in_strings() {
        assert_eq!(
            cps(&p("\"\u{7f}\u{80}é\u{feff}\"").unwrap()),
            vec![0x7f, 0x80, 0xe9, 0xfeff]
        );
    }

    #[test]
    fn escapes_and_surrogates() {
        let v = p(r#""a\"\\\/\b\f\n\r\t\u00e9\u20AC""#).unwrap();
        assert_eq!(
            cps(&v),
            vec![0x61, 0x22, 0x5c, 0x2f, 0x08, 0x0c, 0x0a, 0x0d, 0x09, 0xe9, 0x20ac]
        );
        assert_eq!(cps(&p(r#""\ud83d\ude00""#).unwrap()), vec![0x1f600]);
        assert_eq!(cps(&p(r#""\uD83D\uDE00""#).unwrap()), vec![0x1f600]);
        assert_eq!(cps(&p(r#""\ud800""#).unwrap()), vec![0xd800]);
        assert_eq!(cps(&p(r#""\ud83d\u0041""#).unwrap()), vec![0xd83d, 0x41]);
        assert_eq!(cps(&p(r#""\ude00\ud83d""#).unwrap()), vec![0xde00, 0xd83d]);
        assert_eq!(
            cps(&p(r#""\ud83d\ud83d\ude00""#).unwrap()),
            vec![0xd83d, 0x1f600]
        );
        assert_eq!(cps(&p(r#""\ud83dx""#).unwrap()), vec![0xd83d, 0x78]);
        assert_eq!(p(r#""\ud83d\u00""#), Err(Malformed));
        let lone = p(r#""\ud800""#).unwrap();
        let Value::Str(s) = &lone else { panic!() };
        assert_eq!(s.text.as_str(), None);
        assert_eq!(s.text.len(), 1);
    }

    #[test]
    fn string_spans() {
        let body = r#"{ "a" : "x\u0041" , "b":"é"}"#;
        let Ok(Value::Object(o)) = p(body) else {
            panic!()
        };
        let Some(Value::Str(a)) = o.get("a") else {
            panic!()
        };
        assert_eq!(&body[a.span.clone()], r#""x\u0041""#);
        assert_eq!(a.text.as_str(), Some("xA"));
        let Some(Value::Str(b)) = o.get("b") else {
            panic!()
        };
        assert_eq!(&body[b.span.clone()], "\"é\"");
    }

    #[test]
    fn duplicate_keys() {
        let body = r#"{"a":1,"b":2,"a":"last"}"#;
        let Ok(Value::Object(o)) = p(body) else {
            panic!()
        };
        let Some(Value::Str(a)) = o.get("a") else {
            panic!()
        };
        assert_eq!(&body[a.span.clone()], "\"last\"");
        let items: Vec<_> = o
            .dict_items()
            .into_iter()
            .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
            .collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, "a");
        assert!(matches!(&items[0].1, Value::Str(s) if s.text.as_str() == Some("last")));
        assert_eq!(items[1], ("b".to_owned(), Value::Int("2")));
        // An escaped spelling is the same key.
        let Ok(Value::Object(o)) = p(r#"{"a":1,"\u0061":2}"#) else {
            panic!()
        };
        assert_eq!(o.get("a"), Some(&Value::Int("2")));
        assert_eq!(o.dict_items().len(), 1);
        // Many keys take the sorting path.
        let mut big = String::from("{");
        for i in 0..40 {
            big.push_str(&format!("\"k{}\":{},", i % 25, i));
        }
        big.push_str("\"z\":0}");
        let Ok(Value::Object(o)) = p(&big) else {
            panic!()
        };
        let items = o.dict_items();
        assert_eq!(items.len(), 26);
        assert_eq!(items[0].0.as_str(), Some("k0"));
        assert_eq!(items[0].1, &Value::Int("25"));
        assert_eq!(items[24].1, &Value::Int("24"));
        assert_eq!(items[25].0.as_str(), Some("z"));
    }

    #[test]
    fn int_digit_limit() {
        let ok = "1".repeat(MAX_INT_DIGITS);
        assert!(p(&ok).is_ok());
        assert!(p(&format!("-{ok}")).is_ok());
        assert_eq!(p(&format!("{ok}1")), Err(Malformed));
        assert_eq!(p(&format!("-{ok}1")), Err(Malformed));
        // Floats have no such limit.
        assert!(p(&format!("{ok}1.0")).is_ok());
        assert!(p(&format!("{ok}1e0")).is_ok());
    }

    #[test]
    fn nesting_limit_without_stack_overflow() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(p(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(p(&deep), Err(Malformed));
        let mut objs = String::new();
        for _ in 0..MAX_DEPTH + 1 {
            objs.push_str("{\"a\":");
        }
        objs.push('1');
        objs.push_str(&"}".repeat(MAX_DEPTH + 1));
        assert_eq!(p(&objs), Err(Malformed));
        assert_eq!(p(&"[".repeat(100_000)), Err(Malformed));
        assert_eq!(p(&"{\"a\":".repeat(30_000)), Err(Malformed));
    }

    #[test]
    fn string_stop_finds_the_first_stop_byte() {
        let naive = |s: &[u8]| s.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut buf = vec![b'a'; 40];
        assert_eq!(string_stop(&buf), None);
        for i in 0..40 {
            for stop in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                buf[i] = stop;
                assert_eq!(string_stop(&buf), Some(i));
                assert_eq!(string_stop(&buf), naive(&buf));
                buf[i] = b'a';
            }
        }
        // Bytes just outside the stop set never stop the scan.
        let others: Vec<u8> = (0u8..=255).filter(|c| naive(&[*c]).is_none()).collect();
        assert_eq!(string_stop(&others), None);
        for w in 0..others.len() {
            assert_eq!(string_stop(&others[w..]), None);
        }
    }

    #[test]
    fn code_points_roundtrip() {
        for cp in [
            0u32, 0x7f, 0x80, 0x7ff, 0x800, 0xd800, 0xdfff, 0xfffe, 0x10000, 0x10ffff,
        ] {
            let mut b = Vec::new();
            push_code_point(&mut b, cp);
            assert_eq!(CodePoints::new(&b).collect::<Vec<_>>(), vec![cp]);
            if char::from_u32(cp).is_some() {
                assert_eq!(
                    std::str::from_utf8(&b).ok().and_then(|s| s.chars().next()),
                    char::from_u32(cp)
                );
            }
        }
    }
}
