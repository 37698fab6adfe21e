//! What nova-guard validates and what it decides: update, create and
//! rebuild bodies judged in Nova's words, each verdict and rewrite, the path
//! forms and the path prefix, the microversion from either header, what is
//! left to Nova, everything else passed through as a stream, the access-IP
//! policy, and report-only mode. The binary in front of a recording
//! upstream, over real sockets.

mod common;

use common::*;

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
        let what = format!("{:?}", String::from_utf8_lossy(body));
        let a = raw(guard.addr, &put(path, headers, body)).await;
        assert_eq!(a.status, *status, "{what}: {}", a.text());
        assert_eq!(a.text(), *expected, "{what}");
        assert_eq!(
            a.header("content-type"),
            Some("application/json; charset=UTF-8"),
            "{what}"
        );
        assert_request_ids(&what, &a);
        let version = if headers.is_empty() { "2.1" } else { "2.19" };
        assert_eq!(
            a.header("openstack-api-version"),
            Some(format!("compute {version}").as_str()),
            "{what}"
        );
        assert_eq!(
            a.header("x-openstack-nova-api-version"),
            Some(version),
            "{what}"
        );
        assert_eq!(
            a.header_all("vary"),
            ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"],
            "{what}"
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
    assert_request_ids("the legacy 400", &a);
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
        assert_eq!(up.count(), before + 1, "{path}");
        assert_eq!(
            up.last().uri,
            path,
            "{path}: the path is forwarded as received"
        );
        assert_eq!(&up.last().body[..], &invalid[..], "{path}");
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
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no token", no_token),
        (
            "an empty token",
            put(SERVER, &[("X-Auth-Token", "")], invalid),
        ),
        (
            "microversion 2.0",
            put(SERVER, &[("OpenStack-API-Version", "compute 2.0")], invalid),
        ),
        (
            "microversion 2.105",
            put(
                SERVER,
                &[("OpenStack-API-Version", "compute 2.105")],
                invalid,
            ),
        ),
        (
            "microversion 2.x",
            put(SERVER, &[("OpenStack-API-Version", "compute 2.x")], invalid),
        ),
        (
            "legacy microversion 3.1",
            put(SERVER, &[("X-OpenStack-Nova-API-Version", "3.1")], invalid),
        ),
        (
            "an XML Content-Type",
            put(SERVER, &[("Content-Type", "application/xml")], invalid),
        ),
        (
            "a Content-Type in capitals",
            put(SERVER, &[("Content-Type", "Application/JSON")], invalid),
        ),
    ];
    for (i, (what, req)) in cases.iter().enumerate() {
        let a = raw(guard.addr, req).await;
        assert_eq!(a.status, 200, "{what}: {}", a.text());
        assert_eq!(up.count(), i + 1, "{what}");
        assert_eq!(&up.last().body[..], &invalid[..], "{what}");
    }
    let events = guard.wait_exchanges(cases.len()).await;
    assert!(
        events.iter().all(|e| e["verdict"] == "passthrough"),
        "{events:?}"
    );
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
        assert_eq!(a.status, 200, "{method} {path}");
        let seen = up.last();
        assert_eq!(
            (seen.method.as_str(), seen.uri.as_str()),
            (method, path),
            "{method} {path}"
        );
        assert_eq!(&seen.body[..], b"abc", "{method} {path}");
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
    let mut conn = Conn::open(guard.addr).await;
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

const UUID: &str = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c";

fn servers() -> String {
    format!("{PROJECT}/servers")
}

fn action() -> String {
    format!("{}/action", server(UUID))
}

fn update() -> String {
    server(UUID)
}

