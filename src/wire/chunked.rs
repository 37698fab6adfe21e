//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally with
//! hyper's rules and limits (`proto/h1/decode.rs`), byte for byte: the one
//! chunk grammar of nova-guard, used by the HTTP/1 codec to read bodies and
//! by the head tracker to follow them.
//!
//! Chunk extensions are skipped (up to 16 KiB in a body, no CR or LF in
//! them); trailers are skipped, within the head limits. Nothing of either is
//! ever passed on.

use std::ops::Range;

/// hyper's limit on the bytes of a body's trailer section.
pub const TRAILER_LIMIT: usize = 16 * 1024;

/// hyper's limit on the chunk extensions of one body.
pub const CHUNK_EXTENSION_LIMIT: u64 = 16 * 1024;

/// A chunk-size line that overflows or is malformed, or trailers over the
/// limits: the body cannot be read one way only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Body,
    BodyCr,
    BodyLf,
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

/// One call's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Input bytes used.
    pub consumed: usize,
    /// Body bytes found, as a range of the input (empty when none).
    pub data: Range<usize>,
    /// The last chunk and the trailers have been read.
    pub done: bool,
}

/// Decodes one chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    extension: u64,
    trailers: usize,
    trailer_bytes: usize,
    max_trailers: usize,
    max_trailer_bytes: usize,
    /// The trailer section, when there is one: judged whole at its end,
    /// as hyper parses it.
    trailer: Option<Vec<u8>>,
}

