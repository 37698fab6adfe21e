//! Each guarded field of an update body: its rules and Nova's messages.

use super::*;
use crate::nova::pyrepr::repr_str;

// ---- name (§1.3 table, §3.3) ----

#[test]
fn name_table() {
    // (value, ok in 2.1+, ok in legacy)
    let rows: &[(&str, bool, bool)] = &[
        ("été", true, true),
        ("a\u{3000}b", true, true),
        ("abc   def", true, true),
        ("ÍñstáñcÉ", true, true),
        ("\u{20a1}", true, true),
        (" a", false, true),
        ("a ", false, true),
        ("a\u{a0}", false, true),
        ("\u{a0}a", false, true),
        ("  abc   def  ", false, true),
        ("   ", false, false),
        ("\u{3000}", false, false),
        ("\u{200b}", false, false),
        ("a\u{200b}", false, false),
        ("a\tb", false, false),
        ("\u{1f600}", false, false),
        ("a\u{1f600}", false, false),
        ("\u{2028}", false, false),
        ("a\u{2029}", false, false),
        ("a\u{7f}", false, false),
        ("a\u{0}", false, false),
        ("\u{ad}", false, false),
        ("\u{378}", false, false),
        ("\u{fffd}", true, true),
        ("\u{fffe}", false, false),
        ("\u{ffff}", false, false),
        // Python's `$` matches before a final newline.
        ("abc\n", true, true),
        ("a\nb", false, false),
        ("\n", false, false),
        ("abc\n\n", false, false),
        (" \n", false, false),
        ("a \n", false, true),
        ("x\n", true, true),
    ];
    for &(value, v21, legacy) in rows {
        let body = name(value);
        for (_, minor) in ALL {
            if v21 {
                ok(minor, &body);
            } else {
                let r = rej(minor, &body);
                assert_eq!(decode(&r.message_json), INVALID_NAME, "{value:?}");
                assert_eq!((r.field, r.rule), (Some("name"), Rule::Format));
            }
        }
        if legacy {
            legacy_ok(&body);
        } else {
            assert_eq!(legacy_msg(&body), INVALID_NAME_LEGACY, "{value:?}");
        }
    }
}

#[test]
fn name_lengths_and_types() {
    let r = rej(1, &name(""));
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute name. Value: . '' should be non-empty"
    );
    assert_eq!((r.field, r.rule), (Some("name"), Rule::MinLength));
    // Legacy's format refuses "" before minLength.
    assert_eq!(legacy_msg(&name("")), INVALID_NAME_LEGACY);

    ok(1, &name(&"x".repeat(255)));
    ok(1, &name(&"é".repeat(255)));
    let x256 = "x".repeat(256);
    let want =
        format!("Invalid input for field/attribute name. Value: {x256}. '{x256}' is too long");
    let r = rej(1, &name(&x256));
    assert_eq!(decode(&r.message_json), want);
    assert_eq!(r.rule, Rule::MaxLength);
    assert_eq!(legacy_msg(&name(&x256)), want);
    // Counted in code points.
    let e256 = "é".repeat(256);
    assert_eq!(
        msg(1, &name(&e256)),
        format!("Invalid input for field/attribute name. Value: {e256}. '{e256}' is too long")
    );
    // format is checked before maxLength.
    assert_eq!(msg(1, &name(&" ".repeat(300))), INVALID_NAME);
    assert_eq!(legacy_msg(&name(&" ".repeat(300))), INVALID_NAME_LEGACY);
    let padded = format!("{} ", "x".repeat(255));
    assert_eq!(msg(1, &name(&padded)), INVALID_NAME);
    assert!(legacy_msg(&name(&padded)).ends_with("' is too long"));

    let r = rej(1, &server("name", "123"));
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute name. Value: 123. 123 is not of type 'string'"
    );
    assert_eq!((r.field, r.rule), (Some("name"), Rule::Type));
    assert_eq!(
        msg(1, &server("name", "null")),
        "Invalid input for field/attribute name. Value: None. None is not of type 'string'"
    );
    assert_eq!(
        legacy_msg(&server("name", "null")),
        "Invalid input for field/attribute name. Value: None. None is not of type 'string'"
    );
}

