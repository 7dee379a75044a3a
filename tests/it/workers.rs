//! Worker processes as the operating system sees them: their names, their death with the
//! supervisor, and what a run does when one of them is killed.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{
    Background, Proc, children, cmdline, comm, descendants, describe, is_gone, kill9, wait_until,
    worker_busy,
};

/// troop's children other than the fork server (which is not a worker).
fn non_server_children(troop: i32) -> Vec<Proc> {
    children(troop)
        .into_iter()
        .filter(|p| {
            p.comm != "troop-forksrv" && !cmdline(p.pid).unwrap_or_default().contains("fork server")
        })
        .collect()
}

/// The worker processes among troop's children: named `troop-w<N>` by comm or by command line.
/// (A process just forked, still named like troop, does not count yet.)
fn workers(troop: i32) -> Vec<Proc> {
    children(troop)
        .into_iter()
        .filter(|p| {
            comm(p.pid).is_some_and(|c| c.starts_with("troop-w"))
                || cmdline(p.pid).is_some_and(|c| c.starts_with("troop-worker [w"))
        })
        .collect()
}

/// `(comm, cmdline)` of each worker, sorted.
fn worker_names(troop: i32) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = non_server_children(troop)
        .iter()
        .map(|p| {
            (
                comm(p.pid).unwrap_or_default(),
                cmdline(p.pid).unwrap_or_default(),
            )
        })
        .collect();
    names.sort();
    names
}

/// Workers of a `--start START` run are named `troop-w<N>` (comm) and show their task in their
/// command line: `troop-worker [w<N>] task <seq>: @sleep 5000`.
fn check_worker_names(start: &str) {
    let mut run = Background::start(&[
        "run", "-j2", "--start", start, "@sleep", "{}", ":::", "5000", "5000",
    ]);
    let fits = |names: &[(String, String)]| {
        names.len() == 2
            && names.iter().enumerate().all(|(i, (comm, cmdline))| {
                let n = i + 1;
                *comm == format!("troop-w{n}")
                    && cmdline.starts_with(&format!("troop-worker [w{n}] task "))
                    && cmdline.trim_end().ends_with(": @sleep 5000")
            })
    };
    let mut seen = Vec::new();
    wait_until(Duration::from_secs(10), || {
        // Keep the last sighting, so that a failure shows what the workers looked like.
        let now = worker_names(run.pid());
        if !now.is_empty() {
            seen = now;
        }
        fits(&seen)
    });
    run.kill9();
    assert!(
        fits(&seen),
        "workers of a --start {start} run: {seen:?} (stderr: {})",
        run.stderr()
    );
}

#[test]
fn spawned_workers_are_named() {
    check_worker_names("spawn");
}

#[test]
fn forked_workers_are_named() {
    check_worker_names("fork");
}

/// Starts `args`, waits until troop has `expected` descendants (at least), records them, kills
/// troop with SIGKILL and checks that every recorded process goes away.
fn supervisor_kill_leaves_nothing(args: &[&str], expected: usize, task_comm: Option<&str>) {
    let mut run = Background::start(args);
    let troop = run.pid();
    let mut tree = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        tree = descendants(troop);
        let tasks = task_comm.map_or(0, |c| tree.iter().filter(|p| p.comm == c).count());
        tree.len() >= expected && (task_comm.is_none() || tasks >= 2)
    });
    assert!(
        ready,
        "troop {args:?} did not start its workers and tasks; it has:\n{}\nstderr: {}",
        describe(&tree),
        run.stderr()
    );
    if task_comm.is_none() {
        // Kernel tasks run inside the workers: wait until both workers are up under their own
        // names and busy (where the kernel says so; else give them a moment once both are up)
        // so that the kill lands mid-task.
        let mut busy = Vec::new();
        let mut both_up: Option<std::time::Instant> = None;
        let ready = wait_until(Duration::from_secs(10), || {
            busy = workers(troop);
            if busy.len() < 2 {
                both_up = None;
                return false;
            }
            let since = *both_up.get_or_insert_with(std::time::Instant::now);
            busy.retain(|w| match worker_busy(w.pid) {
                Some(sleeping) => sleeping,
                None => since.elapsed() > Duration::from_millis(500),
            });
            busy.len() >= 2
        });
        assert!(
            ready,
            "troop {args:?} did not get two workers busy with tasks: {}\nstderr: {}",
            describe(&workers(troop)),
            run.stderr()
        );
        tree = descendants(troop);
        assert!(
            busy.iter().all(|w| tree.iter().any(|p| p.pid == w.pid)),
            "the busy workers are troop's: {}",
            describe(&tree)
        );
    }
    run.kill9();
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(10), || {
        left = tree.iter().filter(|p| !is_gone(p)).cloned().collect();
        left.is_empty()
    });
    // Clean up before failing, so a failure leaves nothing behind.
    for p in &left {
        kill9(p);
    }
    assert!(
        gone,
        "10 s after `kill -9` of troop {args:?}, these are still alive:\n{}\n(recorded before the kill:\n{})",
        describe(&left),
        describe(&tree)
    );
}

