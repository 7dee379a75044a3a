//! Starting workers: troop as its own worker, start-up failures noticed at once and survived,
//! peers refused on the bootstrap socket, the file-handle and process limits, and nothing left
//! in `$TMPDIR` whatever happened.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{
    Background, Ran, TROOP, describe, temp_dir, troop_workers, wait_until, worker_busy, write_file,
};

/// The separate worker program.
const TROOP_WORKER: &str = env!("CARGO_BIN_EXE_troop-worker");

/// Skips a test that needs what this machine lacks, in a way that shows: under CI the test
/// fails instead.
fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "cannot run under CI: {why}"
    );
    // Written straight to the file, not through `eprintln!`, which libtest hides.
    let _ = std::io::stderr().write_all(format!("note: skipped: {why}\n").as_bytes());
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// An executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = write_file(dir, name, &format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// What troop leaves in `dir` as its `$TMPDIR`: run directories and ipc-channel's socket
/// directories.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".tmp") || n.starts_with("troop-"))
        .collect();
    names.sort();
    names
}

/// Runs a command (with a deadline) and collects what it did.
fn run(mut command: Command, limit: Duration) -> Ran {
    assert_cmd::Command::from_std(std::mem::replace(&mut command, Command::new("true")))
        .timeout(limit)
        .output()
        .expect("run the command")
        .into()
}

/// `troop ARGS…` with `$TMPDIR` set to `tmp` and these extra variables.
fn troop_command(tmp: &Path, env: &[(&str, &Path)], args: &[&str]) -> Command {
    let mut command = Command::new(TROOP);
    command.args(args).env("TMPDIR", tmp).stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

#[test]
fn a_lone_copy_of_troop_runs_process_workers() {
    let dir = temp_dir();
    let copy = dir.path().join("troop");
    std::fs::copy(TROOP, &copy).expect("copy troop");
    let mut command = Command::new("./troop");
    command
        .args(["run", "-j1", "echo", ":::", "lone-ok"])
        .current_dir(dir.path())
        .env_remove("TROOP_WORKER_EXE")
        .stdin(Stdio::null());
    run(command, Duration::from_secs(30)).assert_ok_with("lone-ok\n");
}

#[test]
fn a_troop_run_by_a_task_is_not_taken_for_a_worker() {
    // A lone copy of troop runs a task (on a thread, so the task inherits troop's environment,
    // bootstrap variables included) that runs troop again: that troop does its own run, with
    // workers that are troop itself.
    let dir = temp_dir();
    let copy = dir.path().join("troop");
    std::fs::copy(TROOP, &copy).expect("copy troop");
    let mut command = Command::new("./troop");
    command
        .args([
            "run",
            "--mode",
            "thread",
            "-j1",
            "./troop run -j1 echo ::: nested-{}",
            ":::",
            "ok",
        ])
        .current_dir(dir.path())
        .env("TROOP_WORKER_SERVER", "/nonexistent/socket")
        .env("TROOP_WORKER_TOKEN", "x")
        .env("TROOP_WORKER_INDEX", "0")
        .env("TROOP_WORKER_PARENT", "1")
        .stdin(Stdio::null());
    run(command, Duration::from_secs(30)).assert_ok_with("nested-ok\n");
}

#[test]
fn the_worker_program_named_by_the_environment_is_used() {
    let dir = temp_dir();
    let ran = run(
        troop_command(
            dir.path(),
            &[("TROOP_WORKER_EXE", Path::new(TROOP_WORKER))],
            &["run", "-j2", "-k", "echo", ":::", "a", "b"],
        ),
        Duration::from_secs(30),
    );
    ran.assert_ok_with("a\nb\n");
    let missing = dir.path().join("no-such-worker");
    let ran = run(
        troop_command(
            dir.path(),
            &[("TROOP_WORKER_EXE", &missing)],
            &["run", "echo", ":::", "a"],
        ),
        Duration::from_secs(30),
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("no-such-worker") && ran.stderr.contains("TROOP_WORKER_EXE"),
        "{}",
        ran.stderr
    );
}

/// The README's first command, from a fresh clone with an empty target directory (`--quick`).
#[test]
fn the_readme_demo_runs_from_a_fresh_clone() {
    let have_git = Command::new("git")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_git {
        return skip("git is not installed");
    }
    let dir = temp_dir();
    let clone = dir.path().join("troop");
    let status = Command::new("git")
        .args(["clone", "--quiet", env!("CARGO_MANIFEST_DIR")])
        .arg(&clone)
        .status()
        .expect("run git clone");
    assert!(status.success(), "git clone failed");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["run", "--release", "--", "demo", "--quick"])
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .env("TMPDIR", dir.path())
        .env_remove("TROOP_WORKER_EXE")
        .stdin(Stdio::null());
    let ran = run(command, Duration::from_secs(1800));
    ran.assert_code(0);
    assert!(
        ran.stdout.contains("process") && clone.join("troop-demo.svg").exists(),
        "the demo did not run its process batch or draw its chart\n--- stdout\n{}\n--- stderr\n{}",
        ran.stdout,
        ran.stderr
    );
}

