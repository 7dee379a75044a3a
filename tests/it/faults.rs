//! Faults injected into a running batch: a worker or the supervisor killed with SIGKILL in the
//! middle of a task, a bootstrap socket probed by another user, and input that cannot be run.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::util::{
    Background, JobRow, Proc, TROOP, cmdline, descendants, describe, environ, is_gone,
    marker_files, read_joblog, read_json_log, reap_or_kill, require_root, temp_dir, troop,
    troop_in, wait_until, worker_of, write_file,
};

/// The task whose command line holds `needle`, once it runs: its shell, or that shell's child.
fn task_process(troop: i32, needle: &str) -> Option<Proc> {
    descendants(troop)
        .into_iter()
        .find(|p| cmdline(p.pid).is_some_and(|c| c.contains(needle)))
}

/// Runs five one-second tasks on two workers, SIGKILLs the worker running task 2 while the task
/// runs, and checks the job log: with `--retries 1` every task succeeds; without, exactly task 2
/// is recorded as lost to signal 9 (Exitval -1) and every other task succeeds.
fn kill_a_worker_mid_task(start: &str, retries: bool) {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let json = dir.path().join("log.json");
    let script = format!("sh -c 'echo {{}} > {d}/started-{{}}; sleep 1; echo done {{}}'");
    let mut args = vec![
        "run",
        "-j2",
        "--start",
        start,
        "--joblog",
        log.to_str().unwrap(),
        "--joblog-json",
        json.to_str().unwrap(),
    ];
    if retries {
        args.extend(["--retries", "1"]);
    }
    args.push(&script);
    args.extend([":::", "1", "2", "3", "4", "5"]);
    let launched = unix_now();
    let mut run = Background::start_in(&args, dir.path());
    let troop = run.pid();

    // Task 2 has started: its marker exists and a worker runs its shell.
    let needle = format!("{d}/started-2");
    let mut victim = None;
    let mut task = None;
    let ready = wait_until(Duration::from_secs(10), || {
        if !dir.path().join("started-2").exists() {
            return false;
        }
        task = task_process(troop, &needle);
        victim = task.as_ref().and_then(|t| worker_of(t.pid));
        victim.is_some()
    });
    assert!(
        ready,
        "task 2 never ran on a worker; troop's processes:\n{}\nstderr: {}",
        describe(&descendants(troop)),
        run.stderr()
    );
    let victim = victim.unwrap();
    // The task's processes (its shell and `sleep 1`) must not outlive their worker.
    let task_procs: Vec<Proc> = descendants(victim.pid);
    let before: Vec<Proc> = descendants(troop);
    let marker_seen = unix_now();
    kill(Pid::from_raw(victim.pid), Signal::SIGKILL).expect("kill the worker");
    let killed = unix_now();

    let status = run.wait_for(Duration::from_secs(30));
    let stderr = run.stderr();
    assert!(
        status.is_some(),
        "troop hung after a worker was killed; stderr: {stderr}"
    );
    let orphans = reap_or_kill(&before, Duration::from_secs(10));
    assert!(
        orphans.is_empty(),
        "left alive after the run:\n{}",
        describe(&orphans)
    );
    assert!(is_gone(&victim) && task_procs.iter().all(is_gone));

    let rows = read_joblog(&log);
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5], "one row per task: {rows:#?}");
    let stdout = run.stdout();
    if retries {
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "with --retries 1 the lost task runs again and succeeds; stderr: {stderr}"
        );
        for row in &rows {
            assert_eq!(
                (row.exitval, row.signal),
                (0, 0),
                "with --retries 1 every task succeeds: {row:?}"
            );
        }
        for n in 1..=5 {
            assert!(stdout.contains(&format!("done {n}\n")), "{stdout:?}");
        }
    } else {
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "one lost task is one failure; stderr: {stderr}"
        );
        for row in &rows {
            let expected = if row.seq == 2 { (-1, 9) } else { (0, 0) };
            assert_eq!(
                (row.exitval, row.signal),
                expected,
                "only task 2 was lost: {row:?}"
            );
        }
        assert!(!stdout.contains("done 2"), "{stdout:?}");
        assert!(stderr.contains("task 2 lost"), "{stderr:?}");
        check_lost_row(&rows, &read_json_log(&json), victim.pid, &script);
        // The row tells when task 2 started (before its marker was seen) and that it ran until
        // its worker was killed.
        let row = rows.iter().find(|r| r.seq == 2).unwrap();
        assert!(
            row.starttime >= launched - 0.01 && row.starttime <= marker_seen + 0.01,
            "Starttime {} is not between the launch {launched} and the marker {marker_seen}",
            row.starttime
        );
        let end = row.starttime + row.runtime;
        assert!(
            end >= marker_seen - 0.01 && end <= killed + 2.0,
            "Starttime + JobRuntime = {end}, but the worker was killed at {killed}: {row:?}"
        );
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Checks every field of task 2's rows, lost with worker `victim` (SIGKILL), in the TSV and
/// JSON logs.
#[track_caller]
fn check_lost_row(rows: &[JobRow], json: &[serde_json::Value], victim: i32, script: &str) {
    let row = rows.iter().find(|r| r.seq == 2).unwrap();
    let command = script.replace("{}", "2");
    assert_eq!(
        (row.host.as_str(), row.send, row.receive),
        (":", 0, 0),
        "a lost task received nothing that was kept: {row:?}"
    );
    assert_eq!((row.exitval, row.signal), (-1, 9), "{row:?}");
    assert_eq!(row.command, command);
    assert!(row.runtime > 0.0 && row.runtime < 30.0, "{row:?}");
    let lost: Vec<&serde_json::Value> = json.iter().filter(|v| v["seq"] == 2).collect();
    assert_eq!(lost.len(), 1, "{json:#?}");
    let v = lost[0];
    assert_eq!(v["host"], ":");
    assert_eq!(v["pid"], victim, "the pid of the worker that was lost: {v}");
    assert!(v["worker"] == 1 || v["worker"] == 2, "{v}");
    assert_eq!(
        (&v["send"], &v["receive"], &v["exitval"], &v["signal"]),
        (&0.into(), &0.into(), &(-1).into(), &9.into()),
        "{v}"
    );
    assert_eq!(
        (&v["command"], &v["key"]),
        (&command.clone().into(), &command.into())
    );
    assert_eq!(v["input"], serde_json::json!(["2"]));
    assert_eq!(
        (&v["attempts"], &v["outcome"]),
        (&1.into(), &"worker-lost".into())
    );
    let start = v["start"].as_f64().unwrap();
    let runtime = v["runtime"].as_f64().unwrap();
    assert!((start - row.starttime).abs() < 0.002, "{v} vs {row:?}");
    assert!((runtime - row.runtime).abs() < 0.002, "{v} vs {row:?}");
    assert_eq!(
        (&v["user_cpu"], &v["sys_cpu"], &v["max_rss_kib"]),
        (&0.0.into(), &0.0.into(), &0.into()),
        "troop cannot measure a task whose worker died: {v}"
    );
}

