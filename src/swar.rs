//! Bytes looked at eight at a time, in one `u64` (SWAR): the searches that
//! run over every head, every JSON string a body holds and every logged
//! value. Pure arithmetic, no I/O.

/// `0x01` in every byte.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte.
pub(crate) const HIGH: u64 = 0x8080_8080_8080_8080;

/// The eight bytes of `chunk` (exactly eight) as one word, the first byte
/// lowest.
pub(crate) fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// The high bit of every byte of `w` that equals `b`. Exact for "none" and
/// for the lowest one; a byte above one that matched may be flagged too.
pub(crate) fn bytes_equal(w: u64, b: u8) -> u64 {
    let x = w ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH
}

/// Whether `b` occurs in `s`: a header name, say, in a word or two.
#[cfg(any(test, feature = "proxy"))]
pub(crate) fn contains(s: &[u8], b: u8) -> bool {
    let mut chunks = s.chunks_exact(8);
    chunks.any(|c| bytes_equal(word(c), b) != 0) || chunks.remainder().contains(&b)
}

/// The high bit of every byte of `w` below 0x20, exact as [`bytes_equal`]
/// is: for "none" and for the lowest one.
pub(crate) fn controls(w: u64) -> u64 {
    w.wrapping_sub(ONES * 0x20) & !w & HIGH
}

/// Whether every byte of `s` is printable ASCII (0x20-0x7E): a name or
/// a description that needs no per-character look.
pub(crate) fn printable_ascii(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    chunks.all(|c| {
        let w = word(c);
        controls(w) | (w & HIGH) | bytes_equal(w, 0x7F) == 0
    }) && chunks.remainder().iter().all(|b| (0x20..0x7F).contains(b))
}

/// The index of the byte whose high bit is the lowest set in `mask` (a
/// mask from [`bytes_equal`] or [`controls`], not zero).
pub(crate) fn first_flagged(mask: u64) -> usize {
    (mask.trailing_zeros() / 8) as usize
}

/// The eight bytes of `w` with `A`-`Z` made lowercase, the others as they
/// are.
pub(crate) fn to_lower(w: u64) -> u64 {
    // Each byte's low seven bits plus a constant stays below 0x100: no
    // carry crosses into the next byte.
    let low = w & !HIGH;
    let from_a = low + ONES * (0x80 - u64::from(b'A'));
    let past_z = low + ONES * (0x80 - u64::from(b'Z') - 1);
    let upper = from_a & !past_z & !w & HIGH;
    w | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_lowest_flag_is_the_first_matching_byte(
            bytes in prop::collection::vec(prop::sample::select(b"\x00\x1f\x20\x7f\x80\xff\"\\a".to_vec()), 8),
        ) {
            let w = word(&bytes);
            let mask = bytes_equal(w, b'"') | bytes_equal(w, b'\\') | controls(w);
            let naive = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!((mask != 0).then(|| first_flagged(mask)), naive);
        }

        #[test]
        fn printable_ascii_answers_as_a_byte_at_a_time_test_would(
            s in prop::collection::vec(prop::sample::select(b"\x00\x1f\x20\x7e\x7f\x80\xff a~".to_vec()), 0..40),
        ) {
            prop_assert_eq!(printable_ascii(&s), s.iter().all(|b| (0x20..0x7F).contains(b)));
        }

        #[test]
        fn contains_answers_as_a_byte_at_a_time_search_would(
            s in prop::collection::vec(prop::sample::select(b"_-aZ\x00\x80\xff".to_vec()), 0..40),
            b in prop::sample::select(b"_-aZ\x00\x80\xff".to_vec()),
        ) {
            prop_assert_eq!(contains(&s, b), s.contains(&b));
        }
    }
}
