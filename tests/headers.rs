//! The head as Nova will read it: underscore header names, repeated lines of
//! the headers nova-guard decides on, forwarding headers, a missing Host,
//! nesting as deep as Nova parses, and secrets. The binary in front of a
//! recording upstream, over real sockets.

mod common;

use common::{headers_of, put, raw, request, setup, Guard, Upstream, SERVER};

const LEGACY: &str = "/v2/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";

/// A PUT whose only token is spelled with underscores.
fn underscored_token_put(path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nHost: nova.example:8774\r\nX_Auth_Token: user:deadbeef\r\n\
         Content_Type: text/xml\r\nOpenStack_API_Version: compute 2.90\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[tokio::test]
async fn underscored_header_names_never_reach_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_ACCESS_IPV4_DENY", "127.0.0.0/8"),
            ("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    );
    // Without a token nova-guard leaves the request to Nova (its 401): so
    // no spelling of the token may reach Nova either.
    let denied = br#"{"server": {"accessIPv4": "127.0.0.1"}}"#;
    let a = raw(guard.addr, &underscored_token_put(SERVER, denied)).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.last();
    let names: Vec<&str> = seen.headers.keys().map(|k| k.as_str()).collect();
    assert!(names.iter().all(|n| !n.contains('_')), "{names:?}");
    assert!(!seen.headers.contains_key("x-auth-token"));
    assert!(!seen.headers.contains_key("openstack-api-version"));

    // With the dashed token too, the body is judged on it, and refused.
    let a = raw(
        guard.addr,
        &put(SERVER, &[("X_Auth_Token", "other:deadbeef")], denied),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(up.count(), 1);

    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["dropped_headers"], 3, "{}", events[0]);
    assert_eq!(events[0]["verdict"], "passthrough");
    assert_eq!(events[1]["dropped_headers"], 1, "{}", events[1]);
    assert_eq!(events[1]["rule"], "accessIpDenied");
}

#[tokio::test]
async fn the_legacy_rule_cannot_be_walked_around_with_an_underscored_token() {
    let (up, guard) = setup().await;
    let nul = br#"{"server": {"description": "a\u0000b"}}"#;
    let a = raw(guard.addr, &underscored_token_put(LEGACY, nul)).await;
    // Forwarded without any token: Nova refuses it (401) and stores nothing.
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.last();
    assert!(seen.headers.keys().all(|k| !k.as_str().contains('_')));
    assert!(!seen.headers.contains_key("x-auth-token"));
}

#[tokio::test]
async fn repeated_microversion_lines_reach_nova_as_the_one_line_decided_on() {
    let (up, guard) = setup().await;
    // Valid at 2.90 (the right-most compute entry), not at 2.1.
    let body = br#"{"server": {"hostname": "web-1"}}"#;
    let req = put(
        SERVER,
        &[
            ("OpenStack-API-Version", "compute 2.1"),
            ("OpenStack-API-Version", "compute 2.90"),
            ("X-OpenStack-Nova-API-Version", "2.1"),
            ("X-OpenStack-Nova-API-Version", "2.2"),
        ],
        body,
    );
    let a = raw(guard.addr, &req).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = headers_of(&up.last());
    assert_eq!(seen["openstack-api-version"], ["compute 2.1, compute 2.90"]);
    assert_eq!(seen["x-openstack-nova-api-version"], ["2.1, 2.2"]);

    // Judged at the version decided on: 2.90 refuses a dotted hostname.
    let bad = br#"{"server": {"hostname": "a.b"}}"#;
    let req = put(
        SERVER,
        &[
            ("OpenStack-API-Version", "compute 2.1"),
            ("OpenStack-API-Version", "compute 2.90"),
        ],
        bad,
    );
    let a = raw(guard.addr, &req).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(a.header("openstack-api-version"), Some("compute 2.90"));
    assert_eq!(up.count(), 1);
}

#[tokio::test]
async fn repeated_content_types_must_agree() {
    let (up, guard) = setup().await;
    let body = br#"{"server": {"name": "a"}}"#;
    let conflicting = request(
        "PUT",
        SERVER,
        &[
            ("Content-Type", "application/json"),
            ("Content-Type", "text/xml"),
        ],
        body,
    );
    let a = raw(guard.addr, &conflicting).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("badRequest"), "{}", a.text());
    assert_eq!(a.header("connection"), Some("close"));
    assert_eq!(up.count(), 0);

    // The same value twice is one value: forwarded as one line.
    let same = request(
        "PUT",
        SERVER,
        &[
            ("Content-Type", "application/json"),
            ("content-type", "application/json"),
        ],
        br#"{"server": {"name": ""}}"#,
    );
    let a = raw(guard.addr, &same).await;
    assert_eq!(a.status, 400, "judged, not left to Nova: {}", a.text());
    let events = guard.wait_exchanges(2).await;
    assert_eq!(events[0]["rule"], "conflictingHeader");
    assert_eq!(events[1]["rule"], "minLength");

    // Differing Content-Lengths never reach Nova either.
    let lengths = b"PUT /v2.1/servers/x HTTP/1.1\r\nHost: h\r\nX-Auth-Token: t\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}";
    let a = raw(guard.addr, lengths).await;
    assert_eq!(a.status, 400);
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn one_host_only() {
    let (up, guard) = setup().await;
    let a = raw(
        guard.addr,
        b"GET /v2.1/servers HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert_eq!(up.count(), 0);
}

/// Every header oslo.middleware's HTTPProxyToWSGI reads, set by a client.
const FORWARDING: &[(&str, &str)] = &[
    ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
    ("X-Forwarded-For", "6.6.6.6"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Host", "evil.example"),
    ("X-Forwarded-Port", "444"),
    ("X-Forwarded-Prefix", "/evil"),
];

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_client_never_reach_nova() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[("NOVA_GUARD_TRUSTED_PROXIES", "10.0.0.0/8")]);
    let a = raw(
        guard.addr,
        &request("GET", "/v2.1/servers", FORWARDING, b""),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = headers_of(&up.last());
    assert_eq!(seen["x-forwarded-for"], ["127.0.0.1"]);
    assert_eq!(seen["x-forwarded-proto"], ["http"]);
    assert_eq!(seen["x-forwarded-host"], ["nova.example:8774"]);
    for gone in ["forwarded", "x-forwarded-port", "x-forwarded-prefix"] {
        assert!(!seen.contains_key(gone), "{gone}: {seen:?}");
    }
}

#[tokio::test]
async fn a_trusted_proxy_s_forwarding_headers_are_kept_even_on_a_dual_stack_listener() {
    let up = Upstream::start().await;
    // A listener on [::] sees IPv4 clients as ::ffff:a.b.c.d: matched as IPv4.
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOVA_GUARD_LISTEN", "[::]:0"),
            ("NOVA_GUARD_TRUSTED_PROXIES", "127.0.0.1/32"),
        ],
    );
    let v4: std::net::SocketAddr = format!("127.0.0.1:{}", guard.addr.port()).parse().unwrap();
    let a = raw(v4, &request("GET", "/v2.1/servers", FORWARDING, b"")).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = headers_of(&up.last());
    assert_eq!(seen["x-forwarded-for"], ["6.6.6.6, 127.0.0.1"]);
    assert_eq!(seen["x-forwarded-proto"], ["https"]);
    assert_eq!(seen["x-forwarded-host"], ["evil.example"]);
    assert_eq!(seen["x-forwarded-port"], ["444"]);
    assert_eq!(seen["x-forwarded-prefix"], ["/evil"]);
    assert_eq!(seen["forwarded"].len(), 1);
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["client"], "6.6.6.6");
    assert!(
        events[0]["peer"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1:"),
        "{}",
        events[0]
    );
}

