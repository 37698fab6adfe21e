//! Nova's response heads: parsed once with httparse, their body's framing
//! decided as RFC 9112 §6.3 says, and re-emitted for the client without the
//! hop-by-hop headers. Pure: no I/O.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;

use super::head::{header_slots, offsets, STACK_HEADERS};
use crate::wire::framing::{decimal, eq_lower, head_end, list_items, trim};

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (a HEAD request, 1xx, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until Nova closes the connection.
    UntilClose,
}

/// A response Nova sent that cannot be read one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadResponse {
    /// Not an HTTP/1 response head, or over the limits.
    Malformed,
    /// `Content-Length`s that differ or are not numbers.
    Length,
}

impl std::fmt::Display for BadResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadResponse::Malformed => "malformed response head",
            BadResponse::Length => "invalid Content-Length in the response",
        })
    }
}

impl std::error::Error for BadResponse {}

#[derive(Debug, Clone)]
pub struct ResponseHead {
    bytes: Bytes,
    pub status: u16,
    reason: Range<usize>,
    fields: Vec<Field>,
    /// The first `X-OpenStack-Request-ID` line, among `fields`.
    request_id: Option<usize>,
    pub framing: BodyFraming,
    /// Nova will close the connection after this response.
    pub close: bool,
}

/// A header line: where its name and value are in the head, and whether
/// it goes on to the client.
#[derive(Debug, Clone)]
struct Field {
    name: Range<usize>,
    value: Range<usize>,
    end_to_end: bool,
}

/// The hop-by-hop headers nova-guard reads or drops; `Content-Length` is
/// among them because the codec writes the framing itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hop {
    Connection,
    TransferEncoding,
    ContentLength,
    Other,
}

/// Whether `name` is a hop-by-hop header, and which: by its length first,
/// so that most names are compared with none.
fn hop_by_hop(name: &[u8]) -> Option<Hop> {
    let (known, hop): (&[u8], Hop) = match name.len() {
        2 => (b"te", Hop::Other),
        7 if name.first().is_some_and(|b| b.eq_ignore_ascii_case(&b't')) => {
            (b"trailer", Hop::Other)
        }
        7 => (b"upgrade", Hop::Other),
        10 if name.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'c')) => {
            (b"connection", Hop::Connection)
        }
        10 => (b"keep-alive", Hop::Other),
        14 => (b"content-length", Hop::ContentLength),
        16 => (b"proxy-connection", Hop::Other),
        17 => (b"transfer-encoding", Hop::TransferEncoding),
        _ => return None,
    };
    eq_lower(name, known).then_some(hop)
}

impl ResponseHead {
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    pub fn reason(&self) -> &[u8] {
        &self.bytes[self.reason.clone()]
    }

    /// Header lines, as received.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields.iter().map(|f| self.field(f))
    }

    fn field(&self, f: &Field) -> (&[u8], &[u8]) {
        (&self.bytes[f.name.clone()], &self.bytes[f.value.clone()])
    }

    /// Nova's request id (its first `X-OpenStack-Request-ID` line), found
    /// as the head was read: every answer's is logged.
    pub fn request_id(&self) -> Option<&[u8]> {
        let f = self.fields.get(self.request_id?)?;
        Some(&self.bytes[f.value.clone()])
    }

    /// The first line named `name` (in lowercase), in any case.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| eq_lower(n, name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The lines a client gets: without hop-by-hop headers (those the
    /// `Connection` header names too) and without the framing, which the
    /// codec writes itself.
    pub fn end_to_end(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.fields
            .iter()
            .filter(|f| f.end_to_end)
            .map(|f| self.field(f))
    }
}

/// The length of a whole response head at the start of `buf`, if there is one.
pub fn head_len(buf: &[u8], max: usize) -> Result<Option<usize>, BadResponse> {
    match head_end(buf, 0) {
        Some(end) if end <= max => Ok(Some(end)),
        Some(_) => Err(BadResponse::Malformed),
        None if buf.len() > max => Err(BadResponse::Malformed),
        None => Ok(None),
    }
}

/// Parse a whole response head. `head_request`: the request was `HEAD`.
pub fn parse(
    bytes: Bytes,
    max_headers: usize,
    head_request: bool,
) -> Result<ResponseHead, BadResponse> {
    let parts = read(&bytes, max_headers, head_request)
        .map(|(parts, _)| parts)
        .map_err(|unread| match unread {
            Unread::NotWhole => BadResponse::Malformed,
            Unread::Refused(e, _) => e,
        });
    keep(parts, bytes)
}