fn message(a: &Answer) -> String {
    json(&a.body)["badRequest"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no badRequest message: {}", a.text()))
        .to_owned()
}

#[tokio::test]
async fn create_and_rebuild_guarded_fields() {
    let (up, guard) = setup().await;
    let v290 = [("OpenStack-API-Version", "compute 2.90")];

    // Refused in Nova's words; Nova never sees it.
    let a = raw(
        guard.addr,
        &request(
            "POST",
            &servers(),
            &[],
            br#"{"server": {"name": " web", "flavorRef": "1"}}"#,
        ),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(
        message(&a),
        "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."
    );
    assert_eq!(a.header("openstack-api-version"), Some("compute 2.1"));
    assert_eq!(up.count(), 0);

    let body = format!(
        r#"{{"server": {{"name": "web", "imageRef": "{UUID}", "flavorRef": "1", "networks": "auto", "hostname": "-x"}}}}"#
    );
    let a = raw(
        guard.addr,
        &request("POST", &servers(), &v290, body.as_bytes()),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        message(&a),
        "Invalid input for field/attribute hostname. Value: -x. '-x' does not match '^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'"
    );
    assert_eq!(up.count(), 0);

    // Certainly valid: forwarded, accessIPv6 in canonical text.
    let body = format!(
        r#"{{"server": {{"name": "web", "imageRef": "{UUID}", "flavorRef": "1", "networks": "auto", "accessIPv6": "2001:0DB8::0:1"}}}}"#
    );
    let a = raw(
        guard.addr,
        &request("POST", &servers(), &v290, body.as_bytes()),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        body.replace("2001:0DB8::0:1", "2001:db8::1")
    );

    // A property nova-guard does not judge comes first: Nova decides.
    let body = br#"{"server": {"name": "web", "flavorRef": "1", "block_device_mapping_v2": [{"boot_index": "x"}], "hostname": "-x"}}"#;
    let a = raw(guard.addr, &request("POST", &servers(), &v290, body)).await;
    assert_eq!(a.status, 200);
    assert_eq!(&up.last().body[..], &body[..]);

    // Rebuild.
    let body = format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "OS-DCF:diskConfig": "manual"}}}}"#);
    let a = raw(
        guard.addr,
        &request("POST", &action(), &[], body.as_bytes()),
    )
    .await;
    assert_eq!(a.status, 400);
    assert_eq!(
        message(&a),
        "Invalid input for field/attribute OS-DCF:diskConfig. Value: manual. 'manual' is not one of ['AUTO', 'MANUAL']"
    );
    let body =
        format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "accessIPv6": "::babe:67.23.10.132"}}}}"#);
    let a = raw(
        guard.addr,
        &request("POST", &action(), &[], body.as_bytes()),
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        std::str::from_utf8(&up.last().body).unwrap(),
        body.replace("::babe:67.23.10.132", "::babe:4317:a84")
    );
    // Another action is left alone.
    let body = br#"{"reboot": {"type": "HARD", "name": ""}}"#;
    let a = raw(guard.addr, &request("POST", &action(), &[], body)).await;
    assert_eq!(a.status, 200);
    assert_eq!(&up.last().body[..], &body[..]);

    let events = guard.wait_exchanges(7).await;
    let got: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap_or("").to_owned(),
                e["verdict"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [
        ("create", "rejected"),
        ("create", "rejected"),
        ("create", "forwarded"),
        ("create", "deferred"),
        ("rebuild", "rejected"),
        ("rebuild", "forwarded"),
        ("action", "deferred"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(o, v)| (o.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(events[1]["field"], "hostname");
    assert_eq!(events[1]["rule"], "pattern");
    assert_eq!(events[2]["ipv6_rewritten"], true);
}

#[tokio::test]
async fn access_ip_policy() {
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_ACCESS_IPV4_DENY", "127.0.0.0/8,169.254.0.0/16"),
            ("NOVA_GUARD_ACCESS_IPV6_DENY", "::1/128,fe80::/10"),
            ("NOVA_GUARD_ACCESS_IPV6_ALLOW", "2001:db8::/32"),
            ("NOVA_GUARD_ACCESS_IP_MAPPED_AS_V4", "true"),
        ],
    );
    let cases: &[(&str, String, u16, &str)] = &[
        (
            "PUT",
            r#"{"server": {"accessIPv4": "127.0.0.1"}}"#.to_owned(),
            400,
            "Invalid input for field/attribute accessIPv4. Value: 127.0.0.1. '127.0.0.1' is in a denied network '127.0.0.0/8'",
        ),
        (
            "PUT",
            r#"{"server": {"accessIPv6": "::FFFF:169.254.1.1"}}"#.to_owned(),
            400,
            "Invalid input for field/attribute accessIPv6. Value: ::FFFF:169.254.1.1. '::ffff:169.254.1.1' is in a denied network '169.254.0.0/16'",
        ),
        (
            "PUT",
            r#"{"server": {"accessIPv6": "2002::1"}}"#.to_owned(),
            400,
            "Invalid input for field/attribute accessIPv6. Value: 2002::1. '2002::1' is not in an allowed network",
        ),
        (
            "PUT",
            r#"{"server": {"accessIPv4": "8.8.8.8", "accessIPv6": "2001:DB8::1"}}"#.to_owned(),
            200,
            "",
        ),
        // Nova's own error first.
        (
            "PUT",
            r#"{"server": {"accessIPv4": "127.0.0.1", "name": ""}}"#.to_owned(),
            400,
            "Invalid input for field/attribute name. Value: . '' should be non-empty",
        ),
        // Create and rebuild, even behind keys nova-guard does not judge.
        (
            "POST",
            r#"{"server": {"name": "x", "block_device_mapping_v2": [{"boot_index": "x"}], "accessIPv6": "fe80::1"}}"#.to_owned(),
            400,
            "Invalid input for field/attribute accessIPv6. Value: fe80::1. 'fe80::1' is in a denied network 'fe80::/10'",
        ),
        (
            "POST-action",
            format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "accessIPv4": "127.1.2.3"}}}}"#),
            400,
            "Invalid input for field/attribute accessIPv4. Value: 127.1.2.3. '127.1.2.3' is in a denied network '127.0.0.0/8'",
        ),
    ];
    for (method, body, status, want) in cases {
        let (method, path) = match *method {
            "PUT" => ("PUT", update()),
            "POST" => ("POST", servers()),
            _ => ("POST", action()),
        };
        let a = raw(guard.addr, &request(method, &path, &[], body.as_bytes())).await;
        assert_eq!(a.status, *status, "{body}: {}", a.text());
        if *status == 400 {
            assert_eq!(message(&a), *want, "{body}");
        }
    }
    assert_eq!(up.count(), 1);
    assert_eq!(
        std::str::from_utf8(&up.last().body).unwrap(),
        r#"{"server": {"accessIPv4": "8.8.8.8", "accessIPv6": "2001:db8::1"}}"#
    );
    let events = guard.wait_exchanges(cases.len()).await;
    assert_eq!(events[0]["rule"], "accessIpDenied");
    assert_eq!(events[0]["field"], "accessIPv4");
    assert_eq!(events[2]["rule"], "accessIpNotAllowed");
    // The values are never logged.
    let logs = guard.logs.lock().unwrap();
    assert!(logs
        .iter()
        .all(|l| !l.contains("127.1.2.3") && !l.contains("169.254.1.1")));
}

