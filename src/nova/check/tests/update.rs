//! Update bodies as a whole: no server entity, malformed JSON, extra keys
//! and the order of first errors, legacy v2, the fields of each
//! microversion, and the `accessIPv6` rewrite.

use super::*;

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
