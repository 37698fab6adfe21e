//! Nova's response heads: parsed once with httparse, their body's framing
//! decided as RFC 9112 §6.3 says, and re-emitted for the client without the
//! hop-by-hop headers. Pure: no I/O.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;

use super::head::{header_slots, STACK_HEADERS};
use crate::wire::framing::{decimal, eq_lower, head_end, trim};

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
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub framing: BodyFraming,
    /// Nova will close the connection after this response.
    pub close: bool,
}

const HOP_BY_HOP: [&[u8]; 8] = [
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"te",
    b"trailer",
    b"transfer-encoding",
    b"upgrade",
    // Re-emitted by the codec from the framing.
    b"content-length",
];

impl ResponseHead {
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    pub fn reason(&self) -> &[u8] {
        &self.bytes[self.reason.clone()]
    }

    /// Header lines, as received.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
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
        let named: Vec<&[u8]> = self
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .map(trim)
            .filter(|t| !t.is_empty())
            .collect();
        self.headers().filter(move |(n, _)| {
            !HOP_BY_HOP.iter().any(|h| eq_lower(n, h))
                && !named.iter().any(|t| n.eq_ignore_ascii_case(t))
        })
    }
}

fn offsets(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
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
    let (mut stack, mut heap) = ([const { MaybeUninit::uninit() }; STACK_HEADERS], Vec::new());
    let slots = header_slots(&mut stack, &mut heap, max_headers);
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, &bytes, slots)
    {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(BadResponse::Malformed),
    }
    let (Some(status), Some(version)) = (resp.code, resp.version) else {
        return Err(BadResponse::Malformed);
    };
    let reason = offsets(&bytes, resp.reason.unwrap_or_default().as_bytes());
    let is = |h: &httparse::Header<'_>, name: &str| eq_lower(h.name.as_bytes(), name.as_bytes());
    let tokens = |name: &'static str| {
        resp.headers
            .iter()
            .filter(move |h| is(h, name))
            .flat_map(|h| h.value.split(|b| *b == b','))
            .map(trim)
    };
    let mut close = tokens("connection").any(|t| t.eq_ignore_ascii_case(b"close"));
    if version == 0 && !tokens("connection").any(|t| t.eq_ignore_ascii_case(b"keep-alive")) {
        close = true;
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        BodyFraming::Empty
    } else if let Some(last) = tokens("transfer-encoding").next_back() {
        if last.eq_ignore_ascii_case(b"chunked") && version == 1 {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        let mut length = None;
        for h in resp.headers.iter().filter(|h| is(h, "content-length")) {
            let n = decimal(trim(h.value)).ok_or(BadResponse::Length)?;
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
    let headers = resp
        .headers
        .iter()
        .map(|h| (offsets(&bytes, h.name.as_bytes()), offsets(&bytes, h.value)))
        .collect();
    Ok(ResponseHead {
        bytes,
        status,
        reason,
        headers,
        framing,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8], head_request: bool) -> Result<ResponseHead, BadResponse> {
        let len = head_len(text, 65536)?.expect("whole head");
        parse(Bytes::copy_from_slice(&text[..len]), 100, head_request)
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
        assert_eq!(h.status, 200);
        assert_eq!(h.reason(), b"OK");
    }
}
