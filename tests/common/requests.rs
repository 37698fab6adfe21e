//! Request bytes as the tests send them, and the paths and bodies they
//! carry.

/// The project every request here is for, under Nova's `/v2.1` endpoint.
pub const PROJECT: &str = "/v2.1/deadbeef";
/// An update-server URL.
pub const SERVER: &str = "/v2.1/deadbeef/servers/9a1d7f4e-2b44-4f0c-9a2e-5e7b1c0d3f11";
/// A valid update whose `accessIPv6` nova-guard rewrites, and the rewrite.
pub const VALID_V6: &[u8] = br#"{"server":{"accessIPv6":"2001:0DB8:0:0:0:0:0:1","name":"x"}}"#;
pub const REWRITTEN_V6: &[u8] = br#"{"server":{"accessIPv6":"2001:db8::1","name":"x"}}"#;
/// An update Nova refuses (`name` too short), and Nova's message for it.
pub const INVALID: &[u8] = br#"{"server": {"name": ""}}"#;
pub const INVALID_ANSWER: &str =
    "Invalid input for field/attribute name. Value: . '' should be non-empty";

/// The URL of server `id` in [`PROJECT`].
pub fn server(id: &str) -> String {
    format!("{PROJECT}/servers/{id}")
}

/// A PUT request with a token and a JSON body, as bytes.
pub fn put(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    request("PUT", path, headers, body)
}

/// A request with a token (unless `headers` has one), a JSON Content-Type
/// (likewise) and a body, as bytes.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: nova.example:8774\r\n");
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !has("x-auth-token") {
        req.push_str("X-Auth-Token: user:deadbeef\r\n");
    }
    if !has("content-type") {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A request as [`request`] builds it, kept alive unless `close`.
pub fn http(method: &str, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let bytes = request(method, path, &[], body);
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
pub type Chunk<'a> = (&'a str, &'a [u8]);

/// A request with a token, a JSON Content-Type and a chunked body: each
/// data chunk's size line carries its extension; the last (zero) chunk
/// carries `last_ext`.
pub fn chunked(method: &str, path: &str, chunks: &[Chunk], last_ext: &str, close: bool) -> Vec<u8> {
    let close = if close { "Connection: close\r\n" } else { "" };
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: nova.example:8774\r\nX-Auth-Token: user:deadbeef\r\n\
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

/// `body` cut into `n` chunks (the last may be shorter) without extensions.
pub fn pieces(body: &[u8], n: usize) -> Vec<Chunk<'_>> {
    let size = body.len().div_ceil(n).max(1);
    body.chunks(size).map(|piece| ("", piece)).collect()
}
