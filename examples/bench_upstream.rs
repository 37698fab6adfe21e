//! A fast, fixed-answer stand-in for nova-api, for the macro-benchmarks
//! (`scripts/bench`) and the soak (`scripts/soak`). One thread, HTTP/1.1
//! keep-alive, no logging.
//!
//! - `PUT` anything: the body (`Content-Length` or chunked) is read whole and
//!   answered `200` with a fixed server document of about 400 bytes;
//! - `GET` a path ending in `/stream`: 10 MiB (`BENCH_STREAM_BYTES`) sent as
//!   64 KiB writes of one shared buffer, with a `Content-Length`;
//! - any other request: `200` with a fixed 1024-byte JSON document.
//!
//! Heads are parsed by httparse into a fixed array and answers written from
//! kept bytes, so that its own work per request is small and does not grow
//! with the header lines a proxy adds (`X-Forwarded-*`, a request id): it
//! shares a CPU with the load generator, and what it spends there is taken
//! from the throughput of every proxy that is not the limit itself.
//!
//! Usage: `bench_upstream ADDR` (e.g. `127.0.0.1:18774`). It prints
//! `listening ADDR` once bound and runs until killed.

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 64 * 1024;
const DEFAULT_STREAM_BYTES: u64 = 10 * 1024 * 1024;
const READ: usize = 16 * 1024;
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
const REQUEST_ID: &str = "req-00000000-0000-4000-8000-000000000000";

const UPDATED: &str = r#"{"server": {"id": "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10", "name": "web-01", "status": "ACTIVE", "tenant_id": "6f70656e737461636b20342065766572", "user_id": "fake", "accessIPv4": "192.0.2.10", "accessIPv6": "2001:db8::1", "description": "bench server", "updated": "2026-01-01T00:00:00Z", "created": "2026-01-01T00:00:00Z", "links": [{"rel": "self", "href": "http://127.0.0.1/v2.1/servers/5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10"}]}}"#;

/// A JSON document of exactly 1024 bytes.
fn one_kib() -> Vec<u8> {
    let head = r#"{"server": {"id": "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10", "name": "web-01", "status": "ACTIVE", "metadata": {"pad": ""#;
    let tail = "\"}}}";
    let pad = 1024 - head.len() - tail.len();
    let mut s = String::with_capacity(1024);
    s.push_str(head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str(tail);
    debug_assert_eq!(s.len(), 1024);
    s.into_bytes()
}

struct Answers {
    kib: Vec<u8>,
    chunk: Vec<u8>,
    stream_bytes: u64,
}

/// How a request's body is framed.
enum Body {
    Length(u64),
    Chunked,
}

/// What the connection needs from a request head.
struct Head {
    len: usize,
    put: bool,
    head_method: bool,
    stream: bool,
    body: Body,
    close: bool,
    expect_continue: bool,
}

/// `Ok(None)`: the head is not all here yet. `Err`: not a head to answer.
fn parse(buf: &[u8]) -> Result<Option<Head>, ()> {
    // Uninitialised: httparse writes the slots it fills, nothing is zeroed.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let mut body = Body::Length(0);
    let mut close = req.version == Some(0);
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let value = h.value;
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse().ok());
            body = Body::Length(n.ok_or(())?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") {
                return Err(());
            }
            body = Body::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    Ok(Some(Head {
        len,
        put: method == "PUT",
        head_method: method == "HEAD",
        stream: method == "GET" && path.ends_with("/stream"),
        body,
        close,
        expect_continue,
    }))
}

/// More bytes into `buf`; `false` when the peer closed or failed.
async fn fill(s: &mut TcpStream, buf: &mut BytesMut) -> bool {
    buf.reserve(READ);
    matches!(s.read_buf(buf).await, Ok(n) if n > 0)
}

/// Read past `n` bytes of body.
async fn skip(s: &mut TcpStream, buf: &mut BytesMut, mut n: u64) -> bool {
    while n > 0 {
        if buf.is_empty() && !fill(s, buf).await {
            return false;
        }
        let take = n.min(buf.len() as u64) as usize;
        buf.advance(take);
        n -= take as u64;
    }
    true
}

/// Read past a chunked body and its trailer section.
async fn skip_chunked(s: &mut TcpStream, buf: &mut BytesMut) -> bool {
    loop {
        let (line, size) = loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete(found)) => break found,
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                _ => return false,
            }
            if !fill(s, buf).await {
                return false;
            }
        };
        buf.advance(line);
        if size == 0 {
            break;
        }
        // The data and its CRLF.
        if !skip(s, buf, size + 2).await {
            return false;
        }
    }
    // Trailer lines, up to the empty one.
    loop {
        match memchr::memmem::find(buf, b"\r\n") {
            Some(0) => {
                buf.advance(2);
                return true;
            }
            Some(at) => buf.advance(at + 2),
            None if buf.len() < MAX_HEAD => {
                if !fill(s, buf).await {
                    return false;
                }
            }
            None => return false,
        }
    }
}

/// The `Date` value, formatted once a second.
fn push_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != second {
            *d = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(d.1.as_bytes());
    });
}

/// The answer's head, as hyper wrote it: the same lines in the same order.
fn push_head(out: &mut Vec<u8>, len: u64, close: bool) {
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    out.extend_from_slice(b"\r\nx-openstack-request-id: ");
    out.extend_from_slice(REQUEST_ID.as_bytes());
    if close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\ndate: ");
    push_date(out);
    out.extend_from_slice(b"\r\n\r\n");
}

async fn connection(mut s: TcpStream, a: &'static Answers) {
    let mut buf = BytesMut::with_capacity(READ);
    let mut out = Vec::with_capacity(2 * 1024);
    loop {
        let head = loop {
            match parse(&buf) {
                Ok(Some(head)) => break head,
                Ok(None) if buf.len() < MAX_HEAD => {}
                _ => {
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            }
            if !fill(&mut s, &mut buf).await {
                return;
            }
        };
        buf.advance(head.len);
        let pending = match head.body {
            Body::Length(n) => n > buf.len() as u64,
            Body::Chunked => true,
        };
        if head.expect_continue
            && pending
            && s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.is_err()
        {
            return;
        }
        let read = match head.body {
            Body::Length(n) => skip(&mut s, &mut buf, n).await,
            Body::Chunked => skip_chunked(&mut s, &mut buf).await,
        };
        if !read {
            return;
        }
        out.clear();
        let wrote = if head.stream {
            push_head(&mut out, a.stream_bytes, head.close);
            let mut ok = s.write_all(&out).await.is_ok();
            let mut left = a.stream_bytes;
            while ok && left > 0 {
                let n = left.min(a.chunk.len() as u64) as usize;
                ok = s.write_all(&a.chunk[..n]).await.is_ok();
                left -= n as u64;
            }
            ok
        } else {
            let body = if head.put {
                UPDATED.as_bytes()
            } else {
                &a.kib[..]
            };
            push_head(&mut out, body.len() as u64, head.close);
            if !head.head_method {
                out.extend_from_slice(body);
            }
            s.write_all(&out).await.is_ok()
        };
        if !wrote || head.close {
            return;
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18774".to_owned());
    let stream_bytes = std::env::var("BENCH_STREAM_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_STREAM_BYTES);
    let answers: &'static Answers = Box::leak(Box::new(Answers {
        kib: one_kib(),
        chunk: vec![b'x'; CHUNK],
        stream_bytes,
    }));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(&addr).await?;
            println!("listening {}", listener.local_addr()?);
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, answers));
            }
        })
}
