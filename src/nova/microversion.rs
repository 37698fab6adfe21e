//! Microversion headers as Nova (microversion-parse) reads them.
//!
//! Nova's `Request.set_api_version_request` calls
//! `microversion_parse.get_version(headers, 'compute',
//! legacy_headers=['X-OpenStack-Nova-API-Version'])`, then checks the string
//! with `APIVersionRequest`'s regex and the [2.1, max] range. Header values
//! reach Nova as WSGI strings, i.e. decoded as Latin-1 (PEP 3333): one
//! character per byte, so the raw bytes are read here, each as the character
//! Nova sees.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    pub major: u16,
    pub minor: u16,
}

impl Microversion {
    pub const MIN: Microversion = Microversion { major: 2, minor: 1 };
    pub const fn new(major: u16, minor: u16) -> Self {
        Microversion { major, minor }
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A configuration string that is not `X.Y` as Nova writes versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMicroversionError(String);

impl fmt::Display for ParseMicroversionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid microversion {:?}: expected MAJOR.MINOR such as 2.104",
            self.0
        )
    }
}

impl std::error::Error for ParseMicroversionError {}

impl FromStr for Microversion {
    type Err = ParseMicroversionError;

    /// Accepts what Nova's version regex accepts (`2.104`, `3.0`; no
    /// leading zeros, no sign, no spaces), as long as it fits in `u16`s.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The regex's tolerance of a final newline is for headers, not config.
        match parse_version(s.as_bytes()) {
            Ok(v) if !s.ends_with('\n') => Ok(v),
            _ => Err(ParseMicroversionError(s.to_owned())),
        }
    }
}

/// Why a request's version is left for Nova to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionError {
    /// Nova answers 400.
    Malformed,
    /// Nova answers 406 (or, above our configured maximum, may accept it).
    OutOfRange,
}

/// The version Nova would use. `standard` holds every `OpenStack-API-Version`
/// value, `legacy` every `X-OpenStack-Nova-API-Version` value, each list in
/// the order received, as raw header bytes. No header → 2.1; `latest` → `max`.
///
/// A version too large for `u16` is reported as `OutOfRange`: it is above any
/// maximum Nova has, and with 4300 or more digits Python's `int()` fails and
/// Nova answers 500; either way Nova answers, not us.
pub fn requested(
    standard: &[&[u8]],
    legacy: &[&[u8]],
    max: Microversion,
) -> Result<Microversion, VersionError> {
    let Some(text) = standard_version(standard).or_else(|| legacy_version(legacy)) else {
        return Ok(Microversion::MIN);
    };
    if text == b"latest" {
        return Ok(max);
    }
    let v = parse_version(text)?;
    if v < Microversion::MIN || v > max {
        return Err(VersionError::OutOfRange);
    }
    Ok(v)
}

/// Python's `str.isspace()`, which `str.split()` and `str.strip()` use, on
/// the Latin-1 character a header byte is to Nova.
fn py_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ' | 0x85 | 0xa0)
}

/// `str.strip()`.
fn strip(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !py_space(b)).unwrap_or(s.len());
    let s = s.get(start..).unwrap_or_default();
    let end = s.iter().rposition(|&b| !py_space(b)).map_or(0, |e| e + 1);
    s.get(..end).unwrap_or_default()
}

fn comma_elements(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.rsplit(|&b| b == b',')
}

/// `check_standard_header`: the right-most comma element of the folded
/// header whose first word is `compute` (any case) and that has a second
/// word; `None` when there is none.
fn standard_version<'a>(lines: &[&'a [u8]]) -> Option<&'a [u8]> {
    // Nearly every client sends one line `compute X.Y`: with no comma and
    // no other space, the walk below would find just what follows the space.
    if let [line] = lines {
        if let Some(version) = line.strip_prefix(b"compute ") {
            if !version.is_empty() && !version.iter().any(|&b| b == b',' || py_space(b)) {
                return Some(version);
            }
        }
    }
    // Folding lines with ',' and splitting on ',' again visits the same
    // elements, so walk lines and elements from the right.
    lines
        .iter()
        .rev()
        .flat_map(|line| comma_elements(line))
        .find_map(|element| {
            // `element.strip().split(None, 1)` must give exactly two words.
            let element = strip(element);
            let (service, rest) = element.split_at(element.iter().position(|&b| py_space(b))?);
            // Only ASCII letters lowercase to "compute" in Python.
            service
                .eq_ignore_ascii_case(b"compute")
                .then(|| strip(rest))
        })
}

/// `check_legacy_headers`: the last comma element, stripped (possibly empty,
/// which Nova then refuses as malformed); `None` when the header is absent.
fn legacy_version<'a>(lines: &[&'a [u8]]) -> Option<&'a [u8]> {
    comma_elements(lines.last()?).next().map(strip)
}

