//! Connections to Nova for the HTTP/1 codec: plain TCP or TLS, connected
//! within the connect timeout, and kept for reuse.
//!
//! A client connection keeps the Nova connection it used for its next
//! request; when the client goes, the connection joins its worker's idle
//! list (one per worker thread, no lock), from which new client connections
//! take one before connecting anew. An idle connection is checked before it
//! is used (Nova may have closed it) and closed after the idle timeout.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use http::Uri;

use crate::error::{BoxError, ErrorKind, ProxyError};

/// Idle connections kept per worker, at most.
const IDLE_PER_WORKER: usize = 256;

/// Where Nova is and how it is reached: what the configuration says, for
/// both clients of Nova (this codec's and hyper's for HTTP/2).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Scheme and authority only.
    pub uri: Uri,
    /// Nova's base path, without a trailing `/` (empty for none).
    pub base_path: String,
    pub connect_timeout: Duration,
    /// Nova's response head must arrive within this, nor may its answer
    /// pause longer.
    pub timeout: Duration,
    pub idle_timeout: Duration,
    /// For an `https://` Nova: its roots and client certificate, loaded.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Settings {
    pub fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    /// `host:port`, the port defaulted by the scheme.
    pub fn host_port(&self) -> String {
        let host = self.uri.host().unwrap_or_default();
        let port = self
            .uri
            .port_u16()
            .unwrap_or(if self.is_https() { 443 } else { 80 });
        format!("{host}:{port}")
    }
}

/// How to reach Nova.
pub struct Upstream {
    /// `host:port`, as connected to.
    address: String,
    /// Nova's authority as its URL gives it (the Host of nova-guard's own
    /// requests to it).
    authority: String,
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    /// Nova's base path, put in front of every request target.
    pub base_path: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("base_path", &self.base_path)
            .finish()
    }
}

impl Upstream {
    pub fn new(settings: &Settings) -> Result<Arc<Self>, BoxError> {
        let uri = &settings.uri;
        let host = uri.host().ok_or("upstream URL has no host")?;
        let https = settings.is_https();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // A bracketed IPv6 literal connects and verifies without its brackets.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let address = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let tls = match &settings.tls {
            Some(tls) => {
                let name = ServerName::try_from(bare.to_owned())
                    .map_err(|e| format!("upstream host {bare:?}: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(tls.clone()), name))
            }
            None if https => return Err("an https upstream without its TLS settings".into()),
            None => None,
        };
        Ok(Arc::new(Upstream {
            address,
            authority: uri.authority().map_or_else(String::new, |a| a.to_string()),
            tls,
            base_path: settings.base_path.clone(),
            connect_timeout: settings.connect_timeout,
            idle_timeout: settings.idle_timeout,
        }))
    }

    /// Nova's authority, as its URL gives it.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// A connection to Nova: an idle one of this worker's, or a new one.
    /// The flag says whether it was used before (and so may have been
    /// closed by Nova since).
    pub async fn connection(&self) -> Result<(Io, bool), ProxyError> {
        if let Some(io) = self.take_idle() {
            return Ok((io, true));
        }
        Ok((self.connect().await?, false))
    }

    /// A new connection to Nova.
    pub async fn connect(&self) -> Result<Io, ProxyError> {
        let connect = async {
            let tcp = TcpStream::connect(self.address.as_str()).await?;
            let _ = tcp.set_nodelay(true);
            let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(60));
            let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
            Ok::<_, io::Error>(tcp)
        };
        let tcp = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(ProxyError::with_source(ErrorKind::UpstreamConnect, e)),
            Err(_) => {
                return Err(ProxyError::with_source(
                    ErrorKind::UpstreamConnect,
                    "connect timed out",
                ))
            }
        };
        let Some((connector, name)) = &self.tls else {
            return Ok(Io::Plain(tcp));
        };
        match tokio::time::timeout(self.connect_timeout, connector.connect(name.clone(), tcp)).await
        {
            Ok(Ok(tls)) => Ok(Io::Tls(Box::new(tls))),
            Ok(Err(e)) => Err(ProxyError::with_source(ErrorKind::UpstreamConnect, e)),
            Err(_) => Err(ProxyError::with_source(
                ErrorKind::UpstreamConnect,
                "TLS handshake timed out",
            )),
        }
    }

    /// Keep `io` for another exchange on this worker.
    pub fn put_idle(&self, io: Io) {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            if idle.len() < IDLE_PER_WORKER {
                idle.push((io, Instant::now()));
            }
        });
    }

    fn take_idle(&self) -> Option<Io> {
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            while let Some((mut io, since)) = idle.pop() {
                if since.elapsed() < self.idle_timeout && io.is_open() {
                    return Some(io);
                }
            }
            None
        })
    }

    /// Close this worker's connections idle for longer than the timeout.
    pub fn sweep_idle(&self) {
        IDLE.with(|idle| {
            idle.borrow_mut()
                .retain_mut(|(io, since)| since.elapsed() < self.idle_timeout && io.is_open());
        });
    }

    /// How often [`Upstream::sweep_idle`] should run.
    pub fn sweep_interval(&self) -> Duration {
        (self.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5))
    }
}

thread_local! {
    /// This worker's idle connections to Nova, most recent last.
    static IDLE: RefCell<Vec<(Io, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// A connection to Nova.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Io {
    /// Whether Nova has not closed it (nor sent anything unasked): a read
    /// that would block says so, without waiting.
    pub fn is_open(&mut self) -> bool {
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}
