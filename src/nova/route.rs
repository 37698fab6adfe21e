//! Which request targets Nova's router sends to update-server.
//!
//! What reaches Nova's router depends on the WSGI server in front of it:
//! some decode `%2F`, some collapse `//`, some resolve dot segments. A
//! target is treated as an update when any of them would route it there, so
//! the path is normalised as loosely as the loosest of them: take the path,
//! drop query and fragment, percent-decode every `%XX`, remove dot segments
//! (RFC 3986 §5.2.4), collapse repeated `/`, then match Nova's routes; and
//! when that does not match, the path as uWSGI makes it, which decodes and
//! removes dot segments in one pass of its own. Decoded bytes need not be
//! UTF-8, so everything works on bytes.

use std::borrow::Cow;

use super::hex_digit;

/// The API a validated request is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/v2/...`: Nova's legacy-v2 compatible endpoint; microversion headers ignored.
    LegacyV2,
    /// `/v2.1/...`: microversioned.
    V21,
}

/// `Some(mode)` when a PUT to `target` (the request-target as received:
/// origin-form with optional query and fragment, or absolute-form) would be
/// routed by Nova to update-server behind `prefix` (empty, or like `/compute`).
pub fn match_update(prefix: &str, target: &str, by_headers: Option<Mode>) -> Option<Mode> {
    api_segments(prefix, target, by_headers, |segs| match segs {
        [project_id, b"servers", id] if is_project_id(project_id) => is_server_id(id),
        [b"servers", id] => is_server_id(id),
        _ => false,
    })
}

/// `Some(mode)` when a POST to `target` would be routed by Nova to
/// create-server: `{prefix}/v2.1[/{project_id}]/servers` (normalised as for
/// [`match_update`]).
pub fn match_create(prefix: &str, target: &str, by_headers: Option<Mode>) -> Option<Mode> {
    api_segments(prefix, target, by_headers, |segs| match segs {
        [project_id, b"servers"] => is_project_id(project_id),
        [b"servers"] => true,
        _ => false,
    })
}

/// `Some(mode)` when a POST to `target` would be routed by Nova to a server
/// action: `{prefix}/v2.1[/{project_id}]/servers/{server_id}/action`.
pub fn match_action(prefix: &str, target: &str, by_headers: Option<Mode>) -> Option<Mode> {
    api_segments(prefix, target, by_headers, |segs| match segs {
        [project_id, b"servers", id, b"action"] if is_project_id(project_id) => is_server_id(id),
        [b"servers", id, b"action"] => is_server_id(id),
        _ => false,
    })
}

/// An empty id is a trailing slash; `detail` is the list route.
fn is_server_id(id: &[u8]) -> bool {
    !id.is_empty() && id != b"detail"
}

/// The API `target` addresses, when `route` accepts its path segments after
/// the version. A path that names no API (`/servers/{id}`) goes, whole, to
/// the API the headers name (`by_headers`, see [`super::urlmap`]), as Nova's
/// urlmap sends it.
fn api_segments(
    prefix: &str,
    target: &str,
    by_headers: Option<Mode>,
    route: impl Fn(&[&[u8]]) -> bool,
) -> Option<Mode> {
    let raw = path_of(target)?;
    let prefix = normalise_prefix(prefix);
    let path = normalise(raw);
    api_path(&path, &prefix, by_headers, &route).or_else(|| {
        // A path normalising left as it was has no escape and no dot
        // segment: uWSGI reads it the same.
        if let Cow::Borrowed(_) = path {
            return None;
        }
        let uwsgi = collapse_slashes(&uwsgi_path(raw.as_bytes()));
        (uwsgi != *path)
            .then(|| api_path(&uwsgi, &prefix, by_headers, &route))
            .flatten()
    })
}

