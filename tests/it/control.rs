//! Control of a run: kernels refused at dispatch, `--halt` in every form (compared with GNU
//! parallel), tasks given back by a worker when the run stops, Ctrl-C while the pool starts,
//! stopped workers, percentage timeouts, resource gates, and the in-process async mode under
//! every way a run can stop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{
    Background, Proc, TROOP, descendants, describe, gnu_parallel_in, marker_files, read_joblog,
    reap_or_kill, temp_dir, troop, wait_until,
};

/// Waits up to `deadline` for a background troop to exit; its exit code (panics, with its
/// stderr, if it still runs or died of a signal).
#[track_caller]
fn exit_code(run: &mut Background, deadline: Duration) -> i32 {
    let status = run.wait_for(deadline);
    let stderr = run.stderr();
    let status = status.unwrap_or_else(|| panic!("troop still runs; stderr: {stderr}"));
    status
        .code()
        .unwrap_or_else(|| panic!("troop died of {status}; stderr: {stderr}"))
}

/// Runs `troop ARGS…` in the background and waits at most `secs` seconds for it: a hang fails
/// the test at once instead of after the suite's command timeout.
#[track_caller]
fn run_within(args: &[&str], secs: u64) -> (i32, String, String) {
    let mut run = Background::start(args);
    let code = exit_code(&mut run, Duration::from_secs(secs));
    (code, run.stdout(), run.stderr())
}

#[track_caller]
fn no_orphans(tree: &[Proc]) {
    let left = reap_or_kill(tree, Duration::from_secs(10));
    assert!(left.is_empty(), "left alive:\n{}", describe(&left));
}

/// The run directories troop left in `dir` (its `$TMPDIR`).
fn run_dirs(dir: &Path) -> Vec<String> {
    marker_files(dir, "troop-")
}

// ---- Kernels refused at dispatch ----

#[test]
fn a_kernel_refused_at_dispatch_fails_its_task_and_the_run_ends() {
    let (code, stdout, stderr) = run_within(&["run", "-j1", "@primes", ":::", "x"], 10);
    assert_eq!(code, 1, "one failed task; stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("task 1") && stderr.contains("@primes") && stderr.contains("`x`"),
        "the error names the task, the kernel and the argument: {stderr:?}"
    );
}

#[test]
fn kernels_with_appended_arguments_fail_each_task_and_the_run_ends() {
    for _ in 0..5 {
        let (code, _, stderr) = run_within(
            &[
                "run",
                "-j2",
                "--chunksize",
                "auto",
                "@spin",
                "2000",
                ":::",
                "1",
                "2",
                "3",
                "4",
            ],
            10,
        );
        assert_eq!(code, 4, "four failed tasks; stderr: {stderr}");
        for n in 1..=4 {
            assert!(
                stderr.contains(&format!("task {n}: `@spin`")),
                "no error for task {n}: {stderr:?}"
            );
        }
    }
}

#[test]
fn refused_kernels_among_good_ones_let_the_good_ones_run() {
    for _ in 0..5 {
        let (code, stdout, stderr) = run_within(
            &[
                "run", "-j1", "-k", "@primes", ":::", "x", "100", "y", "1000", "z",
            ],
            10,
        );
        assert_eq!(code, 3, "stderr: {stderr}");
        assert_eq!(stdout, "25\n168\n");
    }
}

// ---- --halt ----

/// Runs `--halt FORM` at -j1 over `inputs` with `echo {}; exit {}` in `mode`; checks the
/// output and exit code, and that GNU parallel (when installed) agrees.
#[track_caller]
fn halt_case(mode: &str, form: &str, inputs: &[&str], expected: &[&str], code: i32) {
    let mut args = vec![
        "run",
        "--mode",
        mode,
        "-j1",
        "--halt",
        form,
        "echo {}; exit {}",
        ":::",
    ];
    args.extend_from_slice(inputs);
    let (ours, stdout, stderr) = run_within(&args, 20);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        (lines.as_slice(), ours),
        (expected, code),
        "troop --mode {mode} --halt {form} on {inputs:?}; stderr: {stderr}"
    );
    let mut gnu_args = vec!["-j1", "--halt", form, "echo {}; exit {}", ":::"];
    gnu_args.extend_from_slice(inputs);
    match gnu_parallel_in(None, &gnu_args, "") {
        Some(gnu) => assert_eq!(
            (gnu.lines().as_slice(), gnu.code),
            (expected, Some(code)),
            "GNU parallel --halt {form} disagrees: {}",
            gnu.stderr
        ),
        None => assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "GNU parallel is needed under CI to check --halt {form}"
        ),
    }
}

