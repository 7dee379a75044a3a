//! `--dashboard`: a live full-screen view of a run on the terminal (stderr), with keys that
//! steer it. The [`Dashboard`] observer keeps a [`state::Model`] up to date from the run's
//! events (a lock and a few field updates per event); a drawing thread redraws it about four
//! times a second, reads keys and sends [`Control`](crate::observe::Control)s back to the supervisor.
//!
//! The terminal is put back (raw mode off, main screen) on every way out: the end of the run,
//! an error, `q`, Ctrl-C, and panics (a panic hook and a drop guard). Task output meant for the
//! terminal is held meanwhile ([`hold`]) and written out once the terminal is restored.

pub mod hold;
pub mod keys;
pub mod state;
pub mod stats;
pub mod view;
pub mod wait;

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::config::RunConfig;
use crate::error::RunError;
use crate::observe::{Controls, Observer, RunEvent, Summary};
use keys::Action;
use state::Model;

/// How often the screen is drawn.
const FRAME: Duration = Duration::from_millis(250);
/// How often the CPU and memory of troop's processes are read again (CPU is the share over
/// this time).
const READING: Duration = Duration::from_secs(1);

/// The dashboard observer.
#[derive(Debug)]
pub struct Dashboard {
    shared: Arc<Shared>,
    controls: Option<Controls>,
    thread: Option<JoinHandle<()>>,
    waker: Option<wait::Waker>,
}

#[derive(Debug)]
struct Shared {
    model: Mutex<Model>,
    stop: AtomicBool,
}

impl Dashboard {
    /// The dashboard a command line asks for; a usage error when stderr is not a terminal.
    pub fn for_config(config: &RunConfig) -> Result<Option<Dashboard>, RunError> {
        if !config.watch.dashboard {
            return Ok(None);
        }
        if !io::stderr().is_terminal() {
            return Err(RunError::Usage(
                "--dashboard draws on the terminal, but standard error is not a terminal".into(),
            ));
        }
        Ok(Some(Dashboard {
            shared: Arc::new(Shared {
                model: Mutex::new(Model::new(Instant::now())),
                stop: AtomicBool::new(false),
            }),
            controls: None,
            thread: None,
            waker: None,
        }))
    }

    fn start(&mut self) {
        let Some(controls) = self.controls.clone() else {
            return;
        };
        let Ok((waker, wait)) = wait::pair() else {
            return;
        };
        let shared = self.shared.clone();
        self.thread = std::thread::Builder::new()
            .name("troop-dashboard".into())
            .spawn(move || screen(&shared, &controls, wait))
            .ok();
        self.waker = Some(waker);
    }

    /// Stops drawing and puts the terminal back.
    fn close(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        restore();
    }
}

impl Observer for Dashboard {
    fn event(&mut self, event: &RunEvent<'_>) {
        let started = matches!(event, RunEvent::RunStarted { .. });
        lock(&self.shared.model).apply(event, Instant::now());
        if started && self.thread.is_none() {
            self.start();
        }
        if matches!(event, RunEvent::RunFinished { .. }) {
            self.close();
        }
    }

    fn wants_commands(&self) -> bool {
        true
    }

    fn attach(&mut self, controls: Controls) {
        self.controls = Some(controls);
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The drawing thread: draws every [`FRAME`] and reads keys, until woken to stop.
fn screen(shared: &Shared, controls: &Controls, mut wait: wait::Wait) {
    let Ok(_guard) = Screen::enter() else {
        restore();
        return;
    };
    // One write per frame, not one per change on the screen.
    let out = io::BufWriter::with_capacity(1 << 16, io::stderr());
    let Ok(mut terminal) = Terminal::new(CrosstermBackend::new(out)) else {
        return;
    };
    let mut cost = stats::Cost::start();
    let mut stats = stats::Stats::default();
    let (mut selected, mut next, mut next_reading) = (0usize, Instant::now(), Instant::now());
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next {
            let model = {
                let mut model = lock(&shared.model);
                model.tick(now);
                model.clone()
            };
            let before = stats::thread_cpu_us();
            if now >= next_reading {
                stats.refresh(&model);
                next_reading = now + READING;
            }
            let refreshed = stats::thread_cpu_us();
            selected = selected.min(model.rows.len().saturating_sub(1));
            if terminal
                .draw(|f| view::draw(f, &model, &stats, selected, now))
                .is_err()
            {
                break;
            }
            cost.frame(before, refreshed, stats::thread_cpu_us());
            next = now + FRAME;
        }
        match wait.wait(next.saturating_duration_since(Instant::now())) {
            wait::Woke::Stop => break,
            wait::Woke::Timeout => {}
            wait::Woke::Input => {
                while event::poll(Duration::ZERO).unwrap_or(false) {
                    let Ok(event) = event::read() else { break };
                    if on_event(&event, shared, controls, &mut selected) {
                        next = Instant::now();
                    }
                }
            }
        }
    }
    drop(terminal);
    restore();
    if std::env::var_os("TROOP_DASHBOARD_STATS").is_some_and(|v| v == "1") {
        eprintln!("{}", cost.report());
    }
}

/// Acts on a key (or a resize); true when the screen should be drawn again at once.
fn on_event(event: &Event, shared: &Shared, controls: &Controls, selected: &mut usize) -> bool {
    let key = match event {
        Event::Key(key) => key,
        Event::Resize(..) => return true,
        _ => return false,
    };
    let mut model = lock(&shared.model);
    match keys::action(key, &model, *selected) {
        Some(Action::Send(control)) => {
            keys::note(&mut model, &control);
            controls.send(control);
        }
        Some(Action::Select(by)) => {
            let last = model.rows.len().saturating_sub(1);
            *selected = selected.saturating_add_signed(by).min(last);
        }
        Some(Action::Interrupt) => {
            // SAFETY: kill and getpid have no preconditions.
            unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
        }
        None => return false,
    }
    true
}

/// Whether the terminal is in raw mode and the alternate screen now.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The terminal taken over: raw mode and the alternate screen until dropped.
struct Screen;

impl Screen {
    fn enter() -> io::Result<Screen> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        execute!(io::stderr(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(Screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the alternate screen and raw mode, if the dashboard is up; harmless otherwise.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stderr(), terminal::LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
    }
}

/// The line printed when a run watched by the dashboard ends.
pub fn end_line(summary: &Summary) -> String {
    let mut line = format!("troop: {} tasks, {} failed", summary.total, summary.failed);
    if summary.not_started > 0 {
        line.push_str(&format!(", {} not started", summary.not_started));
    }
    line.push_str(&format!(", wall {}", view::clock(summary.wall)));
    line
}

/// While the dashboard is up, holds what the run writes to the terminal; afterwards, with
/// [`finish`], writes it out and the end line.
pub fn hold_output(config: &RunConfig, io: &mut crate::run_io::RunIo) -> Option<hold::Held> {
    if !config.watch.dashboard {
        return None;
    }
    let tmpdir = config.tmpdir.clone().unwrap_or_else(std::env::temp_dir);
    hold::Held::wrap_terminals(io, tmpdir)
}

/// The run is over and the terminal restored: writes out the held output, then the end line.
pub fn finish(held: Option<hold::Held>, summary: Option<&Summary>) {
    restore();
    if let Some(held) = held {
        let _ = held.release();
    }
    if let Some(summary) = summary {
        use std::io::Write;
        let _ = writeln!(io::stderr(), "{}", end_line(summary));
    }
}
