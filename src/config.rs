//! The validated configuration of a run: what the core sees instead of command-line flags.

use std::path::PathBuf;

use crate::input::{InputSpec, Template};

/// Where the tasks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `troop-worker` processes fed over IPC: each worker is its own line in `top`.
    Process,
    /// The same worker runtime on threads inside the supervisor.
    Thread,
    /// Threads that must hold one global lock while they compute, as CPython's threads do.
    Gil,
    /// One thread running an event loop, as asyncio does: waits overlap, computing does not.
    Async,
}

impl Mode {
    /// The mode's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::Thread => "thread",
            Mode::Gil => "gil",
            Mode::Async => "async",
        }
    }
}

/// How worker processes start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMethod {
    /// Execute the `troop-worker` binary (a fresh process image).
    Spawn,
    /// Fork the supervisor before it starts any thread; replacements come from a fork server.
    Fork,
}

/// How task output reaches the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Each task's output is printed whole when it ends.
    Group,
    /// Complete lines are printed as they are written; lines of different tasks may interleave.
    LineBuffer,
}

/// How many tasks travel in one message to a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Grow batches while tasks are tiny, from the measured task cost.
    Auto,
    /// Exactly this many tasks per message.
    Fixed(usize),
}

/// Everything `troop run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub template: Template,
    pub input: InputSpec,
    /// The number of workers.
    pub jobs: usize,
    pub mode: Mode,
    pub start: StartMethod,
    /// How long a gil-mode kernel may hold the lock while others wait.
    pub switch_interval: std::time::Duration,
    pub keep_order: bool,
    pub output: OutputMode,
    pub tag: bool,
    pub dry_run: bool,
    pub chunk: Chunk,
    /// The shell for commands with shell syntax.
    pub shell: String,
    /// Where `troop-worker` is; by default next to the running `troop`.
    pub worker_exe: Option<PathBuf>,
}

impl RunConfig {
    /// A configuration with troop's defaults for everything but the command and its input.
    pub fn new(template: Template, input: InputSpec, jobs: usize) -> Self {
        RunConfig {
            template,
            input,
            jobs,
            mode: Mode::Process,
            start: StartMethod::Spawn,
            switch_interval: troop_worker::gil::DEFAULT_SWITCH_INTERVAL,
            keep_order: false,
            output: OutputMode::Group,
            tag: false,
            dry_run: false,
            chunk: Chunk::Auto,
            shell: "/bin/sh".into(),
            worker_exe: None,
        }
    }
}
