//! Request heads, parsed once with httparse and judged on the bytes as sent:
//! the limits (431, 414), bytes HTTP forbids in the target (400), framing
//! that could be read two ways (400, [`crate::wire::framing`]), and the
//! HTTP/2 preface, which is not this codec's to serve. Pure: no I/O.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::Bytes;

use crate::wire::framing::{
    eq_lower, head_end, judge_parsed, leading_empty_lines, list_items, trim,
};
use crate::wire::{Ambiguity, Framing};

/// What a client connection's heads may be.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of a head, request line included (431 beyond).
    pub max_head_bytes: usize,
    /// Header lines (431 beyond).
    pub max_headers: usize,
    /// Bytes of the request target (414 beyond).
    pub max_uri_bytes: usize,
}

pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a head is refused (or not ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Over the byte or the line limit: 431.
    TooLarge,
    /// Not HTTP/1, or a target with bytes HTTP forbids: 400.
    Malformed,
    /// A target over the limit: 414.
    UriTooLong,
    /// Framing that could be read two ways: 400.
    Ambiguous(Ambiguity),
    /// The HTTP/2 connection preface: served by the HTTP/2 path.
    Http2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// A request head, parsed once; its text stays in `bytes`.
#[derive(Debug, Clone)]
pub struct RequestHead {
    bytes: Bytes,
    method: Range<usize>,
    target: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub version: Version,
    pub framing: Framing,
    /// The client asked for the connection to end after this exchange
    /// (`Connection: close`, or HTTP/1.0 without `keep-alive`).
    pub close: bool,
    /// `Expect: 100-continue` on HTTP/1.1.
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn method(&self) -> &str {
        self.text(&self.method)
    }

    /// The method's bytes as received, without the UTF-8 check of
    /// [`Self::method`].
    pub fn method_bytes(&self) -> &[u8] {
        &self.bytes[self.method.clone()]
    }

    /// The request target as received.
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The target's bytes, without the UTF-8 check of [`Self::target`].
    pub fn target_bytes(&self) -> &[u8] {
        &self.bytes[self.target.clone()]
    }

    fn text(&self, r: &Range<usize>) -> &str {
        // httparse gave these as `&str`.
        std::str::from_utf8(&self.bytes[r.clone()]).unwrap_or("")
    }

    /// Header lines, in order, as received.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + Clone + '_ {
        self.headers
            .iter()
            .map(|(n, v)| (&self.bytes[n.clone()], &self.bytes[v.clone()]))
    }

    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The request body's length, when its framing gives one.
    pub fn content_length(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(n) => Some(n),
            Framing::None => Some(0),
            Framing::Chunked => None,
        }
    }
}

/// Looks for a head in a growing buffer, resuming where it stopped.
#[derive(Debug, Clone, Default)]
pub struct HeadScanner {
    searched: usize,
}

impl HeadScanner {
    pub fn reset(&mut self) {
        self.searched = 0;
    }

    /// Nothing of the current head has been searched yet.
    pub fn is_fresh(&self) -> bool {
        self.searched == 0
    }

    /// A whole head at the start of `buf`: its length (up to and with the
    /// blank line), or `Ok(None)` while more bytes are needed.
    ///
    /// `first`: the connection's first request, which may be the HTTP/2
    /// preface instead.
    pub fn scan(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        first: bool,
    ) -> Result<Option<usize>, HeadError> {
        if first {
            if buf.starts_with(H2_PREFACE) {
                return Err(HeadError::Http2);
            }
            if H2_PREFACE.starts_with(buf) {
                return Ok(None);
            }
        }
        let start = leading_empty_lines(buf);
        // Look for the blank line only in what is new (and the 3 bytes before).
        let from = self.searched.saturating_sub(3).max(start);
        match head_end(&buf[start..], from - start) {
            Some(end) if start + end > limits.max_head_bytes => Err(HeadError::TooLarge),
            Some(end) => Ok(Some(start + end)),
            None if buf.len() > limits.max_head_bytes => Err(HeadError::TooLarge),
            None => {
                self.searched = buf.len();
                Ok(None)
            }
        }
    }
}

