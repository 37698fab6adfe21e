//! Limits and timeouts on what a client may send or hold: the head's bytes
//! and lines, the target's length, the body's size, a head or a body that
//! does not arrive in time (slowloris), idle and silent connections over
//! HTTP/1.1 and HTTP/2, a client that stops reading its answer, the
//! connection limit, requests per connection, and floods of oversized heads
//! from many connections. Time bounds here are generous ceilings, not claims
//! about speed.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    let mut many = String::from("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-H{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    let cases = [
        ("a 10 kB line, over the byte limit", big),
        ("20 lines, over the line limit", many),
    ];
    for (what, req) in &cases {
        let (a, closed) = exchange(&guard, req.as_bytes()).await;
        assert_eq!(a.status, 431, "{what}: {}", a.text());
        assert!(closed, "{what}: connection kept open");
    }
    // Within both limits: served.
    let mut fine = String::from("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for i in 0..7 {
        fine.push_str(&format!("X-H{i}: {}\r\n", "b".repeat(1000)));
    }
    fine.push_str("\r\n");
    assert_eq!(raw(guard.addr, fine.as_bytes()).await.status, 200);
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
    assert_request_ids("the 414", &a);
    let exact = format!("/v2.1/servers?name={}", "x".repeat(256 - 19));
    assert_eq!(exact.len(), 256);
    assert_eq!(send_get(guard.addr, &exact).await.status, 200);
    assert_eq!(up.count(), 1);
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["rule"], "maxUriBytes");
}

#[tokio::test]
async fn too_large_bodies_get_413_by_length_and_by_chunks() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MAX_BODY_BYTES", "1000")]);
    let expected = r#"{"overLimit": {"code": 413, "message": "Request is too large."}}"#;
    let big = format!(r#"{{"server": {{"name": "{}"}}}}"#, "a".repeat(1000));
    // Announcing a huge length is enough; nothing is read.
    let head = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n"
    );
    // Chunked: counted while reading.
    let mut chunked = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..3 {
        chunked.push_str(&format!("190\r\n{}\r\n", "a".repeat(400)));
    }
    chunked.push_str("0\r\n\r\n");
    let cases = [
        ("a body over the limit", put(SERVER, &[], big.as_bytes())),
        ("a huge Content-Length, no body", head.into_bytes()),
        ("chunks adding up over the limit", chunked.into_bytes()),
    ];
    for (what, req) in &cases {
        let a = raw(guard.addr, req).await;
        assert_eq!(a.status, 413, "{what}: {}", a.text());
        assert_eq!(a.text(), expected, "{what}");
        assert_request_ids(what, &a);
    }
    assert_eq!(up.count(), 0);

    // Within the limit, a chunked body is validated and forwarded with a length.
    let body = br#"{"server": {"name": "chunky"}}"#;
    let req = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        body.len(),
        std::str::from_utf8(body).unwrap()
    );
    let a = raw(guard.addr, req.as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.last();
    assert_eq!(&seen.body[..], &body[..]);
    assert_eq!(seen.headers["content-length"], body.len().to_string());
    assert!(seen.headers.get("transfer-encoding").is_none());
}