/// Every form of `--halt`: no task starts after the one that stops the run, and the exit code
/// is GNU parallel's.
fn halt_forms_start_nothing_after_the_deciding_task(mode: &str) {
    let a = ["0", "0", "3", "0", "0"];
    let b = ["1", "2", "0", "4", "5", "6"];
    halt_case(mode, "now,fail=1", &a, &["0", "0", "3"], 3);
    halt_case(mode, "soon,fail=1", &a, &["0", "0", "3"], 3);
    halt_case(mode, "2", &a, &["0", "0", "3"], 3);
    halt_case(mode, "1", &a, &["0", "0", "3"], 3);
    halt_case(mode, "now,fail=1", &b, &["1"], 1);
    halt_case(mode, "soon,fail=50%", &b, &["1", "2", "0", "4"], 50);
    halt_case(mode, "soon,fail=3", &b, &["1", "2", "0", "4"], 3);
    halt_case(mode, "now,success=1", &b, &["1", "2", "0"], 0);
    halt_case(mode, "-2", &b, &["1", "2", "0"], 0);
    halt_case(mode, "now,success=40%", &a, &["0", "0"], 0);
    halt_case(mode, "now,done=2", &b, &["1", "2"], 2);
    halt_case(mode, "soon,done=3", &b, &["1", "2", "0"], 2);
    halt_case(mode, "now,done=60%", &a, &["0", "0", "3"], 20);
    // A percentage that is never reached: the percentage of the tasks that failed.
    halt_case(mode, "soon,fail=50%", &a, &a, 20);
    let c = ["1", "2", "4"];
    halt_case(mode, "now,fail=30%", &c, &["1"], 34);
    halt_case(mode, "now,success=50%", &c, &c, 100);
    // A count that is never reached: the number of failed tasks.
    halt_case(mode, "now,success=1", &c, &c, 3);
}

#[test]
fn halt_forms_start_nothing_after_the_deciding_task_in_process_mode() {
    halt_forms_start_nothing_after_the_deciding_task("process");
}

#[test]
fn halt_forms_start_nothing_after_the_deciding_task_in_thread_mode() {
    halt_forms_start_nothing_after_the_deciding_task("thread");
}

/// `--halt WHEN,fail=1` on two tasks: task 1 fails after a moment while task 2 runs `sleep
/// SECS` then writes a completion marker. Returns the exit code, stderr, task 2's job-log row
/// (exit value, signal) and whether its marker was written.
fn halt_with_a_running_task(when: &str, secs: &str) -> (i32, String, Option<(i64, i64)>, bool) {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let script =
        format!("case {{}} in 1) sleep 0.3; exit 4;; 2) sleep {secs}; touch {d}/done-2;; esac");
    let halt = format!("{when},fail=1");
    let (code, _, stderr) = run_within(
        &[
            "run",
            "-j2",
            "--halt",
            &halt,
            "--joblog",
            log.to_str().unwrap(),
            &script,
            ":::",
            "1",
            "2",
        ],
        20,
    );
    let row = read_joblog(&log)
        .iter()
        .find(|r| r.seq == 2)
        .map(|r| (r.exitval, r.signal));
    let done = !marker_files(dir.path(), "done-").is_empty();
    (code, stderr, row, done)
}

#[test]
fn halt_now_kills_the_running_task() {
    let (code, stderr, row, done) = halt_with_a_running_task("now", "30");
    assert_eq!(code, 4, "the failed task's exit value; stderr: {stderr}");
    assert_eq!(
        row,
        Some((0, 15)),
        "task 2 stopped by SIGTERM; stderr: {stderr}"
    );
    assert!(!done, "task 2 ran to its end");
}