/// A corpus of requests whose verdicts cover every kind: rejected (each
/// reason), forwarded with and without a rewrite, deferred, passthrough.
fn corpus() -> Vec<Vec<u8>> {
    let v = |minor: &str| format!("compute {minor}");
    let mut c: Vec<Vec<u8>> = Vec::new();
    let bodies_update: &[&[u8]] = &[
        br#"{"server": {"name": "ok"}}"#,
        br#"{"server": {"name": ""}}"#,
        br#"{"server": {"accessIPv6": "2001:0DB8::1"}}"#,
        br#"{"server": {"accessIPv6": "fe80::1%eth0"}}"#,
        br#"{"server": {"accessIPv4": "127.0.0.1"}}"#,
        br#"{"server": {"description": "x"}}"#,
        br#"{"server": {"foo": 1}}"#,
        br#"{"server": "x"}"#,
        br#"{"server": "#,
        b"",
        br#"{"server": {}, "extra": 1}"#,
    ];
    for minor in ["2.1", "2.19", "2.94", "2.104"] {
        for b in bodies_update {
            c.push(request(
                "PUT",
                &update(),
                &[("OpenStack-API-Version", &v(minor))],
                b,
            ));
        }
    }
    let creates = [
        r#"{"server": {"name": "a", "flavorRef": "1"}}"#.to_owned(),
        r#"{"server": {"name": "a ", "flavorRef": "1"}}"#.to_owned(),
        format!(r#"{{"server": {{"name": "a", "flavorRef": 1, "imageRef": "{UUID}", "networks": "none", "accessIPv6": "::FFFF:1.2.3.4"}}}}"#),
        r#"{"server": {"name": "a", "flavorRef": "1", "accessIPv4": "1.2.3"}}"#.to_owned(),
        r#"{"server": {"name": "a", "flavorRef": "1", "user_data": "!", "description": 5}}"#.to_owned(),
        r#"{"server": {"name": "a", "flavorRef": "1", "description": 5}}"#.to_owned(),
        r#"{"server": {"name": "a", "flavorRef": "1", "accessIPv4": "169.254.0.1", "min_count": "x"}}"#.to_owned(),
        r#"{"server": {"name": "a"}, "os:scheduler_hints": {"group": "x"}}"#.to_owned(),
        "[]".to_owned(),
    ];
    for minor in ["2.1", "2.37", "2.90"] {
        for b in &creates {
            c.push(request(
                "POST",
                &servers(),
                &[("OpenStack-API-Version", &v(minor))],
                b.as_bytes(),
            ));
        }
    }
    let rebuilds = [
        format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "name": "r"}}}}"#),
        format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "name": ""}}}}"#),
        format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "accessIPv6": "0:0::1"}}}}"#),
        r#"{"rebuild": {"imageRef": "x", "name": ""}}"#.to_owned(),
        r#"{"reboot": {"type": "SOFT"}}"#.to_owned(),
        format!(r#"{{"rebuild": {{"imageRef": "{UUID}", "hostname": "a_b"}}}}"#),
    ];
    for minor in ["2.1", "2.90", "2.94"] {
        for b in &rebuilds {
            c.push(request(
                "POST",
                &action(),
                &[("OpenStack-API-Version", &v(minor))],
                b.as_bytes(),
            ));
        }
    }
    // Not validated; over the limit by Content-Length and by chunks; chunked.
    c.push(request("GET", &update(), &[], b""));
    c.push(request(
        "PUT",
        &update(),
        &[],
        format!(r#"{{"server": {{"name": "{}"}}}}"#, "n".repeat(3000)).as_bytes(),
    ));
    c.push(chunked(
        "POST",
        &servers(),
        &pieces(
            format!(r#"{{"server": {{"name": "{}"}}}}"#, "n".repeat(3000)).as_bytes(),
            5,
        ),
        "",
        true,
    ));
    c.push(chunked(
        "PUT",
        &update(),
        &pieces(br#"{"server": {"name": " x"}}"#, 3),
        "",
        true,
    ));
    c
}

/// The request body as the upstream should get it from report mode: the
/// body as sent, de-chunked.
fn sent_body(req: &[u8]) -> Vec<u8> {
    let head_end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = std::str::from_utf8(&req[..head_end]).unwrap();
    let rest = &req[head_end..];
    if !head.contains("Transfer-Encoding: chunked") {
        return rest.to_vec();
    }
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let eol = rest[pos..].windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[pos..pos + eol]).unwrap(), 16).unwrap();
        pos += eol + 2;
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&rest[pos..pos + size]);
        pos += size + 2;
    }
}

