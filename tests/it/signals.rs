//! Signals from the terminal and from other processes: Ctrl-C once, twice and three times,
//! SIGTERM, SIGHUP, and Ctrl-Z with SIGCONT. Every case leaves no process behind and a job log
//! of complete rows.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{
    Background, Proc, descendants, describe, marker_files, proc_stat, read_joblog, reap_or_kill,
    temp_dir, wait_until,
};

/// A batch of `tasks` tasks on two workers, each `PREFIX touch DIR/start-N; sleep SECS; touch
/// DIR/done-N`, started as a terminal starts a foreground job, with a job log.
struct Batch {
    run: Background,
    dir: tempfile::TempDir,
}

impl Batch {
    fn start(prefix: &str, sleep: &str, tasks: u32, extra: &[&str]) -> Batch {
        let dir = temp_dir();
        let d = dir.path().display().to_string();
        let log = dir.path().join("log").display().to_string();
        let script = format!("{prefix}touch {d}/start-{{}}; sleep {sleep}; touch {d}/done-{{}}");
        let values: Vec<String> = (1..=tasks).map(|n| n.to_string()).collect();
        let mut args = vec!["run", "-j2", "--joblog", &log];
        args.extend_from_slice(extra);
        args.push(&script);
        args.push(":::");
        args.extend(values.iter().map(String::as_str));
        let run = Background::start_in_group(&args, dir.path());
        Batch { run, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until two tasks run (both markers written, both `sleep`s up); returns troop's
    /// processes then.
    fn two_running(&self) -> Vec<Proc> {
        let mut tree = Vec::new();
        let ready = wait_until(Duration::from_secs(10), || {
            tree = descendants(self.run.pid());
            marker_files(self.path(), "start-").len() == 2
                && tree.iter().filter(|p| p.comm == "sleep").count() == 2
        });
        assert!(
            ready,
            "two tasks never ran; troop's processes:\n{}\nstderr: {}",
            describe(&tree),
            self.run.stderr()
        );
        tree
    }

    /// Waits up to `deadline` for troop to exit; its exit code.
    #[track_caller]
    fn exit_code(&mut self, deadline: Duration) -> i32 {
        let status = self.run.wait_for(deadline);
        let stderr = self.run.stderr();
        let status = status.unwrap_or_else(|| panic!("troop still runs; stderr: {stderr}"));
        status
            .code()
            .unwrap_or_else(|| panic!("troop died of {status}; stderr: {stderr}"))
    }

    /// Checks that nothing troop started outlives it.
    #[track_caller]
    fn no_orphans(&self, tree: &[Proc]) {
        let left = reap_or_kill(tree, Duration::from_secs(10));
        assert!(left.is_empty(), "left alive:\n{}", describe(&left));
    }

    /// The job log's rows, checked to be complete; the sequence numbers they record.
    fn logged(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = read_joblog(&self.path().join("log"))
            .iter()
            .map(|r| r.seq)
            .collect();
        seqs.sort();
        seqs
    }
}

/// The first interrupt (Ctrl-C or SIGHUP) lets the running tasks finish and starts no other.
fn first_interrupt_drains(send: impl FnOnce(&Background)) {
    let mut batch = Batch::start("", "1", 6, &[]);
    let tree = batch.two_running();
    let started = marker_files(batch.path(), "start-");
    send(&batch.run);
    let code = batch.exit_code(Duration::from_secs(10));
    let stderr = batch.run.stderr();
    assert_eq!(code, 130, "stderr: {stderr}");
    assert!(stderr.contains("interrupted"), "{stderr:?}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("interrupted")).count(),
        1,
        "one summary line: {stderr:?}"
    );
    batch.no_orphans(&tree);
    assert_eq!(
        marker_files(batch.path(), "start-"),
        started,
        "a task started after the interrupt"
    );
    assert_eq!(
        marker_files(batch.path(), "done-"),
        started,
        "the running tasks did not finish"
    );
    let expected: Vec<u64> = started.iter().map(|n| n.parse().unwrap()).collect();
    assert_eq!(batch.logged(), expected, "one row per finished task");
    let rows = read_joblog(&batch.path().join("log"));
    assert!(
        rows.iter().all(|r| r.exitval == 0 && r.signal == 0),
        "{rows:#?}"
    );
}

#[test]
fn one_ctrl_c_lets_running_tasks_finish_and_starts_no_more() {
    first_interrupt_drains(Background::interrupt);
}

#[test]
fn sighup_acts_like_one_ctrl_c() {
    first_interrupt_drains(|run| run.signal(Signal::SIGHUP));
}

/// The second stage (a second Ctrl-C, or SIGTERM) stops the running tasks with the termination
/// sequence: `sleep 30` ends at once, no task finishes, and the log records the stopped ones.
fn second_stage_terminates(send: impl FnOnce(&Background)) {
    let mut batch = Batch::start("", "30", 6, &[]);
    let tree = batch.two_running();
    send(&batch.run);
    let code = batch.exit_code(Duration::from_secs(5));
    let stderr = batch.run.stderr();
    assert_eq!(code, 130, "stderr: {stderr}");
    batch.no_orphans(&tree);
    assert_eq!(
        marker_files(batch.path(), "start-").len(),
        2,
        "a task started after the stop"
    );
    assert!(
        marker_files(batch.path(), "done-").is_empty(),
        "a task ran to its end"
    );
    let rows = read_joblog(&batch.path().join("log"));
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    let started: Vec<u64> = marker_files(batch.path(), "start-")
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(seqs, started, "a row for each stopped task: {rows:#?}");
    assert!(
        rows.iter().all(|r| r.signal == 15),
        "the tasks were stopped by SIGTERM: {rows:#?}"
    );
}

#[test]
fn two_ctrl_c_terminate_running_tasks() {
    second_stage_terminates(|run| {
        run.interrupt();
        assert!(
            run.wait_for_stderr("interrupted", Duration::from_secs(5)),
            "no summary after the first Ctrl-C: {}",
            run.stderr()
        );
        run.interrupt();
    });
}

#[test]
fn sigterm_acts_like_a_second_ctrl_c() {
    second_stage_terminates(|run| run.signal(Signal::SIGTERM));
}

/// Tasks that ignore SIGTERM, under a termination sequence that would wait 20 s: the third
/// Ctrl-C kills everything at once.
#[test]
fn three_ctrl_c_kill_everything_at_once() {
    // The tasks ignore SIGTERM (as does their `sleep`, which inherits that).
    let mut batch = Batch::start("trap '' TERM; ", "30", 4, &["--term-seq", "TERM,20000"]);
    let tree = batch.two_running();
    batch.run.interrupt();
    assert!(
        batch
            .run
            .wait_for_stderr("interrupted", Duration::from_secs(5)),
        "no summary after the first Ctrl-C: {}",
        batch.run.stderr()
    );
    batch.run.interrupt();
    assert!(
        batch
            .run
            .wait_for_stderr("stopping 2 running", Duration::from_secs(5)),
        "no word after the second Ctrl-C: {}",
        batch.run.stderr()
    );
    // The tasks shrug off SIGTERM; the sequence waits 20 s before anything else.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!batch.run.exited(), "troop ended before the third Ctrl-C");
    assert!(
        tree.iter()
            .filter(|p| p.comm == "sleep")
            .all(|p| !crate::util::is_gone(p)),
        "the tasks were meant to ignore SIGTERM"
    );
    batch.run.interrupt();
    let code = batch.exit_code(Duration::from_secs(5));
    assert_eq!(code, 130, "stderr: {}", batch.run.stderr());
    batch.no_orphans(&tree);
    assert!(marker_files(batch.path(), "done-").is_empty());
    // Whatever the log holds is whole rows.
    let logged = batch.logged();
    assert!(logged.len() <= 2, "{logged:?}");
}

/// The state letter of a process (`T` when stopped).
fn state(pid: i32) -> char {
    proc_stat(pid).map_or('?', |p| p.state)
}

#[test]
fn ctrl_z_stops_every_task_and_sigcont_resumes_them() {
    let dir = temp_dir();
    let mut run =
        Background::start_in_group(&["run", "-j2", "sleep", ":::", "30", "31"], dir.path());
    let troop = run.pid();
    let mut sleeps = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        sleeps = descendants(troop)
            .into_iter()
            .filter(|p| p.comm == "sleep")
            .collect();
        sleeps.len() == 2
    });
    assert!(ready, "the tasks never ran; stderr: {}", run.stderr());
    let tree = descendants(troop);

