//! The whole hyper-path stack in-process, over a stand-in for forwarding
//! that records what it was sent and answers as it is told.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{service_fn, Service, ServiceExt};

use super::layers;
use crate::error::{ErrorKind, ProxyError};
use crate::exchange::Peer;
use crate::guard::{Enforcement, Guard, Settings};
use crate::metrics::{series_value, Build, Metrics};
use crate::nova::{AccessIpPolicy, Microversion, Profile};
use crate::rescue::Fault;

const SERVER: &str = "/v2.1/servers/4d7e2cde-9a10-4cbb-9d8b-0f0e2d7a1c11";

/// What the stand-in for Nova was sent.
#[derive(Debug)]
struct Sent {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy)]
enum Nova {
    Ok,
    Unreachable,
    /// Never answers.
    Stalls,
}

struct Stack {
    metrics: Arc<Metrics>,
    sent: Arc<Mutex<Vec<Sent>>>,
    nova: Nova,
    enforcement: Enforcement,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

async fn collect<B>(body: B) -> Bytes
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    body.collect().await.unwrap().to_bytes()
}

impl Stack {
    fn new(enforcement: Enforcement, nova: Nova) -> Self {
        Stack {
            metrics: Metrics::new(Build {
                version: "0",
                commit: "x",
                mode: enforcement.as_str(),
                log_lines_dropped: || 0,
            }),
            sent: Arc::default(),
            nova,
            enforcement,
        }
    }