#[test]
fn a_killed_spawned_worker_is_replaced_and_its_task_retried() {
    kill_a_worker_mid_task("spawn", true);
}

#[test]
fn a_killed_forked_worker_is_replaced_and_its_task_retried() {
    kill_a_worker_mid_task("fork", true);
}

#[test]
fn a_killed_spawned_worker_loses_only_its_task_and_its_row_tells_the_truth() {
    kill_a_worker_mid_task("spawn", false);
}

#[test]
fn a_killed_forked_worker_loses_only_its_task_and_its_row_tells_the_truth() {
    kill_a_worker_mid_task("fork", false);
}

/// How many times each task started, from its counter file (one line per start).
fn start_counts(dir: &Path) -> BTreeMap<u32, usize> {
    marker_files(dir, "start-")
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(format!("start-{n}"))).unwrap();
            (n.parse().unwrap(), text.lines().count())
        })
        .collect()
}

#[test]
fn a_batch_resumes_after_the_supervisor_is_killed() {
    const TASKS: u32 = 20;
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let script = format!("echo x >> {d}/start-{{}}; sleep 0.3; touch {d}/done-{{}}");
    let values: Vec<String> = (1..=TASKS).map(|n| n.to_string()).collect();
    let mut args = vec![
        "run",
        "-j2",
        "--joblog",
        log.to_str().unwrap(),
        &script,
        ":::",
    ];
    args.extend(values.iter().map(String::as_str));
    let mut run = Background::start_in(&args, dir.path());
    let pid = run.pid();

    // Mid-batch: some tasks done, two running (their counter written, their sleep going).
    let mut tree = Vec::new();
    let ready = wait_until(Duration::from_secs(20), || {
        let done = marker_files(dir.path(), "done-").len();
        let started = marker_files(dir.path(), "start-").len();
        tree = descendants(pid);
        let sleeping = tree.iter().filter(|p| p.comm == "sleep").count();
        done >= 6 && started == done + 2 && sleeping == 2
    });
    assert!(
        ready,
        "the batch did not reach its middle; troop's processes:\n{}\nstderr: {}",
        describe(&tree),
        run.stderr()
    );
    run.kill9();
    let logged_at_kill: Vec<JobRow> = read_joblog(&log);
    let started_at_kill = start_counts(dir.path());
    let orphans = reap_or_kill(&tree, Duration::from_secs(10));
    assert!(
        orphans.is_empty(),
        "10 s after `kill -9` of troop these are still alive:\n{}",
        describe(&orphans)
    );
    // Nor is any task of the killed run (their command lines name the test's directory).
    let mut strays = Vec::new();
    let none = wait_until(Duration::from_secs(10), || {
        strays = crate::util::all_procs()
            .into_iter()
            .filter(|p| !matches!(p.state, 'Z' | 'X'))
            .filter(|p| cmdline(p.pid).is_some_and(|c| c.contains(&d)))
            .collect();
        strays.is_empty()
    });
    assert!(
        none,
        "tasks of the killed run still alive:\n{}",
        describe(&strays)
    );
    assert!(
        logged_at_kill.len() >= 6 && logged_at_kill.len() < TASKS as usize,
        "the kill came mid-batch: {logged_at_kill:?}"
    );

    let mut args = vec![
        "run",
        "-j2",
        "--joblog",
        log.to_str().unwrap(),
        "--resume",
        &script,
        ":::",
    ];
    args.extend(values.iter().map(String::as_str));
    troop(&args, "").assert_code(0);

    // Tasks the job log recorded at the kill ran once; the (at most two) running then may have
    // started twice; every task finished.
    let logged: Vec<u64> = logged_at_kill.iter().map(|r| r.seq).collect();
    let counts = start_counts(dir.path());
    let mut twice = Vec::new();
    for n in 1..=TASKS {
        assert!(
            dir.path().join(format!("done-{n}")).exists(),
            "task {n} never finished"
        );
        let count = counts.get(&n).copied().unwrap_or(0);
        let recorded = logged.contains(&(n as u64));
        let running = !recorded && started_at_kill.contains_key(&n);
        match count {
            1 => {}
            2 if running => twice.push(n),
            _ => panic!(
                "task {n} started {count} times (recorded at the kill: {recorded}, running then: \
                 {running}); counts {counts:?}"
            ),
        }
    }
    assert!(
        twice.len() <= 2,
        "more tasks ran twice than were running: {twice:?}"
    );
    // The log now records every task once.
    let rows = read_joblog(&log);
    let mut seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=TASKS as u64).collect::<Vec<_>>(), "{rows:#?}");
    assert!(rows.iter().all(|r| r.exitval == 0 && r.signal == 0));
}

