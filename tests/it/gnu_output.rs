//! GNU parallel's output options, run in process and thread mode and checked against fixed
//! expectations and, when it is installed, against GNU parallel given the same arguments.

use crate::util::{Ran, gnu_parallel_in, troop, troop_in};

/// The modes every option is checked in.
const MODES: [&str; 2] = ["process", "thread"];

/// Runs `troop run --mode M ARGS…` for each mode in `dir` and checks each prints `expected`
/// and succeeds; when GNU parallel is installed, checks `parallel ARGS…` prints the same.
#[track_caller]
fn check_in(dir: Option<&std::path::Path>, args: &[&str], stdin: &str, expected: &str) {
    for mode in MODES {
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = troop_in(dir, &ours, stdin);
        assert_eq!(
            ran.code,
            Some(0),
            "troop {ours:?} failed\n--- stdout\n{}\n--- stderr\n{}",
            ran.stdout,
            ran.stderr
        );
        assert_eq!(
            ran.stdout, expected,
            "troop {ours:?} (stderr: {})",
            ran.stderr
        );
    }
    if let Some(gnu_ran) = gnu_parallel_in(dir, args, stdin) {
        assert_eq!(
            gnu_ran.stdout, expected,
            "GNU parallel {args:?} disagrees with the expected output (stderr: {})",
            gnu_ran.stderr
        );
    }
}

#[track_caller]
fn check(args: &[&str], stdin: &str, expected: &str) {
    check_in(None, args, stdin, expected);
}

/// Checks that troop refuses `args` with exit status 255 and a message naming `option`.
#[track_caller]
fn check_refused(args: &[&str], option: &str) -> Ran {
    let mut ours = vec!["run"];
    ours.extend_from_slice(args);
    let ran = troop(&ours, "");
    ran.assert_code(255);
    assert!(
        ran.stderr.contains(option),
        "the message does not name {option}: {}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "");
    ran
}

#[test]
fn verbose_prints_each_command_before_its_output() {
    check(
        &["-k", "-v", "echo", "{}"],
        "a\nb\n",
        "echo a\na\necho b\nb\n",
    );
    check(&["-k", "-v", "echo {} | cat"], "x\n", "echo x | cat\nx\n");
    check(&["-k", "-v", "-v", "echo"], "a\n", "echo a\na\n");
}

#[test]
fn verbose_prints_the_command_of_a_task_with_no_output() {
    check(
        &["-k", "-v", "true", ":::", "a", "b"],
        "",
        "true a\ntrue b\n",
    );
}

#[test]
fn verbose_keeps_each_command_with_its_output_in_order() {
    check(
        &["-k", "-j2", "-v", "sleep {}; echo {}", ":::", "0.3", "0"],
        "",
        "sleep 0.3; echo 0.3\n0.3\nsleep 0; echo 0\n0\n",
    );
}

#[test]
fn verbose_command_line_is_tagged_like_the_output() {
    check(
        &["-k", "-v", "--tag", "echo", ":::", "a"],
        "",
        "a\techo a\na\ta\n",
    );
}

#[test]
fn verbose_with_line_buffer_prints_the_command_first() {
    check(
        &["-k", "--lb", "-v", "echo {}; echo {}", ":::", "a"],
        "",
        "echo a; echo a\na\na\n",
    );
}

#[test]
fn group_can_be_given_explicitly() {
    check(
        &[
            "-k",
            "--group",
            "-j2",
            "echo {}; sleep 0.1; echo {}",
            ":::",
            "a",
            "b",
        ],
        "",
        "a\na\nb\nb\n",
    );
}

#[test]
fn ungroup_passes_partial_lines_through_untagged() {
    // One job at a time, so the order is fixed: the output is exactly the bytes written.
    check(&["-j1", "-u", "printf", "{}"], "a\nb\n", "ab");
    check(
        &["-j1", "--ungroup", "--tag", "-k", "printf"],
        "a\nb\n",
        "ab",
    );
}

#[test]
fn ungroup_prints_the_verbose_command_too() {
    check(&["-j1", "-u", "-v", "echo"], "a\n", "echo a\na\n");
}

/// Runs troop in each mode and GNU parallel when installed, and checks stderr.
#[track_caller]
fn check_stderr(args: &[&str], expected_out: &str, expected_err: &str) {
    for mode in MODES {
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = troop(&ours, "");
        ran.assert_code(0);
        assert_eq!(
            (ran.stdout.as_str(), ran.stderr.as_str()),
            (expected_out, expected_err),
            "troop {ours:?}"
        );
    }
    if let Some(gnu) = gnu_parallel_in(None, args, "") {
        assert_eq!(
            (gnu.stdout.as_str(), gnu.stderr.as_str()),
            (expected_out, expected_err),
            "GNU parallel {args:?} disagrees with the expected output"
        );
    }
}

#[test]
fn verbose_long_form_prints_commands_to_stderr_not_stdout() {
    // GNU parallel's --verbose is -t, not -v.
    check_stderr(
        &["-j1", "--verbose", "echo", ":::", "a", "b c"],
        "a\nb c\n",
        "echo a\necho 'b c'\n",
    );
    check_stderr(&["-t", "--tag", "echo", ":::", "a"], "a\ta\n", "echo a\n");
}

#[test]
fn verbose_stderr_with_dry_run_prints_the_command_on_both() {
    check_stderr(
        &["-t", "--dry-run", "echo", ":::", "a"],
        "echo a\n",
        "echo a\n",
    );
}

#[test]
fn short_verbose_takes_no_value() {
    check_refused(&["--verbose=2", "echo"], "--verbose");
}