/// Many clients at once sending over-long targets, too many header lines,
/// too large a head or a head that is not HTTP: every one gets its 414, 431
/// or 400, Nova gets nothing, every refusal is logged once, and the next
/// ordinary request is served.
#[tokio::test]
async fn uri_and_header_floods_from_many_connections_reach_nothing() {
    const CLIENTS: usize = 160;
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_MAX_URI_BYTES", "1024"),
            ("NOVA_GUARD_MAX_HEADER_BYTES", "8192"),
        ],
    );
    let addr = guard.addr;
    let flood = |i: usize| -> (Vec<u8>, u16) {
        match i % 4 {
            0 => (
                format!(
                    "GET {}?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                    server(&format!("f{i}")),
                    "a".repeat(2000)
                )
                .into_bytes(),
                414,
            ),
            1 => {
                let lines: String = (0..150).map(|n| format!("X-Flood-{n}: {i}\r\n")).collect();
                (
                    format!("GET {} HTTP/1.1\r\nHost: x\r\n{lines}\r\n", server("f")).into_bytes(),
                    431,
                )
            }
            2 => (
                format!(
                    "PUT {} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\n{{}}",
                    server("f"),
                    "b".repeat(10_000)
                )
                .into_bytes(),
                431,
            ),
            _ => (
                format!(
                    "PUT {} HTTP/1.1\r\nHost: x\r\nNo Colon\r\n\r\n",
                    server("f")
                )
                .into_bytes(),
                400,
            ),
        }
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (bytes, want) = flood(i);
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await;
                conn.send(&bytes).await;
                let got = conn.answer().await.status;
                (got, want, conn.closed_by_peer().await)
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (got, want, closed) = tokio::time::timeout(BOUND, client)
            .await
            .unwrap_or_else(|_| panic!("client {i}: a flooding client hung"))
            .expect("client task");
        assert_eq!(got, want, "client {i}");
        assert!(
            closed,
            "client {i}: the connection stays open after a {got}"
        );
    }
    assert_eq!(up.count(), 0, "a flooding request reached Nova");

    let ok = raw(addr, &request("GET", &server("after"), &[], b"")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(up.count(), 1);

    let events = guard.settled_exchanges(CLIENTS + 1).await;
    let statuses = events.iter().fold(HashMap::new(), |mut m, e| {
        *m.entry(e["status"].as_u64().unwrap_or(0)).or_insert(0usize) += 1;
        m
    });
    assert_eq!(statuses.get(&414), Some(&(CLIENTS / 4)));
    assert_eq!(statuses.get(&431), Some(&(CLIENTS / 2)));
    assert_eq!(statuses.get(&400), Some(&(CLIENTS / 4)));
    assert_eq!(statuses.get(&200), Some(&1));
    // hyper answers an oversized or broken head itself, before a request id
    // exists.
    let (refused, answered): (Vec<Value>, Vec<Value>) = events
        .into_iter()
        .partition(|e| e["status"] == 431 || e["status"] == 400);
    for e in &refused {
        let rule = if e["status"] == 431 {
            "headTooLarge"
        } else {
            "malformedHead"
        };
        assert_eq!(e["rule"], rule, "{e}");
        assert_eq!(e["verdict"], "rejected", "{e}");
        assert!(
            e.get("request_id").is_none() && e.get("path").is_none(),
            "{e}"
        );
    }
    for e in answered.iter().filter(|e| e["status"] == 414) {
        assert_eq!(e["rule"], "maxUriBytes", "{e}");
    }
    assert_request_ids_unique(&answered);
}

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
    let a = send_get(guard.addr, "/v2.1/servers").await;
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
async fn an_idle_http2_connection_is_closed_but_not_while_an_exchange_waits() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s")]);
    let (mut send, conn) = h2_handshake(guard.addr).await;
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
    assert_request_ids("the 408", &a);
    assert_eq!(a.header("connection"), Some("close"));
    assert!(stream.closed_by_peer().await);
    assert_eq!(up.count(), 0);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["rule"], "clientBodyTimeout");
    assert_eq!(events[0]["error"], "client_body_timeout");
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
    assert_request_ids("the 408", &a);
    assert!(stream.closed_by_peer().await);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "client_body_timeout");
    // Nova got the head and the bytes that came, then an aborted body.
    wait_until("Nova to have the request", || up.count() == 1).await;
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
    assert_request_ids("the 503", &a);
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
    wait_until("Nova to have the request", || up.count() == 1).await;
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

/// A connection that waits, for its client's next request or for Nova's
/// answer, holds none of the buffers its exchanges used: many of them cost
/// a few KiB each, not the 16–32 KiB read and write buffers of a busy one.
#[tokio::test]
async fn waiting_connections_hold_no_buffers() {
    const EACH: usize = 150;
    let (up, guard) = setup().await;
    assert_eq!(send_get(guard.addr, "/stream/20000").await.status, 200);
    let before = guard.vm_rss_kib();
    let mut idle = Vec::new();
    for _ in 0..EACH {
        let mut c = Conn::open(guard.addr).await;
        c.send(b"GET /stream/20000 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        assert_eq!(c.answer().await.status, 200);
        idle.push(c);
    }
    let mut waiting = Vec::new();
    for _ in 0..EACH {
        let mut c = Conn::open(guard.addr).await;
        c.send(b"GET /slow/30000 HTTP/1.1\r\nHost: x\r\n\r\n").await;
        waiting.push(c);
    }
    wait_until("the slow requests at Nova", || up.count() == 2 * EACH + 1).await;
    let grown = guard.vm_rss_kib().saturating_sub(before);
    let per_connection = grown / (2 * EACH) as u64;
    assert!(
        per_connection < 16,
        "{grown} KiB more resident for {} waiting connections ({per_connection} KiB each)",
        2 * EACH
    );
}
