//! An open-loop, fixed-rate HTTP/1.1 load generator for the latency runs of
//! `scripts/bench` (wrk measures throughput; it cannot hold a rate).
//!
//! A pacing thread releases request `i` at `start + i / rate` (it sleeps to
//! each instant, so arrivals are evenly spaced, not bursts on a millisecond
//! timer tick); the first free of `--connections` keep-alive connections
//! sends it. Latency is measured from that intended instant to the end of the
//! response body, so a request that waited for a free connection counts its
//! wait (no coordinated omission). Every sample is kept and sorted: the
//! percentiles are exact, and memory is bounded by rate × duration.
//!
//! ```text
//! bench_load --addr 127.0.0.1:8775 --rate 2000 --duration 5 --connections 32 \
//!     --method PUT --path /v2.1/servers/ID --header 'X-Auth-Token: t' --body-file body.json
//! ```
//!
//! Prints one JSON object: counts, statuses, achieved rate and latency
//! percentiles in microseconds.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

struct Args {
    addr: String,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    rate: f64,
    duration: f64,
    warmup: f64,
    connections: usize,
}

fn usage() -> &'static str {
    "usage: bench_load --addr HOST:PORT --rate N --duration SECS [--warmup SECS] \
     [--connections N] [--method M] [--path P] [--header 'K: V']... [--body-file F]"
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        method: Method::GET,
        path: "/".into(),
        headers: Vec::new(),
        body: Bytes::new(),
        rate: 0.0,
        duration: 0.0,
        warmup: 0.5,
        connections: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = val()?,
            "--method" => a.method = val()?.parse().map_err(|e| format!("--method: {e}"))?,
            "--path" => a.path = val()?,
            "--header" => {
                let h = val()?;
                let (k, v) = h.split_once(':').ok_or("--header wants 'Name: value'")?;
                a.headers.push((
                    k.trim().parse().map_err(|e| format!("--header: {e}"))?,
                    v.trim().parse().map_err(|e| format!("--header: {e}"))?,
                ));
            }
            "--body-file" => {
                let f = val()?;
                a.body = std::fs::read(&f).map_err(|e| format!("{f}: {e}"))?.into();
            }
            "--rate" => a.rate = val()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--duration" => a.duration = val()?.parse().map_err(|e| format!("--duration: {e}"))?,
            "--warmup" => a.warmup = val()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--connections" => {
                a.connections = val()?.parse().map_err(|e| format!("--connections: {e}"))?
            }
            "--help" | "-h" => return Err(usage().into()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if a.addr.is_empty() || !positive(a.rate) || !positive(a.duration) || a.connections == 0 {
        return Err(usage().into());
    }
    // Bounded: at most ten minutes and ten million requests.
    if a.duration + a.warmup > 600.0 || a.rate * (a.duration + a.warmup) > 1e7 {
        return Err("at most 600 s and 10 million requests per run".into());
    }
    Ok(a)
}

#[derive(Default)]
struct Tally {
    /// Latency of each measured request, nanoseconds from its intended start.
    latencies: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    last_done: Option<Instant>,
}

/// One slot of the schedule: when the request should start, and whether it
/// is past the warm-up and so measured.
type Slot = (Instant, bool);

async fn connect(addr: &str) -> Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Some(sender)
}

