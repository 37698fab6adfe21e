//! Sends requests to Nova over one pooled HTTP/1.1 client and streams the
//! answers back. Hop-by-hop headers are dropped both ways (RFC 9110 §7.6.1),
//! `X-Forwarded-*` are set, `Host` is kept so that the links in Nova's
//! answers point at the address the client used. A failure to reach Nova
//! becomes a Nova-shaped 502, a late answer a 504, in one place.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, Uri, Version};
use http_body::Body;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ipnetwork::IpNetwork;
use tower::Service;

use crate::config::Config;
use crate::error::{BoxError, ErrorKind, FaultContext, ProxyError};
use crate::layer::access_log::{Peer, UpstreamInfo};
use crate::layer::idle_body::IdleBody;
use crate::layer::request_id::RequestId;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers that are never forwarded (besides those `Connection` names).
/// `HeaderName` constants: removing by `&str` would parse and hash each name again.
const HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Put in a request's extensions when the client connected over TLS.
#[derive(Debug, Clone, Copy)]
pub struct ViaTls;

pub struct Forward<B> {
    client: Client<Connector, B>,
    settings: Arc<ForwardSettings>,
}

impl<B> Clone for Forward<B> {
    fn clone(&self) -> Self {
        Forward {
            client: self.client.clone(),
            settings: self.settings.clone(),
        }
    }
}

struct ForwardSettings {
    scheme: Scheme,
    authority: Authority,
    base_path: String,
    timeout: Duration,
    trusted_proxies: Vec<IpNetwork>,
}

impl<B> Forward<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    pub fn new(config: &Config) -> Result<Self, BoxError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.upstream_connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        connector.enforce_http(false);
        let https = config.upstream.uri.scheme_str() == Some("https");
        let tls_config = if https {
            crate::tls::client_config(&config.upstream_tls)?
        } else {
            // Never used: the upstream is plain HTTP.
            rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.upstream_idle_timeout)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            // hyper's read buffer otherwise grows to ~400 KiB per streaming
            // connection; 32 KiB keeps 256 streams under 32 MiB at about
            // nginx's CPU per MiB (BENCHMARKS.md).
            .http1_max_buf_size(32 * 1024)
            .build(connector);
        let uri = &config.upstream.uri;
        let settings = ForwardSettings {
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: uri.authority().cloned().ok_or("upstream URL has no host")?,
            base_path: config.upstream.base_path.clone(),
            timeout: config.upstream_timeout,
            trusted_proxies: config.trusted_proxies.clone(),
        };
        Ok(Forward {
            client,
            settings: Arc::new(settings),
        })
    }
}

impl<B> Service<Request<B>> for Forward<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Either<IdleBody<Incoming>, Full<Bytes>>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = self.client.clone();
        let settings = self.settings.clone();
        Box::pin(async move {
            let request_id = req
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_default();
            let sent = std::time::Instant::now();
            let result = match upstream_request(&settings, req) {
                Ok(req) => {
                    match tokio::time::timeout(settings.timeout, client.request(req)).await {
                        Ok(Ok(resp)) => Ok(resp),
                        Ok(Err(e)) => {
                            let kind = if e.is_connect() {
                                ErrorKind::UpstreamConnect
                            } else if client_body_timed_out(&e) {
                                ErrorKind::ClientBodyTimeout
                            } else if client_body_failed(&e) {
                                ErrorKind::ClientBody
                            } else {
                                ErrorKind::UpstreamProtocol
                            };
                            Err(ProxyError::with_source(kind, e))
                        }
                        Err(_) => Err(ProxyError::new(ErrorKind::UpstreamTimeout)),
                    }
                }
                Err(e) => Err(e),
            };
            let duration = Some(sent.elapsed());
            Ok(match result {
                Err(err)
                    if matches!(
                        err.kind,
                        ErrorKind::ClientBodyTimeout | ErrorKind::ClientBody
                    ) =>
                {
                    // The client stalled, or its body broke off, not Nova:
                    // tell it so, and close.
                    let mut resp = err.to_response(&FaultContext {
                        request_id: &request_id,
                        version: None,
                    });
                    resp.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                    resp.extensions_mut().insert(UpstreamInfo {
                        status: None,
                        request_id: None,
                        error: Some(err.kind),
                        cause: Some(err.to_string()),
                        duration,
                    });
                    resp.map(Either::Right)
                }
                Ok(mut resp) => {
                    remove_hop_by_hop(resp.headers_mut());
                    let info = UpstreamInfo {
                        status: Some(resp.status().as_u16()),
                        request_id: resp.headers().get("x-openstack-request-id").cloned(),
                        error: None,
                        cause: None,
                        duration,
                    };
                    resp.extensions_mut().insert(info);
                    // Nova may not pause in its answer longer than it may take to start it.
                    let limit = settings.timeout;
                    resp.map(|body| {
                        Either::Left(IdleBody::new(body, limit, ErrorKind::UpstreamTimeout))
                    })
                }
                Err(err) => {
                    let mut resp = err.to_response(&FaultContext {
                        request_id: &request_id,
                        version: None,
                    });
                    resp.extensions_mut().insert(UpstreamInfo {
                        status: None,
                        request_id: None,
                        error: Some(err.kind),
                        cause: Some(err.to_string()),
                        duration,
                    });
                    resp.map(Either::Right)
                }
            })
        })
    }
}

/// Whether sending failed because the client's body stalled.
fn client_body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<ProxyError>()
            .is_some_and(|p| p.kind == ErrorKind::ClientBodyTimeout)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Whether sending failed because the client's body broke off (it went
