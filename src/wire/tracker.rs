//! The pure half of the wire watcher: the HTTP/1 request-head tracker and
//! the verdict queue it fills. No I/O, no runtime: the proxy feeds it the
//! bytes it reads (see [`super`]), the `wire` fuzz target feeds it directly.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::chunked::{BadChunk, ChunkedDecoder};
use super::framing::{head_end, judge, leading_empty_lines, Ambiguity, Framing, Judged};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A request's framing, as judged on the wire; put in its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireVerdict(pub Option<Ambiguity>);

#[derive(Debug, Default)]
struct Shared {
    /// One entry per head seen and not yet taken: (sequence, verdict).
    verdicts: VecDeque<(u64, Option<Ambiguity>)>,
    /// The stream could not be followed from some point on: no more heads
    /// will be queued.
    lost: bool,
}

/// The connection's verdict queue, shared by the watcher and the service.
#[derive(Debug, Clone, Default)]
pub struct WireWatch(Arc<Mutex<Shared>>);

impl WireWatch {
    pub fn new() -> Self {
        WireWatch::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The verdict on the next request hyper hands to the service. Heads seen
    /// before the stream was lost keep their own verdicts; a request with no
    /// head seen for it (the stream was lost before it) is refused.
    pub fn next_verdict(&self) -> WireVerdict {
        match self.lock().verdicts.pop_front() {
            Some((_, v)) => WireVerdict(v),
            None => WireVerdict(Some(Ambiguity::Unfollowed)),
        }
    }
}

#[derive(Debug)]
enum State {
    /// Reading a head; `first` is true for the connection's first message.
    Head { buf: Vec<u8>, first: bool },
    /// A body of known length.
    Fixed { remaining: u64 },
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// Not HTTP/1 (the HTTP/2 preface): not watched.
    Passive,
    /// Could not be followed: nothing more is judged.
    Lost,
}

/// Follows one connection's request stream.
#[derive(Debug)]
pub struct Tracker {
    state: State,
    seq: u64,
    max_head: usize,
    max_headers: usize,
    watch: WireWatch,
}

impl Tracker {
    pub fn new(watch: WireWatch, max_head: usize, max_headers: usize) -> Self {
        Tracker {
            state: State::Head {
                buf: Vec::new(),
                first: true,
            },
            seq: 0,
            max_head,
            max_headers: max_headers.max(1),
            watch,
        }
    }

