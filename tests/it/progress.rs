//! `--progress`, `--bar` and `--eta`: a line drawn on a terminal that task output never tears,
//! plain lines (`--progress`) or nothing (`--bar`, `--eta`) without one.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use super::pty::Term;
use super::util::{Ran, TROOP, troop};

const LIMIT: Duration = Duration::from_secs(60);

/// `troop run --mode MODE -j2 OPTIONS… 'sleep 0.05; echo lineN' ::: 1…n` on a 60-row terminal.
fn on_a_terminal(mode: &str, options: &[&str], n: usize) -> Term {
    let numbers: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    let mut args = vec!["run", "--mode", mode, "-j2"];
    args.extend_from_slice(options);
    args.extend(["sleep 0.05; echo line{}", ":::"]);
    args.extend(numbers.iter().map(String::as_str));
    Term::troop(&args, 60, 100)
}

/// Every `N%` in what was drawn, in order.
fn percentages(raw: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for (i, _) in raw.match_indices('%') {
        let digits: String = raw[..i]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if let Ok(p) = digits.parse() {
            found.push(p);
        }
    }
    found
}

/// The task output lines on the screen, sorted, each as a whole row.
fn output_rows(screen: &str) -> Vec<String> {
    let mut rows: Vec<String> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| l.contains("line"))
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

fn expected_rows(n: usize) -> Vec<String> {
    let mut rows: Vec<String> = (1..=n).map(|i| format!("line{i}")).collect();
    rows.sort();
    rows
}

fn the_bar_advances_to_100_percent_without_tearing_output(mode: &str) {
    let mut term = on_a_terminal(mode, &["--bar"], 40);
    assert_eq!(term.wait(LIMIT), Some(0), "{}", term.contents());
    let raw = String::from_utf8_lossy(&term.raw()).into_owned();
    let seen = percentages(&raw);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "the bar went back: {seen:?}"
    );
    let distinct: BTreeSet<u32> = seen.iter().copied().collect();
    assert!(distinct.len() >= 3, "the bar hardly moved: {seen:?}");
    assert_eq!(seen.last(), Some(&100), "{raw:?}");
    let screen = term.contents();
    // Every output row is whole: the bar was cleared before each write and never left inside a
    // line.
    assert_eq!(output_rows(&screen), expected_rows(40), "{screen}");
    let last = screen.lines().map(str::trim_end).rfind(|l| !l.is_empty());
    let last = last.unwrap_or_default();
    assert!(last.contains("100%") && last.ends_with("40/40"), "{screen}");
}

#[test]
fn the_bar_advances_to_100_percent_without_tearing_output_in_process_mode() {
    the_bar_advances_to_100_percent_without_tearing_output("process");
}

#[test]
fn the_bar_advances_to_100_percent_without_tearing_output_in_thread_mode() {
    the_bar_advances_to_100_percent_without_tearing_output("thread");
}

#[test]
fn progress_on_a_terminal_shows_counts_rate_and_eta() {
    for mode in ["process", "thread"] {
        let mut term = on_a_terminal(mode, &["--progress"], 20);
        assert_eq!(term.wait(LIMIT), Some(0), "{}", term.contents());
        let raw = String::from_utf8_lossy(&term.raw()).into_owned();
        assert!(
            raw.contains(" running, ") && raw.contains("ETA "),
            "{raw:?}"
        );
        let screen = term.contents();
        assert_eq!(output_rows(&screen), expected_rows(20), "{screen}");
        let last = screen.lines().map(str::trim_end).rfind(|l| !l.is_empty());
        let last = last.unwrap_or_default();
        assert!(
            last.contains("100% 20/20 done, 0 failed, 0 running, ") && last.contains("/s, ETA 0s"),
            "{mode}: {screen}"
        );
    }
}

#[test]
fn eta_alone_on_a_terminal_shows_the_time_left() {
    let mut term = on_a_terminal("process", &["--eta"], 20);
    assert_eq!(term.wait(LIMIT), Some(0), "{}", term.contents());
    let raw = String::from_utf8_lossy(&term.raw()).into_owned();
    assert!(raw.contains(" left"), "{raw:?}");
    assert!(percentages(&raw).is_empty(), "--eta draws no bar: {raw:?}");
    let screen = term.contents();
    assert_eq!(output_rows(&screen), expected_rows(20), "{screen}");
    assert!(screen.contains("ETA 0s, 0 left"), "{screen}");
}

