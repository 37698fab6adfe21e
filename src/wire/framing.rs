//! How a request's body is delimited, judged on the head as sent: the
//! rules every HTTP/1 reader of nova-guard applies (the codec that serves
//! requests and the tracker that follows hyper), so that what is forwarded
//! can only be read one way.

use crate::swar::{bytes_equal, first_flagged, to_lower, word};

/// Why a request's framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthAndChunked,
    /// A `Transfer-Encoding` other than exactly one `chunked`.
    TransferEncoding,
    /// `Content-Length`s that differ.
    DifferingLength,
    /// A `Content-Length` that is not a plain decimal number.
    InvalidLength,
    /// A head line ended by a bare LF.
    BareLf,
    /// A chunk-size line that overflows or is malformed.
    BadChunk,
    /// The head could not be parsed.
    BadHead,
    /// Earlier bytes on the connection could not be followed.
    Unfollowed,
}

impl Ambiguity {
    pub const ALL: [Ambiguity; 8] = [
        Ambiguity::LengthAndChunked,
        Ambiguity::TransferEncoding,
        Ambiguity::DifferingLength,
        Ambiguity::InvalidLength,
        Ambiguity::BareLf,
        Ambiguity::BadChunk,
        Ambiguity::BadHead,
        Ambiguity::Unfollowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Ambiguity::LengthAndChunked => "content_length_and_transfer_encoding",
            Ambiguity::TransferEncoding => "transfer_encoding",
            Ambiguity::DifferingLength => "differing_content_length",
            Ambiguity::InvalidLength => "invalid_content_length",
            Ambiguity::BareLf => "bare_lf",
            Ambiguity::BadChunk => "bad_chunk",
            Ambiguity::BadHead => "bad_head",
            Ambiguity::Unfollowed => "unfollowed",
        }
    }
}

/// The length of the empty lines httparse skips before a request line.
pub fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match buf.get(i..) {
            Some([b'\r', b'\n', ..]) => i += 2,
            Some([b'\n', ..]) => i += 1,
            _ => return i,
        }
    }
}

/// The first `\n` in `buf` at or after `from`. Every head is searched for
/// its line ends, so eight bytes are looked at at a time.
pub fn next_lf(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(chunk) = buf.get(at..at + 8) {
        // The lowest flag is exact: the first `\n` of the eight.
        let found = bytes_equal(word(chunk), b'\n');
        if found != 0 {
            return Some(at + first_flagged(found));
        }
        at += 8;
    }
    buf.get(at..)?
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i)
}

/// The end of a head (just past its blank line), searching from `from`.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(lf) = next_lf(buf, i) {
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => {}
        }
        i = lf + 1;
    }
    None
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
}

pub enum Judged {
    Good(Framing),
    Bad(Ambiguity),
    /// httparse refuses it, as hyper will.
    Unparsed,
}

/// Judge one whole head (`head[start..]` after the skipped empty lines).
pub fn judge(head: &[u8], start: usize, max_headers: usize) -> Judged {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Judged::Unparsed,
    }
    match judge_parsed(&req, &head[start..]) {
        Ok(framing) => Judged::Good(framing),
        Err(why) => Judged::Bad(why),
    }
}

/// The framing of a request httparse parsed from `head` (its bytes after
/// the skipped empty lines), or why it could be read two ways.
pub fn judge_parsed(req: &httparse::Request<'_, '_>, head: &[u8]) -> Result<Framing, Ambiguity> {
    if bare_lf(req, head) {
        return Err(Ambiguity::BareLf);
    }
    // One pass over the lines; the first problem in their order wins, as
    // when each rule read them in turn.
    let mut has_length = false;
    let mut length = None;
    let mut bad_length = None;
    let mut codings = 0usize;
    let mut first_coding: &[u8] = b"";
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if eq_lower(name, b"content-length") {
            has_length = true;
            if bad_length.is_none() {
                match decimal(trim(h.value)) {
                    None => bad_length = Some(Ambiguity::InvalidLength),
                    Some(n) if length.is_some_and(|l| l != n) => {
                        bad_length = Some(Ambiguity::DifferingLength)
                    }
                    Some(n) => length = Some(n),
                }
            }
        } else if eq_lower(name, b"transfer-encoding") {
            if codings == 0 {
                first_coding = h.value;
            }
            codings += 1;
        }
    }
    if codings > 0 {
        if has_length {
            return Err(Ambiguity::LengthAndChunked);
        }
        let chunked = codings == 1 && trim(first_coding).eq_ignore_ascii_case(b"chunked");
        return if chunked && req.version == Some(1) {
            Ok(Framing::Chunked)
        } else {
            Err(Ambiguity::TransferEncoding)
        };
    }
    match bad_length {
        Some(why) => Err(why),
        None => Ok(length.map_or(Framing::None, Framing::Length)),
    }
}

