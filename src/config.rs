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
    /// `-u`: output passes through as it comes, in no order and untagged.
    Ungroup,
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

/// How a run is watched while it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// `--progress`: progress on stderr, drawn on a terminal, a plain line every few seconds
    /// otherwise.
    pub progress: bool,
    /// `--bar`: a progress bar on stderr, on a terminal only.
    pub bar: bool,
    /// `--eta`: the estimated time left on stderr, on a terminal only.
    pub eta: bool,
    /// `--dashboard`: the live full-screen view.
    pub dashboard: bool,
    /// `--events FILE`: the JSON-lines event stream (`-` is stdout).
    pub events: Option<PathBuf>,
    /// `--summary`: the summary of the run on stderr, terminal or not.
    pub summary: bool,
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
    /// `--tagstring`: the tag of each task's lines, with replacement strings (implies tagging).
    pub tagstring: Option<crate::input::template::Text>,
    /// `--color`/`--ctag`: each task's lines in a colour of their own, as GNU parallel shows them.
    pub color: bool,
    /// `--files` or `--results`: task output is kept in files, not printed.
    pub keep: Option<crate::results::KeepSpec>,
    /// `-v`: each task's command line is printed to stdout before its output.
    pub verbose: u8,
    /// `-t`: each task's command line is printed to stderr as it is sent to run.
    pub announce: bool,
    pub dry_run: bool,
    pub chunk: Chunk,
    /// The shell for commands with shell syntax, and for a command word no `PATH` directory
    /// holds (it may be a function the shell imports): see [`user_shell`].
    pub shell: String,
    /// Another worker program; by default troop serves as its own worker.
    pub worker_exe: Option<PathBuf>,
    /// GNU parallel's TSV job log.
    pub joblog: Option<PathBuf>,
    /// The JSON-lines job log.
    pub joblog_json: Option<PathBuf>,
    /// How the run is watched while it goes: progress, dashboard, event stream.
    pub watch: Watch,
    pub resume: Resume,
    pub retry: RetryPolicy,
    pub timeout: Option<TimeoutSpec>,
    /// How a task is stopped: on timeout, on a second interrupt, on `--halt now`.
    pub term_seq: Vec<TermStep>,
    pub halt: Option<Halt>,
    pub limits: Limits,
    /// Output kept in memory per task and stream before it spills to a file.
    pub spill_threshold: u64,
    /// `--pipe`/`--pipepart`: input is cut into blocks, each the input of one task.
    pub pipe: Option<crate::input::pipe::PipeSpec>,
    /// Scheduling: `--delay`, `--shuf`, `-j FILE`.
    pub sched: SchedOptions,
    /// `--shellquote`: print each command line quoted for the shell, and run nothing.
    pub shellquote: Option<ShellQuote>,
    /// Where the run's private directory goes (`--tmpdir`); `$TMPDIR` when not given.
    pub tmpdir: Option<PathBuf>,
    /// Workers on other hosts (`-S`, `--slf`); `None` runs every worker here.
    pub remote: Option<crate::pool::remote::RemoteSpec>,
    /// Workers as Slurm job steps (`--launcher slurm`).
    pub slurm: Option<crate::pool::slurm::SlurmSpec>,
    /// Files that go with each task to a remote worker and back.
    pub transfer: Option<TransferSpec>,
}

/// GNU parallel's `--transferfile`, `--return`, `--cleanup` and `--basefile`: files that go with
/// the tasks that run on other hosts (a task that runs here needs none).
#[derive(Debug, Clone)]
pub struct TransferSpec {
    /// Each task's files to send, with replacement strings (`--transfer` is `{}`).
    pub send: Vec<crate::input::template::Text>,
    /// Each task's files to bring back.
    pub fetch: Vec<crate::input::template::Text>,
    /// Remove them from the host afterwards.
    pub cleanup: bool,
    /// Files every remote worker gets once, before its first task.
    pub basefiles: Vec<PathBuf>,
}

/// What `--shellquote` quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellQuote {
    /// No command was given: each input, its values joined with spaces.
    Input,
    /// The command line each input makes.
    Command,
}

