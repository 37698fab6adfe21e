//! A fast, fixed-answer stand-in for nova-api, for the macro-benchmarks
//! (`scripts/bench`). One thread, HTTP/1.1 keep-alive, no logging.
//!
//! - `PUT` anything: the body is read whole and answered `200` with a fixed
//!   server document of about 400 bytes;
//! - `GET` a path ending in `/stream`: 10 MiB (`BENCH_STREAM_BYTES`) sent as
//!   64 KiB frames of one shared buffer, with a `Content-Length`;
//! - any other request: `200` with a fixed 1024-byte JSON document.
//!
//! Usage: `bench_upstream ADDR` (e.g. `127.0.0.1:18774`). It prints
//! `listening ADDR` once bound and runs until killed.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const CHUNK: usize = 64 * 1024;
const DEFAULT_STREAM_BYTES: u64 = 10 * 1024 * 1024;

const UPDATED: &str = r#"{"server": {"id": "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10", "name": "web-01", "status": "ACTIVE", "tenant_id": "6f70656e737461636b20342065766572", "user_id": "fake", "accessIPv4": "192.0.2.10", "accessIPv6": "2001:db8::1", "description": "bench server", "updated": "2026-01-01T00:00:00Z", "created": "2026-01-01T00:00:00Z", "links": [{"rel": "self", "href": "http://127.0.0.1/v2.1/servers/5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10"}]}}"#;

/// A JSON document of exactly 1024 bytes.
fn one_kib() -> Bytes {
    let head = r#"{"server": {"id": "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10", "name": "web-01", "status": "ACTIVE", "metadata": {"pad": ""#;
    let tail = "\"}}}";
    let pad = 1024 - head.len() - tail.len();
    let mut s = String::with_capacity(1024);
    s.push_str(head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str(tail);
    debug_assert_eq!(s.len(), 1024);
    Bytes::from(s)
}

/// `remaining` bytes, sent as clones of one shared chunk (no copy).
struct Stream {
    chunk: Bytes,
    remaining: u64,
}

impl Body for Stream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        let data = self.chunk.slice(..n as usize);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

type AnyBody = http_body_util::Either<Full<Bytes>, Stream>;

struct Answers {
    kib: Bytes,
    updated: Bytes,
    chunk: Bytes,
    stream_bytes: u64,
}

async fn answer(a: &Answers, req: Request<Incoming>) -> Response<AnyBody> {
    let json = HeaderValue::from_static("application/json");
    let rid = HeaderValue::from_static("req-00000000-0000-4000-8000-000000000000");
    let body = if req.method() == Method::PUT {
        // Read it all, as Nova does; a broken body still gets an answer.
        let _ = req.into_body().collect().await;
        AnyBody::Left(Full::new(a.updated.clone()))
    } else if req.uri().path().ends_with("/stream") {
        AnyBody::Right(Stream {
            chunk: a.chunk.clone(),
            remaining: a.stream_bytes,
        })
    } else {
        AnyBody::Left(Full::new(a.kib.clone()))
    };
    let len = body.size_hint().exact().unwrap_or_default();
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, json);
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp.headers_mut().insert("x-openstack-request-id", rid);
    resp
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
        updated: Bytes::from_static(UPDATED.as_bytes()),
        chunk: Bytes::from(vec![b'x'; CHUNK]),
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
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| async move {
                        Ok::<_, Infallible>(answer(answers, req).await)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
