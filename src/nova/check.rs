//! The update-server body validator: (profile, mode, microversion, bytes) →
//! verdict, where the profile names the Nova release and the Python that
//! runs it (see [`super::profile`]).
//!
//! Nova validates with `jsonschema`'s `validate()`, which raises the first
//! error met while walking the schema in its dict order:
//!
//! 1. top level `type: object`;
//! 2. `properties.server`: its `type: object`, then each property of
//!    `server` in schema order (name, OS-DCF:diskConfig, accessIPv4,
//!    accessIPv6, description, hostname, pinned_availability_zone), each
//!    keyword in its own order, then `server`'s `additionalProperties`;
//! 3. top level `required: [server]`, then `additionalProperties`.
//!
//! So whenever the body has no server entity (not an object, no `server`,
//! `server` not an object), Nova's first error is exactly about that (step
//! 1, the `type` of step 2, or step 3's `required`): nothing else can fail
//! before it. Those cases get the documented 422 in every mode, and every
//! other first error gets Nova's own 400 message.
//!
//! Legacy v2 (`update_v20`, relaxed `additionalProperties`): Nova silently
//! drops unknown keys (or keeps them all when no key of the object is
//! known). nova-guard refuses `description`, `hostname` and
//! `pinned_availability_zone` there, at the point where Nova checks
//! `server`'s extra keys, in Nova's own words for an extra key: the value
//! shown is `server` as received, the keys listed are only those three.
//!
//! `accessIPv6` is rewritten only when its decoded text is not already the
//! canonical one, so an accepted body is forwarded byte for byte unless
//! Nova would store a different text.

use std::ops::Range;

use super::json::{self, Value};
use super::policy::{AccessIpPolicy, Refusal};
use super::pyrepr::{json_string, json_string_wtf8, repr_object, repr_str, str_value};
use super::unicode::Unicode;
use super::{ipv6, Microversion, Mode, Profile, Rule};

mod field;
mod other;
mod schema;

use field::{Field, FieldError};
use schema::Prop;

/// What Nova would do with an update-server body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nova would accept the body. `rewrite` replaces the JSON string token of
    /// `server.accessIPv6` with its canonical text, when that text differs.
    Accept { rewrite: Option<Rewrite> },
    /// Nova would refuse the body; nova-guard answers itself.
    Reject(Rejection),
    /// Not nova-guard's to judge, or not certain (create and rebuild bodies
    /// whose first error could be in a field nova-guard does not check):
    /// forwarded unchanged, Nova decides.
    Defer,
}

/// Replace `body[span]` (a whole JSON string token, quotes included) by `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub span: Range<usize>,
    /// A complete JSON string token, quotes included.
    pub replacement: String,
}

impl Rewrite {
    /// The body with the replacement applied.
    pub fn apply(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + self.replacement.len());
        out.extend_from_slice(&body[..self.span.start]);
        out.extend_from_slice(self.replacement.as_bytes());
        out.extend_from_slice(&body[self.span.end..]);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Not JSON as Python's `json.loads` reads it: 400 `Malformed request body`.
    Malformed,
    /// No server entity (empty body, non-object, no `server`, `server` not an
    /// object): the documented 422 `computeFault`.
    NoServerEntity,
    /// A schema error: 400 `badRequest` with Nova's message.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectKind,
    /// The message as a complete JSON string token (quotes included), encoded
    /// as Python's `json.dumps` does (ASCII only, `\uXXXX` escapes), because a
    /// message may quote a lone surrogate that a Rust `String` cannot hold.
    pub message_json: String,
    /// The field the error is reported on (`server`, `name`, …), `None` at the
    /// top level. A schema name, never a value: safe to log.
    pub field: Option<&'static str>,
    /// The failing rule. Safe to log.
    pub rule: Rule,
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self.kind {
            RejectKind::NoServerEntity => 422,
            RejectKind::Malformed | RejectKind::Invalid => 400,
        }
    }
}

/// Which request a body belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `PUT .../servers/{id}`: the whole body is validated.
    Update,
    /// `POST .../servers`: the guarded fields of `server`.
    Create,
    /// `POST .../servers/{id}/action`: the guarded fields of a `rebuild`
    /// action; other actions are deferred.
    Rebuild,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::Create => "create",
            Operation::Rebuild => "rebuild",
        }
    }
}

