//! Tests of the validator: update bodies, create and rebuild bodies, the
//! releases and Pythons, the access-IP policy, and properties of arbitrary
//! bodies.

use super::*;
use crate::nova::pyrepr::repr_str;
use crate::nova::{Python, Release};

/// The Nova these tests were written against: 2026.2 on Python 3.11.
/// Other releases and Pythons have tests of their own below.
const P: Profile = Profile::new(Release::R2026_2, Python::Py3_11);
const U: Unicode = Unicode::V14_0;

const ALL: [(u16, u16); 9] = [
    (2, 1),
    (2, 18),
    (2, 19),
    (2, 89),
    (2, 90),
    (2, 93),
    (2, 94),
    (2, 103),
    (2, 104),
];

fn mv(minor: u16) -> Microversion {
    Microversion::new(2, minor)
}

fn run(mode: Mode, minor: u16, body: &str) -> Verdict {
    check(P, mode, mv(minor), body.as_bytes())
}

/// The rejection of a v2.1 request.
fn rej(minor: u16, body: &str) -> Rejection {
    match run(Mode::V21, minor, body) {
        Verdict::Reject(r) => r,
        other => panic!("{body} at 2.{minor}: expected a rejection, got {other:?}"),
    }
}

fn legacy_rej(body: &str) -> Rejection {
    match run(Mode::LegacyV2, 1, body) {
        Verdict::Reject(r) => r,
        other => panic!("{body} (legacy): expected a rejection, got {other:?}"),
    }
}

/// Nova's 400 message for a v2.1 request, decoded from its JSON token.
fn msg(minor: u16, body: &str) -> String {
    let r = rej(minor, body);
    assert_eq!(r.kind, RejectKind::Invalid, "{body}: {r:?}");
    decode(&r.message_json)
}

fn legacy_msg(body: &str) -> String {
    let r = legacy_rej(body);
    assert_eq!(r.kind, RejectKind::Invalid, "{body}: {r:?}");
    decode(&r.message_json)
}

/// A `json.dumps` token back to text (tests only use messages without
/// lone surrogates here).
fn decode(token: &str) -> String {
    match json::parse(token.as_bytes()) {
        Ok(Value::Str(s)) => s.text.as_str().expect("no lone surrogate").to_owned(),
        other => panic!("not a JSON string: {token}: {other:?}"),
    }
}

fn accepts(mode: Mode, minor: u16, body: &str) -> bool {
    matches!(run(mode, minor, body), Verdict::Accept { .. })
}

fn ok(minor: u16, body: &str) {
    assert_eq!(
        run(Mode::V21, minor, body),
        Verdict::Accept { rewrite: None },
        "{body} at 2.{minor}"
    );
}

fn legacy_ok(body: &str) {
    assert_eq!(
        run(Mode::LegacyV2, 1, body),
        Verdict::Accept { rewrite: None },
        "{body} (legacy)"
    );
}

fn server(key: &str, value_json: &str) -> String {
    format!("{{\"server\": {{\"{key}\": {value_json}}}}}")
}

fn name(value: &str) -> String {
    server("name", &json_string(value))
}

const INVALID_NAME: &str = "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.";
const INVALID_NAME_LEGACY: &str = "An invalid 'name' value was provided. The name must be: printable characters with at least one non space character";

// ---- no server entity (422), malformed (400) ----

#[test]
fn no_server_entity_is_422_in_every_mode() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("null", None),
        ("[]", None),
        ("\"abc\"", None),
        ("1", None),
        ("1.5", None),
        ("true", None),
        ("{}", None),
        ("{\"foo\":1}", None),
        ("{\"Server\":{}}", None),
        ("{\"server\":\"abc\"}", Some("server")),
        ("{\"server\":null}", Some("server")),
        ("{\"server\":[]}", Some("server")),
        ("{\"server\":1}", Some("server")),
        // Nova checks `server`'s type before the top-level extra key.
        ("{\"server\":\"x\",\"foo\":1}", Some("server")),
        ("{\"foo\":1,\"server\":[{}]}", Some("server")),
        // The last `server` is the one Python keeps.
        ("{\"server\":{},\"server\":\"x\"}", Some("server")),
    ];
    for &(body, field) in cases {
        for mode in [Mode::V21, Mode::LegacyV2] {
            for (_, minor) in ALL {
                let Verdict::Reject(r) = run(mode, minor, body) else {
                    panic!("{body:?} accepted");
                };
                assert_eq!(r.kind, RejectKind::NoServerEntity, "{body:?}");
                assert_eq!(r.status(), 422);
                assert_eq!(r.field, field, "{body:?}");
                assert_eq!(r.rule, Rule::ServerEntity);
                assert_eq!(
                    r.message_json,
                    "\"Unable to process the contained instructions\""
                );
            }
        }
    }
    // The last `server` wins the other way round too.
    ok(1, "{\"server\":\"x\",\"server\":{}}");
}

