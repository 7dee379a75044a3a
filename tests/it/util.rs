//! Helpers shared by the integration tests: running `troop` (and GNU parallel, when it is
//! installed), waiting for a condition, and reading processes from /proc.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The `troop` binary under test.
pub const TROOP: &str = env!("CARGO_BIN_EXE_troop");

/// No single command of the suite may run longer than this (a hang fails the test instead of the
/// whole suite).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command left behind.
#[derive(Debug, Clone)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    /// The exit code; `None` when a signal ended the command.
    pub code: Option<i32>,
}

impl Ran {
    /// The stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Panics with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the command succeeded with exactly this stdout.
    #[track_caller]
    pub fn assert_ok_with(&self, expected: &str) -> &Self {
        self.assert_code(0);
        assert_eq!(
            self.stdout, expected,
            "stdout differs (stderr: {})",
            self.stderr
        );
        self
    }
}

impl From<std::process::Output> for Ran {
    fn from(out: std::process::Output) -> Ran {
        Ran {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        }
    }
}

pub fn run_command(command: Command, stdin: &str) -> Ran {
    run_command_within(command, stdin, COMMAND_TIMEOUT)
}

fn run_command_within(command: Command, stdin: &str, timeout: Duration) -> Ran {
    assert_cmd::Command::from_std(command)
        .write_stdin(stdin.as_bytes().to_vec())
        .timeout(timeout)
        .output()
        .expect("run the command")
        .into()
}

/// Runs `troop ARGS…` in `dir` with no input, allowing it `timeout` instead of
/// [`COMMAND_TIMEOUT`] (for `troop demo`, which measures again what other load disturbed).
pub fn troop_within(dir: Option<&Path>, args: &[&str], timeout: Duration) -> Ran {
    let mut command = Command::new(TROOP);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    run_command_within(command, "", timeout)
}

/// Runs `troop ARGS…` in `dir` (or the current directory) with `stdin` as its input.
pub fn troop_in(dir: Option<&Path>, args: &[&str], stdin: &str) -> Ran {
    let mut command = Command::new(TROOP);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    run_command(command, stdin)
}

/// Runs `troop ARGS…` with `stdin` as its input.
pub fn troop(args: &[&str], stdin: &str) -> Ran {
    troop_in(None, args, stdin)
}

/// Whether GNU parallel is on PATH (and is GNU's, not moreutils').
pub fn have_gnu_parallel() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        Command::new("parallel")
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("GNU parallel"))
            .unwrap_or(false)
    })
}

/// Whether the suite runs under CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips part of a test: under CI this fails the test; elsewhere it prints a line that
/// `cargo test` shows, saying which test skipped `what` and `why`, and returns false.
///
/// The line goes straight to the process's stderr: libtest hides what `eprintln!` prints in a
/// passing test.
#[track_caller]
pub fn skip(what: &str, why: &str) -> bool {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if under_ci() {
        panic!("{test}: {why}, and under CI a test may not skip {what}");
    }
    let line = format!("SKIPPED in {test}: {what} ({why})\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

/// True when GNU parallel is installed; otherwise [`skip`]s `what`.
#[track_caller]
pub fn require_gnu_parallel(what: &str) -> bool {
    have_gnu_parallel() || skip(what, "GNU parallel is not installed")
}

/// True when the tests run as root; otherwise [`skip`]s `what`.
#[track_caller]
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root || skip(what, "it needs root")
}

/// True when `program` can be started (`program --version` runs); otherwise [`skip`]s `what`.
#[track_caller]
pub fn require_program(program: &str, what: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    found || skip(what, &format!("`{program}` is not installed"))
}

/// Runs `parallel --will-cite ARGS…` in `dir`. When GNU parallel is missing this fails the test
/// under CI, and elsewhere prints a visible skip line and returns `None`.
#[track_caller]
pub fn gnu_parallel_in(dir: Option<&Path>, args: &[&str], stdin: &str) -> Option<Ran> {
    if !require_gnu_parallel("the cross-check against GNU parallel") {
        return None;
    }
    let mut command = Command::new("parallel");
    command.arg("--will-cite").args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    Some(run_command(command, stdin))
}

/// Checks `troop run -k ARGS…` against `expected` and, when GNU parallel is installed, checks
/// that `parallel -k ARGS…` prints the same (so `expected` really is GNU parallel's behaviour).
#[track_caller]
pub fn check_like_parallel(dir: Option<&Path>, args: &[&str], stdin: &str, expected: &str) {
    let mut troop_args = vec!["run", "-k"];
    troop_args.extend_from_slice(args);
    let ours = troop_in(dir, &troop_args, stdin);
    assert_eq!(
        ours.code,
        Some(0),
        "troop {troop_args:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        ours.stdout,
        ours.stderr
    );
    assert_eq!(
        ours.stdout, expected,
        "troop {troop_args:?} (stderr: {})",
        ours.stderr
    );
    let mut gnu_args = vec!["-k"];
    gnu_args.extend_from_slice(args);
    if let Some(gnu) = gnu_parallel_in(dir, &gnu_args, stdin) {
        assert_eq!(
            gnu.stdout, expected,
            "GNU parallel {gnu_args:?} disagrees with the expected output (stderr: {})",
            gnu.stderr
        );
        assert_eq!(
            ours.stdout, gnu.stdout,
            "troop and GNU parallel differ for {args:?}"
        );
    }
}

/// Re-checks `condition` every few milliseconds until it holds (true) or `deadline` has passed
/// (false).
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temporary directory.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("troop-it-")
        .tempdir()
        .expect("temp dir")
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    File::create(&path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .expect("write a test file");
    path
}

/// One process as /proc/PID/stat shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub state: char,
    /// Start time in clock ticks since boot: with the pid, identifies the process even if the
    /// pid is reused.
    pub starttime: u64,
    pub comm: String,
}

