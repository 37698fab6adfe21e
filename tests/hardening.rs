//! Black-box tests of the production hardening, over real sockets: request
//! smuggling, timeouts, upstream faults, graceful shutdown, limits and the
//! admin listener. Time bounds here are generous ceilings, not claims about
//! speed.

mod common;

use std::time::Duration;

use common::{Answer, BadUpstream, Conn, Guard, Misbehaviour, Upstream};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVER: &str = "/v2.1/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";
/// Far longer than anything here should take; only a hang reaches it.
const BOUND: Duration = Duration::from_secs(20);

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

fn assert_request_ids(a: &Answer) {
    let id = a
        .header("x-openstack-request-id")
        .expect("x-openstack-request-id");
    assert_eq!(a.header("x-compute-request-id"), Some(id));
    assert!(id.starts_with("req-") && id.len() == 40, "{id}");
}

/// Send bytes on a fresh connection; read one answer; tell whether the
/// connection was then closed.
async fn exchange(guard: &Guard, request: &[u8]) -> (Answer, bool) {
    let mut stream = Conn::open(guard.addr).await;
    stream.send(request).await;
    let answer = tokio::time::timeout(BOUND, stream.answer())
        .await
        .expect("an answer");
    let closed = stream.closed_by_peer().await;
    (answer, closed)
}

// ---------------------------------------------------------------------------
// Request smuggling

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let heads = [
        "Content-Length: 5\r\nTransfer-Encoding: chunked",
        "Transfer-Encoding: chunked\r\nContent-Length: 5",
        "Content-Length: 0\r\nTransfer-Encoding: chunked",
    ];
    for target in [("PUT", SERVER), ("POST", "/v2.1/servers")] {
        for head in heads {
            // The body, read as chunked, ends early; what follows would be a
            // second, smuggled request if the connection were kept.
            let req = format!(
                "{} {} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\n{head}\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
                target.0, target.1
            );
            let (a, closed) = exchange(&guard, req.as_bytes()).await;
            assert_eq!(a.status, 400, "{target:?} {head}: {}", a.text());
            assert_eq!(
                json(&a.body),
                json(br#"{"badRequest": {"code": 400, "message": "Malformed request framing"}}"#)
            );
            assert_request_ids(&a);
            assert_eq!(a.header("connection"), Some("close"));
            assert!(closed, "{target:?} {head}: connection kept open");
        }
    }
    assert_eq!(up.count(), 0, "the upstream received a request");
    let events = guard.wait_exchanges(6).await;
    assert_eq!(events.len(), 6);
    for e in events {
        assert_eq!(e["verdict"], "rejected");
        assert_eq!(e["rule"], "content_length_and_transfer_encoding");
        assert_eq!(e["error"], "ambiguous_framing");
    }
}