#[test]
fn python_rendering_of_values() {
    let cases: &[(&str, &str)] = &[
        ("NaN", "Value: nan. nan is not of type 'string'"),
        ("Infinity", "Value: inf. inf is not of type 'string'"),
        ("-Infinity", "Value: -inf. -inf is not of type 'string'"),
        ("1E2", "Value: 100.0. 100.0 is not of type 'string'"),
        ("1e400", "Value: inf. inf is not of type 'string'"),
        ("1.0", "Value: 1.0. 1.0 is not of type 'string'"),
        ("-0.0", "Value: -0.0. -0.0 is not of type 'string'"),
        ("-0", "Value: 0. 0 is not of type 'string'"),
        ("1e16", "Value: 1e+16. 1e+16 is not of type 'string'"),
        ("0.00001", "Value: 1e-05. 1e-05 is not of type 'string'"),
        ("true", "Value: True. True is not of type 'string'"),
        ("false", "Value: False. False is not of type 'string'"),
        ("[\"a\", 1]", "Value: ['a', 1]. ['a', 1] is not of type 'string'"),
        ("{\"a\": null}", "Value: {'a': None}. {'a': None} is not of type 'string'"),
        (
            "{\"b\":1,\"a\":[true,\"it's\"],\"b\":2.50}",
            "Value: {'b': 2.5, 'a': [True, \"it's\"]}. {'b': 2.5, 'a': [True, \"it's\"]} is not of type 'string'",
        ),
        (
            "12345678901234567890123",
            "Value: 12345678901234567890123. 12345678901234567890123 is not of type 'string'",
        ),
    ];
    for &(value, tail) in cases {
        assert_eq!(
            msg(1, &server("name", value)),
            format!("Invalid input for field/attribute name. {tail}"),
            "{value}"
        );
    }
}

#[test]
fn lone_surrogates() {
    // Not printable for Nova: InvalidName.
    assert_eq!(msg(1, &server("name", "\"\\ud800\"")), INVALID_NAME);
    assert_eq!(msg(1, &server("name", "\"a\\udfffb\"")), INVALID_NAME);
    assert_eq!(
        legacy_msg(&server("name", "\"\\ud800\"")),
        INVALID_NAME_LEGACY
    );
    // A joined pair is one astral character: also refused.
    assert_eq!(msg(1, &server("name", "\"\\ud83d\\ude00\"")), INVALID_NAME);
    // In a message: raw in str(), escaped in repr(), \u-escaped by json.dumps.
    let r = rej(19, &server("description", "\"\\ud800\""));
    let want_prefix =
        "\"Invalid input for field/attribute description. Value: \\ud800. '\\\\ud800' does not match '^[";
    assert!(
        r.message_json.starts_with(want_prefix),
        "{}",
        r.message_json
    );
    let r = rej(1, &server("foo", "\"\\udc00\""));
    assert_eq!(
        r.message_json,
        "\"Invalid input for field/attribute server. Value: {'foo': '\\\\udc00'}. Additional properties are not allowed ('foo' was unexpected)\""
    );
    let r = rej(1, "{\"server\":{\"\\ud800\":1}}");
    assert_eq!(
        r.message_json,
        "\"Invalid input for field/attribute server. Value: {'\\\\ud800': 1}. Additional properties are not allowed ('\\\\ud800' was unexpected)\""
    );
}

// ---- other fields ----

#[test]
fn disk_config() {
    for (_, minor) in ALL {
        ok(minor, &server("OS-DCF:diskConfig", "\"AUTO\""));
        ok(minor, &server("OS-DCF:diskConfig", "\"MANUAL\""));
    }
    legacy_ok(&server("OS-DCF:diskConfig", "\"MANUAL\""));
    let r = rej(1, &server("OS-DCF:diskConfig", "\"auto\""));
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute OS-DCF:diskConfig. Value: auto. 'auto' is not one of ['AUTO', 'MANUAL']"
    );
    assert_eq!((r.field, r.rule), (Some("OS-DCF:diskConfig"), Rule::Enum));
    assert_eq!(
        msg(1, &server("OS-DCF:diskConfig", "\"AUTO\\n\"")),
        "Invalid input for field/attribute OS-DCF:diskConfig. Value: AUTO\n. 'AUTO\\n' is not one of ['AUTO', 'MANUAL']"
    );
    assert_eq!(
        msg(1, &server("OS-DCF:diskConfig", "null")),
        "Invalid input for field/attribute OS-DCF:diskConfig. Value: None. None is not of type 'string'"
    );
}