async fn worker(
    args: Rc<Args>,
    slots: Rc<Mutex<mpsc::UnboundedReceiver<Slot>>>,
    tally: Rc<RefCell<Tally>>,
    mut sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
) {
    loop {
        let Some((intended, measured)) = slots.lock().await.recv().await else {
            return;
        };
        let ready = match sender.as_mut() {
            Some(s) => s.ready().await.is_ok(),
            None => false,
        };
        let s = match sender.as_mut() {
            Some(s) if ready => s,
            _ => {
                sender = connect(&args.addr).await;
                match sender.as_mut() {
                    Some(s) => s,
                    None => {
                        tally.borrow_mut().errors += 1;
                        continue;
                    }
                }
            }
        };
        let mut req = Request::new(Full::new(args.body.clone()));
        *req.method_mut() = args.method.clone();
        *req.uri_mut() = match args.path.parse() {
            Ok(u) => u,
            Err(_) => return,
        };
        let h = req.headers_mut();
        if let Ok(host) = HeaderValue::from_str(&args.addr) {
            h.insert(http::header::HOST, host);
        }
        for (k, v) in &args.headers {
            h.append(k.clone(), v.clone());
        }
        let outcome = match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.into_body().collect().await {
                    Ok(_) => Some(status),
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        let done = Instant::now();
        let mut t = tally.borrow_mut();
        t.last_done = Some(done);
        match outcome {
            Some(status) if measured => {
                *t.statuses.entry(status).or_default() += 1;
                t.latencies
                    .push(done.saturating_duration_since(intended).as_nanos() as u64);
            }
            Some(_) => {}
            None => {
                t.errors += 1;
                sender = None;
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => Rc::new(a),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = tokio::task::LocalSet::new();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let (tx, rx) = mpsc::unbounded_channel::<Slot>();
    let rx = Rc::new(Mutex::new(rx));

    let result = local.block_on(&rt, async {
        // All connections are open before the clock starts.
        let mut senders = Vec::with_capacity(args.connections);
        for _ in 0..args.connections {
            match connect(&args.addr).await {
                Some(s) => senders.push(s),
                None => return Err(format!("cannot connect to {}", args.addr)),
            }
        }
        let mut tasks = Vec::new();
        for s in senders {
            tasks.push(tokio::task::spawn_local(worker(
                args.clone(),
                rx.clone(),
                tally.clone(),
                Some(s),
            )));
        }

        let period = Duration::from_secs_f64(1.0 / args.rate);
        let warm = (args.rate * args.warmup).round() as u64;
        let total = warm + (args.rate * args.duration).round() as u64;
        let start = Instant::now() + Duration::from_millis(20);
        let measure_start = start + period.mul_f64(warm as f64);
        let pacer = std::thread::spawn(move || {
            for i in 0..total {
                let at = start + period.mul_f64(i as f64);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                if tx.send((at, i >= warm)).is_err() {
                    break;
                }
            }
        });
        // Stops by itself: the schedule's length plus a grace period.
        let deadline = Duration::from_secs_f64(args.duration + args.warmup + 10.0);
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        let timed_out = tokio::time::timeout(deadline, all).await.is_err();
        let _ = pacer.join();
        Ok((measure_start, timed_out))
    });
    let (measure_start, timed_out) = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    let mut t = tally.borrow_mut();
    t.latencies.sort_unstable();
    let n = t.latencies.len();
    let elapsed = t.last_done.map_or(0.0, |d| {
        d.saturating_duration_since(measure_start).as_secs_f64()
    });
    let statuses: Vec<String> = t
        .statuses
        .iter()
        .map(|(k, v)| format!("\"{k}\": {v}"))
        .collect();
    println!(
        "{{\"requests\": {n}, \"errors\": {}, \"timed_out\": {timed_out}, \"statuses\": {{{}}}, \
         \"target_rate\": {}, \"achieved_rate\": {:.1}, \"p50_us\": {:.1}, \"p90_us\": {:.1}, \
         \"p99_us\": {:.1}, \"p999_us\": {:.1}, \"max_us\": {:.1}}}",
        t.errors,
        statuses.join(", "),
        args.rate,
        if elapsed > 0.0 {
            n as f64 / elapsed
        } else {
            0.0
        },
        percentile(&t.latencies, 50.0),
        percentile(&t.latencies, 90.0),
        percentile(&t.latencies, 99.0),
        percentile(&t.latencies, 99.9),
        percentile(&t.latencies, 100.0),
    );
    if timed_out || t.errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
