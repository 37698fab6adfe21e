//! What an operator reads: the start-up line, the fields that correlate an
//! exchange with the client's and Nova's logs, how a client that gives up is
//! logged, and a log reader that stalls costing lines, never proxying. The
//! binary on real sockets.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{put, raw, request, BadUpstream, Conn, Guard, Misbehaviour, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SERVER: &str = "/v2.1/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";

#[tokio::test]
async fn the_start_up_line_says_version_commit_and_mode() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MODE", "report")]);
    let line = guard.wait_event("listening").await.unwrap();
    assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        line["commit"].as_str().is_some_and(|c| !c.is_empty()),
        "{line}"
    );
    assert_eq!(line["mode"], "report");
}

#[tokio::test]
async fn an_exchange_carries_what_correlates_it() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let theirs = "req-11111111-2222-4333-8444-555555555555";
    let a = raw(
        guard.addr,
        &put(
            SERVER,
            &[
                ("X-OpenStack-Request-ID", theirs),
                ("User-Agent", "openstacksdk/4.1.0"),
                (
                    "traceparent",
                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                ),
            ],
            br#"{"server": {"name": "a"}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    let e = &guard.wait_exchanges(1).await[0];
    assert_eq!(e["global_request_id"], theirs);
    assert_eq!(e["user_agent"], "openstacksdk/4.1.0");
    assert_eq!(e["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(e["protocol"], "HTTP/1.1");
    assert!(e["upstream_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{e}");
    assert_eq!(
        e["upstream_request_id"],
        "req-00000000-0000-4000-8000-000000000000"
    );

    // Without an id of its own, Nova gets nova-guard's: its log lines then
    // carry the id nova-guard logged.
    let a = raw(guard.addr, &request("GET", "/v2.1/flavors", &[], b"")).await;
    assert_eq!(a.status, 200);
    let e = &guard.wait_exchanges(2).await[1];
    let ours = e["request_id"].as_str().unwrap();
    assert_eq!(
        up.last().headers["x-openstack-request-id"],
        ours,
        "Nova did not get the id nova-guard logged"
    );
    assert!(e.get("global_request_id").is_none(), "{e}");
}

#[tokio::test]
async fn a_client_that_gives_up_is_logged_499_and_nova_s_request_cancelled() {
    // Nova that never answers: the client resets after a while.
    let nova = BadUpstream::start(Misbehaviour::Stall).await;
    let guard = Guard::start(&nova.url(), &[]);
    let mut s = TcpStream::connect(guard.addr).await.unwrap();
    s.write_all(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Until Nova has the request.
    for _ in 0..400 {
        if nova.connections.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    common::reset(s);
    let e = &guard.wait_exchanges(1).await[0];
    assert_eq!(e["status"], 499, "{e}");
    assert_eq!(e["complete"], false);
    assert_eq!(e["hung_up"], "client");
    assert_eq!(e["error"], "client_gone");
    // Logged long before Nova's 120 s: the request to it was dropped.
    assert!(e.get("upstream_status").is_none(), "{e}");
}

#[tokio::test]
async fn a_log_reader_that_stalls_costs_lines_never_answers() {
    let up = Upstream::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let admin_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // stdout is a pipe nobody reads: it fills, and stays full.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("NOVA_GUARD_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("NOVA_GUARD_UPSTREAM", up.url())
        .env("NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let admin: std::net::SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
    let mut conn = None;
    for _ in 0..400 {
        if let Ok(s) = TcpStream::connect(addr).await {
            conn = Some(Conn::new(s));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut conn = conn.expect("nova-guard did not listen");
    // More exchanges than the log queue holds, each answered.
    for i in 0..10_000 {
        conn.send(b"GET /v2.1/flavors HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let a = tokio::time::timeout(Duration::from_secs(20), conn.answer())
            .await
            .unwrap_or_else(|_| {
                panic!("request {i} was not answered: proxying waited for the log")
            });
        assert_eq!(a.status, 200);
    }
    let m = raw(
        admin,
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await
    .text();
    let dropped: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("nova_guard_log_lines_dropped_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no dropped-lines counter in\n{m}"));
    assert!(dropped > 0.0, "{m}");
    let _ = child.kill();
    let _ = child.wait();
}
