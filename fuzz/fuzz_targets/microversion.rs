//! `nova::microversion::requested`. Input: one byte for
//! the configured maximum minor version, then header values as Latin-1
//! bytes separated by `\n`; a value starting with `!` is a legacy
//! `X-OpenStack-Nova-API-Version` value, the others `OpenStack-API-Version`.
//!
//! Oracle: an accepted version lies within 2.1..=max; no headers at all is 2.1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_guard::nova::microversion::{requested, Microversion};

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else {
        return;
    };
    let max = Microversion::new(2, u16::from(m).max(1));
    let mut standard = Vec::new();
    let mut legacy = Vec::new();
    if !rest.is_empty() {
        for value in rest.split(|&b| b == b'\n') {
            match value.strip_prefix(b"!") {
                Some(v) => legacy.push(v),
                None => standard.push(value),
            }
        }
    }
    if let Ok(v) = requested(&standard, &legacy, max) {
        assert!(Microversion::MIN <= v && v <= max, "{v} outside 2.1..={max}");
    }
    if standard.is_empty() && legacy.is_empty() {
        assert_eq!(requested(&[], &[], max), Ok(Microversion::MIN));
    }
});