/// Validate a body for `op` as `profile`'s Nova does for `mode` and
/// `version`, then judge its access IPs by `policy`.
pub fn check_request(
    profile: Profile,
    op: Operation,
    mode: Mode,
    version: Microversion,
    body: &[u8],
    policy: &AccessIpPolicy,
) -> Verdict {
    match op {
        Operation::Update => check_update(profile, mode, version, body, policy),
        Operation::Create | Operation::Rebuild => {
            check_entity(profile, op, mode, version, body, policy)
        }
    }
}

/// Validate an update-server body as `profile`'s Nova does for `mode` and
/// `version`. An empty `body` is what Nova sees when there is no
/// Content-Length.
pub fn check(profile: Profile, mode: Mode, version: Microversion, body: &[u8]) -> Verdict {
    check_update(profile, mode, version, body, &AccessIpPolicy::default())
}

fn check_update(
    p: Profile,
    mode: Mode,
    version: Microversion,
    body: &[u8],
    policy: &AccessIpPolicy,
) -> Verdict {
    let u = p.unicode();
    // Nova does not parse an empty body: it validates `None`.
    if body.is_empty() {
        return reject_no_server(None);
    }
    let Ok(root) = json::parse(body) else {
        return Verdict::Reject(Rejection {
            kind: RejectKind::Malformed,
            message_json: MALFORMED_JSON.to_owned(),
            field: None,
            rule: Rule::Json,
        });
    };
    let Value::Object(top) = &root else {
        return reject_no_server(None);
    };
    let server = match top.get("server") {
        None => return reject_no_server(None),
        Some(Value::Object(server)) => server,
        Some(_) => return reject_no_server(Some("server")),
    };
    let schema = schema::select(p.release, mode, version);

    // Nova drops unknown keys in legacy v2 (or keeps them all when no key
    // is known); nova-guard refuses the later microversions' fields there.
    let refused_unknown = |k: &json::PyStr<'_>| {
        !schema.legacy
            || schema::LEGACY_REFUSED
                .iter()
                .any(|r| k.as_bytes() == r.as_bytes())
    };
    // One pass over the members: each property's value (the last
    // occurrence, as in the dict Python builds) and whether any key is
    // refused.
    let mut values: [Option<&Value<'_>>; schema::MAX_PROPS] = [None; schema::MAX_PROPS];
    let mut any_refused = false;
    for (k, v) in &server.members {
        match schema
            .props
            .iter()
            .position(|(p, _)| k.as_bytes() == p.as_bytes())
        {
            Some(i) => {
                if let Some(slot) = values.get_mut(i) {
                    *slot = Some(v);
                }
            }
            None => any_refused = any_refused || refused_unknown(k),
        }
    }

    let mut access_ipv6 = None;
    for (&(name, field), value) in schema.props.iter().zip(values) {
        let Some(value) = value else {
            continue;
        };
        match field_verdict(p, name, field, value) {
            Ok(None) => {}
            Ok(Some(addr)) => access_ipv6 = Some((addr, value)),
            Err(verdict) => return verdict,
        }
    }

    // `server`'s additionalProperties.
    let refused = |k: &json::PyStr<'_>| {
        !schema
            .props
            .iter()
            .any(|(p, _)| k.as_bytes() == p.as_bytes())
            && refused_unknown(k)
    };
    if any_refused {
        let keys: Vec<&json::PyStr<'_>> = server
            .sorted_keys()
            .into_iter()
            .filter(|k| refused(k))
            .collect();
        let message = additional_properties(&keys, u);
        return reject(
            field_message("server", |out| repr_object(server, u, out), &message),
            Some("server"),
            Rule::AdditionalProperties,
        );
    }

    // Top level: `required` holds; additionalProperties (dropped in legacy).
    if !schema.legacy && top.members.iter().any(|(k, _)| k.as_bytes() != b"server") {
        let keys: Vec<&json::PyStr<'_>> = top
            .sorted_keys()
            .into_iter()
            .filter(|k| k.as_bytes() != b"server")
            .collect();
        let message = additional_properties(&keys, u);
        return reject(json_string_wtf8(&message), None, Rule::AdditionalProperties);
    }

    if let Some(refused) = policy_verdict(server, policy, u) {
        return refused;
    }
    Verdict::Accept {
        rewrite: access_ipv6.and_then(|(addr, value)| ipv6_rewrite(addr, value)),
    }
}

