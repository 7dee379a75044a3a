//! `--dashboard` on a real (pseudo-)terminal: a row per worker with its pid, keys that stop,
//! grow, pause and kill, the terminal given back on every way out, and task output held until
//! then.

use std::path::Path;
use std::time::Duration;

use crate::pty::Term;
use crate::util::{comm, temp_dir, troop, troop_workers};

const LIMIT: Duration = Duration::from_secs(30);

fn dashboard(args: &[&str]) -> Term {
    let mut argv = vec!["run", "--dashboard"];
    argv.extend_from_slice(args);
    Term::troop(&argv, 30, 120)
}

/// The screen line of worker row `w` (`w1`, `w2`, …), if drawn.
fn row<'a>(screen: &'a str, w: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').split_whitespace().next() == Some(w))
}

fn row_has(screen: &str, w: &str, what: &str) -> bool {
    row(screen, w).is_some_and(|l| l.contains(what))
}

/// What was written after the dashboard left the alternate screen, lines as the terminal
/// got them.
fn after_dashboard(term: &Term) -> String {
    let raw = String::from_utf8_lossy(&term.raw()).into_owned();
    let leave = "\x1b[?1049l";
    raw.rsplit_once(leave)
        .map(|(_, after)| after.to_string())
        .unwrap_or_default()
}

#[track_caller]
fn ends_restored(term: &mut Term, code: i32) -> String {
    assert_eq!(term.wait(LIMIT), Some(code), "{}", term.contents());
    assert!(!term.alternate_screen(), "left in the alternate screen");
    after_dashboard(term)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_row_per_worker_shows_its_pid_in_process_mode() {
    let mut term = dashboard(&["-j2", "sleep", ":::", "5", "5"]);
    let troop_pid = term.child.id() as i32;
    let (ok, screen) = term.wait_screen(LIMIT, |s| {
        row_has(s, "w1", "running") && row_has(s, "w2", "running")
    });
    assert!(ok, "{screen}");
    assert!(term.alternate_screen());
    let workers = troop_workers(troop_pid);
    assert_eq!(workers.len(), 2, "{workers:?}");
    for w in &workers {
        let name = comm(w.pid).unwrap();
        let slot = name.trim_start_matches("troop-");
        let line = row(&screen, slot).unwrap_or_default();
        assert!(
            line.contains(&w.pid.to_string()),
            "{name} {} not on {line:?}",
            w.pid
        );
    }
    term.send(b"q");
    let after = ends_restored(&mut term, 0);
    assert!(after.contains("troop: 2 tasks, 0 failed"), "{after:?}");
}

#[test]
fn in_thread_mode_every_row_shows_troops_own_pid() {
    let mut term = dashboard(&["--mode", "thread", "-j2", "sleep", ":::", "5", "5"]);
    let pid = term.child.id().to_string();
    let (ok, screen) = term.wait_screen(LIMIT, |s| {
        row_has(s, "w1", &pid) && row_has(s, "w2", &pid) && s.contains("thread mode")
    });
    assert!(ok, "{screen}");
    term.send(b"q");
    ends_restored(&mut term, 0);
}

#[test]
fn plus_adds_a_worker_that_takes_tasks() {
    for mode in ["process", "thread"] {
        let dir = temp_dir();
        let slots = dir.path().join("slots");
        let script = format!("echo {{%}} >> {}; sleep 0.3", slots.display());
        let mut argv = vec!["--mode", mode, "-j1", &script, ":::"];
        let inputs: Vec<String> = (1..=40).map(|i| i.to_string()).collect();
        argv.extend(inputs.iter().map(String::as_str));
        let mut term = dashboard(&argv);
        let (ok, screen) = term.wait_screen(LIMIT, |s| row_has(s, "w1", "running"));
        assert!(ok, "{screen}");
        assert!(row(&screen, "w2").is_none(), "{screen}");
        term.send(b"+");
        let (ok, screen) = term.wait_screen(LIMIT, |s| row_has(s, "w2", "running"));
        assert!(ok, "{mode}: {screen}");
        term.send(b"q");
        ends_restored(&mut term, 0);
        let seen = lines_of(&slots);
        assert!(seen.contains(&"2".to_string()), "{mode}: {seen:?}");
    }
}

#[test]
fn q_drains_exits_0_and_prints_the_held_output_after_the_terminal_is_restored() {
    for mode in ["process", "thread"] {
        let mut term = dashboard(&[
            "--mode",
            mode,
            "-j2",
            "echo out-{}; echo err-{} >&2; sleep 1",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
        ]);
        let (ok, screen) = term.wait_screen(LIMIT, |s| {
            row_has(s, "w1", "running") && row_has(s, "w2", "running")
        });
        assert!(ok, "{screen}");
        term.send(b"q");
        let (ok, screen) = term.wait_screen(LIMIT, |s| s.contains("STOPPING"));
        assert!(ok, "{screen}");
        let after = ends_restored(&mut term, 0);
        // Raw mode is off: the terminal turns each newline into CR LF again.
        for held in ["out-1\r\n", "err-1\r\n", "out-2\r\n", "err-2\r\n"] {
            assert!(after.contains(held), "{mode}: {held:?} not in {after:?}");
        }
        assert!(
            !after.contains("out-6"),
            "{mode}: a task started after q: {after:?}"
        );
        let summary = after.find("troop: 2 tasks, 0 failed, 4 not started, wall ");
        assert!(summary > after.find("out-2"), "{mode}: {after:?}");
        // Nothing of the tasks' output was drawn over the dashboard.
        let raw = String::from_utf8_lossy(&term.raw()).into_owned();
        let during = &raw[..raw.len() - after.len()];
        assert!(!during.contains("out-1\n"), "{mode}: {during:?}");
        assert!(!during.contains("out-1\r\n"), "{mode}: {during:?}");
    }
}

#[test]
fn p_pauses_new_tasks_and_resumes_them() {
    let dir = temp_dir();
    let started = dir.path().join("started");
    let script = format!("echo {{}} >> {}; sleep 0.2", started.display());
    let inputs: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    let mut argv = vec!["-j1", &script, ":::"];
    argv.extend(inputs.iter().map(String::as_str));
    let mut term = dashboard(&argv);
    assert!(crate::util::wait_until(LIMIT, || lines_of(&started).len() >= 2));
    term.send(b"p");
    let (ok, screen) = term.wait_screen(LIMIT, |s| s.contains("PAUSED"));
    assert!(ok, "{screen}");
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = lines_of(&started).len();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        lines_of(&started).len(),
        paused_at,
        "a task started while paused"
    );
    term.send(b"p");
    let (ok, screen) = term.wait_screen(LIMIT, |s| !s.contains("PAUSED"));
    assert!(ok, "{screen}");
    assert!(
        crate::util::wait_until(LIMIT, || lines_of(&started).len() >= paused_at + 2),
        "no task started after resuming"
    );
    term.send(b"q");
    ends_restored(&mut term, 0);
}

