//! `nova::route::match_update` and `method_override`. Input: prefix, NUL,
//! target.
//!
//! Oracle: mounting behind a plain prefix (`/` and lowercase letters) is
//! transparent for plain origin-form targets (no `.`, `%`, `?`, `#`):
//! `match_update(p, p + t) == match_update("", t)`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_guard::nova::route::{match_update, method_override};
use nova_guard::nova::Mode;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (prefix, target) = s.split_once('\0').unwrap_or(("", s));
    let _ = match_update(prefix, target, None);
    let _ = match_update("", target, Some(Mode::V21));
    let _ = method_override(target);

    let plain_prefix = prefix.len() > 1
        && prefix.starts_with('/')
        && !prefix.ends_with('/')
        && prefix[1..].bytes().all(|b| b.is_ascii_lowercase());
    let plain_target = target.starts_with('/')
        && !target.bytes().any(|b| matches!(b, b'.' | b'%' | b'?' | b'#'));
    if plain_prefix && plain_target {
        assert_eq!(
            match_update(prefix, &format!("{prefix}{target}"), None),
            match_update("", target, None),
            "prefix {prefix:?} target {target:?}"
        );
    }
});
