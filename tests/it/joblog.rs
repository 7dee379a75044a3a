//! Job logs: the TSV log reads as GNU parallel's, the JSON-lines log tells attempts and
//! outcomes, and `--resume` / `--resume-failed` pick up where a log (troop's or GNU parallel's)
//! left off, matched by command line.

use std::path::Path;
use std::time::Duration;

use crate::util::{
    Background, JOBLOG_HEADER, gnu_parallel_in, parse_joblog, read_joblog, read_json_log,
    require_gnu_parallel, temp_dir, troop_in, wait_until,
};

/// `troop run --joblog log ARGS…` in `dir`.
fn with_log(dir: &Path, extra: &[&str], args: &[&str]) -> crate::util::Ran {
    let mut all = vec!["run", "--joblog", "log"];
    all.extend_from_slice(extra);
    all.extend_from_slice(args);
    troop_in(Some(dir), &all, "")
}

fn sorted_commands(dir: &Path) -> Vec<String> {
    let mut commands: Vec<String> = read_joblog(&dir.join("log"))
        .into_iter()
        .map(|r| r.command)
        .collect();
    commands.sort();
    commands
}

#[test]
fn the_tsv_log_has_gnu_parallels_shape() {
    let dir = temp_dir();
    let ran = with_log(
        dir.path(),
        &["-j2", "--timeout", "2s"],
        &["echo {}; exit {}", ":::", "0", "3", "0"],
    );
    ran.assert_code(1);
    let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(text.starts_with(JOBLOG_HEADER), "{text:?}");
    let shape =
        regex::Regex::new(r"^\d+\t:\t\d+\.\d{3}\t *\d+\.\d{3}\t\d+\t\d+\t-?\d+\t\d+\t.*$").unwrap();
    for line in text.lines().skip(1) {
        assert_eq!(line.split('\t').count(), 9, "{line:?}");
        assert!(shape.is_match(line), "{line:?}");
    }
    let mut rows = parse_joblog(&text);
    rows.sort_by_key(|r| r.seq);
    let summary: Vec<(u64, i64, i64, u64, &str)> = rows
        .iter()
        .map(|r| (r.seq, r.exitval, r.signal, r.receive, r.command.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 0, 0, 2, "echo 0; exit 0"),
            (2, 3, 0, 2, "echo 3; exit 3"),
            (3, 0, 0, 2, "echo 0; exit 0"),
        ]
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for r in &rows {
        assert_eq!((r.host.as_str(), r.send), (":", 0));
        assert!(
            r.starttime > now - 600.0 && r.starttime <= now + 1.0,
            "{r:?}"
        );
        assert!(r.runtime >= 0.0, "{r:?}");
    }

    // GNU parallel's own log has the same header and the same number of columns.
    if let Some(gnu) = gnu_parallel_in(
        Some(dir.path()),
        &["--joblog", "gnu", "echo {}; exit {}", ":::", "0", "3"],
        "",
    ) {
        assert_eq!(gnu.code, Some(1));
        let gnu_text = std::fs::read_to_string(dir.path().join("gnu")).unwrap();
        let gnu_rows = parse_joblog(&gnu_text);
        assert_eq!(gnu_rows.len(), 2);
        for line in gnu_text.lines().skip(1) {
            assert!(shape.is_match(line), "GNU parallel wrote {line:?}");
        }
    }
}

#[test]
fn the_json_log_counts_attempts_of_a_task_that_fails_twice() {
    let dir = temp_dir();
    // Each run appends a line to `tries-{}`; the third run sees three lines and succeeds.
    let script = "echo x >> tries-{}; n=$(wc -l < tries-{}); echo try $n; exit $((n < 3))";
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "--retries",
            "2",
            "--joblog-json",
            "log.json",
            "--joblog",
            "log",
            script,
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_ok_with("try 3\n");
    let records = read_json_log(&dir.path().join("log.json"));
    assert_eq!(records.len(), 1, "one record per task, not per attempt");
    let r = &records[0];
    assert_eq!(r["attempts"], 3, "{r}");
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["exitval"], 0, "{r}");
    assert_eq!(r["seq"], 1, "{r}");
    assert_eq!(r["input"], serde_json::json!(["a"]), "{r}");
    assert!(r["pid"].as_u64().is_some_and(|p| p > 0), "{r}");
    assert!(r["worker"].as_u64().is_some_and(|w| w >= 1), "{r}");
    for field in ["user_cpu", "sys_cpu", "max_rss_kib", "key"] {
        assert!(!r[field].is_null(), "{field} missing: {r}");
    }
    assert_eq!(read_joblog(&dir.path().join("log")).len(), 1);
}

