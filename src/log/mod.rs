//! Logging: one stream on stdout, JSON by default, written by a thread of
//! its own so that a slow reader of stdout (a stalled journal, a full pipe)
//! never stalls proxying. Its queue is bounded: when it is full a line is
//! dropped and counted (`nova_guard_log_lines_dropped_total`), never waited
//! for. Everything queued is written out when the process stops.
//!
//! Start-up, shutdown and warnings are `tracing` events; the access line of
//! each exchange ([`access`]) is formatted straight from the exchange into a
//! per-thread buffer and handed to the same writer.

pub mod access;
pub mod json;

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

pub use json::JsonLine;

/// Lines that may wait for the writer thread before new ones are dropped.
const QUEUED_LINES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// Where the access lines go, set up once by [`init`].
struct Sink {
    writer: NonBlocking,
    format: Format,
    /// The log filter lets `nova_guard::access` at INFO through.
    access: bool,
    dropped: ErrorCounter,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Keeps the writer thread until the process ends; dropping it writes out
/// what is queued.
#[must_use = "dropping it stops the log writer"]
pub struct Guard(#[allow(dead_code)] WorkerGuard);

/// Install the subscriber and the writer: `filter` (tracing `EnvFilter`
/// syntax, already validated), `format`.
pub fn init(filter: &str, format: Format) -> Guard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("nova-guard-log")
        .finish(std::io::stdout());
    let filter = EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer.clone());
    match format {
        Format::Json => builder.event_format(JsonLine).init(),
        Format::Text => builder.init(),
    }
    let access = tracing::enabled!(target: "nova_guard::access", tracing::Level::INFO);
    let dropped = writer.error_counter();
    let _ = SINK.set(Sink {
        writer,
        format,
        access,
        dropped,
    });
    Guard(guard)
}

/// Log lines dropped because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    SINK.get().map_or(0, |s| {
        u64::try_from(s.dropped.dropped_lines()).unwrap_or(u64::MAX)
    })
}

/// Hand a whole line to the writer (never blocks).
fn write_line(line: &[u8]) {
    if let Some(sink) = SINK.get() {
        // A full queue drops the line and counts it; nothing else can fail.
        let _ = sink.writer.clone().write_all(line);
    }
}
