//! Create and rebuild bodies, judged only where Nova's first error is
//! certainly a guarded field's; and the access-IP policy, after Nova's own
//! checks, for every operation.

use super::*;

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
