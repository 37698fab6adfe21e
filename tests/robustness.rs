//! Black-box robustness tests over real sockets: chunk extensions on
//! validated bodies, pipelines mixing validated and pass-through requests,
//! a Nova restarted under load, SIGTERM with hundreds of exchanges in
//! flight, and one access-log line per exchange whatever Nova or the client
//! does. Every wait is bounded; the bounds are hang guards, not claims about
//! speed.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{first_answer, until_closed, BadUpstream, Conn, Guard, Misbehaviour, Upstream};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const PROJECT: &str = "/v2.1/deadbeef";
/// Far longer than anything here should take; only a hang reaches it.
const BOUND: Duration = Duration::from_secs(20);
/// A valid update whose `accessIPv6` nova-guard rewrites, and the rewrite.
const VALID_V6: &[u8] = br#"{"server":{"accessIPv6":"2001:0DB8:0:0:0:0:0:1","name":"x"}}"#;
const REWRITTEN_V6: &[u8] = br#"{"server":{"accessIPv6":"2001:db8::1","name":"x"}}"#;
/// An update Nova refuses (`name` too short).
const INVALID: &[u8] = br#"{"server": {"name": ""}}"#;
const INVALID_ANSWER: &str =
    "Invalid input for field/attribute name. Value: . '' should be non-empty";

fn server(id: &str) -> String {
    format!("{PROJECT}/servers/{id}")
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

/// A request as `common::request` builds it, kept alive unless `close`.
fn http(method: &str, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let bytes = common::request(method, path, &[], body);
    if close {
        return bytes;
    }
    let at = bytes
        .windows(19)
        .position(|w| w == b"Connection: close\r\n")
        .unwrap();
    [&bytes[..at], &bytes[at + 19..]].concat()
}

/// A chunk: the extension on its size line, and its data.
type Chunk<'a> = (&'a str, &'a [u8]);

/// A request as Nova should get it: method, path, body.
type AtNova = (&'static str, String, Vec<u8>);

/// A chunked PUT: each data chunk's size line carries its extension; the
/// last (zero) chunk carries `last_ext`.
fn chunked_put(path: &str, chunks: &[Chunk], last_ext: &str, close: bool) -> Vec<u8> {
    let close = if close { "Connection: close\r\n" } else { "" };
    let mut r = format!(
        "PUT {path} HTTP/1.1\r\nHost: nova.example:8774\r\nX-Auth-Token: user:deadbeef\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n{close}\r\n"
    )
    .into_bytes();
    for (ext, data) in chunks {
        r.extend_from_slice(format!("{:x}{ext}\r\n", data.len()).as_bytes());
        r.extend_from_slice(data);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(format!("0{last_ext}\r\n\r\n").as_bytes());
    r
}

/// Wait (bounded) until at least `n` exchanges are logged, then a little
/// longer, so that a late duplicate would show too.
async fn settled_exchanges(guard: &Guard, n: usize) -> Vec<Value> {
    let until = Instant::now() + BOUND;
    while guard.exchanges().len() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    guard.exchanges()
}

/// How many access-log lines each path has.
fn lines_per_path(events: &[Value]) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for e in events {
        *map.entry(e["path"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    map
}

/// The one access-log line of `path`.
fn line_of<'a>(events: &'a [Value], path: &str) -> &'a Value {
    let lines: Vec<&Value> = events.iter().filter(|e| e["path"] == path).collect();
    assert_eq!(lines.len(), 1, "{path}: {lines:#?}");
    lines[0]
}

/// Request ids are nova-guard's own, one per exchange.
fn assert_request_ids_unique(events: &[Value]) {
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["request_id"].as_str().expect("request_id"))
        .collect();
    assert_eq!(ids.len(), events.len(), "a request id logged twice");
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

// ---------------------------------------------------------------------------
// 0. The harness's reader

#[tokio::test]
async fn the_reader_keeps_every_answer_that_arrives_in_one_segment() {
    // Four answers in one write: by length, without a body (204), chunked,
    // and until the peer closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\
              HTTP/1.1 204 No Content\r\n\r\n\
              HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;x=y\r\nb\r\n2\r\ncd\r\n0\r\n\r\n\
              HTTP/1.1 200 OK\r\n\r\nthe rest",
        )
        .await
        .unwrap();
    });
    let mut conn = Conn::open(addr).await;
    let answers = [
        (200, &b"a"[..]),
        (204, b""),
        (200, b"bcd"),
        (200, b"the rest"),
    ];
    for (status, body) in answers {
        let a = conn.answer().await;
        assert_eq!((a.status, &a.body[..]), (status, body), "{}", a.text());
    }
    assert!(conn.closed_quietly().await);
}

// ---------------------------------------------------------------------------
// 1. Chunk extensions on a validated PUT

