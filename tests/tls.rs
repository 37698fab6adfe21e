//! TLS both ways, with certificates made by the test: the listener (and its
//! certificate reloaded on SIGHUP and when its files change, without
//! dropping connections), and
//! `https://` upstreams with a CA bundle and a client certificate.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{nanos, Conn, Guard, Upstream, BOUND};
use http_body_util::Full;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A directory of its own under the system's temporary directory.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!(
            "nova-guard-tls-{name}-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
    fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, text).unwrap();
        p
    }
    /// A certificate and its key as `cert.pem` and `key.pem`; their paths.
    fn write_pair(&self, (cert, key): (String, String)) -> (PathBuf, PathBuf) {
        (self.write("cert.pem", &cert), self.write("key.pem", &key))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test CA that issues leaf certificates for 127.0.0.1 / localhost.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// (certificate PEM, key PEM) for `cn`.
    fn leaf(&self, cn: &str) -> (String, String) {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

fn client_config(ca: &Ca) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(ca.roots())
            .with_no_client_auth(),
    )
}

async fn tls_connect(
    addr: SocketAddr,
    ca: &Ca,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(client_config(ca))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Send one request and read its answer.
async fn ask<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    request: &str,
) -> (u16, String) {
    conn.send(request.as_bytes()).await;
    let a = conn.answer().await;
    (a.status, a.text())
}