#[test]
fn access_ips() {
    for (_, minor) in ALL {
        ok(minor, &server("accessIPv4", "\"192.168.0.10\""));
        ok(minor, &server("accessIPv6", "\"2001:db8::9abc\""));
    }
    legacy_ok(&server("accessIPv4", "\"0.0.0.0\""));
    let r = rej(1, &server("accessIPv4", "\"\""));
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute accessIPv4. Value: . '' is not a 'ipv4'"
    );
    assert_eq!((r.field, r.rule), (Some("accessIPv4"), Rule::Format));
    assert_eq!(
        msg(1, &server("accessIPv4", "null")),
        "Invalid input for field/attribute accessIPv4. Value: None. None is not of type 'string'"
    );
    assert_eq!(
        legacy_msg(&server("accessIPv4", "\"\"")),
        "Invalid input for field/attribute accessIPv4. Value: . '' is not a 'ipv4'"
    );
    assert_eq!(
        msg(1, &server("accessIPv4", "\"1.1.1.1.1.1\"")),
        "Invalid input for field/attribute accessIPv4. Value: 1.1.1.1.1.1. '1.1.1.1.1.1' is not a 'ipv4'"
    );
    assert_eq!(
        msg(1, &server("accessIPv4", "\"1.2.3.4\\n\"")),
        "Invalid input for field/attribute accessIPv4. Value: 1.2.3.4\n. '1.2.3.4\\n' is not a 'ipv4'"
    );
    assert_eq!(
        msg(1, &server("accessIPv6", "\"fe80::1%eth0\"")),
        "Invalid input for field/attribute accessIPv6. Value: fe80::1%eth0. 'fe80::1%eth0' is not a 'ipv6'"
    );
    assert_eq!(
        msg(1, &server("accessIPv6", "\"\"")),
        "Invalid input for field/attribute accessIPv6. Value: . '' is not a 'ipv6'"
    );
    assert_eq!(
        msg(1, &server("accessIPv6", "null")),
        "Invalid input for field/attribute accessIPv6. Value: None. None is not of type 'string'"
    );
    assert_eq!(
        msg(1, &server("accessIPv6", "\"::1\\n\"")),
        "Invalid input for field/attribute accessIPv6. Value: ::1\n. '::1\\n' is not a 'ipv6'"
    );
    assert_eq!(
        msg(1, &server("accessIPv6", "\"fe80:::::::\"")),
        "Invalid input for field/attribute accessIPv6. Value: fe80:::::::. 'fe80:::::::' is not a 'ipv6'"
    );
}

#[test]
fn description() {
    for minor in [1, 18] {
        let r = rej(minor, &server("description", "\"x\""));
        assert_eq!(
            decode(&r.message_json),
            "Invalid input for field/attribute server. Value: {'description': 'x'}. Additional properties are not allowed ('description' was unexpected)"
        );
        assert_eq!(
            (r.field, r.rule),
            (Some("server"), Rule::AdditionalProperties)
        );
    }
    for minor in [19, 89, 90, 93, 94, 103, 104] {
        for v in [
            "\"x\"",
            "\"\"",
            "null",
            "\"x\\n\"",
            "\"\\n\"",
            "\" a \"",
            "\"\\u00a0\"",
        ] {
            ok(minor, &server("description", v));
        }
        ok(
            minor,
            &server("description", &json_string(&"x".repeat(255))),
        );
        let r = rej(minor, &server("description", "1"));
        assert_eq!(
            decode(&r.message_json),
            "Invalid input for field/attribute description. Value: 1. 1 is not of type 'string', 'null'"
        );
        assert_eq!(r.rule, Rule::Type);
        let r = rej(minor, &server("description", "\"a\\tb\""));
        assert_eq!(
            decode(&r.message_json),
            format!(
                "Invalid input for field/attribute description. Value: a\tb. 'a\\tb' does not match {}",
                description_repr(U)
            )
        );
        assert_eq!((r.field, r.rule), (Some("description"), Rule::Pattern));
        let x256 = "x".repeat(256);
        assert_eq!(
            msg(minor, &server("description", &json_string(&x256))),
            format!("Invalid input for field/attribute description. Value: {x256}. '{x256}' is too long")
        );
        // pattern before maxLength
        let long_bad = format!("{}\t", "x".repeat(300));
        assert_eq!(
            rej(minor, &server("description", &json_string(&long_bad))).rule,
            Rule::Pattern
        );
        assert_eq!(
            rej(minor, &server("description", "\"\\ud83d\\ude00\"")).rule,
            Rule::Pattern
        );
        assert_eq!(
            rej(minor, &server("description", "\"\\n\\n\"")).rule,
            Rule::Pattern
        );
    }
}

fn description_repr(u: Unicode) -> String {
    String::from_utf8(field::description_pattern_repr(u)).expect("no lone surrogate")
}

#[test]
fn description_pattern_text_is_python_repr_of_the_regex() {
    // Length in code points and FNV-1a 64 of the UTF-8, as
    // scripts/gen_unicode.py computed them from Nova's own algorithm
    // (and Python 3.10-3.13 print them).
    for u in Unicode::ALL {
        let text = description_repr(u);
        let (len, hash) = crate::nova::unicode::description_repr_vector(u);
        let fnv = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        assert_eq!((text.chars().count(), fnv), (len, hash), "{u}");
        assert!(text.starts_with("'^[\\\\ -\\\\~\\xa0-\u{ac}\u{ae}-"), "{u}");
        assert!(
            text.ends_with("\u{ffe8}-\u{ffee}\u{fffc}-\u{fffd}]*$'"),
            "{u}"
        );
    }
    // Python 3.11 escapes what Unicode 15.0 assigned; 3.12 writes it.
    assert!(description_repr(Unicode::V14_0).contains("\u{cf1}-\u{cf2}\u{d00}"));
    assert!(description_repr(Unicode::V15_0).contains("\u{cf1}-\u{cf3}\u{d00}"));
}