#[test]
fn halt_soon_lets_the_running_task_finish() {
    let (code, stderr, row, done) = halt_with_a_running_task("soon", "1.5");
    assert_eq!(code, 4, "the failed task's exit value; stderr: {stderr}");
    assert_eq!(row, Some((0, 0)), "task 2 finished; stderr: {stderr}");
    assert!(done, "task 2 was stopped");
    assert!(
        stderr.contains("Waiting for 1 jobs to finish"),
        "counts the one running task: {stderr:?}"
    );
}

#[test]
fn halt_among_batched_tasks_counts_only_running_ones_and_starts_none_after() {
    // Task 60 fails at once; the others take a moment, so at most one other task (on the
    // other worker) can have started before its failure is known.
    let inputs: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    let mut args = vec![
        "run",
        "-j2",
        "--halt",
        "soon,fail=1",
        "--chunksize",
        "20",
        "echo {}; test {} -eq 60 && exit 1; sleep 0.02",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let (code, stdout, stderr) = run_within(&args, 60);
    assert_eq!(code, 1, "stderr: {stderr}");
    let waiting: Vec<usize> = stderr
        .lines()
        .filter_map(|l| l.split("waiting for ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        waiting.iter().all(|&n| n <= 2),
        "more running than workers: {stderr:?}"
    );
    let ran: Vec<u32> = stdout.lines().map(|l| l.parse().unwrap()).collect();
    let last = ran.iter().copied().max().unwrap_or(0);
    assert!(
        last <= 62,
        "tasks up to {last} started after task 60 failed; stderr: {stderr}"
    );
}

// ---- Ctrl-C: tasks queued on a worker are given back ----

#[test]
fn one_ctrl_c_gives_back_tasks_queued_on_workers() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let inputs: Vec<String> = (1..=20_000).map(|n| n.to_string()).collect();
    let mut args = vec![
        "run",
        "-j2",
        "--chunksize",
        "50",
        "--joblog",
        log.to_str().unwrap(),
        "echo {}",
        ":::",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let mut run = Background::start_in_group(&args, dir.path());
    let busy = wait_until(Duration::from_secs(20), || {
        run.stdout().lines().count() >= 300
    });
    assert!(busy, "tasks never ran; stderr: {}", run.stderr());
    run.interrupt();
    let code = exit_code(&mut run, Duration::from_secs(20));
    let stderr = run.stderr();
    assert_eq!(code, 130, "stderr: {stderr}");
    // "interrupted: starting no new task; waiting for N running; M not started (D done)."
    let line = stderr
        .lines()
        .find(|l| l.contains("interrupted"))
        .unwrap_or_else(|| panic!("no summary: {stderr:?}"));
    let number_after = |key: &str| -> u64 {
        line.split(key)
            .nth(1)
            .and_then(|r| r.split([' ', ';', ')']).next()?.parse().ok())
            .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
    };
    let running = number_after("waiting for ");
    let done = number_after("(");
    assert!(running <= 2, "more running than workers: {line:?}");
    let logged = read_joblog(&log).len() as u64;
    assert!(
        logged <= done + running + 30,
        "{} tasks ended after the interrupt that said {running} were running: {line:?}",
        logged - done
    );
}

// ---- Ctrl-C while a large pool starts ----

#[test]
fn three_quick_ctrl_c_end_a_pool_that_is_still_starting() {
    let dir = temp_dir();
    let mut run = Background::start_in_group(
        &["run", "-j256", "sleep 100", ":::", "1", "2", "3"],
        dir.path(),
    );
    let pid = run.pid();
    let starting = wait_until(Duration::from_secs(10), || !descendants(pid).is_empty());
    assert!(starting, "no worker ever started; stderr: {}", run.stderr());
    for _ in 0..3 {
        run.interrupt();
        std::thread::sleep(Duration::from_millis(50));
    }
    let tree = descendants(pid);
    let code = exit_code(&mut run, Duration::from_secs(10));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
    assert_eq!(run_dirs(dir.path()), Vec::<String>::new());
}

/// The same storm with more tasks than workers, in the in-process modes: workers still being
/// started are given up on without waiting for them, and commands that workers were starting
/// when the third Ctrl-C came are killed too (each would otherwise run its 100 s).
#[test]
fn three_quick_ctrl_c_end_a_large_in_process_pool_still_starting() {
    let tasks: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    for mode in ["thread", "gil", "async"] {
        let dir = temp_dir();
        let mut args = vec!["run", "--mode", mode, "-j256", "sleep 100.371; : {}", ":::"];
        args.extend(tasks.iter().map(String::as_str));
        let mut run = Background::start_in_group(&args, dir.path());
        let pid = run.pid();
        let started = wait_until(Duration::from_secs(10), || {
            descendants(pid)
                .iter()
                .filter(|p| p.comm == "sleep")
                .count()
                >= 8
        });
        assert!(
            started,
            "{mode}: no command started; stderr: {}",
            run.stderr()
        );
        for _ in 0..3 {
            run.interrupt();
            std::thread::sleep(Duration::from_millis(50));
        }
        let code = exit_code(&mut run, Duration::from_secs(30));
        assert_eq!(code, 130, "{mode}: stderr: {}", run.stderr());
        // The commands' own duration marks them: no other test sleeps this long.
        let none_left = wait_until(Duration::from_secs(5), || {
            !std::fs::read_dir("/proc").is_ok_and(|procs| {
                procs.flatten().any(|p| {
                    std::fs::read(p.path().join("cmdline"))
                        .is_ok_and(|c| c.starts_with(b"sleep\x00100.371\x00"))
                })
            })
        });
        assert!(none_left, "{mode}: a `sleep 100.371` outlived the run");
        assert_eq!(run_dirs(dir.path()), Vec::<String>::new(), "{mode}");
    }
}

#[test]
fn one_ctrl_c_ends_a_run_whose_workers_never_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    // A worker program that never says hello.
    let fake = crate::util::write_file(dir.path(), "silent-worker", "#!/bin/sh\nexec sleep 1000\n");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(TROOP);
    command
        .args(["run", "-j4", "true", ":::", "1"])
        .env("TROOP_WORKER_EXE", &fake)
        .current_dir(dir.path());
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut run = Background::start_command(command);
    let pid = run.pid();
    let starting = wait_until(Duration::from_secs(10), || descendants(pid).len() >= 4);
    assert!(
        starting,
        "the workers never started; stderr: {}",
        run.stderr()
    );
    let tree = descendants(pid);
    run.interrupt();
    let code = exit_code(&mut run, Duration::from_secs(10));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
}

// ---- The async mode under every way a run stops ----

/// Starts `troop run --mode async -j2 --joblog log EXTRA… 'touch DIR/start-{}; sleep 30'` over
/// 1 2 3 4 and waits until two tasks run.
fn async_batch(extra: &[&str]) -> (Background, tempfile::TempDir, Vec<Proc>) {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log").display().to_string();
    let script = format!("touch {d}/start-{{}}; sleep 30");
    let mut args = vec!["run", "--mode", "async", "-j2", "--joblog", &log];
    args.extend_from_slice(extra);
    args.extend([script.as_str(), ":::", "1", "2", "3", "4"]);
    let run = Background::start_in_group(&args, dir.path());
    let mut tree = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        tree = descendants(run.pid());
        marker_files(dir.path(), "start-").len() == 2
            && tree.iter().filter(|p| p.comm == "sleep").count() == 2
    });
    assert!(ready, "two tasks never ran; stderr: {}", run.stderr());
    (run, dir, tree)
}