#[test]
fn malformed_json_is_400() {
    let bodies: &[&[u8]] = &[
        b" ",
        b"\r\n\t",
        b"{",
        b"{\"server\":{}}x",
        b"{\"server\":{}} {}",
        b"\xef\xbb\xbf{\"server\":{}}",
        b"{\"server\":{\"name\":\"\xff\"}}",
        b"{\"server\":{\"name\":\"a\tb\"}}",
        b"{\"server\":{\"name\":\"a\x01\"}}",
        b"{\"server\":{\"name\":1.}}",
        b"{\"server\":{\"name\":01}}",
        b"{\"server\":{\"name\":-NaN}}",
        b"{\"server\":{\"name\":nan}}",
        b"{\"server\":{\"name\":\"\\x41\"}}",
        b"{\"server\":{\"name\":\"a\"},}",
        b"{'server':{}}",
        b"\xc2\xa0{\"server\":{}}",
    ];
    for &body in bodies {
        for mode in [Mode::V21, Mode::LegacyV2] {
            let Verdict::Reject(r) = check(P, mode, mv(1), body) else {
                panic!("{body:?} accepted");
            };
            assert_eq!(r.kind, RejectKind::Malformed, "{body:?}");
            assert_eq!(r.status(), 400);
            assert_eq!(r.message_json, "\"Malformed request body\"");
            assert_eq!((r.field, r.rule), (None, Rule::Json));
        }
    }
    // Python refuses int literals over 4300 digits, not floats.
    let big = "1".repeat(4301);
    assert_eq!(rej(1, &server("name", &big)).kind, RejectKind::Malformed);
    assert_eq!(rej(1, &server("name", &big[1..])).kind, RejectKind::Invalid);
    assert_eq!(
        rej(1, &server("name", &format!("{big}.5"))).kind,
        RejectKind::Invalid
    );
}

#[test]
fn deep_nesting_is_malformed_without_stack_overflow() {
    let deep = "[".repeat(100_000);
    assert_eq!(rej(1, &deep).kind, RejectKind::Malformed);
    let too_deep = format!(
        "{{\"server\":{{\"foo\":{}{}}}}}",
        "[".repeat(json::MAX_DEPTH),
        "]".repeat(json::MAX_DEPTH)
    );
    assert_eq!(rej(1, &too_deep).kind, RejectKind::Malformed);
    // As deep as allowed: Nova's message prints the whole value.
    let n = json::MAX_DEPTH - 2;
    let deepest = format!(
        "{{\"server\":{{\"foo\":{}{}}}}}",
        "[".repeat(n),
        "]".repeat(n)
    );
    let m = msg(1, &deepest);
    assert!(m.starts_with("Invalid input for field/attribute server. Value: {'foo': [[[["));
    assert!(m.ends_with("]]]]}. Additional properties are not allowed ('foo' was unexpected)"));
    legacy_ok(&deepest);
    let objects = format!(
        "{{\"server\":{{\"foo\":{}1{}}}}}",
        "{\"a\":".repeat(n),
        "}".repeat(n)
    );
    let m = msg(1, &objects);
    assert!(m.starts_with("Invalid input for field/attribute server. Value: {'foo': {'a': {'a': "));
    assert!(m.ends_with(&format!(
        "'a': 1{}. Additional properties are not allowed ('foo' was unexpected)",
        "}".repeat(n + 1)
    )));
}

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

// ---- extra keys and error order (§3.4) ----

#[test]
fn additional_properties() {
    let r = rej(1, "{\"server\":{\"foo\":\"x\"}}");
    assert_eq!(
        decode(&r.message_json),
        "Invalid input for field/attribute server. Value: {'foo': 'x'}. Additional properties are not allowed ('foo' was unexpected)"
    );
    assert_eq!(
        (r.field, r.rule),
        (Some("server"), Rule::AdditionalProperties)
    );
    let r = rej(1, "{\"server\":{\"name\":\"ok\"},\"foo\":1}");
    assert_eq!(
        decode(&r.message_json),
        "Additional properties are not allowed ('foo' was unexpected)"
    );
    assert_eq!((r.field, r.rule), (None, Rule::AdditionalProperties));
    // Several: sorted by code point, once each; the value is the dict.
    assert_eq!(
        msg(1, "{\"server\":{\"zz\":1,\"Aa\":2,\"_\":3,\"é\":4,\"a\":5,\"zz\":6,\"name\":\"n\"}}"),
        "Invalid input for field/attribute server. Value: {'zz': 6, 'Aa': 2, '_': 3, 'é': 4, 'a': 5, 'name': 'n'}. Additional properties are not allowed ('Aa', '_', 'a', 'zz', 'é' were unexpected)"
    );
    assert_eq!(
        msg(1, "{\"zeta\":1,\"server\":{},\"alpha\":2}"),
        "Additional properties are not allowed ('alpha', 'zeta' were unexpected)"
    );
    assert_eq!(
        msg(1, "{\"server\":{\"admin_password\":\"x\"}}"),
        "Invalid input for field/attribute server. Value: {'admin_password': 'x'}. Additional properties are not allowed ('admin_password' was unexpected)"
    );
    assert_eq!(
        msg(1, "{\"server\":{\"it's\":1}}"),
        "Invalid input for field/attribute server. Value: {\"it's\": 1}. Additional properties are not allowed (\"it's\" was unexpected)"
    );
}