#[test]
fn killing_the_supervisor_kills_workers_and_commands() {
    supervisor_kill_leaves_nothing(
        &["run", "-j2", "sleep", "30", ":::", "1", "2", "3", "4"],
        4,
        Some("sleep"),
    );
}

#[test]
fn killing_the_supervisor_kills_forked_workers_and_commands() {
    supervisor_kill_leaves_nothing(
        &[
            "run", "-j2", "--start", "fork", "sleep", "30", ":::", "1", "2", "3", "4",
        ],
        4,
        Some("sleep"),
    );
}

#[test]
fn killing_the_supervisor_kills_workers_running_kernels() {
    supervisor_kill_leaves_nothing(
        &[
            "run", "-j2", "@sleep", "{}", ":::", "30000", "30000", "30000", "30000",
        ],
        2,
        None,
    );
}

#[test]
fn killing_the_supervisor_kills_forked_workers_running_kernels() {
    supervisor_kill_leaves_nothing(
        &[
            "run", "-j2", "--start", "fork", "@sleep", "{}", ":::", "30000", "30000", "30000",
            "30000",
        ],
        2,
        None,
    );
}

/// Runs three 2-second kernel tasks on two workers, SIGKILLs one worker mid-task, and checks
/// that the run ends with that one task failed and the others done.
fn worker_killed_mid_task(start: &str) {
    let mut run = Background::start(&[
        "run", "-j2", "--start", start, "@sleep", "{}", ":::", "2000", "2000", "2000",
    ]);
    let troop = run.pid();
    // A worker whose task is running (where the kernel tells; else one that has been up a moment).
    let mut found = Vec::new();
    let mut first_seen = None;
    let ready = wait_until(Duration::from_secs(10), || {
        found = workers(troop);
        let since = *first_seen.get_or_insert_with(std::time::Instant::now);
        if found.len() < 2 {
            first_seen = None;
            return false;
        }
        // A worker busy with `@sleep` sleeps away from its socket; one that runs may still be
        // starting up (and not yet have said hello), so it does not count.
        found.retain(|w| {
            match (
                worker_busy(w.pid),
                crate::util::proc_stat(w.pid).map(|p| p.state),
            ) {
                (Some(busy), Some('S')) => busy,
                (None, _) => since.elapsed() > Duration::from_millis(500),
                _ => false,
            }
        });
        !found.is_empty()
    });
    assert!(
        ready,
        "troop did not start two workers running tasks: {}\nstderr: {}",
        describe(&workers(troop)),
        run.stderr()
    );
    let victim = found[0].clone();
    kill(Pid::from_raw(victim.pid), Signal::SIGKILL).expect("kill the worker");
    let status = run.wait_for(Duration::from_secs(30));
    let stderr = run.stderr();
    assert!(
        status.is_some(),
        "troop hung after its worker was killed; stderr: {stderr}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "one lost task must give exit code 1; stderr: {stderr}"
    );
    assert!(
        stderr.contains("lost"),
        "stderr does not mention the lost task: {stderr:?}"
    );
    assert!(is_gone(&victim));
}

#[test]
fn a_killed_spawned_worker_fails_only_its_task() {
    worker_killed_mid_task("spawn");
}

#[test]
fn a_killed_forked_worker_fails_only_its_task() {
    worker_killed_mid_task("fork");
}
