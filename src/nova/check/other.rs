//! The properties of Nova's create and rebuild schemas that nova-guard does
//! not guard. They come before some guarded fields in the schemas' order, so
//! a guarded field's error is Nova's first error only when every earlier
//! property present is valid. These rules say "certainly valid" for a
//! conservative subset of each property's valid values, and nothing else:
//! whatever they do not recognise is left to Nova.

use super::field::Field;
use crate::nova::ipv6;
use crate::nova::json::{PyStr, Value};
use crate::nova::Profile;

/// A property's schema, reduced to "certainly valid or not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Other {
    /// A schema that one of the guarded [`Field`] rules implements exactly
    /// (`availability_zone`, `key_name`, `host`, …).
    Same(Field),
    /// `image_id`: type string, format uuid.
    ImageId,
    /// `image_id_or_empty_string`: oneOf [uuid string, string maxLength 0].
    ImageIdOrEmpty,
    /// `flavor_ref`: type [string, integer], minLength 1.
    FlavorRef,
    /// `admin_password`: type string.
    AnyString,
    /// `metadata`: object, patternProperties `^[a-zA-Z0-9-_:. ]{1,255}$` →
    /// string maxLength 255, additionalProperties false.
    Metadata,
    /// `networks`; `named`: 2.37+, where the strings `none`/`auto` are allowed.
    Networks { named: bool },
    /// `personality`, `block_device_mapping`:
    /// arrays of objects; only the empty array is recognised.
    EmptyArrayOnly,
    /// `block_device_mapping_v2`: array of objects; items whose keys are
    /// among source_type, destination_type, uuid, boot_index, volume_size,
    /// delete_on_termination (with plainly valid values) are recognised.
    BlockDeviceMappingV2,
    /// `boolean`: true/false or one of Nova's boolean strings.
    Boolean,
    /// `positive_integer`: type [integer, string], pattern, minimum 1.
    PositiveInteger,
    /// `security_groups`: array of {name: `name` format}.
    SecurityGroups { legacy: bool },
    /// `user_data`: type string (or null), format base64, maxLength 65535.
    UserData { nullable: bool },
    /// `tags` (2.52+): array of `tag`, maxItems 50.
    Tags,
    /// `trusted_certs`: type [array, null], 1–50 unique non-empty strings.
    TrustedCerts,
}

/// Nova's `parameter_types.boolean` enum.
const BOOLEAN_STRINGS: &[&str] = &[
    "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes", "False", "FALSE", "false",
    "0", "OFF", "Off", "off", "NO", "No", "no",
];

impl Other {
    /// Whether `v` is certainly valid under this property's schema in `p`'s
    /// Nova (the schemas differ between releases in key order only, which
    /// does not change what is valid; the printable class follows Python).
    pub(super) fn certainly_valid(self, v: &Value<'_>, p: Profile) -> bool {
        match self {
            Other::Same(field) => field.check(v, p).is_ok(),
            Other::ImageId => str_of(v).is_some_and(is_uuid),
            Other::ImageIdOrEmpty => str_of(v).is_some_and(|s| s.is_empty() || is_uuid(s)),
            Other::FlavorRef => match v {
                Value::Int(_) => true,
                Value::Str(s) => !s.text.is_empty(),
                _ => false,
            },
            Other::AnyString => str_of(v).is_some(),
            Other::Metadata => match v {
                Value::Object(o) => o
                    .members
                    .iter()
                    .all(|(k, v)| metadata_key(k) && str_of(v).is_some_and(|s| s.len() <= 255)),
                _ => false,
            },
            Other::Networks { named } => match v {
                Value::Str(s) => named && matches!(s.text.as_bytes(), b"none" | b"auto"),
                Value::Array(items) => items.iter().all(network),
                _ => false,
            },
            Other::EmptyArrayOnly => matches!(v, Value::Array(items) if items.is_empty()),
            Other::BlockDeviceMappingV2 => match v {
                Value::Array(items) => items.iter().all(block_device),
                _ => false,
            },
            Other::Boolean => boolean(v),
            Other::PositiveInteger => match v {
                Value::Int(lit) => !lit.starts_with('-') && lit.bytes().any(|d| d != b'0'),
                _ => false,
            },
            Other::SecurityGroups { legacy } => {
                let name = if legacy {
                    Field::NameLegacy
                } else {
                    Field::Name
                };
                match v {
                    Value::Array(items) => items.iter().all(|item| match item {
                        Value::Object(o) => o
                            .members
                            .iter()
                            .all(|(k, v)| k.as_bytes() == b"name" && name.check(v, p).is_ok()),
                        _ => false,
                    }),
                    _ => false,
                }
            }
            Other::UserData { nullable } => match v {
                Value::Null => nullable,
                Value::Str(s) => s.text.len() <= 65535 && plain_base64(s.text.as_bytes()),
                _ => false,
            },
            Other::Tags => match v {
                Value::Array(items) => items.len() <= 50 && items.iter().all(tag),
                _ => false,
            },
            Other::TrustedCerts => match v {
                Value::Null => true,
                Value::Array(items) => {
                    let strings: Option<Vec<&PyStr<'_>>> = items.iter().map(str_of).collect();
                    strings.is_some_and(|s| {
                        (1..=50).contains(&s.len())
                            && s.iter().all(|x| !x.is_empty())
                            && s.iter()
                                .enumerate()
                                .all(|(i, x)| s[..i].iter().all(|y| y != x))
                    })
                }
                _ => false,
            },
        }
    }
}

