//! Black-box tests: the nova-guard binary in front of a recording upstream,
//! over real sockets.

mod common;

use common::{put, raw, Guard, Upstream};
use serde_json::Value;

const SERVER: &str = "/v2.1/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";

async fn setup() -> (Upstream, Guard) {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    (up, guard)
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(body)))
}

fn assert_request_ids(a: &common::Answer) {
    let id = a
        .header("x-openstack-request-id")
        .expect("x-openstack-request-id");
    assert_eq!(a.header("x-compute-request-id"), Some(id));
    assert!(id.starts_with("req-") && id.len() == 40, "{id}");
}

#[tokio::test]
async fn valid_body_is_forwarded_byte_for_byte() {
    let (up, guard) = setup().await;
    let body = b"{ \"server\" :{\"name\":\"\\u00e9t\\u00e9 \xc3\xa9\",  \"OS-DCF:diskConfig\": \"AUTO\",\n\"accessIPv4\":\"1.2.3.4\"} }";
    let a = raw(guard.addr, &put(SERVER, &[], body)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(json(&a.body)["upstream"], true);
    let seen = up.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.uri, SERVER);
    assert_eq!(&seen.body[..], &body[..]);
    assert_eq!(seen.headers["content-length"], body.len().to_string());
    assert_eq!(seen.headers["host"], "nova.example:8774");
    assert_eq!(seen.headers["x-auth-token"], "user:deadbeef");
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-proto"], "http");
    assert_eq!(seen.headers["x-forwarded-host"], "nova.example:8774");
    // Nova's hop-by-hop response headers stay between nova-guard and Nova.
    assert_eq!(a.header("keep-alive"), None);
}

#[tokio::test]
async fn access_ipv6_is_rewritten_to_canonical_text() {
    let (up, guard) = setup().await;
    let cases: &[(&str, &str)] = &[
        (
            r#"{"server": {"accessIPv6": "::babe:67.23.10.132"}}"#,
            r#"{"server": {"accessIPv6": "::babe:4317:a84"}}"#,
        ),
        (
            r#"{"server":{"accessIPv6":"2001:0DB8:0:0:0:0:0:1","name":"x"}}"#,
            r#"{"server":{"accessIPv6":"2001:db8::1","name":"x"}}"#,
        ),
        // The occurrence Nova uses is the last one.
        (
            r#"{"server": {"accessIPv6": "::1", "accessIPv6": "FE80::ABCD"}}"#,
            r#"{"server": {"accessIPv6": "::1", "accessIPv6": "fe80::abcd"}}"#,
        ),
        // Escapes inside the token are replaced with it.
        (
            r#"{"server": {"accessIPv6": "\u0046E80::1"}}"#,
            r#"{"server": {"accessIPv6": "fe80::1"}}"#,
        ),
        // Already canonical: untouched.
        (
            r#"{"server": {"accessIPv6": "::babe:202:202"}}"#,
            r#"{"server": {"accessIPv6": "::babe:202:202"}}"#,
        ),
    ];
    for (i, (sent, expected)) in cases.iter().enumerate() {
        let a = raw(guard.addr, &put(SERVER, &[], sent.as_bytes())).await;
        assert_eq!(a.status, 200, "{sent}: {}", a.text());
        let seen = up.last();
        assert_eq!(
            std::str::from_utf8(&seen.body).unwrap(),
            *expected,
            "case {i}"
        );
        assert_eq!(seen.headers["content-length"], expected.len().to_string());
    }
    let events = guard.wait_exchanges(cases.len()).await;
    let rewritten: Vec<bool> = events.iter().map(|e| e["ipv6_rewritten"] == true).collect();
    assert_eq!(rewritten, [true, true, true, true, false]);
}

