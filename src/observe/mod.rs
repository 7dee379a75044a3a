//! Watching a run: the events the supervisor reports as a run goes, the observers that turn
//! them into progress, an event stream or a dashboard, the controls an observer can send back,
//! and the summary of a finished run.
//!
//! The supervisor calls its observer from its one loop, synchronously, so an observer must be
//! cheap: it records what it needs and draws (or writes) from its own thread or on
//! [`Observer::flush`], which the loop calls whenever it is about to wait.

pub mod dashboard;
pub mod events;
pub mod progress;
pub mod summary;
pub mod title;

use std::time::Duration;

use troop_worker::protocol::{Outcome, Usage};

use crate::config::Mode;
use crate::exit::Exit;

/// Something that happened in a run, as the supervisor reports it to its observer.
#[derive(Debug)]
pub enum RunEvent<'a> {
    /// The run is about to start its workers.
    RunStarted {
        mode: Mode,
        /// Workers the pool starts with.
        workers: usize,
        /// Tasks in the run, when known before it starts (never while input streams).
        total: Option<u64>,
    },
    /// A worker said hello. `slot` counts from 0 (worker `w1` is slot 0).
    /// A worker is up, on `host` (`:` for this machine; its pid is that host's).
    WorkerStarted { slot: u32, pid: u32, host: &'a str },
    /// A worker ended: shut down at the end of the run, retired, or lost.
    WorkerExited {
        slot: u32,
        pid: Option<u32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// It ended on its own or was killed, not shut down by troop.
        lost: bool,
    },
    /// A task started on a worker. `command` is its command line as the job log shows it, when
    /// the observer asked for commands ([`Observer::wants_commands`]).
    TaskStarted {
        seq: u64,
        slot: u32,
        pid: Option<u32>,
        attempt: u32,
        command: Option<&'a [u8]>,
    },
    /// A task's process group is known (commands only; a kernel has none).
    TaskRunning { seq: u64, slot: u32, pgid: i32 },
    /// An attempt of a task ended. `retry` says it will run again; otherwise this is the task's
    /// one final end.
    TaskFinished {
        seq: u64,
        slot: u32,
        pid: Option<u32>,
        attempt: u32,
        outcome: &'a Outcome,
        usage: &'a Usage,
        retry: bool,
    },
    /// A task an earlier run's job log records as done (`--resume`): it is not run again.
    TaskSkipped { seq: u64 },
    /// Every task is known: this many (skipped ones not counted).
    InputEnded { total: u64 },
    /// The run ended.
    RunFinished { summary: &'a Summary },
}

/// What an observer (a dashboard, say) can ask of a running batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Run this many workers from now on (the pool grows or shrinks live).
    Workers(usize),
    /// Pause every running task and start no new one (true), or go on (false).
    Pause(bool),
    /// Stop this task (its process group gets the termination sequence).
    Kill(u64),
    /// Stop gracefully, as a first Ctrl-C does.
    Stop,
}

/// Hooks a caller can use to watch a run as it goes.
pub trait Observer {
    /// Every worker of the pool is up: these are their pids (for `top -p`).
    fn pool_up(&mut self, _mode: Mode, _pids: &[u32]) {}

    /// Something happened.
    fn event(&mut self, _event: &RunEvent<'_>) {}

    /// The loop is about to wait: a good time to write what was buffered.
    fn flush(&mut self) {}

    /// True when [`RunEvent::TaskStarted`] should carry the command line (it costs a render
    /// per task).
    fn wants_commands(&self) -> bool {
        false
    }

    /// The run's controls: an observer that wants to steer the run keeps this.
    fn attach(&mut self, _controls: Controls) {}

    /// The run's streams (the process's own), as this observer needs them: one that draws on
    /// the terminal takes the task output through writers that write past its drawing.
    fn route_io(&self, io: crate::run_io::RunIo) -> crate::run_io::RunIo {
        io
    }
}

/// The way back from an observer into the supervisor's inbox.
#[derive(Debug, Clone)]
pub struct Controls(pub(crate) crossbeam_channel::Sender<crate::inbox::Msg>);

impl Controls {
    /// Asks the run to do this; false once the run has ended.
    pub fn send(&self, control: Control) -> bool {
        self.0.send(crate::inbox::Msg::Control(control)).is_ok()
    }
}

/// The observers a `troop run` command line asks for (`--progress`, `--bar`, `--eta`,
/// `--dashboard`, `--events`, the summary), in one [`Fanout`].
pub fn for_config(config: &crate::config::RunConfig) -> Result<Fanout, crate::error::RunError> {
    let mut observers: Vec<Box<dyn Observer>> = Vec::new();
    // First: it gives the terminal back when the run ends, before the others print.
    if let Some(dashboard) = dashboard::Dashboard::for_config(config)? {
        observers.push(Box::new(dashboard));
    }
    if let Some(progress) = progress::Progress::for_watch(&config.watch) {
        observers.push(Box::new(progress));
    }
    if let Some(path) = &config.watch.events {
        observers.push(Box::new(events::Events::open(path)?));
    }
    // Last: it prints once the others have left the terminal.
    if let Some(summary) = summary::Summarizer::for_config(config) {
        observers.push(Box::new(summary));
    }
    let observers = title::with_supervisor_title(observers);
    Ok(Fanout(observers))
}

/// An observer that watches nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl Observer for Quiet {}

/// Several observers watching one run, each told everything in turn.
#[derive(Default)]
pub struct Fanout(pub Vec<Box<dyn Observer>>);

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fanout({} observers)", self.0.len())
    }
}

impl Observer for Fanout {
    fn pool_up(&mut self, mode: Mode, pids: &[u32]) {
        self.0.iter_mut().for_each(|o| o.pool_up(mode, pids));
    }
    fn event(&mut self, event: &RunEvent<'_>) {
        self.0.iter_mut().for_each(|o| o.event(event));
    }
    fn flush(&mut self) {
        self.0.iter_mut().for_each(|o| o.flush());
    }
    fn wants_commands(&self) -> bool {
        self.0.iter().any(|o| o.wants_commands())
    }
    fn attach(&mut self, controls: Controls) {
        self.0.iter_mut().for_each(|o| o.attach(controls.clone()));
    }
    fn route_io(&self, io: crate::run_io::RunIo) -> crate::run_io::RunIo {
        self.0.iter().fold(io, |io, o| o.route_io(io))
    }
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Tasks that ended (succeeded, failed or lost).
    pub total: u64,
    /// Tasks that did not succeed.
    pub failed: u64,
    /// Tasks read but never started (after an interrupt or a halt).
    pub not_started: u64,
    /// Tasks skipped because the job log of an earlier run records them (`--resume`).
    pub skipped: u64,
    pub exit: Exit,
    pub wall: Duration,
    /// CPU time (user + system) of the supervisor, its threads and its reaped workers, in µs.
    pub cpu_us: u64,
    pub workers: usize,
    pub worker_pids: Vec<u32>,
}

/// CPU time used so far by this process and its reaped children, in microseconds.
pub fn cpu_time_us() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN]
        .into_iter()
        .filter_map(|who| getrusage(who).ok())
        .map(|u| us(u.user_time()) + us(u.system_time()))
        .sum()
}
