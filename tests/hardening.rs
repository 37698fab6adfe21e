//! Black-box tests of the production hardening, over real sockets: request
//! smuggling, timeouts, upstream faults, graceful shutdown, limits and the
//! admin listener. Time bounds here are generous ceilings, not claims about
//! speed.

mod common;

use std::time::Duration;

use common::{read_answer, Answer, Guard, Upstream};
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

/// Whether the peer closes the connection (EOF or reset) within `BOUND`,
/// reading and discarding anything it still sends.
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut tmp = [0u8; 4096];
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Send bytes on a fresh connection; read one answer; tell whether the
/// connection was then closed.
async fn exchange(guard: &Guard, request: &[u8]) -> (Answer, bool) {
    let mut stream = TcpStream::connect(guard.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let answer = tokio::time::timeout(BOUND, read_answer(&mut stream))
        .await
        .expect("an answer");
    let closed = closed_by_peer(&mut stream).await;
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
    let mut stream = TcpStream::connect(guard.addr).await.unwrap();
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
        stream.write_all(&[*b]).await.unwrap();
    }
    let a = tokio::time::timeout(BOUND, read_answer(&mut stream))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    stream
        .write_all(format!("{}{}", requests[1], requests[2]).as_bytes())
        .await
        .unwrap();
    for _ in 0..2 {
        let a = tokio::time::timeout(BOUND, read_answer(&mut stream))
            .await
            .unwrap();
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