/// Bytes HTTP forbids in a request target (RFC 9112 §3.2, RFC 3986 §2):
/// controls, space, DEL and `"` `<` `>` `\` `^` `` ` `` `{` `|` `}`. Bytes
/// above 0x7f pass, as hyper lets them (valid UTF-8 in a path).
const fn forbidden_in_target(b: u8) -> bool {
    b <= 0x20
        || b == 0x7f
        || matches!(
            b,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

/// [`forbidden_in_target`] for every byte, looked up: every byte of every
/// target is checked.
const FORBIDDEN_IN_TARGET: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = forbidden_in_target(b as u8);
        b += 1;
    }
    table
};

/// Where `inner`, a slice httparse gave of `outer`, lies in it: the parsed
/// parts of a head are kept as ranges of its bytes.
pub(crate) fn offsets(outer: &[u8], inner: &[u8]) -> Range<usize> {
    let start = (inner.as_ptr() as usize).saturating_sub(outer.as_ptr() as usize);
    start..start + inner.len()
}

/// Header slots kept on the stack, enough for the default limit of 100
/// lines; a higher limit takes them from the heap.
pub(crate) const STACK_HEADERS: usize = 128;

/// httparse's slots for at most `max` header lines, of `stack` or else of
/// `heap`. Left uninitialised: httparse writes only the slots it fills, so
/// the unused ones cost nothing.
pub(crate) fn header_slots<'s, 'h>(
    stack: &'s mut [MaybeUninit<httparse::Header<'h>>; STACK_HEADERS],
    heap: &'s mut Vec<MaybeUninit<httparse::Header<'h>>>,
    max: usize,
) -> &'s mut [MaybeUninit<httparse::Header<'h>>] {
    if max <= STACK_HEADERS {
        &mut stack[..max]
    } else {
        *heap = vec![MaybeUninit::uninit(); max];
        heap
    }
}

/// Parse the whole head `bytes` (as found by [`HeadScanner::scan`]).
pub fn parse(bytes: Bytes, limits: &Limits) -> Result<RequestHead, HeadError> {
    parse_keeping(bytes, limits).map_err(|(e, _)| e)
}

/// [`parse`], giving `bytes` back with a refusal (whose request line may
/// still be logged) rather than needing a second handle on them.
pub fn parse_keeping(bytes: Bytes, limits: &Limits) -> Result<RequestHead, (HeadError, Bytes)> {
    let parts = match read(&bytes, limits) {
        Ok((parts, _)) => Ok(parts),
        Err(Unread::NotWhole(e) | Unread::Refused(e, _)) => Err(e),
    };
    keep(parts, bytes)
}

fn keep(parts: Result<Parts, HeadError>, bytes: Bytes) -> Result<RequestHead, (HeadError, Bytes)> {
    match parts {
        Ok(p) => Ok(RequestHead {
            bytes,
            method: p.method,
            target: p.target,
            headers: p.headers,
            version: p.version,
            framing: p.framing,
            close: p.close,
            expect_continue: p.expect_continue,
        }),
        Err(e) => Err((e, bytes)),
    }
}

/// A head parsed where it was read, before its bytes are taken out of the
/// read buffer.
pub struct InPlace {
    len: usize,
    parts: Result<Parts, HeadError>,
}

impl InPlace {
    /// Where the head ends in the buffer: its length, blank line included.
    pub fn end(&self) -> usize {
        self.len
    }

    /// The head, given its bytes (the first [`Self::end`] of the buffer it
    /// was parsed in), or why it is refused.
    pub fn keep(self, bytes: Bytes) -> Result<RequestHead, (HeadError, Bytes)> {
        debug_assert_eq!(bytes.len(), self.len);
        keep(self.parts, bytes)
    }
}

