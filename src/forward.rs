//! Sends requests to Nova over one pooled HTTP/1.1 client and streams the
//! answers back. The request's head was admitted already ([`crate::admit`]:
//! hop-by-hop headers gone, `X-Forwarded-*` set, `Host` kept); here its
//! target is pointed at Nova and hop-by-hop headers are dropped from the
//! answer (RFC 9110 §7.6.1). A failure to reach Nova is a [`Fault`] for the
//! rescue step to answer (502, or 504 for a late answer).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, Request, Response, Uri, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::Service;

use crate::body::IdleBody;
use crate::error::{BoxError, ErrorKind, ProxyError};
use crate::exchange::UpstreamInfo;
use crate::rescue::Fault;

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
}

impl<B> Forward<B>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    pub fn new(upstream: &crate::upstream::Settings) -> Result<Self, BoxError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(upstream.connect_timeout));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        connector.enforce_http(false);
        let tls_config = if let Some(tls) = &upstream.tls {
            let mut tls = (**tls).clone();
            // hyper-rustls sets the protocols it speaks itself.
            tls.alpn_protocols.clear();
            tls
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
            .pool_idle_timeout(upstream.idle_timeout)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            // hyper's read buffer otherwise grows to ~400 KiB per streaming
            // connection; 32 KiB keeps 256 streams under 32 MiB at about
            // nginx's CPU per MiB (BENCHMARKS.md).
            .http1_max_buf_size(32 * 1024)
            .build(connector);
        let uri = &upstream.uri;
        let settings = ForwardSettings {
            scheme: uri.scheme().cloned().unwrap_or(Scheme::HTTP),
            authority: uri.authority().cloned().ok_or("upstream URL has no host")?,
            base_path: upstream.base_path.clone(),
            timeout: upstream.timeout,
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
    type Response = Response<IdleBody<Incoming>>;
    type Error = Fault;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Fault>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = self.client.clone();
        let settings = self.settings.clone();
        Box::pin(async move {
            let sent = std::time::Instant::now();
            let req = upstream_request(&settings, req)?;
            let result = tokio::time::timeout(settings.timeout, client.request(req)).await;
            let duration = Some(sent.elapsed());
            let mut resp = match result {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    let kind = if e.is_connect() {
                        ErrorKind::UpstreamConnect
                    } else if client_body_timed_out(&e) {
                        // The client stalled, or its body broke off, not Nova.
                        ErrorKind::ClientBodyTimeout
                    } else if client_body_failed(&e) {
                        ErrorKind::ClientBody
                    } else {
                        ErrorKind::UpstreamProtocol
                    };
                    return Err(ProxyError::with_source(kind, e).into());
                }
                Err(_) => return Err(ProxyError::new(ErrorKind::UpstreamTimeout).into()),
            };
            remove_hop_by_hop(resp.headers_mut());
            let info = UpstreamInfo {
                status: Some(resp.status().as_u16()),
                request_id: resp
                    .headers()
                    .get("x-openstack-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                duration,
                ..UpstreamInfo::default()
            };
            resp.extensions_mut().insert(info);
            // Nova may not pause in its answer longer than it may take to start it.
            let limit = settings.timeout;
            Ok(resp.map(|body| IdleBody::new(body, limit, ErrorKind::UpstreamTimeout)))
        })
    }
}

/// Whether sending failed because the client's body stalled.
fn client_body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    ProxyError::kind_in(e) == Some(ErrorKind::ClientBodyTimeout)
}

/// Whether sending failed because the client's body broke off (it went
/// away, or its framing failed): hyper reports an error of the request body
/// it was given as a user error caused by that body's error.
fn client_body_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    crate::error::causes(e)
        .find_map(|c| c.downcast_ref::<hyper::Error>())
        .is_some_and(|h| h.is_user() && std::error::Error::source(h).is_some())
}

/// The request as Nova gets it: its target on Nova (behind Nova's base
/// path), over HTTP/1.1.
fn upstream_request<B>(settings: &ForwardSettings, req: Request<B>) -> Result<Request<B>, Fault> {
    let (mut parts, body) = req.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let path_and_query = if settings.base_path.is_empty() {
        PathAndQuery::try_from(path_and_query)
    } else {
        PathAndQuery::try_from(format!("{}{}", settings.base_path, path_and_query))
    }
    .map_err(|e| ProxyError::with_source(ErrorKind::UpstreamProtocol, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn settings() -> ForwardSettings {
        ForwardSettings {
            scheme: Scheme::HTTP,
            authority: Authority::from_static("127.0.0.1:8774"),
            base_path: String::new(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_from_answers() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "gzip"),
            ("trailer", "x"),
            ("upgrade", "h2c"),
            ("x-openstack-request-id", "req-1"),
        ] {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-openstack-request-id"));
    }

    #[test]
    fn upstream_uri_keeps_path_and_query_as_received() {
        let mut s = settings();
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
