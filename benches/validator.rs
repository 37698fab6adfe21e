//! Micro-benchmarks of the update-server validator and the IPv6 text
//! functions: `cargo bench --bench validator`.
//!
//! Every input is checked once before it is measured, so that each
//! benchmark exercises the path its name says (accepted with a rewrite,
//! rejected on a given rule, …).

use std::hint::black_box;
use std::net::Ipv6Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nova_guard::nova::ipv6::{canonical, parse_ipv6};
use nova_guard::nova::{check, Microversion, Mode, Profile, Verdict};

/// The body limit nova-guard applies by default (Nova's own).
const LIMIT: usize = 114_688;

const V2_19: Microversion = Microversion::new(2, 19);
const V2_104: Microversion = Microversion::new(2, 104);

/// About 150 bytes, an `accessIPv6` that is rewritten: the macro-benchmark's body.
const TYPICAL: &str = r#"{"server": {"name": "web-01", "accessIPv4": "192.0.2.10", "accessIPv6": "2001:0DB8:0000:0000:0000:0000:0000:0001", "description": "bench server"}}"#;
/// The same without anything to rewrite.
const TYPICAL_CANONICAL: &str = r#"{"server": {"name": "web-01", "accessIPv4": "192.0.2.10", "accessIPv6": "2001:db8::1", "description": "bench server"}}"#;
/// Refused on `accessIPv4`'s format: the macro-benchmark's invalid body.
const INVALID: &str = r#"{"server": {"name": "web-01", "accessIPv4": "192.0.2.300", "accessIPv6": "2001:0DB8:0000:0000:0000:0000:0000:0001", "description": "bench server"}}"#;

fn accepted(body: &[u8], version: Microversion) -> bool {
    matches!(
        check(Profile::default(), Mode::V21, version, body),
        Verdict::Accept { .. }
    )
}

fn rewritten(body: &[u8], version: Microversion) -> bool {
    matches!(
        check(Profile::default(), Mode::V21, version, body),
        Verdict::Accept { rewrite: Some(_) }
    )
}