/// Reads /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    Some(Proc {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        // Field 22 of stat; `fields` starts at field 3.
        starttime: fields.get(19)?.parse().ok()?,
        comm,
    })
}

/// Every process visible in /proc.
pub fn all_procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_stat)
        .collect()
}

/// The live children of `pid`.
pub fn children(pid: i32) -> Vec<Proc> {
    let mut kids: Vec<Proc> = all_procs()
        .into_iter()
        .filter(|p| p.ppid == pid && !matches!(p.state, 'Z' | 'X'))
        .collect();
    kids.sort_by_key(|p| p.pid);
    kids
}

/// The live descendants of `pid` (children, grandchildren, …).
pub fn descendants(pid: i32) -> Vec<Proc> {
    let procs = all_procs();
    let mut found: Vec<Proc> = Vec::new();
    let mut parents = BTreeSet::from([pid]);
    loop {
        let before = found.len();
        for p in &procs {
            if parents.contains(&p.ppid)
                && !parents.contains(&p.pid)
                && !matches!(p.state, 'Z' | 'X')
            {
                found.push(p.clone());
            }
        }
        if found.len() == before {
            break;
        }
        parents.extend(found.iter().map(|p| p.pid));
    }
    found.sort_by_key(|p| p.pid);
    found
}

/// Whether the process is gone: vanished, a zombie, or its pid now names another process.
pub fn is_gone(p: &Proc) -> bool {
    match proc_stat(p.pid) {
        None => true,
        Some(now) => now.starttime != p.starttime || matches!(now.state, 'Z' | 'X'),
    }
}

/// /proc/PID/comm without the newline.
pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end_matches('\n').to_string())
}

/// /proc/PID/cmdline with its NUL-separated words joined by spaces (empty words, such as the
/// padding of a rewritten title, dropped).
pub fn cmdline(pid: i32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    Some(words.join(" "))
}

/// Whether worker `pid` is busy with a task, judged from where its main thread waits
/// (/proc/PID/wchan): a worker waits for work in a socket read, so a main thread blocked anywhere
/// else (a sleep, a futex, a wait for its command) or running is busy. `None` when the kernel
/// does not say (wchan unreadable or "0").
pub fn worker_busy(pid: i32) -> Option<bool> {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
    let wchan = wchan.trim();
    let state = proc_stat(pid)?.state;
    if state == 'R' {
        return Some(true);
    }
    if wchan.is_empty() || wchan == "0" {
        return None;
    }
    let idle = ["skb", "unix_stream_read", "sock", "recv"];
    Some(!idle.iter().any(|w| wchan.contains(w)))
}