fn keep(parts: Result<Parts, BadResponse>, bytes: Bytes) -> Result<ResponseHead, BadResponse> {
    let p = parts?;
    Ok(ResponseHead {
        bytes,
        status: p.status,
        reason: p.reason,
        fields: p.fields,
        request_id: p.request_id,
        framing: p.framing,
        close: p.close,
    })
}

/// A response head parsed where it was read, before its bytes are taken
/// out of the read buffer.
pub struct InPlace {
    len: usize,
    parts: Result<Parts, BadResponse>,
}

impl InPlace {
    /// Where the head ends in the buffer: its length, blank line included.
    pub fn end(&self) -> usize {
        self.len
    }

    /// The head, given its bytes (the first [`Self::end`] of the buffer it
    /// was parsed in), or why it is refused.
    pub fn keep(self, bytes: Bytes) -> Result<ResponseHead, BadResponse> {
        debug_assert_eq!(bytes.len(), self.len);
        keep(self.parts, bytes)
    }
}

/// The response head at the start of `buf`, when httparse finds all of it
/// there, within `max` bytes. `None` when it does not: its end is then
/// found with [`head_len`] and it is read with [`parse`], whose answer for
/// it is the same. A buffer that starts with an empty line is left to
/// them too: httparse skips such lines, `head_len` ends the head there.
pub fn parse_in_place(
    buf: &[u8],
    max: usize,
    max_headers: usize,
    head_request: bool,
) -> Option<InPlace> {
    if matches!(buf.first(), None | Some(b'\r' | b'\n')) {
        return None;
    }
    let (parts, len) = match read(buf, max_headers, head_request) {
        Ok((parts, len)) => (Ok(parts), len),
        Err(Unread::Refused(e, len)) => (Err(e), len),
        Err(Unread::NotWhole) => return None,
    };
    (len <= max).then_some(InPlace { len, parts })
}

/// Why [`read`] gave no head.
enum Unread {
    /// httparse found no whole head.
    NotWhole,
    /// A whole head (this long), refused.
    Refused(BadResponse, usize),
}

/// A [`ResponseHead`] but for its bytes.
struct Parts {
    status: u16,
    reason: Range<usize>,
    fields: Vec<Field>,
    request_id: Option<usize>,
    framing: BodyFraming,
    close: bool,
}

