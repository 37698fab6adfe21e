//! The life of the process and of a connection: SIGTERM and SIGINT drains,
//! the grace period, shutdown with hundreds of exchanges in flight, a client
//! that half-closes, and no connection leaked whatever the clients and Nova
//! do. The binary over real sockets.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    wait_until("Nova to have the three requests", || up.count() == 3).await;
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
    wait_until("Nova to have the request", || up.count() == 1).await;
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
    wait_until("Nova to have the request", || up.count() == 1).await;
    guard.signal("TERM");
    let status = guard.wait_exit(BOUND).await.expect("did not stop");
    assert_eq!(status.code(), Some(0));
    assert!(guard
        .events()
        .iter()
        .any(|e| e["message"] == "grace period over; closing the remaining connections"));
    stuck.abort();
}

/// The soft limit on open files, from /proc.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        return Some(u64::MAX);
    }
    soft.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_500_exchanges_in_flight_drains_them_all() {
    const N: usize = 500;
    // This process holds both ends' sockets: the clients' and the fake
    // Nova's (about 2 * N), nova-guard as many in its own process.
    let limit = open_files_limit().expect("cannot read /proc/self/limits");
    assert!(
        limit >= 2 * N as u64 + 200,
        "this test needs `ulimit -n` of at least {} (it is {limit}); raise it to run the test",
        2 * N + 200
    );
    let up = Upstream::start().await;
    let mut guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_SHUTDOWN_GRACE", "15s"),
            ("NOVA_GUARD_MAX_CONNECTIONS", "2000"),
        ],
    );
    let addr = guard.addr;
    // Nova holds each answer 1.5 s.
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            tokio::spawn(async move {
                let path = format!("/slow/1500/{i}");
                let mut s = TcpStream::connect(addr).await.unwrap();
                let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                s.write_all(req.as_bytes()).await.unwrap();
                (path, until_closed(&mut s).await)
            })
        })
        .collect();
    wait_until("Nova to have every request", || up.count() == N).await;
    guard.signal("TERM");
    let mut paths = HashSet::new();
    for t in tasks {
        let (path, got) = tokio::time::timeout(BOUND, t).await.unwrap().unwrap();
        let got = got.unwrap_or_else(|| panic!("{path}: left open"));
        let (a, whole) = first_answer(&got).unwrap_or_else(|| panic!("{path}: no answer"));
        assert_eq!(a.status, 200, "{path}");
        assert!(whole, "{path}: cut");
        assert_eq!(a.body, br#"{"slow": true}"#, "{path}");
        paths.insert(path);
    }
    let status = guard.wait_exit(BOUND).await.expect("did not exit");
    assert_eq!(status.code(), Some(0));
    let messages: Vec<Value> = guard
        .events()
        .into_iter()
        .map(|e| e["message"].clone())
        .collect();
    assert!(messages.contains(&Value::from("all connections closed")));
    assert!(!messages.contains(&Value::from(
        "grace period over; closing the remaining connections"
    )));
    let events = guard.exchanges();
    assert_eq!(events.len(), N);
    assert_request_ids_unique(&events);
    let per_path = lines_per_path(&events);
    assert_eq!(per_path.len(), N);
    for path in &paths {
        assert_eq!(per_path.get(path), Some(&1), "{path}");
        let e = line_of(&events, path);
        assert_eq!(e["status"], 200, "{path}");
        assert_eq!(e["complete"], true, "{path}");
    }
}

#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let (up, guard) = setup().await;
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(&put(SERVER, &[], br#"{"server": {"name": "a"}}"#))
        .await;
    stream.stream.shutdown().await.unwrap();
    let a = tokio::time::timeout(BOUND, stream.answer()).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn no_connection_is_leaked_whatever_the_clients_and_nova_do() {
    let up = BadUpstream::start(Misbehaviour::ResetMidResponse).await;
    let (guard, admin) = Guard::start_with_admin(
        &up.url(),
        &[
            ("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "300ms"),
            ("NOVA_GUARD_CLIENT_BODY_TIMEOUT", "300ms"),
        ],
    )
    .await;
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
        open = metric(&m, "nova_guard_open_connections").unwrap_or(0.0);
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0.0, "connections left open");
    // Still serving.
    assert_eq!(send_get(admin, "/healthz").await.status, 200);
}