#[tokio::test]
async fn ambiguous_or_malformed_framing_never_reaches_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let cases: &[(&str, &[u8])] = &[
        (
            "differing Content-Length",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
        ),
        (
            "Content-Length list",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 3\r\n\r\nabc",
        ),
        (
            "signed Content-Length",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\nab",
        ),
        (
            "negative Content-Length",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            "hex Content-Length",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 0x2\r\n\r\nab",
        ),
        (
            "chunked, identity",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        ),
        (
            "identity",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
        ),
        (
            "gzip, chunked",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two Transfer-Encoding lines",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunked on HTTP/1.0",
            b"POST /v2.1/servers HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "bare LF after the request line",
            b"GET /v2.1/servers HTTP/1.1\nHost: x\r\n\r\n",
        ),
        (
            "bare LF after a header",
            b"GET /v2.1/servers HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
        ),
        ("bare LF blank line", b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\n"),
        (
            "obs-fold",
            b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
        ),
        (
            "obs-fold of Transfer-Encoding",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\nabc",
        ),
        (
            "chunk-size overflow",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nab\r\n0\r\n\r\n",
        ),
        (
            "chunk-size not hex",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        ),
        (
            "chunk-size line ended by a bare LF",
            b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n",
        ),
        (
            "chunk-size overflow on a validated PUT",
            b"PUT /v2.1/servers/abc HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        ),
    ];
    for (what, req) in cases {
        let (a, closed) = exchange(&guard, req).await;
        assert_eq!(a.status, 400, "{what}: {}", a.text());
        assert!(closed, "{what}: connection kept open");
    }
    assert_eq!(up.count(), 0, "the upstream received a request");
}

#[tokio::test]
async fn unambiguous_framing_is_served_on_a_kept_alive_connection() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    // A body that looks like a smuggling attempt is only a body.
    let inner = "GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut stream = Conn::open(guard.addr).await;
    let requests = [
        // Identical Content-Length lines are one length.
        format!(
            "POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\nContent-Length: {n}\r\n\r\n{inner}",
            n = inner.len()
        ),
        // Chunked, with an extension and a trailer.
        format!(
            "POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n{:x};a=b\r\n{inner}\r\n0\r\nX-T: 1\r\n\r\n",
            inner.len()
        ),
        "GET /v2.1/flavors HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
    ];
    // Sent byte by byte for the first, in one write (pipelined) for the rest.
    for b in requests[0].as_bytes() {
        stream.send(&[*b]).await;
    }
    let a = tokio::time::timeout(BOUND, stream.answer()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    stream
        .send(format!("{}{}", requests[1], requests[2]).as_bytes())
        .await;
    for _ in 0..2 {
        let a = tokio::time::timeout(BOUND, stream.answer()).await.unwrap();
        assert_eq!(a.status, 200, "{}", a.text());
    }
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(&seen[0].body[..], inner.as_bytes());
    assert_eq!(seen[0].headers.get_all("content-length").iter().count(), 1);
    assert_eq!(&seen[1].body[..], inner.as_bytes());
    assert_eq!(seen[2].uri, "/v2.1/flavors");
}

#[tokio::test]
async fn http2_cleartext_is_still_served() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let stream = TcpStream::connect(guard.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}/v2.1/servers", guard.addr))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.count(), 1);
}

// ---------------------------------------------------------------------------
// Timeouts

#[tokio::test]
async fn a_slowloris_client_is_cut_off_after_the_header_timeout() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "300ms")]);
    let mut stream = Conn::open(guard.addr).await;
    // A head that never ends, one line at a time.
    stream.send(b"GET /v2.1/servers HTTP/1.1\r\n").await;
    let mut cut = false;
    for i in 0..200 {
        if stream
            .stream
            .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cut || stream.closed_by_peer().await, "never cut off");
    assert_eq!(up.count(), 0);
    // Others are still served.
    let a = common::raw(
        guard.addr,
        b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s")]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let a = stream.answer().await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("connection"), None);
    assert!(stream.closed_by_peer().await, "idle connection kept");
}

#[tokio::test]
async fn a_validated_body_that_does_not_arrive_gets_408() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "300ms")]);
    let mut stream = Conn::open(guard.addr).await;
    let head = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"server\": "
    );
    stream.send(head.as_bytes()).await;
    let a = tokio::time::timeout(BOUND, stream.answer())
        .await
        .expect("an answer");
    assert_eq!(a.status, 408, "{}", a.text());
    assert_eq!(
        json(&a.body),
        json(
            br#"{"computeFault": {"code": 408, "message": "Request body not received in time."}}"#
        )
    );
    assert_request_ids(&a);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(stream.closed_by_peer().await);
    assert_eq!(up.count(), 0);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["rule"], "clientBodyTimeout");
    assert_eq!(events[0]["error"], "client_body_timeout");
}

#[tokio::test]
async fn a_stalling_nova_gets_the_client_a_504() {
    let up = BadUpstream::start(Misbehaviour::Stall).await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "300ms")]);
    let (a, _) = exchange(
        &guard,
        b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 504, "{}", a.text());
    assert_eq!(
        json(&a.body),
        json(br#"{"computeFault": {"code": 504, "message": "The compute API did not answer in time."}}"#)
    );
    assert_request_ids(&a);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "upstream_timeout");
    assert_eq!(
        events[0]["request_id"],
        a.header("x-openstack-request-id").unwrap()
    );
}

