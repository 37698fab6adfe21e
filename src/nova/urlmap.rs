//! Which API Nova's `urlmap` gives a request whose path names none.
//!
//! `nova/api/openstack/urlmap.py` picks the API from the path (`/v2.1/...`,
//! `/v2/...`); when the path names none (`/servers/{id}`), from a `version`
//! parameter of `Content-Type`, else of `Accept`: `version=2.1/x` sends the
//! unchanged path to the v2.1 API, `version=2/x` to the legacy one. Header
//! values reach it as Latin-1 text, so everything here works on bytes.

use super::route::Mode;

/// The APIs a request may be sent to by its headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Apis {
    pub v21: bool,
    pub legacy_v2: bool,
}

impl Apis {
    fn add(&mut self, mode: Option<Mode>) {
        match mode {
            Some(Mode::V21) => self.v21 = true,
            Some(Mode::LegacyV2) => self.legacy_v2 = true,
            None => {}
        }
    }

    /// The API to judge a body for. When an `Accept` could send it to either
    /// (two `version` parameters), the legacy API: nova-guard's legacy mode
    /// refuses what its v2.1 mode refuses at 2.1 and more.
    pub fn mode(self) -> Option<Mode> {
        if self.legacy_v2 {
            Some(Mode::LegacyV2)
        } else if self.v21 {
            Some(Mode::V21)
        } else {
            None
        }
    }
}

/// `URLMap._match('/v' + version)`: the mounts `/v2.1/+` and `/v2/+` want at
/// least one character after their `/`; `/v2.1` and `/v2` are the version
/// documents, not an API.
pub fn version_api(version: &[u8]) -> Option<Mode> {
    if version.starts_with(b"2.1/") && version.len() > 4 {
        Some(Mode::V21)
    } else if version.starts_with(b"2/") && version.len() > 2 {
        Some(Mode::LegacyV2)
    } else {
        None
    }
}

/// `_content_type_strategy`: the last `version` parameter of `Content-Type`.
pub fn content_type_api(value: &[u8]) -> Option<Mode> {
    version_api(version_param(value)?)
}

/// `_accept_strategy`, over-approximated: every API a `version` parameter
/// of any item names, whatever its media range and quality (Nova takes the
/// best match's; any of them may be it).
pub fn accept_apis(value: &[u8], apis: &mut Apis) {
    // Most values name no version and are not parsed: only text with
    // `version` in it, or a backslash, which `parse_http_list` drops inside
    // quotes (`"ver\sion"` is `version` to Nova).
    if memchr::memmem::find(value, b"version").is_none() && memchr::memchr(b'\\', value).is_none() {
        return;
    }
    for item in http_list(value) {
        // A whole item in quotes is unquoted twice.
        if let Some(version) = version_param(unquote(unquote(strip(&item)))) {
            apis.add(version_api(version));
        }
    }
}

/// `parse_options_header(value)[1]['version']`, unquoted: the last one.
/// `None` too for a `version` without `=`, which makes Nova fail (500).
fn version_param(value: &[u8]) -> Option<&[u8]> {
    let mut version = None;
    for (key, value) in options(value).skip(1) {
        if unquote(key) == b"version" {
            version = Some(value);
        }
    }
    version?.map(unquote)
}

/// Python's `str.isspace()` for a Latin-1 character (what `\s` matches in
/// a `str` pattern).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ' | 0x85 | 0xa0)
}

/// Where the run of `\s` at `from` ends.
fn skip_spaces(value: &[u8], from: usize) -> usize {
    from + value
        .get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| is_space(**b)).count())
}

/// `str.strip()`.
fn strip(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_space(*b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_space(*b))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// `unquote_header_value`: one pair of surrounding quotes removed.
fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"'] => b"",
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// `urllib.request.parse_http_list`: split at commas outside quotes; inside
/// quotes a backslash escapes the next character and is dropped.
fn http_list(s: &[u8]) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut part = Vec::new();
    let (mut escape, mut quote) = (false, false);
    for &c in s {
        if escape {
            part.push(c);
            escape = false;
        } else if quote {
            if c == b'\\' {
                escape = true;
                continue;
            }
            if c == b'"' {
                quote = false;
            }
            part.push(c);
        } else if c == b',' {
            items.push(std::mem::take(&mut part));
        } else {
            if c == b'"' {
                quote = true;
            }
            part.push(c);
        }
    }
    if !part.is_empty() {
        items.push(part);
    }
    items
}