/// A 255-code-point name mixing 1-, 2- and 3-byte UTF-8 (Nova's name class
/// holds only Basic Multilingual Plane characters), written raw or, with
/// `escaped`, as `\uXXXX` escapes.
fn unicode_name(escaped: bool) -> String {
    let alphabet = ['a', 'é', 'Ж', 'ß', '中', '文', '한', 'ñ', 'ü', '−'];
    let mut name = String::new();
    for i in 0..255 {
        let c = alphabet[i % alphabet.len()];
        if escaped && !c.is_ascii() {
            name.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            name.push(c);
        }
    }
    format!(r#"{{"server": {{"name": "{name}", "description": "unicode"}}}}"#)
}

/// The typical body with whitespace between its tokens until it is `size` bytes.
fn padded(size: usize) -> String {
    let pad = size.saturating_sub(TYPICAL.len());
    let before = pad / 2;
    format!(
        "{}{}{}",
        " ".repeat(before),
        TYPICAL,
        " ".repeat(pad - before)
    )
}

/// A `server` with as many unknown keys as fit in `size` bytes: refused on
/// `additionalProperties`, whose message names every one of them.
fn many_unknown_keys(size: usize) -> String {
    let mut s = String::from(r#"{"server": {"name": "web-01""#);
    let mut i = 0;
    while s.len() + 24 < size {
        s.push_str(&format!(r#", "k{i:07}": null"#));
        i += 1;
    }
    s.push_str("}}");
    s
}

/// A name far over 255 characters, all `\u00e9` escapes, up to `size`
/// bytes: refused on `maxLength`, whose message quotes the whole value.
fn long_escaped_name(size: usize) -> String {
    let head = r#"{"server": {"name": ""#;
    let tail = r#""}}"#;
    let n = (size - head.len() - tail.len()) / 6;
    format!("{head}{}{tail}", "\\u00e9".repeat(n))
}

/// The same key given again and again: Python keeps the last one.
fn duplicate_keys(size: usize) -> String {
    let mut s = String::from(r#"{"server": {"#);
    while s.len() + 40 < size {
        s.push_str(r#""name": "web-01", "#);
    }
    s.push_str(r#""name": "web-02"}}"#);
    s
}

fn bench_check(c: &mut Criterion) {
    let mut g = c.benchmark_group("check");
    let cases: Vec<(&str, String, Microversion)> = vec![
        ("typical_rewrite", TYPICAL.to_owned(), V2_19),
        ("typical_no_rewrite", TYPICAL_CANONICAL.to_owned(), V2_19),
        ("typical_invalid_ipv4", INVALID.to_owned(), V2_19),
        ("unicode_name_255", unicode_name(false), V2_19),
        ("unicode_name_255_escaped", unicode_name(true), V2_19),
        ("typical_rewrite_2.104", TYPICAL.to_owned(), V2_104),
    ];
    assert!(rewritten(TYPICAL.as_bytes(), V2_19));
    assert!(accepted(TYPICAL_CANONICAL.as_bytes(), V2_19));
    assert!(!rewritten(TYPICAL_CANONICAL.as_bytes(), V2_19));
    assert!(!accepted(INVALID.as_bytes(), V2_19));
    assert!(accepted(unicode_name(false).as_bytes(), V2_19));
    assert!(accepted(unicode_name(true).as_bytes(), V2_19));
    for (name, body, version) in &cases {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                check(
                    Profile::default(),
                    Mode::V21,
                    *version,
                    black_box(body.as_bytes()),
                )
            })
        });
    }
    g.finish();
}

fn bench_near_limit(c: &mut Criterion) {
    let size = LIMIT - 64;
    let cases: Vec<(&str, String, bool)> = vec![
        ("whitespace_padded_valid", padded(size), true),
        ("duplicate_keys_valid", duplicate_keys(size), true),
        ("unknown_keys_rejected", many_unknown_keys(size), false),
        ("long_escaped_name_rejected", long_escaped_name(size), false),
    ];
    let mut g = c.benchmark_group("near_limit");
    g.sample_size(20);
    for (name, body, valid) in &cases {
        assert!(body.len() <= LIMIT, "{name}: {} bytes", body.len());
        assert_eq!(accepted(body.as_bytes(), V2_19), *valid, "{name}");
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| {
            b.iter(|| {
                check(
                    Profile::default(),
                    Mode::V21,
                    V2_19,
                    black_box(body.as_bytes()),
                )
            })
        });
    }
    g.finish();
}

/// The same shapes at growing sizes: time per byte should stay flat.
fn bench_linearity(c: &mut Criterion) {
    let mut g = c.benchmark_group("linearity");
    g.sample_size(20);
    for size in [1_024, 8_192, 65_536] {
        for (shape, body) in [
            ("padded", padded(size)),
            ("unknown_keys", many_unknown_keys(size)),
            ("long_name", long_escaped_name(size)),
        ] {
            g.throughput(Throughput::Bytes(body.len() as u64));
            g.bench_with_input(BenchmarkId::new(shape, size), &body, |b, body| {
                b.iter(|| {
                    check(
                        Profile::default(),
                        Mode::V21,
                        V2_19,
                        black_box(body.as_bytes()),
                    )
                })
            });
        }
    }
    g.finish();
}

fn bench_ipv6(c: &mut Criterion) {
    let inputs = [
        ("full_uppercase", "2001:0DB8:0000:0000:0000:0000:0000:0001"),
        ("compressed", "2001:db8::1"),
        ("ipv4_suffix", "::babe:67.23.10.132"),
        ("mapped", "::ffff:192.0.2.1"),
        ("invalid", "2001:db8::1::2"),
    ];
    let mut g = c.benchmark_group("ipv6");
    for (name, text) in inputs {
        g.bench_function(BenchmarkId::new("parse_ipv6", name), |b| {
            b.iter(|| parse_ipv6(black_box(text)))
        });
    }
    let addrs: [(&str, Ipv6Addr); 4] = [
        ("documentation", "2001:db8::1".parse().unwrap()),
        ("ipv4_compatible", "::babe:4317:a84".parse().unwrap()),
        ("mapped", "::ffff:192.0.2.1".parse().unwrap()),
        ("no_zero_run", "1:2:3:4:5:6:7:8".parse().unwrap()),
    ];
    for (name, addr) in addrs {
        g.bench_function(BenchmarkId::new("canonical", name), |b| {
            b.iter(|| canonical(black_box(addr)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_check,
    bench_near_limit,
    bench_linearity,
    bench_ipv6
);
criterion_main!(benches);