/// Checks a stopped async run: its exit code, a job-log row with SIGTERM for each task that
/// ran, nothing left running, and its run directory gone.
#[track_caller]
fn async_stopped(mut run: Background, dir: tempfile::TempDir, tree: Vec<Proc>, code: i32) {
    let got = exit_code(&mut run, Duration::from_secs(10));
    let stderr = run.stderr();
    assert_eq!(got, code, "stderr: {stderr}");
    no_orphans(&tree);
    let rows = read_joblog(&dir.path().join("log"));
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(
        seqs,
        [1, 2],
        "a row for each stopped task; stderr: {stderr}"
    );
    assert!(rows.iter().all(|r| r.signal == 15), "{rows:#?}");
    assert_eq!(
        run_dirs(dir.path()),
        Vec::<String>::new(),
        "run directory left"
    );
}

#[test]
fn sigterm_stops_an_async_run_cleanly() {
    let (run, dir, tree) = async_batch(&[]);
    run.signal(Signal::SIGTERM);
    async_stopped(run, dir, tree, 130);
}

#[test]
fn a_second_ctrl_c_stops_an_async_run_cleanly() {
    let (run, dir, tree) = async_batch(&[]);
    run.interrupt();
    assert!(
        run.wait_for_stderr("interrupted", Duration::from_secs(5)),
        "no summary after the first Ctrl-C: {}",
        run.stderr()
    );
    run.interrupt();
    async_stopped(run, dir, tree, 130);
}