#[tokio::test]
async fn a_request_without_host_gets_the_address_the_client_connected_to() {
    let (up, guard) = setup().await;
    let a = raw(guard.addr, b"GET /v2.1/servers HTTP/1.0\r\n\r\n").await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = headers_of(&up.last());
    let ours = guard.addr.to_string();
    assert_eq!(seen["host"], [ours.as_str()]);
    assert_eq!(seen["x-forwarded-host"], [ours.as_str()]);
    assert_ne!(seen["host"], [up.addr.to_string()]);
}

/// `depth` nested arrays around `inner`.
fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn bodies_as_deep_as_nova_parses_are_judged() {
    let (up, guard) = setup().await;
    // Legacy /v2 drops unknown keys: Nova parses and accepts this.
    let deep = format!(
        r#"{{"server": {{"name": "a", "x": {}}}}}"#,
        nested(900, "1")
    );
    let a = raw(guard.addr, &put(LEGACY, &[], deep.as_bytes())).await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(up.count(), 1);
    // On /v2.1 the same body is judged: `x` is not allowed.
    let a = raw(guard.addr, &put(SERVER, &[], deep.as_bytes())).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("Additional properties"), "{}", a.text());
    // Deeper than any WSGI server lets Nova parse: malformed.
    let deeper = format!(r#"{{"server": {{"x": {}}}}}"#, nested(1000, "1"));
    let a = raw(guard.addr, &put(LEGACY, &[], deeper.as_bytes())).await;
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(a.text().contains("Malformed request body"), "{}", a.text());
    assert_eq!(up.count(), 1);
}

#[test]
fn an_upstream_url_with_a_password_is_refused_without_showing_it() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_UPSTREAM", "http://nova:hunter2@127.0.0.1:8774")
        .output()
        .expect("run nova-guard");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("NOVA_GUARD_UPSTREAM"), "{stderr}");
    assert!(stderr.contains("without a user or password"), "{stderr}");
    assert!(!stderr.contains("hunter2") && !stdout.contains("hunter2"));
}

#[tokio::test]
async fn connect_to_a_server_url_reaches_nova_as_received() {
    let (up, guard) = setup().await;
    let a = raw(
        guard.addr,
        format!("CONNECT {SERVER} HTTP/1.1\r\nHost: nova.example\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let seen = up.last();
    assert_eq!(seen.method, "CONNECT");
    assert_eq!(seen.uri, SERVER);
}
