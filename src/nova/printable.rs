//! Nova's "printable" character class (parameter_types._build_regex_range).
//!
//! Nova builds its name/description regexes from `range(0xFFFF)` filtered by
//! `unicodedata.category()`, so the class depends on the Unicode database of
//! the Python running Nova. The tables in `printable_table.rs` are generated
//! by `scripts/gen_printable.py` under Python 3.11 (Unicode 14.0), the oldest
//! Python Nova master supports; regenerate them only with that interpreter.

#[path = "printable_table.rs"]
mod table;

pub use table::{PRINTABLE_COUNT, UNICODE_VERSION};

/// Whether `cp` falls in one of the sorted, disjoint inclusive `ranges`.
fn in_ranges(ranges: &[(u32, u32)], cp: u32) -> bool {
    // Find the first range whose end is >= cp; cp is in the class iff that
    // range also starts at or before cp.
    let i = ranges.partition_point(|&(_, hi)| hi < cp);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= cp)
}

/// In Nova's printable class: U+0000..=U+FFFE, category not C*, not Z* unless Zs.
pub fn is_printable(cp: u32) -> bool {
    in_ranges(table::PRINTABLE, cp)
}

/// Unicode category Zs (Python 3.11's database).
pub fn is_zs(cp: u32) -> bool {
    in_ranges(table::ZS, cp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        // (code point, printable, Zs)
        let cases: &[(u32, bool, bool)] = &[
            (0x20, true, true),      // space
            (0x41, true, false),     // 'A'
            (0x7E, true, false),     // '~'
            (0x7F, false, false),    // DEL, Cc
            (0x00, false, false),    // NUL
            (0x09, false, false),    // TAB, Cc
            (0x0A, false, false),    // LF
            (0x0D, false, false),    // CR
            (0xA0, true, true),      // NBSP
            (0xAD, false, false),    // soft hyphen, Cf
            (0xE9, true, false),     // 'é'
            (0x1680, true, true),    // ogham space mark
            (0x2000, true, true),    // en quad
            (0x200A, true, true),    // hair space
            (0x200B, false, false),  // ZWSP, Cf
            (0x200D, false, false),  // ZWJ, Cf
            (0x2028, false, false),  // line separator, Zl
            (0x2029, false, false),  // paragraph separator, Zp
            (0x202F, true, true),    // narrow NBSP
            (0x205F, true, true),    // medium math space
            (0x20A1, true, false),   // colon sign (tempest's multibyte name)
            (0x3000, true, true),    // ideographic space
            (0xD800, false, false),  // surrogate, Cs
            (0xDFFF, false, false),  // surrogate, Cs
            (0xE000, false, false),  // private use, Co
            (0xF8FF, false, false),  // private use, Co
            (0xFEFF, false, false),  // BOM, Cf
            (0xFFFD, true, false),   // replacement character, So
            (0xFFFE, false, false),  // noncharacter, Cn
            (0xFFFF, false, false),  // outside range(0xFFFF)
            (0x10000, false, false), // Linear B, Lo, but beyond the BMP walk
            (0x1F600, false, false), // emoji
            (0x20000, false, false), // CJK Ext-B
            (0x10FFFF, false, false),
            (0x110000, false, false),
            (u32::MAX, false, false),
        ];
        for &(cp, printable, zs) in cases {
            assert_eq!(is_printable(cp), printable, "is_printable(U+{cp:04X})");
            assert_eq!(is_zs(cp), zs, "is_zs(U+{cp:04X})");
        }
    }

    #[test]
    fn unicode_14_specifics() {
        // U+0870 ARABIC LETTER ALEF WITH ATTACHED FATHA: assigned in 14.0.
        assert!(is_printable(0x0870));
        // U+0890 ARABIC POUND MARK ABOVE is Cf (new in 14.0).
        assert!(!is_printable(0x0890));
        assert_eq!(UNICODE_VERSION, "14.0.0");
    }

    // The tables are static data: these checks inspect them as generated and
    // recompute nothing from a Unicode database at run time.
    #[test]
    fn tables_are_well_formed() {
        for t in [table::PRINTABLE, table::ZS] {
            for &(lo, hi) in t {
                assert!(lo <= hi);
            }
            for w in t.windows(2) {
                // Sorted, disjoint and non-adjacent (the generator merges runs).
                assert!(w[0].1 + 1 < w[1].0, "{:X?} then {:X?}", w[0], w[1]);
            }
        }
        assert!(table::PRINTABLE.iter().all(|&(_, hi)| hi <= 0xFFFE));
        let count: u32 = table::PRINTABLE.iter().map(|&(lo, hi)| hi - lo + 1).sum();
        assert_eq!(count, PRINTABLE_COUNT);
        // Every Zs code point is printable (Zs is the one Z* category kept).
        for &(lo, hi) in table::ZS {
            for cp in lo..=hi {
                assert!(is_printable(cp));
            }
        }
    }

    #[test]
    fn lookup_matches_linear_scan() {
        // Binary search agrees with a plain scan at every range boundary.
        for &(lo, hi) in table::PRINTABLE {
            for cp in [lo.saturating_sub(1), lo, hi, hi + 1] {
                let scan = table::PRINTABLE.iter().any(|&(a, b)| a <= cp && cp <= b);
                assert_eq!(is_printable(cp), scan, "U+{cp:04X}");
            }
        }
    }
}
