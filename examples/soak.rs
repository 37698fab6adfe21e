//! A bounded soak of a running nova-guard (`scripts/soak` starts everything).
//!
//! `--connections` keep-alive HTTP/1.1 connections each send, back to back
//! for `--duration` seconds, a fixed mix of requests:
//!
//! - valid update (`PUT /v2.1/servers/ID`, a good body): expected 200 (upstream);
//! - invalid update (a name with a leading space): expected 400 (nova-guard);
//! - malformed JSON update: expected 400 (nova-guard);
//! - pass-through `GET /v2.1/servers/ID`: expected 200 (upstream).
//!
//! Any other status, a transport error or a connection closed without
//! `Connection: close` counts as an unexplained error. A connection the proxy
//! closes with `Connection: close` (its per-connection request limit) is
//! reopened and counted as a reconnect. With `--pid`, the proxy's RSS
//! (`/proc/PID/status` VmRSS) is sampled every 250 ms (peak, and the value
//! at each tenth of the run) and its open file
//! descriptors (`/proc/PID/fd`) counted before the load and again after it
//! (waiting up to `--settle` seconds for them to come back to the baseline);
//! RSS is read once more `--settle` seconds after the load (`settled`).
//!
//! Prints one JSON object; exits 1 when there were unexplained errors or the
//! descriptors did not come back to the baseline.
//!
//! ```text
//! soak --addr 127.0.0.1:8775 --connections 1000 --duration 120 --pid 1234
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const ID: &str = "5f3f5b42-8d5c-4f37-9a3b-7a2d3c1e9b10";

struct Kind {
    name: &'static str,
    method: Method,
    body: &'static str,
    expect: u16,
}

const MIX: &[Kind] = &[
    Kind {
        name: "valid_update",
        method: Method::PUT,
        body: r#"{"server": {"name": "web-01", "accessIPv6": "2001:db8::1"}}"#,
        expect: 200,
    },
    Kind {
        name: "invalid_update",
        method: Method::PUT,
        body: r#"{"server": {"name": " leading space"}}"#,
        expect: 400,
    },
    Kind {
        name: "malformed_update",
        method: Method::PUT,
        body: r#"{"server": {"name": "x""#,
        expect: 400,
    },
    Kind {
        name: "pass_through_get",
        method: Method::GET,
        body: "",
        expect: 200,
    },
];

#[derive(Default)]
struct Counts {
    sent: [AtomicU64; 4],
    ok: [AtomicU64; 4],
    unexpected_status: AtomicU64,
    transport_errors: AtomicU64,
    connect_errors: AtomicU64,
    reconnects: AtomicU64,
}