/// `parameter_types.boolean`: true/false or one of Nova's boolean strings.
fn boolean(v: &Value<'_>) -> bool {
    match v {
        Value::Bool(_) => true,
        Value::Str(s) => BOOLEAN_STRINGS
            .iter()
            .any(|b| s.text.as_bytes() == b.as_bytes()),
        _ => false,
    }
}

fn str_of<'v, 'a>(v: &'v Value<'a>) -> Option<&'v PyStr<'a>> {
    match v {
        Value::Str(s) => Some(&s.text),
        _ => None,
    }
}

/// `8-4-4-4-12` hex digits: certainly `uuidutils.is_uuid_like`.
fn is_uuid(s: &PyStr<'_>) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A metadata key the pattern `^[a-zA-Z0-9-_:. ]{1,255}$` matches (after
/// `0-9`, `-` is a literal).
fn metadata_key(k: &PyStr<'_>) -> bool {
    let b = k.as_bytes();
    (1..=255).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b':' | b'.' | b' '))
}

/// A `networks` item: keys among fixed_ip (an IPv4 or IPv6 address), port
/// (null or a uuid), uuid (a uuid).
fn network(item: &Value<'_>) -> bool {
    let Value::Object(o) = item else {
        return false;
    };
    o.members.iter().all(|(k, v)| match k.as_bytes() {
        b"fixed_ip" => str_of(v)
            .and_then(PyStr::as_str)
            .is_some_and(|s| ipv6::parse_ipv4(s).is_some() || ipv6::parse_ipv6(s).is_some()),
        b"port" => *v == Value::Null || str_of(v).is_some_and(is_uuid),
        b"uuid" => str_of(v).is_some_and(is_uuid),
        _ => false,
    })
}

/// A `block_device_mapping_v2` item of the commonest keys.
fn block_device(item: &Value<'_>) -> bool {
    let Value::Object(o) = item else {
        return false;
    };
    o.members.iter().all(|(k, v)| match k.as_bytes() {
        b"source_type" => str_of(v)
            .is_some_and(|s| matches!(s.as_bytes(), b"volume" | b"image" | b"snapshot" | b"blank")),
        b"destination_type" => {
            str_of(v).is_some_and(|s| matches!(s.as_bytes(), b"local" | b"volume"))
        }
        b"uuid" => str_of(v).is_some_and(is_uuid),
        // type [integer, string, null], pattern (for strings) `^-?[0-9]+$`.
        b"boot_index" => matches!(v, Value::Null | Value::Int(_)),
        // type [integer, string], minimum 1, maximum 0x7FFFFFFF.
        b"volume_size" => match v {
            Value::Int(lit) => lit
                .parse::<u32>()
                .is_ok_and(|n| (1..=0x7FFF_FFFF).contains(&n)),
            _ => false,
        },
        b"delete_on_termination" => boolean(v),
        _ => false,
    })
}

/// A `tag`: 1–60 characters, none of `,` `/`.
fn tag(v: &Value<'_>) -> bool {
    str_of(v).is_some_and(|s| {
        (1..=60).contains(&s.len()) && !s.as_bytes().iter().any(|c| matches!(c, b',' | b'/'))
    })
}

