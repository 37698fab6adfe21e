//! The JSON reader (`json.loads(body.decode('utf-8'))` semantics).
//!
//! Differential oracle against serde_json, in the one direction where the
//! two grammars nest: every document serde_json accepts (strict RFC 8259,
//! valid UTF-8, nesting within its 128-level limit) Python accepts too, so
//! `json::parse` must accept it — except integers of more than 4300 digits,
//! which Python's `int()` refuses. The other direction is not compared:
//! Python also takes `NaN`, `Infinity`, lone surrogate escapes and numbers
//! serde_json reports out of range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_guard::nova::json;

fn has_long_digit_run(data: &[u8]) -> bool {
    let mut run = 0usize;
    for &b in data {
        if b.is_ascii_digit() {
            run += 1;
            if run > json::MAX_INT_DIGITS {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let ours = json::parse(data);
    if serde_json::from_slice::<serde_json::Value>(data).is_ok()
        && !has_long_digit_run(data)
    {
        assert!(ours.is_ok(), "serde_json accepts, json::parse refuses");
    }
});
