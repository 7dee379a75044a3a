//! Where the event stream's batches are turned into lines and written: on a thread of their own
//! for a file, so that the supervisor's loop only records; on the supervisor's loop itself for
//! stdout, so that events land between the task output it writes, in whole lines, as before.
//!
//! A stream that cannot be written (a full disk, a closed pipe) is said once on stderr and given
//! up: the run goes on, and the supervisor stops recording once it sees that.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use troop_worker::runtime::unix_now_us;

use super::record::Batch;

/// Formatted lines are written out once they pass this many bytes.
const WRITE_OVER: usize = 256 * 1024;

/// Batches handed over but not written yet, at most: past them, the supervisor waits for the
/// writer, as it would wait for a slow disk if it wrote itself.
const IN_FLIGHT: usize = 16;

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

    /// Says once that the stream cannot be written, and writes no more.
    fn give_up(&mut self, e: &std::io::Error) {
        self.sink = None;
        troop_worker::process::eprint_line(&format!(
            "troop: warning: --events {}: cannot write: {e}; no more events are written",
            self.path.display()
        ));
    }

    /// Writes a batch's lines, all stamped with one reading of the clock; false once the stream
    /// is given up.
    pub fn write(&mut self, batch: &Batch) -> bool {
        if self.sink.is_none() {
            return false;
        }
        let mut t = Vec::with_capacity(20);
        super::record::push_u64(&mut t, unix_now_us());
        for i in 0..batch.records.len() {
            batch.format(i, &t, &mut self.out);
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
            self.give_up(&e);
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

/// The writing thread and the queue between it and the loop.
pub(super) struct Thread {
    queue: Arc<Queue>,
    handle: JoinHandle<()>,
}

/// Batches on their way to the writer and back. A mutex and condition variables, not a
/// channel: a channel's receiver spins (yielding the processor) before it sleeps, and on a
/// busy machine that takes turns from the loop.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    /// The writer waits here for batches.
    work: Condvar,
    /// The loop waits here while [`IN_FLIGHT`] batches are not written yet.
    room: Condvar,
    /// The writer gave the stream up.
    failed: AtomicBool,
}

#[derive(Default)]
struct State {
    /// Handed over, not written yet, oldest first.
    full: VecDeque<Batch>,
    /// Written, to be filled again.
    empty: Vec<Batch>,
    /// The writer is asleep, waiting for work.
    idle: bool,
    /// The loop waits for room.
    waiting: bool,
    /// Nothing more comes: the writer ends once it has written what is queued.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer's side: writes batches until the loop closes the queue.
    fn serve(&self, mut writer: Writer) {
        if writer.sink.is_none() {
            self.failed.store(true, Ordering::Relaxed);
        }
        let mut state = self.lock();
        loop {
            if let Some(mut batch) = state.full.pop_front() {
                if state.waiting {
                    self.room.notify_one();
                }
                drop(state);
                if !self.failed.load(Ordering::Relaxed) && !writer.write(&batch) {
                    self.failed.store(true, Ordering::Relaxed);
                }
                batch.clear();
                state = self.lock();
                state.empty.push(batch);
            } else if state.closed {
                return;
            } else {
                state.idle = true;
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                state.idle = false;
            }
        }
    }
}

impl Stream {
    /// Writes through a thread of its own; inline if no thread can be started.
    pub fn threaded(writer: Writer) -> Stream {
        let queue = Arc::new(Queue::default());
        // The thread takes the writer; it is still here if the thread could not start.
        let handed = Arc::new(Mutex::new(Some(writer)));
        let (served, taken) = (queue.clone(), handed.clone());
        let spawned = std::thread::Builder::new()
            .name("troop-events".into())
            .spawn(move || {
                let writer = taken.lock().ok().and_then(|mut w| w.take());
                drop(taken);
                if let Some(writer) = writer {
                    yield_to_the_loop();
                    served.serve(writer);
                }
            });
        match spawned {
            Ok(handle) => Stream::Thread(Thread { queue, handle }),
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
            // A relaxed look is enough: the loop stops keeping events a little later.
            Stream::Thread(thread) => !thread.queue.failed.load(Ordering::Relaxed),
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
                let queue = &thread.queue;
                let mut state = queue.lock();
                while state.full.len() >= IN_FLIGHT {
                    state.waiting = true;
                    state = queue
                        .room
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                    state.waiting = false;
                }
                let empty = state
                    .empty
                    .pop()
                    .unwrap_or_else(|| Batch::with_capacity(batch.records.capacity()));
                state.full.push_back(std::mem::replace(batch, empty));
                if state.idle {
                    queue.work.notify_one();
                }
            }
            Stream::Closed => batch.clear(),
        }
    }

    /// Waits until everything handed over is written; nothing can be handed over after.
    pub fn finish(&mut self) {
        if let Stream::Thread(Thread { queue, handle }) = std::mem::replace(self, Stream::Closed) {
            queue.lock().closed = true;
            queue.work.notify_one();
            let _ = handle.join();
        }
    }
}

/// Lowers the calling thread's priority a little: when the writer and the supervisor's loop
/// want the same processor, the loop (every task waits on it) goes first, and the writer
/// catches up while the loop waits. Only this thread is lowered (Linux priorities are per
/// thread).
fn yield_to_the_loop() {
    // SAFETY: gettid and setpriority only read and set the calling thread's scheduling values.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 5);
    }
}