/// Tries to connect to the socket at `path` as user `nobody`: whether it connected, and the
/// probe's stderr.
fn connect_as_nobody(path: &str) -> (bool, String) {
    // A python that user nobody may execute (not one under root's home).
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3");
    let probe = Command::new("setpriv")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            python,
            "-c",
            "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])",
            path,
        ])
        .output()
        .expect("run setpriv");
    (
        probe.status.success(),
        String::from_utf8_lossy(&probe.stderr).into_owned(),
    )
}

/// The bootstrap socket of a worker that has not connected yet: another user cannot connect to
/// it even when troop runs under umask 000, and the run's token is not on the worker's argv.
#[test]
fn the_bootstrap_socket_is_private_whatever_the_umask() {
    if !require_root("connecting to the socket as another user") {
        return;
    }
    // Everything on the way to troop's $TMPDIR is open to other users, so only the directory
    // troop makes there can keep them out.
    let dir = temp_dir();
    let open = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(dir.path(), 0o755);
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    open(&tmp, 0o777);
    let fake = write_file(dir.path(), "fake-worker", "#!/bin/sh\nsleep 5\n");
    open(&fake, 0o755);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"umask 000; exec "$0" run -j1 echo ::: a"#)
        .arg(TROOP)
        .env("TROOP_WORKER_EXE", &fake)
        .env("TMPDIR", &tmp);
    let run = Background::start_command(command);
    let troop = run.pid();

    let mut found = None;
    let ready = wait_until(Duration::from_secs(10), || {
        found = crate::util::children(troop).into_iter().find_map(|p| {
            let env = environ(p.pid);
            let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            Some((p, get("TROOP_WORKER_SERVER")?, get("TROOP_WORKER_TOKEN")?))
        });
        found.is_some()
    });
    assert!(
        ready,
        "troop did not start the fake worker; stderr: {}",
        run.stderr()
    );
    let (fake_proc, server, token) = found.unwrap();
    let socket = Path::new(&server);
    let socket_dir = socket.parent().expect("the socket is in a directory");
    assert!(
        socket.starts_with(&tmp),
        "the socket {server} is not under $TMPDIR {}",
        tmp.display()
    );

    assert!(!token.is_empty());
    let argv = cmdline(fake_proc.pid).unwrap_or_default();
    assert!(
        !argv.contains(&token),
        "the token is on the worker's command line: {argv:?}"
    );
    let mode = std::fs::metadata(socket_dir)
        .expect("the socket's directory exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode,
        0o700,
        "{} has mode {mode:o} under umask 000",
        socket_dir.display()
    );
    // The same probe reaches a socket that is open to everyone (a stream socket, so it gets as
    // far as the wrong socket type): a refusal below comes from the directory's mode.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let control = dir.path().join("control.sock");
    let _listener =
        std::os::unix::net::UnixListener::bind(&control).expect("bind a control socket");
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, control_err) = connect_as_nobody(control.to_str().unwrap());
    assert!(
        !control_err.contains("Permission denied") && control_err.contains("Error"),
        "the probe cannot reach an open socket as user nobody (connected: {ok}): {control_err}"
    );

    let (connected, probe_err) = connect_as_nobody(&server);
    assert!(
        !connected && probe_err.contains("PermissionError"),
        "user nobody connecting to {server}: connected {connected}, stderr {probe_err}"
    );
    drop(run);
    let left = reap_or_kill(&[fake_proc], Duration::from_secs(10));
    assert!(left.is_empty(), "{}", describe(&left));
}