#[test]
fn first_error_in_schema_order() {
    // §3.4's two examples.
    assert_eq!(
        msg(1, "{\"server\":{\"accessIPv4\":\"x\",\"name\":\"\"}}"),
        "Invalid input for field/attribute name. Value: . '' should be non-empty"
    );
    assert_eq!(
        msg(
            1,
            "{\"server\":{\"name\":\"x\",\"foo\":1,\"accessIPv4\":\"bad\"}}"
        ),
        "Invalid input for field/attribute accessIPv4. Value: bad. 'bad' is not a 'ipv4'"
    );
    // Properties before server's extra keys, server before the top level.
    assert_eq!(
        msg(1, "{\"foo\":1,\"server\":{\"bar\":1,\"name\":\"\"}}"),
        "Invalid input for field/attribute name. Value: . '' should be non-empty"
    );
    assert_eq!(
        msg(1, "{\"foo\":1,\"server\":{\"bar\":1}}"),
        "Invalid input for field/attribute server. Value: {'bar': 1}. Additional properties are not allowed ('bar' was unexpected)"
    );
    assert_eq!(rej(104, "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"-\",\"description\":1,\"accessIPv6\":\"x\",\"accessIPv4\":\"x\",\"OS-DCF:diskConfig\":\"x\",\"name\":1}}").field, Some("name"));
    assert_eq!(rej(104, "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"\",\"description\":1,\"accessIPv6\":\"x\",\"accessIPv4\":\"x\",\"OS-DCF:diskConfig\":\"x\"}}").field, Some("OS-DCF:diskConfig"));
    assert_eq!(rej(104, "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"\",\"description\":1,\"accessIPv6\":\"x\",\"accessIPv4\":\"x\"}}").field, Some("accessIPv4"));
    assert_eq!(rej(104, "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"\",\"description\":1,\"accessIPv6\":\"x\"}}").field, Some("accessIPv6"));
    assert_eq!(
        rej(
            104,
            "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"\",\"description\":1}}"
        )
        .field,
        Some("description")
    );
    assert_eq!(
        rej(
            104,
            "{\"server\":{\"pinned_availability_zone\":\"\",\"hostname\":\"\"}}"
        )
        .field,
        Some("hostname")
    );
    assert_eq!(
        rej(
            104,
            "{\"server\":{\"pinned_availability_zone\":\"\",\"x\":1}}"
        )
        .field,
        Some("pinned_availability_zone")
    );
}

#[test]
fn duplicate_keys_last_wins() {
    ok(1, "{\"server\":{\"name\":\"\",\"name\":\"a\"}}");
    assert_eq!(
        msg(1, "{\"server\":{\"name\":\"a\",\"name\":\"\"}}"),
        "Invalid input for field/attribute name. Value: . '' should be non-empty"
    );
    ok(1, "{\"server\":{\"foo\":1},\"server\":{\"name\":\"a\"}}");
    assert_eq!(
        msg(1, "{\"server\":{\"b\":1,\"a\":2,\"b\":3}}"),
        "Invalid input for field/attribute server. Value: {'b': 3, 'a': 2}. Additional properties are not allowed ('a', 'b' were unexpected)"
    );
    // An escaped spelling of a key is the same key.
    ok(1, "{\"server\":{\"n\\u0061me\":\"\",\"name\":\"a\"}}");
}