#[test]
fn halt_now_stops_an_async_run_cleanly() {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let script =
        format!("case {{}} in 1) sleep 0.5; exit 6;; *) touch {d}/start-{{}}; sleep 30;; esac");
    let mut run = Background::start_in_group(
        &[
            "run",
            "--mode",
            "async",
            "-j2",
            "--halt",
            "now,fail=1",
            "--joblog",
            log.to_str().unwrap(),
            &script,
            ":::",
            "1",
            "2",
            "3",
        ],
        dir.path(),
    );
    let tree_at = |run: &Background| descendants(run.pid());
    let mut tree = Vec::new();
    wait_until(Duration::from_secs(5), || {
        tree = tree_at(&run);
        tree.iter().any(|p| p.comm == "sleep")
    });
    let code = exit_code(&mut run, Duration::from_secs(10));
    assert_eq!(code, 6, "stderr: {}", run.stderr());
    no_orphans(&tree);
    let rows = read_joblog(&log);
    let mut got: Vec<(u64, i64, i64)> = rows.iter().map(|r| (r.seq, r.exitval, r.signal)).collect();
    got.sort();
    assert_eq!(got, [(1, 6, 0), (2, 0, 15)], "stderr: {}", run.stderr());
    assert_eq!(
        run_dirs(dir.path()),
        Vec::<String>::new(),
        "run directory left"
    );
}

#[test]
fn a_closed_stdout_stops_an_async_run_cleanly() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let mut child = Command::new(TROOP)
        .args([
            "run",
            "--mode",
            "async",
            "-j2",
            "--joblog",
            log.to_str().unwrap(),
            "--line-buffer",
            "echo {}; sleep 1; echo {}-more; sleep 30",
            ":::",
            "1",
            "2",
            "3",
        ])
        .env("TMPDIR", dir.path())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start troop");
    let pid = child.id() as i32;
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let mut tree = Vec::new();
    wait_until(Duration::from_secs(5), || {
        tree = descendants(pid);
        tree.iter().filter(|p| p.comm == "sleep").count() == 2
    });
    drop(reader);
    let mut status = None;
    let ended = wait_until(Duration::from_secs(20), || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    if !ended {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        ended,
        "troop kept running after its reader went away: {stderr}"
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(141),
        "{status:?}: {stderr}"
    );
    no_orphans(&tree);
    let rows = read_joblog(&log);
    assert_eq!(rows.len(), 2, "a row for each stopped task: {rows:#?}");
    assert_eq!(
        run_dirs(dir.path()),
        Vec::<String>::new(),
        "run directory left"
    );
}

#[test]
fn halt_now_starts_nothing_after_the_failure_in_async_mode() {
    let ran = troop(
        &[
            "run",
            "--mode",
            "async",
            "-j1",
            "--halt",
            "now,fail=1",
            "echo {}; exit {}",
            ":::",
            "0",
            "0",
            "3",
            "0",
            "0",
        ],
        "",
    );
    ran.assert_code(3);
    assert_eq!(ran.lines(), ["0", "0", "3"], "stderr: {}", ran.stderr);
}