impl ChunkedDecoder {
    /// At most `max_trailers` trailer lines (the head's line limit, as in
    /// hyper) in at most [`TRAILER_LIMIT`] bytes.
    pub fn new(max_trailers: usize) -> Self {
        let max_trailer_bytes = TRAILER_LIMIT;
        ChunkedDecoder {
            state: State::Start,
            size: 0,
            extension: 0,
            trailers: 0,
            trailer_bytes: 0,
            max_trailers,
            max_trailer_bytes,
            trailer: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from `input` up to the first body bytes, the end of the body,
    /// or the end of the input, whichever comes first.
    pub fn decode(&mut self, input: &[u8]) -> Result<Step, BadChunk> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Body => {
                    let n = self.size.min((input.len() - i) as u64) as usize;
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::BodyCr;
                    }
                    return Ok(Step {
                        consumed: i + n,
                        data: i..i + n,
                        done: false,
                    });
                }
                _ => {}
            }
            let b = input[i];
            i += 1;
            self.state = self.next(b).ok_or(BadChunk)?;
            if self.state == State::Done {
                break;
            }
        }
        Ok(Step {
            consumed: i,
            data: i..i,
            done: self.state == State::Done,
        })
    }

    fn next(&mut self, b: u8) -> Option<State> {
        Some(match (self.state, b) {
            (State::Start | State::Size, b) if b.is_ascii_hexdigit() => {
                let digit = u64::from(char::from(b).to_digit(16)?);
                self.size = self.size.checked_mul(16)?.checked_add(digit)?;
                State::Size
            }
            (State::Size | State::SizeLws, b'\t' | b' ') => State::SizeLws,
            (State::Size | State::SizeLws, b';') => State::Extension,
            (State::Size | State::SizeLws | State::Extension, b'\r') => State::SizeLf,
            (State::Extension, b'\n') => return None,
            (State::Extension, _) => {
                self.extension += 1;
                if self.extension >= CHUNK_EXTENSION_LIMIT {
                    return None;
                }
                State::Extension
            }
            (State::SizeLf, b'\n') => {
                if self.size == 0 {
                    State::EndCr
                } else {
                    State::Body
                }
            }
            (State::BodyCr, b'\r') => State::BodyLf,
            // Extension bytes count for the whole body, as in hyper.
            (State::BodyLf, b'\n') => {
                self.size = 0;
                State::Start
            }
            (State::EndCr, b'\r') => {
                if let Some(t) = &mut self.trailer {
                    t.push(b'\r');
                }
                State::EndLf
            }
            // A trailer line ends with CRLF only.
            (State::EndCr | State::Trailer, b'\n') => return None,
            (State::EndCr | State::Trailer, b) => {
                self.trailer.get_or_insert_with(Vec::new).push(b);
                self.trailer_bytes += 1;
                if self.trailer_bytes >= self.max_trailer_bytes {
                    return None;
                }
                if b == b'\r' {
                    State::TrailerLf
                } else {
                    State::Trailer
                }
            }
            (State::TrailerLf, b'\n') => {
                if let Some(t) = &mut self.trailer {
                    t.push(b'\n');
                }
                self.trailers += 1;
                self.trailer_bytes += 1;
                if self.trailers > self.max_trailers || self.trailer_bytes >= self.max_trailer_bytes
                {
                    return None;
                }
                State::EndCr
            }
            (State::EndLf, b'\n') => {
                if let Some(mut t) = self.trailer.take() {
                    t.push(b'\n');
                    let mut headers = vec![httparse::EMPTY_HEADER; self.trailers];
                    if !matches!(
                        httparse::parse_headers(&t, &mut headers),
                        Ok(httparse::Status::Complete(_))
                    ) {
                        return None;
                    }
                }
                State::Done
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole body, fed in pieces of `at` bytes.
    fn decode_all(input: &[u8], at: usize) -> Result<(Vec<u8>, usize), BadChunk> {
        let mut d = ChunkedDecoder::new(100);
        let mut body = Vec::new();
        let mut used = 0;
        for piece in input.chunks(at.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() && !d.is_done() {
                let step = d.decode(rest)?;
                body.extend_from_slice(&rest[step.data.clone()]);
                used += step.consumed;
                rest = &rest[step.consumed..];
            }
        }
        if !d.is_done() {
            return Err(BadChunk);
        }
        Ok((body, used))
    }

    #[test]
    fn bodies_decode_however_they_are_split() {
        let input = b"4;ext=\"a b\"\r\nWiki\r\n5 \r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for at in 1..input.len() {
            let (body, used) = decode_all(&input[..input.len() - 4], at).unwrap();
            assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.", "split {at}");
            assert_eq!(used, input.len() - 4);
        }
        // It stops at the end of the body: the rest is the next request.
        let mut d = ChunkedDecoder::new(100);
        let mut at = 0;
        while !d.is_done() {
            at += d.decode(&input[at..]).unwrap().consumed;
        }
        assert_eq!(&input[at..], b"NEXT");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"10000000000000000\r\n"[..],
            b"x\r\n",
            b"4\nWiki\r\n0\r\n\r\n",
            b"4;a\nb\r\nWiki\r\n0\r\n\r\n",
            b"4\r\nWikiXX0\r\n\r\n",
            b"0\r\n\r\r",
        ] {
            assert_eq!(decode_all(bad, 1000), Err(BadChunk), "{bad:?}");
        }
        let long_extension = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(16 * 1024));
        assert_eq!(decode_all(long_extension.as_bytes(), 1000), Err(BadChunk));
        let across_chunks = format!(
            "{}0\r\n\r\n",
            format!("1;{}\r\nx\r\n", "e".repeat(9000)).repeat(2)
        );
        assert_eq!(decode_all(across_chunks.as_bytes(), 1000), Err(BadChunk));
        let many_trailers = format!("0\r\n{}\r\n", "T: 1\r\n".repeat(101));
        assert_eq!(decode_all(many_trailers.as_bytes(), 1000), Err(BadChunk));
        // Trailers are header lines, as hyper parses them.
        for bad in [
            &b"0\r\nno colon\r\n\r\n"[..],
            b"0\r\nA b: 1\r\n\r\n",
            b"0\r\n: x\r\n\r\n",
            b"0\r\nA: 1\n\r\n",
            b"0\r\n\nA: 1\r\n\r\n",
        ] {
            assert_eq!(decode_all(bad, 1000), Err(BadChunk), "{bad:?}");
        }
        assert!(decode_all(b"0\r\nA: 1\r\nB:\r\n\r\n", 1000).is_ok());
    }
}
