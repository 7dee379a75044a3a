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

fn run_command(command: Command, stdin: &str) -> Ran {
    assert_cmd::Command::from_std(command)
        .write_stdin(stdin.as_bytes().to_vec())
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run the command")
        .into()
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

/// Runs `parallel --will-cite ARGS…` in `dir`, or returns `None` when GNU parallel is missing.
pub fn gnu_parallel_in(dir: Option<&Path>, args: &[&str], stdin: &str) -> Option<Ran> {
    if !have_gnu_parallel() {
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
        let dir = temp_dir();
        let out = File::create(dir.path().join("stdout")).expect("stdout file");
        let err = File::create(dir.path().join("stderr")).expect("stderr file");
        let child = Command::new(TROOP)
            .args(args)
            .current_dir(dir.path())
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
