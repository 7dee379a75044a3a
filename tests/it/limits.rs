//! Limits on tasks and on the run: timeouts (a command's whole process group, and kernels),
//! `--halt`, retries, resource limits and gates, big outputs in bounded memory, and a reader
//! that goes away early.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{
    Background, Proc, TROOP, all_procs, cmdline, descendants, describe, kill9, marker_files,
    read_joblog, read_json_log, reap_or_kill, status_kib, temp_dir, troop, troop_in, troop_workers,
    wait_until,
};

/// Processes (not zombies) whose command line mentions `needle`.
fn procs_mentioning(needle: &str) -> Vec<Proc> {
    all_procs()
        .into_iter()
        .filter(|p| !matches!(p.state, 'Z' | 'X'))
        .filter(|p| cmdline(p.pid).is_some_and(|c| c.contains(needle)))
        .collect()
}

#[test]
fn a_timeout_stops_the_tasks_grandchildren_too() {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let log = dir.path().join("log");
    let script = format!("sh -c 'sleep 100 & echo $! > {d}/pid; sleep 100'");
    let mut run = Background::start_in(
        &[
            "run",
            "--timeout",
            "500ms",
            "--joblog",
            log.to_str().unwrap(),
            &script,
            ":::",
            "x",
        ],
        dir.path(),
    );
    let troop = run.pid();
    // Both sleeps: the background one (its pid in the file) and the one the script waits for.
    let mut sleeps: Vec<Proc> = Vec::new();
    let ready = wait_until(Duration::from_secs(10), || {
        let Some(bg) = std::fs::read_to_string(dir.path().join("pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        else {
            return false;
        };
        sleeps = descendants(troop)
            .into_iter()
            .filter(|p| p.comm == "sleep")
            .collect();
        sleeps.len() == 2 && sleeps.iter().any(|p| p.pid == bg)
    });
    assert!(
        ready,
        "the task never ran both sleeps; troop's processes:\n{}",
        describe(&descendants(troop))
    );
    let status = run.wait_for(Duration::from_secs(10));
    assert!(
        status.is_some(),
        "the timeout never fired; stderr: {}",
        run.stderr()
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "stderr: {}",
        run.stderr()
    );
    let bg: i32 = std::fs::read_to_string(dir.path().join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        sleeps.iter().any(|p| p.pid == bg),
        "the background sleep {bg} was not seen: {sleeps:?}"
    );
    let left = reap_or_kill(&sleeps, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "the timeout left these alive:\n{}",
        describe(&left)
    );
    let rows = read_joblog(&log);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].exitval, -1, "{rows:#?}");
    assert_eq!(rows[0].signal, 15, "stopped by the first TERM: {rows:#?}");
}

/// A kernel that runs far longer than its timeout stops anyway (by itself, or its worker is
/// killed and replaced), and the next task runs.
fn kernel_times_out(kernel: &str) {
    let dir = temp_dir();
    let log = dir.path().join("log.json");
    let ran = troop(
        &[
            "run",
            "-j1",
            "--timeout",
            "300ms",
            "--joblog-json",
            log.to_str().unwrap(),
            kernel,
            "{}",
            ":::",
            "60000",
            "1",
        ],
        "",
    );
    ran.assert_code(1);
    let mut records = read_json_log(&log);
    records.sort_by_key(|r| r["seq"].as_u64());
    let outcomes: Vec<(&str, i64)> = records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["exitval"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("timed-out", -1), ("success", 0)],
        "{records:#?}\nstderr: {}",
        ran.stderr
    );
}

#[test]
fn a_spinning_kernel_times_out() {
    kernel_times_out("@spin");
}

#[test]
fn a_sleeping_kernel_times_out() {
    kernel_times_out("@sleep");
}