#[test]
fn empty_input_runs_nothing_and_succeeds() {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let ran = troop(&["run", &format!("touch {d}/ran-{{}}")], "");
    ran.assert_ok_with("");
    assert!(marker_files(dir.path(), "ran-").is_empty());
    write_file(dir.path(), "empty", "");
    let ran = troop_in(
        Some(dir.path()),
        &["run", "touch ran-{}", "::::", "empty"],
        "",
    );
    ran.assert_ok_with("");
    assert!(marker_files(dir.path(), "ran-").is_empty());
}

#[test]
fn a_missing_command_is_127_in_the_log_and_the_batch_goes_on() {
    let dir = temp_dir();
    let log = dir.path().join("log");
    let ran = troop(
        &[
            "run",
            "-j1",
            "-k",
            "--joblog",
            log.to_str().unwrap(),
            "{}",
            ":::",
            "true",
            "troop-no-such-program-x",
            "echo",
        ],
        "",
    );
    ran.assert_code(1);
    assert_eq!(ran.stdout, "\n", "echo still ran; stderr: {}", ran.stderr);
    assert!(
        ran.stderr.contains("troop-no-such-program-x"),
        "{}",
        ran.stderr
    );
    let mut rows = read_joblog(&log);
    rows.sort_by_key(|r| r.seq);
    let exits: Vec<(u64, i64)> = rows.iter().map(|r| (r.seq, r.exitval)).collect();
    assert_eq!(exits, [(1, 0), (2, 127), (3, 0)], "{rows:#?}");
}

