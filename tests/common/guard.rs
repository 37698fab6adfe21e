//! The nova-guard binary, running, and what it logs.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::{Upstream, BOUND};

/// The nova-guard binary, running.
pub struct Guard {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Guard {
    pub fn start(upstream: &str, extra: &[(&str, &str)]) -> Guard {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-guard"));
        cmd.env_clear()
            .env("NOVA_GUARD_LISTEN", "127.0.0.1:0")
            .env("NOVA_GUARD_UPSTREAM", upstream)
            .env("NOVA_GUARD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start nova-guard");
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let logs2 = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "listening" {
                        let _ = tx.send(v["listen"].as_str().unwrap_or_default().to_owned());
                    }
                }
                logs2.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("nova-guard did not say it was listening");
        Guard {
            child,
            addr: addr.parse().unwrap(),
            logs,
        }
    }

    /// Start with an admin listener on a port of its own (and `extra`);
    /// the proxy and that listener's address.
    pub async fn start_with_admin(upstream: &str, extra: &[(&str, &str)]) -> (Guard, SocketAddr) {
        let mut env = vec![("NOVA_GUARD_ADMIN_LISTEN", "127.0.0.1:0")];
        env.extend_from_slice(extra);
        let guard = Guard::start(upstream, &env);
        let event = guard
            .wait_event("admin listening")
            .await
            .expect("no admin listener");
        let admin = event["admin"].as_str().unwrap().parse().unwrap();
        (guard, admin)
    }

    /// Access-log events (one per exchange) seen so far.
    /// The access lines so far, in the order the exchanges ended: each
    /// worker hands its lines over in batches, so lines of different
    /// workers may arrive out of that order; their timestamps keep it.
    pub fn exchanges(&self) -> Vec<Value> {
        let mut exchanges: Vec<Value> = self
            .events()
            .into_iter()
            .filter(|v| v["message"] == "exchange")
            .collect();
        // RFC 3339 at a fixed width: as text, in time order.
        exchanges.sort_by(|a, b| {
            let at = |v: &Value| v["timestamp"].as_str().unwrap_or_default().to_owned();
            at(a).cmp(&at(b))
        });
        exchanges
    }

    /// Wait until `n` exchanges were logged (the event follows the response body).
    pub async fn wait_exchanges(&self, n: usize) -> Vec<Value> {
        for _ in 0..200 {
            let ex = self.exchanges();
            if ex.len() >= n {
                return ex;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.exchanges()
    }

    /// Wait (bounded) until at least `n` exchanges are logged, then a
    /// little longer, so that a late duplicate would show too.
    pub async fn settled_exchanges(&self, n: usize) -> Vec<Value> {
        let until = tokio::time::Instant::now() + BOUND;
        while self.exchanges().len() < n && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.exchanges()
    }

    /// Every log line that parses as JSON, so far.
    pub fn events(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Wait (bounded) until a log event with this message appears.
    pub async fn wait_event(&self, message: &str) -> Option<Value> {
        for _ in 0..1000 {
            if let Some(e) = self.events().into_iter().find(|e| e["message"] == message) {
                return Some(e);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// Send a signal (`TERM`, `INT`) to the proxy.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait, within a generous bound, for the proxy to exit.
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let start = std::time::Instant::now();
        while start.elapsed() < bound {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Peak resident memory of the proxy process, in KiB.
    pub fn vm_hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resident memory of the proxy process now, in KiB.
    pub fn vm_rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// A recording upstream, and nova-guard in front of it with its defaults.
pub async fn setup() -> (Upstream, Guard) {
    let up = Upstream::start().await;
    let guard = Guard::start(&up.url(), &[]);
    (up, guard)
}

/// How many access-log lines each path has.
pub fn lines_per_path(events: &[Value]) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    for e in events {
        *map.entry(e["path"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    map
}

/// The one access-log line of `path`.
#[track_caller]
pub fn line_of<'a>(events: &'a [Value], path: &str) -> &'a Value {
    let lines: Vec<&Value> = events.iter().filter(|e| e["path"] == path).collect();
    assert_eq!(lines.len(), 1, "{path}: {lines:#?}");
    lines[0]
}

/// Request ids are nova-guard's own, one per exchange.
#[track_caller]
pub fn assert_request_ids_unique(events: &[Value]) {
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["request_id"].as_str().expect("request_id"))
        .collect();
    assert_eq!(ids.len(), events.len(), "a request id logged twice");
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