#[tokio::test]
async fn rejections_have_nova_s_status_body_and_headers_and_never_reach_nova() {
    let (up, guard) = setup().await;
    let v219 = [("OpenStack-API-Version", "compute 2.19")];
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [u8], u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            SERVER,
            &[],
            b"{\"server\": ",
            400,
            r#"{"badRequest": {"code": 400, "message": "Malformed request body"}}"#,
        ),
        (
            SERVER,
            &[],
            b"\xef\xbb\xbf{\"server\": {}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Malformed request body"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"name\": \"\xff\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Malformed request body"}}"#,
        ),
        (
            SERVER,
            &[],
            b"",
            422,
            r#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#,
        ),
        (
            SERVER,
            &[],
            b"null",
            422,
            r#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"foo\": 1}",
            422,
            r#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": \"abc\"}",
            422,
            r#"{"computeFault": {"code": 422, "message": "Unable to process the contained instructions"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"name\": \"\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute name. Value: . '' should be non-empty"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"name\": \" a\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"description\": \"x\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute server. Value: {'description': 'x'}. Additional properties are not allowed ('description' was unexpected)"}}"#,
        ),
        (
            SERVER,
            &v219,
            b"{\"server\": {\"description\": 1}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute description. Value: 1. 1 is not of type 'string', 'null'"}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"accessIPv6\": \"fe80::1%eth0\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute accessIPv6. Value: fe80::1%eth0. 'fe80::1%eth0' is not a 'ipv6'"}}"#,
        ),
        (
            SERVER,
            &[],
            "{\"server\": {\"name\": \"\u{e9}\\ud800\"}}".as_bytes(),
            400,
            r#"{"badRequest": {"code": 400, "message": "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."}}"#,
        ),
        (
            SERVER,
            &[],
            b"{\"server\": {\"OS-DCF:diskConfig\": \"auto\"}}",
            400,
            r#"{"badRequest": {"code": 400, "message": "Invalid input for field/attribute OS-DCF:diskConfig. Value: auto. 'auto' is not one of ['AUTO', 'MANUAL']"}}"#,
        ),
    ];
    for (path, headers, body, status, expected) in &cases {
        let a = raw(guard.addr, &put(path, headers, body)).await;
        assert_eq!(
            a.status,
            *status,
            "{:?}: {}",
            String::from_utf8_lossy(body),
            a.text()
        );
        assert_eq!(a.text(), *expected, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(
            a.header("content-type"),
            Some("application/json; charset=UTF-8")
        );
        assert_request_ids(&a);
        let version = if headers.is_empty() { "2.1" } else { "2.19" };
        assert_eq!(
            a.header("openstack-api-version"),
            Some(format!("compute {version}").as_str())
        );
        assert_eq!(a.header("x-openstack-nova-api-version"), Some(version));
        assert_eq!(
            a.header_all("vary"),
            ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"]
        );
    }
    assert_eq!(up.count(), 0, "a rejected request reached the upstream");
    let events = guard.wait_exchanges(cases.len()).await;
    assert!(
        events.iter().all(|e| e["verdict"] == "rejected"),
        "{events:?}"
    );
}