#[test]
fn halt_now_on_the_first_failure_exits_with_its_code() {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    // Task 1 fails at once while task 2 sleeps; nothing after them may start.
    let script =
        format!("touch {d}/start-{{}}; case {{}} in 1) exit 7;; 2) sleep 30;; *) true;; esac");
    let ran = troop(
        &[
            "run",
            "-j2",
            "--halt",
            "now,fail=1",
            &script,
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
        ],
        "",
    );
    ran.assert_code(7);
    assert!(ran.stderr.contains("This job failed"), "{:?}", ran.stderr);
    let started = marker_files(dir.path(), "start-");
    assert!(
        started.iter().all(|n| n == "1" || n == "2"),
        "tasks started after the failure: {started:?}"
    );
    let mut left = Vec::new();
    let gone = wait_until(Duration::from_secs(5), || {
        left = procs_mentioning(&d);
        left.is_empty()
    });
    left.iter().for_each(kill9);
    assert!(gone, "halt now left a task running:\n{}", describe(&left));
}

#[test]
fn retry_on_retries_only_the_listed_failures() {
    let dir = temp_dir();
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "--retries",
            "2",
            "--retry-on",
            "75",
            "--retry-delay",
            "10ms",
            "--joblog-json",
            "log.json",
            "echo x >> tries-{}; exit {}",
            ":::",
            "1",
            "75",
        ],
        "",
    );
    ran.assert_code(2);
    let tries = |n: &str| {
        std::fs::read_to_string(dir.path().join(format!("tries-{n}")))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!((tries("1"), tries("75")), (1, 3));
    let mut records = read_json_log(&dir.path().join("log.json"));
    records.sort_by_key(|r| r["seq"].as_u64());
    let attempts: Vec<u64> = records
        .iter()
        .map(|r| r["attempts"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [1, 3], "{records:#?}");
}

#[test]
fn memory_limit_sets_the_address_space_limit() {
    let ran = troop(
        &[
            "run",
            "--memory-limit",
            "64M",
            "ulimit -v; : {}",
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_ok_with("65536\n");
    let ran = troop(&["run", "ulimit -v; : {}", ":::", "a"], "");
    ran.assert_code(0);
    assert_ne!(
        ran.stdout, "65536\n",
        "the limit leaked into a run without it"
    );
}

#[test]
fn nice_sets_the_tasks_niceness() {
    // Field 19 of /proc/self/stat is the niceness (cut's comm has no space in it).
    let ran = troop(
        &[
            "run",
            "--nice",
            "7",
            "cut -d' ' -f19 /proc/self/stat; : {}",
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_ok_with("7\n");
}

#[test]
fn memfree_holds_every_task_back_until_interrupted() {
    let dir = temp_dir();
    let d = dir.path().display().to_string();
    let script = format!("touch {d}/ran-{{}}");
    // No machine has all of its memory free (and more than it has is refused).
    let info = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let total_kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("MemTotal in /proc/meminfo");
    let all = format!("{total_kib}K");
    let mut run = Background::start_in_group(
        &[
            "run",
            "-j2",
            "--memfree",
            &all,
            &script,
            ":::",
            "1",
            "2",
            "3",
        ],
        dir.path(),
    );
    let troop = run.pid();
    let up = wait_until(Duration::from_secs(10), || troop_workers(troop).len() == 2);
    assert!(up, "the workers never started; stderr: {}", run.stderr());
    let tree = descendants(troop);
    // Free memory is looked at every half second: give the gate a few looks.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        marker_files(dir.path(), "ran-").is_empty(),
        "a task started with less free memory than --memfree"
    );
    run.interrupt();
    let status = run.wait_for(Duration::from_secs(5));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "stderr: {}",
        run.stderr()
    );
    assert!(marker_files(dir.path(), "ran-").is_empty(), "a task ran");
    let left = reap_or_kill(&tree, Duration::from_secs(10));
    assert!(left.is_empty(), "left alive:\n{}", describe(&left));
}

#[test]
fn gates_that_hold_nothing_back_run_everything() {
    let ran = troop(
        &[
            "run",
            "-k",
            "--memfree",
            "1K",
            "--load",
            "1000000",
            "echo",
            ":::",
            "a",
            "b",
        ],
        "",
    );
    ran.assert_ok_with("a\nb\n");
}

/// Starts a SHA-256 hasher reading its stdin: python's hashlib when there is a python, else
/// `sha256sum`.
fn hasher() -> Child {
    let python = Command::new("python3")
        .args([
            "-c",
            "import hashlib,sys\nh=hashlib.sha256()\nfor b in iter(lambda: sys.stdin.buffer.read(1<<20), b''): h.update(b)\nprint(h.hexdigest())",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    python.unwrap_or_else(|_| {
        Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sha256sum")
    })
}

/// The hex digest a hasher printed.
fn digest(mut hasher: Child) -> String {
    let mut out = String::new();
    hasher
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    hasher.wait().unwrap();
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Kills a child and its descendants when dropped (a failed test leaves nothing behind).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let tree = descendants(self.0.id() as i32);
            let _ = self.0.kill();
            tree.iter().for_each(kill9);
        }
        let _ = self.0.wait();
    }
}

#[test]
fn big_outputs_arrive_whole_in_bounded_memory() {
    const TASKS: usize = 50;
    const BYTES: usize = 20 * 1024 * 1024;
    let mut actual = hasher();
    let dir = temp_dir();
    let values: Vec<String> = (1..=TASKS).map(|n| n.to_string()).collect();
    let mut args = vec!["run", "-j2", "-k", "yes {} | head -c 20971520", ":::"];
    args.extend(values.iter().map(String::as_str));
    let stderr_path = dir.path().join("stderr");
    let child = Command::new(TROOP)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(actual.stdin.take().unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start troop");
    let mut run = Reaped(child);
    let pid = run.0.id() as i32;

    // The expected bytes, hashed while troop runs: each task's `yes N` cut at 20 MiB, in order.
    let mut expected = hasher();
    let mut sink = expected.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for n in 1..=TASKS {
            let line = format!("{n}\n");
            let mut chunk = line.repeat(BYTES / line.len() + 1);
            chunk.truncate(BYTES);
            sink.write_all(chunk.as_bytes()).expect("feed the hasher");
        }
    });

    // VmHWM only grows: the last sample before troop exits is its peak.
    let mut peak_kib = 0;
    let mut status = None;
    let finished = wait_until(Duration::from_secs(120), || {
        if let Some(kib) = status_kib(pid, "VmHWM") {
            peak_kib = kib;
        }
        status = run.0.try_wait().expect("try_wait");
        status.is_some()
    });
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(finished, "troop did not finish; stderr: {stderr}");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {stderr}");
    writer.join().expect("the expected bytes");
    let (ours, theirs) = (digest(actual), digest(expected));
    assert_eq!(ours.len(), 64, "no digest: {ours:?}");
    assert_eq!(
        ours, theirs,
        "troop's output differs from the tasks' (stderr: {stderr})"
    );
    println!("peak supervisor RSS (VmHWM) with {TASKS} x 20 MiB outputs: {peak_kib} KiB");
    assert!(peak_kib > 0, "VmHWM was never read");
    assert!(
        peak_kib < 64 * 1024,
        "the supervisor's peak RSS was {peak_kib} KiB with big outputs"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let dir = temp_dir();
    let stderr_path = dir.path().join("stderr");
    let child = Command::new(TROOP)
        .args(["run", "-j2", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start troop");
    let mut run = Reaped(child);
    let pid = run.0.id() as i32;
    // `seq 100000` as its input.
    let mut input = run.0.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let text: String = (1..=100_000).map(|n| format!("{n}\n")).collect();
        // troop stops reading once its output is gone: a broken pipe here is expected.
        let _ = input.write_all(text.as_bytes());
    });
    // `head -1`: read one line, then close the pipe.
    let mut reader = BufReader::new(run.0.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    drop(reader);
    let n: u32 = first
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("not an input line: {first:?}"));
    assert!((1..=100_000).contains(&n), "{first:?}");
    let mut status = None;
    let mut tree = Vec::new();
    let ended = wait_until(Duration::from_secs(20), || {
        if status.is_none() {
            let now = descendants(pid);
            if !now.is_empty() {
                tree = now;
            }
        }
        status = run.0.try_wait().expect("try_wait");
        status.is_some()
    });
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(ended, "troop kept running after its reader went away");
    feeder.join().unwrap();
    assert_eq!(stderr, "", "troop complained about the closed pipe");
    assert_eq!(status.and_then(|s| s.code()), Some(141));
    let left = reap_or_kill(&tree, Duration::from_secs(10));
    assert!(left.is_empty(), "left alive:\n{}", describe(&left));
}
