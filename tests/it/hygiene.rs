//! Process hygiene in every mode: nothing of a run outlives it, whether troop ends normally or is
//! killed with SIGKILL, and daemons that tasks start are treated alike in every mode.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::{Background, Proc, TROOP, all_procs, describe, environ, kill9, temp_dir};

/// The environment variable that marks every process of one test's run: troop passes its
/// environment to its commands, and they to theirs.
const MARK: &str = "TROOP_IT_HYGIENE_MARK";

/// A value of [`MARK`] that no other test uses.
fn unique_mark(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Every live process whose environment carries `mark`.
fn marked(mark: &str) -> Vec<Proc> {
    all_procs()
        .into_iter()
        .filter(|p| !matches!(p.state, 'Z' | 'X'))
        .filter(|p| environ(p.pid).iter().any(|(k, v)| k == MARK && v == mark))
        .collect()
}

/// Starts `troop ARGS…` in the background with `mark` in its environment and `tmpdir` as its
/// `$TMPDIR`.
fn start_marked(args: &[&str], mark: &str, tmpdir: &Path) -> Background {
    let mut command = Command::new(TROOP);
    command.args(args).env(MARK, mark).env("TMPDIR", tmpdir);
    Background::start_command(command)
}

/// Waits until no process carries `mark`; kills and names those that stay.
#[track_caller]
fn assert_none_left(mark: &str, what: &str) {
    let mut left = Vec::new();
    let gone = crate::util::wait_until(Duration::from_secs(10), || {
        left = marked(mark);
        left.is_empty()
    });
    let described = describe(&left);
    left.iter().for_each(kill9);
    assert!(gone, "{what}, these are still alive:\n{described}");
}

/// Kills troop with SIGKILL while three `sh -c 'sleep 100 & sleep 101'` tasks run, then checks
/// that no process of the run survives and that `$TMPDIR` is left empty.
fn sigkill_leaves_nothing(mode: &str) {
    let mark = unique_mark(mode);
    let tmp = temp_dir();
    let mut run = start_marked(
        &[
            "run",
            "--mode",
            mode,
            "-j3",
            "sh -c 'sleep 100 & sleep 101'",
            ":::",
            "1",
            "2",
            "3",
        ],
        &mark,
        tmp.path(),
    );
    let mut procs = Vec::new();
    let ready = crate::util::wait_until(Duration::from_secs(20), || {
        procs = marked(&mark);
        procs.iter().filter(|p| p.comm == "sleep").count() == 6
    });
    if !ready {
        let described = describe(&procs);
        run.kill9();
        marked(&mark).iter().for_each(kill9);
        panic!(
            "the tasks never all ran; the run's processes:\n{described}\nstderr: {}",
            run.stderr()
        );
    }
    run.kill9();
    assert_none_left(
        &mark,
        &format!("10 s after `kill -9` of troop --mode {mode}"),
    );
    let mut entries = Vec::new();
    let empty = crate::util::wait_until(Duration::from_secs(10), || {
        entries = std::fs::read_dir(tmp.path())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        entries.is_empty()
    });
    assert!(
        empty,
        "`kill -9` of troop --mode {mode} left {entries:?} in TMPDIR"
    );
}

#[test]
fn sigkill_of_troop_in_thread_mode_leaves_no_process_and_no_file() {
    sigkill_leaves_nothing("thread");
}

#[test]
fn sigkill_of_troop_in_gil_mode_leaves_no_process_and_no_file() {
    sigkill_leaves_nothing("gil");
}

#[test]
fn sigkill_of_troop_in_async_mode_leaves_no_process_and_no_file() {
    sigkill_leaves_nothing("async");
}

#[test]
fn sigkill_of_troop_in_process_mode_leaves_no_process_and_no_file() {
    sigkill_leaves_nothing("process");
}

/// Kills troop with SIGKILL after a task ended leaving `sleep 100` behind in its process group,
/// while another task still runs: the leftover dies too.
fn sigkill_kills_leftovers_of_finished_tasks(mode: &str) {
    let mark = unique_mark(mode);
    let tmp = temp_dir();
    let mut run = start_marked(
        &[
            "run",
            "--mode",
            mode,
            "-j2",
            "if [ {} = 1 ]; then sleep 100 & echo left; else sleep 101; fi",
            ":::",
            "1",
            "2",
        ],
        &mark,
        tmp.path(),
    );
    let troop = run.pid();
    let mut procs = Vec::new();
    // The first task is over once its `sleep 100` has come to troop.
    let ready = crate::util::wait_until(Duration::from_secs(20), || {
        procs = marked(&mark);
        let sleeps = procs.iter().filter(|p| p.comm == "sleep");
        sleeps.clone().count() == 2 && sleeps.clone().any(|p| p.ppid == troop)
    });
    if !ready {
        let described = describe(&procs);
        run.kill9();
        marked(&mark).iter().for_each(kill9);
        panic!(
            "the first task never ended leaving its sleep; the run's processes:\n{described}\nstderr: {}",
            run.stderr()
        );
    }
    run.kill9();
    assert_none_left(
        &mark,
        &format!("10 s after `kill -9` of troop --mode {mode}"),
    );
}

#[test]
fn sigkill_of_troop_in_thread_mode_kills_what_finished_tasks_left_in_their_groups() {
    sigkill_kills_leftovers_of_finished_tasks("thread");
}

#[test]
fn sigkill_of_troop_in_async_mode_kills_what_finished_tasks_left_in_their_groups() {
    sigkill_kills_leftovers_of_finished_tasks("async");
}

/// A task that starts a daemon (`setsid`, still holding the task's stdout and stderr) and a
/// background process, then exits: the task ends when its command exits, and what it left
/// running is killed when the run ends. Each leftover would create a file after 5 s.
fn leftovers_end_with_the_run(mode: &str) {
    let mark = unique_mark(mode);
    let tmp = temp_dir();
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let script = format!(
        "setsid sh -c 'sleep 5; touch {d}/daemon-{{}}' & (sleep 5; touch {d}/background-{{}}) & echo started {{}}"
    );
    let mut run = start_marked(
        &["run", "--mode", mode, "-j2", &script, ":::", "1", "2"],
        &mark,
        tmp.path(),
    );
    let status = run.wait_for(Duration::from_secs(60));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "troop --mode {mode} did not end well; stderr: {}",
        run.stderr()
    );
    let mut lines: Vec<String> = run.stdout().lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["started 1", "started 2"], "--mode {mode}");
    // troop has exited: the daemons and background processes are already gone, so none of
    // them can ever create its file.
    let left = marked(&mark);
    let described = describe(&left);
    left.iter().for_each(kill9);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty() && files.is_empty(),
        "--mode {mode}: the run waited for its leftovers (they wrote {files:?}) or left them \
         running:\n{described}"
    );
}

