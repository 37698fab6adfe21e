//! A raw HTTP/1.1 client: exactly the bytes a test writes, and the answers
//! as they arrive.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Guard, BOUND};

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection that reads HTTP/1.1 answers one after another,
/// keeping what it read past one answer for the next, so that pipelined
/// answers arriving in one read are all kept. Plain TCP by default; any
/// stream (TLS) through [`Conn::new`].
pub struct Conn<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Conn<TcpStream> {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn::new(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Write all of `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Read more; false at EOF or on an error. Panics at the bound.
    async fn fill(&mut self) -> bool {
        let mut tmp = vec![0u8; 16384];
        match tokio::time::timeout(BOUND, self.stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&tmp[..n]);
                true
            }
            Err(_) => panic!("no answer within the bound: {:?}", self.text()),
        }
    }

    /// The next answer, or why not. Its body is framed by Content-Length,
    /// chunked, absent (1xx, 204, 304), or else runs until the peer closes.
    pub async fn try_answer(&mut self) -> Result<Answer, String> {
        let (mut answer, head) = loop {
            match parse_head(&self.buf) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(e) => return Err(format!("{e}: {:?}", self.text())),
            }
            if !self.fill().await {
                return Err(format!("closed before an answer head: {:?}", self.text()));
            }
        };
        let status = answer.status;
        let mut at = head;
        let length = answer.header("content-length").map(str::to_owned);
        let chunked = answer.header("transfer-encoding").is_some();
        if let Some(len) = length {
            let len: usize = len
                .parse()
                .map_err(|e| format!("bad Content-Length {len:?}: {e}"))?;
            while self.buf.len() < at + len {
                if !self.fill().await {
                    return Err(format!("closed inside a body: {:?}", self.text()));
                }
            }
            answer.body = self.buf[at..at + len].to_vec();
            at += len;
        } else if chunked {
            at = self.read_chunked(at, &mut answer.body).await?;
        } else if !matches!(status, 100..=199 | 204 | 304) {
            while self.fill().await {}
            at = self.buf.len();
            answer.body = self.buf[head..].to_vec();
        }
        self.buf.drain(..at);
        Ok(answer)
    }

    /// A chunked body from `at` into `body`; where it ends (after the
    /// empty trailer section).
    async fn read_chunked(&mut self, mut at: usize, body: &mut Vec<u8>) -> Result<usize, String> {
        loop {
            let Some(eol) = self.buf[at..].windows(2).position(|w| w == b"\r\n") else {
                if !self.fill().await {
                    return Err("closed inside a chunked body".into());
                }
                continue;
            };
            let line = String::from_utf8_lossy(&self.buf[at..at + eol]).into_owned();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
            let start = at + eol + 2;
            // The last chunk is followed by an empty trailer section.
            let need = if size == 0 {
                start + 2
            } else {
                start + size + 2
            };
            while self.buf.len() < need {
                if !self.fill().await {
                    return Err("closed inside a chunked body".into());
                }
            }
            if size == 0 {
                return Ok(need);
            }
            body.extend_from_slice(&self.buf[start..start + size]);
            at = need;
        }
    }

    /// The next answer; panics if there is none.
    pub async fn answer(&mut self) -> Answer {
        self.try_answer().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// What was read and not yet taken by an answer.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Everything not yet taken, and all the peer sends until it closes (EOF
    /// or reset) within the bound; `None` when it is still open at the bound.
    pub async fn until_closed(&mut self) -> Option<Vec<u8>> {
        let rest = until_closed(&mut self.stream).await?;
        let mut got = std::mem::take(&mut self.buf);
        got.extend_from_slice(&rest);
        Some(got)
    }

    /// Whether the peer closes the connection within the bound, whatever
    /// it still sends.
    pub async fn closed_by_peer(&mut self) -> bool {
        self.until_closed().await.is_some()
    }

    /// Whether the peer closes the connection within the bound, sending
    /// nothing more.
    pub async fn closed_quietly(&mut self) -> bool {
        self.until_closed().await == Some(Vec::new())
    }
}

/// An answer's head at the start of `bytes` (with an empty body) and its
/// length; `None` while it is incomplete.
fn parse_head(bytes: &[u8]) -> Result<Option<(Answer, usize)>, String> {
    let mut h = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut h);
    match resp.parse(bytes) {
        Ok(httparse::Status::Complete(head)) => {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let answer = Answer {
                status: resp.code.unwrap_or(0),
                headers,
                body: Vec::new(),
            };
            Ok(Some((answer, head)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("bad answer ({e})")),
    }
}

/// The first answer in `bytes` (all a peer sent before it closed), if its
/// head arrived, and whether its body (by Content-Length) arrived whole.
pub fn first_answer(bytes: &[u8]) -> Option<(Answer, bool)> {
    let (mut answer, head) = parse_head(bytes).ok()??;
    let rest = &bytes[head..];
    let whole = match answer.header("content-length") {
        Some(len) => {
            let len: usize = len.parse().unwrap();
            answer.body = rest[..rest.len().min(len)].to_vec();
            rest.len() >= len
        }
        None => {
            answer.body = rest.to_vec();
            false
        }
    };
    Some((answer, whole))
}

/// Everything the peer sends until it closes (EOF or reset), within the
/// bound; `None` when it is still open at the bound.
pub async fn until_closed<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut tmp = vec![0u8; 65536];
    let until = tokio::time::Instant::now() + BOUND;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut tmp)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&tmp[..n]),
            Err(_) => return None,
        }
    }
}

/// Send raw bytes on a fresh connection, read one answer.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut conn = Conn::open(addr).await;
    conn.send(request).await;
    conn.answer().await
}

/// Close `stream` with a reset, as a client that is killed or gives up
/// abruptly does.
pub fn reset(stream: TcpStream) {
    // A zero linger sends a reset at once; nothing waits on it.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Send bytes on a fresh connection to `guard`; read one answer; tell
/// whether the connection was then closed.
pub async fn exchange(guard: &Guard, request: &[u8]) -> (Answer, bool) {
    let mut stream = Conn::open(guard.addr).await;
    stream.send(request).await;
    let answer = tokio::time::timeout(BOUND, stream.answer())
        .await
        .expect("an answer");
    let closed = stream.closed_by_peer().await;
    (answer, closed)
}

/// `GET path` on a fresh connection that closes after it; its answer.
pub async fn send_get(addr: SocketAddr, path: &str) -> Answer {
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw(addr, req.as_bytes()).await
}

/// An HTTP/2 client connection to `addr` (cleartext, by prior knowledge):
/// the handle that sends requests, and the connection, for the caller to
/// drive.
pub async fn h2_handshake<B>(
    addr: SocketAddr,
) -> (
    http2::SendRequest<B>,
    http2::Connection<TokioIo<TcpStream>, B, TokioExecutor>,
)
where
    B: http_body::Body + Unpin + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap()
}
