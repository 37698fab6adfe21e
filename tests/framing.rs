//! Request framing as a smuggler tries it: Content-Length beside
//! Transfer-Encoding, ambiguous or malformed lengths and codings, bare LFs
//! and folded lines, chunk extensions on validated bodies, pipelines split
//! anywhere or mixing validated and pass-through requests, and HTTP/2
//! cleartext. The binary in front of a recording upstream, over real
//! sockets.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_in_either_order() {
    let (up, guard) = setup().await;
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
            let case = format!("{target:?} {head:?}");
            let (a, closed) = exchange(&guard, req.as_bytes()).await;
            assert_eq!(a.status, 400, "{case}: {}", a.text());
            assert_eq!(
                json(&a.body),
                json(br#"{"badRequest": {"code": 400, "message": "Malformed request framing"}}"#),
                "{case}"
            );
            assert_request_ids(&case, &a);
            assert_eq!(a.header("connection"), Some("close"), "{case}");
            assert!(closed, "{case}: connection kept open");
        }
    }
    assert_eq!(up.count(), 0, "the upstream received a request");
    let events = guard.wait_exchanges(6).await;
    assert_eq!(events.len(), 6);
    for e in events {
        assert_eq!(e["verdict"], "rejected", "{e}");
        assert_eq!(e["rule"], "content_length_and_transfer_encoding", "{e}");
        assert_eq!(e["error"], "ambiguous_framing", "{e}");
    }
}

#[tokio::test]
async fn ambiguous_or_malformed_framing_never_reaches_nova() {
    let (up, guard) = setup().await;
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
async fn ambiguous_framing_is_refused_and_not_forwarded() {
    let (up, guard) = setup().await;
    let cases: &[(&str, &[u8])] = &[
        (
            "gzip, chunked",
            b"PUT /v2.1/servers/abc HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "chunked, chunked",
            b"PUT /v2.1/servers/abc HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two differing Content-Lengths",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
    ];
    for (what, req) in cases {
        let a = raw(guard.addr, req).await;
        assert_eq!(a.status, 400, "{what}: {}", a.text());
    }
    assert_eq!(up.count(), 0, "the upstream received a request");
}

#[tokio::test]
async fn answers_of_every_size_arrive_byte_for_byte_on_a_kept_alive_connection() {
    let (_up, guard) = setup().await;
    let mut conn = Conn::open(guard.addr).await;
    let get = |len: usize| format!("GET /pattern/{len} HTTP/1.1\r\nHost: x\r\n\r\n");
    // Around the size where an answer stops going out with its head in one
    // write, and one that takes many reads of Nova's answer.
    let sizes = [
        0,
        1,
        16 * 1024 - 300,
        16 * 1024,
        40 * 1024,
        3 * 1024 * 1024 + 7,
        10,
    ];
    for len in sizes {
        conn.send(get(len).as_bytes()).await;
        let a = tokio::time::timeout(BOUND, conn.answer()).await.unwrap();
        assert_eq!(a.status, 200, "{len}: {}", a.text());
        assert_eq!(a.header("content-length"), Some(len.to_string().as_str()));
        assert!(
            a.body == pattern(len),
            "the {len}-byte answer arrived changed"
        );
    }
    // Asked for in one write, large answers come back whole and in order.
    conn.send(format!("{}{}{}", get(100_000), get(5), get(70_000)).as_bytes())
        .await;
    for len in [100_000, 5, 70_000] {
        let a = tokio::time::timeout(BOUND, conn.answer()).await.unwrap();
        assert!(
            a.body == pattern(len),
            "the pipelined {len}-byte answer arrived changed"
        );
    }
}

#[tokio::test]
async fn unambiguous_framing_is_served_on_a_kept_alive_connection() {
    let (up, guard) = setup().await;
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
        let mut bytes = chunked("PUT", &good, &[(e1, first), (e2, second)], last, false);
        // The same extensions around a body Nova refuses.
        bytes.extend(chunked("PUT", &bad, &[(e1, INVALID)], last, true));
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
        assert_eq!(
            json(&a.body)["badRequest"]["message"],
            INVALID_ANSWER,
            "{what}"
        );
        assert_eq!(
            up.count(),
            before + 1,
            "{what}: the refused body reached Nova"
        );
        assert!(conn.closed_quietly().await, "{what}");
    }
    let events = guard.settled_exchanges(2 * cases.len()).await;
    assert_eq!(events.len(), 2 * cases.len());
    for (i, (what, _)) in cases.iter().enumerate() {
        let e = line_of(&events, &server(&format!("ext-good-{i}")));
        assert_eq!(e["verdict"], "forwarded", "{what}: {e}");
        assert_eq!(e["ipv6_rewritten"], true, "{what}: {e}");
        assert_eq!(e["bytes_in"], VALID_V6.len(), "{what}: {e}");
        let e = line_of(&events, &server(&format!("ext-bad-{i}")));
        assert_eq!(e["verdict"], "rejected", "{what}: {e}");
        assert_eq!(e["field"], "name", "{what}: {e}");
    }
}

#[tokio::test]
async fn chunk_extensions_hyper_refuses_get_400_and_nothing_reaches_nova() {
    let (up, guard) = setup().await;
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
        let mut bytes = chunked("PUT", &path, chunks, last, false);
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
    let events = guard.settled_exchanges(cases.len()).await;
    assert_eq!(events.len(), cases.len());
    for (i, (what, _, _)) in cases.iter().enumerate() {
        let e = line_of(&events, &server(&format!("ext-refused-{i}")));
        assert_eq!(e["verdict"], "rejected", "{what}: {e}");
        assert_eq!(e["status"], 400, "{what}: {e}");
        assert!(
            e["rule"] == "clientBody" || e["rule"] == "bad_chunk",
            "{what}: {e}"
        );
    }
    assert_eq!(up.count(), 0);
}

/// A request as Nova should get it: method, path, body.
type AtNova = (&'static str, String, Vec<u8>);

#[tokio::test]
async fn pipelines_mixing_validated_and_passthrough_requests_keep_order() {
    let (up, guard) = setup().await;
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
                chunked(
                    "PUT",
                    &p("servers/chunked"),
                    &[(";a=b", first), ("", second)],
                    "",
                    false,
                ),
                200,
                Some(("PUT", p("servers/chunked"), REWRITTEN_V6.to_vec())),
            ),
            (
                chunked(
                    "PUT",
                    &p("servers/chunked-invalid"),
                    &[("", INVALID)],
                    "",
                    false,
                ),
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

        let events = guard.settled_exchanges(logged_before + steps.len()).await;
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
        assert_eq!(events[1]["ipv6_rewritten"], true, "{how}");
        assert_eq!(events[3]["ipv6_rewritten"], true, "{how}");
    }
}

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
    let (up, guard) = setup().await;
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
async fn http2_cleartext_is_still_served() {
    let (up, guard) = setup().await;
    let (mut send, conn) = h2_handshake(guard.addr).await;
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