/// The head at the start of `bytes`, and its length.
fn read(bytes: &[u8], max_headers: usize, head_request: bool) -> Result<(Parts, usize), Unread> {
    let (mut stack, mut heap) = ([const { MaybeUninit::uninit() }; STACK_HEADERS], Vec::new());
    let slots = header_slots(&mut stack, &mut heap, max_headers);
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, bytes, slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err(Unread::NotWhole),
    };
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(Unread::NotWhole);
    };
    let reason = offsets(bytes, resp.reason.unwrap_or_default().as_bytes());
    // One pass: the lines kept, and what the hop-by-hop ones say.
    let (mut close, mut keep_alive, mut names_any) = (false, false, false);
    let mut last_coding = None;
    let mut length: Result<Option<u64>, BadResponse> = Ok(None);
    let mut fields = Vec::with_capacity(resp.headers.len());
    let mut request_id = None;
    for h in resp.headers.iter() {
        let hop = hop_by_hop(h.name.as_bytes());
        match hop {
            Some(Hop::Connection) => {
                for t in list_items(h.value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive = true;
                    }
                    names_any |= !t.is_empty();
                }
            }
            // The last coding of the last line.
            Some(Hop::TransferEncoding) => last_coding = list_items(h.value).next_back(),
            Some(Hop::ContentLength) => {
                if let Ok(known) = length {
                    length = match decimal(trim(h.value)) {
                        Some(n) if known.is_none_or(|l| l == n) => Ok(Some(n)),
                        _ => Err(BadResponse::Length),
                    };
                }
            }
            Some(Hop::Other) => {}
            None => {
                if request_id.is_none() && eq_lower(h.name.as_bytes(), b"x-openstack-request-id") {
                    request_id = Some(fields.len());
                }
            }
        }
        fields.push(Field {
            name: offsets(bytes, h.name.as_bytes()),
            value: offsets(bytes, h.value),
            end_to_end: hop.is_none(),
        });
    }
    if names_any {
        // Lines the `Connection` header names are hop-by-hop too, wherever
        // they stand (a line named `close` as well).
        let named: Vec<&[u8]> = resp
            .headers
            .iter()
            .filter(|h| hop_by_hop(h.name.as_bytes()) == Some(Hop::Connection))
            .flat_map(|h| list_items(h.value))
            .filter(|t| !t.is_empty())
            .collect();
        for (f, h) in fields.iter_mut().zip(resp.headers.iter()) {
            if named
                .iter()
                .any(|t| h.name.as_bytes().eq_ignore_ascii_case(t))
            {
                f.end_to_end = false;
            }
        }
    }
    if version == 0 && !keep_alive {
        close = true;
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        BodyFraming::Empty
    } else if let Some(last) = last_coding {
        if last.eq_ignore_ascii_case(b"chunked") && version == 1 {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        // Lengths matter only when they frame the body.
        length
            .map_err(|e| Unread::Refused(e, len))?
            .map_or(BodyFraming::UntilClose, BodyFraming::Length)
    };
    if framing == BodyFraming::UntilClose {
        close = true;
    }
    let parts = Parts {
        status,
        reason,
        fields,
        request_id,
        framing,
        close,
    };
    Ok((parts, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8], head_request: bool) -> Result<ResponseHead, BadResponse> {
        let len = head_len(text, 65536)?.expect("whole head");
        parse(Bytes::copy_from_slice(&text[..len]), 100, head_request)
    }

    /// Bytes of response heads, whole and broken.
    fn head_piece() -> impl proptest::strategy::Strategy<Value = &'static [u8]> {
        proptest::sample::select(vec![
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.0 204 No Content\r\n",
            b"HTTP/1.1 100 Continue\r\n",
            b"HTTP/1.1",
            b" ",
            b"200",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b"Content-Length: 5\r\n",
            b"content-length: 6\r\n",
            b"Content-Length: x\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Connection: close, X-A\r\n",
            b"X-A: a\n",
            b"\t",
            b"x",
            b"\x00",
            b"\xc3\xa9",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// A head found in place is the one `head_len` finds, and is read
        /// as `parse` reads it.
        #[test]
        fn in_place_reads_as_head_len_and_parse_do(
            pieces in proptest::collection::vec(head_piece(), 0..16),
            head_request in proptest::bool::ANY,
            small in proptest::bool::ANY,
        ) {
            let buf = pieces.concat();
            let (max, max_headers) = if small { (40, 2) } else { (65536, 100) };
            if let Some(found) = parse_in_place(&buf, max, max_headers, head_request) {
                let len = found.end();
                proptest::prop_assert_eq!(head_len(&buf, max), Ok(Some(len)));
                let bytes = Bytes::copy_from_slice(&buf[..len]);
                let here = format!("{:?}", found.keep(bytes.clone()));
                let there = format!("{:?}", parse(bytes, max_headers, head_request));
                proptest::prop_assert_eq!(here, there);
            }
        }
    }

    #[test]
    fn a_whole_head_is_parsed_in_place() {
        let text = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        let found = parse_in_place(text, 65536, 100, false).expect("a whole head");
        assert_eq!(found.end(), text.len() - 2);
        let r = found
            .keep(Bytes::copy_from_slice(&text[..text.len() - 2]))
            .unwrap();
        assert_eq!((r.status, r.framing), (200, BodyFraming::Length(2)));
        assert!(parse_in_place(&text[..20], 65536, 100, false).is_none());
        assert!(parse_in_place(&text[..], 30, 100, false).is_none());
        // httparse skips a leading empty line where `head_len` ends the head.
        let mut led = b"\r\n".to_vec();
        led.extend_from_slice(text);
        assert!(parse_in_place(&led, 65536, 100, false).is_none());
    }

    #[test]
    fn header_limits_below_and_above_the_stack_slots() {
        for max in [8, STACK_HEADERS, STACK_HEADERS + 50] {
            for (lines, ok) in [(max, true), (max + 1, false)] {
                let mut text = b"HTTP/1.1 200 OK\r\n".to_vec();
                for i in 0..lines {
                    text.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
                }
                text.extend_from_slice(b"\r\n");
                match parse(Bytes::from(text), max, false) {
                    Ok(h) => assert!(ok && h.headers().count() == lines),
                    Err(e) => assert!(!ok && e == BadResponse::Malformed),
                }
            }
        }
    }

    #[test]
    fn framing_as_rfc_9112_reads_it() {
        let cases: &[(&[u8], bool, BodyFraming, bool)] = &[
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                false,
                BodyFraming::Length(5),
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                true,
                BodyFraming::Empty,
                false,
            ),
            (
                b"HTTP/1.1 204 No Content\r\n\r\n",
                false,
                BodyFraming::Empty,
                false,
            ),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                false,
                BodyFraming::Empty,
                false,
            ),
            (
                b"HTTP/1.1 100 Continue\r\n\r\n",
                false,
                BodyFraming::Empty,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                false,
                BodyFraming::Chunked,
                false,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                BodyFraming::UntilClose,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n",
                false,
                BodyFraming::UntilClose,
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
                BodyFraming::Length(0),
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                BodyFraming::Length(0),
                true,
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
                BodyFraming::Length(0),
                false,
            ),
        ];
        for (text, head_request, framing, close) in cases {
            let h = head(text, *head_request).unwrap();
            assert_eq!(
                (h.framing, h.close),
                (*framing, *close),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        assert_eq!(
            head(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                false
            )
            .err(),
            Some(BadResponse::Length)
        );
        assert_eq!(
            head(b"HTTP/1.1 2x0 OK\r\n\r\n", false).err(),
            Some(BadResponse::Malformed)
        );
    }

    #[test]
    fn framing_and_hop_by_hop_lines_across_several_lines() {
        type Case = (
            &'static [u8],
            bool,
            Result<(BodyFraming, bool), BadResponse>,
        );
        let cases: &[Case] = &[
            // The last coding of the last line decides.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                false,
                Ok((BodyFraming::UntilClose, true)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok((BodyFraming::Chunked, false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
                false,
                Ok((BodyFraming::UntilClose, true)),
            ),
            // Lengths that do not agree matter only when they frame the body.
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                false,
                Ok((BodyFraming::Chunked, false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                true,
                Ok((BodyFraming::Empty, false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
                false,
                Ok((BodyFraming::Length(3), false)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: x\r\n\r\n",
                false,
                Err(BadResponse::Length),
            ),
            (
                b"HTTP/1.0 200 OK\r\nConnection: x, Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                false,
                Ok((BodyFraming::Length(0), false)),
            ),
        ];
        for (text, head_request, expected) in cases {
            let got = head(text, *head_request).map(|h| (h.framing, h.close));
            assert_eq!(&got, expected, "{:?}", String::from_utf8_lossy(text));
        }
        // A `Connection` line after the line it names.
        let h = head(
            b"HTTP/1.1 200 OK\r\nX-A: 1\r\nTE: x\r\nConnection: ,x-a,\r\nX-B: 2\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        let kept: Vec<_> = h.end_to_end().map(|(n, _)| n).collect();
        assert_eq!(kept, [&b"X-B"[..]]);
        // `close` names a line too, however rarely one has that name.
        let h = head(
            b"HTTP/1.1 200 OK\r\nClose: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.end_to_end().count(), 0);
    }

    /// The reading of a head line by line, one question at a time, as it
    /// was written before the single pass: the single pass must agree.
    fn reference(
        text: &[u8],
        head_request: bool,
    ) -> Result<(BodyFraming, bool, Vec<Vec<u8>>), BadResponse> {
        const HOP: [&[u8]; 8] = [
            b"connection",
            b"keep-alive",
            b"proxy-connection",
            b"te",
            b"trailer",
            b"transfer-encoding",
            b"upgrade",
            b"content-length",
        ];
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(text) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(BadResponse::Malformed),
        }
        let (status, version) = (resp.code.unwrap(), resp.version.unwrap());
        let lines: Vec<(&[u8], &[u8])> = resp
            .headers
            .iter()
            .map(|h| (h.name.as_bytes(), h.value))
            .collect();
        let tokens = |name: &'static [u8]| {
            lines
                .iter()
                .filter(move |(n, _)| eq_lower(n, name))
                .flat_map(|(_, v)| v.split(|b| *b == b','))
                .map(trim)
        };
        let mut close = tokens(b"connection").any(|t| t.eq_ignore_ascii_case(b"close"));
        if version == 0 && !tokens(b"connection").any(|t| t.eq_ignore_ascii_case(b"keep-alive")) {
            close = true;
        }
        let framing =
            if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
                BodyFraming::Empty
            } else if let Some(last) = tokens(b"transfer-encoding").next_back() {
                if last.eq_ignore_ascii_case(b"chunked") && version == 1 {
                    BodyFraming::Chunked
                } else {
                    BodyFraming::UntilClose
                }
            } else {
                let mut length = None;
                for (_, v) in lines.iter().filter(|(n, _)| eq_lower(n, b"content-length")) {
                    let n = decimal(trim(v)).ok_or(BadResponse::Length)?;
                    if length.is_some_and(|l| l != n) {
                        return Err(BadResponse::Length);
                    }
                    length = Some(n);
                }
                length.map_or(BodyFraming::UntilClose, BodyFraming::Length)
            };
        if framing == BodyFraming::UntilClose {
            close = true;
        }
        let named: Vec<&[u8]> = tokens(b"connection").filter(|t| !t.is_empty()).collect();
        let kept = lines
            .iter()
            .filter(|(n, _)| {
                !HOP.iter().any(|h| eq_lower(n, h))
                    && !named.iter().any(|t| n.eq_ignore_ascii_case(t))
            })
            .map(|(n, _)| n.to_vec())
            .collect();
        Ok((framing, close, kept))
    }

    proptest::proptest! {
        #[test]
        fn one_pass_reads_heads_as_line_by_line_questions_do(
            version in 0..2usize,
            status in proptest::sample::select(vec![100u16, 200, 204, 304, 404]),
            head_request in proptest::bool::ANY,
            lines in proptest::collection::vec((0..16usize, 0..15usize), 0..8),
        ) {
            const NAMES: [&str; 16] = [
                "Connection", "connection", "CONNECTION", "Transfer-Encoding",
                "Content-Length", "content-length", "TE", "Keep-Alive", "X-A", "x-a",
                "Close", "Trailer", "Upgrade", "Proxy-Connection",
                "X-OpenStack-Request-ID", "Vary",
            ];
            const VALUES: [&str; 15] = [
                "close", "keep-alive", "Keep-Alive", "x-a", "X-A, close", ",", "chunked",
                "gzip", "gzip, chunked", "chunked,", "5", "6", "x", "", "upgrade",
            ];
            let mut text = format!("HTTP/1.{version} {status} R\r\n");
            for (n, v) in &lines {
                text.push_str(&format!("{}: {}\r\n", NAMES[*n], VALUES[*v]));
            }
            text.push_str("\r\n");
            let want = reference(text.as_bytes(), head_request);
            let got = head(text.as_bytes(), head_request).map(|h| {
                let kept = h.end_to_end().map(|(n, _)| n.to_vec()).collect::<Vec<_>>();
                proptest::prop_assert_eq!(h.headers().count(), lines.len());
                Ok((h.framing, h.close, kept))
            });
            match (got, want) {
                (Ok(got), Ok(want)) => proptest::prop_assert_eq!(got?, want, "{}", text),
                (Err(got), Err(want)) => proptest::prop_assert_eq!(got, want, "{}", text),
                (got, want) => proptest::prop_assert!(
                    false, "{}: {:?} against {:?}", text, got.map(|_| ()), want.map(|_| ())
                ),
            }
        }
    }

    #[test]
    fn hop_by_hop_headers_stay_between_nova_and_nova_guard() {
        let h = head(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-OpenStack-Request-ID: req-1\r\nVary: A\r\nVary: B\r\n\r\n",
            false,
        )
        .unwrap();
        let kept: Vec<_> = h
            .end_to_end()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        assert_eq!(kept, ["X-OpenStack-Request-ID", "Vary", "Vary"]);
        assert_eq!(h.header("x-openstack-request-id"), Some(&b"req-1"[..]));
        assert_eq!(h.request_id(), Some(&b"req-1"[..]));
        let h = head(
            b"HTTP/1.1 200 OK\r\nx-openstack-request-id: a\r\nX-OpenStack-Request-Id: b\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(h.request_id(), Some(&b"a"[..]));
        let h = head(b"HTTP/1.1 200 OK\r\nX-OpenStack-Request: a\r\n\r\n", false).unwrap();
        assert_eq!(h.request_id(), None);
        assert_eq!(h.status, 200);
        assert_eq!(h.reason(), b"OK");
    }
}