/// Whether a line of the head ends in a bare LF. httparse takes no LF
/// inside a line, so only the line ends are looked at: the request line's
/// (right after ` HTTP/1.x`), each header line's (after its value and the
/// spaces httparse trimmed off it), and the blank line's. Anything not
/// where it should be counts as a bare LF.
fn bare_lf(req: &httparse::Request<'_, '_>, head: &[u8]) -> bool {
    let end_of = |s: &[u8]| {
        (s.as_ptr() as usize)
            .wrapping_sub(head.as_ptr() as usize)
            .wrapping_add(s.len())
    };
    let crlf_at = |mut i: usize| {
        while matches!(head.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        head.get(i..i.wrapping_add(2)) == Some(b"\r\n")
    };
    let Some(target) = req.path else {
        return true;
    };
    !crlf_at(end_of(target.as_bytes()).wrapping_add(b" HTTP/1.1".len()))
        || req.headers.iter().any(|h| !crlf_at(end_of(h.value)))
        || !head.ends_with(b"\r\n")
}

/// `name` is `lower` (lowercase ASCII) in any ASCII case: what
/// `eq_ignore_ascii_case` answers, eight bytes at a time. Header names are
/// compared with known names many times for every exchange.
pub fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let (mut a, mut b) = (name.chunks_exact(8), lower.chunks_exact(8));
    for (x, y) in (&mut a).zip(&mut b) {
        if to_lower(word(x)) != word(y) {
            return false;
        }
    }
    a.remainder()
        .iter()
        .zip(b.remainder())
        .all(|(x, y)| x.to_ascii_lowercase() == *y)
}

/// The items of a comma-separated field value, each trimmed; empty ones
/// too (`chunked,` ends in an empty item).
pub fn list_items(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(trim)
}

pub fn trim(v: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_ows(b)).map_or(start, |e| e + 1);
    &v[start..end]
}

