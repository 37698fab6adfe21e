//! Which header lines of a request reach Nova, read as Nova's WSGI server
//! will read them.
//!
//! A guard that decides on one reading of a request while Nova acts on
//! another can be walked around. WSGI servers (uWSGI, cheroot, wsgiref) turn
//! a header name into a CGI variable by upper-casing it and mapping `-` to
//! `_`, so `X_Auth_Token` reaches Nova as `HTTP_X_AUTH_TOKEN`; they disagree
//! on repeated lines (cheroot keeps the last, wsgiref joins them). So,
//! before anything is decided:
//!
//! - every name containing `_` is dropped (nginx's default);
//! - repeated lines of the headers nova-guard decides on are made one:
//!   microversion headers are joined with `, ` (RFC 9110 §5.3) and forwarded
//!   as that one line, `Content-Type` lines must agree, `Host` must be one;
//! - from a peer that is not a trusted proxy, every header oslo.middleware's
//!   `HTTPProxyToWSGI` reads (`Forwarded`, `X-Forwarded-*`) is removed or
//!   replaced by nova-guard's own;
//! - a request without `Host` gets the address the client connected to,
//!   never Nova's own (Nova builds its links from it);
//! - hop-by-hop headers and the request's own framing are dropped: the
//!   transport frames what it sends.
//!
//! The decisions (token present, microversion, Content-Type) are then made on
//! exactly the lines that are forwarded. Pure: the HTTP/1 codec and the
//! HTTP/2 path both feed it the lines they parsed.

use std::borrow::Cow;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::exchange::{client_address, trace_id, Admission, RequestId};
use crate::nova::urlmap::{self, Apis};
use crate::swar;
use crate::wire::framing::{eq_lower, list_items, trim};

/// A header line as forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub name: &'a [u8],
    pub value: Cow<'a, [u8]>,
}

/// What the request's connection says about it.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The peer's address (IPv4-mapped already made IPv4).
    pub peer: IpAddr,
    /// `NOVA_GUARD_TRUSTED_PROXIES`.
    pub trusted_proxies: &'a [IpNetwork],
    /// Whether the client connected over TLS.
    pub tls: bool,
    /// The Host to forward when the request names none: the request's own
    /// authority (absolute-form target, HTTP/2 `:authority`) or else the
    /// listener's address the client connected to.
    pub default_host: &'a [u8],
    /// `peer` as `text::push_ip` writes it: all of the `X-Forwarded-For`
    /// sent when no trusted proxy sent one, written once per connection.
    pub peer_text: &'a [u8],
    /// Sent to Nova as `X-OpenStack-Request-ID` when the client sent none,
    /// so that Nova's logs carry the id nova-guard logs.
    pub request_id: &'a RequestId,
}

/// A request nova-guard refuses before deciding anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Content-Type` lines with different values.
    ConflictingContentType,
    /// More than one `Host` line.
    DuplicateHost,
}

/// The header lines to forward, and what was read from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted<'a> {
    /// In the order received; lines nova-guard adds at the end.
    pub lines: Vec<Line<'a>>,
    /// Lines dropped because their name contains `_`.
    pub underscored: u32,
    /// A non-empty `X-Auth-Token` or `X-Storage-Token` (keystonemiddleware
    /// reads the second when the first is missing) is forwarded.
    pub token: bool,
    /// `OpenStack-API-Version` as forwarded (lines joined).
    pub api_version: Option<Cow<'a, [u8]>>,
    /// `X-OpenStack-Nova-API-Version` as forwarded (lines joined).
    pub nova_api_version: Option<Cow<'a, [u8]>>,
    /// `Content-Type` as forwarded.
    pub content_type: Option<&'a [u8]>,
    /// The APIs a `version` parameter of `Accept` may send the request to.
    pub accept_apis: Apis,
    /// The client as logged: the peer, or behind trusted proxies the address
    /// their `X-Forwarded-For` names.
    pub client: IpAddr,
    pub user_agent: Option<&'a [u8]>,
    /// The client's own `X-OpenStack-Request-ID` (oslo's global request id).
    pub global_request_id: Option<&'a [u8]>,
    /// The W3C `traceparent`, as received.
    pub traceparent: Option<&'a [u8]>,
}