#[test]
fn streaming_input_shows_a_spinner_and_counts_then_the_bar() {
    for mode in ["process", "thread"] {
        // The input streams for about 1.5 s: the total is unknown until it ends.
        let script = format!(
            "for i in 1 2 3 4 5 6; do echo $i; sleep 0.25; done | {TROOP} run --mode {mode} -j2 \
             --bar 'echo line{{}}'"
        );
        let mut term = Term::spawn("sh", &["-c", &script], 40, 100, |_| {});
        assert_eq!(term.wait(LIMIT), Some(0), "{}", term.contents());
        let raw = String::from_utf8_lossy(&term.raw()).into_owned();
        let first_percent = raw.find('%').unwrap_or(raw.len());
        let before = &raw[..first_percent];
        assert!(
            before.contains(" done, ") && before.contains(" running"),
            "{mode}: no counts while the input streams: {raw:?}"
        );
        assert!(
            before.chars().any(|c| "⠁⠂⠄⡀⢀⠠⠐⠈".contains(c)),
            "{mode}: no spinner while the input streams: {raw:?}"
        );
        let screen = term.contents();
        assert_eq!(output_rows(&screen), expected_rows(6), "{mode}: {screen}");
        assert!(screen.contains("100% 6/6"), "{mode}: {screen}");
    }
}

fn run(mode: &str, options: &[&str], env: &[(&str, &str)]) -> Ran {
    let numbers: Vec<String> = (1..=20).map(|i| i.to_string()).collect();
    let mut command = Command::new(TROOP);
    command.args(["run", "--mode", mode, "-j2"]).args(options);
    command.args(["sleep 0.1; echo out{}; echo err{} >&2", ":::"]);
    command.args(&numbers).envs(env.iter().copied());
    let out = command.output().expect("run troop");
    let ran = Ran::from(out);
    ran.assert_code(0);
    ran
}

fn sorted(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn bar_and_eta_print_nothing_without_a_terminal() {
    for mode in ["process", "thread"] {
        let plain = run(mode, &[], &[]);
        let watched = run(mode, &["--bar", "--eta"], &[]);
        assert_eq!(sorted(&watched.stderr), sorted(&plain.stderr), "{mode}");
        assert_eq!(sorted(&watched.stdout), sorted(&plain.stdout), "{mode}");
        assert_eq!(sorted(&plain.stderr).len(), 20, "{mode}: {}", plain.stderr);
    }
}

/// The number done in a plain line: `troop: 12/20 done, …` → 12.
fn done_in(line: &str) -> u64 {
    let rest = line.strip_prefix("troop: ").expect("a progress line");
    let end = rest.find(['/', ' ']).expect("a count");
    rest[..end].parse().expect("a number")
}

#[test]
fn progress_without_a_terminal_prints_plain_lines_that_count_up() {
    for mode in ["process", "thread"] {
        let ran = run(
            mode,
            &["--progress"],
            &[("TROOP_PROGRESS_INTERVAL_MS", "200")],
        );
        assert_eq!(sorted(&ran.stdout).len(), 20, "{mode}: {}", ran.stdout);
        let lines: Vec<&str> = ran
            .stderr
            .lines()
            .filter(|l| l.starts_with("troop: "))
            .collect();
        let (last, periodic) = lines.split_last().expect("a final line");
        assert!(
            last.starts_with("troop: 20/20 done, 0 failed, 0 running, ")
                && last.contains(", took "),
            "{mode}: {}",
            ran.stderr
        );
        assert!(!periodic.is_empty(), "{mode}: {}", ran.stderr);
        assert!(
            periodic
                .iter()
                .all(|l| l.contains(" running, ") && l.contains("/s")),
            "{mode}: {}",
            ran.stderr
        );
        let counts: Vec<u64> = lines.iter().map(|l| done_in(l)).collect();
        assert!(
            counts.windows(2).all(|w| w[0] <= w[1]),
            "{mode}: {counts:?}"
        );
        assert!(counts[0] < 20, "{mode}: {counts:?}");
        // The task stderr is all there beside the progress lines.
        let task_errs = ran.stderr.lines().filter(|l| l.starts_with("err")).count();
        assert_eq!(task_errs, 20, "{mode}: {}", ran.stderr);
    }
}

#[test]
fn progress_without_a_terminal_is_quiet_until_the_end_of_a_short_run() {
    let ran = troop(&["run", "--progress", "echo", ":::", "a", "b"], "");
    ran.assert_code(0);
    assert_eq!(sorted(&ran.stdout), ["a", "b"]);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", ran.stderr);
    assert!(
        lines[0].starts_with("troop: 2/2 done, 0 failed, 0 running, "),
        "{}",
        ran.stderr
    );
}
