//! systemd's service protocol (`Type=notify`, sd_notify(3)): `READY=1` once
//! serving, `RELOADING=1` / `READY=1` around a SIGHUP reload, `STOPPING=1` at
//! shutdown, and `WATCHDOG=1` pings while the runtime is healthy.
//!
//! Everything here is a no-op without `NOTIFY_SOCKET` (not under systemd, or
//! `Type=exec`), and a failed send is only logged: a supervisor's bookkeeping
//! never stops the proxy. `sd-notify` names the states, reads the watchdog
//! variables and the monotonic clock; the datagram is sent here because the
//! crate cannot reach an abstract socket (`@name`, as container runtimes
//! hand out).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use sd_notify::NotifyState;

/// Send `states` to `$NOTIFY_SOCKET`, one `KEY=VALUE` line each. `Ok` and
/// nothing sent when the variable is not set.
pub fn notify(states: &[NotifyState]) -> io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let message: String = states.iter().map(|s| format!("{s}\n")).collect();
    let socket = UnixDatagram::unbound()?;
    match path.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.connect_addr(&addr)?;
        }
        None => socket.connect(&path)?,
    }
    let sent = socket.send(message.as_bytes())?;
    if sent != message.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short datagram"));
    }
    Ok(())
}

/// [`notify`], logging a failure instead of returning it: the first one
/// only, since the watchdog would otherwise repeat it every few seconds.
fn tell(states: &[NotifyState]) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = notify(states) {
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %e,
                "cannot notify the service manager (NOTIFY_SOCKET); later failures are not logged"
            );
        }
    }
}

/// Start-up is over: the listeners are bound and connections are served.
pub fn ready() {
    tell(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// A reload begins. systemd (253 and later) wants the monotonic time of it
/// with `RELOADING=1`; [`ready`] ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => tell(&[NotifyState::Reloading, now]),
        Err(_) => tell(&[NotifyState::Reloading]),
    }
}

/// Shutdown begins: the listener is closing and exchanges drain.
pub fn stopping() {
    tell(&[NotifyState::Stopping, NotifyState::Status("draining")]);
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`, for this process
/// when `WATCHDOG_PID` is set), or `None`.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

/// Ping the watchdog at half its interval, for as long as `alive` says the
/// process serves (every worker answers), and only then: a process whose
/// workers are stuck pings no more, and systemd restarts the service.
pub async fn watchdog(interval: Duration, alive: impl Fn() -> bool) {
    let mut tick = tokio::time::interval(interval / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if alive() {
            tell(&[NotifyState::Watchdog]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_the_protocol_lines() {
        let lines: Vec<String> = [
            NotifyState::Ready,
            NotifyState::Reloading,
            NotifyState::Stopping,
            NotifyState::Watchdog,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            lines,
            ["READY=1", "RELOADING=1", "STOPPING=1", "WATCHDOG=1"]
        );
        let now = NotifyState::monotonic_usec_now().unwrap().to_string();
        assert!(now.starts_with("MONOTONIC_USEC="), "{now}");
    }
}