/// `APIVersionRequest`: `re.match(r"^([1-9]\d*)\.([1-9]\d*|0)$", s)`.
///
/// `\d` is any Unicode decimal digit, but a Latin-1 string's only decimal
/// digits are ASCII ones. `$` also matches before one final newline.
fn parse_version(s: &[u8]) -> Result<Microversion, VersionError> {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    let dot = s
        .iter()
        .position(|&b| b == b'.')
        .ok_or(VersionError::Malformed)?;
    let (major, dot_minor) = s.split_at(dot);
    let minor = dot_minor.get(1..).unwrap_or_default();
    let leading = |t: &[u8]| t.first().is_some_and(|b| (b'1'..=b'9').contains(b));
    let digits = |t: &[u8]| t.iter().all(u8::is_ascii_digit);
    let well_formed =
        leading(major) && (minor == b"0" || leading(minor)) && digits(major) && digits(minor);
    if !well_formed {
        return Err(VersionError::Malformed);
    }
    // Well-formed; too large for u16 means above any maximum.
    let number = |t: &[u8]| {
        t.iter().try_fold(0u16, |n, &d| {
            n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
        })
    };
    match (number(major), number(minor)) {
        (Some(major), Some(minor)) => Ok(Microversion::new(major, minor)),
        _ => Err(VersionError::OutOfRange),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: Microversion = Microversion::new(2, 104);

    fn v(major: u16, minor: u16) -> Result<Microversion, VersionError> {
        Ok(Microversion::new(major, minor))
    }

    /// Header bytes for text written as Nova reads it: a character up to
    /// U+00FF is that byte; any other is sent as its UTF-8 bytes.
    fn latin1(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for c in s.chars() {
            match u8::try_from(u32::from(c)) {
                Ok(b) => out.push(b),
                Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out
    }

    fn req(
        standard: &[&str],
        legacy: &[&str],
        max: Microversion,
    ) -> Result<Microversion, VersionError> {
        let standard: Vec<Vec<u8>> = standard.iter().map(|s| latin1(s)).collect();
        let legacy: Vec<Vec<u8>> = legacy.iter().map(|s| latin1(s)).collect();
        let standard: Vec<&[u8]> = standard.iter().map(Vec::as_slice).collect();
        let legacy: Vec<&[u8]> = legacy.iter().map(Vec::as_slice).collect();
        requested(&standard, &legacy, max)
    }

    fn std_only(values: &[&str]) -> Result<Microversion, VersionError> {
        req(values, &[], MAX)
    }

    fn legacy_only(values: &[&str]) -> Result<Microversion, VersionError> {
        req(&[], values, MAX)
    }

    #[test]
    fn no_header_is_2_1() {
        assert_eq!(req(&[], &[], MAX), v(2, 1));
    }

    #[test]
    fn standard_header() {
        assert_eq!(std_only(&["compute 2.50"]), v(2, 50));
        assert_eq!(std_only(&["compute 2.1"]), v(2, 1));
        assert_eq!(std_only(&["compute 2.104"]), v(2, 104));
        // Service name is case-insensitive.
        assert_eq!(std_only(&["COMPUTE 2.3"]), v(2, 3));
        assert_eq!(std_only(&["Compute 2.3"]), v(2, 3));
        // Surrounding and inner whitespace runs.
        assert_eq!(std_only(&["  compute   2.7  "]), v(2, 7));
        assert_eq!(std_only(&["compute\t2.7"]), v(2, 7));
        // Python's whitespace includes U+001C..U+001F, U+0085 and NBSP.
        assert_eq!(std_only(&["compute\u{1f}2.7"]), v(2, 7));
        assert_eq!(std_only(&["compute\u{a0}2.7\u{85}"]), v(2, 7));
    }

    #[test]
    fn rightmost_compute_entry_wins() {
        assert_eq!(std_only(&["compute 2.5, compute 2.6"]), v(2, 6));
        assert_eq!(std_only(&["compute 2.5,placement 1.2"]), v(2, 5));
        assert_eq!(
            std_only(&["placement 1.2, compute 2.9, identity 3.0"]),
            v(2, 9)
        );
        // Several header lines are folded with ',' in the order received.
        assert_eq!(std_only(&["compute 2.5", "compute 2.6"]), v(2, 6));
        assert_eq!(std_only(&["compute 2.5", "placement 1.2"]), v(2, 5));
        // Elements that are not "service version" are skipped.
        assert_eq!(std_only(&["compute 2.5, compute", "", " ,"]), v(2, 5));
        // The right-most compute entry is used even if it is bad.
        assert_eq!(
            std_only(&["compute 2.5, compute 2.x"]),
            Err(VersionError::Malformed)
        );
    }

    #[test]
    fn standard_without_compute_falls_back_to_legacy() {
        assert_eq!(req(&["placement 1.2"], &["2.30"], MAX), v(2, 30));
        assert_eq!(req(&["compute"], &["2.30"], MAX), v(2, 30));
        assert_eq!(req(&[""], &["2.30"], MAX), v(2, 30));
        assert_eq!(req(&["placement 1.2"], &[], MAX), v(2, 1));
        // A compute entry in the standard header beats the legacy header.
        assert_eq!(req(&["compute 2.40"], &["2.30"], MAX), v(2, 40));
    }

    #[test]
    fn legacy_header() {
        assert_eq!(legacy_only(&["2.30"]), v(2, 30));
        assert_eq!(legacy_only(&["  2.30 "]), v(2, 30));
        // Last comma element, stripped.
        assert_eq!(legacy_only(&["2.5, 2.6"]), v(2, 6));
        assert_eq!(legacy_only(&["2.5", "2.6"]), v(2, 6));
        assert_eq!(legacy_only(&["2.x, 2.6"]), v(2, 6));
        // An empty last element is a malformed version, not "no header".
        assert_eq!(legacy_only(&[""]), Err(VersionError::Malformed));
        assert_eq!(legacy_only(&["2.5,"]), Err(VersionError::Malformed));
        assert_eq!(legacy_only(&["2.5", ""]), Err(VersionError::Malformed));
        // No service name in the legacy header.
        assert_eq!(legacy_only(&["compute 2.5"]), Err(VersionError::Malformed));
        assert_eq!(legacy_only(&["latest"]), Ok(MAX));
    }

    #[test]
    fn latest_is_the_maximum() {
        assert_eq!(std_only(&["compute latest"]), Ok(MAX));
        assert_eq!(
            req(&["compute latest"], &[], Microversion::new(2, 96)),
            v(2, 96)
        );
        // Exactly "latest", lowercase.
        assert_eq!(std_only(&["compute LATEST"]), Err(VersionError::Malformed));
        assert_eq!(std_only(&["compute Latest"]), Err(VersionError::Malformed));
        assert_eq!(std_only(&["compute latest2"]), Err(VersionError::Malformed));
    }

    #[test]
    fn malformed() {
        for s in [
            "compute 2",
            "compute 2.",
            "compute .1",
            "compute 2.01",
            "compute 02.1",
            "compute 0.1",
            "compute 00.0",
            "compute 2.1.1",
            "compute 2.1 beta",
            "compute v2.1",
            "compute 2,1",
            "compute +2.1",
            "compute 2.-1",
            "compute 2.1a",
            "compute 2._1",
            "compute 2.1_0",
            // Python's \d matches these, but as header bytes they reach
            // Nova Latin-1 decoded, i.e. as non-digits.
            "compute \u{0662}.1",         // Arabic-Indic digit two
            "compute 2.\u{0661}\u{0660}", // Arabic-Indic digits
            "compute \u{b2}.1",           // superscript two
        ] {
            assert_eq!(std_only(&[s]), Err(VersionError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn out_of_range() {
        for s in [
            "compute 2.0",
            "compute 1.0",
            "compute 1.99",
            "compute 2.105",
            "compute 3.0",
            "compute 2.65535",
            "compute 2.65536",
            "compute 65536.0",
            "compute 99999999999999999999999.1",
            "compute 2.99999999999999999999999",
        ] {
            assert_eq!(std_only(&[s]), Err(VersionError::OutOfRange), "{s:?}");
        }
        let huge = format!("compute 2.{}", "9".repeat(5000));
        assert_eq!(std_only(&[&huge]), Err(VersionError::OutOfRange));
        // Within range with a lower maximum configured.
        assert_eq!(
            req(&["compute 2.100"], &[], Microversion::new(2, 96)),
            Err(VersionError::OutOfRange)
        );
    }

    #[test]
    fn python_dollar_allows_one_final_newline() {
        // Header values cannot carry a newline, but the regex would allow one.
        assert_eq!(parse_version(b"2.5\n"), v(2, 5));
        assert_eq!(parse_version(b"2.5\n\n"), Err(VersionError::Malformed));
    }

    #[test]
    fn bytes_are_read_as_latin1() {
        assert_eq!(requested(&[b"compute\xa02.5"], &[], MAX), v(2, 5));
        assert_eq!(requested(&[b"compute\x852.5\xa0"], &[], MAX), v(2, 5));
        // UTF-8 for U+3000 is three Latin-1 characters, none of them spaces
        // to Python, so there is no service/version split.
        let t = "compute\u{3000}2.5".as_bytes();
        assert_eq!(requested(&[t], &[], MAX), v(2, 1));
    }

    #[test]
    fn from_str_for_config() {
        assert_eq!(
            "2.104".parse::<Microversion>(),
            Ok(Microversion::new(2, 104))
        );
        assert_eq!("2.1".parse::<Microversion>(), Ok(Microversion::MIN));
        assert_eq!("3.0".parse::<Microversion>(), Ok(Microversion::new(3, 0)));
        for s in [
            "", "2", "2.", "latest", "2.01", " 2.1", "2.1 ", "2.1\n", "2.70000", "v2.1",
        ] {
            assert!(s.parse::<Microversion>().is_err(), "{s:?}");
        }
        let err = "x".parse::<Microversion>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid microversion \"x\": expected MAJOR.MINOR such as 2.104")
        );
        assert_eq!(Microversion::new(2, 104).to_string(), "2.104");
    }

    /// The reading as written first, on Latin-1 decoded text, one
    /// character at a time: the byte reading must agree with it.
    mod on_text {
        use super::super::{Microversion, VersionError};

        fn header_text(value: &[u8]) -> String {
            value.iter().map(|&b| char::from(b)).collect()
        }

        fn py_space(c: char) -> bool {
            c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
        }

        fn parse_version(s: &str) -> Result<Microversion, VersionError> {
            let s = s.strip_suffix('\n').unwrap_or(s);
            let (major, minor) = s.split_once('.').ok_or(VersionError::Malformed)?;
            let major_ok = major.starts_with(|c: char| ('1'..='9').contains(&c));
            let minor_ok = minor == "0" || minor.starts_with(|c: char| ('1'..='9').contains(&c));
            let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
            if !(major_ok && minor_ok && digits(major) && digits(minor)) {
                return Err(VersionError::Malformed);
            }
            match (major.parse::<u16>(), minor.parse::<u16>()) {
                (Ok(major), Ok(minor)) => Ok(Microversion::new(major, minor)),
                _ => Err(VersionError::OutOfRange),
            }
        }

        pub fn requested(
            standard: &[Vec<u8>],
            legacy: &[Vec<u8>],
            max: Microversion,
        ) -> Result<Microversion, VersionError> {
            let standard: Vec<String> = standard.iter().map(|v| header_text(v)).collect();
            let legacy: Vec<String> = legacy.iter().map(|v| header_text(v)).collect();
            let from_standard = standard
                .iter()
                .rev()
                .flat_map(|l| l.rsplit(','))
                .find_map(|e| {
                    let e = e.trim_matches(py_space);
                    let (service, rest) = e.split_once(py_space)?;
                    service
                        .eq_ignore_ascii_case("compute")
                        .then(|| rest.trim_matches(py_space))
                });
            let from_legacy = || {
                legacy
                    .last()
                    .and_then(|l| l.rsplit(',').next())
                    .map(|e| e.trim_matches(py_space))
            };
            let Some(text) = from_standard.or_else(from_legacy) else {
                return Ok(Microversion::MIN);
            };
            if text == "latest" {
                return Ok(max);
            }
            let v = parse_version(text)?;
            if v < Microversion::MIN || v > max {
                return Err(VersionError::OutOfRange);
            }
            Ok(v)
        }
    }

    const PIECES: &[&[u8]] = &[
        b"compute", b"COMPUTE", b"latest", b" ", b"\t", b"\x1c", b"\x1f", b"\x85", b"\xa0",
        b"\xc2", b"\xff", b",", b".", b"\n", b"0", b"1", b"2", b"09", b"104", b"65536", b"x",
    ];

    fn header_value() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(PIECES), 0..8).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn never_panics(
            standard in prop::collection::vec("\\PC{0,20}", 0..3),
            legacy in prop::collection::vec("\\PC{0,20}", 0..3),
        ) {
            let s: Vec<&str> = standard.iter().map(String::as_str).collect();
            let l: Vec<&str> = legacy.iter().map(String::as_str).collect();
            if let Ok(v) = req(&s, &l, MAX) {
                prop_assert!(Microversion::MIN <= v && v <= MAX);
            }
        }

        #[test]
        fn bytes_read_as_latin1_text_would_be(
            standard in prop::collection::vec(header_value(), 0..3),
            legacy in prop::collection::vec(header_value(), 0..3),
            max_minor in 1u16..200,
        ) {
            let max = Microversion::new(2, max_minor);
            let s: Vec<&[u8]> = standard.iter().map(Vec::as_slice).collect();
            let l: Vec<&[u8]> = legacy.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(requested(&s, &l, max), on_text::requested(&standard, &legacy, max));
        }

        #[test]
        fn in_range_versions_round_trip(minor in 1u16..=104) {
            let text = format!("compute 2.{minor}");
            prop_assert_eq!(std_only(&[&text]), v(2, minor));
        }
    }
}