/// [`api_segments`] for one reading of the path.
fn api_path(
    path: &[u8],
    prefix: &[u8],
    by_headers: Option<Mode>,
    route: &impl Fn(&[&[u8]]) -> bool,
) -> Option<Mode> {
    // Python's `$`, which ends Routes' patterns, matches before a final
    // newline too: `/v2.1/servers%0A` is create.
    let path = path.strip_suffix(b"\n").unwrap_or(path);
    // The prefix must end on a segment boundary: "/compute" is not a prefix
    // of "/computex/...".
    let rest = path.strip_prefix(prefix)?;
    let rest = rest.strip_prefix(b"/")?;
    let (mode, rest) = if let Some(after) = rest.strip_prefix(b"v2.1/") {
        (Mode::V21, after)
    } else if let Some(after) = rest.strip_prefix(b"v2/") {
        (Mode::LegacyV2, after)
    } else if rest == b"v2.1" || rest == b"v2" {
        // The version documents.
        return None;
    } else {
        (by_headers?, rest)
    };

    // No more segments than the longest route has.
    let mut segs: [&[u8]; MAX_SEGMENTS] = [b""; MAX_SEGMENTS];
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'/', rest).chain([rest.len()]) {
        *segs.get_mut(n)? = rest.get(start..end)?;
        n += 1;
        start = end + 1;
    }
    route(segs.get(..n)?).then_some(mode)
}

/// The method Nova's router matches a request by, when its query overrides
/// the request's own: Routes' `RoutesMiddleware` (Nova leaves its method
/// override on) reads the last `_method` query parameter as webob decodes
/// it, upper-cased, when the raw query contains the text `_method`. A query
/// webob cannot decode (not UTF-8) overrides nothing.
pub fn method_override(target: &str) -> Option<String> {
    // memchr, not `split_once('?')`: this runs for every request, nearly
    // always on a target with no query.
    let query = target
        .as_bytes()
        .get(memchr::memchr(b'?', target.as_bytes())? + 1..)?;
    memchr::memmem::find(query, b"_method")?;
    let query: Vec<u8> = query
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let mut method = None;
    for pair in query
        .split(|b| *b == b'&' || *b == b';')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        let name = String::from_utf8(webob_unquote(name)).ok()?;
        let value = String::from_utf8(webob_unquote(value)).ok()?;
        if name == "_method" {
            method = Some(value);
        }
    }
    method.filter(|m| !m.is_empty()).map(|m| m.to_uppercase())
}

/// webob's `unquote` (Python 3): each `%` takes the next two bytes as
/// `int(_, 16)` reads them (surrounding white space and a sign allowed), or
/// stays as it is.
fn webob_unquote(s: &[u8]) -> Vec<u8> {
    let mut pieces = s.split(|b| *b == b'%');
    let mut out = pieces.next().unwrap_or_default().to_vec();
    for item in pieces {
        let (two, rest) = item.split_at(item.len().min(2));
        match python_hex_byte(two) {
            Some(b) => {
                out.push(b);
                out.extend_from_slice(rest);
            }
            None => {
                out.push(b'%');
                out.extend_from_slice(item);
            }
        }
    }
    out
}

/// `bytes([int(two, 16)])` for at most two bytes, or `None` where Python
/// raises `ValueError`.
fn python_hex_byte(two: &[u8]) -> Option<u8> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = two.iter().position(|b| !is_space(b))?;
    let end = two.iter().rposition(|b| !is_space(b))? + 1;
    let t = &two[start..end];
    let (negative, digits) = match t {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    let n = match *digits {
        [d] => hex_digit(d)?,
        [hi, lo] => hex_digit(hi)? << 4 | hex_digit(lo)?,
        _ => return None,
    };
    (!negative || n == 0).then_some(n)
}

/// `{project_id}/servers/{server_id}/action`.
const MAX_SEGMENTS: usize = 4;