#[tokio::test]
async fn legacy_v2_rejections_carry_no_version_headers() {
    let (up, guard) = setup().await;
    let path = "/v2/deadbeef/servers/abc";
    let a = raw(
        guard.addr,
        &put(
            path,
            &[("OpenStack-API-Version", "compute 2.19")],
            br#"{"server": {"description": "x"}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.header("openstack-api-version"), None);
    assert_eq!(a.header("x-openstack-nova-api-version"), None);
    assert_eq!(a.header("vary"), None);
    assert_request_ids(&a);
    // Leading spaces are fine on the legacy endpoint; unknown keys are Nova's to drop.
    let body = br#"{"server": {"name": "  spaced  ", "foo": 1}}"#;
    let a = raw(guard.addr, &put(path, &[], body)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(&up.last().body[..], &body[..]);
}

#[tokio::test]
async fn the_four_path_forms_and_their_spellings_are_validated() {
    let (up, guard) = setup().await;
    let invalid = br#"{"server": {"name": ""}}"#;
    for path in [
        "/v2.1/deadbeef/servers/abc",
        "/v2.1/servers/abc",
        "/v2/deadbeef/servers/abc",
        "/v2/servers/abc",
        "/v2.1/deadbeef//servers/abc",
        "/v2.1//servers/abc",
        "/v2.1/deadbeef/%73ervers/abc",
        "/%762.1/deadbeef/servers/abc",
        "/v2.1/deadbeef%2Fservers/abc",
        "//v2.1/deadbeef/servers/abc",
        "/v2.1/./deadbeef/servers/abc",
        "/v2.1/x/../deadbeef/servers/abc",
        "/v2.1/deadbeef/servers/abc?x=1",
        "/v2.1/deadbeef/servers/abc.json",
        "http://nova.example/v2.1/deadbeef/servers/abc",
    ] {
        let a = raw(guard.addr, &put(path, &[], invalid)).await;
        assert_eq!(a.status, 400, "{path}: {}", a.text());
    }
    assert_eq!(up.count(), 0);
    // Not update-server: forwarded as received, unvalidated.
    for path in [
        "/v2.1/deadbeef/servers/abc/",
        "/V2.1/deadbeef/servers/abc",
        "/v2.1/deadbeef/SERVERS/abc",
        "/v2.1/DEADBEEF/servers/abc",
        "/v2.1/deadbeef/servers/abc%2F",
        "/v2.1/deadbeef/servers/detail",
        "/v2.1/deadbeef/servers/abc/metadata",
        "/v2.1/deadbeef/servers",
        "/v3/deadbeef/servers/abc",
    ] {
        let before = up.count();
        let a = raw(guard.addr, &put(path, &[], invalid)).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
        assert_eq!(up.count(), before + 1);
        assert_eq!(up.last().uri, path, "the path is forwarded as received");
        assert_eq!(&up.last().body[..], &invalid[..]);
    }
}

#[tokio::test]
async fn path_prefix_is_honoured() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_PATH_PREFIX", "/compute")]);
    let invalid = br#"{"server": {"name": ""}}"#;
    let a = raw(guard.addr, &put("/compute/v2.1/servers/abc", &[], invalid)).await;
    assert_eq!(a.status, 400);
    let a = raw(guard.addr, &put("/v2.1/servers/abc", &[], invalid)).await;
    assert_eq!(a.status, 200, "without the prefix it is not Nova's route");
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn microversion_is_taken_from_either_header() {
    let (up, guard) = setup().await;
    let body = br#"{"server": {"description": "d"}}"#;
    let cases: &[(&[(&str, &str)], u16)] = &[
        (&[], 400),
        (&[("OpenStack-API-Version", "compute 2.19")], 200),
        (&[("OpenStack-API-Version", "COMPUTE 2.19")], 200),
        (&[("OpenStack-API-Version", "compute 2.18")], 400),
        (
            &[("OpenStack-API-Version", "compute 2.19, volume 3.0")],
            200,
        ),
        (
            &[("OpenStack-API-Version", "compute 2.18, compute 2.19")],
            200,
        ),
        (&[("X-OpenStack-Nova-API-Version", "2.19")], 200),
        (&[("X-OpenStack-Nova-API-Version", "2.18")], 400),
        // The standard header wins over the legacy one.
        (
            &[
                ("OpenStack-API-Version", "compute 2.18"),
                ("X-OpenStack-Nova-API-Version", "2.19"),
            ],
            400,
        ),
        // Without a compute entry the legacy header counts.
        (
            &[
                ("OpenStack-API-Version", "volume 3.0"),
                ("X-OpenStack-Nova-API-Version", "2.19"),
            ],
            200,
        ),
        (&[("OpenStack-API-Version", "compute latest")], 200),
    ];
    let mut forwarded = 0;
    for (headers, status) in cases {
        let a = raw(guard.addr, &put(SERVER, headers, body)).await;
        assert_eq!(a.status, *status, "{headers:?}: {}", a.text());
        if *status == 200 {
            forwarded += 1;
        }
    }
    assert_eq!(up.count(), forwarded);
    let a = raw(
        guard.addr,
        &put(
            SERVER,
            &[("OpenStack-API-Version", "compute latest")],
            br#"{"server": {"name": ""}}"#,
        ),
    )
    .await;
    assert_eq!(a.header("openstack-api-version"), Some("compute 2.104"));
}

#[tokio::test]
async fn what_nova_refuses_before_the_body_is_left_to_nova() {
    let (up, guard) = setup().await;
    let invalid = br#"{"server": {"name": ""}}"#;
    let mut no_token = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        invalid.len()
    )
    .into_bytes();
    no_token.extend_from_slice(invalid);
    let cases: Vec<Vec<u8>> = vec![
        no_token,
        put(SERVER, &[("X-Auth-Token", "")], invalid),
        put(SERVER, &[("OpenStack-API-Version", "compute 2.0")], invalid),
        put(
            SERVER,
            &[("OpenStack-API-Version", "compute 2.105")],
            invalid,
        ),
        put(SERVER, &[("OpenStack-API-Version", "compute 2.x")], invalid),
        put(SERVER, &[("X-OpenStack-Nova-API-Version", "3.1")], invalid),
        put(SERVER, &[("Content-Type", "application/xml")], invalid),
        put(SERVER, &[("Content-Type", "Application/JSON")], invalid),
    ];
    for (i, req) in cases.iter().enumerate() {
        let a = raw(guard.addr, req).await;
        assert_eq!(a.status, 200, "case {i}: {}", a.text());
        assert_eq!(up.count(), i + 1);
        assert_eq!(&up.last().body[..], &invalid[..]);
    }
    let events = guard.wait_exchanges(cases.len()).await;
    assert!(
        events.iter().all(|e| e["verdict"] == "passthrough"),
        "{events:?}"
    );
}

#[tokio::test]
async fn too_large_bodies_get_413_by_length_and_by_chunks() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_MAX_BODY_BYTES", "1000")]);
    let expected = r#"{"overLimit": {"code": 413, "message": "Request is too large."}}"#;
    let big = format!(r#"{{"server": {{"name": "{}"}}}}"#, "a".repeat(1000));
    let a = raw(guard.addr, &put(SERVER, &[], big.as_bytes())).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.text(), expected);
    assert_request_ids(&a);

    // Announcing a huge length is enough; nothing is read.
    let head = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n"
    );
    let a = raw(guard.addr, head.as_bytes()).await;
    assert_eq!(a.status, 413);

    // Chunked: counted while reading.
    let mut chunked = format!(
        "PUT {SERVER} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for _ in 0..3 {
        chunked.push_str(&format!("190\r\n{}\r\n", "a".repeat(400)));
    }
    chunked.push_str("0\r\n\r\n");
    let a = raw(guard.addr, chunked.as_bytes()).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.text(), expected);
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

