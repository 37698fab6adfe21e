//! nova-guard's own HTTP/1 request reading, differentially against hyper's
//! server and the head tracker: the same client byte stream given to each.
//!
//! Input: byte 0 picks the limits, the rest is what a client sends on one
//! connection (then it shuts its side).
//!
//! The codec side reads the stream as the codec does: a head found by
//! `HeadScanner`, parsed by `h1::head::parse`, its body taken by its framing
//! (by length, or with the chunk decoder), then the next head. A head after
//! the first that `parse_in_place` finds (the codec's way for a head that
//! came in one read) must be the one the scanner finds, read the same way.
//!
//! Oracles, request by request, up to the first one the codec refuses:
//! - hyper reads the same request: same method, same target, same body
//!   bytes (so the same framing decision, and the next request starts at the
//!   same byte); the codec may refuse what hyper accepts (it is stricter:
//!   both `Content-Length` and `Transfer-Encoding`, bare LFs, bytes HTTP
//!   forbids in a target), never the other way round;
//! - the tracker gives every request the codec accepts no ambiguity, and
//!   the codec refuses at or before the first request the tracker judges
//!   ambiguous.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use libfuzzer_sys::fuzz_target;
use nova_guard::h1::head::{parse, parse_in_place, parse_keeping, HeadError, HeadScanner, Limits};
use nova_guard::wire::chunked::ChunkedDecoder;
use nova_guard::wire::{Framing, Tracker, WireVerdict, WireWatch};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    method: String,
    target: String,
    body: Vec<u8>,
}

/// The stream as the codec reads it: the requests it accepts, and whether
/// it refused one (rather than running out of bytes).
fn codec(stream: &[u8], limits: &Limits) -> (Vec<Request>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut scanner = HeadScanner::default();
    loop {
        scanner.reset();
        if !out.is_empty() {
            if let Some(found) = parse_in_place(rest, limits) {
                let len = found.end();
                assert_eq!(scanner.clone().scan(rest, limits, false), Ok(Some(len)));
                let bytes = Bytes::copy_from_slice(&rest[..len]);
                assert_eq!(
                    format!("{:?}", found.keep(bytes.clone())),
                    format!("{:?}", parse_keeping(bytes, limits)),
                );
            }
        }
        let len = match scanner.scan(rest, limits, out.is_empty()) {
            Ok(Some(len)) => len,
            Ok(None) => return (out, false),
            // Served by hyper's HTTP/2: not this target's business.
            Err(HeadError::Http2) => return (out, true),
            Err(_) => return (out, true),
        };
        let head = match parse(Bytes::copy_from_slice(&rest[..len]), limits) {
            Ok(head) => head,
            Err(_) => return (out, true),
        };
        rest = &rest[len..];
        let body = match head.framing {
            Framing::None => Vec::new(),
            Framing::Length(n) => {
                let Some(n) = usize::try_from(n).ok().filter(|n| *n <= rest.len()) else {
                    return (out, false);
                };
                let body = rest[..n].to_vec();
                rest = &rest[n..];
                body
            }
            Framing::Chunked => {
                let mut d = ChunkedDecoder::new(limits.max_headers);
                let mut body = Vec::new();
                while !d.is_done() {
                    if rest.is_empty() {
                        return (out, false);
                    }
                    match d.decode(rest) {
                        Ok(step) => {
                            body.extend_from_slice(&rest[step.data.clone()]);
                            rest = &rest[step.consumed..];
                        }
                        Err(_) => return (out, true),
                    }
                }
                body
            }
        };
        out.push(Request {
            method: head.method().to_owned(),
            target: head.target().to_owned(),
            body,
        });
        // The codec ends the connection after this exchange.
        if head.close {
            return (out, false);
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// The requests hyper's HTTP/1 server reads from the stream.
fn hyper(stream: &[u8], limits: &Limits) -> Vec<Request> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stream = stream.to_vec();
    let limits = *limits;
    let recorded = seen.clone();
    runtime().block_on(async move {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let recorded = recorded.clone();
            async move {
                let method = req.method().to_string();
                let target = req.uri().to_string();
                let body = req.into_body().collect().await?.to_bytes().to_vec();
                recorded
                    .lock()
                    .expect("not poisoned")
                    .push(Request { method, target, body });
                Ok::<_, hyper::Error>(http::Response::new(Empty::<Bytes>::new()))
            }
        });
        let serve = hyper::server::conn::http1::Builder::new()
            .max_buf_size(limits.max_head_bytes)
            .max_headers(limits.max_headers)
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let feed = async move {
            let _ = client.write_all(&stream).await;
            let _ = client.shutdown().await;
            // Drain the answers so that the server is never blocked on them.
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink).await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(serve, feed)
        })
        .await;
    });
    let got = seen.lock().expect("not poisoned").clone();
    got
}

fn tracker(stream: &[u8], limits: &Limits, n: usize) -> Vec<WireVerdict> {
    let watch = WireWatch::new();
    Tracker::new(watch.clone(), limits.max_head_bytes, limits.max_headers).feed(stream);
    (0..n).map(|_| watch.next_verdict()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        // hyper reads heads in a buffer of at least 8 KiB.
        max_head_bytes: [8192, 16384][usize::from(pick & 1)],
        max_headers: [4, 16, 100][usize::from((pick >> 1) % 3)],
        max_uri_bytes: [256, 8192][usize::from((pick >> 3) & 1)],
    };
    let (ours, _refused) = codec(stream, &limits);
    let theirs = hyper(stream, &limits);
    for (i, request) in ours.iter().enumerate() {
        // Targets in other forms (absolute, authority, `*`) hyper's URI
        // parser judges by rules of its own: compared up to the first one.
        if !request.target.starts_with('/') {
            break;
        }
        let theirs = theirs.get(i).unwrap_or_else(|| {
            panic!("request {i} read by the codec, not by hyper: {request:?}")
        });
        assert_eq!(request.method, theirs.method, "request {i}");
        // hyper drops a fragment; the codec forwards the target as received.
        let without_fragment = request.target.split('#').next().unwrap_or_default();
        assert_eq!(without_fragment, theirs.target, "request {i}");
        assert_eq!(request.body, theirs.body, "request {i}: different body");
    }
    let verdicts = tracker(stream, &limits, ours.len() + 1);
    for (i, v) in verdicts.iter().take(ours.len()).enumerate() {
        assert_eq!(v.0, None, "request {i}: the tracker judged {v:?}, the codec accepted it");
    }
});