#[test]
fn legacy_v2() {
    legacy_ok("{\"server\":{}}");
    legacy_ok("{\"server\":{\"name\":\"x\",\"foo\":1}}");
    legacy_ok("{\"server\":{\"foo\":1}}");
    legacy_ok("{\"server\":{\"name\":\"x\"},\"foo\":1}");
    legacy_ok("{\"server\":{\"name\":\"  abc   def  \"}}");
    legacy_ok("{\"server\":{\"admin_password\":\"x\",\"host_id\":\"x\"}}");
    // Later microversions' fields are refused (deliberately unlike Nova).
    for key in ["description", "hostname", "pinned_availability_zone"] {
        let r = legacy_rej(&server(key, "\"x\""));
        assert_eq!(r.kind, RejectKind::Invalid);
        assert_eq!(
            (r.field, r.rule),
            (Some("server"), Rule::AdditionalProperties)
        );
        assert_eq!(
            decode(&r.message_json),
            format!("Invalid input for field/attribute server. Value: {{'{key}': 'x'}}. Additional properties are not allowed ('{key}' was unexpected)")
        );
    }
    assert_eq!(
        legacy_msg("{\"server\":{\"name\":\"x\",\"foo\":1,\"hostname\":\"h\",\"description\":null}}"),
        "Invalid input for field/attribute server. Value: {'name': 'x', 'foo': 1, 'hostname': 'h', 'description': None}. Additional properties are not allowed ('description', 'hostname' were unexpected)"
    );
    // Field errors come first, as in Nova's order.
    assert_eq!(
        legacy_msg("{\"server\":{\"description\":\"x\",\"name\":\"\"}}"),
        INVALID_NAME_LEGACY
    );
    // The microversion is ignored.
    assert!(matches!(
        check(
            P,
            Mode::LegacyV2,
            mv(104),
            server("description", "\"x\"").as_bytes()
        ),
        Verdict::Reject(_)
    ));
    legacy_ok(&name(" a"));
}

#[test]
fn fields_per_microversion() {
    // (body, first minor that allows it, last minor that allows it)
    let rows: &[(&str, u16, u16)] = &[
        ("{\"server\":{\"name\":\"a\",\"OS-DCF:diskConfig\":\"AUTO\",\"accessIPv4\":\"1.2.3.4\",\"accessIPv6\":\"::1\"}}", 1, 104),
        ("{\"server\":{\"description\":\"d\"}}", 19, 104),
        ("{\"server\":{\"hostname\":\"ab\"}}", 90, 104),
        ("{\"server\":{\"hostname\":\"a.b\"}}", 94, 104),
        ("{\"server\":{\"hostname\":\"a\"}}", 94, 104),
        ("{\"server\":{\"pinned_availability_zone\":null}}", 104, 104),
    ];
    for &(body, lo, hi) in rows {
        for (_, minor) in ALL {
            assert_eq!(
                accepts(Mode::V21, minor, body),
                (lo..=hi).contains(&minor),
                "{body} at 2.{minor}"
            );
        }
    }
    // Above the known versions, the newest schema.
    assert!(accepts(
        Mode::V21,
        110,
        "{\"server\":{\"pinned_availability_zone\":null}}"
    ));
}

// ---- accessIPv6 rewrite ----

fn rewrite_of(mode: Mode, minor: u16, body: &str) -> Option<Rewrite> {
    match run(mode, minor, body) {
        Verdict::Accept { rewrite } => rewrite,
        other => panic!("{body}: {other:?}"),
    }
}

#[test]
fn access_ipv6_rewrite() {
    let body = "{\"server\": {\"name\": \"x\", \"accessIPv6\": \"2001:0DB8:0:0:0:0:0:1\"}}";
    for mode in [Mode::V21, Mode::LegacyV2] {
        let rw = rewrite_of(mode, 1, body).expect("a rewrite");
        assert_eq!(&body[rw.span.clone()], "\"2001:0DB8:0:0:0:0:0:1\"");
        assert_eq!(rw.replacement, "\"2001:db8::1\"");
        let new = rw.apply(body.as_bytes());
        assert_eq!(
            new,
            b"{\"server\": {\"name\": \"x\", \"accessIPv6\": \"2001:db8::1\"}}".to_vec()
        );
        assert_eq!(
            check(P, mode, mv(1), &new),
            Verdict::Accept { rewrite: None }
        );
    }
    let rw = rewrite_of(
        Mode::V21,
        1,
        "{\"server\":{\"accessIPv6\":\"::babe:67.23.10.132\"}}",
    )
    .unwrap();
    assert_eq!(rw.replacement, "\"::babe:4317:a84\"");
    // Already canonical: nothing to do, even when spelled with escapes.
    assert_eq!(
        rewrite_of(
            Mode::V21,
            1,
            "{\"server\":{\"accessIPv6\":\"2001:db8::1\"}}"
        ),
        None
    );
    assert_eq!(
        rewrite_of(
            Mode::V21,
            1,
            "{\"server\":{\"accessIPv6\":\"2001:db8::\\u0031\"}}"
        ),
        None
    );
    // Not canonical with escapes: the whole token is replaced.
    let body = "{\"server\":{\"accessIPv6\":\"2001:DB8::\\u0031\"}}";
    let rw = rewrite_of(Mode::V21, 1, body).unwrap();
    assert_eq!(&body[rw.span.clone()], "\"2001:DB8::\\u0031\"");
    assert_eq!(rw.replacement, "\"2001:db8::1\"");
    // Repeated key: the last occurrence is the one Nova uses.
    let body = "{\"server\":{\"accessIPv6\":\"bad\",\"accessIPv6\":\"FE80::ABCD\"}}";
    let rw = rewrite_of(Mode::V21, 1, body).unwrap();
    assert_eq!(rw.span.start, body.rfind("\"FE80").unwrap());
    assert_eq!(rw.replacement, "\"fe80::abcd\"");
    assert_eq!(
        msg(
            1,
            "{\"server\":{\"accessIPv6\":\"FE80::ABCD\",\"accessIPv6\":\"bad\"}}"
        ),
        "Invalid input for field/attribute accessIPv6. Value: bad. 'bad' is not a 'ipv6'"
    );
    // Repeated `server`: the last one.
    let body = "{\"server\":{\"accessIPv6\":\"1::0:1\"},\"server\":{\"accessIPv6\":\"1:0::1\"}}";
    let rw = rewrite_of(Mode::V21, 1, body).unwrap();
    assert_eq!(&body[rw.span.clone()], "\"1:0::1\"");
    assert!(rw.span.start > body.find("},").unwrap());
    assert_eq!(rw.replacement, "\"1::1\"");
    // Legacy: other keys dropped by Nova do not matter.
    let body = "{\"server\":{\"foo\":[\"::1\"],\"accessIPv6\":\"::FFFF:1.2.3.4\"},\"x\":1}";
    let rw = rewrite_of(Mode::LegacyV2, 1, body).unwrap();
    assert_eq!(rw.replacement, "\"::ffff:1.2.3.4\"");
    // No rewrite when the body is refused.
    assert!(matches!(
        run(
            Mode::V21,
            1,
            "{\"server\":{\"accessIPv6\":\"2001:DB8::1\",\"foo\":1}}"
        ),
        Verdict::Reject(_)
    ));
}