#[test]
fn the_json_log_names_each_outcome() {
    let dir = temp_dir();
    let script = "case {} in ok) true;; fail) false;; slow) sleep 30;; killed) kill -9 $$;; esac";
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "-j2",
            "--joblog-json",
            "log.json",
            "--timeout",
            "300ms",
            script,
            ":::",
            "ok",
            "fail",
            "slow",
            "killed",
        ],
        "",
    );
    ran.assert_code(3);
    let mut records = read_json_log(&dir.path().join("log.json"));
    records.sort_by_key(|r| r["seq"].as_u64());
    let outcomes: Vec<(&str, i64, i64)> = records
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap(),
                r["exitval"].as_i64().unwrap(),
                r["signal"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("success", 0, 0),
            ("failed", 1, 0),
            ("timed-out", -1, 15),
            ("signaled", 0, 9),
        ],
        "{records:#?}"
    );

    // A program that cannot be found never starts. (A bare name that no PATH directory holds
    // goes to the shell, which may know it as a function, and fails there with 127.)
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "--joblog-json",
            "log.json",
            "/nonexistent/troop-no-such-program-y",
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_code(1);
    let records = read_json_log(&dir.path().join("log.json"));
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        (
            records[0]["outcome"].as_str(),
            records[0]["exitval"].as_i64()
        ),
        (Some("spawn-failed"), Some(127)),
        "{records:#?}"
    );
}

#[test]
fn resume_skips_logged_tasks_even_with_reordered_and_appended_input() {
    let dir = temp_dir();
    with_log(dir.path(), &[], &["echo {}", ":::", "a", "b", "c"]).assert_code(0);
    // Reordered and one more: only `d` runs.
    let ran = with_log(
        dir.path(),
        &["--resume"],
        &["echo {}", ":::", "c", "d", "a", "b"],
    );
    ran.assert_ok_with("d\n");
    assert_eq!(
        sorted_commands(dir.path()),
        ["echo a", "echo b", "echo c", "echo d"]
    );
    let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(text.matches("Seq\tHost").count(), 1, "one header: {text:?}");
    // Everything done: nothing runs.
    with_log(
        dir.path(),
        &["--resume"],
        &["echo {}", ":::", "d", "c", "b", "a"],
    )
    .assert_ok_with("");
}

#[test]
fn resume_failed_reruns_only_the_failures() {
    let dir = temp_dir();
    with_log(
        dir.path(),
        &["-k"],
        &["echo {}; test -e ok-{}", ":::", "a", "b", "c"],
    )
    .assert_code(3);
    std::fs::write(dir.path().join("ok-b"), "").unwrap();
    // --resume skips every recorded task, failed or not.
    with_log(
        dir.path(),
        &["--resume"],
        &["echo {}; test -e ok-{}", ":::", "a", "b", "c"],
    )
    .assert_ok_with("");
    // --resume-failed runs the failed ones again: b now succeeds, a and c fail again.
    let ran = with_log(
        dir.path(),
        &["-k", "--resume-failed"],
        &["echo {}; test -e ok-{}", ":::", "a", "b", "c"],
    );
    ran.assert_code(2);
    assert_eq!(ran.stdout, "a\nb\nc\n");
    std::fs::write(dir.path().join("ok-a"), "").unwrap();
    std::fs::write(dir.path().join("ok-c"), "").unwrap();
    let ran = with_log(
        dir.path(),
        &["-k", "--resume-failed"],
        &["echo {}; test -e ok-{}", ":::", "a", "b", "c"],
    );
    ran.assert_ok_with("a\nc\n");
    // The last record of each task says it succeeded: nothing is left to run.
    with_log(
        dir.path(),
        &["--resume-failed"],
        &["echo {}; test -e ok-{}", ":::", "a", "b", "c"],
    )
    .assert_ok_with("");
}

#[test]
fn a_log_for_another_command_is_refused() {
    let dir = temp_dir();
    with_log(dir.path(), &[], &["echo x {}", ":::", "a", "b"]).assert_code(0);
    let before = std::fs::read_to_string(dir.path().join("log")).unwrap();
    let ran = with_log(dir.path(), &["--resume"], &["touch y-{}", ":::", "a", "b"]);
    ran.assert_code(255);
    assert!(
        ran.stderr.contains("written for another command"),
        "{:?}",
        ran.stderr
    );
    assert!(!dir.path().join("y-a").exists() && !dir.path().join("y-b").exists());
    let after = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(before, after, "the refused log was changed");
}

