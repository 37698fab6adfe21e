//! The guarded fields' rules: each property of `server` that nova-guard
//! judges (name, OS-DCF:diskConfig, accessIPv4, accessIPv6, description,
//! hostname, pinned_availability_zone), as the types of
//! `nova/api/validation/parameter_types.py` define it, with the jsonschema
//! keywords checked in the schemas' own key order: jsonschema reports the
//! first error it meets, so the order decides the message (e.g. a 300-space
//! name fails `format` before `maxLength` from 2025.2 on, and `maxLength`
//! first before it).

use std::net::Ipv6Addr;

use crate::nova::ipv6;
use crate::nova::json::{push_code_point, PyStr, Value};
use crate::nova::pyrepr::{repr_str, repr_value};
use crate::nova::unicode::{is_zs, Unicode};
use crate::nova::{Profile, Release, Rule};
use crate::swar::printable_ascii;

/// The schema of one property of `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// `name`: type string, format name, minLength 1, maxLength 255.
    Name,
    /// `name_with_leading_trailing_spaces` (legacy v2): same, other format.
    NameLegacy,
    /// `disk_config`: type string, enum AUTO/MANUAL.
    DiskConfig,
    /// `accessIPv4`: type string, format ipv4.
    Ipv4,
    /// `accessIPv6`: type string, format ipv6.
    Ipv6,
    /// `description`: type [string, null], pattern, minLength 0, maxLength 255.
    Description,
    /// `hostname` (2.90–2.93): type string, pattern, minLength 2, maxLength 63.
    HostnameLabel,
    /// `fqdn` (2.94+): type string, pattern, minLength 1, maxLength 255.
    HostnameFqdn,
    /// `name_or_none`: oneOf [{string, minLength 1, maxLength 255}, {null}].
    NameOrNone,
}

/// The first error of one property.
#[derive(Debug)]
pub(super) enum FieldError {
    /// A name format failed: Nova reports `InvalidName` with this reason.
    InvalidName(&'static str),
    /// A jsonschema keyword failed with this message (generalized UTF-8).
    Keyword { rule: Rule, message: Vec<u8> },
}

const NAME_REASON: &str = "printable characters. Can not start or end with whitespace.";
const NAME_LEGACY_REASON: &str = "printable characters with at least one non space character";
const HOSTNAME_PATTERN_REPR: &str = "'^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'";
const FQDN_PATTERN_REPR: &str = "'^[a-zA-Z0-9-._]*$'";

impl Field {
    /// Validate `v` against this property's schema as `p`'s Nova does; the
    /// first error in the schema's key order. A valid `accessIPv6` also
    /// yields its address.
    pub(super) fn check(self, v: &Value<'_>, p: Profile) -> Result<Option<Ipv6Addr>, FieldError> {
        match self {
            Field::Ipv6 => ipv6_field(v, p.unicode()).map(Some),
            _ => self.first_error(v, p).map_or(Ok(None), Err),
        }
    }

