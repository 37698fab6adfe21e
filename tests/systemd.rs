//! systemd's notify protocol, as `Type=notify` with `WatchdogSec=` sees it:
//! the binary under test talks to a datagram socket of the test's named in
//! `NOTIFY_SOCKET`, as systemd hands one to a service.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{nanos, Conn, Guard, Upstream};

/// A notify socket of the test's: a file under the temporary directory, or
/// an abstract name (`@...`, as container runtimes hand out).
struct Notify {
    socket: UnixDatagram,
    env: String,
    file: Option<PathBuf>,
}

impl Notify {
    fn file() -> Notify {
        let path = std::env::temp_dir().join(format!(
            "nova-guard-notify-{}-{}",
            std::process::id(),
            nanos()
        ));
        let socket = UnixDatagram::bind(&path).unwrap();
        Notify::with(socket, path.to_str().unwrap().to_owned(), Some(path))
    }

    fn abstract_name() -> Notify {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("nova-guard-notify-{}-{}", std::process::id(), nanos());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        Notify::with(socket, format!("@{name}"), None)
    }

    fn with(socket: UnixDatagram, env: String, file: Option<PathBuf>) -> Notify {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Notify { socket, env, file }
    }

    /// Datagrams (each a set of `KEY=VALUE` lines) until one has `line`,
    /// within `bound`; all of them, or `None` when it did not come.
    fn until(&self, line: &str, bound: Duration) -> Option<Vec<String>> {
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < bound {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = text.lines().any(|l| l == line);
                got.push(text);
                if done {
                    return Some(got);
                }
            }
        }
        None
    }
}

impl Drop for Notify {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
    }
}

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn ready_watchdog_reloading_and_stopping_reach_the_notify_socket() {
    let notify = Notify::file();
    let up = Upstream::start().await;
    let mut guard = Guard::start(
        &up.url(),
        &[
            ("NOTIFY_SOCKET", notify.env.as_str()),
            // 400 ms: pings every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let got = notify.until("READY=1", BOUND).expect("no READY=1");
    assert!(
        got.concat().lines().all(|l| !l.starts_with("STOPPING")),
        "{got:?}"
    );

    // Pings keep coming, at about half the interval.
    let start = Instant::now();
    for _ in 0..3 {
        notify.until("WATCHDOG=1", BOUND).expect("no WATCHDOG=1");
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );

    reload_then_stop(&notify, &mut guard).await;
}

/// SIGHUP: RELOADING=1 with the monotonic time of it, then READY=1 again.
/// Then SIGTERM: STOPPING=1, and a clean exit.
async fn reload_then_stop(notify: &Notify, guard: &mut Guard) {
    guard.signal("HUP");
    let got = notify.until("RELOADING=1", BOUND).expect("no RELOADING=1");
    let reloading = got.last().unwrap();
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")
            && l["MONOTONIC_USEC=".len()..].parse::<u64>().is_ok()),
        "{reloading:?}"
    );
    notify
        .until("READY=1", BOUND)
        .expect("no READY=1 after the reload");
    guard.signal("TERM");
    notify.until("STOPPING=1", BOUND).expect("no STOPPING=1");
    let status = guard.wait_exit(BOUND).await.expect("did not exit");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn an_abstract_notify_socket_is_reached_too() {
    let notify = Notify::abstract_name();
    let up = Upstream::start().await;
    let _guard = Guard::start(&up.url(), &[("NOTIFY_SOCKET", notify.env.as_str())]);
    notify.until("READY=1", BOUND).expect("no READY=1");
}

#[tokio::test]
async fn no_watchdog_pings_when_the_watchdog_is_for_another_process() {
    let notify = Notify::file();
    let up = Upstream::start().await;
    let _guard = Guard::start(
        &up.url(),
        &[
            ("NOTIFY_SOCKET", notify.env.as_str()),
            ("WATCHDOG_USEC", "200000"),
            // Not nova-guard's pid: systemd's watchdog is for another process.
            ("WATCHDOG_PID", "1"),
        ],
    );
    notify.until("READY=1", BOUND).expect("no READY=1");
    assert!(notify.until("WATCHDOG=1", Duration::from_secs(1)).is_none());
}

#[tokio::test]
async fn without_notify_socket_it_serves_as_before() {
    let up = Upstream::start().await;
    let mut guard = Guard::start(&up.url(), &[("WATCHDOG_USEC", "200000")]);
    let mut conn = Conn::open(guard.addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(conn.answer().await.status, 200);
    guard.signal("TERM");
    assert_eq!(guard.wait_exit(BOUND).await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn an_unreachable_notify_socket_is_logged_once_and_serving_goes_on() {
    let up = Upstream::start().await;
    let gone = std::env::temp_dir().join(format!("nova-guard-notify-gone-{}", nanos()));
    let guard = Guard::start(
        &up.url(),
        &[
            ("NOTIFY_SOCKET", gone.to_str().unwrap()),
            // Pings every 50 ms: each would fail.
            ("WATCHDOG_USEC", "100000"),
        ],
    );
    let mut conn = Conn::open(guard.addr).await;
    conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(conn.answer().await.status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let warned = guard
        .events()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("cannot notify the service manager"))
        })
        .count();
    assert_eq!(warned, 1);
}

/// systemd may reload or stop a service as soon as it says READY=1: by
/// then SIGHUP and SIGTERM must be handled (their default action ends the
/// process at once).
#[tokio::test]
async fn signals_sent_as_soon_as_ready_are_handled() {
    let notify = Notify::file();
    let up = Upstream::start().await;
    let mut guard = Guard::start(&up.url(), &[("NOTIFY_SOCKET", notify.env.as_str())]);
    notify.until("READY=1", BOUND).expect("no READY=1");
    reload_then_stop(&notify, &mut guard).await;
}
