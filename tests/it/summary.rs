//! The summary of a run (`--summary`, or on a terminal after a failure) and SIGUSR1's list of
//! the running tasks.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::pty::Term;
use crate::util::{Background, marker_files, temp_dir, troop, troop_in, wait_until, write_file};

const MODES: [&str; 2] = ["process", "thread"];

/// The figure after `label` on the summary's line that starts with it.
fn figure<'a>(stderr: &'a str, label: &str) -> &'a str {
    stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stderr}"))
        .trim()
}

#[test]
fn the_summary_counts_tasks_failures_and_retries() {
    for mode in MODES {
        let dir = temp_dir();
        write_file(
            dir.path(),
            "flaky.sh",
            "if [ \"$1\" = x ]; then exit 5; fi\n\
             if [ \"$1\" = b ] && [ ! -e marker ]; then touch marker; exit 3; fi\n\
             sleep \"0.$1\" 2>/dev/null; true\n",
        );
        let ran = troop_in(
            Some(dir.path()),
            &[
                "run",
                "--mode",
                mode,
                "-j2",
                "--summary",
                "--retries",
                "2",
                "sh",
                "flaky.sh",
                ":::",
                "3",
                "b",
                "1",
                "x",
            ],
            "",
        );
        ran.assert_code(1);
        let err = &ran.stderr;
        assert!(err.contains("troop: summary"), "{err}");
        assert_eq!(
            figure(err, "tasks"),
            "4 (1 failed, 3 retries, 0 not started, 0 skipped)",
            "{mode}"
        );
        assert!(figure(err, "wall").ends_with(" s"), "{err}");
        assert!(figure(err, "CPU").contains("% of 2 workers"), "{err}");
        // The slowest task is the one that slept 0.3 s.
        assert!(
            figure(err, "slowest").starts_with("task 1: ")
                && figure(err, "slowest").ends_with(": sh flaky.sh 3"),
            "{mode}: {err}"
        );
        let slow_lines = err.lines().filter(|l| l.contains(" task ")).count();
        assert_eq!(slow_lines, 3, "{err}");
        let rss = figure(err, "peak RSS");
        match mode {
            "process" => assert!(rss.contains("w1 ") && rss.contains("w2 "), "{err}"),
            _ => assert!(rss.contains("worker threads"), "{err}"),
        }
    }
}

#[test]
fn no_summary_on_a_pipe_without_the_option() {
    for mode in MODES {
        for extra in [&[][..], &["-v"][..]] {
            let mut args = vec!["run", "--mode", mode];
            args.extend_from_slice(extra);
            args.extend(["exit", ":::", "3"]);
            let ran = troop(&args, "");
            ran.assert_code(1);
            assert_eq!(ran.stderr, "", "{mode} {extra:?}");
        }
    }
}

#[test]
fn a_failing_run_on_a_terminal_prints_the_summary() {
    let mut term = Term::troop(&["run", "-j2", "exit", ":::", "0", "4"], 24, 100);
    assert_eq!(term.wait(Duration::from_secs(30)), Some(1));
    let screen = term.contents();
    assert!(screen.contains("troop: summary"), "{screen}");
    assert!(
        screen.contains("tasks     2 (1 failed, 0 retries"),
        "{screen}"
    );
}

#[test]
fn sigusr1_lists_the_running_tasks_and_the_run_goes_on() {
    for mode in MODES {
        let dir = temp_dir();
        write_file(
            dir.path(),
            "wait.sh",
            "touch \"started-$1\"\nwhile [ ! -e go ]; do sleep 0.02; done\necho \"$1\"\n",
        );
        let run = Background::start_in(
            &[
                "run", "--mode", mode, "-j2", "sh", "wait.sh", ":::", "one", "two",
            ],
            dir.path(),
        );
        let mut run = run;
        let up = wait_until(Duration::from_secs(20), || {
            marker_files(dir.path(), "started-").len() == 2
        });
        assert!(up, "{mode}: the tasks never started: {}", run.stderr());
        run.signal(Signal::SIGUSR1);
        let listed = run.wait_for_stderr("task 2 on w", Duration::from_secs(10));
        let err = run.stderr();
        assert!(listed, "{mode}: no list: {err}");
        for (seq, word) in [(1, "one"), (2, "two")] {
            let line = err
                .lines()
                .find(|l| l.starts_with(&format!("troop: running: task {seq} on w")))
                .unwrap_or_else(|| panic!("{mode}: task {seq} not listed: {err}"));
            assert!(line.contains("(pid "), "{line}");
            assert!(line.ends_with(&format!(" s: sh wait.sh {word}")), "{line}");
        }
        std::fs::write(dir.path().join("go"), "").unwrap();
        let status = run.wait_for(Duration::from_secs(20)).expect("troop ends");
        assert_eq!(status.code(), Some(0), "{mode}: {}", run.stderr());
        let mut out: Vec<String> = run.stdout().lines().map(str::to_string).collect();
        out.sort();
        assert_eq!(out, ["one", "two"]);
    }
}