/// away, or its framing failed): hyper reports an error of the request body
/// it was given as a user error caused by that body's error.
fn client_body_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            return h.is_user() && std::error::Error::source(h).is_some();
        }
        cause = c.source();
    }
    false
}

/// The request as Nova gets it.
fn upstream_request<B>(
    settings: &ForwardSettings,
    req: Request<B>,
) -> Result<Request<B>, ProxyError> {
    let (mut parts, body) = req.into_parts();
    let peer = parts.extensions.get::<Peer>().map(|p| p.0.ip());
    let via_tls = parts.extensions.get::<ViaTls>().is_some();
    let path_and_query = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let path_and_query = if settings.base_path.is_empty() {
        PathAndQuery::try_from(path_and_query)
    } else {
        PathAndQuery::try_from(format!("{}{}", settings.base_path, path_and_query))
    }
    .map_err(|e| ProxyError::with_source(ErrorKind::UpstreamProtocol, e))?;

    // HTTP/2 clients send no Host: the authority stands in for it.
    if !parts.headers.contains_key(HOST) {
        if let Some(authority) = parts.uri.authority() {
            if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(HOST, v);
            }
        }
    }
    let keep_te_trailers = parts
        .headers
        .get_all(TE)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    remove_hop_by_hop(&mut parts.headers);
    if keep_te_trailers {
        parts
            .headers
            .insert(TE, HeaderValue::from_static("trailers"));
    }
    set_forwarded(settings, &mut parts.headers, peer, via_tls);

    parts.uri = Uri::builder()
        .scheme(settings.scheme.clone())
        .authority(settings.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| ProxyError::with_source(ErrorKind::UpstreamProtocol, e))?;
    parts.version = Version::HTTP_11;
    Ok(Request::from_parts(parts, body))
}

fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(CONNECTION) {
        remove_connection_named(headers);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The headers a `Connection` header names are hop-by-hop too.
fn remove_connection_named(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// The client's address as logged: the peer, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` address that is not itself a
/// trusted proxy (what a trusted chain says it got the request from).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `X-Forwarded-For` is appended to only when the peer is a trusted proxy;
/// from anyone else it is replaced, like `-Proto` and `-Host`.
fn set_forwarded(
    settings: &ForwardSettings,
    headers: &mut HeaderMap,
    peer: Option<IpAddr>,
    via_tls: bool,
) {
    let trusted = peer.is_some_and(|ip| settings.trusted_proxies.iter().any(|n| n.contains(ip)));
    let Some(peer) = peer else {
        return;
    };
    let inbound: Vec<&str> = if trusted {
        headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    } else {
        Vec::new()
    };
    let mut xff = inbound.join(", ");
    if !xff.is_empty() {
        xff.push_str(", ");
    }
    xff.push_str(&peer.to_string());
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !(trusted && headers.contains_key(X_FORWARDED_PROTO)) {
        let proto = if via_tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
    if !(trusted && headers.contains_key(X_FORWARDED_HOST)) {
        match headers.get(HOST).cloned() {
            Some(host) => {
                headers.insert(X_FORWARDED_HOST, host);
            }
            None => {
                headers.remove(X_FORWARDED_HOST);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: &[&str]) -> ForwardSettings {
        ForwardSettings {
            scheme: Scheme::HTTP,
            authority: Authority::from_static("127.0.0.1:8774"),
            base_path: String::new(),
            timeout: Duration::from_secs(1),
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x"),
            ("upgrade", "h2c"),
            ("x-auth-token", "t"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-auth-token"));
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_replaced() {
        let s = settings(&["10.0.0.0/8"]);
        let mut h = headers(&[
            ("host", "api.example:8775"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil"),
        ]);
        set_forwarded(&s, &mut h, Some("192.0.2.1".parse().unwrap()), false);
        assert_eq!(h["x-forwarded-for"], "192.0.2.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example:8775");
    }

    #[test]
    fn forwarded_headers_from_a_trusted_peer_are_appended_to() {
        let s = settings(&["10.0.0.0/8"]);
        let mut h = headers(&[
            ("host", "api.example"),
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
        ]);
        set_forwarded(&s, &mut h, Some("10.1.2.3".parse().unwrap()), false);
        assert_eq!(h["x-forwarded-for"], "198.51.100.7, 203.0.113.9, 10.1.2.3");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "api.example");
    }

    #[test]
    fn the_client_address_is_taken_from_a_trusted_chain_only() {
        let trusted: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_address(ip("10.1.1.1"), &h, &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("192.0.2.1"), &h, &trusted),
            ip("192.0.2.1")
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip, 10.0.0.3")]);
        assert_eq!(
            client_address(ip("10.1.1.1"), &garbage, &trusted),
            ip("10.0.0.3")
        );
        assert_eq!(
            client_address(ip("10.1.1.1"), &HeaderMap::new(), &trusted),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn upstream_uri_keeps_path_and_query_as_received() {
        let mut s = settings(&[]);
        s.base_path = "/compute".into();
        let req = Request::builder()
            .uri("http://client.example/v2.1//servers/%73?x=1")
            .header("host", "client.example")
            .body(())
            .unwrap();
        let out = upstream_request(&s, req).unwrap();
        assert_eq!(
            out.uri().to_string(),
            "http://127.0.0.1:8774/compute/v2.1//servers/%73?x=1"
        );
        assert_eq!(out.headers()["host"], "client.example");
    }
}
