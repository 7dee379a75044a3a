//! Where the event stream's batches are turned into lines and written: on a thread of their own
//! for a file, so that the supervisor's loop only records; on the supervisor's loop itself for
//! stdout, so that events land between the task output it writes, in whole lines, as before.
//!
//! A stream that cannot be written (a full disk, a closed pipe) is said once on stderr and given
//! up: the run goes on, and the supervisor stops recording once it sees that.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use troop_worker::runtime::unix_now_us;

use super::record::Batch;

/// Formatted lines are written out once they pass this many bytes.
const WRITE_OVER: usize = 256 * 1024;

/// Batches handed over but not written yet, at most: past them, the supervisor waits for the
/// writer, as it would wait for a slow disk if it wrote itself.
const IN_FLIGHT: usize = 8;

/// Formats batches and writes them to the sink.
pub(super) struct Writer {
    /// Where lines go; `None` once writing failed.
    sink: Option<Box<dyn Write + Send>>,
    /// The path as the user gave it, for messages.
    path: PathBuf,
    /// Formatted lines not written yet.
    out: Vec<u8>,
}

impl Writer {
    pub fn new(sink: Box<dyn Write + Send>, path: PathBuf) -> Writer {
        Writer {
            sink: Some(sink),
            path,
            out: Vec::with_capacity(WRITE_OVER + 4096),
        }
    }

    /// Writes a batch's lines, all stamped with one reading of the clock; false once the stream
    /// is given up.
    pub fn write(&mut self, batch: &Batch) -> bool {
        let t = unix_now_us();
        for i in 0..batch.records.len() {
            batch.format(i, t, &mut self.out);
            if self.out.len() > WRITE_OVER && !self.write_out() {
                return false;
            }
        }
        self.write_out()
    }

    /// Writes the formatted lines; gives the stream up, saying so once, when that fails.
    fn write_out(&mut self) -> bool {
        let Some(sink) = &mut self.sink else {
            self.out.clear();
            return false;
        };
        let result = sink.write_all(&self.out).and_then(|()| sink.flush());
        self.out.clear();
        if let Err(e) = result {
            self.sink = None;
            troop_worker::process::eprint_line(&format!(
                "troop: warning: --events {}: cannot write: {e}; no more events are written",
                self.path.display()
            ));
            return false;
        }
        true
    }
}

/// Where the observer hands its batches.
pub(super) enum Stream {
    /// Written at once, on the supervisor's loop (stdout).
    Inline(Writer),
    /// Written by a thread of its own (a file).
    Thread(Thread),
    /// Given up, or finished.
    Closed,
}

/// The writing thread and the ways to it and back.
pub(super) struct Thread {
    /// Full batches to the writer.
    to_writer: Sender<Batch>,
    /// Written batches back, to be filled again.
    written: Receiver<Batch>,
    /// The writer gave the stream up.
    failed: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Stream {
    /// Writes through a thread of its own; inline if no thread can be started.
    pub fn threaded(writer: Writer) -> Stream {
        let (to_writer, batches) = crossbeam_channel::bounded::<Batch>(IN_FLIGHT);
        let (give_back, written) = crossbeam_channel::bounded(IN_FLIGHT + 2);
        let failed = Arc::new(AtomicBool::new(false));
        let said = failed.clone();
        // The thread takes the writer; it is still here if the thread could not start.
        let handed = Arc::new(Mutex::new(Some(writer)));
        let taken = handed.clone();
        let spawned = std::thread::Builder::new()
            .name("troop-events".into())
            .spawn(move || {
                let Some(mut writer) = taken.lock().ok().and_then(|mut w| w.take()) else {
                    return;
                };
                drop(taken);
                for mut batch in batches {
                    if !said.load(Ordering::Relaxed) && !writer.write(&batch) {
                        said.store(true, Ordering::Relaxed);
                    }
                    batch.clear();
                    let _ = give_back.try_send(batch);
                }
            });
        match spawned {
            Ok(handle) => Stream::Thread(Thread {
                to_writer,
                written,
                failed,
                handle,
            }),
            Err(_) => match handed.lock().ok().and_then(|mut w| w.take()) {
                Some(writer) => Stream::Inline(writer),
                None => Stream::Closed,
            },
        }
    }

    /// False once the stream is given up: records are no longer worth keeping.
    pub fn open(&self) -> bool {
        match self {
            Stream::Inline(_) => true,
            Stream::Thread(thread) => !thread.failed.load(Ordering::Relaxed),
            Stream::Closed => false,
        }
    }

    /// Writes `batch`, or hands it to the writer and leaves an empty one in its place.
    pub fn hand_over(&mut self, batch: &mut Batch) {
        match self {
            Stream::Inline(writer) => {
                if !writer.write(batch) {
                    *self = Stream::Closed;
                }
                batch.clear();
            }
            Stream::Thread(thread) => {
                let capacity = batch.records.capacity();
                let empty = thread
                    .written
                    .try_recv()
                    .unwrap_or_else(|_| Batch::with_capacity(capacity));
                let full = std::mem::replace(batch, empty);
                if thread.to_writer.send(full).is_err() {
                    // The writer is gone (it cannot be, short of a panic): nothing more to write.
                    *self = Stream::Closed;
                }
            }
            Stream::Closed => batch.clear(),
        }
    }

    /// Waits until everything handed over is written; nothing can be handed over after.
    pub fn finish(&mut self) {
        if let Stream::Thread(thread) = std::mem::replace(self, Stream::Closed) {
            let Thread {
                to_writer, handle, ..
            } = thread;
            drop(to_writer);
            let _ = handle.join();
        }
    }
}
