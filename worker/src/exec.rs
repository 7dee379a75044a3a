//! Running one command: its own process group, captured output, exit status, signal and usage.
//!
//! A command is started with `posix_spawn` (through `std::process`, which uses it whenever it
//! can) as the leader of a new process group, so that signals and clean-up reach every process it
//! starts. Its stdout and stderr are pipes read with `poll(2)` together with a pidfd, so the end
//! of the command is seen even when a background grandchild keeps a pipe open. The exit status
//! and resource use come from `wait4(2)`.

use std::ffi::OsStr;
use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::AtomicI32;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::protocol::{Captured, Job, Outcome, Stream, Usage, WorkerConfig};

/// The process group of the command a worker process is running now (0 when none), so that the
/// worker's exit path can kill it. Thread workers do not use it.
pub static CURRENT_PGID: AtomicI32 = AtomicI32::new(0);

/// The write end of the pipe to the run's reaper, in the in-process modes (see troop's
/// `pool::reaper`): the process groups of this process's commands are written to it.
static REAPER: std::sync::RwLock<Option<OwnedFd>> = std::sync::RwLock::new(None);

/// Raised when an in-process run kills everything at once: a command that starts from then on
/// is killed as soon as it exists.
static ABANDONED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets (or with `None`, takes back) the pipe to the run's reaper; returns the one it replaces.
/// A new pipe begins a new run, whose commands are not abandoned.
pub fn set_reaper(pipe: Option<OwnedFd>) -> Option<OwnedFd> {
    if pipe.is_some() {
        ABANDONED.store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let mut slot = REAPER.write().unwrap_or_else(|p| p.into_inner());
    std::mem::replace(&mut *slot, pipe)
}

/// Kills, from now until the next run, every command of this process as soon as it starts: for
/// an in-process run that stops at once, whose workers may be in the middle of starting one.
pub fn abandon_commands() {
    ABANDONED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Tells the run's reaper, if there is one, to kill process group `pgid` should troop die: at
/// once after a command starts, so that no time passes with the group unknown. A command that
/// starts after [`abandon_commands`] is killed here.
pub fn reaper_watch(pgid: i32) {
    tell_reaper(pgid);
    if ABANDONED.load(std::sync::atomic::Ordering::SeqCst) {
        // SAFETY: killpg has no memory effects.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

/// Tells the run's reaper that a process of group `pgid` was reaped: the command leading it, or
/// the last leftover of a finished task. A group that is empty now is forgotten, since its number
/// may come to name another group. One that lives on (background processes of a finished task)
/// stays watched: its number cannot be reused meanwhile, since those processes come to troop, a
/// child subreaper, and the last of them to end is reaped by troop, which then calls this.
pub fn reaper_forget(pgid: i32) {
    // SAFETY: killpg with signal 0 only checks that the group exists.
    if unsafe { libc::killpg(pgid, 0) } != 0 {
        tell_reaper(-pgid);
    }
}

/// Tells the run's reaper that the run ended cleanly: nothing is left for it to kill.
pub fn reaper_done() {
    tell_reaper(0);
}

fn tell_reaper(record: i32) {
    let slot = REAPER.read().unwrap_or_else(|p| p.into_inner());
    if let Some(fd) = slot.as_ref() {
        // One record is far below PIPE_BUF: writes from several threads never interleave.
        while nix::unistd::write(fd, &record.to_ne_bytes()) == Err(nix::errno::Errno::EINTR) {}
    }
}

/// Tunes the C allocator of this process for moving large argument vectors and outputs
/// through memory, once: the heap grows in steps of [`HEAP_STEP`], and freed memory (up to
/// [`HEAP_KEPT`]) is kept for the next command instead of being handed back to the kernel and
/// faulted in again page by page. Allocations below [`HEAP_MMAP_OVER`] (a command's argument
/// vector, a spill-sized output) come from the heap, so they reuse it. Memory in use is the
/// same; only what is kept after a peak changes. A no-op where the C library is not glibc.
/// A worker process calls it when it prepares its first command; troop's own command line
/// calls it when a run starts.
pub fn tune_allocator() {
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters; it is safe to call at any time.
        unsafe {
            libc::mallopt(libc::M_TOP_PAD, HEAP_STEP);
            libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_KEPT);
            libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_MMAP_OVER);
        }
    });
}