/// `parse_options_header`'s pieces of `';' + value`: the matches of
/// `;\s*([^\s;=]+|"…")\s*(?:=\s*([^;]+|"…"))?\s*`, found as `finditer` finds
/// them. The first is the media type. (The quoted-string alternatives never
/// win: a `"` also starts the first alternative, which always matches.)
fn options(value: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    // The leading `;` the Python code adds stands at position -1.
    let mut at = 0usize;
    let mut first = true;
    std::iter::from_fn(move || loop {
        // The next `;`: the virtual one first, then those of `value`.
        let semi_end = if first {
            first = false;
            0
        } else {
            let next = value.get(at..)?.iter().position(|b| *b == b';')?;
            at + next + 1
        };
        let key_start = skip_spaces(value, semi_end);
        let mut i = key_start;
        while value
            .get(i)
            .is_some_and(|b| !is_space(*b) && *b != b';' && *b != b'=')
        {
            i += 1;
        }
        if i == key_start {
            // No match at this `;`: search on from the next character.
            at = semi_end;
            continue;
        }
        let key = &value[key_start..i];
        let mut j = skip_spaces(value, i);
        let mut val = None;
        if value.get(j) == Some(&b'=') {
            let ws_start = j + 1;
            let k = skip_spaces(value, ws_start);
            let run = value[k..]
                .iter()
                .position(|b| *b == b';')
                .unwrap_or(value.len() - k);
            if run > 0 {
                val = Some(&value[k..k + run]);
                j = k + run;
            } else if k > ws_start {
                // `[^;]+` fails after the spaces: the regex gives back the
                // last space, which then is the value.
                val = Some(&value[k - 1..k]);
                j = k;
            }
        }
        // The trailing `\s*` (nothing it takes can start a match).
        at = j;
        return Some((key, val));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_that_name_an_api() {
        for (v, want) in [
            (&b"2.1/x"[..], Some(Mode::V21)),
            (b"2/x", Some(Mode::LegacyV2)),
            (b"2/ ", Some(Mode::LegacyV2)),
            (b"2.1/", None),
            (b"2/", None),
            (b"2.1", None),
            (b"2", None),
            (b"3/x", None),
            (b"2.1x/y", None),
        ] {
            assert_eq!(version_api(v), want, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn content_type_versions_as_nova_reads_them() {
        // Expected values: nova.api.openstack.urlmap.parse_options_header (Nova 34).
        let cases: &[(&[u8], Option<Mode>)] = &[
            (b"application/json;version=2.1/x", Some(Mode::V21)),
            (b"application/json; version=2/x", Some(Mode::LegacyV2)),
            (b"application/json;version=2.1", None),
            (b"application/json;version=2/", None),
            (b"application/json;version=\"2.1/x\"", Some(Mode::V21)),
            (b"application/json;\"version\"=2/x", Some(Mode::LegacyV2)),
            (b"application/json;version", None),
            (b"application/json;version=", None),
            (b"application/json;version= ", None),
            (b"application/json;version=  ;x=1", None),
            (
                b"application/json;version=2/x;version=2.1/y",
                Some(Mode::V21),
            ),
            (b"application/json;version=2.1/y;version=3", None),
            (b"application/json ;  version  =  2.1/x  ", Some(Mode::V21)),
            (b"application/json\xa0;version=2/x", Some(Mode::LegacyV2)),
            (b"application/json;\xa0version=2/x", Some(Mode::LegacyV2)),
            (b"application/json;version\xa0=2/x", Some(Mode::LegacyV2)),
            (b"application/json;ver sion=2/x", None),
            (
                b"application/json;x=\"a;version=2/x\"",
                Some(Mode::LegacyV2),
            ),
            (b"=x;version=2/x", None),
            (b"application/json;;version=2/x", Some(Mode::LegacyV2)),
            (b"application/json;=;version=2.1/z", Some(Mode::V21)),
            (b";version=2/x", None),
            (
                b"application/json;version=2/x,text/plain",
                Some(Mode::LegacyV2),
            ),
            (b"", None),
            (b"application/json", None),
            (b"application/json;version=\"2/\"", None),
            (b"application/json;version=\" \"", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                content_type_api(value),
                *want,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn accept_versions_as_nova_reads_them() {
        // Expected values: every item of parse_list_header with a version parameter.
        let cases: &[(&[u8], bool, bool)] = &[
            (b"application/json;version=2/x", false, true),
            (b"*/*;q=0;version=2.1/x", true, false),
            (
                b"application/json;version=2/x, text/html;version=2.1/y",
                true,
                true,
            ),
            (b"*/*; a=\"; version=2\\/x\"", false, true),
            (b"\"application/json;version=2/x\"", false, true),
            (b"text/html", false, false),
            (b"application/json;version=2.1", false, false),
            (b"a, b;version=2/x ,c", false, true),
            (b"application/json;q=1;version=\"2.1/ab\"", true, false),
            // A backslash in quotes is dropped: `version` without the text.
            (b"application/json;\"ver\\sion\"=2.1/x", true, false),
            (b"\"application/json;ver\\sion=2/x\"", false, true),
            (
                b"application/json;\"ver\\sion\"=2/x, text/html;version=2.1/y",
                true,
                true,
            ),
            (b"a/b;ver\\sion=2/x", false, false),
            (b"\"a/b;\\v\\e\\r\\s\\i\\o\\n=\\2\\.\\1/x\"", true, false),
        ];
        for (value, v21, legacy_v2) in cases {
            let mut apis = Apis::default();
            accept_apis(value, &mut apis);
            assert_eq!(
                (apis.v21, apis.legacy_v2),
                (*v21, *legacy_v2),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}
