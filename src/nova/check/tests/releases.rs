//! What differs between the releases and the Pythons nova-guard matches.

use super::*;

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