#[tokio::test]
async fn other_requests_pass_through_streaming_with_flat_memory() {
    let (up, guard) = setup().await;
    for (method, path) in [
        ("GET", "/v2.1/deadbeef/servers/abc"),
        ("POST", "/v2.1/deadbeef/servers"),
        ("DELETE", "/v2.1/deadbeef/servers/abc"),
        ("PATCH", "/v2.1/deadbeef/servers/abc"),
        ("GET", "/"),
    ] {
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
        let a = raw(guard.addr, req.as_bytes()).await;
        assert_eq!(a.status, 200);
        let seen = up.last();
        assert_eq!((seen.method.as_str(), seen.uri.as_str()), (method, path));
        assert_eq!(&seen.body[..], b"abc");
    }

    let before = guard.vm_hwm_kib();
    // A 50 MB response streams through.
    let size: u64 = 50 * 1024 * 1024;
    let req = format!("GET /stream/{size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(guard.addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, req.as_bytes())
        .await
        .unwrap();
    let mut total = 0u64;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(total > size, "got {total} bytes");

    // A 50 MB upload to a path that is not validated streams too.
    let head = format!("POST /v2.1/deadbeef/images HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
    let mut conn = common::Conn::open(guard.addr).await;
    conn.send(head.as_bytes()).await;
    let chunk = vec![b'u'; 1 << 20];
    for _ in 0..50 {
        conn.send(&chunk).await;
    }
    let a = conn.answer().await;
    assert_eq!(json(&a.body)["received"], size);

    let after = guard.vm_hwm_kib();
    // Buffering either body whole would add 50 MiB to the peak.
    assert!(
        after < before + 16 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
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
async fn ambiguous_framing_is_refused_and_not_forwarded() {
    let (up, guard) = setup().await;
    for te in ["gzip, chunked", "chunked, chunked"] {
        let req = format!(
            "PUT /v2.1/servers/abc HTTP/1.1\r\nHost: x\r\nX-Auth-Token: t\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n"
        );
        let a = raw(guard.addr, req.as_bytes()).await;
        assert_eq!(a.status, 400, "{te}");
    }
    let a = raw(
        guard.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn unreachable_nova_gets_a_nova_shaped_502() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let guard = Guard::start(&format!("http://127.0.0.1:{port}"), &[]);
    let a = raw(guard.addr, &put(SERVER, &[], br#"{"server": {}}"#)).await;
    assert_eq!(a.status, 502);
    assert_eq!(json(&a.body)["computeFault"]["code"], 502);
    assert_request_ids(&a);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "upstream_connect");
}

#[test]
fn bad_configuration_stops_start_up_naming_every_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_LISTEN", "nowhere")
        .env("NOVA_GUARD_MAX_MICROVERSION", "two")
        .env("NOVA_GUARD_UPSTREAM_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in [
        "NOVA_GUARD_LISTEN",
        "NOVA_GUARD_MAX_MICROVERSION",
        "NOVA_GUARD_UPSTREAM_TIMEOUT",
    ] {
        assert!(err.contains(var), "{var} missing from {err}");
    }
    assert!(out.stdout.is_empty());
}
