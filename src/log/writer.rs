//! The log's writer: a thread of its own that writes what it is handed to
//! stdout, so that a slow reader (a stalled journal, a full pipe) never
//! stalls proxying.
//!
//! Worker threads gather their lines in a batch of their own and hand it
//! over when it is full or when their flush tick comes ([`flush`]): one
//! hand-over and one `write` for many lines, where a line each cost a
//! wake-up of this thread and a system call. Other threads hand over each
//! line as it comes. What waits here is bounded in bytes: past the bound a
//! batch is dropped and its lines counted, never waited for.
//!
//! While lines keep coming the writer collects them every `LINGER` (10 ms)
//! instead of waiting to be woken: waking it is a system call for the worker
//! that hands over, and on a busy CPU a switch to this thread and back. It
//! waits to be woken only once a round finds nothing.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes that may wait for the writer before lines are dropped: about 8,000
/// access lines.
pub const QUEUED_BYTES: usize = 2 * 1024 * 1024;

/// A worker's batch is handed over once it holds this much.
const BATCH_BYTES: usize = 32 * 1024;

/// How long the writer sleeps between rounds while the log is busy.
const LINGER: Duration = Duration::from_millis(10);

enum Message {
    Lines(Vec<u8>),
    Stop,
}

struct Shared {
    tx: Mutex<Sender<Message>>,
    queued: AtomicUsize,
    dropped: AtomicU64,
    /// Written batches' memory, emptied, for the workers' next batches: a
    /// batch is then neither allocated by a worker nor freed by this thread.
    spare: Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    fn new(tx: Sender<Message>) -> Self {
        Shared {
            tx: Mutex::new(tx),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            spare: Mutex::new(Vec::new()),
        }
    }
}

/// Emptied batches kept for reuse: about one per worker.
const SPARE_BATCHES: usize = 8;

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

thread_local! {
    /// This thread's lines not yet handed over, and whether it batches.
    static BATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static BATCHING: Cell<bool> = const { Cell::new(false) };
    /// A clone of the sender, so that a hand-over takes no lock.
    static TX: RefCell<Option<Sender<Message>>> = const { RefCell::new(None) };
}

/// Stops the writer when dropped, after everything handed over is written.
#[must_use = "dropping it stops the log writer"]
pub struct Guard {
    thread: Option<JoinHandle<()>>,
}

/// Start the writer thread, writing to `out`. Only the first call starts
/// one; later ones return a guard that stops nothing.
pub fn start(out: impl Write + Send + 'static) -> Guard {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared::new(tx));
    if SHARED.set(shared.clone()).is_err() {
        return Guard { thread: None };
    }
    let thread = std::thread::Builder::new()
        .name("nova-guard-log".into())
        .spawn(move || write_out(rx, &shared, out))
        .ok();
    Guard { thread }
}

fn write_out(rx: Receiver<Message>, shared: &Shared, mut out: impl Write) {
    let mut next = rx.recv();
    while let Ok(Message::Lines(mut bytes)) = next {
        // One write for the batch; an error (stdout closed) loses it.
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
        shared.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        // A worker's batch (not a line handed over alone, nor one grown
        // by an outsized line).
        if (BATCH_BYTES..=4 * BATCH_BYTES).contains(&bytes.capacity()) {
            bytes.clear();
            if let Ok(mut spare) = shared.spare.lock() {
                if spare.len() < SPARE_BATCHES {
                    spare.push(bytes);
                }
            }
        }
        next = match rx.try_recv() {
            Ok(message) => Ok(message),
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                std::thread::sleep(LINGER);
                match rx.try_recv() {
                    Ok(message) => Ok(message),
                    Err(TryRecvError::Empty) => rx.recv(),
                    Err(TryRecvError::Disconnected) => return,
                }
            }
        };
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        flush();
        if let Some(thread) = self.thread.take() {
            if let Some(shared) = SHARED.get() {
                if let Ok(tx) = shared.tx.lock() {
                    let _ = tx.send(Message::Stop);
                }
            }
            let _ = thread.join();
        }
    }
}

/// Lines dropped so far because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    SHARED
        .get()
        .map_or(0, |s| s.dropped.load(Ordering::Relaxed))
}

/// From now on this thread gathers its lines in a batch; it must call
/// [`flush`] now and then (a worker's tick) and before it ends.
pub fn batch_this_thread() {
    BATCHING.with(|b| b.set(true));
}