#[test]
fn hostname() {
    let label = "'^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'";
    let fqdn = "'^[a-zA-Z0-9-._]*$'";
    for minor in [1, 18, 19, 89] {
        let r = rej(minor, &server("hostname", "\"ab\""));
        assert_eq!(
            decode(&r.message_json),
            "Invalid input for field/attribute server. Value: {'hostname': 'ab'}. Additional properties are not allowed ('hostname' was unexpected)"
        );
    }
    for minor in [90, 93] {
        for v in ["ab", "a-b", "A1", "ab\n", "0-0", &"x".repeat(63)] {
            ok(minor, &server("hostname", &json_string(v)));
        }
        for v in [
            "a", "a\n", "\n", "", "-ab", "ab-", "a.b", "a_b", "a b", "éé", "ab\n\n",
        ] {
            let r = rej(minor, &server("hostname", &json_string(v)));
            let mut repr = Vec::new();
            repr_str(v.as_bytes(), U, &mut repr);
            let repr = String::from_utf8(repr).unwrap();
            assert_eq!(
                decode(&r.message_json),
                format!("Invalid input for field/attribute hostname. Value: {v}. {repr} does not match {label}"),
            );
            assert_eq!((r.field, r.rule), (Some("hostname"), Rule::Pattern));
        }
        let x64 = "x".repeat(64);
        let r = rej(minor, &server("hostname", &json_string(&x64)));
        assert_eq!(
            decode(&r.message_json),
            format!(
                "Invalid input for field/attribute hostname. Value: {x64}. '{x64}' is too long"
            )
        );
        assert_eq!(r.rule, Rule::MaxLength);
        assert_eq!(
            msg(minor, &server("hostname", "1")),
            "Invalid input for field/attribute hostname. Value: 1. 1 is not of type 'string'"
        );
    }
    for minor in [94, 103, 104] {
        for v in [
            "a",
            "a.b",
            "a_b",
            "-",
            ".",
            "-a.",
            "\n",
            "x\n",
            &"x".repeat(255),
        ] {
            ok(minor, &server("hostname", &json_string(v)));
        }
        let r = rej(minor, &server("hostname", "\"\""));
        assert_eq!(
            decode(&r.message_json),
            "Invalid input for field/attribute hostname. Value: . '' should be non-empty"
        );
        assert_eq!(r.rule, Rule::MinLength);
        assert_eq!(
            msg(minor, &server("hostname", "\"a b\"")),
            format!("Invalid input for field/attribute hostname. Value: a b. 'a b' does not match {fqdn}")
        );
        let x256 = "x".repeat(256);
        assert_eq!(
            msg(minor, &server("hostname", &json_string(&x256))),
            format!(
                "Invalid input for field/attribute hostname. Value: {x256}. '{x256}' is too long"
            )
        );
    }
}

#[test]
fn pinned_availability_zone() {
    for minor in [1, 19, 90, 94, 103] {
        assert_eq!(
            msg(minor, &server("pinned_availability_zone", "null")),
            "Invalid input for field/attribute server. Value: {'pinned_availability_zone': None}. Additional properties are not allowed ('pinned_availability_zone' was unexpected)"
        );
    }
    ok(104, &server("pinned_availability_zone", "null"));
    ok(104, &server("pinned_availability_zone", "\"az1\""));
    ok(104, &server("pinned_availability_zone", "\" \""));
    ok(
        104,
        &server("pinned_availability_zone", &json_string(&"x".repeat(255))),
    );
    let r = rej(104, &server("pinned_availability_zone", "\"\""));
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute pinned_availability_zone. Value: . '' is not valid under any of the given schemas"
    );
    assert_eq!(
        (r.field, r.rule),
        (Some("pinned_availability_zone"), Rule::OneOf)
    );
    assert_eq!(
        msg(104, &server("pinned_availability_zone", "1")),
        "Invalid input for field/attribute pinned_availability_zone. Value: 1. 1 is not valid under any of the given schemas"
    );
    let x256 = "x".repeat(256);
    assert_eq!(
        msg(104, &server("pinned_availability_zone", &json_string(&x256))),
        format!("Invalid input for field/attribute pinned_availability_zone. Value: {x256}. '{x256}' is not valid under any of the given schemas")
    );
}