/// How much the heap grows by at least (see [`tune_allocator`]).
pub const HEAP_STEP: i32 = 16 << 20;
/// Free memory at the top of the heap kept rather than returned.
pub const HEAP_KEPT: i32 = 64 << 20;
/// Allocations this large or larger get their own mapping (glibc's highest default).
pub const HEAP_MMAP_OVER: i32 = 32 << 20;

/// The spill directory of this worker's run, once configured: removed by a worker whose
/// supervisor died, so a crash leaves no output files behind.
pub static SPILL_DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// What a finished command left behind.
#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub stdout: Captured,
    pub stderr: Captured,
    pub usage: Usage,
}

/// Events a running command produces before it finishes.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The command was spawned as the leader of this process group (at once, for local
    /// clean-up).
    Spawned { pgid: i32 },
    /// The command is still running `announce_after_ms` after its start, or is about to stream
    /// output: time to tell the supervisor its process group. Most short commands end before
    /// this, which saves a message and two wake-ups of the supervisor per command.
    Started { pgid: i32 },
    /// Complete lines (line-buffered mode only).
    Lines { stream: Stream, bytes: &'a [u8] },
}

/// Runs `job` (which must be `Exec` or `Shell`) to completion, or until `timeout` runs out and
/// the configured termination sequence ends it.
pub fn run(
    id: u64,
    job: &Job,
    config: &WorkerConfig,
    timeout: Option<Duration>,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Finished {
    run_with_input(id, job, config, timeout, None, on_progress)
}

/// [`run`], with `input` for the command to read (see [`crate::task_input`]).
pub fn run_with_input(
    id: u64,
    job: &Job,
    config: &WorkerConfig,
    timeout: Option<Duration>,
    input: Option<&crate::protocol::TaskInput>,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> Finished {
    let start_unix_us = crate::runtime::unix_now_us();
    let started = Instant::now();
    let mut command = prepare(job, config);
    let spawned = crate::task_input::attach(&mut command, input)
        .and_then(|pending| Ok((command.spawn()?, pending)));
    let (mut child, pending) = match spawned {
        Ok(spawned) => spawned,
        Err(err) => return spawn_failed(job, config, &err, start_unix_us, started),
    };
    // The reaper learns of the group before anything else is done (see `prepare`).
    let pgid = child.id() as i32;
    reaper_watch(pgid);
    let _input = pending.start(&mut child);
    on_progress(Progress::Spawned { pgid });
    let spill = Spill::of(config, id);
    let deadline = timeout.map(|t| started + t);
    let (stdout, stderr, (outcome, mut usage)) =
        collect(child, config, spill, deadline, on_progress);
    reaper_forget(pgid);
    usage.start_unix_us = start_unix_us;
    usage.wall_us = started.elapsed().as_micros() as u64;
    Finished {
        outcome,
        stdout,
        stderr,
        usage,
    }
}

/// The command for `job` (which must be `Exec` or `Shell`): its own process group, no stdin
/// (see [`crate::task_input::attach`] for a task that reads input),
/// piped output, and the configured memory limit and niceness.
pub fn prepare(job: &Job, config: &WorkerConfig) -> Command {
    // A worker process owns its allocator; a process that runs commands from its own threads
    // (it has a reaper) may be a library's host, whose allocator is left as it is.
    if REAPER.read().unwrap_or_else(|p| p.into_inner()).is_none() {
        tune_allocator();
    }
    let mut command = match job {
        Job::Exec(argv) if !argv.is_empty() && !runs_directly(&argv[0]) => {
            // `$shell -c '"$@"' $shell ARGV…` runs ARGV as one simple command, so a function
            // the shell imported from its environment (bash's `export -f`) is found.
            let mut c = Command::new(&config.shell);
            c.arg("-c").arg("\"$@\"").arg(&config.shell);
            c.args(argv.iter().map(|a| OsStr::from_bytes(a)));
            c
        }
        Job::Exec(argv) => {
            let mut c = Command::new(OsStr::from_bytes(argv.first().map_or(&[][..], |a| a)));
            c.args(argv.iter().skip(1).map(|a| OsStr::from_bytes(a)));
            c
        }
        Job::Shell(script) => {
            let mut c = Command::new(&config.shell);
            c.arg("-c").arg(OsStr::from_bytes(script));
            c
        }
        Job::Kernel(_) | Job::Call { .. } => {
            unreachable!("kernels and calls do not run through exec")
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // A `pre_exec` closure makes std fork the whole process instead of calling `posix_spawn`
    // (vfork-like: no page tables copied). The in-process modes still need one for
    // PR_SET_PDEATHSIG: their reaper learns a command's group only once `spawn` returns, and
    // the command runs from its exec on, so a troop killed in between (a window of a
    // scheduling delay on a loaded machine) would leave it running; the death signal, set
    // before the exec, covers that window.
    if config.memory_limit.is_some() || config.nice.is_some() || config.die_with_parent {
        let (limit, nice, die) = (config.memory_limit, config.nice, config.die_with_parent);
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (prctl, setrlimit, setpriority) on plain values.
        unsafe {
            command.pre_exec(move || {
                if die {
                    libc::prctl(
                        libc::PR_SET_PDEATHSIG,
                        libc::SIGKILL as libc::c_ulong,
                        0,
                        0,
                        0,
                    );
                }
                if let Some(bytes) = limit {
                    let rl = libc::rlimit {
                        rlim_cur: bytes,
                        rlim_max: bytes,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &rl) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                if let Some(n) = nice {
                    libc::setpriority(libc::PRIO_PROCESS, 0, n);
                }
                Ok(())
            });
        }
    }
    command
}

/// Whether `program` can be executed without a shell: it names a path (holds a `/`), or a file
/// in a directory of `PATH` and no function bash exported (`export -f`) has its name. Any other
/// name goes to the shell, as GNU parallel sends every command: the shell may know it as a
/// function or builtin, and reports it when it does not.
fn runs_directly(program: &[u8]) -> bool {
    if program.contains(&b'/') {
        return true;
    }
    if program.is_empty() || is_exported_function(program) {
        return false;
    }
    let Some(path) = std::env::var_os("PATH") else {
        return true;
    };
    path.as_bytes().split(|&b| b == b':').any(|dir| {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut candidate = std::path::PathBuf::from(OsStr::from_bytes(dir));
        candidate.push(OsStr::from_bytes(program));
        std::fs::metadata(&candidate).is_ok_and(|m| {
            m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        })
    })
}

/// Whether the environment holds a bash function of this name, exported with `export -f`
/// (`BASH_FUNC_name%%`, or `BASH_FUNC_name()` as some older patched bashes write it).
fn is_exported_function(name: &[u8]) -> bool {
    [&b"%%"[..], b"()"].iter().any(|suffix| {
        let var = [&b"BASH_FUNC_"[..], name, suffix].concat();
        std::env::var_os(OsStr::from_bytes(&var)).is_some()
    })
}

/// Where a task's output goes once it outgrows memory.
#[derive(Debug, Clone)]
pub(crate) struct Spill {
    dir: String,
    threshold: u64,
    id: u64,
}

impl Spill {
    /// Task `id`'s spill settings under `config`, if it spills at all.
    pub(crate) fn of(config: &WorkerConfig, id: u64) -> Option<Spill> {
        config.spill_dir.as_ref().map(|dir| Spill {
            dir: dir.clone(),
            threshold: config.spill_threshold,
            id,
        })
    }
}

/// What a command that could not start leaves behind: 127 when not found, 126 otherwise.
pub fn spawn_failed(
    job: &Job,
    config: &WorkerConfig,
    err: &io::Error,
    start_unix_us: u64,
    started: Instant,
) -> Finished {
    let program = match job {
        Job::Exec(argv) => String::from_utf8_lossy(argv.first().map_or(&[][..], |a| a)),
        _ => std::borrow::Cow::Borrowed(config.shell.as_str()),
    };
    let holds_nul = match job {
        Job::Exec(argv) => argv.iter().any(|a| a.contains(&0)),
        Job::Shell(script) => script.contains(&0),
        Job::Kernel(_) | Job::Call { .. } => false,
    };
    let (code, message) = match err.kind() {
        _ if holds_nul => (
            126,
            format!(
                "{program}: cannot run: the command holds a NUL byte, which no argument can carry"
            ),
        ),
        ErrorKind::NotFound => (127, format!("{program}: command not found")),
        ErrorKind::PermissionDenied => (126, format!("{program}: permission denied")),
        _ => (126, format!("{program}: cannot run: {err}")),
    };
    Finished {
        stderr: Captured::Bytes(format!("troop: {message}\n").into_bytes()),
        outcome: Outcome::SpawnFailed { code, message },
        stdout: Captured::EMPTY,
        usage: Usage {
            start_unix_us,
            wall_us: started.elapsed().as_micros() as u64,
            ..Usage::default()
        },
    }
}

/// How much room a read from a pipe asks for.
const READ_CHUNK: usize = 64 * 1024;

/// At most this much is read from one pipe in a row, so the other pipe, the clock and the
/// command's end are looked at too while a command writes without pause.
pub(crate) const READ_BURST: usize = 1 << 20;

/// One captured stream. Output is kept in memory up to the spill threshold; past it, it moves to
/// a file and later output goes there. In line-buffered mode complete lines are handed on as
/// they come and dropped at once, so memory holds at most one partial line; a partial line that
/// outgrows the threshold starts a spill file, and from then on the rest of the output goes to
/// that file (and is printed when the task ends), which keeps it in order.
///
/// Output that cannot be kept (the spill file cannot be created or written, say on a full disk)
/// is never dropped quietly: the capture records what went wrong, keeps what it already holds,
/// and throws away only what comes after, while the caller stops the command and fails the task.
pub(crate) struct Capture {
    buf: Vec<u8>,
    stream: Stream,
    line_buffer: bool,
    spill: Option<Spill>,
    file: Option<SpillFile>,
    lost: Option<Lost>,
}

/// A spill file being written.
struct SpillFile {
    file: std::fs::File,
    path: String,
    len: u64,
}

/// Why a capture stopped keeping output, and how much of `buf` it still keeps.
struct Lost {
    message: String,
    keep: usize,
}

impl Capture {
    pub(crate) fn new(stream: Stream, line_buffer: bool, spill: Option<Spill>) -> Self {
        Capture {
            buf: Vec::new(),
            stream,
            line_buffer,
            spill,
            file: None,
            lost: None,
        }
    }

    /// Reads once from `fd` (non-blocking) into the buffer, without clearing memory first.
    pub(crate) fn read_from(&mut self, fd: BorrowedFd<'_>) -> nix::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        let spare = self.buf.spare_capacity_mut();
        // SAFETY: read(2) writes at most `spare.len()` bytes into `spare`, which this Vec owns.
        let n = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        if n < 0 {
            return Err(nix::errno::Errno::last());
        }
        let n = n as usize;
        // SAFETY: the first `n` bytes past the old length were just written by read(2).
        unsafe { self.buf.set_len(self.buf.len() + n) };
        Ok(n)
    }

    /// Deals with what was just read: streams complete lines, spills past the threshold, and
    /// throws new output away once output was lost.
    pub(crate) fn settle(&mut self, emit: &mut dyn FnMut(Progress<'_>)) {
        if let Some(lost) = &self.lost {
            self.buf.truncate(lost.keep);
            return;
        }
        if self.line_buffer && self.file.is_none() {
            self.stream_lines(emit);
        }
        let Some(spill) = &self.spill else { return };
        if self.file.is_some() || self.buf.len() as u64 >= spill.threshold {
            self.spill_buf();
        }
    }

    /// Whether output could not be kept.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_some()
    }

    /// Hands complete lines to `emit` and forgets them.
    fn stream_lines(&mut self, emit: &mut dyn FnMut(Progress<'_>)) {
        if let Some(last_newline) = self.buf.iter().rposition(|&b| b == b'\n') {
            let end = last_newline + 1;
            emit(Progress::Lines {
                stream: self.stream,
                bytes: &self.buf[..end],
            });
            self.buf.drain(..end);
        }
    }

    /// Moves the buffer to the spill file, creating it first if need be.
    fn spill_buf(&mut self) {
        if self.file.is_none() {
            let Some(spill) = &self.spill else { return };
            let name = match self.stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            let path = format!("{}/{}-{}.{name}", spill.dir, std::process::id(), spill.id);
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
            match opened {
                Ok(file) => self.file = Some(SpillFile { file, path, len: 0 }),
                Err(e) => {
                    // What is in memory is kept; what comes after is not.
                    let kept = self.buf.len();
                    return self.lose(kept, kept as u64, format!("cannot create {path}: {e}"));
                }
            }
        }
        self.spill_buf_into_file();
    }

    fn spill_buf_into_file(&mut self) {
        use std::io::Write;
        let Some(f) = &mut self.file else { return };
        match f.file.write_all(&self.buf) {
            Ok(()) => {
                f.len += self.buf.len() as u64;
                self.buf.clear();
            }
            Err(e) => {
                // The file keeps what reached it; the rest of the buffer is gone.
                f.len = f.file.metadata().map_or(f.len, |m| m.len());
                let (kept, why) = (f.len, format!("cannot write {}: {e}", f.path));
                self.lose(0, kept, why);
            }
        }
    }

    fn lose(&mut self, keep: usize, kept: u64, why: String) {
        let stream = match self.stream {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        };
        self.buf.truncate(keep);
        self.lost = Some(Lost {
            message: format!("{stream} cut off after {kept} bytes: {why}"),
            keep,
        });
    }

    /// What was captured and not streamed, and why output was lost, if it was.
    pub(crate) fn finish(
        mut self,
        emit: &mut dyn FnMut(Progress<'_>),
    ) -> (Captured, Option<String>) {
        if self.lost.is_none() {
            if self.line_buffer && self.file.is_none() {
                self.stream_lines(emit);
            }
            if self.file.is_some() && !self.buf.is_empty() {
                self.spill_buf_into_file();
            }
        }
        let lost = self.lost.map(|l| l.message);
        let captured = match self.file {
            Some(f) => Captured::File {
                path: f.path,
                len: f.len,
            },
            None => Captured::Bytes(self.buf),
        };
        (captured, lost)
    }
}

/// A pipe being read into a capture; `None` once it reached its end.
struct Pipe {
    fd: Option<OwnedFd>,
    capture: Capture,
}

impl Pipe {
    fn new(fd: Option<OwnedFd>, capture: Capture) -> Self {
        if let Some(fd) = &fd {
            set_nonblocking(fd);
        }
        Pipe { fd, capture }
    }

    /// Reads what is available (up to a burst); closes the pipe at end of file.
    fn drain(&mut self, emit: &mut dyn FnMut(Progress<'_>)) {
        use nix::errno::Errno;
        let Some(fd) = self.fd.as_ref() else { return };
        let mut read = 0;
        let closed = loop {
            match self.capture.read_from(fd.as_fd()) {
                Ok(0) => break true,
                Ok(n) => {
                    self.capture.settle(emit);
                    read += n;
                    if read >= READ_BURST {
                        break false;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break false,
                Err(_) => break true,
            }
        };
        if closed {
            self.fd = None;
        }
    }
}

pub(crate) fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// A descriptor that becomes readable when process `pid` exits (None on kernels without pidfd).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        None
    } else {
        // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }
}

/// How a command ended, given what its captures say: output that could not be kept fails the
/// task whatever its status; otherwise a timeout does.
pub(crate) fn final_outcome(
    status: Outcome,
    timed_out: bool,
    lost: [Option<String>; 2],
) -> Outcome {
    let signal = match status {
        Outcome::Signaled(sig) => Some(sig),
        _ => None,
    };
    let lost: Vec<String> = lost.into_iter().flatten().collect();
    if !lost.is_empty() {
        Outcome::OutputLost {
            signal,
            message: lost.join("; "),
        }
    } else if timed_out {
        Outcome::TimedOut { signal }
    } else {
        status
    }
}

fn collect(
    mut child: Child,
    config: &WorkerConfig,
    spill: Option<Spill>,
    deadline: Option<Instant>,
    on_progress: &mut dyn FnMut(Progress<'_>),
) -> (Captured, Captured, (Outcome, Usage)) {
    let pid = child.id() as i32;
    let line_buffer = config.line_buffer;
    let mut out = Pipe::new(
        child.stdout.take().map(ChildStdout::into),
        Capture::new(Stream::Stdout, line_buffer, spill.clone()),
    );
    let mut err = Pipe::new(
        child.stderr.take().map(ChildStderr::into),
        Capture::new(Stream::Stderr, line_buffer, spill),
    );
    let pidfd = pidfd_open(pid);
    // The termination sequence: the next step to take and when.
    let mut next_step = deadline;
    let mut steps = config.term_seq.iter();
    // Why the sequence runs: the deadline passed, or output could not be kept.
    let mut timed_out = false;
    let mut stopping = false;
    let mut announce_at = Some(Instant::now() + Duration::from_millis(config.announce_after_ms));
    while out.fd.is_some() || err.fd.is_some() {
        let mut fds = Vec::with_capacity(3);
        for p in [&out, &err] {
            if let Some(fd) = &p.fd {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        let wake_at = match (next_step, announce_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = match wake_at {
            None => PollTimeout::NONE,
            Some(at) => {
                // Rounded up: rounded down, the last millisecond before `at` would be spent
                // polling with a zero timeout again and again.
                let ms = at
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .min(60_000) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, wait) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let pid_ready = pidfd.is_some()
            && fds
                .last()
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        let now = Instant::now();
        if announce_at.is_some_and(|at| now >= at) {
            announce_at = None;
            on_progress(Progress::Started { pgid: pid });
        }
        if next_step.is_some_and(|at| now >= at) {
            // Overran, or lost output: take the next step of the termination sequence (also
            // while the command is still writing).
            if !stopping {
                timed_out = true;
            }
            stopping = true;
            next_step = match steps.next() {
                Some(step) => {
                    // SAFETY: killpg has no memory effects.
                    unsafe { libc::killpg(pid, step.signal) };
                    Some(now + Duration::from_millis(step.wait_ms))
                }
                None => None,
            };
        }
        if line_buffer && announce_at.take().is_some() {
            on_progress(Progress::Started { pgid: pid });
        }
        out.drain(on_progress);
        err.drain(on_progress);
        if !stopping && (out.capture.is_lost() || err.capture.is_lost()) {
            // Output that cannot be kept: stop the command now; the task fails.
            stopping = true;
            next_step = Some(Instant::now());
        }
        if pid_ready {
            // The command is gone. Whatever it wrote is in the pipes now; a background process
            // that still holds them open does not keep this task running.
            out.drain(on_progress);
            err.drain(on_progress);
            break;
        }
    }
    let (status, usage) = wait4(pid);
    if stopping {
        // Nothing the task started may outlive its timeout or its failure.
        // SAFETY: killpg has no memory effects.
        unsafe { libc::killpg(pid, libc::SIGKILL) };
    }
    let (stdout, out_lost) = out.capture.finish(on_progress);
    let (stderr, err_lost) = err.capture.finish(on_progress);
    let outcome = final_outcome(status, timed_out, [out_lost, err_lost]);
    (stdout, stderr, (outcome, usage))
}

/// Reaps `pid` and returns how it ended and what it used.
pub(crate) fn wait4(pid: i32) -> (Outcome, Usage) {
    let mut status = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid for writes for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() == ErrorKind::Interrupted {
            continue;
        }
        return (Outcome::Exited(255), Usage::default());
    }
    let outcome = if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        Outcome::Exited(libc::WEXITSTATUS(status))
    };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    (
        outcome,
        Usage {
            user_us: us(ru.ru_utime),
            sys_us: us(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss as u64,
            ..Usage::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(b: &[u8]) -> Captured {
        Captured::Bytes(b.to_vec())
    }

    fn run_with(script: &str, config: &WorkerConfig, timeout: Option<Duration>) -> (Finished, i32) {
        let mut pgid = 0;
        let f = run(1, &Job::Shell(script.into()), config, timeout, &mut |p| {
            if let Progress::Spawned { pgid: g } = p {
                pgid = g
            }
        });
        (f, pgid)
    }

    fn shell(script: &str) -> Finished {
        run_with(script, &WorkerConfig::default(), None).0
    }

    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z'),
            Err(_) => false,
        }
    }

    #[test]
    fn captures_both_streams_and_status() {
        let f = shell("echo out; echo err >&2; exit 3");
        assert_eq!(f.stdout, bytes(b"out\n"));
        assert_eq!(f.stderr, bytes(b"err\n"));
        assert_eq!(f.outcome, Outcome::Exited(3));
    }

    #[test]
    fn reports_the_killing_signal() {
        assert_eq!(shell("kill -9 $$").outcome, Outcome::Signaled(9));
    }

    #[test]
    fn a_missing_program_is_127() {
        let f = run(
            1,
            &Job::Exec(vec!["/nonexistent/troop-test".into()]),
            &WorkerConfig::default(),
            None,
            &mut |_| {},
        );
        assert_eq!(f.outcome.exit_value(), 127);
        let Captured::Bytes(err) = &f.stderr else {
            panic!("spilled")
        };
        assert!(String::from_utf8_lossy(err).contains("command not found"));
    }

    #[test]
    fn runs_in_its_own_process_group() {
        let (f, pgid) = run_with("ps -o pgid= -p $$", &WorkerConfig::default(), None);
        let Captured::Bytes(out) = &f.stdout else {
            panic!("spilled")
        };
        let reported: i32 = String::from_utf8_lossy(out).trim().parse().unwrap();
        assert_eq!(reported, pgid);
        assert_ne!(pgid, nix::unistd::getpgrp().as_raw());
    }

    #[test]
    fn a_background_grandchild_does_not_hold_the_task() {
        let t = Instant::now();
        let (f, pgid) = run_with("sleep 5 & echo started", &WorkerConfig::default(), None);
        assert_eq!(f.stdout, bytes(b"started\n"));
        assert!(t.elapsed().as_secs() < 4, "waited for the grandchild");
        // The grandchild is still in the task's group: clean it up through the group.
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::SIGKILL)
            .unwrap();
    }

    #[test]
    fn a_timeout_runs_the_term_sequence_and_kills_grandchildren() {
        let (f, pgid) = run_with(
            "sleep 100 & echo $! ; sleep 100",
            &WorkerConfig::default(),
            Some(Duration::from_millis(300)),
        );
        assert_eq!(
            f.outcome,
            Outcome::TimedOut {
                signal: Some(libc::SIGTERM)
            }
        );
        let Captured::Bytes(out) = &f.stdout else {
            panic!("spilled")
        };
        let grandchild: i32 = String::from_utf8_lossy(out).trim().parse().unwrap();
        let t = Instant::now();
        while alive(grandchild) && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !alive(grandchild),
            "the background sleep survived the timeout"
        );
        assert!(!alive(pgid));
    }

    #[test]
    fn a_task_that_ignores_term_is_killed() {
        let config = WorkerConfig {
            term_seq: vec![
                crate::protocol::TermStep {
                    signal: libc::SIGTERM,
                    wait_ms: 50,
                },
                crate::protocol::TermStep {
                    signal: libc::SIGKILL,
                    wait_ms: 25,
                },
            ],
            ..WorkerConfig::default()
        };
        let (f, _) = run_with(
            "trap '' TERM; sleep 100",
            &config,
            Some(Duration::from_millis(100)),
        );
        assert_eq!(
            f.outcome,
            Outcome::TimedOut {
                signal: Some(libc::SIGKILL)
            }
        );
    }

    #[test]
    fn big_output_spills_to_a_file_and_small_output_does_not() {
        let dir = std::env::temp_dir().join(format!("troop-exec-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = WorkerConfig {
            spill_dir: Some(dir.to_string_lossy().into_owned()),
            spill_threshold: 64 * 1024,
            ..WorkerConfig::default()
        };
        let (f, _) = run_with("head -c 1000000 /dev/zero; echo small >&2", &config, None);
        let Captured::File { path, len } = &f.stdout else {
            panic!("not spilled: {:?}", f.stdout.len())
        };
        assert_eq!(*len, 1_000_000);
        assert_eq!(std::fs::metadata(path).unwrap().len(), 1_000_000);
        assert_eq!(f.stderr, bytes(b"small\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_spill_file_that_cannot_be_made_fails_the_task_and_keeps_what_it_has() {
        let config = WorkerConfig {
            spill_dir: Some("/nonexistent/troop-spill".into()),
            spill_threshold: 64 * 1024,
            ..WorkerConfig::default()
        };
        let (f, _) = run_with("head -c 10000000 /dev/zero", &config, None);
        let Outcome::OutputLost { message, .. } = &f.outcome else {
            panic!("output was lost quietly: {:?}", f.outcome)
        };
        assert!(
            message.contains("stdout") && message.contains("/nonexistent/troop-spill/"),
            "{message}"
        );
        let kept = f.stdout.len();
        assert!(
            (64 * 1024..10_000_000).contains(&kept),
            "kept {kept} bytes in memory"
        );
    }

    #[test]
    fn line_buffer_forgets_lines_once_streamed() {
        let mut capture = Capture::new(Stream::Stdout, true, None);
        let mut streamed = 0;
        let chunk = b"0123456789abcdef\n".repeat(4096);
        for _ in 0..1000 {
            capture.buf.extend_from_slice(&chunk);
            capture.buf.extend_from_slice(b"partial");
            capture.settle(&mut |p| {
                if let Progress::Lines { bytes, .. } = p {
                    streamed += bytes.len()
                }
            });
            assert_eq!(capture.buf, b"partial");
            capture.buf.clear();
        }
        assert_eq!(streamed, 1000 * chunk.len());
        assert!(
            capture.buf.capacity() < 4 * chunk.len(),
            "the buffer grew to {}",
            capture.buf.capacity()
        );
    }

    #[test]
    fn a_line_longer_than_the_threshold_spills_and_later_lines_follow_it() {
        let dir = std::env::temp_dir().join(format!("troop-exec-lb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = WorkerConfig {
            line_buffer: true,
            spill_dir: Some(dir.to_string_lossy().into_owned()),
            spill_threshold: 64 * 1024,
            ..WorkerConfig::default()
        };
        let mut lines = Vec::new();
        let f = run(
            1,
            // The line stays open a moment after it passes the threshold: were its end read in the
            // same read as its start, it would be a complete line, streamed whole.
            &Job::Shell("echo a; head -c 100000 /dev/zero; sleep 0.3; printf '\\nb\\n'".into()),
            &config,
            None,
            &mut |p| {
                if let Progress::Lines { bytes, .. } = p {
                    lines.extend_from_slice(bytes)
                }
            },
        );
        let Captured::File { path, len } = &f.stdout else {
            panic!(
                "the long line was not spilled: {:?} {:?} {:?}",
                f.stdout.len(),
                f.outcome,
                lines.len()
            )
        };
        let mut all = lines.clone();
        all.extend(std::fs::read(path).unwrap());
        let mut expected = b"a\n".to_vec();
        expected.extend([0u8; 100_000]);
        expected.extend(b"\nb\n");
        assert_eq!(*len as usize + lines.len(), expected.len());
        assert!(all == expected, "the output came out of order");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_memory_limit_applies_to_the_command() {
        let config = WorkerConfig {
            memory_limit: Some(64 << 20),
            ..WorkerConfig::default()
        };
        let f = run_with("ulimit -v", &config, None).0;
        assert_eq!(f.stdout, bytes(b"65536\n"));
    }

    #[test]
    fn line_buffer_streams_whole_lines_only() {
        let mut lines = Vec::new();
        let config = WorkerConfig {
            line_buffer: true,
            ..WorkerConfig::default()
        };
        let f = run(
            1,
            &Job::Shell("printf 'a\\nb\\nc'".into()),
            &config,
            None,
            &mut |p| {
                if let Progress::Lines { bytes, .. } = p {
                    lines.push(bytes.to_vec())
                }
            },
        );
        assert_eq!(lines.concat(), b"a\nb\n");
        assert_eq!(f.stdout, bytes(b"c"));
    }
}
