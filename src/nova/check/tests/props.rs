//! Properties of generated and mangled bodies (proptest): no panic, and
//! rewrites that are stable.

use super::*;
use proptest::prelude::*;

fn mode_and_version() -> impl Strategy<Value = (Mode, Microversion)> {
    (any::<bool>(), 1u16..=110).prop_map(|(legacy, minor)| {
        let mode = if legacy { Mode::LegacyV2 } else { Mode::V21 };
        (mode, Microversion::new(2, minor))
    })
}

/// Text in the shape of an IPv6 address, often valid, rarely canonical.
fn ipv6ish() -> impl Strategy<Value = String> {
    let group = prop_oneof![
        Just(String::new()),
        "[0-9a-fA-F]{1,4}",
        Just("0".to_owned()),
        Just("0000".to_owned()),
    ];
    (
        proptest::collection::vec(group, 1..=8),
        any::<bool>(),
        0usize..8,
        proptest::option::of("(0|1|255|67)\\.(0|23|255)\\.(0|10|1)\\.(132|4|0)"),
    )
        .prop_map(|(groups, compress, at, v4)| {
            let mut parts: Vec<String> = groups;
            if compress {
                let i = at.min(parts.len());
                parts.insert(i, String::new());
            }
            if let Some(v4) = v4 {
                parts.push(v4);
            }
            parts.join(":")
        })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._:-]{0,12}",
        "[\\x00-\\x7f]{0,6}",
        "[ \\n\\t\u{a0}\u{200b}\u{2028}\u{3000}\u{feff}é\u{1f600}'\"\\\\]{0,6}",
        Just("AUTO".to_owned()),
        Just("1.2.3.4".to_owned()),
        ipv6ish(),
    ]
}

/// A JSON string token for `s`, escaping at random.
fn token(s: &str, escape_mask: u64) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        let escape = (escape_mask >> (i % 64)) & 1 == 1;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || escape => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", u));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const KEYS: &[&str] = &[
    "name",
    "OS-DCF:diskConfig",
    "accessIPv4",
    "accessIPv6",
    "description",
    "hostname",
    "pinned_availability_zone",
    "foo",
    "server",
];

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        (text(), any::<u64>()).prop_map(|(s, m)| token(&s, m)),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("NaN".to_owned()),
        Just("-Infinity".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,3})?",
    ]
}

fn json_value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((proptest::sample::select(KEYS), inner, " ?", " ?"), 0..5)
                .prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, a, b)| format!("\"{k}\"{a}:{b}{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
        ]
    })
}

/// Mostly `{"server": {...}}` bodies whose members use the schema's
/// keys, so that many are valid.
fn body() -> impl Strategy<Value = String> {
    let member = (
        proptest::sample::select(KEYS),
        prop_oneof![4 => scalar(), 1 => json_value()],
    )
        .prop_map(|(k, v)| format!("\"{k}\": {v}"));
    prop_oneof![
        6 => (proptest::collection::vec(member.clone(), 0..5), proptest::option::of(json_value()))
            .prop_map(|(members, extra)| {
                let extra = extra.map(|e| format!(", \"foo\": {e}")).unwrap_or_default();
                format!("{{\"server\": {{{}}}{extra}}}", members.join(", "))
            }),
        2 => (proptest::collection::vec(member, 0..3), ipv6ish(), any::<u64>())
            .prop_map(|(members, ip, mask)| {
                let ip = token(&ip, mask & 0x0101_0101);
                let mut members = members;
                members.push(format!("\"accessIPv6\": {ip}"));
                format!("{{\"server\": {{{}}}}}", members.join(", "))
            }),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_bytes(
        (mode, version) in mode_and_version(),
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let _ = check(P, mode, version, &bytes);
    }

    #[test]
    fn never_panics_on_mangled_json(
        (mode, version) in mode_and_version(),
        body in body(),
        cut in any::<proptest::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = body.into_bytes();
        let i = cut.index(bytes.len() + 1);
        bytes.insert(i, byte);
        let _ = check(P, mode, version, &bytes);
        bytes.truncate(i);
        let _ = check(P, mode, version, &bytes);
    }

    #[test]
    fn rewrites_are_stable(
        (mode, version) in mode_and_version(),
        body in body(),
    ) {
        if let Verdict::Accept { rewrite: Some(rw) } = check(P, mode, version, body.as_bytes()) {
            // The span is one whole string token.
            let token = &body.as_bytes()[rw.span.clone()];
            prop_assert_eq!(token.first(), Some(&b'"'));
            prop_assert_eq!(token.last(), Some(&b'"'));
            let new = rw.apply(body.as_bytes());
            prop_assert_eq!(&new[..rw.span.start], &body.as_bytes()[..rw.span.start]);
            prop_assert_eq!(
                &new[rw.span.start + rw.replacement.len()..],
                &body.as_bytes()[rw.span.end..]
            );
            prop_assert_eq!(
                check(P, mode, version, &new),
                Verdict::Accept { rewrite: None }
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn create_and_rebuild_never_panic_and_rewrite_stably(
        (mode, version) in mode_and_version(),
        body in body(),
        rebuild in any::<bool>(),
        cut in any::<proptest::sample::Index>(),
    ) {
        // With the keys each schema requires, so that some are valid.
        let (op, body) = if rebuild {
            let required = format!("{{\"rebuild\": {{\"imageRef\": \"{UUID}\", ");
            (Operation::Rebuild, body.replacen("{\"server\": {", &required, 1))
        } else {
            let required = "{\"server\": {\"name\": \"n\", \"flavorRef\": \"1\", ";
            (Operation::Create, body.replacen("{\"server\": {", required, 1))
        };
        let policy = AccessIpPolicy::default();
        let verdict = check_request(P, op, mode, version, body.as_bytes(), &policy);
        if let Verdict::Accept { rewrite: Some(rw) } = &verdict {
            let new = rw.apply(body.as_bytes());
            prop_assert_eq!(
                check_request(P, op, mode, version, &new, &policy),
                Verdict::Accept { rewrite: None }
            );
        }
        let i = cut.index(body.len() + 1);
        let _ = check_request(P, op, mode, version, &body.as_bytes()[..i], &policy);
    }
}

#[test]
fn create_and_rebuild_strategy_reaches_rewrites() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = body();
    let policy = AccessIpPolicy::default();
    let mut rewrites = 0;
    for _ in 0..3000 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let body = body.replacen(
            "{\"server\": {",
            &format!("{{\"rebuild\": {{\"imageRef\": \"{UUID}\", "),
            1,
        );
        if let Verdict::Accept { rewrite: Some(_) } = check_request(
            P,
            Operation::Rebuild,
            Mode::V21,
            Microversion::new(2, 94),
            body.as_bytes(),
            &policy,
        ) {
            rewrites += 1;
        }
    }
    assert!(rewrites > 10, "{rewrites}");
}

#[test]
fn body_strategy_reaches_rewrites() {
    // Guard against a generator that never exercises the rewrite.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = body();
    let mut rewrites = 0;
    let mut accepts = 0;
    for _ in 0..3000 {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        if let Verdict::Accept { rewrite } =
            check(P, Mode::V21, Microversion::new(2, 104), body.as_bytes())
        {
            accepts += 1;
            rewrites += usize::from(rewrite.is_some());
        }
    }
    assert!(accepts > 100, "{accepts}");
    assert!(rewrites > 10, "{rewrites}");
}
