//! Nova's "printable" character class (parameter_types._build_regex_range).

/// In Nova's printable class: U+0000..=U+FFFE, category not C*, not Z* unless Zs.
pub fn is_printable(cp: u32) -> bool {
    let _ = cp;
    unimplemented!("printable")
}

/// Unicode category Zs (Python 3.11's database).
pub fn is_zs(cp: u32) -> bool {
    let _ = cp;
    unimplemented!("zs")
}
