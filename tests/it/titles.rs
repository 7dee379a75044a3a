//! Names in `top` that tell the story: each worker process's command line names its task or says
//! it is idle, the supervisor's counts what is done, and thread workers are named threads.

use std::time::Duration;

use crate::util::{Background, children, cmdline, comm, wait_until};

/// The command lines of troop's worker processes (children whose comm is `troop-w<N>`).
fn worker_titles(troop: i32) -> Vec<String> {
    children(troop)
        .into_iter()
        .filter(|p| comm(p.pid).is_some_and(|c| c.starts_with("troop-w")))
        .filter_map(|p| cmdline(p.pid))
        .collect()
}

/// The names of troop's threads, as `top -H` shows them.
fn thread_names(troop: i32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{troop}/task")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim_end().to_string())
        .collect()
}

/// One long task and one short one on two workers: while the long one runs, its worker's title
/// names it, the other worker (done with the short one) is idle, and troop's title counts one
/// task done of two.
fn check_titles(start: &str) {
    let mut run = Background::start(&[
        "run", "-j2", "--start", start, "sleep", "{}", ":::", "30", "0.1",
    ]);
    let troop = run.pid();
    let (mut workers, mut own) = (Vec::new(), String::new());
    let seen = wait_until(Duration::from_secs(15), || {
        workers = worker_titles(troop);
        own = cmdline(troop).unwrap_or_default();
        let busy = workers
            .iter()
            .any(|t| t.starts_with("troop-worker [w") && t.ends_with("] task 1: sleep 30"));
        let idle = workers
            .iter()
            .any(|t| t.starts_with("troop-worker [w") && t.ends_with("] idle"));
        busy && idle && own == "troop [1/2 done, 0 failed]"
    });
    run.kill9();
    assert!(
        seen,
        "--start {start}: workers {workers:?}, troop {own:?} (stderr: {})",
        run.stderr()
    );
}

#[test]
fn spawned_workers_title_their_task_then_idle() {
    check_titles("spawn");
}

#[test]
fn forked_workers_title_their_task_then_idle() {
    check_titles("fork");
}

#[test]
fn a_running_worker_title_names_each_task_of_a_sleep_batch() {
    // Two workers, four sleeps: every task shows up in some worker's title as it runs.
    let mut run = Background::start(&["run", "-j2", "sleep", "{}", ":::", "1", "1", "1", "1"]);
    let troop = run.pid();
    let mut seen = std::collections::BTreeSet::new();
    wait_until(Duration::from_secs(20), || {
        for title in worker_titles(troop) {
            if let Some((_, task)) = title.split_once("] task ") {
                seen.insert(task.to_string());
            }
        }
        seen.len() == 4 || run.exited()
    });
    run.kill9();
    let expected: std::collections::BTreeSet<String> =
        (1..=4).map(|n| format!("{n}: sleep 1")).collect();
    assert_eq!(seen, expected, "stderr: {}", run.stderr());
}

fn check_thread_names(mode: &str, expected: &[&str]) {
    let mut run = Background::start(&[
        "run", "--mode", mode, "-j2", "@sleep", "{}", ":::", "30000", "30000",
    ]);
    let troop = run.pid();
    let mut names = Vec::new();
    let seen = wait_until(Duration::from_secs(15), || {
        names = thread_names(troop);
        expected.iter().all(|e| names.iter().any(|n| n == e))
    });
    run.kill9();
    assert!(
        seen,
        "--mode {mode}: threads {names:?} (stderr: {})",
        run.stderr()
    );
}

#[test]
fn thread_workers_are_named_for_top() {
    check_thread_names("thread", &["troop-t1", "troop-t2"]);
}

#[test]
fn gil_workers_are_named_for_top() {
    check_thread_names("gil", &["troop-g1", "troop-g2"]);
}

#[test]
fn a_streaming_run_counts_done_tasks_before_its_total_is_known() {
    // Input from a pipe that stays open: the total is not known yet, so troop shows `?`.
    let mut command = std::process::Command::new(crate::util::TROOP);
    command.args(["run", "-j1", "true"]);
    command.stdin(std::process::Stdio::piped());
    command.stdout(std::process::Stdio::null());
    let mut child = command.spawn().expect("troop starts");
    let mut stdin = child.stdin.take().expect("a pipe");
    use std::io::Write as _;
    stdin.write_all(b"a\nb\n").expect("input written");
    let troop = child.id() as i32;
    let mut own = String::new();
    let seen = wait_until(Duration::from_secs(15), || {
        own = cmdline(troop).unwrap_or_default();
        // The reader may hold the last line back until it knows the input goes on.
        own == "troop [1/? done, 0 failed]" || own == "troop [2/? done, 0 failed]"
    });
    drop(stdin);
    let status = child.wait().expect("troop ends");
    assert!(seen, "troop's title: {own:?}");
    assert!(status.success());
}
