//! Black-box tests of create and rebuild validation, the access-IP policy and
//! report-only mode: the binary in front of a recording upstream.

mod common;

use common::{raw, request, Answer, Guard, Upstream};
use serde_json::Value;

const PROJECT: &str = "deadbeef";
const UUID: &str = "0b1e7c2a-5d3f-4e6a-9b8c-1d2e3f4a5b6c";

fn servers() -> String {
    format!("/v2.1/{PROJECT}/servers")
}

fn action() -> String {
    format!("/v2.1/{PROJECT}/servers/{UUID}/action")
}

fn update() -> String {
    format!("/v2.1/{PROJECT}/servers/{UUID}")
}

/// The same request with a chunked body, sent in `chunks` pieces.
fn chunked(method: &str, path: &str, body: &[u8], chunks: usize) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: nova.example:8774\r\nX-Auth-Token: user:deadbeef\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    let size = body.len().div_ceil(chunks).max(1);
    for piece in body.chunks(size) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

fn message(a: &Answer) -> String {
    let v: Value =
        serde_json::from_slice(&a.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", a.text()));
    v["badRequest"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no badRequest message: {}", a.text()))
        .to_owned()
}

#[tokio::test]
async fn create_and_rebuild_guarded_fields() {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
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
        format!(r#"{{"server": {{"name": "{}"}}}}"#, "n".repeat(3000)).as_bytes(),
        5,
    ));
    c.push(chunked(
        "PUT",
        &update(),
        br#"{"server": {"name": " x"}}"#,
        3,
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