// ---- releases and Pythons ----

fn msg_in(p: Profile, mode: Mode, minor: u16, body: &str) -> String {
    match check(p, mode, mv(minor), body.as_bytes()) {
        Verdict::Reject(r) if r.kind == RejectKind::Invalid => decode(&r.message_json),
        other => panic!("{body} at 2.{minor} on {p}: {other:?}"),
    }
}

fn rule_in(p: Profile, mode: Mode, minor: u16, body: &str) -> Rule {
    match check(p, mode, mv(minor), body.as_bytes()) {
        Verdict::Reject(r) => r.rule,
        other => panic!("{body} at 2.{minor} on {p}: {other:?}"),
    }
}

#[test]
fn min_length_message_follows_the_jsonschema_of_the_release() {
    let empty = name("");
    for r in Release::ALL {
        let tail = if r == Release::R2024_1 {
            "is too short"
        } else {
            "should be non-empty"
        };
        assert_eq!(
            msg_in(Profile::of(r), Mode::V21, 1, &empty),
            format!("Invalid input for field/attribute name. Value: . '' {tail}"),
            "{r}"
        );
        assert_eq!(
            msg_in(Profile::of(r), Mode::V21, 94, &server("hostname", "\"\"")),
            format!("Invalid input for field/attribute hostname. Value: . '' {tail}"),
            "{r}"
        );
    }
    // minLength 2 was never special-cased.
    let p = Profile::of(Release::R2024_1);
    assert_eq!(
        msg_in(p, Mode::V21, 90, &server("hostname", "\"a\"")),
        "Invalid input for field/attribute hostname. Value: a. 'a' is too short"
    );
}

#[test]
fn lengths_come_before_format_until_2025_2() {
    let spaces = name(&" ".repeat(300));
    let long_tab = server(
        "description",
        &json_string(&format!("{}\t", "x".repeat(300))),
    );
    let label = server("hostname", "\".\"");
    for r in Release::ALL {
        let p = Profile::of(r);
        let early = r < Release::R2025_2;
        assert_eq!(
            rule_in(p, Mode::V21, 1, &spaces),
            if early { Rule::MaxLength } else { Rule::Format },
            "{r}"
        );
        assert_eq!(
            rule_in(p, Mode::V21, 19, &long_tab),
            if early {
                Rule::MaxLength
            } else {
                Rule::Pattern
            },
            "{r}"
        );
        assert_eq!(
            rule_in(p, Mode::V21, 90, &label),
            if early {
                Rule::MinLength
            } else {
                Rule::Pattern
            },
            "{r}"
        );
        // Legacy v2's name format refuses "" (no non-space character).
        let legacy_empty = msg_in(p, Mode::LegacyV2, 1, &name(""));
        if early {
            assert!(
                legacy_empty.ends_with("Value: . '' is too short")
                    || legacy_empty.ends_with("Value: . '' should be non-empty"),
                "{r}: {legacy_empty}"
            );
        } else {
            assert_eq!(legacy_empty, INVALID_NAME_LEGACY, "{r}");
        }
    }
}

