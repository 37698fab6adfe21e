//! The names of the rules a body can break: the jsonschema keywords of
//! Nova's schemas, the validator's own checks around them, and the
//! access-IP policy's. Their text is in logs, metric labels and the
//! operator guide, so it never changes.

/// A rule a rejected body broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Not JSON as Python's `json.loads` reads it.
    Json,
    /// No server entity: not an object, no `server`, `server` not an object.
    ServerEntity,
    // jsonschema's keywords, by their own names.
    Type,
    AdditionalProperties,
    MinLength,
    MaxLength,
    Pattern,
    Format,
    Enum,
    OneOf,
    /// The address is in a denied network.
    AccessIpDenied,
    /// The address is in no allowed network.
    AccessIpNotAllowed,
}

impl Rule {
    pub const ALL: [Rule; 12] = [
        Rule::Json,
        Rule::ServerEntity,
        Rule::Type,
        Rule::AdditionalProperties,
        Rule::MinLength,
        Rule::MaxLength,
        Rule::Pattern,
        Rule::Format,
        Rule::Enum,
        Rule::OneOf,
        Rule::AccessIpDenied,
        Rule::AccessIpNotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Json => "json",
            Rule::ServerEntity => "serverEntity",
            Rule::Type => "type",
            Rule::AdditionalProperties => "additionalProperties",
            Rule::MinLength => "minLength",
            Rule::MaxLength => "maxLength",
            Rule::Pattern => "pattern",
            Rule::Format => "format",
            Rule::Enum => "enum",
            Rule::OneOf => "oneOf",
            Rule::AccessIpDenied => "accessIpDenied",
            Rule::AccessIpNotAllowed => "accessIpNotAllowed",
        }
    }
}