    fn guard(&self) -> Guard {
        Guard::new(Arc::new(Settings {
            profile: Profile::default(),
            path_prefix: String::new(),
            max_body_bytes: 1024,
            max_microversion: Microversion::new(2, 104),
            body_timeout: Duration::from_secs(5),
            enforcement: self.enforcement,
            access_ip_policy: AccessIpPolicy::default(),
        }))
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Answer {
        self.try_send(req, Duration::from_secs(30))
            .await
            .expect("no answer")
    }

    /// The answer, or `None` if the client gave up after `patience`.
    async fn try_send(&self, mut req: Request<Full<Bytes>>, patience: Duration) -> Option<Answer> {
        req.extensions_mut().insert(Peer::new(
            ([127, 0, 0, 1], 40000).into(),
            ([127, 0, 0, 1], 8775).into(),
            false,
        ));
        let sent = self.sent.clone();
        let nova = self.nova;
        let forward = service_fn(move |req: Request<_>| {
            let sent = sent.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = collect(body).await;
                sent.lock().unwrap().push(Sent {
                    method: parts.method,
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body,
                });
                match nova {
                    Nova::Ok => Ok::<_, Fault>(Response::new(Full::new(Bytes::from_static(
                        b"{\"from\": \"nova\"}",
                    )))),
                    Nova::Unreachable => {
                        Err(Fault::new(ProxyError::new(ErrorKind::UpstreamConnect)))
                    }
                    Nova::Stalls => std::future::pending().await,
                }
            }
        });
        let mut stack =
            layers(8192, Vec::new(), self.guard(), self.metrics.clone()).service(forward);
        let call = ServiceExt::<Request<Full<Bytes>>>::ready(&mut stack)
            .await
            .unwrap_or_else(|e: Infallible| match e {})
            .call(req);
        let resp = tokio::time::timeout(patience, call)
            .await
            .ok()?
            .unwrap_or_else(|e: Infallible| match e {});
        let (parts, body) = resp.into_parts();
        Some(Answer {
            status: parts.status,
            headers: parts.headers,
            body: collect(body).await,
        })
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, Vec<Sent>> {
        self.sent.lock().unwrap()
    }

    fn series(&self, series: &str) -> f64 {
        series_value(&self.metrics.render(), series).unwrap_or(0.0)
    }
}

fn put(body: &'static str) -> Request<Full<Bytes>> {
    spelled(
        Method::PUT,
        SERVER,
        "x-auth-token",
        "application/json",
        body,
    )
}

/// A request with a token and a body, its method, target, token header and
/// Content-Type as given.
fn spelled(
    method: Method,
    target: &str,
    token: &str,
    content_type: &str,
    body: &'static str,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(target)
        .header(token, "t")
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn an_invalid_update_is_answered_as_nova_would_and_never_sent() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
    let a = stack.send(put(r#"{"server": {"name": ""}}"#)).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["badRequest"]["code"], 400, "{:?}", a.json());
    assert!(a.headers.contains_key("x-openstack-request-id"));
    assert!(stack.sent().is_empty());
    assert_eq!(
        stack.series(
            r#"nova_guard_rejections_total{operation="update",field="name",rule="minLength"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn spellings_nova_routes_to_update_are_judged_as_updates() {
    let body = r#"{"server": {"name": ""}}"#;
    let unversioned = SERVER.replacen("/v2.1", "", 1);
    let spellings = [
        (
            Method::POST,
            format!("{SERVER}?_method=PUT"),
            "x-auth-token",
            "application/json",
        ),
        (
            Method::PUT,
            SERVER.to_string(),
            "x-storage-token",
            "application/json",
        ),
        (
            Method::PUT,
            unversioned,
            "x-auth-token",
            "application/json;version=2.1/x",
        ),
    ];
    for (method, target, token, content_type) in spellings {
        let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
        let req = spelled(method.clone(), &target, token, content_type, body);
        let a = stack.send(req).await;
        assert_eq!(a.status, 400, "{method} {target} {token}: {:?}", a.json());
        assert!(stack.sent().is_empty(), "{method} {target} {token}");
    }
}

#[tokio::test]
async fn a_value_padded_with_whitespace_is_refused_and_never_sent() {
    // HTTP/2 hands values over as written; Nova's HTTP/1 server strips them.
    let body = r#"{"server": {"name": ""}}"#;
    for content_type in [" application/json", "application/json\t", " "] {
        let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
        let req = spelled(Method::PUT, SERVER, "x-auth-token", content_type, body);
        let a = stack.send(req).await;
        assert_eq!(a.status, 400, "{content_type:?}: {:?}", a.json());
        assert_eq!(a.json()["badRequest"]["code"], 400, "{content_type:?}");
        assert!(stack.sent().is_empty(), "{content_type:?}");
    }
}

#[tokio::test]
async fn a_valid_update_reaches_nova_with_accessipv6_in_canonical_text() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
    let a = stack
        .send(put(r#"{"server": {"accessIPv6": "0:0:0::1"}}"#))
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["from"], "nova");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::PUT);
    assert_eq!(sent[0].path, SERVER);
    assert_eq!(sent[0].body, r#"{"server": {"accessIPv6": "::1"}}"#);
    assert_eq!(
        sent[0].headers["content-length"],
        sent[0].body.len().to_string()
    );
    // Nova gets nova-guard's request id when the client sent none.
    let id = sent[0].headers["x-openstack-request-id"].to_str().unwrap();
    assert!(id.starts_with("req-") && id.len() == 40, "{id}");
    assert_eq!(sent[0].headers["x-auth-token"], "t");
}

#[tokio::test]
async fn report_mode_sends_an_invalid_update_on_untouched_and_counts_it() {
    let stack = Stack::new(Enforcement::Report, Nova::Ok);
    let body = r#"{"server": {"name": "", "accessIPv6": "0::1"}}"#;
    let a = stack.send(put(body)).await;
    assert_eq!(a.status, 200);
    assert_eq!(stack.sent()[0].body, body);
    assert_eq!(
        stack.series(
            r#"nova_guard_reported_total{operation="update",field="name",rule="minLength"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_header_nova_would_read_two_ways_is_dropped_before_nova() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
    let mut req = put(r#"{"server": {"name": "a"}}"#);
    req.headers_mut()
        .insert("x_auth_token", http::HeaderValue::from_static("other"));
    let a = stack.send(req).await;
    assert_eq!(a.status, 200);
    let sent = stack.sent();
    assert!(!sent[0].headers.contains_key("x_auth_token"));
    assert_eq!(sent[0].headers["x-auth-token"], "t");
}

#[tokio::test]
async fn a_fault_below_becomes_nova_s_envelope() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Unreachable);
    let a = stack
        .send(
            Request::get("/v2.1/flavors")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 502, "{:?}", a.body);
    let fault = &a.json()["computeFault"];
    assert_eq!(fault["code"], 502, "{:?}", a.json());
    assert!(fault["message"].is_string());
    // The connection can carry on: Nova failed, not the client's framing.
    assert!(!a.headers.contains_key("connection"));
    assert_eq!(stack.sent().len(), 1);
}

#[tokio::test]
async fn a_target_over_the_limit_is_refused_before_anything_else() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Ok);
    let long = format!("/v2.1/servers?name={}", "a".repeat(9000));
    let a = stack
        .send(
            Request::get(long.as_str())
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, 414);
    assert_eq!(a.headers["connection"], "close");
    assert!(stack.sent().is_empty());
}

#[tokio::test]
async fn a_client_that_gives_up_while_nova_thinks_is_counted_499() {
    let stack = Stack::new(Enforcement::Enforce, Nova::Stalls);
    let get = Request::get("/v2.1/flavors")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert!(stack
        .try_send(get, Duration::from_millis(50))
        .await
        .is_none());
    assert_eq!(stack.sent().len(), 1);
    assert_eq!(
        stack.series(
            r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="499"}"#
        ),
        1.0
    );
}