    run.signal(Signal::SIGTSTP);
    let stopped = wait_until(Duration::from_secs(5), || {
        state(troop) == 'T' && sleeps.iter().all(|p| state(p.pid) == 'T')
    });
    let states: Vec<char> = sleeps.iter().map(|p| state(p.pid)).collect();
    assert!(
        stopped,
        "after SIGTSTP: troop {} tasks {states:?}",
        state(troop)
    );
    // Stopped means stopped: they stay so.
    std::thread::sleep(Duration::from_millis(200));
    assert!(sleeps.iter().all(|p| state(p.pid) == 'T'));

    run.signal(Signal::SIGCONT);
    let resumed = wait_until(Duration::from_secs(5), || {
        state(troop) != 'T' && sleeps.iter().all(|p| state(p.pid) != 'T')
    });
    let states: Vec<char> = sleeps.iter().map(|p| state(p.pid)).collect();
    assert!(
        resumed,
        "after SIGCONT: troop {} tasks {states:?}",
        state(troop)
    );

    // The run is alive and well: SIGTERM stops it as usual.
    run.signal(Signal::SIGTERM);
    let status = run.wait_for(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "stderr: {}",
        run.stderr()
    );
    let left = reap_or_kill(&tree, Duration::from_secs(10));
    assert!(left.is_empty(), "left alive:\n{}", describe(&left));
}