fn peer_cert_der(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// nova-guard in front of `up`, serving TLS with this certificate and key
/// (and `extra`).
fn tls_guard(up: &Upstream, cert: &Path, key: &Path, extra: &[(&str, &str)]) -> Guard {
    let mut env = vec![
        ("NOVA_GUARD_TLS_CERT", cert.to_str().unwrap()),
        ("NOVA_GUARD_TLS_KEY", key.to_str().unwrap()),
    ];
    env.extend_from_slice(extra);
    Guard::start(&up.url(), &env)
}

const GET: &str = "GET /v2.1/servers HTTP/1.1\r\nHost: nova.example\r\n\r\n";

#[tokio::test]
async fn the_listener_speaks_tls_and_tells_nova_the_client_used_https() {
    let dir = Dir::new("listener");
    let ca = Ca::new("listener CA");
    let (cert, key) = dir.write_pair(ca.leaf("nova-guard"));
    let up = Upstream::start().await;
    let guard = tls_guard(&up, &cert, &key, &[]);
    let mut tls = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    let (status, body) = ask(&mut tls, GET).await;
    assert_eq!(status, 200, "{body}");
    let seen = up.last();
    assert_eq!(seen.headers["x-forwarded-proto"], "https");
    // A smuggling attempt over TLS is judged the same way.
    let (status, _) = ask(
        &mut tls,
        "POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(up.count(), 1);
    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(guard.addr).await.unwrap();
    plain.write_all(GET.as_bytes()).await.unwrap();
    let mut tmp = [0u8; 64];
    let n = tokio::time::timeout(BOUND, plain.read(&mut tmp))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!tmp[..n].starts_with(b"HTTP/"), "answered in plain HTTP");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = Dir::new("reload");
    let ca = Ca::new("reload CA");
    let (cert, key) = dir.write_pair(ca.leaf("first"));
    let up = Upstream::start().await;
    let guard = tls_guard(&up, &cert, &key, &[]);
    let mut old = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    assert_eq!(ask(&mut old, GET).await.0, 200);
    let first = peer_cert_der(&old.stream);

    // A broken pair is refused and the current certificate stays.
    dir.write("cert.pem", "not a certificate");
    guard.signal("HUP");
    assert!(guard
        .wait_event("TLS certificate reload failed; keeping the current one")
        .await
        .is_some());
    let still = tls_connect(guard.addr, &ca).await.unwrap();
    assert_eq!(peer_cert_der(&still), first);

    let (cert2, key2) = ca.leaf("second");
    dir.write("key.pem", &key2);
    dir.write("cert.pem", &cert2);
    guard.signal("HUP");
    assert!(guard.wait_event("TLS certificate reloaded").await.is_some());
    let mut new = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    assert_ne!(peer_cert_der(&new.stream), first);
    assert_eq!(ask(&mut new, GET).await.0, 200);
    // The connection opened before the reload is still served.
    assert_eq!(ask(&mut old, GET).await.0, 200);
    assert_eq!(up.count(), 3);
}

/// Write a Kubernetes Secret volume's layout: the files in a timestamped
/// directory, `..data` pointing at it, and `tls.crt`/`tls.key` pointing
/// through `..data`. A later call swaps `..data` atomically, as the kubelet
/// does when the Secret changes.
fn secret_volume(dir: &Dir, version: &str, cert: &str, key: &str) {
    let data = dir.path(&format!("..{version}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tls.crt"), cert).unwrap();
    std::fs::write(data.join("tls.key"), key).unwrap();
    let tmp = dir.path("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path("..data")).unwrap();
    for file in ["tls.crt", "tls.key"] {
        if std::fs::symlink_metadata(dir.path(file)).is_err() {
            std::os::unix::fs::symlink(format!("..data/{file}"), dir.path(file)).unwrap();
        }
    }
}

fn count_events(guard: &Guard, message: &str) -> usize {
    guard
        .events()
        .iter()
        .filter(|e| e["message"] == message)
        .count()
}

#[tokio::test]
async fn a_secret_updated_by_a_symlink_swap_is_taken_without_a_signal() {
    let dir = Dir::new("secret");
    let ca = Ca::new("secret CA");
    let (cert1, key1) = ca.leaf("first");
    secret_volume(&dir, "2026_01", &cert1, &key1);
    let up = Upstream::start().await;
    let guard = tls_guard(&up, &dir.path("tls.crt"), &dir.path("tls.key"), &[]);
    let mut old = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    assert_eq!(ask(&mut old, GET).await.0, 200);
    let first = peer_cert_der(&old.stream);

    let (cert2, key2) = ca.leaf("second");
    secret_volume(&dir, "2026_02", &cert2, &key2);
    assert!(guard
        .wait_event("TLS certificate files changed; reloaded")
        .await
        .is_some());
    let mut new = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    let second = peer_cert_der(&new.stream);
    assert_ne!(second, first);
    assert_eq!(ask(&mut new, GET).await.0, 200);
    assert_eq!(ask(&mut old, GET).await.0, 200);

    // A certificate with another certificate's key: refused, logged once,
    // and the current pair kept.
    let (cert3, _) = ca.leaf("third");
    secret_volume(&dir, "2026_03", &cert3, &key2);
    let refused = "TLS certificate files changed but do not load; keeping the current one";
    assert!(guard.wait_event(refused).await.is_some());
    tokio::time::sleep(nova_guard::reload::POLL * 2 + Duration::from_millis(500)).await;
    assert_eq!(count_events(&guard, refused), 1);
    let still = tls_connect(guard.addr, &ca).await.unwrap();
    assert_eq!(peer_cert_der(&still), second);

    // Put right: taken.
    let (cert4, key4) = ca.leaf("fourth");
    secret_volume(&dir, "2026_04", &cert4, &key4);
    for _ in 0..100 {
        if count_events(&guard, "TLS certificate files changed; reloaded") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fourth = tls_connect(guard.addr, &ca).await.unwrap();
    let fourth = peer_cert_der(&fourth);
    assert_ne!(fourth, second);
    assert_ne!(fourth, first);
}

#[tokio::test]
async fn certificate_files_replaced_in_place_are_taken_without_a_signal() {
    let dir = Dir::new("files");
    let ca = Ca::new("files CA");
    let (cert, key) = dir.write_pair(ca.leaf("first"));
    let up = Upstream::start().await;
    let guard = tls_guard(&up, &cert, &key, &[]);
    let first = peer_cert_der(&tls_connect(guard.addr, &ca).await.unwrap());
    // As a renewal tool writes them: each file replaced by a rename.
    let (cert2, key2) = ca.leaf("second");
    dir.write("key.pem.new", &key2);
    dir.write("cert.pem.new", &cert2);
    std::fs::rename(dir.path("key.pem.new"), &key).unwrap();
    std::fs::rename(dir.path("cert.pem.new"), &cert).unwrap();
    assert!(guard
        .wait_event("TLS certificate files changed; reloaded")
        .await
        .is_some());
    let mut new = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    assert_ne!(peer_cert_der(&new.stream), first);
    assert_eq!(ask(&mut new, GET).await.0, 200);
}

/// An HTTPS stand-in for Nova; with `client_ca`, it requires a client
/// certificate issued by it. Records the X-Forwarded-Proto it got.
async fn https_upstream(ca: &Ca, client_ca: Option<&Ca>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let (cert, key) = ca.leaf("nova");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let config = match client_ca {
        Some(client_ca) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(client_ca.roots()),
                provider(),
            )
            .build()
            .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
                .unwrap()
        }
        None => builder
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    };
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                    let seen = seen.clone();
                    async move {
                        let _: &hyper::body::Incoming = req.body();
                        seen.lock().unwrap().push(
                            req.headers()
                                .get("x-forwarded-proto")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned(),
                        );
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"{\"tls\": true}",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

async fn plain_get(addr: SocketAddr) -> (u16, String) {
    ask(&mut Conn::open(addr).await, GET).await
}

#[tokio::test]
async fn an_https_upstream_is_verified_against_the_ca_bundle() {
    let dir = Dir::new("upstream");
    let ca = Ca::new("nova CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let (addr, seen) = https_upstream(&ca, None).await;
    let url = format!("https://localhost:{}", addr.port());

    let guard = Guard::start(
        &url,
        &[("NOVA_GUARD_UPSTREAM_CA_FILE", ca_file.to_str().unwrap())],
    );
    let (status, body) = plain_get(guard.addr).await;
    assert_eq!((status, body.as_str()), (200, r#"{"tls": true}"#));
    assert_eq!(seen.lock().unwrap().as_slice(), ["http"]);

    // Signed by another CA: not trusted, a 502 naming the connection.
    let other = Ca::new("another CA");
    let other_file = dir.write("other.pem", &other.pem());
    let guard = Guard::start(
        &url,
        &[("NOVA_GUARD_UPSTREAM_CA_FILE", other_file.to_str().unwrap())],
    );
    let (status, body) = plain_get(guard.addr).await;
    assert_eq!(status, 502, "{body}");
    let events = guard.wait_exchanges(1).await;
    assert_eq!(events[0]["error"], "upstream_connect");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_an_upstream_that_requires_one() {
    let dir = Dir::new("mtls");
    let ca = Ca::new("nova CA");
    let client_ca = Ca::new("client CA");
    let ca_file = dir.write("ca.pem", &ca.pem());
    let (client_cert, client_key) = client_ca.leaf("nova-guard");
    let client_cert = dir.write("client.pem", &client_cert);
    let client_key = dir.write("client-key.pem", &client_key);
    let (addr, seen) = https_upstream(&ca, Some(&client_ca)).await;
    let url = format!("https://localhost:{}", addr.port());

    let guard = Guard::start(
        &url,
        &[
            ("NOVA_GUARD_UPSTREAM_CA_FILE", ca_file.to_str().unwrap()),
            (
                "NOVA_GUARD_UPSTREAM_CLIENT_CERT",
                client_cert.to_str().unwrap(),
            ),
            (
                "NOVA_GUARD_UPSTREAM_CLIENT_KEY",
                client_key.to_str().unwrap(),
            ),
        ],
    );
    assert_eq!(plain_get(guard.addr).await.0, 200);
    assert_eq!(seen.lock().unwrap().len(), 1);

    // Without it, Nova refuses the handshake: 502.
    let guard = Guard::start(
        &url,
        &[("NOVA_GUARD_UPSTREAM_CA_FILE", ca_file.to_str().unwrap())],
    );
    assert_eq!(plain_get(guard.addr).await.0, 502);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn bad_tls_settings_stop_start_up_naming_each_variable() {
    let dir = Dir::new("config");
    let ca = Ca::new("config CA");
    let (cert, _) = ca.leaf("a");
    let (_, other_key) = ca.leaf("b");
    let cert = dir.write("cert.pem", &cert);
    let other_key = dir.write("other-key.pem", &other_key);
    let missing: &Path = &dir.path("missing.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_TLS_CERT", &cert)
        .env("NOVA_GUARD_TLS_KEY", &other_key)
        .env("NOVA_GUARD_UPSTREAM", "https://127.0.0.1:1")
        .env("NOVA_GUARD_UPSTREAM_CA_FILE", missing)
        .env("NOVA_GUARD_UPSTREAM_CLIENT_CERT", &cert)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in [
        "NOVA_GUARD_TLS_CERT",
        "NOVA_GUARD_UPSTREAM_CA_FILE",
        "NOVA_GUARD_UPSTREAM_CLIENT_KEY",
    ] {
        assert!(err.contains(var), "{var} missing from {err}");
    }
    assert!(err.contains("do not go together"), "{err}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_dropped() {
    let dir = Dir::new("handshake");
    let ca = Ca::new("handshake CA");
    let (cert, key) = dir.write_pair(ca.leaf("nova-guard"));
    let up = Upstream::start().await;
    let guard = tls_guard(
        &up,
        &cert,
        &key,
        &[("NOVA_GUARD_CLIENT_HEADER_TIMEOUT", "1s")],
    );
    let mut silent = TcpStream::connect(guard.addr).await.unwrap();
    let mut tmp = [0u8; 64];
    let end = tokio::time::timeout(BOUND, silent.read(&mut tmp)).await;
    assert!(matches!(end, Ok(Ok(0)) | Ok(Err(_))), "kept: {end:?}");
    // A proper client is still served.
    let mut tls = Conn::new(tls_connect(guard.addr, &ca).await.unwrap());
    assert_eq!(ask(&mut tls, GET).await.0, 200);
}