    fn first_error(self, v: &Value<'_>, p: Profile) -> Option<FieldError> {
        let u = p.unicode();
        match self {
            Field::Name | Field::NameLegacy => {
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string'"));
                };
                let format = || {
                    let (ok, reason) = if self == Field::Name {
                        (name_ok(s, u), NAME_REASON)
                    } else {
                        (name_legacy_ok(s, u), NAME_LEGACY_REASON)
                    };
                    (!ok).then_some(FieldError::InvalidName(reason))
                };
                ordered(p.release, format, || lengths(v, s, 1, 255, p))
            }
            Field::DiskConfig => {
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string'"));
                };
                if s.as_bytes() == b"AUTO" || s.as_bytes() == b"MANUAL" {
                    None
                } else {
                    Some(keyword(
                        v,
                        Rule::Enum,
                        u,
                        " is not one of ['AUTO', 'MANUAL']",
                    ))
                }
            }
            Field::Ipv4 => {
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string'"));
                };
                // A lone surrogate is no digit: the bytes decide alone.
                match ipv6::parse_ipv4(s.as_bytes()) {
                    Some(_) => None,
                    None => Some(keyword(v, Rule::Format, u, " is not a 'ipv4'")),
                }
            }
            Field::Ipv6 => ipv6_field(v, u).err(),
            Field::Description => {
                if *v == Value::Null {
                    return None;
                }
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string', 'null'"));
                };
                let pattern = || {
                    let t = dollar(s);
                    let printable = |cp| is_printable(u, cp);
                    (!printable_ascii(t) && !all_in(t, printable))
                        .then(|| pattern_error(v, u, &description_pattern_repr(u)))
                };
                ordered(p.release, pattern, || lengths(v, s, 0, 255, p))
            }
            Field::HostnameLabel => {
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string'"));
                };
                let pattern = || {
                    (!hostname_label_ok(s))
                        .then(|| pattern_error(v, u, HOSTNAME_PATTERN_REPR.as_bytes()))
                };
                ordered(p.release, pattern, || lengths(v, s, 2, 63, p))
            }
            Field::HostnameFqdn => {
                let Some(s) = string(v) else {
                    return Some(type_error(v, u, "'string'"));
                };
                let pattern = || {
                    (!all_in(dollar(s), is_fqdn_char))
                        .then(|| pattern_error(v, u, FQDN_PATTERN_REPR.as_bytes()))
                };
                ordered(p.release, pattern, || lengths(v, s, 1, 255, p))
            }
            Field::NameOrNone => {
                let ok = match v {
                    Value::Null => true,
                    Value::Str(s) => (1..=255).contains(&s.text.len()),
                    _ => false,
                };
                if ok {
                    None
                } else {
                    Some(keyword(
                        v,
                        Rule::OneOf,
                        u,
                        " is not valid under any of the given schemas",
                    ))
                }
            }
        }
    }
}

/// The first error of a string property between its format or pattern and
/// its lengths, in the release's key order (`type` is checked before both).
fn ordered(
    release: Release,
    format: impl FnOnce() -> Option<FieldError>,
    lengths: impl FnOnce() -> Option<FieldError>,
) -> Option<FieldError> {
    if release.lengths_first() {
        lengths().or_else(format)
    } else {
        format().or_else(lengths)
    }
}

/// `accessIPv6`: type string, format ipv6 (jsonschema: `ipaddress.IPv6Address`
/// without a scope id).
fn ipv6_field(v: &Value<'_>, u: Unicode) -> Result<Ipv6Addr, FieldError> {
    let Some(s) = string(v) else {
        return Err(type_error(v, u, "'string'"));
    };
    ipv6::parse_ipv6(s.as_bytes()).ok_or_else(|| keyword(v, Rule::Format, u, " is not a 'ipv6'"))
}

/// jsonschema's "string" type: a Python str.
fn string<'v, 'a>(v: &'v Value<'a>) -> Option<&'v PyStr<'a>> {
    match v {
        Value::Str(s) => Some(&s.text),
        _ => None,
    }
}

/// `{instance!r}{tail}`.
fn keyword(v: &Value<'_>, rule: Rule, u: Unicode, tail: &str) -> FieldError {
    // Room for a short value's repr, so that it is written without growing.
    let mut message = Vec::with_capacity(64 + tail.len());
    repr_value(v, u, &mut message);
    message.extend_from_slice(tail.as_bytes());
    FieldError::Keyword { rule, message }
}

/// `{instance!r} is not of type {types}`.
fn type_error(v: &Value<'_>, u: Unicode, types: &str) -> FieldError {
    keyword(v, Rule::Type, u, &format!(" is not of type {types}"))
}

/// `{instance!r} does not match {pattern!r}` (`pattern_repr` already quoted).
fn pattern_error(v: &Value<'_>, u: Unicode, pattern_repr: &[u8]) -> FieldError {
    let mut message = Vec::with_capacity(pattern_repr.len() + 64);
    repr_value(v, u, &mut message);
    message.extend_from_slice(b" does not match ");
    message.extend_from_slice(pattern_repr);
    FieldError::Keyword {
        rule: Rule::Pattern,
        message,
    }
}

/// minLength then maxLength, in code points (Python `len()`).
fn lengths(v: &Value<'_>, s: &PyStr<'_>, min: usize, max: usize, p: Profile) -> Option<FieldError> {
    let n = s.len();
    if n < min {
        // jsonschema >= 4.21 special-cases minLength 1.
        let tail = if min == 1 {
            p.release.non_empty_message()
        } else {
            " is too short"
        };
        return Some(keyword(v, Rule::MinLength, p.unicode(), tail));
    }
    if n > max {
        return Some(keyword(v, Rule::MaxLength, p.unicode(), " is too long"));
    }
    None
}