async fn two_requests_a_second_apart(guard: &Guard) {
    for _ in 0..2 {
        let a = common::raw(
            guard.addr,
            b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(a.status, 200);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_the_pool_timeout() {
    let up = Upstream::start().await;
    // One worker: idle connections to Nova are kept per worker.
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_UPSTREAM_IDLE_TIMEOUT", "100ms"),
            ("NOVA_GUARD_WORKERS", "1"),
        ],
    );
    two_requests_a_second_apart(&guard).await;
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 2);

    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_WORKERS", "1")]);
    two_requests_a_second_apart(&guard).await;
    assert_eq!(up.connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------
// Upstream faults

#[tokio::test]
async fn nova_faults_become_nova_shaped_502s_with_their_cause_logged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let garbage = BadUpstream::start(Misbehaviour::Garbage).await;
    let closing = BadUpstream::start(Misbehaviour::Close).await;
    let cases = [
        (format!("http://127.0.0.1:{port}"), "upstream_connect"),
        (garbage.url(), "upstream_protocol"),
        (closing.url(), "upstream_protocol"),
    ];
    for (url, kind) in cases {
        let guard = Guard::start(&url, &[]);
        let (a, _) = exchange(
            &guard,
            &common::put(SERVER, &[], br#"{"server": {"name": "a"}}"#),
        )
        .await;
        assert_eq!(a.status, 502, "{url}: {}", a.text());
        assert_eq!(json(&a.body)["computeFault"]["code"], 502);
        assert_request_ids(&a);
        let events = guard.wait_exchanges(1).await;
        assert_eq!(events[0]["error"], kind, "{url}");
        let cause = events[0]["cause"].as_str().unwrap_or_default();
        assert!(
            cause.starts_with(kind) && cause.len() > kind.len(),
            "{cause}"
        );
        assert_eq!(
            events[0]["request_id"],
            a.header("x-openstack-request-id").unwrap()
        );
    }
    assert!(
        garbage
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
}

#[tokio::test]
async fn a_reset_in_the_middle_of_nova_s_answer_cuts_the_client_s_answer() {
    let up = BadUpstream::start(Misbehaviour::ResetMidResponse).await;
    let guard = Guard::start(&up.url(), &[]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = stream
        .until_closed()
        .await
        .expect("the cut answer was left hanging");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body_len = got.len() - text.find("\r\n\r\n").unwrap() - 4;
    assert!(body_len < 1000, "the client was told the answer was whole");
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["complete"], false);
    assert_eq!(events[0]["status"], 200);
    assert_eq!(events[0]["error"], "upstream_protocol");
    let cause = events[0]["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("upstream_protocol: response body"),
        "{cause}"
    );
    // nova-guard is still there (it answers this one itself).
    let a = common::raw(
        guard.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn nova_s_own_5xx_answers_pass_through_unchanged() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    for code in [500u16, 503] {
        let req = format!("GET /status/{code} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let a = common::raw(guard.addr, req.as_bytes()).await;
        assert_eq!(a.status, code);
        assert_eq!(
            a.text(),
            format!("{{\"computeFault\": {{\"code\": {code}, \"message\": \"from nova\"}}}}")
        );
        assert_eq!(
            a.header("x-openstack-request-id"),
            Some("req-11111111-1111-4111-8111-111111111111")
        );
    }
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["upstream_status"], 500);
    assert!(events[0]["error"].is_null());
}

#[tokio::test]
async fn a_slow_nova_within_the_timeout_is_waited_for() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "10s")]);
    let a = common::raw(
        guard.addr,
        b"GET /slow/300 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), r#"{"slow": true}"#);
}

// ---------------------------------------------------------------------------
// Graceful shutdown

async fn send_get(addr: std::net::SocketAddr, path: &str) -> Answer {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    common::raw(addr, req.as_bytes()).await
}

#[tokio::test]
async fn sigterm_drains_in_flight_exchanges_and_exits_0() {
    let up = Upstream::start().await;
    let mut guard = Guard::start(&up.url(), &[]);
    let addr = guard.addr;
    // An idle keep-alive connection.
    let mut idle = Conn::open(addr).await;
    idle.send(b"GET /v2.1/flavors HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(idle.answer().await.status, 200);
    // Two exchanges in flight against a slow Nova.
    let in_flight: Vec<_> = (0..2)
        .map(|_| tokio::spawn(send_get(addr, "/slow/1500")))
        .collect();
    for _ in 0..1000 {
        if up.count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(up.count(), 3);
    guard.signal("TERM");
    assert!(guard.wait_event("shutting down").await.is_some());
    // New connections are refused.
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
    // The idle connection is closed.
    assert!(idle.closed_by_peer().await, "idle connection kept");
    // The exchanges in flight finish.
    for task in in_flight {
        let a = tokio::time::timeout(BOUND, task).await.unwrap().unwrap();
        assert_eq!(a.status, 200);
        assert_eq!(a.text(), r#"{"slow": true}"#);
    }
    let status = guard.wait_exit(BOUND).await.expect("did not exit");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigint_then_a_second_signal_stops_at_once() {
    let up = Upstream::start().await;
    let mut guard = Guard::start(&up.url(), &[("NOVA_GUARD_SHUTDOWN_GRACE", "10m")]);
    let addr = guard.addr;
    let stuck = tokio::spawn(send_get(addr, "/slow/600000"));
    for _ in 0..1000 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    guard.signal("INT");
    assert!(guard.wait_event("shutting down").await.is_some());
    guard.signal("TERM");
    let status = guard.wait_exit(BOUND).await.expect("did not stop");
    assert!(!status.success());
    stuck.abort();
}

#[tokio::test]
async fn the_grace_period_ends_a_drain_that_takes_too_long() {
    let up = Upstream::start().await;
    let mut guard = Guard::start(&up.url(), &[("NOVA_GUARD_SHUTDOWN_GRACE", "300ms")]);
    let stuck = tokio::spawn(send_get(guard.addr, "/slow/600000"));
    for _ in 0..1000 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    guard.signal("TERM");
    let status = guard.wait_exit(BOUND).await.expect("did not stop");
    assert_eq!(status.code(), Some(0));
    assert!(guard
        .events()
        .iter()
        .any(|e| e["message"] == "grace period over; closing the remaining connections"));
    stuck.abort();
}

// ---------------------------------------------------------------------------
// Limits

#[tokio::test]
async fn heads_over_the_byte_or_line_limit_get_431() {
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_MAX_HEADER_BYTES", "8192"),
            ("NOVA_GUARD_MAX_HEADERS", "10"),
        ],
    );
    let big = format!(
        "GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let (a, closed) = exchange(&guard, big.as_bytes()).await;
    assert_eq!(a.status, 431);
    assert!(closed);
    let mut many = String::from("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let (a, closed) = exchange(&guard, many.as_bytes()).await;
    assert_eq!(a.status, 431);
    assert!(closed);
    // Within both limits: served.
    let mut fine = String::from("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..7 {
        fine.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(1000)));
    }
    fine.push_str("\r\n");
    assert_eq!(common::raw(guard.addr, fine.as_bytes()).await.status, 200);
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn a_target_over_the_uri_limit_gets_414() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MAX_URI_BYTES", "256")]);
    let long = format!("/v2.1/servers?name={}", "x".repeat(300));
    let (a, _) = exchange(
        &guard,
        format!("GET {long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(a.status, 414);
    assert_eq!(
        json(&a.body),
        json(br#"{"computeFault": {"code": 414, "message": "Request URI too long."}}"#)
    );
    assert_request_ids(&a);
    let exact = format!("/v2.1/servers?name={}", "x".repeat(256 - 19));
    assert_eq!(exact.len(), 256);
    assert_eq!(send_get(guard.addr, &exact).await.status, 200);
    assert_eq!(up.count(), 1);
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["rule"], "maxUriBytes");
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_are_logged() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MAX_CONNECTIONS", "1")]);
    let mut first = Conn::open(guard.addr).await;
    first
        .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(first.answer().await.status, 200);
    let (a, closed) = exchange(&guard, b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(a.status, 503);
    assert_eq!(json(&a.body)["serviceUnavailable"]["code"], 503);
    assert_request_ids(&a);
    assert!(closed);
    assert!(guard
        .wait_event("connection limit reached; answering 503 and closing")
        .await
        .is_some());
    assert_eq!(up.count(), 1);
    // Once the first connection is gone, its slot is free again.
    drop(first);
    let mut served = false;
    for _ in 0..200 {
        if send_get(guard.addr, "/v2.1/servers").await.status == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
}

#[tokio::test]
async fn a_connection_is_closed_after_its_last_allowed_request() {
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[("NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "2")],
    );
    let mut stream = Conn::open(guard.addr).await;
    for i in 0..2 {
        stream
            .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let a = stream.answer().await;
        assert_eq!(a.status, 200);
        let close = a.header("connection") == Some("close");
        assert_eq!(close, i == 1, "request {i}");
    }
    assert!(stream.closed_by_peer().await);
    assert_eq!(up.count(), 2);
}

// ---------------------------------------------------------------------------
// Admin listener

async fn start_with_admin(upstream: &str) -> (Guard, std::net::SocketAddr) {
    let guard = Guard::start(upstream, &[("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0")]);
    let event = guard
        .wait_event("admin listening")
        .await
        .expect("no admin listener");
    let admin = event["admin"].as_str().unwrap().parse().unwrap();
    (guard, admin)
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn the_admin_listener_is_off_unless_configured() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    assert_eq!(send_get(guard.addr, "/healthz").await.status, 200);
    // That was forwarded to Nova, not answered by an admin endpoint.
    assert_eq!(up.count(), 1);
    assert!(!guard
        .events()
        .iter()
        .any(|e| e["message"] == "admin listening"));
}

#[tokio::test]
async fn health_readiness_and_metrics_that_move_as_requests_flow() {
    let up = Upstream::start().await;
    let (guard, admin) = start_with_admin(&up.url()).await;
    let h = send_get(admin, "/healthz").await;
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    assert_eq!(send_get(admin, "/readyz").await.status, 200);
    assert_eq!(send_get(admin, "/nothing").await.status, 404);
    assert_eq!(up.count(), 0, "admin requests went to Nova");

    let before = send_get(admin, "/metrics").await;
    assert_eq!(before.status, 200);
    assert_eq!(
        before.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(before
        .text()
        .contains("# TYPE nova_guard_request_duration_seconds histogram"));

    let valid = br#"{"server": {"name": "a"}}"#;
    assert_eq!(
        common::raw(guard.addr, &common::put(SERVER, &[], valid))
            .await
            .status,
        200
    );
    let bad = br#"{"server": {"name": ""}}"#;
    assert_eq!(
        common::raw(guard.addr, &common::put(SERVER, &[], bad))
            .await
            .status,
        400
    );
    let smuggle = b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(common::raw(guard.addr, smuggle).await.status, 400);
    assert_eq!(send_get(guard.addr, "/v2.1/flavors").await.status, 200);
    guard.wait_exchanges(4).await;
    // One connection held open for the gauge.
    let mut held = Conn::open(guard.addr).await;
    held.send(b"GET /v2.1/flavors HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert_eq!(held.answer().await.status, 200);
    guard.wait_exchanges(5).await;

    let m = send_get(admin, "/metrics").await.text();
    let count = |s: &str| metric(&m, s);
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="update",verdict="forwarded",status="200"}"#),
        1.0,
        "{m}"
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="update",verdict="rejected",status="400"}"#),
        1.0
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="other",verdict="rejected",status="400"}"#),
        1.0
    );
    assert_eq!(
        count(r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="200"}"#),
        2.0
    );
    assert_eq!(
        count(r#"nova_guard_rejections_total{operation="update",field="name",rule="minLength"}"#),
        1.0
    );
    assert_eq!(
        count(
            r#"nova_guard_rejections_total{operation="other",field="",rule="content_length_and_transfer_encoding"}"#
        ),
        1.0
    );
    // By operation: the two updates, the three others.
    let all = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        count(r#"nova_guard_request_duration_seconds_bucket{operation="update",le="+Inf"}"#),
        2.0
    );
    assert_eq!(all("nova_guard_request_duration_seconds_count{"), 5.0);
    assert_eq!(all("nova_guard_upstream_duration_seconds_count{"), 3.0);
    assert!(count("nova_guard_open_connections") >= 1.0);
    assert!(count("nova_guard_body_bytes_received_total") >= (valid.len() + bad.len()) as f64);
    assert!(count("nova_guard_body_bytes_sent_total") > 0.0);
    drop(held);
}

#[tokio::test]
async fn readiness_fails_and_upstream_errors_are_counted_when_nova_is_unreachable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (guard, admin) = start_with_admin(&format!("http://127.0.0.1:{port}")).await;
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
    assert_eq!(send_get(admin, "/readyz").await.status, 503);
    assert_eq!(send_get(guard.addr, "/v2.1/servers").await.status, 502);
    guard.wait_exchanges(1).await;
    let m = send_get(admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &m,
            r#"nova_guard_upstream_errors_total{kind="upstream_connect"}"#
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            r#"nova_guard_requests_total{operation="other",verdict="passthrough",status="502"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn a_streamed_body_that_stalls_gets_408_and_frees_nova_s_connection() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "300ms")]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        .await;
    let a = tokio::time::timeout(BOUND, stream.answer())
        .await
        .expect("an answer");
    assert_eq!(a.status, 408, "{}", a.text());
    assert_eq!(json(&a.body)["computeFault"]["code"], 408);
    assert_request_ids(&a);
    assert!(stream.closed_by_peer().await);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "client_body_timeout");
    // Nova got the head and the bytes that came, then an aborted body.
    for _ in 0..500 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = up.last();
    assert_eq!(&seen.body[..], b"0123456789");
}

#[tokio::test]
async fn a_slow_but_steady_streamed_body_is_not_cut() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "5s")]);
    let mut stream = Conn::open(guard.addr).await;
    stream.send(b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n").await;
    for b in b"abcde" {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.send(&[*b]).await;
    }
    let a = stream.answer().await;
    assert_eq!(a.status, 200);
    assert_eq!(&up.last().body[..], b"abcde");
}

#[tokio::test]
async fn readiness_turns_off_while_draining() {
    let up = Upstream::start().await;
    let (mut guard, admin) = start_with_admin(&up.url()).await;
    assert_eq!(send_get(admin, "/readyz").await.status, 200);
    let in_flight = tokio::spawn(send_get(guard.addr, "/slow/1500"));
    for _ in 0..1000 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    guard.signal("TERM");
    assert!(guard.wait_event("shutting down").await.is_some());
    let r = send_get(admin, "/readyz").await;
    assert_eq!((r.status, r.text().as_str()), (503, "shutting down\n"));
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
    let a = tokio::time::timeout(BOUND, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(guard.wait_exit(BOUND).await.unwrap().code(), Some(0));
}

// ---------------------------------------------------------------------------
// Pipelines of good and bad requests, split at arbitrary points

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Where a bad request's fault lies: in its head (nothing of it may reach
/// Nova) or in its chunked body (its head may, when streamed, but never
/// anything after it).
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    Head,
    Body,
}

fn body_text(rng: &mut Rng) -> Vec<u8> {
    let pieces: [&[u8]; 6] = [
        b"\r\n",
        b"0\r\n\r\n",
        b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /smuggled HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"{\"server\": {}}",
        b"zz",
    ];
    let mut body = Vec::new();
    for _ in 0..rng.below(5) {
        body.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
    }
    body
}

fn request(rng: &mut Rng, path: &str, last: bool) -> (Vec<u8>, Fault) {
    let body = body_text(rng);
    let close = if last { "Connection: close\r\n" } else { "" };
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\n{close}");
    let chunked = |body: &[u8], size_line: &str| {
        let mut r = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        if !body.is_empty() {
            r.extend_from_slice(size_line.as_bytes());
            r.extend_from_slice(body);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    let with_length = |extra: &str| {
        let mut r = format!("{head}{extra}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(&body);
        r
    };
    match rng.below(10) {
        0..=2 => (with_length(""), Fault::None),
        3..=4 => (
            chunked(&body, &format!("{:x}\r\n", body.len())),
            Fault::None,
        ),
        5 => (with_length("Transfer-Encoding: chunked\r\n"), Fault::Head),
        6 => (
            with_length(&format!("Content-Length: {}\r\n", body.len() + 1)),
            Fault::Head,
        ),
        7 => {
            let mut r = with_length("");
            let at = r.iter().position(|b| *b == b'\n').unwrap();
            r.remove(at - 1); // the request line ends with a bare LF
            (r, Fault::Head)
        }
        8 => (with_length("X-Folded: a\r\n b\r\n"), Fault::Head),
        _ => (chunked(b"abc", "fffffffffffffffffff\r\n"), Fault::Body),
    }
}

#[tokio::test]
async fn pipelines_split_anywhere_never_smuggle_a_request_to_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..150 {
        let n = 1 + rng.below(4) as usize;
        let mut stream_bytes = Vec::new();
        let mut faults = Vec::new();
        for i in 0..n {
            let (bytes, fault) = request(&mut rng, &format!("/r/{case}/{i}"), i + 1 == n);
            stream_bytes.extend_from_slice(&bytes);
            faults.push(fault);
        }
        let mut stream = Conn::open(guard.addr).await;
        // Written in a few pieces, cut anywhere.
        let mut at = 0;
        while at < stream_bytes.len() {
            let len = 1 + rng.below(stream_bytes.len() as u64) as usize;
            let end = (at + len).min(stream_bytes.len());
            if stream
                .stream
                .write_all(&stream_bytes[at..end])
                .await
                .is_err()
            {
                break;
            }
            at = end;
            if rng.below(2) == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        // The connection ends: a refusal closes it, and so does the last
        // request's `Connection: close`.
        assert!(stream.closed_by_peer().await, "case {case}: left open");

        let first_bad = faults.iter().position(|f| *f != Fault::None);
        let seen: Vec<String> = up
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.uri.starts_with(&format!("/r/{case}/")))
            .map(|s| s.uri.clone())
            .collect();
        let served_until = match first_bad {
            None => n,
            Some(i) => i,
        };
        let expected: Vec<String> = (0..served_until)
            .map(|i| format!("/r/{case}/{i}"))
            .collect();
        // The good requests before the first bad one all reach Nova, in order.
        assert_eq!(
            seen.get(..served_until),
            Some(&expected[..]),
            "case {case}: {faults:?}"
        );
        // Nothing after: at most the bad request itself when its fault is in
        // a body that was already being streamed.
        let extra = &seen[served_until..];
        match first_bad.map(|i| faults[i]) {
            Some(Fault::Body) => assert!(
                extra.len() <= 1
                    && extra
                        .iter()
                        .all(|u| *u == format!("/r/{case}/{served_until}")),
                "case {case}: {extra:?}"
            ),
            _ => assert!(extra.is_empty(), "case {case}: {extra:?}"),
        }
    }
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::None => "ok",
            Fault::Head => "bad head",
            Fault::Body => "bad body",
        })
    }
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(&common::put(SERVER, &[], br#"{"server": {"name": "a"}}"#))
        .await;
    stream.stream.shutdown().await.unwrap();
    let a = tokio::time::timeout(BOUND, stream.answer()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn the_logged_client_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    let up = Upstream::start().await;
    let req = b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, 127.0.0.9\r\nConnection: close\r\n\r\n";
    let trusting = Guard::start(&up.url(), &[("NOVA_GUARD_TRUSTED_PROXIES", "127.0.0.0/8")]);
    assert_eq!(common::raw(trusting.addr, req).await.status, 200);
    let e = trusting.wait_exchanges(1).await;
    assert_eq!(e[0]["client"], "203.0.113.7");
    assert_eq!(
        up.last().headers["x-forwarded-for"],
        "203.0.113.7, 127.0.0.9, 127.0.0.1"
    );
    let wary = Guard::start(&up.url(), &[]);
    assert_eq!(common::raw(wary.addr, req).await.status, 200);
    let e = wary.wait_exchanges(1).await;
    assert_eq!(e[0]["client"], "127.0.0.1");
    assert_eq!(up.last().headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn no_connection_is_leaked_whatever_the_clients_and_nova_do() {
    let up = BadUpstream::start(Misbehaviour::ResetMidResponse).await;
    let (guard, admin) = {
        let guard = Guard::start(
            &up.url(),
            &[
                ("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0"),
                ("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "300ms"),
                ("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "300ms"),
            ],
        );
        let event = guard.wait_event("admin listening").await.unwrap();
        let admin: std::net::SocketAddr = event["admin"].as_str().unwrap().parse().unwrap();
        (guard, admin)
    };
    let mut tasks = Vec::new();
    for i in 0..30 {
        let addr = guard.addr;
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return;
            };
            let bytes: &[u8] = match i % 5 {
                // A head that never ends.
                0 => b"GET / HTTP/1.1\r\nHost: x\r\n",
                // A body that never comes.
                1 => b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
                // Smuggling.
                2 => b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                // Nova cuts its answer.
                3 => b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n",
                // The client goes away mid-head.
                _ => b"GET /v2.1/ser",
            };
            let _ = s.write_all(bytes).await;
            if i % 5 == 4 {
                return;
            }
            let mut tmp = [0u8; 1024];
            while let Ok(Ok(n)) = tokio::time::timeout(BOUND, s.read(&mut tmp)).await {
                if n == 0 {
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut open = f64::NAN;
    for _ in 0..500 {
        let m = send_get(admin, "/metrics").await.text();
        open = metric(&m, "nova_guard_open_connections");
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0.0, "connections left open");
    // Still serving.
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
}

#[tokio::test]
async fn the_header_timeout_does_not_cut_an_exchange_waiting_for_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s")]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"GET /slow/3000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let a = tokio::time::timeout(BOUND, stream.answer()).await.unwrap();
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "300ms")]);
    let mut stream = Conn::open(guard.addr).await;
    assert!(stream.closed_by_peer().await, "silent connection kept");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_not_while_an_exchange_waits() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s")]);
    let stream = TcpStream::connect(guard.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    // Nova takes longer than the idle limit: the exchange is not cut.
    let req = http::Request::builder()
        .uri(format!("http://{}/slow/3000", guard.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(resp);
    // Then idle: closed by the proxy.
    let ended = tokio::time::timeout(BOUND, conn).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection kept");
}

#[tokio::test]
async fn a_silent_connection_over_the_limit_is_not_kept_either() {
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_MAX_CONNECTIONS", "1"),
            ("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s"),
        ],
    );
    // The one slot is busy for a while.
    let busy = tokio::spawn(send_get(guard.addr, "/slow/5000"));
    for _ in 0..1000 {
        if up.count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut silent = Conn::open(guard.addr).await;
    assert!(silent.closed_by_peer().await, "silent connection kept");
    assert_eq!(
        tokio::time::timeout(BOUND, busy)
            .await
            .unwrap()
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answer_is_disconnected() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_SEND_TIMEOUT", "300ms")]);
    let total: u64 = 200 * 1024 * 1024;
    let mut stream = TcpStream::connect(guard.addr).await.unwrap();
    stream
        .write_all(format!("GET /stream/{total} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Take nothing for a while: the socket buffers fill, then the proxy waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut got = 0u64;
    let mut tmp = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(BOUND, stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n as u64,
            Err(_) => panic!("left hanging"),
        }
    }
    assert!(got < total, "the whole answer was sent");
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["complete"], false);
}

#[tokio::test]
async fn a_nova_that_stalls_in_the_middle_of_its_answer_is_given_up_on() {
    let up = BadUpstream::start(Misbehaviour::StallMidResponse).await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "300ms")]);
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let got = stream
        .until_closed()
        .await
        .expect("the client was left hanging");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0123456789"), "{text}");
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["complete"], false);
    assert_eq!(events[0]["error"], "upstream_timeout");
    let cause = events[0]["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("response body"), "{cause}");
}