#[test]
fn an_unwritable_job_log_is_refused_before_any_task_starts() {
    let dir = temp_dir();
    let side = dir.path().join("side-effect");
    let ran = troop(
        &[
            "run",
            "--joblog",
            "/nonexistent/dir/log",
            "touch",
            side.to_str().unwrap(),
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("/nonexistent/dir/log"),
        "{:?}",
        ran.stderr
    );
    assert!(
        !side.exists(),
        "a task ran although the job log was refused"
    );
}

#[test]
fn a_bad_timeout_is_quoted() {
    let ran = troop(&["run", "--timeout", "garbage", "echo", ":::", "a"], "");
    ran.assert_code(255);
    assert!(ran.stderr.contains("`garbage`"), "{:?}", ran.stderr);
    assert_eq!(ran.stdout, "");
}

/// The run's private directory in `$TMPDIR` (where workers spill big output) is removed by the
/// workers when the supervisor dies, as it is by the supervisor when a run ends. Workers remove
/// it before they exit, so it must be gone once they are; three rounds, since a slip may depend
/// on timing.
fn run_dir_goes_with_a_killed_supervisor(start: &str) {
    for round in 1..=3 {
        let dir = temp_dir();
        let mut run = Background::start_in(
            &[
                "run", "-j2", "--start", start, "sleep", "{}", ":::", "30", "30",
            ],
            dir.path(),
        );
        let pid = run.pid();
        let tmpdir = run.dir().to_path_buf();
        let run_dirs = || marker_files(&tmpdir, &format!("troop-{pid}-"));
        let mut tree = Vec::new();
        let ready = wait_until(Duration::from_secs(10), || {
            tree = descendants(pid);
            tree.iter().filter(|p| p.comm == "sleep").count() == 2 && !run_dirs().is_empty()
        });
        assert!(
            ready,
            "the tasks never ran, or no run directory in $TMPDIR; troop's processes:\n{}",
            describe(&tree)
        );
        run.kill9();
        let left = reap_or_kill(&tree, Duration::from_secs(10));
        assert!(left.is_empty(), "left alive:\n{}", describe(&left));
        let removed = wait_until(Duration::from_secs(2), || run_dirs().is_empty());
        assert!(
            removed,
            "--start {start}, round {round}: after `kill -9` of troop and the end of all its \
             workers, its run directory troop-{pid}-{:?} is still in $TMPDIR",
            run_dirs()
        );
    }
}

#[test]
fn a_killed_supervisors_run_dir_is_removed_with_spawned_workers() {
    run_dir_goes_with_a_killed_supervisor("spawn");
}

#[test]
fn a_killed_supervisors_run_dir_is_removed_with_forked_workers() {
    run_dir_goes_with_a_killed_supervisor("fork");
}

/// A worker announces a command's process group only once the command has run a moment; a
/// worker killed before that leaves a command troop has not heard of. It is reparented to
/// troop (a child subreaper), which kills it: the announcement is put off for the whole run
/// here, so only that sweep can clean up.
fn an_unannounced_command_of_a_killed_worker_is_swept(start: &str) {
    let dir = temp_dir();
    let mut command = std::process::Command::new(crate::util::TROOP);
    command
        .args(["run", "-j1", "--start", start, "sleep", "{}", ":::", "30"])
        .current_dir(dir.path())
        .env("TROOP_ANNOUNCE_AFTER_MS", "600000");
    let mut run = Background::start_command(command);
    let troop = run.pid();
    let mut sleep = None;
    let found = wait_until(Duration::from_secs(10), || {
        sleep = descendants(troop).into_iter().find(|p| p.comm == "sleep");
        sleep.is_some()
    });
    assert!(
        found,
        "the task never ran:\n{}",
        describe(&descendants(troop))
    );
    let sleep = sleep.unwrap();
    let worker = worker_of(sleep.pid).expect("the task's worker");
    kill(Pid::from_raw(worker.pid), Signal::SIGKILL).expect("kill the worker");
    let status = run.wait_for(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "one lost task: {}",
        run.stderr()
    );
    let gone = wait_until(Duration::from_secs(5), || is_gone(&sleep));
    assert!(
        gone,
        "--start {start}: the command of the killed worker outlived it: {sleep:?}"
    );
}

#[test]
fn an_unannounced_command_of_a_killed_spawned_worker_is_swept() {
    an_unannounced_command_of_a_killed_worker_is_swept("spawn");
}

#[test]
fn an_unannounced_command_of_a_killed_forked_worker_is_swept() {
    an_unannounced_command_of_a_killed_worker_is_swept("fork");
}

/// Commands of in-process workers (thread, gil, async) are troop's own children: they die with
/// troop when it is killed, as process workers' commands die with their workers.
#[test]
fn killing_the_supervisor_kills_the_commands_of_in_process_workers() {
    for mode in ["thread", "gil", "async"] {
        let dir = temp_dir();
        let mut run = Background::start_in(
            &[
                "run", "--mode", mode, "-j2", "sleep", "{}", ":::", "30", "30",
            ],
            dir.path(),
        );
        let troop = run.pid();
        let mut sleeps = Vec::new();
        let found = wait_until(Duration::from_secs(10), || {
            sleeps = descendants(troop)
                .into_iter()
                .filter(|p| p.comm == "sleep")
                .collect();
            sleeps.len() == 2
        });
        assert!(
            found,
            "{mode}: the tasks never ran:\n{}",
            describe(&descendants(troop))
        );
        run.kill9();
        let gone = wait_until(Duration::from_secs(5), || sleeps.iter().all(is_gone));
        let left: Vec<Proc> = sleeps.into_iter().filter(|p| !is_gone(p)).collect();
        for p in &left {
            crate::util::kill9(p);
        }
        assert!(
            gone,
            "{mode}: commands outlived troop:\n{}",
            describe(&left)
        );
    }
}

/// The last task's worker dies with nothing else left to run: with `--retries 1` the task still
/// runs again (its slot starts a new worker) and the run does not end before it; without,
/// the run fails with that task lost, not exit 0.
#[test]
fn the_last_task_of_a_killed_worker_is_retried_not_dropped() {
    for start in ["spawn", "fork"] {
        for retries in [true, false] {
            let dir = temp_dir();
            let flag = dir.path().join("killed");
            let script = format!(
                "sleep 0.{{}}; if [ {{}} = 3 ] && mkdir {} 2>/dev/null; then kill -9 $PPID; fi; echo {{}}",
                flag.display()
            );
            let mut args = vec!["run", "--start", start, "-j2"];
            if retries {
                args.extend(["--retries", "1"]);
            }
            args.extend([script.as_str(), ":::", "1", "2", "3"]);
            let ran = troop(&args, "");
            let mut lines = ran.lines();
            lines.sort();
            if retries {
                ran.assert_code(0);
                assert_eq!(lines, ["1", "2", "3"], "{start}: {}", ran.stderr);
            } else {
                assert_eq!(
                    ran.code,
                    Some(1),
                    "{start}: one task failed: {}",
                    ran.stderr
                );
                assert_eq!(lines, ["1", "2"], "{start}");
            }
            assert!(
                ran.stderr.contains("task 3 lost"),
                "{start}: {}",
                ran.stderr
            );
        }
    }
}
