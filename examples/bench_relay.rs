//! The floor of any proxy on this machine, for the macro-benchmarks
//! (`scripts/bench`, target `relay`): each client connection gets one
//! upstream connection, and bytes are copied both ways as they come. No HTTP
//! is parsed, nothing is checked or logged, and one thread runs it all, as
//! one nginx worker or one HAProxy thread does.
//!
//! It makes the same system calls per request as the proxies it stands
//! beside (a read and a write each way), so its CPU per request is what the
//! kernel and the runtime cost before a proxy does any work of its own, and
//! its throughput is the most any single-CPU proxy reaches here.
//!
//! Usage: `bench_relay LISTEN UPSTREAM` (e.g. `127.0.0.1:18775
//! 127.0.0.1:18774`). It prints `listening ADDR` once bound and runs until
//! SIGTERM.

use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// The copy buffer each way, as the proxies' read buffers.
const BUFFER: usize = 16 * 1024;

async fn relay(mut client: TcpStream, upstream: String) {
    let Ok(mut nova) = TcpStream::connect(&upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = nova.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional_with_sizes(&mut client, &mut nova, BUFFER, BUFFER).await;
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: bench_relay LISTEN UPSTREAM");
        return ExitCode::from(2);
    };
    let listener = match TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("listening {listen}");
    // A clean exit on SIGTERM, so that a profiler around it writes its data.
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        eprintln!("cannot watch SIGTERM");
        return ExitCode::FAILURE;
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = term.recv() => return ExitCode::SUCCESS,
        };
        match accepted {
            Ok((client, _)) => {
                tokio::spawn(relay(client, upstream.clone()));
            }
            Err(e) => {
                // Out of descriptors, say: wait instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