#[test]
fn pinned_availability_zone_only_in_2026_2() {
    let body = server("pinned_availability_zone", "null");
    for r in Release::ALL {
        // A configured maximum above the release's own: 2.104 is then
        // 2.94's schema, which has no such key.
        let v = check(Profile::of(r), Mode::V21, mv(104), body.as_bytes());
        if r == Release::R2026_2 {
            assert_eq!(v, Verdict::Accept { rewrite: None });
        } else {
            let Verdict::Reject(rj) = v else {
                panic!("{r}: {v:?}");
            };
            assert_eq!(rj.rule, Rule::AdditionalProperties, "{r}");
        }
    }
}

#[test]
fn printable_class_follows_the_python() {
    // U+0ECE LAO YAMAKKAN, assigned in Unicode 15.0 (Python 3.12).
    let lao = name("a\u{0ece}");
    for python in Python::ALL {
        let p = Profile::new(Release::R2025_1, python);
        let accepted = matches!(
            check(p, Mode::V21, mv(1), lao.as_bytes()),
            Verdict::Accept { .. }
        );
        assert_eq!(accepted, python >= Python::Py3_12, "{python}");
    }
    // The default profile is Python 3.11's, as the contract has it.
    assert!(matches!(
        check(Profile::default(), Mode::V21, mv(1), lao.as_bytes()),
        Verdict::Reject(_)
    ));
    // U+0870, new in 14.0: not printable for Python 3.10, in the name
    // class nor in repr().
    let body = server("description", &json_string("\u{0870}\t"));
    let m310 = msg_in(
        Profile::new(Release::R2024_1, Python::Py3_10),
        Mode::V21,
        19,
        &body,
    );
    let m311 = msg_in(
        Profile::new(Release::R2024_1, Python::Py3_11),
        Mode::V21,
        19,
        &body,
    );
    assert!(m310.starts_with("Invalid input for field/attribute description. Value: \u{0870}\t. '\\u0870\\t' does not match '^["), "{m310}");
    assert!(m311.starts_with("Invalid input for field/attribute description. Value: \u{0870}\t. '\u{0870}\\t' does not match '^["), "{m311}");
    assert!(!m310.contains("\u{086a}\u{0870}-"));
    assert!(m311.contains("\u{086a}\u{0870}-\u{088e}"));
}

// ---- create and rebuild ----

const UUID: &str = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c";

fn op_run(op: Operation, minor: u16, body: &str) -> Verdict {
    check_request(
        P,
        op,
        Mode::V21,
        mv(minor),
        body.as_bytes(),
        &AccessIpPolicy::default(),
    )
}

fn op_msg(op: Operation, minor: u16, body: &str) -> String {
    match op_run(op, minor, body) {
        Verdict::Reject(r) => {
            assert_eq!(r.kind, RejectKind::Invalid);
            decode(&r.message_json)
        }
        other => panic!("{body}: expected a rejection, got {other:?}"),
    }
}

#[test]
fn create_guarded_fields_are_judged_in_schema_order() {
    let c = |minor, body: &str| op_msg(Operation::Create, minor, body);
    assert_eq!(
        c(1, "{\"server\": {\"name\": \"\", \"flavorRef\": \"1\"}}"),
        "Invalid input for field/attribute name. Value: . '' should be non-empty"
    );
    // name is the schema's first property: nothing can fail before it.
    assert_eq!(
        c(
            1,
            "{\"server\": {\"imageRef\": 5, \"name\": \" x\"}, \"foo\": 1}"
        ),
        INVALID_NAME
    );
    let body = format!(
        "{{\"server\": {{\"accessIPv4\": \"1.2.3\", \"name\": \"x\", \"imageRef\": \"{UUID}\", \"flavorRef\": 1, \"networks\": \"auto\", \"OS-DCF:diskConfig\": \"auto\"}}}}"
    );
    assert_eq!(
        c(37, &body),
        "Invalid input for field/attribute OS-DCF:diskConfig. Value: auto. 'auto' is not one of ['AUTO', 'MANUAL']"
    );
    // "auto" networks is only valid from 2.37: before, Nova's first error
    // may be there, so the body is Nova's.
    assert_eq!(op_run(Operation::Create, 36, &body), Verdict::Defer);
    // An unknown-validity property before the guarded one defers.
    assert_eq!(
        op_run(
            Operation::Create,
            90,
            "{\"server\": {\"name\": \"x\", \"flavorRef\": \"1\", \"block_device_mapping_v2\": [{\"boot_index\": \"x\"}], \"hostname\": \"a\"}}"
        ),
        Verdict::Defer
    );
    // (host comes before hostname in the schema) ...
    assert_eq!(
        op_run(
            Operation::Create,
            90,
            "{\"server\": {\"name\": \"x\", \"hostname\": \"a\", \"host\": \"!\"}}"
        ),
        Verdict::Defer
    );
    // ... but errors checked after the properties do not.
    assert_eq!(
        c(90, "{\"server\": {\"hostname\": \"a\", \"foo\": 1}, \"bar\": 2}"),
        "Invalid input for field/attribute hostname. Value: a. 'a' does not match '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'"
    );
    // description only exists from 2.19: before, it is an extra key (Nova's).
    let desc = "{\"server\": {\"name\": \"x\", \"flavorRef\": \"1\", \"description\": 1}}";
    assert_eq!(op_run(Operation::Create, 18, desc), Verdict::Defer);
    assert_eq!(
        c(19, desc),
        "Invalid input for field/attribute description. Value: 1. 1 is not of type 'string', 'null'"
    );
}

