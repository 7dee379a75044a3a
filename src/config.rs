//! The validated configuration of a run: what the core sees instead of command-line flags.

use std::path::PathBuf;

use troop_worker::protocol::{TermStep, default_term_seq};

use crate::input::{InputSpec, Template};
use crate::policy::{Halt, RetryPolicy, TimeoutSpec};

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

/// Which tasks a job log lets a run skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Run everything; the job log starts empty.
    No,
    /// Skip every task the job log records.
    All,
    /// Skip the tasks the job log records as succeeded; run failed ones again.
    Failed,
}

/// Limits and gates on the resources tasks use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    /// RLIMIT_AS for each command, in bytes.
    pub memory_limit: Option<u64>,
    /// Niceness of each task.
    pub nice: Option<i32>,
    /// Start no task while free memory is below this many bytes.
    pub memfree: Option<u64>,
    /// Start no task while the 1-minute load average is above this.
    pub load: Option<f64>,
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
    /// Another worker program; by default troop serves as its own worker.
    pub worker_exe: Option<PathBuf>,
    /// GNU parallel's TSV job log.
    pub joblog: Option<PathBuf>,
    /// The JSON-lines job log.
    pub joblog_json: Option<PathBuf>,
    pub resume: Resume,
    pub retry: RetryPolicy,
    pub timeout: Option<TimeoutSpec>,
    /// How a task is stopped: on timeout, on a second interrupt, on `--halt now`.
    pub term_seq: Vec<TermStep>,
    pub halt: Option<Halt>,
    pub limits: Limits,
    /// Output kept in memory per task and stream before it spills to a file.
    pub spill_threshold: u64,
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
            joblog: None,
            joblog_json: None,
            resume: Resume::No,
            retry: RetryPolicy::default(),
            timeout: None,
            term_seq: default_term_seq(),
            halt: None,
            limits: Limits::default(),
            spill_threshold: 1 << 20,
        }
    }
}
