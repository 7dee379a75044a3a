//! `--progress`, `--bar` and `--eta`: where a run stands, on stderr.
//!
//! On a terminal an indicatif line shows it: a bar with the percentage done (`--bar`), the
//! tasks done, failed and running and the rate (`--progress`), the time left (`--eta`); a
//! spinner stands for the bar while the input streams and the total is unknown. Task output
//! reaches the terminal through [`Observer::route_io`]'s writers, which clear the bar, write
//! whole lines and draw it again, so output and bar never tear each other. troop's own warnings
//! go straight to stderr and may still cut through the bar.
//!
//! Without a terminal, `--progress` prints a plain line every few seconds (5 s, or
//! `TROOP_PROGRESS_INTERVAL_MS`) and a last one at the end; `--bar` and `--eta` print nothing.
//!
//! The observer only counts, under a lock nobody else holds for long; a thread of its own draws,
//! waking on a timer (a channel it waits on with a timeout) and when the run ends.

pub(super) mod figures;
mod screen;

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use figures::{Counts, Show};

use super::{Observer, RunEvent};
use crate::config::Watch;
use crate::policy::timeout::RunningMedian;
use crate::run_io::RunIo;

/// How often the terminal line is redrawn.
const TERMINAL_TICK: Duration = Duration::from_millis(100);
/// How often the plain line is printed, unless `TROOP_PROGRESS_INTERVAL_MS` says otherwise.
const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// What the observer counts and the drawing thread reads.
struct State {
    counts: Counts,
    median: RunningMedian,
    started: Instant,
}

impl State {
    fn read(&self) -> (Counts, Duration) {
        let counts = Counts {
            median_us: self.median.median(),
            ..self.counts
        };
        (counts, self.started.elapsed())
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the progress goes.
enum Display {
    Terminal(screen::Screen),
    Plain(Duration),
}

/// The `--progress`/`--bar`/`--eta` observer.
pub struct Progress {
    shared: Shared,
    /// The terminal's bar, when one is drawn (the output writers go past it).
    bar: Option<indicatif::ProgressBar>,
    display: Option<Display>,
    /// Told when the run has finished; dropped to stop the thread without a last line.
    finished: Option<Sender<()>>,
    painter: Option<JoinHandle<()>>,
}

impl Progress {
    /// The observer these options ask for, if any: a drawn line when stderr is a terminal, plain
    /// lines (`--progress` only) when it is not. None under `--dashboard`, which owns the screen.
    pub fn for_watch(watch: &Watch) -> Option<Progress> {
        use std::io::IsTerminal;
        if watch.dashboard || !(watch.progress || watch.bar || watch.eta) {
            return None;
        }
        let display = if std::io::stderr().is_terminal() {
            Display::Terminal(screen::Screen::new(Show {
                bar: watch.bar || watch.progress,
                counts: watch.progress,
                eta: watch.eta || watch.progress,
            }))
        } else if watch.progress {
            Display::Plain(plain_interval())
        } else {
            return None;
        };
        Some(Progress::new(display))
    }

    fn new(display: Display) -> Progress {
        let bar = match &display {
            Display::Terminal(screen) => Some(screen.bar().clone()),
            Display::Plain(_) => None,
        };
        Progress {
            shared: Arc::new(Mutex::new(State {
                counts: Counts::default(),
                median: RunningMedian::new(),
                started: Instant::now(),
            })),
            bar,
            display: Some(display),
            finished: None,
            painter: None,
        }
    }

    fn start_painter(&mut self) {
        let Some(display) = self.display.take() else {
            return;
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let shared = self.shared.clone();
        let painter = std::thread::Builder::new()
            .name("troop-progress".into())
            .spawn(move || paint(display, &shared, &rx));
        if let Ok(painter) = painter {
            self.finished = Some(tx);
            self.painter = Some(painter);
        }
    }

    /// Lets the thread draw the end (or clear the line, without `finished`) and waits for it.
    fn stop_painter(&mut self, finished: bool) {
        if let Some(tx) = self.finished.take()
            && finished
        {
            let _ = tx.send(());
        }
        if let Some(painter) = self.painter.take() {
            let _ = painter.join();
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("counts", &lock(&self.shared).counts)
            .field("terminal", &self.bar.is_some())
            .finish_non_exhaustive()
    }
}

impl Observer for Progress {
    fn event(&mut self, event: &RunEvent<'_>) {
        match event {
            RunEvent::RunStarted { total, .. } => {
                {
                    let mut state = lock(&self.shared);
                    state.started = Instant::now();
                    state.counts.total = *total;
                }
                self.start_painter();
            }
            RunEvent::TaskStarted { .. } => lock(&self.shared).counts.running += 1,
            RunEvent::TaskFinished {
                outcome,
                usage,
                retry,
                ..
            } => {
                let mut state = lock(&self.shared);
                let counts = &mut state.counts;
                counts.running = counts.running.saturating_sub(1);
                if !retry {
                    counts.done += 1;
                    counts.failed += u64::from(!outcome.is_success());
                }
                state.median.push(usage.wall_us);
            }
            RunEvent::InputEnded { total } => lock(&self.shared).counts.total = Some(*total),
            RunEvent::RunFinished { .. } => {
                lock(&self.shared).counts.running = 0;
                self.stop_painter(true);
            }
            _ => {}
        }
    }

    fn route_io(&self, io: RunIo) -> RunIo {
        match &self.bar {
            Some(bar) => screen::route(io, bar),
            None => io,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_painter(false);
    }
}

/// The drawing thread: draws every tick until the run ends, then draws the end.
fn paint(mut display: Display, shared: &Shared, finished: &Receiver<()>) {
    let tick = match &display {
        Display::Terminal(_) => TERMINAL_TICK,
        Display::Plain(interval) => *interval,
    };
    let mut next = Instant::now() + tick;
    let ended = loop {
        if let Display::Terminal(screen) = &mut display {
            let (counts, elapsed) = lock(shared).read();
            screen.update(&counts, elapsed);
        }
        match finished.recv_deadline(next) {
            Err(RecvTimeoutError::Timeout) => {
                next = Instant::now() + tick;
                if let Display::Plain(_) = display {
                    let (counts, elapsed) = lock(shared).read();
                    troop_worker::process::eprint_line(&figures::plain_line(&counts, elapsed));
                }
            }
            Ok(()) => break true,
            Err(RecvTimeoutError::Disconnected) => break false,
        }
    };
    let (counts, elapsed) = lock(shared).read();
    match (&mut display, ended) {
        (Display::Terminal(screen), true) => screen.finish(&counts, elapsed),
        (Display::Terminal(screen), false) => screen.clear(),
        (Display::Plain(_), true) => {
            troop_worker::process::eprint_line(&figures::final_line(&counts, elapsed));
        }
        (Display::Plain(_), false) => {}
    }
}

/// The plain line's period: `TROOP_PROGRESS_INTERVAL_MS` (for tests), or 5 s.
fn plain_interval() -> Duration {
    std::env::var("TROOP_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .map_or(PLAIN_INTERVAL, Duration::from_millis)
}
