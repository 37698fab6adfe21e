//! What a client gets when Nova misbehaves: Nova down, stalling before or in
//! the middle of its answer, resetting, answering garbage or closing at
//! once, answering its own 5xx, slow but within the timeout, restarted under
//! load; and idle connections to Nova closed after the pool's idle timeout.
//! The binary in front of recording and misbehaving upstreams, over real
//! sockets.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn unreachable_nova_gets_a_nova_shaped_502() {
    // A port that was just free: nothing listens there.
    let guard = Guard::start(&format!("http://{}", free_port()), &[]);
    let a = raw(guard.addr, &put(SERVER, &[], br#"{"server": {}}"#)).await;
    assert_eq!(a.status, 502);
    assert_eq!(json(&a.body)["computeFault"]["code"], 502);
    assert_request_ids("the 502", &a);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "upstream_connect");
}

#[tokio::test]
async fn nova_faults_become_nova_shaped_502s_with_their_cause_logged() {
    let nothing = format!("http://{}", free_port());
    let garbage = BadUpstream::start(Misbehaviour::Garbage).await;
    let closing = BadUpstream::start(Misbehaviour::Close).await;
    let cases = [
        (nothing, "upstream_connect"),
        (garbage.url(), "upstream_protocol"),
        (closing.url(), "upstream_protocol"),
    ];
    for (url, kind) in cases {
        let guard = Guard::start(&url, &[]);
        let (a, _) = exchange(&guard, &put(SERVER, &[], br#"{"server": {"name": "a"}}"#)).await;
        assert_eq!(a.status, 502, "{url}: {}", a.text());
        assert_eq!(json(&a.body)["computeFault"]["code"], 502, "{url}");
        assert_request_ids(&url, &a);
        let events = guard.wait_exchanges(1).await;
        assert_eq!(events[0]["error"], kind, "{url}");
        let cause = events[0]["cause"].as_str().unwrap_or_default();
        assert!(
            cause.starts_with(kind) && cause.len() > kind.len(),
            "{url}: {cause}"
        );
        assert_eq!(
            events[0]["request_id"],
            a.header("x-openstack-request-id").unwrap(),
            "{url}"
        );
    }
    assert!(garbage.connections.load(Ordering::SeqCst) >= 1);
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
    assert_request_ids("the 504", &a);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "upstream_timeout");
    assert_eq!(
        events[0]["request_id"],
        a.header("x-openstack-request-id").unwrap()
    );
}

#[tokio::test]
async fn a_slow_nova_within_the_timeout_is_waited_for() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "10s")]);
    let a = send_get(guard.addr, "/slow/300").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.text(), r#"{"slow": true}"#);
}

/// `GET /v2.1/servers` on a fresh connection, kept alive; all nova-guard
/// sends on it until it closes it.
async fn get_until_closed(guard: &Guard) -> Vec<u8> {
    let mut stream = Conn::open(guard.addr).await;
    stream
        .send(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    stream
        .until_closed()
        .await
        .expect("the client was left hanging")
}

#[tokio::test]
async fn a_nova_that_stalls_in_the_middle_of_its_answer_is_given_up_on() {
    let up = BadUpstream::start(Misbehaviour::StallMidResponse).await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_UPSTREAM_TIMEOUT", "300ms")]);
    let got = get_until_closed(&guard).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("0123456789"), "{text}");
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["complete"], false);
    assert_eq!(events[0]["error"], "upstream_timeout");
    let cause = events[0]["cause"].as_str().unwrap_or_default();
    assert!(cause.contains("response body"), "{cause}");
}