#[tokio::test]
async fn chunk_extensions_are_ignored_and_the_body_still_validated() {
    // hyper ignores what an extension says, well-formed or not (RFC 9112
    // 7.1.1: unrecognised extensions are ignored); nova-guard reads the
    // whole body and sends it to Nova by length, so no extension byte ever
    // reaches Nova, whatever the client wrote there.
    let up = Upstream::start().await;
    // The head limit does not bound a chunk line: hyper's own limit does
    // (16 KiB of extensions per body).
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MAX_HEADER_BYTES", "8192")]);
    let twelve_kib = format!(";x={}", "a".repeat(12 * 1024));
    let cases: &[(&str, [&str; 3])] = &[
        ("token=token", [";a=b", ";a=b", ";a=b"]),
        ("quoted value", [";a=\"q\"", ";a=\"q;r\"", ";a=\"\""]),
        ("several, with spaces", [" ; a = b ; c", "\t;a;b=c", ""]),
        ("bare ;", [";", ";", ";"]),
        ("control characters", [";a=\x01\x7f", ";\x00", ";\x1b[0m"]),
        ("unterminated quote", [";a=\"q", ";a=\"", ";\""]),
        (
            "12 KiB on one line, over the head limit",
            [twelve_kib.as_str(), "", ""],
        ),
    ];
    let (first, second) = VALID_V6.split_at(17);
    for (i, (what, [e1, e2, last])) in cases.iter().enumerate() {
        let good = server(&format!("ext-good-{i}"));
        let bad = server(&format!("ext-bad-{i}"));
        let mut bytes = chunked_put(&good, &[(e1, first), (e2, second)], last, false);
        // The same extensions around a body Nova refuses.
        bytes.extend(chunked_put(&bad, &[(e1, INVALID)], last, true));
        let before = up.count();
        let mut conn = Conn::open(guard.addr).await;
        conn.send(&bytes).await;

        let a = conn
            .try_answer()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.status, 200, "{what}: {}", a.text());
        assert_eq!(up.count(), before + 1, "{what}");
        let seen = up.last();
        assert_eq!(seen.uri, good, "{what}");
        assert_eq!(&seen.body[..], REWRITTEN_V6, "{what}: the body Nova got");
        assert_eq!(
            seen.headers["content-length"],
            REWRITTEN_V6.len().to_string().as_str(),
            "{what}"
        );
        assert!(seen.headers.get("transfer-encoding").is_none(), "{what}");

        let a = conn
            .try_answer()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(a.status, 400, "{what}: {}", a.text());
        assert_eq!(json(&a.body)["badRequest"]["message"], INVALID_ANSWER);
        assert_eq!(
            up.count(),
            before + 1,
            "{what}: the refused body reached Nova"
        );
        assert!(conn.closed_quietly().await, "{what}");
    }
    let events = settled_exchanges(&guard, 2 * cases.len()).await;
    assert_eq!(events.len(), 2 * cases.len());
    for i in 0..cases.len() {
        let e = line_of(&events, &server(&format!("ext-good-{i}")));
        assert_eq!(e["verdict"], "forwarded");
        assert_eq!(e["ipv6_rewritten"], true);
        assert_eq!(e["bytes_in"], VALID_V6.len());
        let e = line_of(&events, &server(&format!("ext-bad-{i}")));
        assert_eq!(e["verdict"], "rejected");
        assert_eq!(e["field"], "name");
    }
}

