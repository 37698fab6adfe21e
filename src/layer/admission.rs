//! The head as Nova will read it: refuses framing that a server behind us
//! could read differently (request smuggling), request targets over the
//! length limit or not in origin form, field values with white space around
//! them (which Nova's HTTP/1 server would strip), and heads [`crate::admit`]
//! refuses; rebuilds the header map from the admitted lines (underscore
//! names dropped, decided-on lines made one, forwarding headers set,
//! hop-by-hop headers gone) and puts what was read from them in the
//! request's [`Admission`].
//!
//! hyper already refuses differing or invalid `Content-Length`s, obs-folded
//! lines and a `Transfer-Encoding` whose last coding is not `chunked`; but it
//! reads a request with both `Content-Length` and `Transfer-Encoding` as
//! chunked and hides the `Content-Length`. The verdict taken on the wire
//! ([`crate::wire`]) catches that, bare-LF lines and bad chunk-size lines;
//! this layer also refuses any `Transfer-Encoding` other than exactly one
//! `chunked`, so that what is forwarded can only be read one way.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Request};
use ipnetwork::IpNetwork;
use tower::{Layer, Service};

use crate::admit::{admit, Context as AdmitContext, Refusal};
use crate::error::ErrorKind;
use crate::exchange::{Admission, Peer, Refused, Rule};
use crate::wire::{Ambiguity, WireVerdict};

#[derive(Debug, Clone)]
pub struct AdmissionLayer {
    max_uri_bytes: usize,
    trusted_proxies: Arc<Vec<IpNetwork>>,
}