/// Nova's `ProjectMapper` requirement for `{project_id}`: `[0-9a-f-]+`.
fn is_project_id(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// The raw path of a request-target, without query or fragment. `None` for
/// targets that have no path to route (asterisk-form, authority-form, an
/// absolute-form URI without a path).
fn path_of(target: &str) -> Option<&str> {
    let end = memchr::memchr2(b'?', b'#', target.as_bytes()).unwrap_or(target.len());
    let before_query = target.get(..end)?;
    if before_query.starts_with('/') {
        return Some(before_query);
    }
    let after = absolute_form(before_query)?;
    let slash = after.find('/')?;
    after.get(slash..)
}

/// What follows `scheme://` in an absolute-form target (RFC 3986 scheme:
/// a letter, then letters, digits, `+`, `-`, `.`).
pub fn absolute_form(target: &str) -> Option<&str> {
    let (scheme, after) = target.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok.then_some(after)
}

/// Decode, remove dot segments, collapse slashes, in that order.
fn normalise(raw: &str) -> Cow<'_, [u8]> {
    let raw = raw.as_bytes();
    if is_normal(raw) {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(collapse_slashes(&remove_dot_segments(&percent_decode(raw))))
}

/// PATH_INFO as uWSGI makes it from a path (its `http_url_decode`): one
/// pass that decodes as it goes and removes only literal dot segments, a
/// `..` dropping back to the last `/` already written, one decoded from
/// `%2F` too. So `%2e%2e` is a segment like any other, which a `..` after
/// it removes (`/v2.1/servers/%2e%2e/../S` is `/v2.1/servers/S`, where
/// decoding first makes it `/S`). A `%` takes the next two bytes whatever
/// they are (NUL when they are not hex digits), `%%` is `%`, an escape cut
/// off at the end is dropped, and `#` ends the path.
fn uwsgi_path(raw: &[u8]) -> Vec<u8> {
    #[derive(Clone, Copy)]
    enum State {
        Text,
        Percent,
        PercentHex(u8),
        Slash,
        Dot,
        DotDot,
    }
    let no_slash = raw.first().is_some_and(|b| *b != b'/');
    let mut out = Vec::with_capacity(raw.len() + 1);
    // A character in the text state, or one that ends another state.
    let text = |out: &mut Vec<u8>, c: u8| match c {
        b'%' => State::Percent,
        b'/' => State::Slash,
        _ => {
            out.push(c);
            State::Text
        }
    };
    let mut state = if no_slash { State::Slash } else { State::Text };
    for (i, &c) in raw.iter().enumerate() {
        if c == b'#' {
            break;
        }
        state = match state {
            State::Text => text(&mut out, c),
            State::Percent if c == b'%' => {
                out.push(b'%');
                State::Text
            }
            State::Percent => State::PercentHex(c),
            State::PercentHex(first) => {
                out.push(uwsgi_hex(first, c));
                State::Text
            }
            State::Slash if c == b'.' => State::Dot,
            State::Slash => {
                if i > 0 || !no_slash {
                    out.push(b'/');
                }
                text(&mut out, c)
            }
            State::Dot if c == b'.' => State::DotDot,
            State::Dot if c == b'/' => State::Slash,
            // Not a dot segment after all: text (`c` is not `/`).
            State::Dot => {
                if i > 1 {
                    out.push(b'/');
                }
                out.push(b'.');
                text(&mut out, c)
            }
            State::DotDot if c == b'/' => {
                let back = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(back);
                State::Slash
            }
            State::DotDot => {
                if i > 2 {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                text(&mut out, c)
            }
        };
    }
    match state {
        State::Slash | State::Dot => out.push(b'/'),
        State::DotDot => {
            let back = out.iter().rposition(|b| *b == b'/').map_or(0, |at| at + 1);
            out.truncate(back);
        }
        State::Text | State::Percent | State::PercentHex(_) => {}
    }
    out
}

/// uWSGI's `hex2num`: NUL unless both are hex digits.
fn uwsgi_hex(hi: u8, lo: u8) -> u8 {
    match (hex_digit(hi), hex_digit(lo)) {
        (Some(hi), Some(lo)) => hi << 4 | lo,
        _ => 0,
    }
}

/// Whether normalising `path` (which starts with `/`) would leave it as it
/// is: nothing to decode, no dot segment (each starts with `/.`), no run of
/// slashes. Most paths are, and need no copy.
fn is_normal(path: &[u8]) -> bool {
    path.first() == Some(&b'/')
        && memchr::memchr(b'%', path).is_none()
        && memchr::memchr_iter(b'/', path).all(|at| !matches!(path.get(at + 1), Some(b'/' | b'.')))
}

/// The configured prefix in the same form as a normalised path, without a
/// trailing `/`: "" or "/compute".
fn normalise_prefix(prefix: &str) -> Cow<'_, [u8]> {
    let bytes = prefix.as_bytes();
    if bytes.is_empty() || (is_normal(bytes) && bytes.last() != Some(&b'/')) {
        return Cow::Borrowed(bytes);
    }
    let mut p = Vec::with_capacity(prefix.len() + 1);
    if !prefix.starts_with('/') {
        p.push(b'/');
    }
    p.extend_from_slice(prefix.as_bytes());
    let mut p = collapse_slashes(&remove_dot_segments(&percent_decode(&p)));
    while p.last() == Some(&b'/') {
        p.pop();
    }
    Cow::Owned(p)
}

/// Decode every `%XX` once; a `%` not followed by two hex digits stays as is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_digit);
            let lo = input.get(i + 2).copied().and_then(hex_digit);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// RFC 3986 §5.2.4 remove_dot_segments, step by step.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut input = path;
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input
            .strip_prefix(b"../")
            .or_else(|| input.strip_prefix(b"./"))
        {
            // A: drop a leading "../" or "./".
            input = rest;
        } else if input.starts_with(b"/./") {
            // B: "/./" → "/".
            input = input.get(2..).unwrap_or_default();
        } else if input == b"/." {
            input = b"/";
        } else if input.starts_with(b"/../") || input == b"/.." {
            // C: "/../" or "/.." → "/", and drop the last output segment.
            input = if input == b"/.." {
                b"/"
            } else {
                input.get(3..).unwrap_or_default()
            };
            let cut = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
            out.truncate(cut);
        } else if input == b"." || input == b".." {
            // D
            input = b"";
        } else {
            // E: move the first segment, with its leading "/" if any.
            let start = usize::from(input.first() == Some(&b'/'));
            let len = input
                .get(start..)
                .and_then(|r| r.iter().position(|&b| b == b'/'))
                .map_or(input.len(), |p| p + start);
            let (seg, rest) = input.split_at_checked(len).unwrap_or((input, b""));
            out.extend_from_slice(seg);
            input = rest;
        }
    }
    out
}