/// One property's rules (the one piece of code that update, create and
/// rebuild share): `Ok` with the address of a valid `accessIPv6`, or the
/// rejection Nova answers with for its first error.
fn field_verdict(
    p: Profile,
    name: &'static str,
    field: Field,
    value: &Value<'_>,
) -> Result<Option<std::net::Ipv6Addr>, Verdict> {
    match field.check(value, p) {
        Ok(addr) => Ok(addr),
        Err(FieldError::InvalidName(reason)) => {
            let message =
                format!("An invalid 'name' value was provided. The name must be: {reason}");
            Err(reject(json_string(&message), Some(name), Rule::Format))
        }
        Err(FieldError::Keyword { rule, message }) => Err(reject(
            field_message(name, |out| str_value(value, p.unicode(), out), &message),
            Some(name),
            rule,
        )),
    }
}

/// The access-IP policy, judged on the addresses of `entity`'s
/// `accessIPv4` then `accessIPv6` that pass Nova's own format checks (an
/// address that fails them is Nova's to refuse).
fn policy_verdict(
    entity: &json::Object<'_>,
    policy: &AccessIpPolicy,
    u: Unicode,
) -> Option<Verdict> {
    if policy.is_empty() {
        return None;
    }
    let text = |name: &str| match entity.get(name) {
        Some(value @ Value::Str(s)) => s.text.as_str().map(|t| (value, t)),
        _ => None,
    };
    if let Some((value, t)) = text("accessIPv4") {
        if let Some(addr) = ipv6::parse_ipv4(t) {
            if let Err(refusal) = policy.judge_v4(addr) {
                return Some(policy_reject(
                    "accessIPv4",
                    value,
                    &addr.to_string(),
                    refusal,
                    u,
                ));
            }
        }
    }
    if let Some((value, t)) = text("accessIPv6") {
        if let Some(addr) = ipv6::parse_ipv6(t) {
            if let Err(refusal) = policy.judge_v6(addr) {
                let canonical = ipv6::canonical(addr);
                return Some(policy_reject("accessIPv6", value, &canonical, refusal, u));
            }
        }
    }
    None
}

/// `Invalid input for field/attribute accessIPv4. Value: 127.0.0.1.
/// '127.0.0.1' is in a denied network '127.0.0.0/8'` (or `is not in an
/// allowed network`), the address quoted in its canonical text.
fn policy_reject(
    name: &'static str,
    value: &Value<'_>,
    canonical: &str,
    refusal: Refusal,
    u: Unicode,
) -> Verdict {
    let mut message = Vec::new();
    repr_str(canonical.as_bytes(), u, &mut message);
    match refusal {
        Refusal::Denied(net) => {
            message.extend_from_slice(b" is in a denied network ");
            repr_str(net.to_string().as_bytes(), u, &mut message);
        }
        Refusal::NotAllowed => message.extend_from_slice(b" is not in an allowed network"),
    }
    reject(
        field_message(name, |out| str_value(value, u, out), &message),
        Some(name),
        refusal.rule(),
    )
}

/// Whether an action body is a `rebuild` action as Nova dispatches it: a
/// JSON object whose one key is `rebuild`.
pub fn is_rebuild_action(body: &[u8]) -> bool {
    match json::parse(body) {
        Ok(Value::Object(top)) => top.sorted_keys().len() == 1 && top.get("rebuild").is_some(),
        _ => false,
    }
}