impl AdmissionLayer {
    pub fn new(max_uri_bytes: usize, trusted_proxies: Vec<IpNetwork>) -> Self {
        AdmissionLayer {
            max_uri_bytes,
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            settings: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdmissionService<S> {
    inner: S,
    settings: AdmissionLayer,
}

/// The request target's length as sent (origin or absolute form).
fn target_len(uri: &http::Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + 3);
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path
}

/// An HTTP/2 `:path` is the origin form, `*`, or absent (CONNECT); hyper
/// takes any other text as it is (see [`crate::h1::head::is_request_target`]).
fn origin_path(uri: &http::Uri) -> bool {
    uri.path_and_query()
        .is_none_or(|p| p.as_str().starts_with('/') || p.as_str() == "*")
}

/// A field value that starts or ends with a space or tab: RFC 9113 §8.2.1
/// makes such an HTTP/2 request malformed. Every HTTP/1 reader strips that
/// whitespace (httparse, and the WSGI servers Nova runs under), so Nova
/// would act on a value other than the one nova-guard decided on: a
/// `Content-Type` of `" application/json"` is not JSON to a guard that
/// takes it as written, and JSON to Nova.
fn padded_value(headers: &HeaderMap) -> bool {
    headers
        .values()
        .any(|v| matches!(v.as_bytes(), [b' ' | b'\t', ..] | [.., b' ' | b'\t']))
}

/// `Some(reason)` when the request's framing is ambiguous.
pub fn ambiguous_framing<B>(req: &Request<B>) -> Option<Ambiguity> {
    if let Some(WireVerdict(Some(why))) = req.extensions().get::<WireVerdict>() {
        return Some(*why);
    }
    let mut te = req.headers().get_all(TRANSFER_ENCODING).iter();
    match (te.next(), te.next()) {
        (None, _) => None,
        (Some(v), None) if v.as_bytes().eq_ignore_ascii_case(b"chunked") => None,
        _ => Some(Ambiguity::TransferEncoding),
    }
}

/// The request's head, admitted: its new header map and what was read.
fn admitted<B>(req: &Request<B>, trusted: &[IpNetwork]) -> Result<(HeaderMap, Admission), Refusal> {
    // Every connection's requests carry their peer; without one, nothing
    // is trusted.
    let (peer, trusted) = match req.extensions().get::<Peer>() {
        Some(peer) => (*peer, trusted),
        None => (Peer::unknown(), &[][..]),
    };
    let headers: Vec<(&[u8], &[u8])> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        .collect();
    let local = peer.local.to_string();
    let default_host = req
        .uri()
        .authority()
        .map_or(local.as_bytes(), |a| a.as_str().as_bytes());
    let request_id = super::request_id::of(req);
    let mut peer_text = Vec::new();
    crate::text::push_ip(&mut peer_text, peer.remote.ip());
    let ctx = AdmitContext {
        peer: peer.remote.ip(),
        trusted_proxies: trusted,
        tls: peer.tls,
        default_host,
        peer_text: &peer_text,
        request_id: &request_id,
    };
    let admitted = admit(headers.iter().copied(), &ctx)?;
    let mut map = HeaderMap::with_capacity(admitted.lines.len() + 1);
    for line in &admitted.lines {
        // Every name and value came from a valid header map, or is ours.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line.name),
            HeaderValue::from_bytes(&line.value),
        ) {
            map.append(name, value);
        }
    }
    Ok((map, admitted.to_admission()))
}

impl<S, B> Service<Request<B>> for AdmissionService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let refused = |kind: ErrorKind, rule: Rule| Refused { kind, rule };
        let verdict = if let Some(why) = ambiguous_framing(&req) {
            Err(refused(ErrorKind::AmbiguousFraming, Rule::Framing(why)))
        } else if target_len(req.uri()) > self.settings.max_uri_bytes {
            Err(refused(ErrorKind::UriTooLong, Rule::MaxUriBytes))
        } else if !origin_path(req.uri()) || padded_value(req.headers()) {
            Err(refused(ErrorKind::MalformedHead, Rule::MalformedHead))
        } else {
            admitted(&req, &self.settings.trusted_proxies).map_err(|r| match r {
                Refusal::ConflictingContentType => {
                    refused(ErrorKind::ConflictingHeader, Rule::ConflictingHeader)
                }
                Refusal::DuplicateHost => refused(ErrorKind::DuplicateHost, Rule::DuplicateHost),
            })
        };
        match verdict {
            Ok((mut headers, admission)) => {
                // The body's framing goes on to Nova with it (hyper frames
                // what it sends by the length it is told, else chunked).
                if let Some(len) = req.headers().get(CONTENT_LENGTH).cloned() {
                    headers.insert(CONTENT_LENGTH, len);
                }
                *req.headers_mut() = headers;
                req.extensions_mut().insert(admission);
            }
            // Answered by the rescue step, below the access log.
            Err(refused) => {
                req.extensions_mut().insert(refused);
            }
        }
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http2_path_is_an_origin_form() {
        let uri = |p: &str| {
            http::Uri::builder()
                .scheme("http")
                .authority("nova")
                .path_and_query(p)
                .build()
        };
        for (path, ok) in [
            ("/v2.1/servers/x", true),
            ("*", true),
            ("%2Fv2/p/servers/x", false),
            ("./v2.1/servers/x", false),
        ] {
            match uri(path) {
                Ok(u) => assert_eq!(origin_path(&u), ok, "{path}"),
                // Not even a URI: hyper refuses it before.
                Err(_) => assert!(!ok, "{path}"),
            }
        }
    }

    #[test]
    fn a_value_padded_with_whitespace_is_malformed() {
        for (value, padded) in [
            ("application/json", false),
            ("application/json; charset=utf-8", false),
            ("application/\tjson", false),
            ("", false),
            (" application/json", true),
            ("application/json ", true),
            ("\tapplication/json", true),
            ("application/json\t", true),
            (" ", true),
            ("\t", true),
        ] {
            let mut map = HeaderMap::new();
            map.insert("x-other", HeaderValue::from_static("v"));
            map.append("content-type", HeaderValue::from_str(value).unwrap());
            assert_eq!(padded_value(&map), padded, "{value:?}");
        }
    }

    fn req(te: &[&str]) -> Request<()> {
        let mut b = Request::builder().method("PUT").uri("/v2.1/servers/x");
        for v in te {
            b = b.header(TRANSFER_ENCODING, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn only_a_single_chunked_is_unambiguous() {
        assert_eq!(ambiguous_framing(&req(&[])), None);
        assert_eq!(ambiguous_framing(&req(&["chunked"])), None);
        assert_eq!(ambiguous_framing(&req(&["Chunked"])), None);
        for bad in [
            &["gzip, chunked"][..],
            &["chunked, chunked"],
            &["identity"],
            &["chunked", "chunked"],
            &[" chunked"],
        ] {
            assert!(ambiguous_framing(&req(bad)).is_some(), "{bad:?}");
        }
    }
}