/// Replace every run of `/` with a single one.
fn collapse_slashes(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn method_override_as_routes_and_webob_read_it() {
        // Expected values: webob's Request.GET['_method'].upper(), as
        // RoutesMiddleware reads it (WebOb and Routes of Nova 34).
        let cases: &[(&str, Option<&str>)] = &[
            ("/v2.1/servers/x?_method=PUT", Some("PUT")),
            ("/v2.1/servers/x?_method=put", Some("PUT")),
            ("/v2.1/servers/x?_method=PUT&_method=GET", Some("GET")),
            ("/v2.1/servers/x?_method=GET&_method=pUt", Some("PUT")),
            ("/v2.1/servers/x?x=1;_method=post", Some("POST")),
            ("/v2.1/servers/x?_metho%64=PUT", None),
            ("/v2.1/servers/x?x=_method&_metho%64=PUT", Some("PUT")),
            ("/v2.1/servers/x?_method=PU%54", Some("PUT")),
            ("/v2.1/servers/x?_method=PU%2054", Some("PU 54")),
            ("/v2.1/servers/x?_method=PU% 54", Some("PU\u{5}4")),
            ("/v2.1/servers/x?_method=%+50UT", Some("\u{5}0UT")),
            ("/v2.1/servers/x?_method=%-0PUT", Some("\u{0}PUT")),
            ("/v2.1/servers/x?_method=%-1PUT", Some("%-1PUT")),
            ("/v2.1/servers/x?_method=PO%C5%BFT", Some("POST")),
            ("/v2.1/servers/x?_method=PO%EF%AC%86", Some("POST")),
            ("/v2.1/servers/x?_method=", None),
            ("/v2.1/servers/x?_method", None),
            ("/v2.1/servers/x?_method=PUT&x=%FF", None),
            ("/v2.1/servers/x?_method=P+UT", Some("P UT")),
            ("/v2.1/servers/x?_method=PUT#x", Some("PUT#X")),
            ("/v2.1/servers/x?a=b", None),
            ("/v2.1/servers/x?_method=%e9t%e9", None),
            ("/v2.1/servers/x?_method=%5", Some("\u{5}")),
            ("/v2.1/servers/x?_method=%", Some("%")),
            ("/v2.1/servers/x?_method=p%75t", Some("PUT")),
            ("/v2.1/servers/x?%5Fmethod=PUT", None),
            ("/v2.1/servers/x?_method=PUT;_method=", None),
            ("/v2.1/servers/x?_method=%0aPUT", Some("\u{a}PUT")),
            ("/v2.1/servers/x?_method=\u{e9}", Some("\u{c9}")),
            ("/v2.1/servers/x?_method=DELETE", Some("DELETE")),
            ("/v2.1/servers/x", None),
            ("/v2.1/servers/x?", None),
        ];
        for (target, want) in cases {
            assert_eq!(method_override(target).as_deref(), *want, "{target:?}");
        }
    }

    const P: &str = "4f1ce1b2a3e14b9f8c0b8f5d2e6a7b90";
    const S: &str = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c";

    fn at(target: &str) -> Option<Mode> {
        match_update(
            "",
            target.replace("{p}", P).replace("{s}", S).as_str(),
            None,
        )
    }

    #[test]
    fn the_four_routes() {
        assert_eq!(at("/v2.1/{p}/servers/{s}"), Some(Mode::V21));
        assert_eq!(at("/v2.1/servers/{s}"), Some(Mode::V21));
        assert_eq!(at("/v2/{p}/servers/{s}"), Some(Mode::LegacyV2));
        assert_eq!(at("/v2/servers/{s}"), Some(Mode::LegacyV2));
    }

    #[test]
    fn spellings_some_server_routes_to_update() {
        // The list measured against Nova 34 under cheroot, wsgiref and uwsgi.
        for t in [
            "/v2.1/{p}//servers/{s}",
            "/v2.1//{p}/servers/{s}",
            "/v2.1/{p}/servers//{s}",
            "/v2.1//servers/{s}",
            "/v2.1/{p}/%73ervers/{s}",
            "/%762.1/{p}/servers/{s}",
            "/v2.1/{p}%2Fservers/{s}",
            "/v2.1/{p}%2fservers/{s}",
            "//v2.1/{p}/servers/{s}",
            "/v2.1/./{p}/servers/{s}",
            "/v2.1/x/../{p}/servers/{s}",
            "/v2.1/{p}/servers/{s}#frag",
            "/v2.1/{p}/servers/{s}?x=1",
            "/v2.1/{p}/servers/{s}?x=1#frag",
            "/v2.1/{p}/servers/{s}?a=/../b",
            "http://host/v2.1/{p}/servers/{s}",
            "http://host:8774/v2.1/{p}/servers/{s}?x",
            "HTTPS://user@host/v2.1/servers/{s}",
            "/v2.1/{p}/servers/{s}.json",
            "/v2.1/{p}/servers/X/../{s}",
            "/v2.1/{p}/servers/./{s}",
            "/v2.1/%2E%2E/v2.1/{p}/servers/{s}",
            "/v2.1/{p}/servers/%2e/{s}",
            "/../v2.1/{p}/servers/{s}",
            "/v2.1/{p}/servers/{s}%3Fx", // decoded after the query is cut off
            "/v2.1/servers/%FF",         // decoded bytes need not be UTF-8
            "/v2.1/servers/%",           // invalid escapes stay literal
            "/v2.1/servers/%zz",
            "/v2.1/servers/%2",
            "/v2.1/-/servers/{s}", // "-" alone is a valid project id to the router
            // uWSGI decodes and removes literal dot segments in one pass:
            // `%2e%2e` is a segment, which the `..` after it removes, and a
            // `..` drops back to a `/` decoded from `%2F` too.
            "/v2.1/servers/%2e%2e/../{s}",
            "/v2.1/servers/%2e/../{s}",
            "/v2.1/servers/.%2e/../{s}",
            "/v2.1/servers/%2E%2E/../{s}",
            "/v2.1/{p}/%2e%2e/../servers/{s}",
            "/v2.1/x%2F%2e%2e/../../{p}/servers/{s}",
            "/v2.1/%2e%2e%2Fx/../../servers/{s}",
            "/v2.1/servers/x%2F../../../{s}",
            "/v2.1/{p}/servers/%2e%2e%2F%2e%2e/../../{s}",
            "https://h/v2.1/servers/x%2F%2e%2e/../../{s}",
            // An escape cut off at the end is dropped.
            "/v2.1/servers/{s}%",
            "/v2.1/servers/{s}%2",
        ] {
            assert_eq!(at(t), Some(Mode::V21), "{t:?}");
        }
        for t in [
            "/v2/{p}/servers/%2e%2e/../{s}",
            "/v2/{p}//servers/{s}",
            "//v2/servers/{s}",
            "/%76%32/servers/{s}",
            "http://host/v2/{p}/servers/{s}#f",
        ] {
            assert_eq!(at(t), Some(Mode::LegacyV2), "{t:?}");
        }
    }

    #[test]
    fn spellings_no_server_routes_to_update() {
        for t in [
            "/V2.1/{p}/servers/{s}",
            "/v2.1/{p}/SERVERS/{s}",
            "/v2.1/{p}/Servers/{s}",
            "/V2/servers/{s}",
            "/v2.1/4F1CE1B2A3E14B9F8C0B8F5D2E6A7B90/servers/{s}", // upper-case project
            "/v2.1/xyz/servers/{s}",
            "/v2.1/{p}_1/servers/{s}",
            "/v2.1/{p}/servers/{s}/",
            "/v2.1/{p}/servers/{s}%2F",
            "/v2.1/{p}/servers/{s}%2f",
            "/v2.1/{p}/servers/{s}/.",
            "/v2.1/{p}/servers/{s}/..",
            "/v2.1/{p}/servers/{s}/metadata",
            "/v2.1/{p}/servers/{s}/action",
            "/v2.1/{p}/servers/detail",
            "/v2.1/servers/detail",
            "/v2.1/{p}/servers/",
            "/v2.1/{p}/servers",
            "/v2.1/servers",
            "/v2.1/servers/",
            "/v2.1/{p}/servers?x=/{s}",
            "/v2.1/{p}/servers#/{s}",
            "/v2.1/{p}/flavors/{s}",
            "/v2.1/{p}/{p}/servers/{s}",
            "/v3/{p}/servers/{s}",
            "/v2.10/{p}/servers/{s}",
            "/v2.1",
            "/",
            "",
            "*",
            "host:8774",
            "http://host",
            "http://host?x=/v2.1/servers/{s}",
            "http:/v2.1/servers/{s}",
            "1http://host/v2.1/servers/{s}",
            "v2.1/servers/{s}",
            "/compute/v2.1/{p}/servers/{s}", // no prefix configured
        ] {
            assert_eq!(at(t), None, "{t:?}");
        }
        // Single decoding: "%252F" becomes the literal id "%2F", a valid id.
        assert_eq!(at("/v2.1/{p}/servers/%252F"), Some(Mode::V21));
    }

    #[test]
    fn path_info_as_uwsgi_makes_it() {
        for (raw, path_info) in [
            (&b"/v2.1/servers/S"[..], &b"/v2.1/servers/S"[..]),
            (b"/a/./b/../c", b"/a/c"),
            (b"/a/%2e%2e/../b", b"/a/b"),
            // A `..` right after a decoded `/` is text.
            (b"/a/x%2F../../b", b"/a/x/b"),
            (b"/a/x%2F../../../b", b"/a/b"),
            (b"/a/%zz/b", b"/a/\0/b"),
            (b"/a/%%b", b"/a/%b"),
            (b"/a/b%", b"/a/b"),
            (b"/a/b%4", b"/a/b"),
            (b"/a/b#/../c", b"/a/b"),
            (b"/a/b/..", b"/a/"),
            (b"/a/b/.", b"/a/b/"),
            (b"/a/b/", b"/a/b/"),
            (b"/..", b""),
            (b"/.x/..y", b"/.x/..y"),
        ] {
            assert_eq!(
                uwsgi_path(raw),
                path_info,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn with_prefix() {
        for prefix in ["/compute", "/compute/", "compute", "//compute//"] {
            let m = |t: &str| match_update(prefix, t.replace("{s}", S).as_str(), None);
            assert_eq!(m("/compute/v2.1/servers/{s}"), Some(Mode::V21), "{prefix}");
            assert_eq!(m("/compute/v2/servers/{s}"), Some(Mode::LegacyV2));
            assert_eq!(m("//compute//v2.1//servers/{s}"), Some(Mode::V21));
            assert_eq!(m("/%63ompute/v2.1/servers/{s}"), Some(Mode::V21));
            assert_eq!(m("/x/../compute/v2.1/servers/{s}"), Some(Mode::V21));
            assert_eq!(m("http://h/compute/v2.1/servers/{s}"), Some(Mode::V21));
            assert_eq!(m("/v2.1/servers/{s}"), None);
            assert_eq!(m("/computex/v2.1/servers/{s}"), None);
            assert_eq!(m("/Compute/v2.1/servers/{s}"), None);
            assert_eq!(m("/compute"), None);
            assert_eq!(m("/compute/"), None);
        }
        let m = |p: &str| match_update(p, "/a/b/v2.1/servers/x", None);
        assert_eq!(m("/a/b"), Some(Mode::V21));
        assert_eq!(m("/a"), None);
        assert_eq!(m("/"), None);
        assert_eq!(match_update("/", "/v2.1/servers/x", None), Some(Mode::V21));
    }

    #[test]
    fn create_and_action_routes() {
        let c = |t: &str| match_create("", t.replace("{p}", P).replace("{s}", S).as_str(), None);
        let a = |t: &str| match_action("", t.replace("{p}", P).replace("{s}", S).as_str(), None);
        // As uWSGI reads them (see `uwsgi_path`).
        assert_eq!(c("/v2.1/%2e/../servers"), Some(Mode::V21));
        assert_eq!(a("/v2.1/servers/%2e/../{s}/action"), Some(Mode::V21));
        assert_eq!(c("/v2.1/servers%"), Some(Mode::V21));
        assert_eq!(c("/v2.1/server%73%"), Some(Mode::V21));
        assert_eq!(a("/v2.1/servers/{s}/action%2"), Some(Mode::V21));
        assert_eq!(
            a("/v2.1/servers/{s}/x%2F.%2e/../../action"),
            Some(Mode::V21)
        );
        assert_eq!(c("/v2/x%2F%2e%2e/../../servers"), Some(Mode::LegacyV2));
        // Python's `$` matches before a final newline.
        assert_eq!(c("/v2.1/servers%0a"), Some(Mode::V21));
        assert_eq!(c("/v2/servers%0A?x"), Some(Mode::LegacyV2));
        assert_eq!(a("/v2.1/servers/{s}/action%0a"), Some(Mode::V21));
        assert_eq!(a("/v2.1/servers/{s}/action%0a%"), Some(Mode::V21));
        for (t, mode) in [
            ("/v2.1/{p}/servers", Mode::V21),
            ("/v2.1/servers", Mode::V21),
            ("/v2/{p}/servers", Mode::LegacyV2),
            ("/v2/servers", Mode::LegacyV2),
            ("//v2.1//{p}/%73ervers?x=1", Mode::V21),
            ("/v2.1/x/../servers#f", Mode::V21),
            ("http://h/v2.1/servers", Mode::V21),
        ] {
            assert_eq!(c(t), Some(mode), "{t}");
            let action = format!("{}/{{s}}/action", t.split(['?', '#']).next().unwrap());
            assert_eq!(a(&action), Some(mode), "{action}");
        }
        for t in [
            "/v2.1/{p}/servers/",
            "/v2.1/servers/{s}",
            "/v2.1/{p}/servers/detail",
            "/v2.1/XYZ/servers",
            "/v2.1/servers.json",
            "/V2.1/servers",
            "/v2.1/{p}/{p}/servers",
        ] {
            assert_eq!(c(t), None, "{t}");
        }
        for t in [
            "/v2.1/servers/{s}/action/",
            "/v2.1/servers/{s}/actions",
            "/v2.1/servers//action",
            "/v2.1/servers/detail/action",
            "/v2.1/servers/{s}",
            "/v2.1/XYZ/servers/{s}/action",
            "/v2.1/servers/{s}/ACTION",
        ] {
            assert_eq!(a(t), None, "{t}");
        }
        assert_eq!(
            match_action("/compute", "/compute/v2.1/servers/x/action", None),
            Some(Mode::V21)
        );
        assert_eq!(match_create("/compute", "/v2.1/servers", None), None);
    }

    #[test]
    fn rfc3986_remove_dot_segments_examples() {
        // RFC 3986 §5.2.4 and §5.4 examples.
        for (input, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("mid/content=5/../6", "mid/6"),
            ("/b/c/./g", "/b/c/g"),
            ("/b/c/.", "/b/c/"),
            ("/b/c/..", "/b/"),
            ("/b/c/../..", "/"),
            ("/b/c/../../../g", "/g"),
            ("/b/c/g.", "/b/c/g."),
            ("/b/c/.g", "/b/c/.g"),
            ("/b/c/g..", "/b/c/g.."),
            ("/b/c/..g", "/b/c/..g"),
            ("/b/c/./../g", "/b/g"),
            ("/b/c/g/./h", "/b/c/g/h"),
            ("/b/c/g/../h", "/b/c/h"),
            ("/a//../b", "/a/b"),
            ("..", ""),
            (".", ""),
            ("../a", "a"),
            ("./a", "a"),
        ] {
            assert_eq!(
                remove_dot_segments(input.as_bytes()),
                want.as_bytes(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn decoding_and_collapsing() {
        assert_eq!(percent_decode(b"%41%2f%2F%zz%4"), b"A//%zz%4");
        assert_eq!(percent_decode(b"%%41"), b"%A");
        assert_eq!(percent_decode(b"%ff"), [0xff]);
        assert_eq!(collapse_slashes(b"///a//b/"), b"/a/b/");
    }

    proptest! {
        #[test]
        fn never_panics(prefix in "\\PC{0,12}", target in "\\PC{0,80}") {
            let _ = match_update(&prefix, &target, None);
        }

        #[test]
        fn a_path_left_as_it_is_is_one_normalising_leaves_as_it_is(
            path in "/[/.%2fFe0-9a-z]{0,40}",
        ) {
            let slow = collapse_slashes(&remove_dot_segments(&percent_decode(path.as_bytes())));
            prop_assert_eq!(&*normalise(&path), slow.as_slice());
            if is_normal(path.as_bytes()) {
                prop_assert_eq!(slow.as_slice(), path.as_bytes());
            }
        }

        #[test]
        fn never_panics_on_path_alphabet(
            prefix in "[/.%a-z0-9]{0,8}",
            target in "(http://h)?[/.%2fFvV0-9a-f?#servdil]{0,60}",
        ) {
            let _ = match_update(&prefix, &target, None);
        }

        #[test]
        fn extra_slashes_do_not_change_the_answer(
            project in "[0-9a-f-]{1,8}",
            id in "[A-Za-z0-9.%-]{1,10}",
            legacy in any::<bool>(),
            n in 1usize..4,
        ) {
            let v = if legacy { "v2" } else { "v2.1" };
            let plain = format!("/{v}/{project}/servers/{id}");
            let slashes = "/".repeat(n);
            let doubled = format!("{slashes}{v}{slashes}{project}/servers{slashes}{id}");
            prop_assert_eq!(match_update("", &plain, None), match_update("", &doubled, None));
        }
    }
}