#[test]
fn k_kills_the_selected_rows_task_by_a_signal() {
    for mode in ["process", "thread"] {
        let mut term = dashboard(&["--mode", mode, "-j2", "sleep", ":::", "60", "1"]);
        let (ok, screen) = term.wait_screen(LIMIT, |s| {
            row_has(s, "w1", "sleep 60") || row_has(s, "w2", "sleep 60")
        });
        assert!(ok, "{screen}");
        // The first row is selected: select the one running `sleep 60`.
        let on = if row_has(&screen, "w1", "sleep 60") {
            "w1"
        } else {
            term.send(b"\x1b[B");
            "w2"
        };
        // The task's process group must be known before it can be killed: press until it goes.
        let mut screen = String::new();
        for _ in 0..40 {
            term.send(b"k");
            let (ok, s) =
                term.wait_screen(Duration::from_millis(500), |s| s.contains("last failures"));
            screen = s;
            if ok {
                break;
            }
        }
        assert!(
            screen.contains(&format!("#1 {on}  signal 15  sleep 60")),
            "{mode}: {screen}"
        );
        let after = ends_restored(&mut term, 1);
        assert!(
            after.contains("troop: 2 tasks, 1 failed"),
            "{mode}: {after:?}"
        );
    }
}

#[test]
fn ctrl_c_interrupts_the_run_and_gives_the_terminal_back() {
    let mut term = dashboard(&["-j1", "sleep", ":::", "60", "60"]);
    let (ok, screen) = term.wait_screen(LIMIT, |s| row_has(s, "w1", "running"));
    assert!(ok, "{screen}");
    std::thread::sleep(Duration::from_millis(300));
    term.send(b"\x03");
    std::thread::sleep(Duration::from_millis(300));
    term.send(b"\x03");
    let code = term.wait(LIMIT);
    assert!(code.is_some_and(|c| c != 0), "{code:?}");
    assert!(!term.alternate_screen(), "left in the alternate screen");
}

#[test]
fn without_a_terminal_on_stderr_the_dashboard_is_a_usage_error() {
    let dir = temp_dir();
    let marker = dir.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let ran = troop(&["run", "--dashboard", &touch, ":::", "1"], "");
    ran.assert_code(255);
    assert!(ran.stderr.contains("--dashboard"), "{}", ran.stderr);
    assert!(!marker.exists(), "a task ran");
}

#[test]
fn stdout_redirected_to_a_file_is_written_at_once_not_held() {
    let dir = temp_dir();
    let path = dir.path().join("out");
    let file = std::fs::File::create(&path).unwrap();
    let args = [
        "run",
        "--dashboard",
        "-j1",
        "echo out-{}; sleep {}",
        ":::",
        "0",
        "3",
    ];
    let mut term = Term::spawn(crate::util::TROOP, &args, 30, 120, |c| {
        c.stdout(file);
    });
    let (ok, screen) = term.wait_screen(LIMIT, |s| row_has(s, "w1", "#2"));
    assert!(ok, "{screen}");
    assert!(term.alternate_screen());
    assert_eq!(lines_of(&path), ["out-0"], "the first task's output waits");
    let after = ends_restored(&mut term, 0);
    assert_eq!(lines_of(&path), ["out-0", "out-3"]);
    assert!(!after.contains("out-"), "{after:?}");
    assert!(after.contains("troop: 2 tasks, 0 failed"), "{after:?}");
}