impl Admitted<'_> {
    /// An owned copy of what was decided on and what is logged.
    pub fn to_admission(&self) -> Admission {
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        Admission {
            token: self.token,
            api_version: self.api_version.as_deref().map(<[u8]>::to_vec),
            nova_api_version: self.nova_api_version.as_deref().map(<[u8]>::to_vec),
            content_type: self.content_type.map(<[u8]>::to_vec),
            accept_apis: self.accept_apis,
            client: Some(self.client),
            user_agent: self.user_agent.map(text),
            global_request_id: self.global_request_id.map(text),
            trace_id: self.traceparent.and_then(trace_id).map(str::to_owned),
            dropped_headers: self.underscored,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Keep,
    /// Hop-by-hop, framing, or handled by nova-guard: never forwarded.
    Drop,
    Host,
    ContentType,
    ApiVersion,
    NovaApiVersion,
    ForwardedFor,
    ForwardedProto,
    ForwardedHost,
    /// `Forwarded`, `X-Forwarded-Port`, `X-Forwarded-Prefix`: a trusted
    /// proxy's are kept, anyone else's removed.
    ForwardedOther,
    Te,
    Token,
    Accept,
    RequestId,
    UserAgent,
    Traceparent,
}

const KINDS: &[(&str, Kind)] = &[
    ("connection", Kind::Drop),
    ("keep-alive", Kind::Drop),
    ("proxy-connection", Kind::Drop),
    ("te", Kind::Te),
    ("trailer", Kind::Drop),
    ("transfer-encoding", Kind::Drop),
    ("upgrade", Kind::Drop),
    // Answered by nova-guard itself (100 Continue) before it reads the body.
    ("expect", Kind::Drop),
    ("content-length", Kind::Drop),
    ("host", Kind::Host),
    ("content-type", Kind::ContentType),
    ("openstack-api-version", Kind::ApiVersion),
    ("x-openstack-nova-api-version", Kind::NovaApiVersion),
    ("forwarded", Kind::ForwardedOther),
    ("x-forwarded-for", Kind::ForwardedFor),
    ("x-forwarded-proto", Kind::ForwardedProto),
    ("x-forwarded-host", Kind::ForwardedHost),
    ("x-forwarded-port", Kind::ForwardedOther),
    ("x-forwarded-prefix", Kind::ForwardedOther),
    ("x-auth-token", Kind::Token),
    ("x-storage-token", Kind::Token),
    ("accept", Kind::Accept),
    ("x-openstack-request-id", Kind::RequestId),
    ("user-agent", Kind::UserAgent),
    ("traceparent", Kind::Traceparent),
];

/// For each name length, the entries of `KINDS` with a name that long (bit
/// `i` for `KINDS[i]`): a name is compared with one or two known names, not
/// all of them.
const KINDS_BY_LEN: [u32; 32] = {
    assert!(KINDS.len() <= 32);
    let mut by_len = [0u32; 32];
    let mut i = 0;
    while i < KINDS.len() {
        let len = KINDS[i].0.len();
        assert!(len < 32);
        by_len[len] |= 1 << i;
        i += 1;
    }
    by_len
};

fn kind_of(name: &[u8]) -> Kind {
    let mut candidates = KINDS_BY_LEN.get(name.len()).copied().unwrap_or(0);
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        if let Some((known, kind)) = KINDS.get(i) {
            if eq_lower(name, known.as_bytes()) {
                return *kind;
            }
        }
        candidates &= candidates - 1;
    }
    Kind::Keep
}

/// The tokens of every `Connection` line: more hop-by-hop headers.
fn named_by_connection<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<&'a [u8]> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| list_items(v))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The values of a header's lines, in order. The first is kept without an
/// allocation: nearly every request has one line of each.
#[derive(Default)]
struct Values<'a> {
    first: Option<&'a [u8]>,
    more: Vec<&'a [u8]>,
}