// ---- Stopped workers ----

/// Starts `troop run -j1 --joblog log EXTRA… SCRIPT ::: 1 2` in a group of its own, waits
/// until its `sleep` runs, and stops (SIGSTOP) its worker.
fn with_a_stopped_worker(
    extra: &[&str],
    script: &str,
) -> (Background, tempfile::TempDir, Vec<Proc>) {
    let dir = temp_dir();
    let log = dir.path().join("log").display().to_string();
    let mut args = vec!["run", "-j1", "--joblog", &log];
    args.extend_from_slice(extra);
    args.extend([script, ":::", "1", "2"]);
    let run = Background::start_in_group(&args, dir.path());
    let mut tree = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        tree = descendants(run.pid());
        tree.iter().any(|p| p.comm == "sleep")
    });
    assert!(ready, "the task never ran; stderr: {}", run.stderr());
    let workers = crate::util::troop_workers(run.pid());
    assert_eq!(workers.len(), 1, "{}", describe(&workers));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(workers[0].pid), Signal::SIGSTOP)
        .expect("stop the worker");
    let stopped = wait_until(Duration::from_secs(5), || {
        crate::util::proc_stat(workers[0].pid).is_some_and(|p| p.state == 'T')
    });
    assert!(stopped, "the worker did not stop");
    (run, dir, tree)
}

#[test]
fn a_timeout_holds_when_the_worker_is_stopped() {
    let (mut run, dir, tree) = with_a_stopped_worker(&["--timeout", "1s"], "sleep 100");
    let code = exit_code(&mut run, Duration::from_secs(15));
    assert_eq!(code, 2, "both tasks timed out; stderr: {}", run.stderr());
    no_orphans(&tree);
    let rows = read_joblog(&dir.path().join("log"));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|r| r.exitval == -1), "{rows:#?}");
}

#[test]
fn one_ctrl_c_with_a_stopped_worker_lets_its_task_finish() {
    // Tasks run in troop's directory, the test's own.
    let (mut run, dir, tree) = with_a_stopped_worker(&[], "sleep 1; touch \"$PWD/done-{}\"");
    run.interrupt();
    let code = exit_code(&mut run, Duration::from_secs(15));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
    assert_eq!(
        marker_files(dir.path(), "done-"),
        ["1"],
        "task 1 finished, 2 never started"
    );
    let rows = read_joblog(&dir.path().join("log"));
    assert_eq!(
        rows.iter().map(|r| (r.seq, r.exitval)).collect::<Vec<_>>(),
        [(1, 0)]
    );
}

#[test]
fn two_ctrl_c_with_a_stopped_worker_stop_its_task() {
    let (mut run, _dir, tree) = with_a_stopped_worker(&[], "sleep 100");
    run.interrupt();
    assert!(
        run.wait_for_stderr("interrupted", Duration::from_secs(5)),
        "no summary after the first Ctrl-C: {}",
        run.stderr()
    );
    run.interrupt();
    let code = exit_code(&mut run, Duration::from_secs(15));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
}

#[test]
fn sigterm_with_a_stopped_worker_stops_its_task() {
    let (mut run, _dir, tree) = with_a_stopped_worker(&[], "trap '' TERM; sleep 100");
    run.signal(Signal::SIGTERM);
    let code = exit_code(&mut run, Duration::from_secs(15));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
}

#[test]
fn three_ctrl_c_with_a_stopped_worker_kill_everything() {
    let (mut run, _dir, tree) =
        with_a_stopped_worker(&["--term-seq", "TERM,20000"], "trap '' TERM; sleep 100");
    // Each Ctrl-C once the one before was taken in: signals sent closer together may merge
    // into one while the first is still pending, as the kernel does with any signal.
    for said in [
        "troop: interrupted",
        "troop: stopping",
        "troop: killing every",
    ] {
        run.interrupt();
        let heard = wait_until(Duration::from_secs(10), || run.stderr().contains(said));
        assert!(heard, "troop said {said:?}: {}", run.stderr());
    }
    let code = exit_code(&mut run, Duration::from_secs(15));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    no_orphans(&tree);
}