/// Validate a create-server (`POST .../servers`) or rebuild-action (`POST
/// .../servers/{id}/action`) body.
///
/// Only the guarded fields are judged (name, OS-DCF:diskConfig, accessIPv4,
/// accessIPv6, description, hostname); every other key is Nova's. Nova
/// reports the first error in its schema's order, and in these schemas the
/// guarded fields sit among many others, so a guarded field's error is
/// answered only when every property before it in that order is certainly
/// valid; anything else is [`Verdict::Defer`]red to Nova. A body that is not
/// one of these requests at all (not JSON, no entity object, another action)
/// is deferred too.
///
/// The access-IP policy is judged whenever the address passes Nova's format
/// check, whatever else the body holds. `accessIPv6` is rewritten only when
/// the whole body is certainly valid under Nova's schema: a body Nova
/// refuses may quote the address back in its message.
fn check_entity(
    p: Profile,
    op: Operation,
    mode: Mode,
    version: Microversion,
    body: &[u8],
    policy: &AccessIpPolicy,
) -> Verdict {
    let Ok(Value::Object(top)) = json::parse(body) else {
        return Verdict::Defer;
    };
    let (key, (props, required)) = match op {
        Operation::Create => ("server", schema::create_props(mode, version)),
        // Nova picks the action by the body's one key.
        Operation::Rebuild if top.sorted_keys().len() == 1 => {
            ("rebuild", schema::rebuild_props(mode, version))
        }
        Operation::Rebuild | Operation::Update => return Verdict::Defer,
    };
    let Some(Value::Object(entity)) = top.get(key) else {
        return Verdict::Defer;
    };

    let mut certain = true;
    let mut access_ipv6 = None;
    for &(name, prop) in &props {
        let Some(value) = entity.get(name) else {
            continue;
        };
        match prop {
            Prop::Guarded(field) => match field_verdict(p, name, field, value) {
                Ok(None) => {}
                Ok(Some(addr)) => access_ipv6 = Some((addr, value)),
                Err(verdict) => return verdict,
            },
            Prop::Other(other) => {
                if !other.certainly_valid(value, p) {
                    // Nova may well fail here first: leave the rest to it.
                    certain = false;
                    break;
                }
            }
        }
    }
    if let Some(refused) = policy_verdict(entity, policy, p.unicode()) {
        return refused;
    }

    let legacy = mode == Mode::LegacyV2;
    let known = |k: &json::PyStr<'_>| props.iter().any(|(p, _)| k.as_bytes() == p.as_bytes());
    let certainly_valid = certain
        && required.iter().all(|r| entity.get(r).is_some())
        // Legacy v2 drops unknown keys instead of refusing them.
        && (legacy || entity.members.iter().all(|(k, _)| known(k)))
        // Scheduler hints (create) are not judged here.
        && top.members.iter().all(|(k, _)| {
            k.as_bytes() == key.as_bytes() || (legacy && !k.as_bytes().ends_with(b"scheduler_hints"))
        });
    if !certainly_valid {
        return Verdict::Defer;
    }
    Verdict::Accept {
        rewrite: access_ipv6.and_then(|(addr, value)| ipv6_rewrite(addr, value)),
    }
}

/// `json.dumps` of the 400 Nova sends for a body `json.loads` refuses.
const MALFORMED_JSON: &str = "\"Malformed request body\"";
/// `json.dumps` of the 422 message (webob's `HTTPUnprocessableEntity`).
const NO_SERVER_JSON: &str = "\"Unable to process the contained instructions\"";

fn reject_no_server(field: Option<&'static str>) -> Verdict {
    Verdict::Reject(Rejection {
        kind: RejectKind::NoServerEntity,
        message_json: NO_SERVER_JSON.to_owned(),
        field,
        rule: Rule::ServerEntity,
    })
}

fn reject(message_json: String, field: Option<&'static str>, rule: Rule) -> Verdict {
    Verdict::Reject(Rejection {
        kind: RejectKind::Invalid,
        message_json,
        field,
        rule,
    })
}

/// `Invalid input for field/attribute {path}. Value: {str(value)}. {message}`
/// as a JSON string token.
fn field_message(path: &str, value: impl FnOnce(&mut Vec<u8>), message: &[u8]) -> String {
    // The value's text is usually shorter than the message, which repeats
    // its repr: room for both without growing.
    let mut text = Vec::with_capacity(48 + path.len() + 2 * message.len());
    text.extend_from_slice(b"Invalid input for field/attribute ");
    text.extend_from_slice(path.as_bytes());
    text.extend_from_slice(b". Value: ");
    value(&mut text);
    text.extend_from_slice(b". ");
    text.extend_from_slice(message);
    json_string_wtf8(&text)
}

/// `Additional properties are not allowed ('a', 'b' were unexpected)`, the
/// keys already sorted by code point (jsonschema sorts them by `str`).
fn additional_properties(keys: &[&json::PyStr<'_>], u: Unicode) -> Vec<u8> {
    let mut m = b"Additional properties are not allowed (".to_vec();
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            m.extend_from_slice(b", ");
        }
        repr_str(k.as_bytes(), u, &mut m);
    }
    m.extend_from_slice(if keys.len() == 1 {
        b" was unexpected)"
    } else {
        b" were unexpected)"
    });
    m
}

/// The canonical rewrite of a valid `server.accessIPv6` (the occurrence
/// Python keeps: the last), when its text is not already canonical.
fn ipv6_rewrite(addr: std::net::Ipv6Addr, value: &Value<'_>) -> Option<Rewrite> {
    let Value::Str(token) = value else {
        return None;
    };
    let mut replacement = String::with_capacity(41);
    replacement.push('"');
    ipv6::push_canonical(&mut replacement, addr);
    if token.text.as_bytes() == replacement.as_bytes().get(1..)? {
        return None;
    }
    // Hex digits, ':' and '.': nothing to escape in the JSON string.
    replacement.push('"');
    Some(Rewrite {
        span: token.span.clone(),
        replacement,
    })
}

#[cfg(test)]
mod tests;