/// The head at the start of `buf`, when httparse finds all of it there.
/// `None` when it does not (part of it is still to come, or httparse
/// refuses what is there): the head's end is then found with
/// [`HeadScanner`] and it is read with [`parse_keeping`], as every head was
/// before. A head found here is the one the scanner would have found, and
/// gets the same answer; most heads come whole in one read, and are then
/// looked through once rather than twice.
pub fn parse_in_place(buf: &[u8], limits: &Limits) -> Option<InPlace> {
    match read(buf, limits) {
        // Over the byte limit: the scanner's refusal, which reads no line.
        Ok((_, len)) | Err(Unread::Refused(_, len)) if len > limits.max_head_bytes => None,
        Ok((parts, len)) => Some(InPlace {
            len,
            parts: Ok(parts),
        }),
        Err(Unread::Refused(e, len)) => Some(InPlace { len, parts: Err(e) }),
        Err(Unread::NotWhole(_)) => None,
    }
}

/// A [`RequestHead`] but for its bytes.
struct Parts {
    method: Range<usize>,
    target: Range<usize>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    version: Version,
    framing: Framing,
    close: bool,
    expect_continue: bool,
}

/// Why [`read`] gave no head.
enum Unread {
    /// httparse found no whole head: for a head whose end was found, a
    /// refusal (431 for too many lines, else 400).
    NotWhole(HeadError),
    /// The head (this long) is whole, and refused.
    Refused(HeadError, usize),
}

/// The head at the start of `bytes`, and its length.
fn read(bytes: &[u8], limits: &Limits) -> Result<(Parts, usize), Unread> {
    let start = leading_empty_lines(bytes);
    let (mut stack, mut heap) = ([const { MaybeUninit::uninit() }; STACK_HEADERS], Vec::new());
    let slots = header_slots(&mut stack, &mut heap, limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(bytes, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Err(httparse::Error::TooManyHeaders) => return Err(Unread::NotWhole(HeadError::TooLarge)),
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(Unread::NotWhole(HeadError::Malformed))
        }
    };
    let refused = |e| Unread::Refused(e, len);
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        return Err(refused(HeadError::Malformed));
    };
    let framing =
        judge_parsed(&req, &bytes[start..len]).map_err(|why| refused(HeadError::Ambiguous(why)))?;
    if target.len() > limits.max_uri_bytes {
        return Err(refused(HeadError::UriTooLong));
    }
    if target.bytes().any(|b| FORBIDDEN_IN_TARGET[usize::from(b)])
        || !is_request_target(method, target)
    {
        return Err(refused(HeadError::Malformed));
    }
    let version = match version {
        0 => Version::Http10,
        _ => Version::Http11,
    };
    let mut close = version == Version::Http10;
    let mut expect_continue = false;
    let mut headers = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if eq_lower(name, b"connection") {
            for token in list_items(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == Version::Http10 {
                    close = false;
                }
            }
        } else if eq_lower(name, b"expect") {
            expect_continue |=
                version == Version::Http11 && trim(h.value).eq_ignore_ascii_case(b"100-continue");
        }
        headers.push((offsets(bytes, name), offsets(bytes, h.value)));
    }
    // `Connection: close` anywhere wins over `keep-alive`, as in hyper.
    if version == Version::Http10 && close_token(&req) {
        close = true;
    }
    let method = offsets(bytes, method.as_bytes());
    let target = offsets(bytes, target.as_bytes());
    let parts = Parts {
        method,
        target,
        headers,
        version,
        framing,
        close,
        expect_continue,
    };
    Ok((parts, len))
}

/// One of RFC 9112's four forms: origin (`/path`), absolute
/// (`scheme://...`), asterisk (`*`), or authority (CONNECT's `host:port`).
/// Anything else, like `%2Fv2/...` or `./v2.1/...`, some WSGI servers still
/// turn into a path (uWSGI decodes the first, drops the `./` of the second)
/// that nova-guard would not have routed.
pub fn is_request_target(method: &str, target: &str) -> bool {
    target.starts_with('/')
        || target == "*"
        || method == "CONNECT"
        || crate::nova::route::absolute_form(target).is_some()
}