/// Sends SIGKILL to the process if it is still the one recorded.
pub fn kill9(p: &Proc) {
    if !is_gone(p) {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// Describes processes for a failure message.
pub fn describe(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| {
            let now = proc_stat(p.pid).map_or("gone".to_string(), |s| s.state.to_string());
            format!(
                "pid {} comm {:?} state {} cmdline {:?}",
                p.pid,
                p.comm,
                now,
                cmdline(p.pid).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `troop` running in the background, its output going to files. Dropping it kills it.
#[derive(Debug)]
pub struct Background {
    child: Child,
    dir: tempfile::TempDir,
    status: Option<ExitStatus>,
}

impl Background {
    /// Starts `troop ARGS…` with no input.
    pub fn start(args: &[&str]) -> Background {
        let mut command = Command::new(TROOP);
        command.args(args);
        Background::start_command(command)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits up to `deadline` for troop to exit; its status, or `None` if it is still running.
    pub fn wait_for(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let child = &mut self.child;
        let status = &mut self.status;
        wait_until(deadline, || {
            if status.is_none() {
                *status = child.try_wait().expect("try_wait");
            }
            status.is_some()
        });
        self.status
    }

    /// SIGKILLs troop and reaps it.
    pub fn kill9(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Take the whole tree down, so a failed test leaves nothing behind. (Only while troop is
        // unreaped: after that its pid may belong to someone else.)
        let tree = match self.child.try_wait() {
            Ok(None) => descendants(self.pid()),
            _ => Vec::new(),
        };
        self.kill9();
        for p in &tree {
            kill9(p);
        }
    }
}

// ---- Helpers for the fault-injection tests (faults, signals, job log, limits). ----

impl Background {
    /// Starts `command` (troop, or a wrapper that `exec`s it) with no input, its output going to
    /// files; it runs in a fresh directory unless the command names one, and with that directory
    /// as `$TMPDIR` unless the command sets one (so that whatever a killed troop leaves in
    /// `$TMPDIR` goes with the directory). Dropping the result kills it and its descendants.
    pub fn start_command(mut command: Command) -> Background {
        let dir = temp_dir();
        let out = File::create(dir.path().join("stdout")).expect("stdout file");
        let err = File::create(dir.path().join("stderr")).expect("stderr file");
        if command.get_current_dir().is_none() {
            command.current_dir(dir.path());
        }
        if !command.get_envs().any(|(k, _)| k == "TMPDIR") {
            command.env("TMPDIR", dir.path());
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start troop");
        Background {
            child,
            dir,
            status: None,
        }
    }

    /// Starts `troop ARGS…` in `cwd` (see [`Background::start_command`]).
    pub fn start_in(args: &[&str], cwd: &Path) -> Background {
        let mut command = Command::new(TROOP);
        command.args(args).current_dir(cwd);
        Background::start_command(command)
    }

    /// Starts `troop ARGS…` as the leader of a process group of its own, as a shell with job
    /// control starts a foreground job: [`Background::interrupt`] then reaches it as Ctrl-C does.
    pub fn start_in_group(args: &[&str], cwd: &Path) -> Background {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(TROOP);
        command.args(args).current_dir(cwd).process_group(0);
        Background::start_command(command)
    }

    /// Sends SIGINT to troop's process group, as a terminal's Ctrl-C does.
    pub fn interrupt(&self) {
        nix::sys::signal::killpg(Pid::from_raw(self.pid()), Signal::SIGINT)
            .expect("send SIGINT to troop's process group");
    }

    /// Sends `signal` to troop alone.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signal troop");
    }

    /// Whether troop has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        self.wait_for(Duration::ZERO).is_some()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// The directory troop runs in (unless its command named another) and its `$TMPDIR` (unless
    /// its command set one).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until troop's stderr contains `needle` (true), or `deadline` has passed.
    pub fn wait_for_stderr(&self, needle: &str, deadline: Duration) -> bool {
        wait_until(deadline, || self.stderr().contains(needle))
    }
}

/// Waits up to `deadline` for every process of `procs` to be gone; SIGKILLs those that are not
/// (so a failing test leaves nothing behind) and returns them.
pub fn reap_or_kill(procs: &[Proc], deadline: Duration) -> Vec<Proc> {
    let mut left = Vec::new();
    wait_until(deadline, || {
        left = procs.iter().filter(|p| !is_gone(p)).cloned().collect();
        left.is_empty()
    });
    for p in &left {
        kill9(p);
    }
    left
}

/// The worker processes under `troop`: its descendants whose comm starts with `troop-w`, or
/// whose command line starts with `troop-worker [w` (spawned and forked workers alike, and
/// replacements that a fork server started).
pub fn troop_workers(troop: i32) -> Vec<Proc> {
    descendants(troop)
        .into_iter()
        .filter(|p| {
            comm(p.pid).is_some_and(|c| c.starts_with("troop-w"))
                || cmdline(p.pid).is_some_and(|c| c.starts_with("troop-worker [w"))
        })
        .collect()
}

/// The nearest ancestor of `pid` (itself included) that is a troop worker.
pub fn worker_of(pid: i32) -> Option<Proc> {
    let mut p = proc_stat(pid)?;
    for _ in 0..16 {
        if comm(p.pid).is_some_and(|c| c.starts_with("troop-w"))
            || cmdline(p.pid).is_some_and(|c| c.starts_with("troop-worker [w"))
        {
            return Some(p);
        }
        p = proc_stat(p.ppid)?;
    }
    None
}

/// The environment of a process, from /proc/PID/environ.
pub fn environ(pid: i32) -> Vec<(String, String)> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    bytes
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// A field of /proc/PID/status in KiB (`VmHWM`, `VmRSS`, …), while the process is alive.
pub fn status_kib(pid: i32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The header of a TSV job log, exactly as GNU parallel writes it.
pub const JOBLOG_HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// One row of a TSV job log, its numeric columns parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub seq: u64,
    pub host: String,
    pub starttime: f64,
    pub runtime: f64,
    pub send: u64,
    pub receive: u64,
    pub exitval: i64,
    pub signal: i64,
    pub command: String,
}

/// Parses a TSV job log: the exact header, then complete rows of nine tab-separated columns
/// whose numeric columns parse. Panics, naming the line, on anything else.
#[track_caller]
pub fn parse_joblog(text: &str) -> Vec<JobRow> {
    assert!(
        text.starts_with(JOBLOG_HEADER),
        "the job log does not start with GNU parallel's header: {text:?}"
    );
    assert!(
        text.ends_with('\n'),
        "the job log ends with a partial line: {text:?}"
    );
    text[JOBLOG_HEADER.len()..]
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.splitn(9, '\t').collect();
            assert_eq!(cols.len(), 9, "not 9 columns: {line:?}");
            let bad = |name: &str| format!("column {name} does not parse in {line:?}");
            JobRow {
                seq: cols[0].parse().unwrap_or_else(|_| panic!("{}", bad("Seq"))),
                host: cols[1].to_string(),
                starttime: cols[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("Starttime"))),
                runtime: cols[3]
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("JobRuntime"))),
                send: cols[4]
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("Send"))),
                receive: cols[5]
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("Receive"))),
                exitval: cols[6]
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("Exitval"))),
                signal: cols[7]
                    .parse()
                    .unwrap_or_else(|_| panic!("{}", bad("Signal"))),
                command: cols[8].to_string(),
            }
        })
        .collect()
}