/// Standard base64 with its padding, nothing else: `base64.b64decode`
/// certainly accepts it.
fn plain_base64(b: &[u8]) -> bool {
    if b.len() % 4 != 0 {
        return false;
    }
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    body.iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nova::json;

    fn valid(rule: Other, value: &str) -> bool {
        let v = json::parse(value.as_bytes()).unwrap();
        rule.certainly_valid(&v, Profile::default())
    }

    #[test]
    fn recognised_subsets() {
        let uuid = "\"0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c\"";
        assert!(valid(Other::ImageId, uuid));
        assert!(valid(
            Other::ImageId,
            "\"0B1E7C2A-5D3F-4E6A-9B8C-1D2E3F4A5B6C\""
        ));
        assert!(!valid(Other::ImageId, "\"\""));
        assert!(!valid(
            Other::ImageId,
            "\"0b1e7c2a5d3f4e6a9b8c1d2e3f4a5b6c\""
        ));
        assert!(valid(Other::ImageIdOrEmpty, "\"\""));
        assert!(valid(Other::ImageIdOrEmpty, uuid));
        assert!(valid(Other::FlavorRef, "1"));
        assert!(valid(Other::FlavorRef, "\"x\""));
        assert!(!valid(Other::FlavorRef, "\"\""));
        assert!(!valid(Other::FlavorRef, "1.0"));
        assert!(valid(Other::Metadata, "{\"a-b_c:d. e\": \"x\"}"));
        assert!(!valid(Other::Metadata, "{\"a\": 1}"));
        assert!(!valid(Other::Metadata, "{\"a/b\": \"x\"}"));
        assert!(!valid(Other::Metadata, "{\"\": \"x\"}"));
        assert!(valid(
            Other::Networks { named: true },
            &format!("[{{\"uuid\": {uuid}, \"fixed_ip\": \"10.0.0.1\"}}, {{\"port\": null}}]")
        ));
        assert!(valid(Other::Networks { named: true }, "\"auto\""));
        assert!(!valid(Other::Networks { named: false }, "\"auto\""));
        assert!(!valid(
            Other::Networks { named: true },
            "[{\"tag\": \"x\"}]"
        ));
        assert!(!valid(
            Other::Networks { named: true },
            "[{\"fixed_ip\": \"1.2.3\"}]"
        ));
        let bdm = format!(
            "[{{\"source_type\": \"image\", \"uuid\": {uuid}, \"destination_type\": \"volume\", \"boot_index\": 0, \"volume_size\": 10, \"delete_on_termination\": true}}]"
        );
        assert!(valid(Other::BlockDeviceMappingV2, &bdm));
        assert!(valid(Other::BlockDeviceMappingV2, "[]"));
        assert!(valid(
            Other::BlockDeviceMappingV2,
            "[{\"boot_index\": null}]"
        ));
        assert!(!valid(
            Other::BlockDeviceMappingV2,
            "[{\"boot_index\": \"0\"}]"
        ));
        assert!(!valid(
            Other::BlockDeviceMappingV2,
            "[{\"volume_size\": 0}]"
        ));
        assert!(!valid(
            Other::BlockDeviceMappingV2,
            "[{\"volume_size\": 2147483648}]"
        ));
        assert!(!valid(
            Other::BlockDeviceMappingV2,
            "[{\"source_type\": \"Image\"}]"
        ));
        assert!(!valid(Other::BlockDeviceMappingV2, "[{\"tag\": \"t\"}]"));
        assert!(valid(Other::EmptyArrayOnly, "[]"));
        assert!(!valid(Other::EmptyArrayOnly, "[{}]"));
        assert!(valid(Other::Boolean, "true"));
        assert!(valid(Other::Boolean, "\"Yes\""));
        assert!(!valid(Other::Boolean, "1"));
        assert!(!valid(Other::Boolean, "\"y\""));
        assert!(valid(Other::PositiveInteger, "1"));
        assert!(!valid(Other::PositiveInteger, "0"));
        assert!(!valid(Other::PositiveInteger, "-1"));
        assert!(!valid(Other::PositiveInteger, "\"1\""));
        assert!(valid(
            Other::SecurityGroups { legacy: false },
            "[{\"name\": \"default\"}]"
        ));
        assert!(!valid(
            Other::SecurityGroups { legacy: false },
            "[{\"name\": \" x\"}]"
        ));
        assert!(valid(
            Other::SecurityGroups { legacy: true },
            "[{\"name\": \" x\"}]"
        ));
        assert!(valid(Other::UserData { nullable: false }, "\"aGVsbG8=\""));
        assert!(valid(Other::UserData { nullable: false }, "\"\""));
        assert!(!valid(Other::UserData { nullable: false }, "null"));
        assert!(valid(Other::UserData { nullable: true }, "null"));
        assert!(!valid(Other::UserData { nullable: false }, "\"aGVsbG8\""));
        assert!(!valid(Other::UserData { nullable: false }, "\"a=GV\""));
        assert!(valid(Other::Tags, "[\"a\", \"b c\"]"));
        assert!(!valid(Other::Tags, "[\"a,b\"]"));
        assert!(!valid(Other::Tags, "[\"\"]"));
        assert!(valid(Other::TrustedCerts, "null"));
        assert!(valid(Other::TrustedCerts, "[\"a\", \"b\"]"));
        assert!(!valid(Other::TrustedCerts, "[]"));
        assert!(!valid(Other::TrustedCerts, "[\"a\", \"a\"]"));
        assert!(valid(Other::Same(Field::NameOrNone), "null"));
        assert!(valid(Other::Same(Field::HostnameFqdn), "\"a.b\""));
    }
}
