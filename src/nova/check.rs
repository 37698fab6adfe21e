//! The update-server body validator: (mode, microversion, bytes) → verdict.

use std::ops::Range;

use super::{Microversion, Mode};

/// What Nova would do with an update-server body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nova would accept the body. `rewrite` replaces the JSON string token of
    /// `server.accessIPv6` with its canonical text, when that text differs.
    Accept { rewrite: Option<Rewrite> },
    /// Nova would refuse the body; nova-guard answers itself.
    Reject(Rejection),
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
    /// The failing rule (`type`, `format`, `minLength`, `additionalProperties`,
    /// `json`, `serverEntity`, …). Safe to log.
    pub rule: &'static str,
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self.kind {
            RejectKind::NoServerEntity => 422,
            RejectKind::Malformed | RejectKind::Invalid => 400,
        }
    }
}

/// Validate an update-server body as Nova does for `mode` and `version`.
/// An empty `body` is what Nova sees when there is no Content-Length.
pub fn check(mode: Mode, version: Microversion, body: &[u8]) -> Verdict {
    let _ = (mode, version, body);
    unimplemented!("validator")
}
