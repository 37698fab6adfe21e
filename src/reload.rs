//! Reloading the listener's certificate: on SIGHUP, and when its files
//! change. Kubernetes cannot signal a process in a `FROM scratch` image and
//! updates a mounted Secret by swapping the `..data` symlink, so the files
//! are read every [`POLL`] (through their symlinks) and a changed content is
//! loaded. A pair that does not load, or whose key is not the certificate's,
//! is logged once and the current one kept; it is tried again when the files
//! change again. SIGHUP reads them at once, and tells systemd about it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::systemd;
use crate::tls::ReloadingCert;

/// How often the certificate and key files are read for a change.
pub const POLL: Duration = Duration::from_secs(2);

/// Reload `cert` on SIGHUP and when its files change, until aborted.
/// Without a certificate a SIGHUP is still acknowledged to systemd.
///
/// The SIGHUP handler is installed by this call, not when the future is
/// first polled: a reload asked for as soon as the proxy says it is ready
/// must not meet SIGHUP's default action, which ends the process.
pub fn run(cert: Option<Arc<ReloadingCert>>) -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let hup = match signal(SignalKind::hangup()) {
        Ok(hup) => Some(hup),
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the SIGHUP handler");
            None
        }
    };
    watch(hup, cert)
}

async fn watch(mut hup: Option<tokio::signal::unix::Signal>, cert: Option<Arc<ReloadingCert>>) {
    if hup.is_none() && cert.is_none() {
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
                    Some(cert) => match off_runtime(cert, ReloadingCert::reload).await {
                        Ok(Ok(())) => tracing::info!("TLS certificate reloaded"),
                        Ok(Err(e)) | Err(e) => tracing::error!(
                            error = %e,
                            "TLS certificate reload failed; keeping the current one"
                        ),
                    },
                }
                systemd::ready();
            }
            _ = tick.tick(), if cert.is_some() => {
                let Some(cert) = &cert else { continue };
                match off_runtime(cert, ReloadingCert::reload_if_changed).await {
                    Ok(None) => {}
                    Ok(Some(Ok(()))) => tracing::info!(
                        cert = %cert.cert_path().display(),
                        "TLS certificate files changed; reloaded"
                    ),
                    Ok(Some(Err(e))) | Err(e) => tracing::error!(
                        error = %e,
                        "TLS certificate files changed but do not load; keeping the current one"
                    ),
                }
            }
            else => return,
        }
    }
}

/// File reads and key parsing block; they run beside the proxy's workers.
async fn off_runtime<T: Send + 'static>(
    cert: &Arc<ReloadingCert>,
    work: fn(&ReloadingCert) -> T,
) -> Result<T, String> {
    let cert = cert.clone();
    tokio::task::spawn_blocking(move || work(&cert))
        .await
        .map_err(|e| e.to_string())
}