#[tokio::test]
async fn a_reset_in_the_middle_of_nova_s_answer_cuts_the_client_s_answer() {
    let up = BadUpstream::start(Misbehaviour::ResetMidResponse).await;
    let guard = Guard::start(&up.url(), &[]);
    let got = get_until_closed(&guard).await;
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
    let a = raw(
        guard.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn nova_s_own_5xx_answers_pass_through_unchanged() {
    let (_up, guard) = setup().await;
    for code in [500u16, 503] {
        let a = send_get(guard.addr, &format!("/status/{code}")).await;
        assert_eq!(a.status, code);
        assert_eq!(
            a.text(),
            format!("{{\"computeFault\": {{\"code\": {code}, \"message\": \"from nova\"}}}}"),
            "{code}"
        );
        assert_eq!(
            a.header("x-openstack-request-id"),
            Some("req-11111111-1111-4111-8111-111111111111"),
            "{code}"
        );
    }
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["upstream_status"], 500);
    assert!(events[0]["error"].is_null());
}

/// What one client got for one request.
#[derive(Debug)]
struct Got {
    path: String,
    valid: bool,
    status: u16,
    body: Value,
    request_id: Option<String>,
}

/// `n` requests on one kept-alive connection (a new one after an answer
/// that closes it): a GET, a valid update or an invalid one, in turn.
async fn keep_alive_client(
    addr: SocketAddr,
    c: usize,
    n: usize,
    done: Arc<AtomicUsize>,
) -> Vec<Got> {
    let mut got = Vec::new();
    let mut conn: Option<Conn> = None;
    for r in 0..n {
        let (path, req, valid) = match (c + r) % 3 {
            0 => {
                let path = format!("{PROJECT}/flavors/c{c}-r{r}");
                (path.clone(), http("GET", &path, b"", false), true)
            }
            1 => {
                let path = server(&format!("c{c}-r{r}"));
                (path.clone(), http("PUT", &path, VALID_V6, false), true)
            }
            _ => {
                let path = server(&format!("c{c}-r{r}"));
                (path.clone(), http("PUT", &path, INVALID, false), false)
            }
        };
        if conn.is_none() {
            conn = Some(Conn::open(addr).await);
        }
        let s = conn.as_mut().unwrap();
        s.stream
            .write_all(&req)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let a = s
            .try_answer()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        if a.header("connection") == Some("close") {
            conn = None;
        }
        got.push(Got {
            path,
            valid,
            status: a.status,
            body: json(&a.body),
            request_id: a.header("x-openstack-request-id").map(str::to_owned),
        });
        done.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_restarted_under_load_gets_every_client_a_whole_answer() {
    const CLIENTS: usize = 20;
    const EACH: usize = 10;
    let first = Upstream::start().await;
    let addr = first.addr;
    let guard = Guard::start(&first.url(), &[]);
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(keep_alive_client(guard.addr, c, EACH, done.clone())))
        .collect();
    wait_until("the first answers", || done.load(Ordering::SeqCst) >= 50).await;
    first.stop().await;
    let at_stop = done.load(Ordering::SeqCst);
    wait_until("answers while Nova is down", || {
        done.load(Ordering::SeqCst) >= at_stop + 20
    })
    .await;
    let second = Upstream::start_on(addr).await;
    let mut got = Vec::new();
    for c in clients {
        got.extend(tokio::time::timeout(BOUND, c).await.unwrap().unwrap());
    }
    assert_eq!(got.len(), CLIENTS * EACH);

    // Every answer is whole and is Nova's, or a Nova-shaped 502.
    let mut faults = 0;
    for g in &got {
        match (g.valid, g.status) {
            (false, 400) => assert_eq!(g.body["badRequest"]["message"], INVALID_ANSWER, "{g:?}"),
            (true, 200) => assert_eq!(g.body["upstream"], true, "{g:?}"),
            (true, 502) => {
                faults += 1;
                assert_eq!(g.body["computeFault"]["code"], 502, "{g:?}");
            }
            _ => panic!("unexpected answer: {g:?}"),
        }
    }
    assert!(faults > 0, "no request met the outage");
    assert!(second.count() > 0, "no request reached the restarted Nova");

    // Nova got each forwarded request once, rewritten, and never a refused one.
    let mut at_nova: HashMap<String, usize> = HashMap::new();
    for s in first
        .seen
        .lock()
        .unwrap()
        .iter()
        .chain(second.seen.lock().unwrap().iter())
    {
        *at_nova.entry(s.uri.clone()).or_default() += 1;
        if s.method == "PUT" {
            assert_eq!(&s.body[..], REWRITTEN_V6, "{}", s.uri);
        }
    }
    for g in &got {
        let times = at_nova.get(&g.path).copied().unwrap_or(0);
        match g.status {
            200 => assert_eq!(times, 1, "{g:?}"),
            400 => assert_eq!(times, 0, "{g:?}"),
            // Sent before Nova went away, or not at all.
            _ => assert!(times <= 1, "{g:?}"),
        }
    }

    // One log line per exchange, with the status the client got.
    let events = guard.settled_exchanges(got.len()).await;
    assert_eq!(events.len(), got.len());
    assert_request_ids_unique(&events);
    for g in &got {
        let e = line_of(&events, &g.path);
        assert_eq!(e["status"], g.status, "{g:?}: {e}");
        if g.status == 502 {
            assert_eq!(e["request_id"].as_str(), g.request_id.as_deref(), "{g:?}");
            let error = e["error"].as_str().unwrap_or_default();
            assert!(
                error == "upstream_connect" || error == "upstream_protocol",
                "{e}"
            );
        }
    }
}

async fn two_requests_a_second_apart(guard: &Guard) {
    for _ in 0..2 {
        let a = send_get(guard.addr, "/v2.1/servers").await;
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
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);

    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_WORKERS", "1")]);
    two_requests_a_second_apart(&guard).await;
    assert_eq!(up.connections.load(Ordering::SeqCst), 1);
}