fn close_token(req: &httparse::Request<'_, '_>) -> bool {
    req.headers
        .iter()
        .filter(|h| eq_lower(h.name.as_bytes(), b"connection"))
        .flat_map(|h| list_items(h.value))
        .any(|t| t.eq_ignore_ascii_case(b"close"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_head_bytes: 16384,
        max_headers: 100,
        max_uri_bytes: 8192,
    };

    fn head(text: &[u8]) -> Result<RequestHead, HeadError> {
        let mut scanner = HeadScanner::default();
        let len = scanner
            .scan(text, &LIMITS, true)?
            .unwrap_or_else(|| panic!("incomplete: {:?}", String::from_utf8_lossy(text)));
        parse(Bytes::copy_from_slice(&text[..len]), &LIMITS)
    }

    #[test]
    fn a_head_is_parsed_once_into_what_the_proxy_needs() {
        let h = head(b"\r\nPUT /v2.1/servers/x?y=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\nX_Y: z\r\n\r\nhello").unwrap();
        assert_eq!(h.method(), "PUT");
        assert_eq!(h.target(), "/v2.1/servers/x?y=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(!h.close);
        assert!(h.expect_continue);
        let headers: Vec<_> = h.headers().collect();
        assert_eq!(headers.len(), 4);
        assert_eq!(headers[3], (&b"X_Y"[..], &b"z"[..]));
    }

    #[test]
    fn keep_alive_as_hyper_reads_it() {
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", true),
            (
                b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n",
                true,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
                true,
            ),
        ];
        for (text, close) in cases {
            assert_eq!(
                head(text).unwrap().close,
                *close,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn request_targets_in_one_of_the_four_forms() {
        for (line, ok) in [
            (&b"PUT /v2.1/servers/x HTTP/1.1"[..], true),
            (b"PUT http://nova/v2.1/servers/x HTTP/1.1", true),
            (b"PUT HTTP://nova HTTP/1.1", true),
            (b"OPTIONS * HTTP/1.1", true),
            (b"CONNECT nova:8774 HTTP/1.1", true),
            // uWSGI reads these as /v2/..., /v2.1/...
            (b"PUT %2Fv2/p/servers/x HTTP/1.1", false),
            (b"PUT ./v2.1/servers/x HTTP/1.1", false),
            (b"PUT v2.1/servers/x HTTP/1.1", false),
            (b"PUT nova:8774 HTTP/1.1", false),
            (b"PUT 1http://nova/v2.1 HTTP/1.1", false),
        ] {
            let mut text = line.to_vec();
            text.extend_from_slice(b"\r\nHost: h\r\n\r\n");
            let got = head(&text);
            assert_eq!(got.is_ok(), ok, "{:?}", String::from_utf8_lossy(line));
            if !ok {
                assert!(matches!(got, Err(HeadError::Malformed)));
            }
        }
    }

    #[test]
    fn refused_heads() {
        use Ambiguity::*;
        let cases: &[(&[u8], HeadError)] = &[
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HeadError::Ambiguous(LengthAndChunked),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\n\n",
                HeadError::Ambiguous(BareLf),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                HeadError::Malformed,
            ),
            (b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", HeadError::Malformed),
            (b"GET / HTTP/2.0\r\n\r\n", HeadError::Malformed),
            (b"G\x01T / HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET /a\x7fb HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET /a{b} HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET /a|b HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET /a\"b HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET /a^b HTTP/1.1\r\n\r\n", HeadError::Malformed),
            (b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", HeadError::Malformed),
            (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", HeadError::Malformed),
        ];
        for (text, expected) in cases {
            assert_eq!(
                head(text).err(),
                Some(*expected),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(head(&many).err(), Some(HeadError::TooLarge));
        // A limit above the slots kept on the stack.
        let high = Limits {
            max_headers: STACK_HEADERS + 50,
            ..LIMITS
        };
        for (lines, ok) in [(STACK_HEADERS + 50, true), (STACK_HEADERS + 51, false)] {
            let mut text = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..lines {
                text.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
            }
            text.extend_from_slice(b"\r\n");
            match parse(Bytes::from(text), &high) {
                Ok(h) => assert!(ok && h.header_count() == lines),
                Err(e) => assert!(!ok && e == HeadError::TooLarge),
            }
        }
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(8192));
        assert_eq!(head(long.as_bytes()).err(), Some(HeadError::UriTooLong));
    }

    #[test]
    fn a_whole_head_is_parsed_in_place_and_a_partial_one_is_left() {
        let text = b"GET /v2.1/servers HTTP/1.1\r\nHost: h\r\n\r\nPUT";
        let found = parse_in_place(text, &LIMITS).expect("a whole head");
        assert_eq!(found.end(), text.len() - 3);
        let h = found
            .keep(Bytes::copy_from_slice(&text[..text.len() - 3]))
            .unwrap();
        assert_eq!((h.method(), h.target()), ("GET", "/v2.1/servers"));
        assert!(parse_in_place(&text[..20], &LIMITS).is_none());
        // Refused whole heads are found too; unparsable ones are left.
        let bad = b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        let found = parse_in_place(bad, &LIMITS).expect("a whole head");
        let refused = found.keep(Bytes::copy_from_slice(bad)).err().map(|e| e.0);
        assert_eq!(
            refused,
            Some(HeadError::Ambiguous(Ambiguity::DifferingLength))
        );
        assert!(parse_in_place(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n", &LIMITS).is_none());
    }

    /// Bytes of HTTP heads, whole and broken.
    fn head_piece() -> impl proptest::strategy::Strategy<Value = &'static [u8]> {
        proptest::sample::select(vec![
            &b"GET /v2.1/servers HTTP/1.1\r\n"[..],
            b"PUT /a HTTP/1.0\r\n",
            b"GET",
            b" ",
            b"/x",
            b"HTTP/1.1",
            b"\r\n",
            b"\n",
            b"\r",
            b":",
            b"Host: h\r\n",
            b"Content-Length: 5\r\n",
            b"content-length:1\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Connection: close\r\n",
            b"X: a\n",
            b"\t",
            b"x",
            b"\x00",
            b"\x7f",
            b"\xc3\xa9",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"{",
            b"%2F",
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        /// A head found in place is the one the scanner finds, and is read
        /// as `parse_keeping` reads it: the same head, or the same refusal.
        #[test]
        fn in_place_reads_as_the_scanner_and_parse_keeping_do(
            pieces in proptest::collection::vec(head_piece(), 0..24),
            small in proptest::bool::ANY,
        ) {
            let buf = pieces.concat();
            let limits = if small {
                Limits { max_head_bytes: 60, max_headers: 3, max_uri_bytes: 8 }
            } else {
                LIMITS
            };
            if let Some(found) = parse_in_place(&buf, &limits) {
                let len = found.end();
                let scanned = HeadScanner::default().scan(&buf, &limits, false);
                proptest::prop_assert_eq!(scanned, Ok(Some(len)));
                let bytes = Bytes::copy_from_slice(&buf[..len]);
                let here = format!("{:?}", found.keep(bytes.clone()));
                let there = format!("{:?}", parse_keeping(bytes, &limits));
                proptest::prop_assert_eq!(here, there);
            }
        }
    }

    #[test]
    fn the_scanner_finds_heads_split_anywhere_and_knows_http2() {
        let text = b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next";
        for at in 1..text.len() {
            let mut s = HeadScanner::default();
            let mut found = None;
            for end in [at, text.len()] {
                if let Some(n) = s.scan(&text[..end], &LIMITS, true).unwrap() {
                    found = Some(n);
                    break;
                }
            }
            assert_eq!(found, Some(text.len() - 9), "split at {at}");
        }
        let mut s = HeadScanner::default();
        assert_eq!(s.scan(&H2_PREFACE[..10], &LIMITS, true), Ok(None));
        assert_eq!(s.scan(H2_PREFACE, &LIMITS, true), Err(HeadError::Http2));
        // Not the first request: just a malformed head, for httparse to refuse.
        let mut s = HeadScanner::default();
        assert!(matches!(s.scan(H2_PREFACE, &LIMITS, false), Ok(Some(_))));
        let mut s = HeadScanner::default();
        let big = vec![b'a'; 16385];
        assert_eq!(s.scan(&big, &LIMITS, true), Err(HeadError::TooLarge));
    }
}
