//! What every part of the proxy shares about one exchange: the connection it
//! came on, its request id, the labels it is logged and counted under, and
//! what validation and Nova made of it.
//!
//! This module sits below the transports, the layers, the access log and the
//! metrics: it imports nothing of theirs, so that data flows one way.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::ErrorKind;
use crate::nova::{Microversion, Mode};

/// The wire protocol of a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http10,
    Http11,
    H2,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::H2 => "h2",
        }
    }
}

/// The client connection an exchange arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address, IPv4-mapped IPv6 turned into IPv4 (a listener
    /// on `[::]` sees IPv4 clients that way).
    pub remote: SocketAddr,
    /// The listener's address the client connected to.
    pub local: SocketAddr,
    /// Whether the client connected over TLS.
    pub tls: bool,
}

impl Peer {
    pub fn new(remote: SocketAddr, local: SocketAddr, tls: bool) -> Self {
        Peer {
            remote: canonical(remote),
            local: canonical(local),
            tls,
        }
    }

    /// For a request that came with no peer (none does, from the
    /// listeners): an unspecified address, which no trust list names.
    pub fn unknown() -> Self {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Peer::new(unspecified, unspecified, false)
    }
}

/// A peer's address as text, written once per connection rather than
/// once per exchange: the access line's `peer` (`addr`) and, when the
/// client is the peer, `client` (`ip`), and the `X-Forwarded-For` sent to
/// Nova (`ip`).
#[derive(Debug, PartialEq, Eq)]
pub struct PeerText {
    pub addr: Box<str>,
    pub ip: Box<str>,
}