/// Reads and parses a TSV job log (see [`parse_joblog`]).
#[track_caller]
pub fn read_joblog(path: &Path) -> Vec<JobRow> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read job log {}: {e}", path.display()));
    parse_joblog(&text)
}

/// Reads a JSON-lines job log: one object per complete line.
#[track_caller]
pub fn read_json_log(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read job log {}: {e}", path.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "partial last line: {text:?}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// The names in `dir` that start with `prefix`, with the prefix removed, sorted.
pub fn marker_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix(prefix).map(str::to_string)
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `troop run --mode M ARGS…` in process and thread mode in `dir`, and checks that each
/// succeeds printing `expected`; when GNU parallel is installed, checks that `parallel ARGS…`
/// prints the same.
#[track_caller]
pub fn check_modes_like_parallel(dir: Option<&Path>, args: &[&str], stdin: &str, expected: &str) {
    for mode in ["process", "thread"] {
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = troop_in(dir, &ours, stdin);
        assert_eq!(
            ran.code,
            Some(0),
            "troop {ours:?} failed\n--- stdout\n{}\n--- stderr\n{}",
            ran.stdout,
            ran.stderr
        );
        assert_eq!(
            ran.stdout, expected,
            "troop {ours:?} (stderr: {})",
            ran.stderr
        );
    }
    if let Some(gnu) = gnu_parallel_in(dir, args, stdin) {
        assert_eq!(
            gnu.stdout, expected,
            "GNU parallel {args:?} disagrees with the expected output (stderr: {})",
            gnu.stderr
        );
    }
}

/// Checks that troop refuses `troop run ARGS…` with exit status 255, printing nothing on stdout
/// and naming `option` in its message, as GNU parallel refuses bad values with 255.
#[track_caller]
pub fn check_refused(args: &[&str], option: &str) -> Ran {
    let mut ours = vec!["run"];
    ours.extend_from_slice(args);
    let ran = troop(&ours, "");
    ran.assert_code(255);
    assert!(
        ran.stderr.contains(option),
        "the message does not name {option}: {}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "", "nothing runs");
    ran
}