#[test]
fn a_worker_that_exits_at_once_is_reported_at_once_with_its_status() {
    let dir = temp_dir();
    let fake = script(dir.path(), "fake-worker", "exit 127");
    let ran = run(
        troop_command(
            dir.path(),
            &[("TROOP_WORKER_EXE", &fake)],
            &["run", "-j2", "echo", ":::", "a"],
        ),
        Duration::from_secs(20),
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("exited with status 127") && ran.stderr.lines().count() == 1,
        "{}",
        ran.stderr
    );
    // Nothing is left behind: no run directory, no socket directory.
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_worker_killed_by_a_signal_at_start_is_reported_with_the_signal() {
    let dir = temp_dir();
    let fake = script(dir.path(), "fake-worker", "kill -SEGV $$");
    let ran = run(
        troop_command(
            dir.path(),
            &[("TROOP_WORKER_EXE", &fake)],
            &["run", "-j1", "echo", ":::", "a"],
        ),
        Duration::from_secs(20),
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("killed by signal 11 (SIGSEGV)"),
        "{}",
        ran.stderr
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_run_goes_on_with_the_workers_that_started() {
    let dir = temp_dir();
    let fake = script(
        dir.path(),
        "fake-worker",
        &format!(r#"[ "$1" = "[w2]" ] && exit 3; exec "{TROOP_WORKER}" "$@""#),
    );
    let ran = run(
        troop_command(
            dir.path(),
            &[("TROOP_WORKER_EXE", &fake)],
            &["run", "-j3", "-k", "echo", ":::", "a", "b", "c", "d"],
        ),
        Duration::from_secs(20),
    );
    ran.assert_ok_with("a\nb\nc\nd\n");
    let warnings: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(
        warnings,
        [
            "troop: warning: cannot start worker w2: it exited with status 3 before it said hello; going on with 2 of 3 workers"
        ],
        "{}",
        ran.stderr
    );
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());
}

/// A worker that never connects: troop waits for it, and a signal ends the wait at once.
fn a_signal_ends_a_start_that_hangs(signal: Signal) {
    let dir = temp_dir();
    let fake = script(dir.path(), "fake-worker", "exec sleep 60");
    let mut command = Command::new(TROOP);
    command
        .args(["run", "-j2", "echo", ":::", "a", "b"])
        .env("TROOP_WORKER_EXE", &fake);
    let mut run = Background::start_command(command);
    let troop = run.pid();
    let started = wait_until(Duration::from_secs(10), || {
        crate::util::children(troop)
            .iter()
            .filter(|p| p.comm == "sleep")
            .count()
            == 2
    });
    assert!(started, "the fake workers did not start: {}", run.stderr());
    let tree = crate::util::descendants(troop);
    run.signal(signal);
    let status = run.wait_for(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "troop still waits for its workers 10 s after {signal}; stderr: {}",
        run.stderr()
    );
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{}", run.stderr());
    let left = crate::util::reap_or_kill(&tree, Duration::from_secs(5));
    assert!(left.is_empty(), "still alive:\n{}", describe(&left));
    assert_eq!(leftovers(run.dir()), Vec::<String>::new());
}

#[test]
fn sigterm_ends_a_start_that_hangs_and_leaves_nothing() {
    a_signal_ends_a_start_that_hangs(Signal::SIGTERM);
}

#[test]
fn sigint_ends_a_start_that_hangs_and_leaves_nothing() {
    a_signal_ends_a_start_that_hangs(Signal::SIGINT);
}

/// Connects to a bootstrap socket as a peer that is not a worker and writes `bytes`.
fn write_junk(socket: &str, bytes: &[u8]) {
    // SAFETY: plain socket calls on a descriptor this function owns, with a zeroed and then
    // filled sockaddr_un whose path fits (checked).
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        assert!(socket.len() < addr.sun_path.len());
        for (dst, src) in addr.sun_path.iter_mut().zip(socket.as_bytes()) {
            *dst = *src as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let rc = libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len);
        assert_eq!(
            rc,
            0,
            "connect to {socket}: {}",
            std::io::Error::last_os_error()
        );
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        assert_eq!(n, bytes.len() as isize, "write the junk");
        libc::close(fd);
    }
}

/// A fake worker that records its bootstrap variables (one `server token` line per start) in
/// `dir/starts` and then waits, the first time; later starts are the real worker.
fn recording_worker(dir: &Path) -> PathBuf {
    let starts = dir.join("starts");
    script(
        dir,
        "fake-worker",
        &format!(
            r#"if [ ! -e "{s}" ]; then echo "$TROOP_WORKER_SERVER $TROOP_WORKER_TOKEN" > "{s}"; exec sleep 60; fi
echo "$TROOP_WORKER_SERVER $TROOP_WORKER_TOKEN" >> "{s}"
exec "{TROOP_WORKER}" "$@""#,
            s = starts.display()
        ),
    )
}

/// The `(server, token)` of each start the recording worker saw.
fn recorded_starts(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (s, t) = l.split_once(' ')?;
            Some((s.to_string(), t.to_string()))
        })
        .collect()
}