pub fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_are_found_as_a_byte_search_finds_them() {
        let bytewise = |buf: &[u8], from: usize| {
            buf.get(from..)?
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| from + i)
        };
        for filler in [b'a', 0x0b, 0x09, 0x8a, 0xff, 0x00] {
            for len in 0..20 {
                let mut buf = vec![filler; len];
                for from in 0..=len + 1 {
                    assert_eq!(next_lf(&buf, from), bytewise(&buf, from));
                }
                for a in 0..len {
                    buf[a] = b'\n';
                    for b in [a, a + 1, a + 7, a + 8] {
                        if b < len {
                            buf[b] = b'\n';
                        }
                        for from in 0..=len {
                            assert_eq!(next_lf(&buf, from), bytewise(&buf, from), "{buf:?}");
                        }
                        if b < len {
                            buf[b] = filler;
                        }
                    }
                    buf[a] = filler;
                }
            }
        }
    }

    #[test]
    fn names_compare_as_eq_ignore_ascii_case_does() {
        let lower: &[&[u8]] = &[
            b"",
            b"te",
            b"content-length",
            b"x-openstack-nova-api-version",
            b"a@[`{z0-9_~",
            b"\x7f\x80\xc1\xda\xe1\xfa",
        ];
        for l in lower {
            let mut name = l.to_vec();
            assert!(eq_lower(&name, l));
            for i in 0..name.len() {
                for b in 0..=255u8 {
                    name[i] = b;
                    assert_eq!(
                        eq_lower(&name, l),
                        name.eq_ignore_ascii_case(l),
                        "{name:?} {l:?}"
                    );
                }
                name[i] = l[i].to_ascii_uppercase();
            }
            assert!(eq_lower(&name, l), "{name:?}");
            assert!(!eq_lower(&name[..name.len().saturating_sub(1)], l) || l.is_empty());
        }
    }

    /// `judge_parsed` as first written: every LF of the head looked for,
    /// and each rule reading the lines in turn.
    fn judge_reference(req: &httparse::Request<'_, '_>, head: &[u8]) -> Result<Framing, Ambiguity> {
        let mut from = 0;
        while let Some(lf) = next_lf(head, from) {
            if lf == 0 || head[lf - 1] != b'\r' {
                return Err(Ambiguity::BareLf);
            }
            from = lf + 1;
        }
        let is =
            |h: &httparse::Header<'_>, name: &str| eq_lower(h.name.as_bytes(), name.as_bytes());
        let has_length = req.headers.iter().any(|h| is(h, "content-length"));
        let mut encodings = req.headers.iter().filter(|h| is(h, "transfer-encoding"));
        if let Some(first) = encodings.next() {
            if has_length {
                return Err(Ambiguity::LengthAndChunked);
            }
            let chunked =
                encodings.next().is_none() && trim(first.value).eq_ignore_ascii_case(b"chunked");
            return if chunked && req.version == Some(1) {
                Ok(Framing::Chunked)
            } else {
                Err(Ambiguity::TransferEncoding)
            };
        }
        let mut length = None;
        for h in req.headers.iter().filter(|h| is(h, "content-length")) {
            let Some(n) = decimal(trim(h.value)) else {
                return Err(Ambiguity::InvalidLength);
            };
            if length.is_some_and(|l| l != n) {
                return Err(Ambiguity::DifferingLength);
            }
            length = Some(n);
        }
        Ok(length.map_or(Framing::None, Framing::Length))
    }

    /// Lines of request heads, whole and broken.
    fn line() -> impl proptest::strategy::Strategy<Value = &'static [u8]> {
        proptest::sample::select(vec![
            &b"Host: h\r\n"[..],
            b"Host: h\n",
            b"X: \r\n",
            b"X:\n",
            b"X: a \t\r\n",
            b"X: a \t\n",
            b"X:\t\t\n",
            b"Content-Length: 5\r\n",
            b"content-length:5 \n",
            b"Content-Length: 6\r\n",
            b"Content-Length: +5\r\n",
            b"Content-Length: \r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"transfer-encoding:  Chunked \r\n",
            b"Transfer-Encoding: gzip, chunked\r\n",
            b"Transfer-Encoding: chunked\n",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// The one-pass judge reads every head httparse parses as the
        /// rule-by-rule reading did.
        #[test]
        fn judge_parsed_reads_as_its_reference(
            request_line in proptest::sample::select(vec![
                &b"GET / HTTP/1.1\r\n"[..],
                b"PUT /v2.1/servers/x?a=1 HTTP/1.0\r\n",
                b"POST * HTTP/1.1\n",
                b"\r\nGET http://h/x HTTP/1.1\r\n",
                b"\nGET / HTTP/1.1\r\n",
            ]),
            lines in proptest::collection::vec(line(), 0..6),
            blank in proptest::sample::select(vec![&b"\r\n"[..], b"\n"]),
        ) {
            let head = [request_line, &lines.concat(), blank].concat();
            let mut headers = [httparse::EMPTY_HEADER; 8];
            let mut req = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(len)) = req.parse(&head) {
                let start = leading_empty_lines(&head);
                let head = &head[start..len];
                proptest::prop_assert_eq!(judge_parsed(&req, head), judge_reference(&req, head));
            }
        }
    }

    #[test]
    fn heads_end_at_their_first_blank_line() {
        // Byte by byte, as it was first written.
        let reference = |buf: &[u8], from: usize| {
            (from..buf.len()).find_map(|i| match &buf[i..] {
                [b'\n', b'\n', ..] => Some(i + 2),
                [b'\n', b'\r', b'\n', ..] => Some(i + 3),
                _ => None,
            })
        };
        let heads: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: h\r\n\r\nbody",
            b"GET / HTTP/1.1\nHost: h\n\nbody",
            b"GET / HTTP/1.1\r\nHost: h\r\n\r",
            b"GET / HTTP/1.1\r\nHost: h\r\n",
            b"\n\n",
            b"\n\r\n",
            b"GET / HTTP/1.1\r\nX: \r\r\n\n\rHost: a-much-longer-value\r\n\r\n",
        ];
        for buf in heads {
            for from in 0..=buf.len() {
                assert_eq!(
                    head_end(buf, from),
                    reference(buf, from),
                    "{:?} from {from}",
                    String::from_utf8_lossy(buf)
                );
            }
        }
        assert_eq!(head_end(heads[0], 0), Some(27));
    }
}