#[test]
fn create_accepts_and_rewrites_only_certainly_valid_bodies() {
    let body = format!(
        "{{\"server\": {{\"name\": \"x\", \"imageRef\": \"{UUID}\", \"flavorRef\": \"1\", \"networks\": \"none\", \"accessIPv6\": \"2001:0DB8::1\"}}}}"
    );
    let Verdict::Accept { rewrite: Some(rw) } = op_run(Operation::Create, 37, &body) else {
        panic!("{body}");
    };
    assert_eq!(rw.replacement, "\"2001:db8::1\"");
    // Missing a required key (networks from 2.37), an extra key, or
    // scheduler hints: not certain, forwarded unchanged.
    let no_networks =
        "{\"server\": {\"name\": \"x\", \"flavorRef\": \"1\", \"accessIPv6\": \"2001:0DB8::1\"}}";
    assert_eq!(op_run(Operation::Create, 37, no_networks), Verdict::Defer);
    assert!(matches!(
        op_run(Operation::Create, 36, no_networks),
        Verdict::Accept { rewrite: Some(_) }
    ));
    let extra = "{\"server\": {\"name\": \"x\", \"flavorRef\": \"1\", \"foo\": 1}}";
    assert_eq!(op_run(Operation::Create, 1, extra), Verdict::Defer);
    let hints = "{\"server\": {\"name\": \"x\", \"flavorRef\": \"1\"}, \"os:scheduler_hints\": {}}";
    assert_eq!(op_run(Operation::Create, 1, hints), Verdict::Defer);
    // Not a create body at all: Nova's to answer.
    for body in [
        "",
        "x",
        "null",
        "[]",
        "{}",
        "{\"server\": 1}",
        "{\"foo\": {}}",
    ] {
        assert_eq!(op_run(Operation::Create, 1, body), Verdict::Defer, "{body}");
    }
}

#[test]
fn rebuild_is_judged_only_for_the_rebuild_action() {
    let r = |minor, body: &str| op_msg(Operation::Rebuild, minor, body);
    let body = format!(
        "{{\"rebuild\": {{\"imageRef\": \"{UUID}\", \"preserve_ephemeral\": \"yes\", \"accessIPv4\": \"01.2.3.4\"}}}}"
    );
    assert_eq!(
        r(1, &body),
        "Invalid input for field/attribute accessIPv4. Value: 01.2.3.4. '01.2.3.4' is not a 'ipv4'"
    );
    // imageRef that is not certainly a uuid comes first: deferred.
    assert_eq!(
        op_run(
            Operation::Rebuild,
            1,
            "{\"rebuild\": {\"imageRef\": \"x\", \"accessIPv4\": \"\"}}"
        ),
        Verdict::Defer
    );
    assert_eq!(
        r(
            94,
            "{\"rebuild\": {\"hostname\": \"\", \"key_name\": null}}"
        ),
        "Invalid input for field/attribute hostname. Value: . '' should be non-empty"
    );
    assert_eq!(r(1, "{\"rebuild\": {\"name\": \"a \"}}"), INVALID_NAME);
    assert!(is_rebuild_action(b"{\"rebuild\": 1}"));
    assert!(!is_rebuild_action(b"{\"rebuild\": {}, \"x\": {}}"));
    assert!(!is_rebuild_action(b"{\"reboot\": {}}"));
    assert!(!is_rebuild_action(b"[\"rebuild\"]"));
    // Other actions, and bodies Nova cannot dispatch, are not judged.
    for body in [
        "{\"reboot\": {\"type\": \"HARD\"}}",
        "{\"rebuild\": {\"name\": \"\"}, \"reboot\": {}}",
        "{\"rebuild\": \"x\"}",
        "{\"rebuild\": null}",
    ] {
        assert_eq!(
            op_run(Operation::Rebuild, 1, body),
            Verdict::Defer,
            "{body}"
        );
    }
    // A repeated key is one key to Python.
    assert!(matches!(
        op_run(
            Operation::Rebuild,
            1,
            "{\"rebuild\": {}, \"rebuild\": {\"name\": \"\"}}"
        ),
        Verdict::Reject(_)
    ));
    let ok = format!(
        "{{\"rebuild\": {{\"imageRef\": \"{UUID}\", \"accessIPv6\": \"::babe:67.23.10.132\"}}}}"
    );
    let Verdict::Accept { rewrite: Some(rw) } = op_run(Operation::Rebuild, 2, &ok) else {
        panic!("{ok}");
    };
    assert_eq!(rw.replacement, "\"::babe:4317:a84\"");
    // Legacy: the 2.0 schema whatever the version.
    assert_eq!(
        check_request(
            P,
            Operation::Rebuild,
            Mode::LegacyV2,
            mv(94),
            format!("{{\"rebuild\": {{\"imageRef\": \"{UUID}\", \"name\": \" a\", \"hostname\": \"\"}}}}").as_bytes(),
            &AccessIpPolicy::default()
        ),
        Verdict::Accept { rewrite: None }
    );
}