/// Hand `line` (whole lines, each ending in `\n`) to the writer.
pub fn write(line: &[u8]) {
    if BATCHING.with(Cell::get) {
        let full = BATCH.with(|batch| match batch.try_borrow_mut() {
            Ok(mut batch) => {
                if batch.capacity() == 0 {
                    batch.reserve(BATCH_BYTES + 1024);
                }
                batch.extend_from_slice(line);
                batch.len() >= BATCH_BYTES
            }
            // Only a line logged while handing over could get here.
            Err(_) => {
                hand_over(line.to_vec());
                false
            }
        });
        if full {
            flush();
        }
    } else {
        hand_over(line.to_vec());
    }
}

/// Hand this thread's batch to the writer.
pub fn flush() {
    let bytes = BATCH.with(|batch| match batch.try_borrow_mut() {
        Ok(mut batch) if !batch.is_empty() => {
            let next = spare_batch().unwrap_or_else(|| Vec::with_capacity(batch.capacity()));
            Some(std::mem::replace(&mut *batch, next))
        }
        _ => None,
    });
    if let Some(bytes) = bytes {
        hand_over(bytes);
    }
}

/// An emptied batch the writer gave back, if there is one.
fn spare_batch() -> Option<Vec<u8>> {
    SHARED.get()?.spare.lock().ok()?.pop()
}

fn hand_over(bytes: Vec<u8>) {
    let Some(shared) = SHARED.get() else {
        return;
    };
    let len = bytes.len();
    if shared.queued.fetch_add(len, Ordering::Relaxed) + len > QUEUED_BYTES {
        shared.queued.fetch_sub(len, Ordering::Relaxed);
        drop_lines(shared, &bytes);
        return;
    }
    let sent = TX.with(|tx| {
        let mut tx = tx.borrow_mut();
        if tx.is_none() {
            *tx = shared.tx.lock().ok().map(|t| t.clone());
        }
        match tx.as_ref() {
            Some(tx) => tx.send(Message::Lines(bytes)).map_err(|e| e.0),
            None => Err(Message::Lines(bytes)),
        }
    });
    // The writer has stopped (the process is ending).
    if let Err(Message::Lines(bytes)) = sent {
        shared.queued.fetch_sub(len, Ordering::Relaxed);
        drop_lines(shared, &bytes);
    }
}

fn drop_lines(shared: &Shared, bytes: &[u8]) {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count().max(1);
    shared
        .dropped
        .fetch_add(u64::try_from(lines).unwrap_or(u64::MAX), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn batches_handed_over_busy_or_quiet_are_all_written_in_order() {
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared::new(tx.clone()));
        let sink = Sink::default();
        let writer = std::thread::spawn({
            let (shared, sink) = (shared.clone(), sink.clone());
            move || write_out(rx, &shared, sink)
        });
        let mut want = Vec::new();
        for i in 0..60 {
            let line = format!("{i}\n").into_bytes();
            want.extend_from_slice(&line);
            shared.queued.fetch_add(line.len(), Ordering::Relaxed);
            tx.send(Message::Lines(line)).unwrap();
            // Now and then quiet for long enough that the writer waits to
            // be woken again.
            if i % 20 == 0 {
                std::thread::sleep(LINGER * 3);
            }
        }
        tx.send(Message::Stop).unwrap();
        writer.join().unwrap();
        assert_eq!(*sink.0.lock().unwrap(), want);
        assert_eq!(shared.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_writer_ends_when_every_sender_is_gone() {
        let (tx, rx) = mpsc::channel();
        // Not the writer's channel: only `tx` below sends to it.
        let shared = Shared::new(mpsc::channel().0);
        shared.queued.store(5, Ordering::Relaxed);
        tx.send(Message::Lines(b"last\n".to_vec())).unwrap();
        drop(tx);
        let sink = Sink::default();
        write_out(rx, &shared, sink.clone());
        assert_eq!(*sink.0.lock().unwrap(), b"last\n");
        assert_eq!(shared.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_written_batch_comes_back_empty_and_a_lone_line_does_not() {
        let (tx, rx) = mpsc::channel();
        let shared = Shared::new(mpsc::channel().0);
        let mut batch = Vec::with_capacity(BATCH_BYTES + 1024);
        batch.extend_from_slice(b"one\ntwo\n");
        let memory = batch.as_ptr();
        shared.queued.store(8 + 5, Ordering::Relaxed);
        tx.send(Message::Lines(batch)).unwrap();
        tx.send(Message::Lines(b"lone\n".to_vec())).unwrap();
        drop(tx);
        let sink = Sink::default();
        write_out(rx, &shared, sink.clone());
        assert_eq!(*sink.0.lock().unwrap(), b"one\ntwo\nlone\n");
        let spare = shared.spare.lock().unwrap();
        assert_eq!(spare.len(), 1);
        assert!(spare[0].is_empty());
        assert_eq!(spare[0].as_ptr(), memory);
    }
}
