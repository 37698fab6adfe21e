//! Logging: one stream on stdout, JSON by default, written by a thread of
//! its own so that a slow reader of stdout (a stalled journal, a full pipe)
//! never stalls proxying; worker threads hand their lines over in batches
//! ([`writer`]). What waits is bounded: past the bound lines are dropped and
//! counted (`nova_guard_log_lines_dropped_total`), never waited for.
//! Everything handed over is written out when the process stops.
//!
//! Start-up, shutdown and warnings are `tracing` events; the access line of
//! each exchange ([`access`]) is formatted straight from the exchange into a
//! per-thread buffer and handed to the same writer.

pub mod access;
pub mod json;
pub mod writer;

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

pub use json::JsonLine;
pub use writer::{batch_this_thread, dropped_lines, flush};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// How access lines are written, set up once by [`init`].
struct Sink {
    format: Format,
    /// The log filter lets `nova_guard::access` at INFO through.
    access: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Keeps the writer thread until the process ends; dropping it writes out
/// what was handed over.
pub type Guard = writer::Guard;

/// Install the subscriber and the writer: `filter` (tracing `EnvFilter`
/// syntax, already validated), `format`.
pub fn init(filter: &str, format: Format) -> Guard {
    let guard = writer::start(std::io::stdout());
    let filter = EnvFilter::builder()
        .parse(filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stdout().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(Lines);
    match format {
        Format::Json => builder.event_format(JsonLine).init(),
        Format::Text => builder.init(),
    }
    let access = tracing::enabled!(target: "nova_guard::access", tracing::Level::INFO);
    let _ = SINK.set(Sink { format, access });
    guard
}

/// tracing-subscriber's writer: each event, formatted whole, handed to the
/// log's writer as one piece.
#[derive(Debug, Clone, Copy)]
struct Lines;

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        writer::write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;

    fn make_writer(&'a self) -> Self::Writer {
        Lines
    }
}