impl<'a> Values<'a> {
    fn push(&mut self, value: &'a [u8]) {
        if self.first.is_none() {
            self.first = Some(value);
        } else {
            self.more.push(value);
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// The lines joined as RFC 9110 §5.3 combines field lines.
    fn joined(&self) -> Cow<'a, [u8]> {
        match self.first {
            Some(one) if self.more.is_empty() => Cow::Borrowed(one),
            first => {
                let all: Vec<&[u8]> = first.into_iter().chain(self.more.iter().copied()).collect();
                Cow::Owned(all.join(&b", "[..]))
            }
        }
    }
}

/// Decide which of `headers` (name, value, as received, in order) reach Nova.
/// An iterator, so that a parsed head's lines are read where they are,
/// without a list of them made first.
pub fn admit<'a, H>(headers: H, ctx: &Context<'a>) -> Result<Admitted<'a>, Refusal>
where
    H: ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
{
    let is_trusted = |ip: IpAddr| ctx.trusted_proxies.iter().any(|n| n.contains(ip));
    let trusted = is_trusted(ctx.peer);
    let connection_named = named_by_connection(headers.clone());
    let mut lines: Vec<Line<'a>> = Vec::with_capacity(headers.len() + 5);
    let mut out = Admitted {
        lines: Vec::new(),
        underscored: 0,
        token: false,
        api_version: None,
        nova_api_version: None,
        content_type: None,
        accept_apis: Apis::default(),
        client: ctx.peer,
        user_agent: None,
        global_request_id: None,
        traceparent: None,
    };
    let mut host: Option<usize> = None;
    let mut api_versions = Values::default();
    let mut nova_api_versions = Values::default();
    let mut api_at = None;
    let mut nova_api_at = None;
    let mut forwarded_for: Vec<&'a [u8]> = Vec::new();
    let mut proto_kept = false;
    let mut forwarded_host_kept = false;
    let mut te_trailers = false;
    let mut request_id_sent = false;

    for (name, value) in headers {
        if swar::contains(name, b'_') {
            out.underscored += 1;
            continue;
        }
        if connection_named
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
        {
            continue;
        }
        let keep = Line {
            name,
            value: Cow::Borrowed(value),
        };
        match kind_of(name) {
            Kind::Keep => lines.push(keep),
            Kind::Drop => {}
            Kind::Te => {
                te_trailers |= list_items(value).any(|t| t.eq_ignore_ascii_case(b"trailers"));
            }
            Kind::Host => {
                if host.is_some() {
                    return Err(Refusal::DuplicateHost);
                }
                host = Some(lines.len());
                lines.push(keep);
            }
            Kind::ContentType => match out.content_type {
                None => {
                    out.content_type = Some(value);
                    lines.push(keep);
                }
                Some(first) if first == value => {}
                Some(_) => return Err(Refusal::ConflictingContentType),
            },
            Kind::ApiVersion => {
                api_at.get_or_insert(lines.len());
                if api_versions.is_empty() {
                    lines.push(keep);
                }
                api_versions.push(value);
            }
            Kind::NovaApiVersion => {
                nova_api_at.get_or_insert(lines.len());
                if nova_api_versions.is_empty() {
                    lines.push(keep);
                }
                nova_api_versions.push(value);
            }
            Kind::ForwardedFor => {
                if trusted {
                    forwarded_for.push(value);
                }
            }
            Kind::ForwardedProto => {
                if trusted {
                    proto_kept = true;
                    lines.push(keep);
                }
            }
            Kind::ForwardedHost => {
                if trusted {
                    forwarded_host_kept = true;
                    lines.push(keep);
                }
            }
            Kind::ForwardedOther => {
                if trusted {
                    lines.push(keep);
                }
            }
            Kind::Token => {
                out.token |= !trim(value).is_empty();
                lines.push(keep);
            }
            Kind::Accept => {
                urlmap::accept_apis(value, &mut out.accept_apis);
                lines.push(keep);
            }
            Kind::RequestId => {
                request_id_sent = true;
                if out.global_request_id.is_none() {
                    out.global_request_id = Some(value);
                }
                lines.push(keep);
            }
            Kind::UserAgent => {
                out.user_agent.get_or_insert(value);
                lines.push(keep);
            }
            Kind::Traceparent => {
                out.traceparent.get_or_insert(value);
                lines.push(keep);
            }
        }
    }

    if let Some(at) = api_at {
        let value = api_versions.joined();
        lines[at].value = value.clone();
        out.api_version = Some(value);
    }
    if let Some(at) = nova_api_at {
        let value = nova_api_versions.joined();
        lines[at].value = value.clone();
        out.nova_api_version = Some(value);
    }
    let host_value = match host {
        Some(at) => lines[at].value.clone(),
        None => {
            let value = Cow::Borrowed(ctx.default_host);
            lines.push(Line {
                name: b"Host",
                value: value.clone(),
            });
            value
        }
    };
    if te_trailers {
        lines.push(Line {
            name: b"TE",
            value: Cow::Borrowed(b"trailers"),
        });
    }

    out.client = client_address(ctx.peer, forwarded_for.iter().copied(), is_trusted);
    // The addresses trusted proxies gave, then the peer's.
    let xff = if forwarded_for.is_empty() {
        Cow::Borrowed(ctx.peer_text)
    } else {
        let len = forwarded_for.iter().map(|v| v.len() + 2).sum::<usize>();
        let mut xff = Vec::with_capacity(len + ctx.peer_text.len());
        for v in &forwarded_for {
            xff.extend_from_slice(v);
            xff.extend_from_slice(b", ");
        }
        xff.extend_from_slice(ctx.peer_text);
        Cow::Owned(xff)
    };
    lines.push(Line {
        name: b"X-Forwarded-For",
        value: xff,
    });
    if !proto_kept {
        lines.push(Line {
            name: b"X-Forwarded-Proto",
            value: Cow::Borrowed(if ctx.tls { b"https" } else { b"http" }),
        });
    }
    if !forwarded_host_kept {
        lines.push(Line {
            name: b"X-Forwarded-Host",
            value: host_value,
        });
    }
    if !request_id_sent {
        lines.push(Line {
            name: b"X-OpenStack-Request-ID",
            value: Cow::Borrowed(ctx.request_id.as_bytes()),
        });
    }
    out.lines = lines;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_of_any_case_and_near_misses() {
        let reference = |name: &[u8]| {
            KINDS
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
                .map_or(Kind::Keep, |(_, k)| *k)
        };
        let mut names: Vec<Vec<u8>> = Vec::new();
        for (n, _) in KINDS {
            names.push(n.as_bytes().to_vec());
            names.push(n.to_ascii_uppercase().into_bytes());
            // Same length, one letter off.
            let mut off = n.as_bytes().to_vec();
            off[0] = b'z';
            names.push(off);
        }
        names.extend([b"".to_vec(), b"x".to_vec(), b"Content-Type2".to_vec()]);
        for name in &names {
            assert!(
                kind_of(name) == reference(name),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
        for (n, k) in KINDS {
            assert!(kind_of(n.as_bytes()) == *k, "{n}");
        }
    }

    fn ctx<'a>(trusted: bool, id: &'a RequestId) -> Context<'a> {
        static TRUSTED: std::sync::LazyLock<Vec<IpNetwork>> =
            std::sync::LazyLock::new(|| vec!["192.0.2.0/24".parse().unwrap()]);
        Context {
            peer: "192.0.2.1".parse().unwrap(),
            trusted_proxies: if trusted { &TRUSTED } else { &[] },
            tls: false,
            default_host: b"198.51.100.5:8775",
            peer_text: b"192.0.2.1",
            request_id: id,
        }
    }

    fn run(
        pairs: &[(&'static str, &'static str)],
        trusted: bool,
    ) -> Result<Vec<(String, String)>, Refusal> {
        let id = RequestId::new();
        let headers: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let a = admit(headers.iter().copied(), &ctx(trusted, &id))?;
        Ok(a.lines
            .iter()
            .filter(|l| !l.name.eq_ignore_ascii_case(b"x-openstack-request-id"))
            .map(|l| {
                (
                    String::from_utf8_lossy(l.name).to_ascii_lowercase(),
                    String::from_utf8_lossy(&l.value).into_owned(),
                )
            })
            .collect())
    }

    fn get<'a>(lines: &'a [(String, String)], name: &str) -> Vec<&'a str> {
        lines
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[test]
    fn underscored_names_never_reach_nova_and_decide_nothing() {
        let id = RequestId::new();
        let h: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"api"),
            (b"X_Auth_Token", b"secret"),
            (b"OpenStack_API_Version", b"compute 2.90"),
            (b"Content_Type", b"text/xml"),
            (b"x-auth_token", b"x"),
        ];
        let a = admit(h.iter().copied(), &ctx(false, &id)).unwrap();
        assert_eq!(a.underscored, 4);
        assert!(!a.token);
        assert_eq!(a.api_version, None);
        assert_eq!(a.content_type, None);
        assert!(a.lines.iter().all(|l| !l.name.contains(&b'_')));
    }

    #[test]
    fn repeated_lines_that_are_decided_on_are_made_one() {
        let id = RequestId::new();
        let h: Vec<(&[u8], &[u8])> = vec![
            (b"OpenStack-API-Version", b"compute 2.1"),
            (b"Host", b"api"),
            (b"openstack-api-version", b"compute 2.90"),
            (b"X-OpenStack-Nova-API-Version", b"2.3"),
            (b"X-OpenStack-Nova-API-Version", b"2.4"),
            (b"Content-Type", b"application/json"),
            (b"content-type", b"application/json"),
        ];
        let a = admit(h.iter().copied(), &ctx(false, &id)).unwrap();
        assert_eq!(
            a.api_version.as_deref(),
            Some(&b"compute 2.1, compute 2.90"[..])
        );
        assert_eq!(a.nova_api_version.as_deref(), Some(&b"2.3, 2.4"[..]));
        assert_eq!(a.content_type, Some(&b"application/json"[..]));
        let versions: Vec<_> = a
            .lines
            .iter()
            .filter(|l| l.name.eq_ignore_ascii_case(b"openstack-api-version"))
            .collect();
        assert_eq!(versions.len(), 1);
        assert_eq!(&*versions[0].value, b"compute 2.1, compute 2.90");
        assert_eq!(
            a.lines
                .iter()
                .filter(|l| l.name.eq_ignore_ascii_case(b"content-type"))
                .count(),
            1
        );
    }

    #[test]
    fn conflicting_lines_are_refused() {
        assert_eq!(
            run(
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Type", "text/plain")
                ],
                false
            ),
            Err(Refusal::ConflictingContentType)
        );
        assert_eq!(
            run(&[("Host", "a"), ("Host", "a")], false),
            Err(Refusal::DuplicateHost)
        );
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_replaced() {
        let lines = run(
            &[
                ("Host", "api.example:8775"),
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil"),
                ("X-Forwarded-Port", "444"),
                ("X-Forwarded-Prefix", "/evil"),
                ("Forwarded", "for=1.2.3.4;host=evil;proto=https"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(get(&lines, "x-forwarded-for"), ["192.0.2.1"]);
        assert_eq!(get(&lines, "x-forwarded-proto"), ["http"]);
        assert_eq!(get(&lines, "x-forwarded-host"), ["api.example:8775"]);
        assert!(get(&lines, "x-forwarded-port").is_empty());
        assert!(get(&lines, "x-forwarded-prefix").is_empty());
        assert!(get(&lines, "forwarded").is_empty());
    }

    #[test]
    fn forwarding_headers_from_a_trusted_peer_are_kept_and_appended_to() {
        let lines = run(
            &[
                ("Host", "api.example"),
                ("X-Forwarded-For", "198.51.100.7"),
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Prefix", "/compute"),
                ("Forwarded", "for=198.51.100.7;proto=https"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            get(&lines, "x-forwarded-for"),
            ["198.51.100.7, 203.0.113.9, 192.0.2.1"]
        );
        assert_eq!(get(&lines, "x-forwarded-proto"), ["https"]);
        assert_eq!(get(&lines, "x-forwarded-host"), ["api.example"]);
        assert_eq!(get(&lines, "x-forwarded-prefix"), ["/compute"]);
        assert_eq!(get(&lines, "forwarded"), ["for=198.51.100.7;proto=https"]);
    }

    #[test]
    fn a_request_without_host_gets_the_listener_s_address() {
        let lines = run(&[("Accept", "*/*")], false).unwrap();
        assert_eq!(get(&lines, "host"), ["198.51.100.5:8775"]);
        assert_eq!(get(&lines, "x-forwarded-host"), ["198.51.100.5:8775"]);
    }

    #[test]
    fn hop_by_hop_and_framing_headers_are_dropped() {
        let lines = run(
            &[
                ("Host", "h"),
                ("Connection", "keep-alive, x-secret"),
                ("x-secret", "1"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Connection", "keep-alive"),
                ("TE", "gzip"),
                ("Trailer", "x"),
                ("Upgrade", "h2c"),
                ("Expect", "100-continue"),
                ("Content-Length", "5"),
                ("Transfer-Encoding", "chunked"),
                ("X-Auth-Token", "t"),
            ],
            false,
        )
        .unwrap();
        let names: Vec<&str> = lines.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "host",
                "x-auth-token",
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-host"
            ]
        );
        let te = run(&[("Host", "h"), ("TE", "trailers")], false).unwrap();
        assert_eq!(get(&te, "te"), ["trailers"]);
    }

    #[test]
    fn the_token_request_id_and_log_fields_are_read_from_what_is_forwarded() {
        let id = RequestId::new();
        let h: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"h"),
            (b"X-Auth-Token", b""),
            (b"User-Agent", b"python-novaclient"),
            (
                b"traceparent",
                b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ];
        let a = admit(h.iter().copied(), &ctx(false, &id)).unwrap();
        assert!(!a.token);
        assert_eq!(a.user_agent, Some(&b"python-novaclient"[..]));
        assert!(a.traceparent.is_some());
        let sent: Vec<_> = a
            .lines
            .iter()
            .filter(|l| l.name.eq_ignore_ascii_case(b"x-openstack-request-id"))
            .collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(&*sent[0].value, id.as_bytes());

        // keystonemiddleware's other spelling.
        let storage: Vec<(&[u8], &[u8])> = vec![(b"X-Storage-Token", b"tok")];
        assert!(
            admit(storage.iter().copied(), &ctx(false, &id))
                .unwrap()
                .token
        );
        // The APIs an `Accept` names, for a path that names none.
        let accept: Vec<(&[u8], &[u8])> = vec![
            (b"Accept", b"application/json"),
            (b"Accept", b"*/*;version=2/x"),
        ];
        let a = admit(accept.iter().copied(), &ctx(false, &id)).unwrap();
        assert_eq!(a.accept_apis.mode(), Some(crate::nova::Mode::LegacyV2));
        let accepts = a.lines.iter().filter(|l| l.name == b"Accept").count();
        assert_eq!(accepts, 2, "both Accept lines forwarded");
        // Without the text `version`: Python drops the backslash in quotes.
        let escaped: Vec<(&[u8], &[u8])> =
            vec![(b"Accept", b"application/json;\"ver\\sion\"=2.1/x")];
        let a = admit(escaped.iter().copied(), &ctx(false, &id)).unwrap();
        assert_eq!(a.accept_apis.mode(), Some(crate::nova::Mode::V21));

        let theirs: Vec<(&[u8], &[u8])> = vec![
            (b"X-Auth-Token", b"tok"),
            (b"X-OpenStack-Request-ID", b"req-abc"),
        ];
        let a = admit(theirs.iter().copied(), &ctx(false, &id)).unwrap();
        assert!(a.token);
        assert_eq!(a.global_request_id, Some(&b"req-abc"[..]));
        assert_eq!(
            a.lines
                .iter()
                .filter(|l| l.name.eq_ignore_ascii_case(b"x-openstack-request-id"))
                .count(),
            1
        );
    }
}