#[test]
fn daemons_and_background_processes_end_with_the_run_in_process_mode() {
    leftovers_end_with_the_run("process");
}

#[test]
fn daemons_and_background_processes_end_with_the_run_in_thread_mode() {
    leftovers_end_with_the_run("thread");
}

#[test]
fn daemons_and_background_processes_end_with_the_run_in_gil_mode() {
    leftovers_end_with_the_run("gil");
}

#[test]
fn async_mode_does_not_wait_for_a_daemon_that_holds_stdout() {
    leftovers_end_with_the_run("async");
}

/// Runs 700 tasks that each leave a short background job behind, the last task waiting for a
/// file; once the others are done and their jobs have exited, counts troop's zombie children.
fn leftovers_do_not_pile_up_as_zombies(mode: &str) {
    let mark = unique_mark(mode);
    let tmp = temp_dir();
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let script = format!(
        "if [ {{}} = 700 ]; then while [ ! -e {d}/go ]; do sleep 0.05; done; fi; sleep 0.01 & :"
    );
    let mut command = Command::new(TROOP);
    command
        .args(["run", "--mode", mode, "-j4", "--joblog"])
        .arg(&log)
        .arg(&script)
        .env(MARK, &mark)
        .env("TMPDIR", tmp.path());
    let input = dir.path().join("input");
    let numbers: String = (1..=700).map(|i| format!("{i}\n")).collect();
    std::fs::write(&input, numbers).expect("write the input");
    command.arg("::::").arg(&input);
    let mut run = Background::start_command(command);
    let troop = run.pid();
    let zombies = || {
        all_procs()
            .into_iter()
            .filter(|p| p.ppid == troop && p.state == 'Z')
            .count()
    };
    let mut seen = 0;
    let ready = crate::util::wait_until(Duration::from_secs(60), || {
        let rows = std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
        // 699 rows and the header; no short job left running.
        let running_jobs = marked(&mark)
            .iter()
            .filter(|p| crate::util::cmdline(p.pid).is_some_and(|c| c == "sleep 0.01"))
            .count();
        seen = zombies();
        rows >= 700 && running_jobs == 0
    });
    std::fs::write(dir.path().join("go"), b"").expect("write the go file");
    let status = run.wait_for(Duration::from_secs(30));
    assert!(
        ready,
        "--mode {mode}: the tasks did not all end; stderr: {}",
        run.stderr()
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "stderr: {}",
        run.stderr()
    );
    assert!(
        seen < 400,
        "--mode {mode}: troop held {seen} zombies of the 699 background jobs"
    );
    assert_none_left(&mark, &format!("after troop --mode {mode} ended"));
}

#[test]
fn leftovers_of_finished_tasks_do_not_pile_up_as_zombies_in_thread_mode() {
    leftovers_do_not_pile_up_as_zombies("thread");
}

#[test]
fn leftovers_of_finished_tasks_do_not_pile_up_as_zombies_in_process_mode() {
    leftovers_do_not_pile_up_as_zombies("process");
}
