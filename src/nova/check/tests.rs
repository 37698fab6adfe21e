//! Tests of the validator, one file each for what they cover; here the
//! helpers they share.

use super::*;
use crate::nova::{Python, Release};

mod create_rebuild;
mod fields;
mod props;
mod releases;
mod update;

/// The Nova these tests were written against: 2026.2 on Python 3.11.
/// Other releases and Pythons have tests of their own (releases.rs).
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

const UUID: &str = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c";