#[test]
fn a_log_written_by_gnu_parallel_resumes() {
    if !require_gnu_parallel("resuming a log GNU parallel wrote") {
        return;
    }
    let dir = temp_dir();
    let gnu = gnu_parallel_in(
        Some(dir.path()),
        &["--joblog", "log", "echo {}", ":::", "a", "b"],
        "",
    )
    .unwrap();
    assert_eq!(gnu.code, Some(0), "{}", gnu.stderr);
    let ran = with_log(
        dir.path(),
        &["--resume"],
        &["echo {}", ":::", "a", "b", "c"],
    );
    ran.assert_ok_with("c\n");
    assert_eq!(sorted_commands(dir.path()), ["echo a", "echo b", "echo c"]);
    let text = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(text.matches("Seq\tHost").count(), 1, "{text:?}");
}

/// Starts `troop run` with `log_flags` in `dir` on one task, `value`, that waits for `dir/go`,
/// and waits until that task is running (so troop holds its logs).
fn hold_logs(dir: &Path, log_flags: &[&str], value: &str) -> Background {
    let mut args = vec!["run"];
    args.extend_from_slice(log_flags);
    args.extend_from_slice(&[
        "touch held; while [ ! -e go ]; do sleep 0.05; done; echo {}",
        ":::",
        value,
    ]);
    let first = Background::start_in(&args, dir);
    assert!(
        wait_until(Duration::from_secs(20), || dir.join("held").exists()),
        "the first run did not start its task: {}",
        first.stderr()
    );
    first
}

#[test]
fn a_second_run_on_a_locked_job_log_is_refused_naming_the_holder() {
    let dir = temp_dir();
    let cases = [
        (&["--joblog", "log"][..], "a"),
        (&["--joblog", "log", "--resume"], "b"),
        (&["--joblog-json", "log.json"], "c"),
    ];
    for (flags, value) in cases {
        let _ = std::fs::remove_file(dir.path().join("go"));
        let _ = std::fs::remove_file(dir.path().join("held"));
        let mut first = hold_logs(dir.path(), flags, value);
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["touch ran-{}", ":::", "second"]);
        let second = troop_in(Some(dir.path()), &args, "");
        second.assert_code(255);
        assert!(
            second
                .stderr
                .contains(&format!("is in use by pid {}", first.pid())),
            "{flags:?}: {:?}",
            second.stderr
        );
        assert!(
            !dir.path().join("ran-second").exists(),
            "{flags:?}: the refused run ran a task"
        );
        std::fs::write(dir.path().join("go"), "").unwrap();
        let status = first.wait_for(Duration::from_secs(30));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", first.stderr());
        assert_eq!(first.stdout(), format!("{value}\n"));
    }
    // The logs hold the rows of the runs that held them, whole.
    let rows = read_joblog(&dir.path().join("log"));
    let commands: Vec<&str> = rows
        .iter()
        .map(|r| &r.command[r.command.len() - 6..])
        .collect();
    assert_eq!(commands, ["echo a", "echo b"], "{rows:?}");
    assert_eq!(read_json_log(&dir.path().join("log.json")).len(), 1);
}

#[test]
fn concurrent_runs_on_one_job_log_never_tear_it() {
    let dir = temp_dir();
    let runs: Vec<_> = (0..4)
        .map(|i| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let seq: Vec<String> = (0..40).map(|n| format!("{i}-{n}")).collect();
                let mut args = vec!["run", "-j4", "--joblog", "log", "sleep 0.01; echo {}"];
                args.push(":::");
                args.extend(seq.iter().map(String::as_str));
                troop_in(Some(&dir), &args, "")
            })
        })
        .collect();
    let mut refused = 0;
    for run in runs {
        let ran = run.join().unwrap();
        match ran.code {
            Some(0) => {}
            Some(255) => {
                assert!(ran.stderr.contains("is in use by pid"), "{}", ran.stderr);
                assert_eq!(ran.stdout, "", "a refused run ran tasks");
                refused += 1;
            }
            _ => panic!("{ran:?}"),
        }
    }
    // The log is whole: the 40 rows of the one run that wrote it last.
    let rows = read_joblog(&dir.path().join("log"));
    assert_eq!(rows.len(), 40, "{refused} refused; {rows:?}");
    let run_of = |r: &crate::util::JobRow| r.command.split(' ').nth(3).unwrap()[..1].to_string();
    assert!(
        rows.iter().all(|r| run_of(r) == run_of(&rows[0])),
        "{rows:?}"
    );
}