#[tokio::test]
async fn report_mode_forwards_everything_unchanged_and_logs_enforce_mode_s_verdicts() {
    let policy = [
        ("NOVA_GUARD_ACCESS_IPV4_DENY", "127.0.0.0/8,169.254.0.0/16"),
        ("NOVA_GUARD_MAX_BODY_BYTES", "2048"),
    ];
    let enforce_up = Upstream::start().await;
    let enforce = Guard::start(&enforce_up.url(), &policy);
    let report_up = Upstream::start().await;
    let mut report_env = policy.to_vec();
    report_env.push(("NOVA_GUARD_MODE", "report"));
    let report = Guard::start(&report_up.url(), &report_env);

    let corpus = corpus();
    let mut enforce_statuses = Vec::new();
    for (i, req) in corpus.iter().enumerate() {
        let a = raw(enforce.addr, req).await;
        enforce_statuses.push(a.status);
        let before = report_up.count();
        let r = raw(report.addr, req).await;
        // Report mode: Nova (here the upstream) answers every request...
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(report_up.count(), before + 1, "request {i}");
        // ... and gets it exactly as sent.
        let seen = report_up.last();
        assert_eq!(seen.body.to_vec(), sent_body(req), "request {i}");
        let line = std::str::from_utf8(&req[..req.iter().position(|b| *b == b'\r').unwrap()])
            .unwrap()
            .to_owned();
        assert_eq!(
            format!("{} {} HTTP/1.1", seen.method, seen.uri),
            line,
            "request {i}"
        );
    }
    let e = enforce.wait_exchanges(corpus.len()).await;
    let r = report.wait_exchanges(corpus.len()).await;
    assert_eq!((e.len(), r.len()), (corpus.len(), corpus.len()));

    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (i, (e, r)) in e.iter().zip(&r).enumerate() {
        let ev = e["verdict"].as_str().unwrap();
        *counts.entry(ev.to_owned()).or_default() += 1;
        let rv = r["verdict"].as_str().unwrap();
        match ev {
            "rejected" => {
                assert_eq!(rv, "reported", "request {i}: {r}");
                assert_eq!(r["would_status"], e["status"], "request {i}");
                assert_eq!(r["field"], e["field"], "request {i}");
                assert_eq!(r["rule"], e["rule"], "request {i}");
            }
            "forwarded" => {
                assert_eq!(rv, "forwarded", "request {i}: {r}");
                assert_eq!(r["would_rewrite_ipv6"], e["ipv6_rewritten"], "request {i}");
                assert_eq!(r["ipv6_rewritten"], false, "request {i}");
            }
            other => assert_eq!(rv, other, "request {i}: {r}"),
        }
        assert_eq!(r["operation"], e["operation"], "request {i}");
        assert_eq!(r["microversion"], e["microversion"], "request {i}");
    }
    eprintln!(
        "report-mode comparison over {} requests: {counts:?}",
        corpus.len()
    );
    // Every kind of verdict was exercised.
    for kind in ["rejected", "forwarded", "deferred", "passthrough"] {
        assert!(
            counts.get(kind).is_some_and(|n| *n > 0),
            "{kind}: {counts:?}"
        );
    }
    assert!(e.iter().any(|e| e["ipv6_rewritten"] == true));
    assert!(e.iter().any(|e| e["rule"] == "maxBodyBytes"));
    assert!(e.iter().any(|e| e["rule"] == "accessIpDenied"));
    assert!(enforce_statuses.contains(&422) && enforce_statuses.contains(&413));
}