/// `repr()` of Nova's `valid_description_regex` for Unicode `u`, as a
/// pattern error quotes it: `^[…]*$`, the class written by
/// `_build_regex_range()` as each run of the printable class, `re.escape`d:
/// its first character, then `-` and its last when the run is longer.
pub(super) fn description_pattern_repr(u: Unicode) -> Vec<u8> {
    let mut regex = Vec::with_capacity(4096);
    regex.extend_from_slice(b"^[");
    for (lo, hi) in u.nova_printable_ranges() {
        re_escape(lo, &mut regex);
        if hi != lo {
            regex.push(b'-');
            re_escape(hi, &mut regex);
        }
    }
    regex.extend_from_slice(b"]*$");
    let mut out = Vec::with_capacity(regex.len() + 64);
    repr_str(&regex, u, &mut out);
    out
}

/// Python's `re.escape` (3.7 and later) of one character.
fn re_escape(cp: u32, out: &mut Vec<u8>) {
    const SPECIAL: &[u8] = b"()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c";
    if u8::try_from(cp).is_ok_and(|b| SPECIAL.contains(&b)) {
        out.push(b'\\');
    }
    push_code_point(out, cp);
}

/// What a `^…$` pattern applied with `re.search` must match in full: the
/// text, less one final `\n` (Python's `$` also matches before a final
/// newline). None of the classes used here holds `\n`, so a text ending in
/// `\n` can only match that way.
fn dollar<'s>(s: &'s PyStr<'_>) -> &'s [u8] {
    let b = s.as_bytes();
    b.strip_suffix(b"\n").unwrap_or(b)
}

fn all_in(text: &[u8], class: impl Fn(u32) -> bool) -> bool {
    crate::nova::json::CodePoints::new(text).all(class)
}

/// Nova's printable class, with the ASCII answer inline (the common case).
fn is_printable(u: Unicode, cp: u32) -> bool {
    if cp < 0x80 {
        (0x20..0x7F).contains(&cp)
    } else {
        u.is_nova_printable(cp)
    }
}

/// Category Zs, with the ASCII answer inline.
fn is_space(cp: u32) -> bool {
    if cp < 0x80 {
        cp == 0x20
    } else {
        is_zs(cp)
    }
}

fn is_fqdn_char(cp: u32) -> bool {
    // `[a-zA-Z0-9-._]`: after the range `0-9`, `-` is a literal.
    matches!(
        char::from_u32(cp),
        Some('a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '.' | '_')
    )
}

/// `^(?![X])[P]*(?<![X])$` where P is Nova's printable class and X its
/// complement within U+0000..U+FFFE plus the Zs characters: the text is
/// printable and neither starts nor ends with a space separator. The empty
/// string matches (so `""` fails minLength instead); `"\n"` does not (the
/// lookahead sees the newline).
fn name_ok(s: &PyStr<'_>, u: Unicode) -> bool {
    let t = dollar(s);
    if t.is_empty() {
        return s.is_empty();
    }
    if printable_ascii(t) {
        return t.first() != Some(&b' ') && t.last() != Some(&b' ');
    }
    let mut first = true;
    let mut last = 0;
    for cp in crate::nova::json::CodePoints::new(t) {
        if !is_printable(u, cp) || (first && is_space(cp)) {
            return false;
        }
        first = false;
        last = cp;
    }
    !is_space(last)
}

/// `^[P]*[N]+[P]*$|^[P]*[N][N P]+[N][P]*$` with N = printable and not Zs:
/// printable throughout, with at least one non-Zs character.
fn name_legacy_ok(s: &PyStr<'_>, u: Unicode) -> bool {
    let t = dollar(s);
    if printable_ascii(t) {
        return t.iter().any(|&b| b != b' ');
    }
    let mut any_non_space = false;
    for cp in crate::nova::json::CodePoints::new(t) {
        if !is_printable(u, cp) {
            return false;
        }
        any_non_space |= !is_space(cp);
    }
    any_non_space
}

/// `^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$`: at least two characters from
/// `[a-zA-Z0-9-]`, first and last alphanumeric.
fn hostname_label_ok(s: &PyStr<'_>) -> bool {
    let t = dollar(s);
    t.len() >= 2
        && t.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && t.first().is_some_and(u8::is_ascii_alphanumeric)
        && t.last().is_some_and(u8::is_ascii_alphanumeric)
}