/// Starts `troop run -j1 echo ::: a` with the recording worker, and waits for its first start.
fn start_with_recording_worker() -> (Background, tempfile::TempDir, (String, String)) {
    let dir = temp_dir();
    let fake = recording_worker(dir.path());
    let mut command = Command::new(TROOP);
    command
        .args(["run", "-j1", "echo", ":::", "a"])
        .env("TROOP_WORKER_EXE", &fake);
    let run = Background::start_command(command);
    let mut first = None;
    let ready = wait_until(Duration::from_secs(10), || {
        first = recorded_starts(dir.path()).into_iter().next();
        first.is_some()
    });
    assert!(ready, "the fake worker did not start: {}", run.stderr());
    (run, dir, first.unwrap())
}

#[test]
fn junk_on_the_bootstrap_socket_is_refused_and_the_run_goes_on() {
    let (mut run, _dir, (server, _)) = start_with_recording_worker();
    let mut junk = [0u8; 64];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut junk))
        .expect("read random bytes");
    write_junk(&server, &junk);
    let status = run.wait_for(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "stderr: {}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "a\n");
    let stderr = run.stderr();
    assert!(
        stderr.contains("refused a connection to the bootstrap socket of worker w1")
            && stderr.contains("(1 refused in this run)")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(leftovers(run.dir()), Vec::<String>::new());
}

/// Says hello on `server` as a fake worker would, with this version and token.
fn fake_hello(server: &str, protocol_version: u32, token: &str) {
    use ipc_channel::ipc::{self, IpcSender};
    use troop_worker::protocol::{Bootstrap, FromWorker, Hello, ToWorker};
    let bootstrap = IpcSender::<Bootstrap>::connect(server.to_string()).expect("connect");
    let (to_worker, _rx) = ipc::channel::<ToWorker>().unwrap();
    let (_tx, from_worker) = ipc::channel::<FromWorker>().unwrap();
    bootstrap
        .send(Bootstrap {
            hello: Hello {
                protocol_version,
                pid: std::process::id(),
                index: 0,
                token: token.into(),
            },
            to_worker,
            from_worker,
        })
        .expect("send the hello");
}

#[test]
fn a_hello_with_a_wrong_token_is_refused_and_the_worker_started_again() {
    use troop_worker::protocol::PROTOCOL_VERSION;
    let (mut run, dir, (server, token)) = start_with_recording_worker();
    fake_hello(&server, PROTOCOL_VERSION, &format!("{token}-not"));
    let status = run.wait_for(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "stderr: {}",
        run.stderr()
    );
    assert_eq!(run.stdout(), "a\n");
    let stderr = run.stderr();
    assert!(
        stderr.contains(
            "refused a connection to the bootstrap socket of worker w1: it presented a wrong token"
        ),
        "{stderr}"
    );
    assert_eq!(recorded_starts(dir.path()).len(), 2, "{stderr}");
}

#[test]
fn a_hello_in_another_protocol_version_is_refused_with_a_clear_error() {
    use troop_worker::protocol::PROTOCOL_VERSION;
    let (mut run, _dir, (server, token)) = start_with_recording_worker();
    fake_hello(&server, PROTOCOL_VERSION + 1, &token);
    let status = run.wait_for(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(255),
        "stderr: {}",
        run.stderr()
    );
    let expected = format!(
        "worker w1 speaks protocol version {}, this troop speaks {PROTOCOL_VERSION}",
        PROTOCOL_VERSION + 1
    );
    assert!(run.stderr().contains(&expected), "{}", run.stderr());
    assert_eq!(leftovers(run.dir()), Vec::<String>::new());
}

#[test]
fn a_tmpdir_too_long_for_a_socket_path_is_refused() {
    let dir = temp_dir();
    let long = dir.path().join("d".repeat(100));
    std::fs::create_dir(&long).unwrap();
    let ran = run(
        troop_command(&long, &[], &["run", "echo", ":::", "a"]),
        Duration::from_secs(20),
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("is too long for a Unix socket path")
            && ran.stderr.contains("set TMPDIR to a shorter directory"),
        "{}",
        ran.stderr
    );
}

/// `troop ARGS…` under `ulimit -n LIMIT`.
fn with_file_limit(limit: u32, args: &[&str]) -> Ran {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!(r#"ulimit -n {limit} && exec "$0" "$@""#))
        .arg(TROOP)
        .args(args)
        .stdin(Stdio::null());
    run(command, Duration::from_secs(30))
}

fn too_few_file_handles_cap_the_workers(mode: &str) {
    let values: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    let mut args = vec!["run", "--mode", mode, "-j32", "echo {}", ":::"];
    args.extend(values.iter().map(String::as_str));
    let ran = with_file_limit(64, &args);
    ran.assert_code(0);
    let mut lines = ran.lines();
    lines.sort_by_key(|l| l.parse::<u32>().unwrap_or(0));
    assert_eq!(lines, values, "stderr: {}", ran.stderr);
    let warnings: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "one warning: {}", ran.stderr);
    assert!(
        warnings[0].starts_with("troop: warning: only enough file handles to run ")
            && warnings[0].contains("ulimit -n is 64"),
        "{}",
        ran.stderr
    );
}

#[test]
fn too_few_file_handles_cap_process_workers_with_one_warning() {
    too_few_file_handles_cap_the_workers("process");
}

#[test]
fn too_few_file_handles_cap_thread_workers_with_one_warning() {
    too_few_file_handles_cap_the_workers("thread");
}

#[test]
fn too_few_file_handles_cap_gil_workers_with_one_warning() {
    too_few_file_handles_cap_the_workers("gil");
}

#[test]
fn too_few_file_handles_cap_async_workers_with_one_warning() {
    too_few_file_handles_cap_the_workers("async");
}

#[test]
fn as_many_workers_as_possible_fit_the_file_handle_limit() {
    let values: Vec<String> = (1..=1000).map(|n| n.to_string()).collect();
    let mut args = vec!["run", "-j0", "echo {}", ":::"];
    args.extend(values.iter().map(String::as_str));
    let ran = with_file_limit(256, &args);
    ran.assert_code(0);
    assert_eq!(ran.lines().len(), 1000, "stderr: {}", ran.stderr);
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
}

#[test]
fn no_room_for_a_worker_is_a_clear_error() {
    let ran = with_file_limit(20, &["run", "echo", ":::", "a"]);
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("ulimit -n is 20") && !ran.stderr.contains("panicked"),
        "{}",
        ran.stderr
    );
}