// ---- Percentage timeouts ----

#[test]
fn a_percentage_timeout_stops_the_slow_outlier_once_the_median_is_known() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let (code, _, stderr) = run_within(
        &[
            "run",
            "-j4",
            "--timeout",
            "200%",
            "--joblog",
            log.to_str().unwrap(),
            "sleep {}",
            ":::",
            "0.1",
            "0.1",
            "0.1",
            "3",
        ],
        20,
    );
    assert_eq!(code, 1, "the outlier failed; stderr: {stderr}");
    let rows = read_joblog(&log);
    let outlier = rows
        .iter()
        .find(|r| r.seq == 4)
        .expect("a row for the outlier");
    assert_eq!(outlier.exitval, -1, "recorded as timed out: {rows:#?}");
    assert!(
        outlier.runtime < 2.5,
        "the outlier ran to its end: {rows:#?}"
    );
    assert!(
        rows.iter().filter(|r| r.seq != 4).all(|r| r.exitval == 0),
        "{rows:#?}"
    );
}

#[test]
fn a_percentage_timeout_applies_to_a_task_that_started_before_any_success() {
    // Task 1 starts alone, before any run time is known; task 2 succeeds at once and sets the
    // limit to 0.2 s, which task 1 has long passed.
    let (code, stdout, stderr) = run_within(
        &[
            "run",
            "-j2",
            "-k",
            "--timeout",
            "200%",
            "sleep {}; echo {}",
            ":::",
            "5",
            "0.1",
        ],
        20,
    );
    assert_eq!(code, 1, "stderr: {stderr}");
    assert_eq!(stdout, "0.1\n");
}

// ---- Resource gates ----

/// MemTotal, in KiB.
fn mem_total_kib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("MemTotal in /proc/meminfo")
}

#[test]
fn memfree_above_total_memory_is_refused() {
    let (code, stdout, stderr) = run_within(&["run", "--memfree", "1000T", "echo", ":::", "a"], 10);
    assert_eq!(code, 255, "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("--memfree") && stderr.contains("never"),
        "the error names the option and why: {stderr:?}"
    );
}

#[test]
fn load_zero_is_refused() {
    let (code, stdout, stderr) = run_within(&["run", "--load", "0", "echo", ":::", "a"], 10);
    assert_eq!(code, 255, "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("--load 0"),
        "the error names the option: {stderr:?}"
    );
}

#[test]
fn a_run_held_back_by_memfree_says_once_what_it_waits_for() {
    let dir = temp_dir();
    // No machine has all of its memory free.
    let all = format!("{}K", mem_total_kib());
    let mut run = Background::start_in_group(
        &[
            "run",
            "-j2",
            "--memfree",
            &all,
            "echo",
            ":::",
            "1",
            "2",
            "3",
        ],
        dir.path(),
    );
    let said = run.wait_for_stderr("waiting for free memory", Duration::from_secs(10));
    assert!(
        said,
        "no word on what the run waits for: {:?}",
        run.stderr()
    );
    // Free memory is looked at every half second: give the gate a few looks.
    std::thread::sleep(Duration::from_millis(1500));
    run.interrupt();
    let code = exit_code(&mut run, Duration::from_secs(10));
    assert_eq!(code, 130, "stderr: {}", run.stderr());
    assert_eq!(run.stdout(), "", "a task ran");
    let stderr = run.stderr();
    assert_eq!(
        stderr.matches("waiting for free memory").count(),
        1,
        "said once: {stderr:?}"
    );
}

// ---- The default number of workers ----

