//! The proxy's one error type. What a client is answered for it, and what
//! becomes of the connection, is decided in one place: [`crate::rescue`].

use std::fmt;

use http::StatusCode;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The status logged for an exchange the client gave up on, as nginx logs it.
pub const CLIENT_CLOSED: u16 = 499;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nova could not be connected to.
    UpstreamConnect,
    /// Nova's response head did not arrive within the upstream timeout, or
    /// Nova paused too long inside its answer.
    UpstreamTimeout,
    /// The exchange with Nova failed after connecting (reset, bad response).
    UpstreamProtocol,
    /// A validated request's body is over the configured limit.
    BodyTooLarge,
    /// Reading the client's body failed (it broke off, or its framing did).
    ClientBody,
    /// Request framing that could be read two ways.
    AmbiguousFraming,
    /// A validated request's body did not arrive within the body timeout.
    ClientBodyTimeout,
    /// The request target is longer than the configured limit.
    UriTooLong,
    /// A request head over the byte or line limit.
    HeadTooLarge,
    /// A request head that is not HTTP/1.
    MalformedHead,
    /// Repeated lines of a header nova-guard decides on, with different values.
    ConflictingHeader,
    /// More than one `Host` line.
    DuplicateHost,
    /// The connection limit is reached.
    Overloaded,
    /// The client went away before its answer was sent.
    ClientGone,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::UpstreamConnect,
        ErrorKind::UpstreamTimeout,
        ErrorKind::UpstreamProtocol,
        ErrorKind::BodyTooLarge,
        ErrorKind::ClientBody,
        ErrorKind::AmbiguousFraming,
        ErrorKind::ClientBodyTimeout,
        ErrorKind::UriTooLong,
        ErrorKind::HeadTooLarge,
        ErrorKind::MalformedHead,
        ErrorKind::ConflictingHeader,
        ErrorKind::DuplicateHost,
        ErrorKind::Overloaded,
        ErrorKind::ClientGone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UpstreamConnect => "upstream_connect",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamProtocol => "upstream_protocol",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::ClientBody => "client_body",
            ErrorKind::AmbiguousFraming => "ambiguous_framing",
            ErrorKind::ClientBodyTimeout => "client_body_timeout",
            ErrorKind::UriTooLong => "uri_too_long",
            ErrorKind::HeadTooLarge => "head_too_large",
            ErrorKind::MalformedHead => "malformed_head",
            ErrorKind::ConflictingHeader => "conflicting_header",
            ErrorKind::DuplicateHost => "duplicate_host",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ClientGone => "client_gone",
        }
    }

    /// Whether this is a failure of the exchange with Nova.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamTimeout | ErrorKind::UpstreamProtocol
        )
    }

    /// Whether the client caused it (its request or its connection).
    pub fn is_client(self) -> bool {
        matches!(
            self,
            ErrorKind::BodyTooLarge
                | ErrorKind::ClientBody
                | ErrorKind::AmbiguousFraming
                | ErrorKind::ClientBodyTimeout
                | ErrorKind::UriTooLong
                | ErrorKind::HeadTooLarge
                | ErrorKind::MalformedHead
                | ErrorKind::ConflictingHeader
                | ErrorKind::DuplicateHost
                | ErrorKind::ClientGone
        )
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::UpstreamConnect | ErrorKind::UpstreamProtocol => StatusCode::BAD_GATEWAY,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ClientBody
            | ErrorKind::AmbiguousFraming
            | ErrorKind::MalformedHead
            | ErrorKind::ConflictingHeader
            | ErrorKind::DuplicateHost => StatusCode::BAD_REQUEST,
            ErrorKind::HeadTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorKind::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            // Never answered: the client is gone. Logged as nginx does.
            ErrorKind::ClientGone => {
                StatusCode::from_u16(CLIENT_CLOSED).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    /// The message the client is answered with: fixed, never a cause.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::UpstreamConnect => "The compute API could not be reached.",
            ErrorKind::UpstreamTimeout => "The compute API did not answer in time.",
            ErrorKind::UpstreamProtocol => "The compute API connection failed.",
            ErrorKind::BodyTooLarge => "Request is too large.",
            ErrorKind::ClientBody => "Malformed request body",
            ErrorKind::AmbiguousFraming => "Malformed request framing",
            ErrorKind::ClientBodyTimeout => "Request body not received in time.",
            ErrorKind::UriTooLong => "Request URI too long.",
            ErrorKind::HeadTooLarge => "Request header fields too large.",
            ErrorKind::MalformedHead => "Malformed request",
            ErrorKind::ConflictingHeader => "Conflicting values in repeated header lines.",
            ErrorKind::DuplicateHost => "More than one Host header.",
            ErrorKind::Overloaded => "Too many connections; try again later.",
            ErrorKind::ClientGone => "Client closed the connection.",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the proxy: what kind, and what caused it (for the logs only;
/// the client sees the kind's fixed message).
#[derive(Debug)]
pub struct ProxyError {
    pub kind: ErrorKind,
    pub source: Option<BoxError>,
}

impl ProxyError {
    pub fn new(kind: ErrorKind) -> Self {
        ProxyError { kind, source: None }
    }

    pub fn with_source(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        ProxyError {
            kind,
            source: Some(source.into()),
        }
    }

    /// This error and its causes, `: `-separated, for the log's `cause`.
    pub fn chain(&self) -> String {
        chain(self)
    }

    /// The kind of the first [`ProxyError`] in `error`'s cause chain.
    pub fn kind_in(error: &(dyn std::error::Error + 'static)) -> Option<ErrorKind> {
        causes(error).find_map(|c| c.downcast_ref::<ProxyError>().map(|p| p.kind))
    }
}

/// Like hyper's errors, `Display` shows this level only; the causes are
/// reached through `source()` (see [`chain`]).
impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())
    }
}

impl std::error::Error for ProxyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ErrorKind> for ProxyError {
    fn from(kind: ErrorKind) -> Self {
        ProxyError::new(kind)
    }
}

/// `error` and every cause below it.
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// Every level's own text, joined by `: ` (levels that repeat the one above
/// them, as some wrappers do, are shown once).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for level in causes(error) {
        let text = level.to_string();
        if text.is_empty() || last.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_its_own_level_and_chain_shows_all() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let e = ProxyError::with_source(ErrorKind::UpstreamProtocol, io);
        assert_eq!(e.to_string(), "upstream_protocol");
        assert_eq!(e.chain(), "upstream_protocol: reset by peer");
        assert!(std::error::Error::source(&e).is_some());
        let boxed: BoxError = Box::new(e);
        assert_eq!(
            ProxyError::kind_in(boxed.as_ref()),
            Some(ErrorKind::UpstreamProtocol)
        );
    }
}