#[tokio::test]
async fn chunk_extensions_hyper_refuses_get_400_and_nothing_reaches_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    let kib = |n: usize| format!(";x={}", "a".repeat(n * 1024));
    let (k6, k16, k64) = (kib(6), kib(16), kib(64));
    let (first, rest) = VALID_V6.split_at(10);
    let (second, third) = rest.split_at(10);
    let cases: Vec<(&str, Vec<Chunk>, &str)> = vec![
        ("bare LF in an extension", vec![(";a\nb", VALID_V6)], ""),
        ("CR not followed by LF", vec![(";a\rb", VALID_V6)], ""),
        ("NUL then bare LF", vec![(";a=\x00\n", VALID_V6)], ""),
        ("one 16 KiB extension", vec![(k16.as_str(), VALID_V6)], ""),
        (
            "64 KiB of extension on one line",
            vec![(k64.as_str(), VALID_V6)],
            "",
        ),
        (
            "over 16 KiB of extensions across chunks (hyper counts them per body)",
            vec![
                (k6.as_str(), first),
                (k6.as_str(), second),
                (k6.as_str(), third),
            ],
            "",
        ),
        (
            "16 KiB on the last chunk",
            vec![("", VALID_V6)],
            k16.as_str(),
        ),
    ];
    for (i, (what, chunks, last)) in cases.iter().enumerate() {
        let path = server(&format!("ext-refused-{i}"));
        let mut bytes = chunked_put(&path, chunks, last, false);
        // A request after it, which must not be taken from the same stream.
        bytes.extend_from_slice(b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut stream = TcpStream::connect(guard.addr).await.unwrap();
        // nova-guard may close before it has read everything.
        let _ = stream.write_all(&bytes).await;
        let got = until_closed(&mut stream)
            .await
            .unwrap_or_else(|| panic!("{what}: connection left open"));
        let (a, _) = first_answer(&got).unwrap_or_else(|| panic!("{what}: no answer"));
        assert_eq!(a.status, 400, "{what}: {:?}", String::from_utf8_lossy(&got));
        // Refused by the wire watcher before the request is taken (framing),
        // or by hyper while its body is read (body).
        let message = json(&a.body)["badRequest"]["message"].clone();
        assert!(
            message == "Malformed request body" || message == "Malformed request framing",
            "{what}: {message}"
        );
        assert_eq!(a.header("connection"), Some("close"), "{what}");
        // Exactly one answer: the GET after it was never served.
        assert_eq!(
            got.windows(9).filter(|w| w == b"HTTP/1.1 ").count(),
            1,
            "{what}"
        );
        assert_eq!(up.count(), 0, "{what}: Nova got a request");
    }
    let events = settled_exchanges(&guard, cases.len()).await;
    assert_eq!(events.len(), cases.len());
    for i in 0..cases.len() {
        let e = line_of(&events, &server(&format!("ext-refused-{i}")));
        assert_eq!(e["verdict"], "rejected");
        assert_eq!(e["status"], 400);
        assert!(e["rule"] == "clientBody" || e["rule"] == "bad_chunk", "{e}");
    }
    assert_eq!(up.count(), 0);
}

// ---------------------------------------------------------------------------
// 2. Pipelines mixing validated and pass-through requests