/// How many messages of troop or its workers a line holds (a path that ends in `troop` before a
/// colon is not a message).
fn messages_in(line: &str) -> usize {
    ["troop: ", "troop-worker: "]
        .iter()
        .flat_map(|prefix| line.match_indices(prefix))
        .filter(|(at, _)| *at == 0 || !line[..*at].ends_with('/'))
        .count()
}

/// Runs troop as user `nobody` under `ulimit -u LIMIT`, from a copy that user may execute.
fn as_nobody_with_process_limit(bin_dir: &Path, limit: u32) -> Ran {
    let mut command = Command::new("setpriv");
    command
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "bash",
            "-c",
            &format!(r#"ulimit -u {limit} && exec "$0" "$@""#),
        ])
        .arg(bin_dir.join("troop"))
        .args(["run", "-j2", "echo", ":::", "a", "b", "c"])
        .current_dir(bin_dir)
        .env("TMPDIR", bin_dir)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    run(command, Duration::from_secs(30))
}

#[test]
fn the_process_limit_gives_clear_whole_line_errors_never_a_panic() {
    if !is_root() {
        return skip("running as user nobody needs root");
    }
    let dir = temp_dir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::copy(TROOP, dir.path().join("troop")).expect("copy troop");
    let tight = as_nobody_with_process_limit(dir.path(), 3);
    tight.assert_code(255);
    assert!(
        tight.stderr.contains("ulimit -u") && !tight.stderr.contains("panicked"),
        "{}",
        tight.stderr
    );
    for limit in [3, 4, 5, 6, 7, 8] {
        for _ in 0..3 {
            let ran = as_nobody_with_process_limit(dir.path(), limit);
            assert!(
                !ran.stderr.contains("panicked") && ran.code != Some(101),
                "ulimit -u {limit}: {ran:?}"
            );
            for line in ran.stderr.lines() {
                assert!(
                    line.starts_with("troop: ") || line.starts_with("troop-worker: "),
                    "ulimit -u {limit}: a line that is not one whole message: {line:?}\n{}",
                    ran.stderr
                );
                assert_eq!(
                    messages_in(line),
                    1,
                    "ulimit -u {limit}: messages spliced into one line: {line:?}"
                );
            }
        }
    }
}

