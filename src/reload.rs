//! Reloading the listener's certificate: on SIGHUP, and when its files
//! change. Kubernetes cannot signal a process in a `FROM scratch` image and
//! updates a mounted Secret by swapping the `..data` symlink, so the files
//! are read every [`POLL`] (through their symlinks) and a changed content is
//! loaded. A pair that does not load, or whose key is not the certificate's,
//! is logged once and the current one kept; it is tried again when the files
//! change again. SIGHUP reads them at once, and tells systemd about it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::systemd;
use crate::tls::ReloadingCert;

/// How often the certificate and key files are read for a change.
pub const POLL: Duration = Duration::from_secs(2);

/// Run until aborted: reload `cert` on SIGHUP and when its files change.
/// Without a certificate a SIGHUP is still acknowledged to systemd.
pub async fn run(cert: Option<Arc<ReloadingCert>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(hup) => Some(hup),
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the SIGHUP handler");
            None
        }
    };
    let mut watch = match &cert {
        Some(cert) => Some(FileWatch::new(cert.cert_path(), cert.key_path()).await),
        None => None,
    };
    if hup.is_none() && watch.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(()) = async { hup.as_mut()?.recv().await } => {
                systemd::reloading();
                match &cert {
                    None => tracing::info!("SIGHUP: no TLS certificate to reload"),
                    Some(cert) => {
                        if let Some(watch) = &mut watch {
                            watch.last = watch.fingerprint().await;
                        }
                        match cert.reload() {
                            Ok(()) => tracing::info!("TLS certificate reloaded"),
                            Err(e) => tracing::error!(
                                error = %e,
                                "TLS certificate reload failed; keeping the current one"
                            ),
                        }
                    }
                }
                systemd::ready();
            }
            _ = tick.tick(), if watch.is_some() => {
                if let (Some(cert), Some(watch)) = (&cert, &mut watch) {
                    watch.check(cert).await;
                }
            }
            else => return,
        }
    }
}

/// The certificate and key files, and what their content was when last read.
struct FileWatch {
    cert: PathBuf,
    key: PathBuf,
    last: Option<u64>,
}

impl FileWatch {
    async fn new(cert: &Path, key: &Path) -> FileWatch {
        let mut watch = FileWatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            last: None,
        };
        watch.last = watch.fingerprint().await;
        watch
    }

    /// A hash of both files' content, read through any symlink; `None` when
    /// either cannot be read (mid-swap, or gone).
    async fn fingerprint(&self) -> Option<u64> {
        let (cert, key) = (self.cert.clone(), self.key.clone());
        tokio::task::spawn_blocking(move || {
            let mut h = DefaultHasher::new();
            std::fs::read(cert).ok()?.hash(&mut h);
            std::fs::read(key).ok()?.hash(&mut h);
            Some(h.finish())
        })
        .await
        .ok()
        .flatten()
    }

    /// Reload when the content changed since the last look.
    async fn check(&mut self, cert: &ReloadingCert) {
        let now = self.fingerprint().await;
        if now.is_none() || now == self.last {
            return;
        }
        self.last = now;
        match cert.reload() {
            Ok(()) => tracing::info!(
                cert = %self.cert.display(),
                "TLS certificate files changed; reloaded"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "TLS certificate files changed but do not load; keeping the current one"
            ),
        }
    }
}