struct Args {
    addr: String,
    connections: usize,
    duration: f64,
    pid: Option<u32>,
    settle: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        connections: 200,
        duration: 30.0,
        pid: None,
        settle: 10.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v()?,
            "--connections" => a.connections = v()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => a.duration = v()?.parse().map_err(|e| format!("{e}"))?,
            "--pid" => a.pid = Some(v()?.parse().map_err(|e| format!("{e}"))?),
            "--settle" => a.settle = v()?.parse().map_err(|e| format!("{e}"))?,
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.addr.is_empty() || a.connections == 0 {
        return Err(
            "usage: soak --addr HOST:PORT [--connections N] [--duration SECS] [--pid PID] \
             [--settle SECS]"
                .into(),
        );
    }
    Ok(a)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// One connection's loop: send the mix in turn until `stop`.
async fn client(addr: String, offset: usize, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let mut i = offset;
    'connect: while !stop.load(Ordering::Relaxed) {
        let stream = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(_) => {
                counts.connect_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok((mut send, conn)) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await
        else {
            counts.connect_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        tokio::spawn(conn);
        while !stop.load(Ordering::Relaxed) {
            let k = i % MIX.len();
            i += 1;
            let kind = &MIX[k];
            let req = Request::builder()
                .method(kind.method.clone())
                .uri(format!("/v2.1/servers/{ID}"))
                .header("host", addr.as_str())
                .header("content-type", "application/json")
                .header("x-auth-token", "soak")
                .body(Full::new(Bytes::from_static(kind.body.as_bytes())))
                .expect("request");
            counts.sent[k].fetch_add(1, Ordering::Relaxed);
            if send.ready().await.is_err() {
                counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                continue 'connect;
            }
            let resp = match send.send_request(req).await {
                Ok(r) => r,
                Err(_) => {
                    counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                    continue 'connect;
                }
            };
            let status = resp.status().as_u16();
            let closing = resp
                .headers()
                .get(http::header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            if resp.into_body().collect().await.is_err() {
                counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                continue 'connect;
            }
            if status == kind.expect {
                counts.ok[k].fetch_add(1, Ordering::Relaxed);
            } else {
                counts.unexpected_status.fetch_add(1, Ordering::Relaxed);
            }
            if closing {
                counts.reconnects.fetch_add(1, Ordering::Relaxed);
                continue 'connect;
            }
        }
        return;
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let fds_before = args.pid.and_then(fds);
    let rss_start = args.pid.and_then(rss_kib);

    let tenth = Duration::from_secs_f64(args.duration / 10.0);
    let sampler = args.pid.map(|pid| {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            let mut peak_fds = 0usize;
            // RSS at each tenth of the run, to show whether it is flat.
            let mut series = Vec::new();
            let begun = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let rss = rss_kib(pid).unwrap_or(0);
                peak = peak.max(rss);
                peak_fds = peak_fds.max(fds(pid).unwrap_or(0));
                if begun.elapsed() >= tenth * (series.len() as u32 + 1) {
                    series.push(rss);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (peak, peak_fds, series)
        })
    });

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.connections);
    for c in 0..args.connections {
        tasks.push(tokio::spawn(client(
            args.addr.clone(),
            c,
            stop.clone(),
            counts.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    // Each client finishes the exchange it is in; bounded by a grace period.
    let grace = tokio::time::timeout(Duration::from_secs(30), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let (rss_peak, fds_peak, series) = match sampler {
        Some(s) => s.await.unwrap_or_default(),
        None => (0, 0, Vec::new()),
    };
    let series: Vec<String> = series.iter().map(u64::to_string).collect();
    let rss_end = args.pid.and_then(rss_kib);

    // Client sockets are closed now; wait for the proxy's descriptors to
    // come back to the baseline (its idle upstream pool expires too).
    let mut fds_after = args.pid.and_then(fds);
    let settle_until = Instant::now() + Duration::from_secs_f64(args.settle);
    while let (Some(pid), Some(before)) = (args.pid, fds_before) {
        fds_after = fds(pid);
        if fds_after.is_some_and(|a| a <= before) || Instant::now() >= settle_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // RSS once the settle time has passed since the load ended: memory
    // taken for the load must have come back by then.
    tokio::time::sleep_until(settle_until.into()).await;
    let rss_settled = args.pid.and_then(rss_kib);

    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let sent: u64 = counts.sent.iter().map(load).sum();
    let ok: u64 = counts.ok.iter().map(load).sum();
    let unexplained = load(&counts.unexpected_status)
        + load(&counts.transport_errors)
        + load(&counts.connect_errors)
        + u64::from(grace.is_err());
    let mix: Vec<String> = MIX
        .iter()
        .enumerate()
        .map(|(k, m)| {
            format!(
                "\"{}\": {{\"sent\": {}, \"as_expected\": {}, \"expected_status\": {}}}",
                m.name,
                load(&counts.sent[k]),
                load(&counts.ok[k]),
                m.expect
            )
        })
        .collect();
    let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    println!(
        "{{\"connections\": {}, \"duration_s\": {:.1}, \"requests\": {sent}, \"as_expected\": {ok}, \
         \"rate_per_s\": {:.0}, \"unexplained_errors\": {unexplained}, \"unexpected_status\": {}, \
         \"transport_errors\": {}, \"connect_errors\": {}, \"reconnects_after_connection_close\": {}, \
         \"clients_finished_in_grace\": {}, \"mix\": {{{}}}, \"rss_kib\": {{\"start\": {}, \"peak\": {}, \
         \"end\": {}, \"settled\": {}, \"each_tenth\": [{}]}}, \"fds\": {{\"before\": {}, \"peak\": {}, \"after\": {}}}}}",
        args.connections,
        elapsed,
        sent as f64 / elapsed,
        load(&counts.unexpected_status),
        load(&counts.transport_errors),
        load(&counts.connect_errors),
        load(&counts.reconnects),
        grace.is_ok(),
        mix.join(", "),
        opt(rss_start),
        rss_peak,
        opt(rss_end),
        opt(rss_settled),
        series.join(", "),
        opt(fds_before.map(|v| v as u64)),
        fds_peak,
        opt(fds_after.map(|v| v as u64)),
    );
    let fds_ok = match (fds_before, fds_after) {
        (Some(b), Some(a)) => a <= b,
        _ => true,
    };
    if unexplained == 0 && fds_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
