//! What an operator reads: the start-up line, one access-log line per
//! exchange whatever Nova or the client does, without tokens or bodies, the
//! fields that correlate an exchange with the client's and Nova's logs, the
//! client as logged behind a trusted proxy, how a client that gives up or
//! whose streamed body breaks off is logged, and a log reader that stalls
//! costing lines, never proxying. The binary on real sockets.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    let (up, guard) = setup().await;
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
    wait_until("Nova to have the request", || {
        nova.connections.load(Ordering::SeqCst) > 0
    })
    .await;
    reset(s);
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
    let addr = free_port();
    let admin = free_port();
    // stdout is a pipe nobody reads: it fills, and stays full.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_LISTEN", addr.to_string())
        .env("NOVA_GUARD_ADMIN_LISTEN", admin.to_string())
        .env("NOVA_GUARD_UPSTREAM", up.url())
        .env("NOVA_GUARD_MAX_REQUESTS_PER_CONNECTION", "100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
    let m = send_get(admin, "/metrics").await.text();
    let dropped = metric(&m, "nova_guard_log_lines_dropped_total")
        .unwrap_or_else(|| panic!("no dropped-lines counter in\n{m}"));
    assert!(dropped > 0.0, "{m}");
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn every_exchange_is_logged_once_without_tokens_or_bodies() {
    let (_up, guard) = setup().await;
    let secret_body = br#"{"server": {"name": "sekrit-name-value"}}"#;
    raw(
        guard.addr,
        &put(SERVER, &[("X-Auth-Token", "tok-sekrit")], secret_body),
    )
    .await;
    raw(
        guard.addr,
        &put(
            SERVER,
            &[("X-Auth-Token", "tok-sekrit")],
            br#"{"server": {"name": " sekrit-name-value"}}"#,
        ),
    )
    .await;
    raw(guard.addr, b"GET /v2.1/servers?token=x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-sekrit\r\nConnection: close\r\n\r\n").await;
    let events = guard.wait_exchanges(3).await;
    assert_eq!(events.len(), 3, "{events:?}");
    for line in guard.logs.lock().unwrap().iter() {
        assert!(!line.contains("sekrit"), "secret in log line {line}");
    }
    let (fwd, rej, pass) = (&events[0], &events[1], &events[2]);
    assert_eq!(fwd["verdict"], "forwarded");
    assert_eq!(fwd["mode"], "v2.1");
    assert_eq!(fwd["microversion"], "2.1");
    assert_eq!(fwd["upstream_status"], 200);
    assert_eq!(
        fwd["upstream_request_id"],
        "req-00000000-0000-4000-8000-000000000000"
    );
    assert_eq!(fwd["bytes_in"], secret_body.len());
    assert!(fwd["duration_ms"].as_f64().is_some());
    assert!(fwd["request_id"].as_str().unwrap().starts_with("req-"));
    assert_eq!(rej["verdict"], "rejected");
    assert_eq!(rej["status"], 400);
    assert_eq!(rej["field"], "name");
    assert_eq!(rej["rule"], "format");
    assert!(rej.get("upstream_status").is_none());
    assert_eq!(pass["verdict"], "passthrough");
    assert_eq!(pass["path"], "/v2.1/servers");
    assert!(pass["bytes_out"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_client_request_id_reaches_nova_and_ours_is_logged() {
    let (up, guard) = setup().await;
    let theirs = "req-11111111-2222-4333-8444-555555555555";
    let a = raw(
        guard.addr,
        &put(
            SERVER,
            &[("X-OpenStack-Request-ID", theirs)],
            br#"{"server": {}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(up.last().headers["x-openstack-request-id"], theirs);
    let a = raw(
        guard.addr,
        &put(SERVER, &[], br#"{"server": {"name": ""}}"#),
    )
    .await;
    let ours = a.header("x-openstack-request-id").unwrap().to_owned();
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[1]["request_id"], ours.as_str());
}

#[tokio::test]
async fn the_logged_client_comes_from_x_forwarded_for_only_behind_a_trusted_proxy() {
    let up = Upstream::start().await;
    let req = b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, 127.0.0.9\r\nConnection: close\r\n\r\n";
    let trusting = Guard::start(&up.url(), &[("NOVA_GUARD_TRUSTED_PROXIES", "127.0.0.0/8")]);
    assert_eq!(raw(trusting.addr, req).await.status, 200);
    let e = trusting.wait_exchanges(1).await;
    assert_eq!(e[0]["client"], "203.0.113.7");
    assert_eq!(
        up.last().headers["x-forwarded-for"],
        "203.0.113.7, 127.0.0.9, 127.0.0.1"
    );
    let wary = Guard::start(&up.url(), &[]);
    assert_eq!(raw(wary.addr, req).await.status, 200);
    let e = wary.wait_exchanges(1).await;
    assert_eq!(e[0]["client"], "127.0.0.1");
    assert_eq!(up.last().headers["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_is_logged_once_whatever_nova_does() {
    use Misbehaviour::*;
    // (misbehaviour, the client's status, whether its answer is whole, the logged error)
    let cases = [
        (Stall, 504, true, "upstream_timeout"),
        (Garbage, 502, true, "upstream_protocol"),
        (Close, 502, true, "upstream_protocol"),
        (ResetMidResponse, 200, false, "upstream_protocol"),
        (StallMidResponse, 200, false, "upstream_timeout"),
    ];
    for (how, status, whole, error) in cases {
        let up = BadUpstream::start(how).await;
        let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "500ms")]);
        let mut requests = Vec::new();
        for i in 0..3 {
            let get = format!("{PROJECT}/flavors/{how:?}-{i}");
            requests.push((get.clone(), http("GET", &get, b"", true)));
            let put = server(&format!("{how:?}-{i}"));
            requests.push((put.clone(), http("PUT", &put, VALID_V6, true)));
        }
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|(path, req)| {
                let addr = guard.addr;
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    s.write_all(&req).await.unwrap();
                    (path, until_closed(&mut s).await)
                })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            let (path, bytes) = tokio::time::timeout(BOUND, t).await.unwrap().unwrap();
            let bytes = bytes.unwrap_or_else(|| panic!("{path}: left open"));
            let (a, cut_or_whole) =
                first_answer(&bytes).unwrap_or_else(|| panic!("{path}: no answer"));
            assert_eq!(a.status, status, "{how:?} {path}");
            assert_eq!(cut_or_whole, whole, "{how:?} {path}");
            got.push((path, a, cut_or_whole));
        }
        let events = guard.settled_exchanges(got.len()).await;
        assert_eq!(events.len(), got.len(), "{how:?}: {events:#?}");
        assert_request_ids_unique(&events);
        for (path, a, whole) in &got {
            let e = line_of(&events, path);
            assert_eq!(e["status"], a.status, "{how:?}: {e}");
            assert_eq!(e["complete"], *whole, "{how:?}: {e}");
            assert_eq!(e["error"], error, "{how:?}: {e}");
        }
    }
}

/// Drop a connection with a reset rather than a FIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exchange_is_logged_once_whatever_the_client_does() {
    let (up, guard) = setup().await;
    let addr = guard.addr;
    // (path, what the client sends, how it leaves: after how many bytes of
    // the answer, by a reset or a FIN)
    struct Case {
        path: String,
        bytes: Vec<u8>,
        read: usize,
        rst: bool,
        reaches_nova: bool,
    }
    let mut cases = Vec::new();
    for rst in [false, true] {
        let tag = if rst { "rst" } else { "fin" };
        // Mid-body, on a validated update: never reaches Nova.
        let path = server(&format!("mid-body-{tag}"));
        let mut bytes = http("PUT", &path, VALID_V6, true);
        bytes.truncate(bytes.len() - 20);
        cases.push(Case {
            path,
            bytes,
            read: 0,
            rst,
            reaches_nova: false,
        });
        // Mid-body, on a streamed pass-through request.
        let path = format!("{PROJECT}/os-keypairs/mid-body-{tag}");
        let mut bytes = http("POST", &path, &vec![b'z'; 100_000], true);
        bytes.truncate(bytes.len() - 50_000);
        cases.push(Case {
            path,
            bytes,
            read: 0,
            rst,
            reaches_nova: true,
        });
        // Before Nova's answer.
        let path = format!("/slow/700/before-answer-{tag}");
        cases.push(Case {
            bytes: http("GET", &path, b"", true),
            path,
            read: 0,
            rst,
            reaches_nova: true,
        });
        // In the middle of a long answer.
        let path = format!("/stream/50000000/mid-answer-{tag}");
        cases.push(Case {
            bytes: http("GET", &path, b"", true),
            path,
            read: 100_000,
            rst,
            reaches_nova: true,
        });
    }
    let tasks: Vec<_> = cases
        .iter()
        .map(|c| {
            let bytes = c.bytes.clone();
            let (read, rst) = (c.read, c.rst);
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(&bytes).await.unwrap();
                // Let the request (or its beginning) be taken.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut taken = 0;
                let mut tmp = vec![0u8; 65536];
                while taken < read {
                    match tokio::time::timeout(BOUND, s.read(&mut tmp)).await {
                        Ok(Ok(n)) if n > 0 => taken += n,
                        other => panic!("the answer stopped: {other:?}"),
                    }
                }
                if rst {
                    reset(s);
                } else {
                    drop(s);
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(BOUND, t).await.unwrap().unwrap();
    }
    let events = guard.settled_exchanges(cases.len()).await;
    let per_path = lines_per_path(&events);
    for c in &cases {
        assert_eq!(per_path.get(&c.path), Some(&1), "{}: {events:#?}", c.path);
    }
    assert_eq!(events.len(), cases.len());
    assert_request_ids_unique(&events);
    let at_nova = |path: &str| up.seen.lock().unwrap().iter().any(|s| s.uri == path);
    for c in &cases {
        let e = line_of(&events, &c.path);
        assert_eq!(at_nova(&c.path), c.reaches_nova, "{e}");
        if !c.reaches_nova {
            // Nova never saw it; the client was answered (into the void).
            assert_eq!(e["verdict"], "rejected", "{e}");
            assert_eq!(e["rule"], "clientBody", "{e}");
            assert_eq!(e["error"], "client_body", "{e}");
            assert_eq!(e["status"], 400, "{e}");
        } else if c.path.contains("/os-keypairs/") {
            // A streamed body that broke off: the client's fault, not Nova's.
            assert_eq!(e["verdict"], "passthrough", "{e}");
            assert_eq!(e["error"], "client_body", "{e}");
            assert_eq!(e["status"], 400, "{e}");
        } else if c.read > 0 {
            // Cut in the middle of Nova's answer.
            assert_eq!(e["status"], 200, "{e}");
            assert_eq!(e["complete"], false, "{e}");
            assert!(e["bytes_out"].as_u64().unwrap() < 50_000_000, "{e}");
        } else if c.path.starts_with("/slow/") {
            // The client left before Nova's answer: logged as nginx logs it
            // (499), and a reset cancels the request to Nova at once.
            assert_eq!(e["status"], 499, "{e}");
            assert_eq!(e["hung_up"], "client", "{e}");
            assert_eq!(e["complete"], false, "{e}");
            if c.rst {
                assert!(e.get("upstream_status").is_none(), "{e}");
            } else {
                assert_eq!(e["upstream_status"], 200, "{e}");
            }
        }
    }
}

#[tokio::test]
async fn a_streamed_body_that_breaks_off_is_the_client_s_fault_not_nova_s() {
    let up = Upstream::start().await;
    let (guard, admin) = Guard::start_with_admin(&up.url(), &[]).await;
    // A pass-through request, streamed to Nova, whose chunked body turns
    // malformed after its first chunk; the client stays to read the answer.
    let path = format!("{PROJECT}/os-keypairs/broken");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\n"
    );
    let mut stream = TcpStream::connect(guard.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // Once the request is on its way to Nova, its body breaks.
    wait_until("the request to be streamed to Nova", || {
        up.connections.load(Ordering::SeqCst) == 1
    })
    .await;
    stream
        .write_all(b"zz\r\n1\r\n}\r\n0\r\n\r\n")
        .await
        .unwrap();
    let got = until_closed(&mut stream)
        .await
        .expect("connection left open");
    let (a, _) = first_answer(&got).expect("no answer");
    assert_eq!(a.status, 400, "{:?}", String::from_utf8_lossy(&got));
    assert_eq!(
        json(&a.body),
        json(br#"{"badRequest": {"code": 400, "message": "Malformed request body"}}"#)
    );
    assert_eq!(a.header("connection"), Some("close"));
    assert!(a.header("x-openstack-request-id").is_some());
    let events = guard.settled_exchanges(1).await;
    assert_eq!(events.len(), 1);
    let e = line_of(&events, &path);
    assert_eq!(e["status"], 400);
    assert_eq!(e["error"], "client_body");
    assert_eq!(e["request_id"].as_str(), a.header("x-openstack-request-id"));
    // Not counted against Nova.
    let metrics = send_get(admin, "/metrics").await.text();
    assert!(
        !metrics.contains("nova_guard_upstream_errors_total{"),
        "{metrics}"
    );
}