#[tokio::test]
async fn pipelines_mixing_validated_and_passthrough_requests_keep_order() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    for (round, how) in ["one write", "byte by byte", "two bytes at a time"]
        .iter()
        .enumerate()
    {
        let p = |s: &str| format!("{PROJECT}/{s}-{round}");
        let (first, second) = VALID_V6.split_at(30);
        // (request, status, what Nova gets: method, path, body)
        let steps: Vec<(Vec<u8>, u16, Option<AtNova>)> = vec![
            (
                http("GET", &p("flavors/get"), b"", false),
                200,
                Some(("GET", p("flavors/get"), Vec::new())),
            ),
            (
                http("PUT", &p("servers/valid"), VALID_V6, false),
                200,
                Some(("PUT", p("servers/valid"), REWRITTEN_V6.to_vec())),
            ),
            (
                http("PUT", &p("servers/invalid"), INVALID, false),
                400,
                None,
            ),
            (
                chunked_put(
                    &p("servers/chunked"),
                    &[(";a=b", first), ("", second)],
                    "",
                    false,
                ),
                200,
                Some(("PUT", p("servers/chunked"), REWRITTEN_V6.to_vec())),
            ),
            (
                chunked_put(&p("servers/chunked-invalid"), &[("", INVALID)], "", false),
                400,
                None,
            ),
            (
                http(
                    "POST",
                    &p("os-keypairs"),
                    br#"{"keypair": {"name": ""}}"#,
                    false,
                ),
                200,
                Some((
                    "POST",
                    p("os-keypairs"),
                    br#"{"keypair": {"name": ""}}"#.to_vec(),
                )),
            ),
            // Not an update: the same refused body goes to Nova unchanged.
            (
                http("PUT", &p("servers/x/metadata/k"), INVALID, false),
                200,
                Some(("PUT", p("servers/x/metadata/k"), INVALID.to_vec())),
            ),
            (
                http("PUT", &p("flavors/other"), VALID_V6, false),
                200,
                Some(("PUT", p("flavors/other"), VALID_V6.to_vec())),
            ),
            (
                http("GET", &p("servers/valid"), b"", true),
                200,
                Some(("GET", p("servers/valid"), Vec::new())),
            ),
        ];
        let bytes: Vec<u8> = steps.iter().flat_map(|s| s.0.clone()).collect();
        let before = up.count();
        let logged_before = guard.exchanges().len();
        let mut conn = Conn::open(guard.addr).await;
        match round {
            0 => conn.send(&bytes).await,
            _ => {
                for piece in bytes.chunks(round) {
                    conn.send(piece).await;
                }
            }
        }
        for (i, (_, status, nova)) in steps.iter().enumerate() {
            let a = conn.answer().await;
            assert_eq!(a.status, *status, "{how}, answer {i}: {}", a.text());
            match nova {
                // Nova's answer says how many body bytes it got.
                Some((_, _, body)) => assert_eq!(
                    json(&a.body),
                    serde_json::json!({"upstream": true, "received": body.len()}),
                    "{how}, answer {i}"
                ),
                None => assert_eq!(
                    json(&a.body)["badRequest"]["message"],
                    INVALID_ANSWER,
                    "{how}, answer {i}"
                ),
            }
        }
        assert!(conn.closed_quietly().await, "{how}");

        let seen: Vec<(String, String, Vec<u8>)> = up.seen.lock().unwrap()[before..]
            .iter()
            .map(|s| (s.method.clone(), s.uri.clone(), s.body.to_vec()))
            .collect();
        let expected: Vec<(String, String, Vec<u8>)> = steps
            .iter()
            .filter_map(|s| s.2.clone())
            .map(|(m, u, b)| (m.to_owned(), u, b))
            .collect();
        assert_eq!(seen, expected, "{how}: what Nova got, in order");

        let events = settled_exchanges(&guard, logged_before + steps.len()).await;
        let events = &events[logged_before..];
        let verdicts: Vec<(&str, u64)> = events
            .iter()
            .map(|e| {
                (
                    e["verdict"].as_str().unwrap(),
                    e["status"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                ("passthrough", 200),
                ("forwarded", 200),
                ("rejected", 400),
                ("forwarded", 200),
                ("rejected", 400),
                ("passthrough", 200),
                ("passthrough", 200),
                ("passthrough", 200),
                ("passthrough", 200),
            ],
            "{how}"
        );
        assert_eq!(events[1]["ipv6_rewritten"], true);
        assert_eq!(events[3]["ipv6_rewritten"], true);
    }
}

// ---------------------------------------------------------------------------
// 3. Nova restarted under load

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

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + BOUND;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nova_restarted_under_load_gets_every_client_a_whole_answer() {
    const CLIENTS: usize = 20;
    const EACH: usize = 10;
    let addr = free_port();
    let first = Upstream::start_on(addr).await;
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
            (false, 400) => assert_eq!(g.body["badRequest"]["message"], INVALID_ANSWER),
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
    let events = settled_exchanges(&guard, got.len()).await;
    assert_eq!(events.len(), got.len());
    assert_request_ids_unique(&events);
    for g in &got {
        let e = line_of(&events, &g.path);
        assert_eq!(e["status"], g.status, "{g:?}: {e}");
        if g.status == 502 {
            assert_eq!(e["request_id"].as_str(), g.request_id.as_deref());
            let error = e["error"].as_str().unwrap_or_default();
            assert!(
                error == "upstream_connect" || error == "upstream_protocol",
                "{e}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 4. SIGTERM with 500 exchanges in flight

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
        assert_eq!(e["status"], 200);
        assert_eq!(e["complete"], true);
    }
}

// ---------------------------------------------------------------------------
// 5. One log line per exchange under faults

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
        let events = settled_exchanges(&guard, got.len()).await;
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
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
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
                    common::reset(s);
                } else {
                    drop(s);
                }
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(BOUND, t).await.unwrap().unwrap();
    }
    let events = settled_exchanges(&guard, cases.len()).await;
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
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0")]);
    let admin: SocketAddr = guard.wait_event("admin listening").await.unwrap()["admin"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
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
    let events = settled_exchanges(&guard, 1).await;
    assert_eq!(events.len(), 1);
    let e = line_of(&events, &path);
    assert_eq!(e["status"], 400);
    assert_eq!(e["error"], "client_body");
    assert_eq!(e["request_id"].as_str(), a.header("x-openstack-request-id"));
    // Not counted against Nova.
    let mut admin_conn = TcpStream::connect(admin).await.unwrap();
    admin_conn
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let metrics = until_closed(&mut admin_conn).await.unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        !metrics.contains("nova_guard_upstream_errors_total{"),
        "{metrics}"
    );
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
    for client in clients {
        let (got, want, closed) = tokio::time::timeout(BOUND, client)
            .await
            .expect("a flooding client hung")
            .expect("client task");
        assert_eq!(got, want);
        assert!(closed, "the connection stays open after a {got}");
    }
    assert_eq!(up.count(), 0, "a flooding request reached Nova");

    let ok = common::raw(addr, &common::request("GET", &server("after"), &[], b"")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(up.count(), 1);

    let events = settled_exchanges(&guard, CLIENTS + 1).await;
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
        assert_eq!(e["rule"], rule);
        assert_eq!(e["verdict"], "rejected");
        assert!(e.get("request_id").is_none() && e.get("path").is_none());
    }
    for e in answered.iter().filter(|e| e["status"] == 414) {
        assert_eq!(e["rule"], "maxUriBytes");
    }
    assert_request_ids_unique(&answered);
}