/// A kernel that does not stop at its timeout (here: its worker is stopped, so it cannot) is
/// stopped by killing its worker, and a new worker takes the next task.
#[test]
fn a_kernel_that_overruns_its_timeout_is_stopped_by_replacing_its_worker() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let mut command = Command::new(TROOP);
    command.args([
        "run",
        "-j1",
        "--timeout",
        "2s",
        "--joblog",
        log.to_str().unwrap(),
        "@spin {}",
        ":::",
        "60000",
        "1",
    ]);
    let mut run = Background::start_command(command);
    let troop = run.pid();
    let mut worker = None;
    // Busy in its kernel: it has spent far more CPU than starting takes (a worker that runs
    // may still be starting, before its hello, and would then not be replaced but retired).
    let busy = wait_until(Duration::from_secs(20), || {
        worker = troop_workers(troop).into_iter().next();
        worker
            .as_ref()
            .is_some_and(|w| worker_busy(w.pid) == Some(true) && cpu_ticks(w.pid) >= 20)
    });
    assert!(
        busy,
        "the worker did not start its kernel: {}",
        run.stderr()
    );
    let worker = worker.unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(worker.pid), Signal::SIGSTOP).unwrap();
    let status = run.wait_for(Duration::from_secs(30));
    let worker_was_gone = crate::util::is_gone(&worker);
    crate::util::kill9(&worker);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "stderr: {}",
        run.stderr()
    );
    assert!(
        run.stderr()
            .contains("timed out:\ntroop: Warning: @spin 60000\n"),
        "{}",
        run.stderr()
    );
    // The stopped worker is gone: killed, not merely left stopped.
    assert!(worker_was_gone, "the stopped worker still lives");
    let rows = crate::util::read_joblog(&log);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let spin = rows.iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(spin.signal, 9, "{rows:?}");
    let next = rows.iter().find(|r| r.seq == 2).unwrap();
    assert_eq!((next.exitval, next.signal), (0, 0), "{rows:?}");
}

/// The CPU time process `pid` has used, in clock ticks (user and system).
fn cpu_ticks(pid: i32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0;
    };
    // After the command name: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tick(11) + tick(12)
}
