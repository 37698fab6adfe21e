//! The HTTP/1 head tracker (`wire::Tracker`), fed a client byte stream.
//!
//! Input: byte 0 picks the head limits, bytes 1–2 seed where the stream is
//! split into reads, the rest is the stream. The same stream is fed whole
//! and in pieces of 1–16 bytes.
//!
//! Oracle: when no head can exceed the head limit (the stream is no longer
//! than it), the verdict sequence does not depend on how the stream is split
//! into reads. Otherwise the only difference allowed is that one side gave
//! up (`Unfollowed`, which refuses) where the other judged: the head limit
//! is applied while the blank line has not arrived yet, so a head longer
//! than the limit that arrives in one read is judged, and one that arrives
//! in pieces makes the tracker give up. Either way nothing passes unjudged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_guard::wire::{Ambiguity, Tracker, WireVerdict, WireWatch};

const MAX_VERDICTS: usize = 64;

fn verdicts(watch: &WireWatch) -> Vec<WireVerdict> {
    (0..MAX_VERDICTS).map(|_| watch.next_verdict()).collect()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let max_head = [64, 256, 1024, 8192][usize::from(data[0] & 3)];
    let max_headers = [1, 4, 16, 100][usize::from((data[0] >> 2) & 3)];
    let mut seed = u32::from(data[1]) << 8 | u32::from(data[2]) | 1;
    let stream = &data[3..];

    let whole = WireWatch::new();
    Tracker::new(whole.clone(), max_head, max_headers).feed(stream);

    let pieces = WireWatch::new();
    let mut t = Tracker::new(pieces.clone(), max_head, max_headers);
    let mut rest = stream;
    while !rest.is_empty() {
        // xorshift: piece lengths 1..=16
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 16 + 1).min(rest.len());
        t.feed(&rest[..n]);
        rest = &rest[n..];
    }

    let (whole, pieces) = (verdicts(&whole), verdicts(&pieces));
    if stream.len() <= max_head {
        assert_eq!(whole, pieces);
    } else {
        let gave_up = |v: &WireVerdict| v.0 == Some(Ambiguity::Unfollowed);
        for (w, p) in whole.iter().zip(&pieces) {
            assert!(w == p || gave_up(w) || gave_up(p), "{whole:?} / {pieces:?}");
        }
    }
});