impl PeerText {
    pub fn new(remote: SocketAddr) -> Self {
        let mut addr = String::new();
        crate::text::push_socket_addr(&mut addr, remote);
        let mut ip = String::new();
        crate::text::push_ip(&mut ip, remote.ip());
        PeerText {
            addr: addr.into(),
            ip: ip.into(),
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`: the same host, and how trust lists and
/// logs name it.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// `req-` followed by a lowercase uuid4, as `oslo_context.generate_request_id()`.
/// Kept as its 40 ASCII bytes: copied, never allocated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestId([u8; RequestId::LEN]);

impl RequestId {
    pub const LEN: usize = 40;

    pub fn new() -> Self {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(b"req-");
        uuid::Uuid::new_v4()
            .hyphenated()
            .encode_lower(&mut out[4..]);
        RequestId(out)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters, digits and dashes were written.
        std::str::from_utf8(&self.0).unwrap_or("req-")
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `value` is an id oslo.middleware takes as a global request id
    /// (`^req-` + a lowercase-hex uuid shape, no version check).
    pub fn is_global_id(value: &[u8]) -> bool {
        const DASHES: [usize; 4] = [12, 17, 22, 27];
        value.len() == Self::LEN
            && value.starts_with(b"req-")
            && value.iter().enumerate().skip(4).all(|(i, b)| {
                if DASHES.contains(&i) {
                    *b == b'-'
                } else {
                    b.is_ascii_digit() || (b'a'..=b'f').contains(b)
                }
            })
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Validated and sent to Nova.
    Forwarded,
    /// Answered by nova-guard; Nova never saw it.
    Rejected,
    /// Not validated (not an update, create or action request, or left to
    /// Nova's own earlier checks).
    Passthrough,
    /// A create or rebuild body nova-guard could not judge with certainty
    /// (or an action other than rebuild): sent to Nova unchanged.
    Deferred,
    /// Report-only mode: enforce mode would have answered it itself.
    Reported,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Forwarded,
        Verdict::Rejected,
        Verdict::Passthrough,
        Verdict::Deferred,
        Verdict::Reported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Forwarded => "forwarded",
            Verdict::Rejected => "rejected",
            Verdict::Passthrough => "passthrough",
            Verdict::Deferred => "deferred",
            Verdict::Reported => "reported",
        }
    }
}

/// Which Nova operation an exchange was, as far as nova-guard knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `PUT .../servers/{id}`.
    Update,
    /// `POST .../servers`.
    Create,
    /// `POST .../servers/{id}/action` with a `rebuild` body.
    Rebuild,
    /// `POST .../servers/{id}/action`, another action or a body not read.
    Action,
    /// Anything nova-guard does not guard.
    Other,
}

impl Operation {
    pub const ALL: [Operation; 5] = [
        Operation::Update,
        Operation::Create,
        Operation::Rebuild,
        Operation::Action,
        Operation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::Create => "create",
            Operation::Rebuild => "rebuild",
            Operation::Action => "action",
            Operation::Other => "other",
        }
    }
}

impl From<crate::nova::Operation> for Operation {
    fn from(op: crate::nova::Operation) -> Self {
        match op {
            crate::nova::Operation::Update => Operation::Update,
            crate::nova::Operation::Create => Operation::Create,
            crate::nova::Operation::Rebuild => Operation::Rebuild,
        }
    }
}

/// Why nova-guard answered (or, in report mode, would have answered) a
/// request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A rule of Nova's schemas or of the access-IP policy, as the validator
    /// names it.
    Check(crate::nova::Rule),
    /// The body is over `NOVA_GUARD_MAX_BODY_BYTES`.
    MaxBodyBytes,
    /// The body broke off or its framing failed.
    ClientBody,
    /// The body did not arrive in time.
    ClientBodyTimeout,
    /// The request target is over `NOVA_GUARD_MAX_URI_BYTES`.
    MaxUriBytes,
    /// Framing that could be read two ways (request smuggling).
    Framing(crate::wire::Ambiguity),
    /// Repeated lines of a header nova-guard decides on, with different values.
    ConflictingHeader,
    /// More than one `Host` line.
    DuplicateHost,
    /// A request head over the byte or line limit.
    HeadTooLarge,
    /// A request head that is not HTTP.
    MalformedHead,
}

impl Rule {
    /// The rules of nova-guard's own (those of Nova's schemas and of the
    /// access-IP policy are the validator's, [`Rule::Check`]).
    pub fn proxy_rules() -> impl Iterator<Item = Rule> {
        [
            Rule::MaxBodyBytes,
            Rule::ClientBody,
            Rule::ClientBodyTimeout,
            Rule::MaxUriBytes,
            Rule::ConflictingHeader,
            Rule::DuplicateHost,
            Rule::HeadTooLarge,
            Rule::MalformedHead,
        ]
        .into_iter()
        .chain(crate::wire::Ambiguity::ALL.into_iter().map(Rule::Framing))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Check(rule) => rule.as_str(),
            Rule::MaxBodyBytes => "maxBodyBytes",
            Rule::ClientBody => "clientBody",
            Rule::ClientBodyTimeout => "clientBodyTimeout",
            Rule::MaxUriBytes => "maxUriBytes",
            Rule::Framing(why) => why.as_str(),
            Rule::ConflictingHeader => "conflictingHeader",
            Rule::DuplicateHost => "duplicateHost",
            Rule::HeadTooLarge => "headTooLarge",
            Rule::MalformedHead => "malformedHead",
        }
    }
}

/// What the validation step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationInfo {
    pub verdict: Verdict,
    pub operation: Operation,
    /// `/v2` or `/v2.1`, for guarded requests.
    pub api: Option<Mode>,
    pub microversion: Option<Microversion>,
    pub field: Option<&'static str>,
    pub rule: Option<Rule>,
    pub ipv6_rewritten: bool,
    /// Report-only mode: the status enforce mode would have answered with.
    pub would_status: Option<u16>,
    /// Report-only mode: whether enforce mode would have rewritten `accessIPv6`.
    pub would_rewrite_ipv6: Option<bool>,
}

impl ValidationInfo {
    pub fn passthrough() -> Self {
        ValidationInfo {
            verdict: Verdict::Passthrough,
            operation: Operation::Other,
            api: None,
            microversion: None,
            field: None,
            rule: None,
            ipv6_rewritten: false,
            would_status: None,
            would_rewrite_ipv6: None,
        }
    }

    /// Answered by nova-guard for `rule`.
    pub fn rejected(rule: Rule) -> Self {
        ValidationInfo {
            verdict: Verdict::Rejected,
            rule: Some(rule),
            ..ValidationInfo::passthrough()
        }
    }
}

impl Default for ValidationInfo {
    fn default() -> Self {
        ValidationInfo::passthrough()
    }
}

/// What the exchange with Nova came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamInfo {
    pub status: Option<u16>,
    /// Nova's own `x-openstack-request-id`.
    pub request_id: Option<String>,
    pub error: Option<ErrorKind>,
    /// The error's cause chain, for operators.
    pub cause: Option<String>,
    /// Time from sending the request to Nova to its response head (or the error).
    pub duration: Option<Duration>,
}

/// Who ended an exchange before its answer was complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HungUp {
    /// The client went away (logged with status 499, as nginx does).
    Client,
    /// Nova's answer broke off.
    Upstream,
}

impl HungUp {
    pub fn as_str(self) -> &'static str {
        match self {
            HungUp::Client => "client",
            HungUp::Upstream => "upstream",
        }
    }
}

/// What a request's head said, as nova-guard admitted it (see
/// [`crate::admit`]): the facts decided on and the fields logged. An owned
/// copy, for transports that hand requests from layer to layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    pub token: bool,
    pub api_version: Option<Vec<u8>>,
    pub nova_api_version: Option<Vec<u8>>,
    pub content_type: Option<Vec<u8>>,
    pub accept_apis: crate::nova::urlmap::Apis,
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub global_request_id: Option<String>,
    pub trace_id: Option<String>,
    pub dropped_headers: u32,
}

impl Admission {
    /// Copy the log fields into `x`.
    pub fn fill(&self, x: &mut Exchange) {
        if let Some(client) = self.client {
            x.client = client;
        }
        x.user_agent.clone_from(&self.user_agent);
        x.global_request_id.clone_from(&self.global_request_id);
        x.trace_id.clone_from(&self.trace_id);
        x.dropped_headers = self.dropped_headers;
    }
}

/// A request refused on its head alone, before anything was decided on it;
/// put in its extensions for the rescue step to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub kind: ErrorKind,
    pub rule: Rule,
}

/// One exchange as logged and counted: everything the access log and the
/// metrics need, filled in by whichever transport carried it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub start: std::time::Instant,
    pub peer: Peer,
    /// `peer` as text, from a transport that keeps it per connection.
    pub peer_text: Option<std::sync::Arc<PeerText>>,
    pub protocol: Protocol,
    /// `None` for a head refused before it was read whole.
    pub request_id: Option<RequestId>,
    pub method: Option<http::Method>,
    /// The request path, without the query string (which may carry anything).
    pub path: Option<String>,
    pub client: IpAddr,
    pub user_agent: Option<String>,
    /// The client's own `X-OpenStack-Request-ID`.
    pub global_request_id: Option<String>,
    /// The trace id of a valid W3C `traceparent`.
    pub trace_id: Option<String>,
    /// Header lines dropped because their name has a `_`.
    pub dropped_headers: u32,
    pub validation: ValidationInfo,
    /// The status sent to the client (499 when the client went away first).
    pub status: u16,
    pub upstream: UpstreamInfo,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The answer was handed over whole.
    pub complete: bool,
    pub hung_up: Option<HungUp>,
}

impl Exchange {
    pub fn new(peer: Peer, protocol: Protocol) -> Self {
        Exchange {
            start: std::time::Instant::now(),
            peer,
            peer_text: None,
            protocol,
            request_id: None,
            method: None,
            path: None,
            client: peer.remote.ip(),
            user_agent: None,
            global_request_id: None,
            trace_id: None,
            dropped_headers: 0,
            validation: ValidationInfo::passthrough(),
            status: 0,
            upstream: UpstreamInfo::default(),
            bytes_in: 0,
            bytes_out: 0,
            complete: false,
            hung_up: None,
        }
    }
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// when it is well formed and not all zeros.
pub fn trace_id(traceparent: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(traceparent).ok()?.trim();
    let mut parts = text.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && (parts.next().is_none() || version != "00");
    ok.then_some(trace)
}

/// The client's address as logged: the peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` address that is not itself a
/// trusted proxy (what a trusted chain says it got the request from).
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    is_trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for line in forwarded_for.rev() {
        for hop in line.rsplit(|b| *b == b',') {
            let Some(ip) = std::str::from_utf8(hop)
                .ok()
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
            else {
                return client;
            };
            client = canonical_ip(ip);
            if !is_trusted(client) {
                return client;
            }
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_nova_s_shape() {
        let id = RequestId::new();
        let s = id.as_str();
        assert_eq!(s.len(), 40);
        assert!(s.starts_with("req-"));
        let u = uuid::Uuid::parse_str(&s[4..]).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(s, s.to_ascii_lowercase());
        assert_ne!(RequestId::new(), id);
        assert!(RequestId::is_global_id(id.as_bytes()));
    }

    #[test]
    fn global_request_ids_as_oslo_reads_them() {
        assert!(RequestId::is_global_id(
            b"req-0a1b2c3d-0000-1111-2222-333344445555"
        ));
        for bad in [
            &b"req-0A1B2C3D-0000-1111-2222-333344445555"[..],
            b"req-0a1b2c3d-0000-1111-2222-33334444555",
            b"req-0a1b2c3d_0000-1111-2222-333344445555",
            b"xyz-0a1b2c3d-0000-1111-2222-333344445555",
            b"",
        ] {
            assert!(!RequestId::is_global_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn trace_ids_of_w3c_traceparents() {
        let good = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(trace_id(good), Some("0af7651916cd43dd8448eb211c80319c"));
        for bad in [
            &b"00-00000000000000000000000000000000-b7ad6b7169203331-01"[..],
            b"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            b"garbage",
        ] {
            assert_eq!(trace_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let mapped: SocketAddr = "[::ffff:192.0.2.7]:1234".parse().unwrap();
        assert_eq!(canonical(mapped), "192.0.2.7:1234".parse().unwrap());
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn the_client_address_is_taken_from_a_trusted_chain_only() {
        let trusted: Vec<ipnetwork::IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let lines: [&[u8]; 2] = [b"6.6.6.6, 198.51.100.7", b"10.0.0.9"];
        assert_eq!(
            client_address(ip("10.1.1.1"), lines.iter().copied(), is_trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), lines.iter().copied(), is_trusted),
            ip("192.0.2.1")
        );
        let garbage: [&[u8]; 1] = [b"not-an-ip, 10.0.0.3"];
        assert_eq!(
            client_address(ip("10.1.1.1"), garbage.iter().copied(), is_trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_address(ip("10.1.1.1"), std::iter::empty(), is_trusted),
            ip("10.1.1.1")
        );
    }
}