#[test]
fn access_ip_policy_after_nova_s_checks() {
    let policy = AccessIpPolicy {
        ipv4_deny: vec!["127.0.0.0/8".parse().unwrap()],
        ipv6_deny: vec!["fe80::/10".parse().unwrap()],
        ipv6_allow: vec![
            "2001:db8::/32".parse().unwrap(),
            "fe80::/10".parse().unwrap(),
        ],
        ..AccessIpPolicy::default()
    };
    let run = |op, body: &str, p: &AccessIpPolicy| {
        check_request(P, op, Mode::V21, mv(1), body.as_bytes(), p)
    };
    let refused = |op, body: &str, p: &AccessIpPolicy| match run(op, body, p) {
        Verdict::Reject(r) => (decode(&r.message_json), r.field, r.rule),
        other => panic!("{body}: {other:?}"),
    };
    assert_eq!(
        refused(Operation::Update, "{\"server\": {\"accessIPv4\": \"127.0.0.1\"}}", &policy),
        (
            "Invalid input for field/attribute accessIPv4. Value: 127.0.0.1. '127.0.0.1' is in a denied network '127.0.0.0/8'".to_owned(),
            Some("accessIPv4"),
            Rule::AccessIpDenied
        )
    );
    // Deny wins over allow; the address is quoted in its canonical text.
    assert_eq!(
        refused(Operation::Update, "{\"server\": {\"accessIPv6\": \"FE80::0:1\"}}", &policy).0,
        "Invalid input for field/attribute accessIPv6. Value: FE80::0:1. 'fe80::1' is in a denied network 'fe80::/10'"
    );
    assert_eq!(
        refused(Operation::Update, "{\"server\": {\"accessIPv6\": \"2002::1\"}}", &policy),
        (
            "Invalid input for field/attribute accessIPv6. Value: 2002::1. '2002::1' is not in an allowed network".to_owned(),
            Some("accessIPv6"),
            Rule::AccessIpNotAllowed
        )
    );
    // Nova's own errors come first.
    assert_eq!(
        refused(
            Operation::Update,
            "{\"server\": {\"accessIPv4\": \"127.0.0.1\", \"foo\": 1}}",
            &policy
        )
        .2,
        Rule::AdditionalProperties
    );
    assert!(matches!(
        run(
            Operation::Update,
            "{\"server\": {\"accessIPv6\": \"2001:DB8::1\"}}",
            &policy
        ),
        Verdict::Accept { rewrite: Some(_) }
    ));
    // Mapped addresses: by the IPv6 lists unless they count as IPv4.
    let mapped = "{\"server\": {\"accessIPv6\": \"::FFFF:127.0.0.1\"}}";
    assert_eq!(
        refused(Operation::Update, mapped, &policy).2,
        Rule::AccessIpNotAllowed
    );
    let as_v4 = AccessIpPolicy {
        mapped_as_v4: true,
        ..policy.clone()
    };
    assert_eq!(
        refused(Operation::Update, mapped, &as_v4).0,
        "Invalid input for field/attribute accessIPv6. Value: ::FFFF:127.0.0.1. '::ffff:127.0.0.1' is in a denied network '127.0.0.0/8'"
    );
    // Create and rebuild: judged even when the rest of the body is
    // Nova's to judge (no way around the policy).
    let create = "{\"server\": {\"name\": \"x\", \"block_device_mapping_v2\": [{\"boot_index\": \"x\"}], \"accessIPv4\": \"127.0.0.2\"}}";
    assert_eq!(
        refused(Operation::Create, create, &policy).2,
        Rule::AccessIpDenied
    );
    let rebuild = "{\"rebuild\": {\"imageRef\": \"x\", \"accessIPv4\": \"127.0.0.2\"}}";
    assert_eq!(
        refused(Operation::Rebuild, rebuild, &policy).2,
        Rule::AccessIpDenied
    );
    // An address Nova refuses is Nova's to refuse.
    assert_eq!(
        run(
            Operation::Rebuild,
            "{\"rebuild\": {\"imageRef\": \"x\", \"accessIPv4\": \"127.0.0.01\"}}",
            &policy
        ),
        Verdict::Defer
    );
}

// ---- properties ----

mod props {
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
                proptest::collection::vec(
                    (proptest::sample::select(KEYS), inner, " ?", " ?"),
                    0..5
                )
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
}