    /// Observe bytes read from the client, in order.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Passive | State::Lost => return,
                State::Fixed { remaining } => {
                    let n = (*remaining).min(bytes.len() as u64);
                    *remaining -= n;
                    if *remaining == 0 {
                        self.next_head();
                    }
                    n as usize
                }
                State::Chunked(_) => self.feed_chunked(bytes),
                State::Head { .. } => self.feed_head(bytes),
            };
            bytes = &bytes[used..];
        }
    }

    fn next_head(&mut self) {
        self.state = State::Head {
            buf: Vec::new(),
            first: false,
        };
    }

    fn lose(&mut self) {
        self.state = State::Lost;
        self.watch.lock().lost = true;
    }

    /// The body of the current message cannot be followed: refuse the
    /// message if the service has not taken it yet, and everything after.
    fn lose_in_body(&mut self, why: Ambiguity) {
        let seq = self.seq;
        {
            let mut shared = self.watch.lock();
            if let Some(entry) = shared.verdicts.iter_mut().find(|(s, _)| *s == seq) {
                entry.1.get_or_insert(why);
            }
        }
        self.lose();
    }

    fn feed_head(&mut self, bytes: &[u8]) -> usize {
        let State::Head { buf, first } = &mut self.state else {
            return 0;
        };
        let old = buf.len();
        // While the bytes so far could be the HTTP/2 preface, no head end was
        // looked for in them: when they stop matching, look from the start.
        let was_preface = *first && H2_PREFACE.starts_with(buf);
        buf.extend_from_slice(bytes);
        // hyper serves HTTP/2 when the first 24 bytes are the preface,
        // whatever follows them in the same read (a client's SETTINGS frame).
        if *first && buf.starts_with(H2_PREFACE) {
            self.state = State::Passive;
            return bytes.len();
        }
        if *first && H2_PREFACE.starts_with(buf) {
            return bytes.len();
        }
        let start = leading_empty_lines(buf);
        // Look for the blank line only in what is new (and the 3 bytes before).
        let from = if was_preface {
            start
        } else {
            old.saturating_sub(3).max(start)
        };
        let end = head_end(&buf[start..], from - start).map(|e| start + e);
        let Some(end) = end else {
            if buf.len() > self.max_head {
                // hyper answers 431 and closes.
                self.lose();
            }
            return bytes.len();
        };
        let head = std::mem::take(buf);
        let used = end.saturating_sub(old);
        let verdict = judge(&head[..end], start, self.max_headers);
        self.seq += 1;
        let seq = self.seq;
        match verdict {
            Judged::Bad(why) => {
                self.watch.lock().verdicts.push_back((seq, Some(why)));
                // The answer closes the connection: nothing after is followed.
                self.lose();
            }
            Judged::Unparsed => {
                self.watch
                    .lock()
                    .verdicts
                    .push_back((seq, Some(Ambiguity::BadHead)));
                self.lose();
            }
            Judged::Good(framing) => {
                self.watch.lock().verdicts.push_back((seq, None));
                self.state = match framing {
                    Framing::Chunked => State::Chunked(ChunkedDecoder::new(self.max_headers)),
                    Framing::Length(0) | Framing::None => State::Head {
                        buf: Vec::new(),
                        first: false,
                    },
                    Framing::Length(n) => State::Fixed { remaining: n },
                };
            }
        }
        if end < old {
            // Only after a broken preface: bytes past the head were already
            // taken by an earlier call; follow them as the next message.
            let rest = head[end..].to_vec();
            self.feed(&rest);
            return bytes.len();
        }
        used
    }

    /// Follows a chunked body with the one chunk grammar hyper also reads.
    fn feed_chunked(&mut self, bytes: &[u8]) -> usize {
        let State::Chunked(decoder) = &mut self.state else {
            return 0;
        };
        let mut i = 0;
        while i < bytes.len() {
            match decoder.decode(&bytes[i..]) {
                Ok(step) => {
                    i += step.consumed;
                    if step.done {
                        self.next_head();
                        return i;
                    }
                }
                Err(BadChunk) => {
                    self.lose_in_body(Ambiguity::BadChunk);
                    return bytes.len();
                }
            }
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(chunks: &[&[u8]]) -> (Vec<Option<Ambiguity>>, bool) {
        let watch = WireWatch::new();
        let mut t = Tracker::new(watch.clone(), 65536, 100);
        for c in chunks {
            t.feed(c);
        }
        let shared = watch.lock();
        (
            shared.verdicts.iter().map(|(_, v)| *v).collect(),
            shared.lost,
        )
    }

    fn one(req: &[u8]) -> Option<Ambiguity> {
        let (v, _) = verdicts(&[req]);
        assert_eq!(v.len(), 1, "{:?}", String::from_utf8_lossy(req));
        v[0]
    }

    #[test]
    fn a_head_inside_a_broken_http2_preface_is_judged_however_it_is_split() {
        let stream: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\nSM\r\n";
        let whole = verdicts(&[stream]);
        assert_eq!(whole, (vec![Some(Ambiguity::BadHead)], true));
        for at in 1..stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(verdicts(&[a, b]), whole, "split at {at}");
        }
    }

    #[test]
    fn framing_is_judged_on_the_wire() {
        use Ambiguity::*;
        let cases: &[(&[u8], Option<Ambiguity>)] = &[
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", None),
            (b"PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", None),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
                None,
            ),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(LengthAndChunked),
            ),
            (
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
                Some(LengthAndChunked),
            ),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
                Some(DifferingLength),
            ),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: +2\r\n\r\n",
                Some(InvalidLength),
            ),
            (
                b"PUT / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\n",
                Some(InvalidLength),
            ),
            (
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
                Some(TransferEncoding),
            ),
            (
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(TransferEncoding),
            ),
            (
                b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Some(TransferEncoding),
            ),
            (b"GET / HTTP/1.1\nHost: x\r\n\r\n", Some(BareLf)),
            (b"GET / HTTP/1.1\r\nHost: x\n\n", Some(BareLf)),
            (b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", Some(BadHead)),
            (
                b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
                Some(BadChunk),
            ),
        ];
        for (req, expected) in cases {
            assert_eq!(one(req), *expected, "{:?}", String::from_utf8_lossy(req));
        }
    }

    #[test]
    fn bodies_are_never_taken_for_heads() {
        // A body that looks like a smuggled head, by length and by chunks.
        let inner = b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut by_length =
            format!("PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", inner.len()).into_bytes();
        by_length.extend_from_slice(inner);
        by_length.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let mut chunked = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        chunked.extend_from_slice(format!("{:x};ext=1\r\n", inner.len()).as_bytes());
        chunked.extend_from_slice(inner);
        chunked.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        for stream in [by_length, chunked] {
            assert_eq!(verdicts(&[&stream]), (vec![None, None], false));
            // Byte by byte: the same.
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(verdicts(&bytes), (vec![None, None], false));
        }
    }

    /// A body byte alphabet rich in framing lookalikes.
    fn body_strategy() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                Just(b"\r\n".to_vec()),
                Just(b"\n\n".to_vec()),
                Just(b"0\r\n\r\n".to_vec()),
                Just(
                    b"GET / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                        .to_vec()
                ),
                Just(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
                any::<u8>().prop_map(|b| vec![b]),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #[test]
        fn any_valid_pipeline_split_anywhere_is_followed(
            bodies in proptest::collection::vec((body_strategy(), proptest::bool::ANY, 1usize..7), 1..6),
            cuts in proptest::collection::vec(0usize..4096, 0..8),
        ) {
            let mut stream = Vec::new();
            for (body, chunked, chunk_len) in &bodies {
                if *chunked {
                    stream.extend_from_slice(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
                    for chunk in body.chunks(*chunk_len) {
                        stream.extend_from_slice(format!("{:X};e=1\r\n", chunk.len()).as_bytes());
                        stream.extend_from_slice(chunk);
                        stream.extend_from_slice(b"\r\n");
                    }
                    stream.extend_from_slice(b"0\r\nX-T: 1\r\n\r\n");
                } else {
                    stream.extend_from_slice(
                        format!("PUT /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    stream.extend_from_slice(body);
                }
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&stream[at..c]);
                at = c;
            }
            pieces.push(&stream[at..]);
            let (v, lost) = verdicts(&pieces);
            proptest::prop_assert_eq!(v, vec![None; bodies.len()]);
            proptest::prop_assert!(!lost);
        }
    }

    #[test]
    fn http2_is_not_watched() {
        let (v, lost) = verdicts(&[&H2_PREFACE[..5], &H2_PREFACE[5..], b"garbage\n\n"]);
        assert!(v.is_empty());
        assert!(!lost);
        // The preface and the client's first frame in one read.
        let mut first_read = H2_PREFACE.to_vec();
        first_read.extend_from_slice(b"\0\0\0\x04\0\0\0\0\0garbage\n\n");
        assert_eq!(verdicts(&[&first_read]), (vec![], false));
    }

    #[test]
    fn a_good_request_before_a_lost_stream_keeps_its_verdict() {
        let watch = WireWatch::new();
        let mut t = Tracker::new(watch.clone(), 65536, 100);
        t.feed(b"GET / HTTP/1.1\r\n\r\n GARBAGE\r\n\r\n");
        assert_eq!(watch.next_verdict(), WireVerdict(None));
        assert_eq!(watch.next_verdict(), WireVerdict(Some(Ambiguity::BadHead)));
        assert_eq!(
            watch.next_verdict(),
            WireVerdict(Some(Ambiguity::Unfollowed))
        );
        assert!(watch.lock().lost);
    }

    #[test]
    fn after_a_refusal_everything_is_refused() {
        let watch = WireWatch::new();
        let mut t = Tracker::new(watch.clone(), 65536, 100);
        t.feed(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(
            watch.next_verdict(),
            WireVerdict(Some(Ambiguity::InvalidLength))
        );
        assert_eq!(
            watch.next_verdict(),
            WireVerdict(Some(Ambiguity::Unfollowed))
        );
    }
}
