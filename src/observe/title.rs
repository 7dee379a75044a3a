//! The supervisor's process title: `troop [412/1000 done, 2 failed]` in `ps` and `top -c`, kept
//! up to date as a run goes.
//!
//! The title lives in the supervisor's own `argv` area (see [`troop_worker::title`]), which is
//! only as long as the command line the user typed: a longer title is cut, and the rest of the
//! area is cleared. The environment is never touched, so `std::env::var` still works afterwards.
//! On [`Observer::flush`], when the counts changed, they go to a small thread that writes the
//! title at most once per [`EVERY`] (never once per task; counts that arrive sooner are written
//! when the interval is up, so the title never stays behind while the supervisor waits).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use troop_worker::title::Area;

use super::{Observer, RunEvent};

/// The title is rewritten at most this often.
pub const EVERY: Duration = Duration::from_millis(200);

/// Set once a supervisor title has taken this process's `argv` area: there is one per process.
static CLAIMED: AtomicBool = AtomicBool::new(false);

/// Shows a run's counts as the supervisor's process title.
#[derive(Debug, Default)]
pub struct SupervisorTitle {
    counts: Counts,
    /// The counts last sent to the writer.
    sent: Option<Counts>,
    /// The writer thread's channel; `None` before the first send, and for good when another title
    /// holds the area or `/proc` cannot tell where it is.
    writer: Option<Sender<Counts>>,
    started: bool,
}

/// What the title shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Tasks that ended for good (failed ones included).
    pub done: u64,
    pub failed: u64,
    /// Tasks in the run, once known.
    pub total: Option<u64>,
}

/// Formats `counts` as a title into `buf`: `troop [412/1000 done, 2 failed]`, `?` for a total
/// not known yet.
pub fn format_title(buf: &mut Vec<u8>, counts: Counts) {
    buf.clear();
    let _ = write!(buf, "troop [{}/", counts.done);
    let _ = match counts.total {
        Some(total) => write!(buf, "{total}"),
        None => write!(buf, "?"),
    };
    let _ = write!(buf, " done, {} failed]", counts.failed);
}

impl SupervisorTitle {
    /// A title that takes the process's `argv` area when it first has something to show.
    pub fn new() -> SupervisorTitle {
        SupervisorTitle::default()
    }

    /// Hands the counts to the writer thread, started (and the area taken) the first time.
    fn send(&mut self) {
        if self.sent == Some(self.counts) {
            return;
        }
        if !self.started {
            self.started = true;
            self.writer = start_writer();
        }
        if let Some(writer) = &self.writer {
            let _ = writer.send(self.counts);
            self.sent = Some(self.counts);
        }
    }
}

/// `observers` and a [`SupervisorTitle`]: every `troop run` shows its counts in `ps`.
pub fn with_supervisor_title(mut observers: Vec<Box<dyn Observer>>) -> Vec<Box<dyn Observer>> {
    observers.push(Box::new(SupervisorTitle::new()));
    observers
}

/// Takes the `argv` area and starts the thread that writes titles into it.
fn start_writer() -> Option<Sender<Counts>> {
    if CLAIMED.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: `CLAIMED` makes this the process's only title area (a supervisor runs no worker
    // runtime that would title it: thread workers never do), and `main` copied the arguments
    // (clap owns its strings) before any run started.
    let area = unsafe { Area::argv() }?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("troop-title".into())
        .spawn(move || write_titles(area, rx))
        .ok()?;
    Some(tx)
}

/// Writes the latest counts at most once per [`EVERY`]: counts that arrive sooner wait for the
/// rest of the interval (so the last ones are always shown), until the run hangs up.
fn write_titles(mut area: Area, rx: Receiver<Counts>) {
    let mut buf = Vec::with_capacity(64);
    let mut last: Option<Instant> = None;
    let mut pending: Option<Counts> = None;
    loop {
        let wait = match (pending, last) {
            (Some(_), Some(t)) => EVERY.saturating_sub(t.elapsed()),
            (Some(_), None) => Duration::ZERO,
            (None, _) => Duration::MAX,
        };
        let received = if wait == Duration::MAX {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(wait)
        };
        match received {
            Ok(counts) => pending = Some(counts),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(counts) = pending {
                    format_title(&mut buf, counts);
                    area.set(&buf);
                }
                return;
            }
        }
        if let Some(counts) = pending
            && last.is_none_or(|t| t.elapsed() >= EVERY)
        {
            format_title(&mut buf, counts);
            area.set(&buf);
            last = Some(Instant::now());
            pending = None;
        }
    }
}

impl Observer for SupervisorTitle {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted { total, .. } => self.counts.total = *total,
            RunEvent::InputEnded { total } => self.counts.total = Some(*total),
            RunEvent::TaskFinished {
                outcome,
                retry: false,
                ..
            } => {
                self.counts.done += 1;
                if !outcome.is_success() {
                    self.counts.failed += 1;
                }
            }
            RunEvent::RunFinished { .. } => self.send(),
            _ => {}
        }
    }

    fn flush(&mut self) {
        self.send();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(counts: Counts) -> String {
        let mut buf = Vec::new();
        format_title(&mut buf, counts);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn the_title_counts_done_and_failed_tasks() {
        let counts = Counts {
            done: 412,
            failed: 2,
            total: Some(1000),
        };
        assert_eq!(title(counts), "troop [412/1000 done, 2 failed]");
    }

    #[test]
    fn a_streaming_run_has_no_total_yet() {
        let counts = Counts {
            done: 3,
            failed: 0,
            total: None,
        };
        assert_eq!(title(counts), "troop [3/? done, 0 failed]");
    }
}