/// How tasks are ordered and paced, and where the number of workers comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedOptions {
    /// The least time between the starts of two tasks.
    pub delay: Option<std::time::Duration>,
    /// Run the tasks in random order, all input read first.
    pub shuf: bool,
    /// `-j FILE`: the number of workers is read from this file, again each time a task ends.
    pub jobs_file: Option<PathBuf>,
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
            tagstring: None,
            color: false,
            keep: None,
            verbose: 0,
            announce: false,
            dry_run: false,
            chunk: Chunk::Auto,
            shell: user_shell(&|name| std::env::var_os(name)),
            worker_exe: None,
            joblog: None,
            joblog_json: None,
            watch: Watch::default(),
            resume: Resume::No,
            retry: RetryPolicy::default(),
            timeout: None,
            term_seq: default_term_seq(),
            halt: None,
            limits: Limits::default(),
            spill_threshold: 1 << 20,
            pipe: None,
            sched: SchedOptions::default(),
            tmpdir: None,
            remote: None,
            slurm: None,
            transfer: None,
            shellquote: None,
        }
    }
}

/// Shells that read the POSIX shell language, which troop's quoting of values is written for.
const POSIX_SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "ksh", "ksh93", "mksh", "lksh", "pdksh", "oksh", "zsh", "yash",
    "posh",
];

/// The shell that runs commands, chosen as GNU parallel chooses it: `$PARALLEL_SHELL`, else the
/// user's `$SHELL`, so that functions exported with bash's `export -f` are found. A shell of
/// another language (csh, tcsh, fish, …), whose quoting differs, is passed over, as is a value
/// that is not an executable file; `/bin/sh` is the last resort. `var` reads the environment.
pub fn user_shell(var: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> String {
    ["PARALLEL_SHELL", "SHELL"]
        .into_iter()
        .filter_map(var)
        .filter_map(|value| value.into_string().ok())
        .find(|shell| is_posix_shell(shell) && is_executable(std::path::Path::new(shell)))
        .unwrap_or_else(|| "/bin/sh".into())
}

/// Whether `shell` is an absolute path to a shell of the POSIX family, judged by its name.
fn is_posix_shell(shell: &str) -> bool {
    let path = std::path::Path::new(shell);
    path.is_absolute()
        && path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| POSIX_SHELLS.contains(&name))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A directory holding an executable file for each name, and one unexecutable `ksh`.
    fn shells(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in names {
            let path = dir.path().join(name);
            std::fs::write(&path, "").expect("write");
            let mode = if *name == "ksh" { 0o644 } else { 0o755 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        dir
    }

    fn shell_with(parallel_shell: Option<&str>, shell: Option<&str>) -> String {
        user_shell(&|name| match name {
            "PARALLEL_SHELL" => parallel_shell.map(OsString::from),
            "SHELL" => shell.map(OsString::from),
            _ => None,
        })
    }

    #[test]
    fn the_users_shell_runs_commands() {
        let dir = shells(&["bash", "dash"]);
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(shell_with(None, Some(&at("bash"))), at("bash"));
        assert_eq!(shell_with(Some(&at("dash")), Some(&at("bash"))), at("dash"));
        assert_eq!(shell_with(None, None), "/bin/sh");
        assert_eq!(shell_with(None, Some("")), "/bin/sh");
    }

    #[test]
    fn shells_of_other_languages_and_missing_ones_are_passed_over() {
        let dir = shells(&["bash", "csh", "fish", "tcsh", "ksh"]);
        let at = |name: &str| dir.path().join(name).display().to_string();
        assert_eq!(shell_with(None, Some(&at("csh"))), "/bin/sh");
        assert_eq!(shell_with(None, Some(&at("fish"))), "/bin/sh");
        assert_eq!(shell_with(None, Some("bash")), "/bin/sh");
        assert_eq!(shell_with(None, Some(&at("zsh"))), "/bin/sh", "missing");
        assert_eq!(
            shell_with(None, Some(&at("ksh"))),
            "/bin/sh",
            "not executable"
        );
        assert_eq!(shell_with(Some(&at("tcsh")), Some(&at("bash"))), at("bash"));
    }
}
