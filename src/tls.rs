//! TLS with rustls (ring): the listener's certificate, reloadable without
//! dropping connections, and the client side for `https://` upstreams
//! (system roots or a CA bundle, optional client certificate).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    parse_certs(&read_file(path)?, path)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    parse_key(&read_file(path)?, path)
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn parse_certs(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM in {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("no private key in {}: {e}", path.display()))
}

/// A certificate chain and its key, checked to belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    PemPair::read(cert, key)?.certified_key(cert, key)
}

/// The content of a certificate file and a key file, read one after the
/// other; what is parsed is exactly what was fingerprinted.
struct PemPair {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl PemPair {
    fn read(cert: &Path, key: &Path) -> Result<PemPair, String> {
        Ok(PemPair {
            cert: read_file(cert)?,
            key: read_file(key)?,
        })
    }

    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.cert.hash(&mut h);
        self.key.hash(&mut h);
        h.finish()
    }

    fn certified_key(&self, cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
        CertifiedKey::from_der(
            parse_certs(&self.cert, cert)?,
            parse_key(&self.key, key)?,
            &provider(),
        )
        .map_err(|e| format!("certificate and key do not go together: {e}"))
    }
}

/// The listener's certificate, replaced in place by [`ReloadingCert::reload`]:
/// handshakes after a reload get the new one, open connections are untouched.
#[derive(Debug)]
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The fingerprint of the files last tried, loaded or refused. Taken from
    /// the bytes that were parsed, so a change made between loading and a
    /// later look at the files is still seen as a change.
    tried: AtomicU64,
}

impl ReloadingCert {
    pub fn load(cert: &Path, key: &Path) -> Result<Self, String> {
        let pair = PemPair::read(cert, key)?;
        let current = pair.certified_key(cert, key)?;
        Ok(ReloadingCert {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(current)),
            tried: AtomicU64::new(pair.fingerprint()),
        })
    }

    /// The certificate chain's file, as configured.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Read the files again; on any problem the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let pair = PemPair::read(&self.cert, &self.key)?;
        self.tried.store(pair.fingerprint(), Ordering::Relaxed);
        self.take(&pair)
    }

    /// Reload when the files' content differs from what was last tried.
    /// `None` when it does not, or when either file cannot be read (in the
    /// middle of being replaced, or gone): it is looked at again later.
    pub fn reload_if_changed(&self) -> Option<Result<(), String>> {
        let pair = PemPair::read(&self.cert, &self.key).ok()?;
        let fingerprint = pair.fingerprint();
        if self.tried.swap(fingerprint, Ordering::Relaxed) == fingerprint {
            return None;
        }
        Some(self.take(&pair))
    }

    fn take(&self, pair: &PemPair) -> Result<(), String> {
        let fresh = pair.certified_key(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// The listener's TLS configuration (HTTP/2 and HTTP/1.1 by ALPN).
pub fn server_config(cert: Arc<ReloadingCert>) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Check a CA bundle: readable, at least one certificate that parses.
pub fn check_ca_file(path: &Path) -> Result<(), String> {
    roots_from_file(path).map(|_| ())
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err("no system CA certificates found; set NOVA_GUARD_UPSTREAM_CA_FILE".into());
    }
    Ok(roots)
}

/// What connecting to an `https://` upstream needs.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// The client configuration for `https://` upstreams.
pub fn client_config(settings: &UpstreamTls) -> Result<ClientConfig, String> {
    let roots = match &settings.ca_file {
        Some(path) => roots_from_file(path)?,
        None => system_roots()?,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match &settings.client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| format!("client certificate: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM.
    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn served(cert: &ReloadingCert) -> Vec<u8> {
        cert.current.read().unwrap().cert[0].to_vec()
    }

    struct Files(PathBuf);

    impl Files {
        fn new(name: &str) -> Files {
            let dir = std::env::temp_dir()
                .join(format!("nova-guard-tls-unit-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Files(dir)
        }
        fn put(&self, (cert, key): &(String, String)) {
            std::fs::write(self.0.join("cert.pem"), cert).unwrap();
            std::fs::write(self.0.join("key.pem"), key).unwrap();
        }
        fn load(&self) -> ReloadingCert {
            ReloadingCert::load(&self.0.join("cert.pem"), &self.0.join("key.pem")).unwrap()
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_replaced_before_the_first_look_are_still_a_change() {
        let files = Files::new("early");
        files.put(&pair("first"));
        let cert = files.load();
        let first = served(&cert);
        // Replaced before anything has looked at the files since loading.
        files.put(&pair("second"));
        assert_eq!(cert.reload_if_changed(), Some(Ok(())));
        assert_ne!(served(&cert), first);
        assert_eq!(cert.reload_if_changed(), None);
    }

    #[test]
    fn a_pair_that_does_not_load_is_tried_once_and_the_current_one_kept() {
        let files = Files::new("mismatch");
        files.put(&pair("first"));
        let cert = files.load();
        let first = served(&cert);
        let (other_cert, _) = pair("second");
        let (_, other_key) = pair("third");
        files.put(&(other_cert, other_key));
        let refused = cert.reload_if_changed();
        assert!(
            matches!(&refused, Some(Err(e)) if e.contains("do not go together")),
            "{refused:?}"
        );
        assert_eq!(cert.reload_if_changed(), None);
        assert_eq!(served(&cert), first);
    }

    #[test]
    fn a_missing_file_is_no_change_and_the_pair_is_taken_when_back() {
        let files = Files::new("missing");
        files.put(&pair("first"));
        let cert = files.load();
        std::fs::remove_file(files.0.join("key.pem")).unwrap();
        assert_eq!(cert.reload_if_changed(), None);
        files.put(&pair("second"));
        assert_eq!(cert.reload_if_changed(), Some(Ok(())));
    }

    #[test]
    fn a_signal_reload_counts_as_the_look() {
        let files = Files::new("signal");
        files.put(&pair("first"));
        let cert = files.load();
        files.put(&pair("second"));
        assert_eq!(cert.reload(), Ok(()));
        assert_eq!(cert.reload_if_changed(), None);
    }
}