#[test]
fn one_cpu_means_one_worker_by_default() {
    let taskset = Command::new("taskset").arg("--version").output();
    assert!(
        taskset.is_ok_and(|o| o.status.success()),
        "taskset (util-linux) is needed for this test"
    );
    let out = Command::new("taskset")
        .args([
            "-c",
            "0",
            TROOP,
            "run",
            "sleep 0.2; echo {%}",
            ":::",
            "1",
            "2",
            "3",
            "4",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run troop under taskset");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["1", "1", "1", "1"],
        "every task ran in slot 1"
    );
}

#[test]
fn a_percentage_timeout_too_long_to_count_stops_nothing() {
    let (code, stdout, stderr) = run_within(
        &[
            "run",
            "-j2",
            "-k",
            "--timeout",
            "100000000000000000000000000000%",
            "sleep {}; echo {}",
            ":::",
            "0.3",
            "0.1",
        ],
        20,
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(stdout, "0.3\n0.1\n");
}

#[test]
fn a_percentage_timeout_stops_a_slow_kernel_in_process_mode() {
    let dir = temp_dir();
    let log = dir.path().join("log.json");
    let (code, _, stderr) = run_within(
        &[
            "run",
            "-j2",
            "--timeout",
            "200%",
            "--joblog-json",
            log.to_str().unwrap(),
            "@sleep",
            "{}",
            ":::",
            "30000",
            "100",
        ],
        20,
    );
    assert_eq!(code, 1, "stderr: {stderr}");
    let records = crate::util::read_json_log(&log);
    let slow = records
        .iter()
        .find(|r| r["seq"].as_u64() == Some(1))
        .expect("a record for the slow kernel");
    assert_eq!(slow["outcome"], "timed-out", "{records:#?}");
}

#[test]
fn time_paused_with_ctrl_z_does_not_get_a_worker_killed() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let mut run = Background::start_in_group(
        &[
            "run",
            "-j1",
            "--timeout",
            "1s",
            "--joblog",
            log.to_str().unwrap(),
            "sleep 100",
            ":::",
            "1",
        ],
        dir.path(),
    );
    let pid = run.pid();
    let mut tree = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        tree = descendants(pid);
        tree.iter().any(|p| p.comm == "sleep")
    });
    assert!(ready, "the task never ran; stderr: {}", run.stderr());
    let group = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::killpg(group, Signal::SIGTSTP).expect("Ctrl-Z");
    let stopped = wait_until(Duration::from_secs(5), || {
        crate::util::proc_stat(pid).is_some_and(|p| p.state == 'T')
    });
    assert!(stopped, "troop did not stop; stderr: {}", run.stderr());
    // Paused well past the timeout and the grace the supervisor gives a worker.
    std::thread::sleep(Duration::from_secs(3));
    nix::sys::signal::killpg(group, Signal::SIGCONT).expect("fg");
    let code = exit_code(&mut run, Duration::from_secs(15));
    let stderr = run.stderr();
    assert_eq!(code, 1, "the task timed out; stderr: {stderr}");
    assert!(
        !stderr.contains("lost: worker"),
        "a worker was killed for the time paused: {stderr:?}"
    );
    no_orphans(&tree);
    let rows = read_joblog(&log);
    assert_eq!(
        rows.iter()
            .map(|r| (r.exitval, r.signal))
            .collect::<Vec<_>>(),
        [(-1, 15)],
        "stopped by its worker's own termination sequence"
    );
}

/// `--halt now` prints nothing of a task it stopped, and says which task decided, in GNU
/// parallel's words, after that task's output; the same in both modes and in GNU parallel.
#[test]
fn halt_now_drops_the_output_of_the_tasks_it_stops_and_names_the_deciding_one() {
    let script =
        "case {} in 1) sleep 0.5; echo one; exit 3;; 2) echo two-start; sleep 30; echo two;; esac";
    let args = ["-j2", "--halt", "now,fail=1", script, ":::", "1", "2"];
    let expected_err = format!("This job failed:\n{}\n", script.replace("{}", "1"));
    for mode in ["process", "thread"] {
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(&args);
        let (code, stdout, stderr) = run_within(&ours, 20);
        assert_eq!((code, stdout.as_str()), (3, "one\n"), "{mode}: {stderr}");
        assert!(
            stderr.contains(&format!("troop: {expected_err}")),
            "{mode}: {stderr:?}"
        );
    }
    if let Some(gnu) = gnu_parallel_in(None, &args, "") {
        assert_eq!((gnu.code, gnu.stdout.as_str()), (Some(3), "one\n"));
        assert!(gnu.stderr.contains(&expected_err), "{:?}", gnu.stderr);
    }
}
