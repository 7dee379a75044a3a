//! Exit codes: 0 when all succeed, the number of failed tasks up to 100, 101 beyond, as GNU
//! parallel does; checked against GNU parallel too when it is installed.

use crate::util::{Ran, gnu_parallel_in, troop};

/// Runs `troop run ARGS…` and, when installed, `parallel ARGS…`; checks both exit with `code`.
#[track_caller]
fn check_code(args: &[&str], stdin: &str, code: i32) -> Ran {
    let mut argv = vec!["run"];
    argv.extend_from_slice(args);
    let ran = troop(&argv, stdin);
    ran.assert_code(code);
    if let Some(gnu) = gnu_parallel_in(None, args, stdin) {
        assert_eq!(
            gnu.code,
            Some(code),
            "GNU parallel {args:?} (stderr: {})",
            gnu.stderr
        );
    }
    ran
}

#[test]
fn all_succeed_is_zero() {
    check_code(&["true", ":::", "a", "b", "c"], "", 0);
}

#[test]
fn nothing_to_do_is_zero() {
    check_code(&["false"], "", 0);
}

#[test]
fn the_number_of_failures() {
    check_code(&["exit {}", ":::", "0", "1", "0", "1"], "", 2);
    check_code(&["exit {}", ":::", "3", "0", "255", "1", "2"], "", 4);
}

#[test]
fn a_hundred_failures_is_a_hundred() {
    let input: String = (1..=100).map(|i| format!("{i}\n")).collect();
    check_code(&["-j2", "exit 1"], &input, 100);
}

#[test]
fn more_than_a_hundred_failures_is_101() {
    let input: String = (1..=150).map(|i| format!("{i}\n")).collect();
    check_code(&["-j2", "exit 1"], &input, 101);
}

#[test]
fn failures_in_thread_mode_count_the_same() {
    let input: String = (1..=150).map(|i| format!("{}\n", i % 2)).collect();
    let ran = troop(&["run", "--mode", "thread", "-j2", "exit {}"], &input);
    ran.assert_code(75);
}

#[test]
fn killed_task_is_a_failure() {
    check_code(&["-k", "kill -9 $$; echo never", ":::", "a"], "", 1);
}

#[test]
fn command_not_found_fails_only_its_task() {
    // `{1}` is the program: `echo` for two tasks, a missing program for one.
    let ran = check_code(
        &[
            "-k",
            "{1}",
            "{2}",
            ":::",
            "echo",
            "troop-no-such-program-xyz",
            "echo",
            ":::+",
            "first",
            "second",
            "third",
        ],
        "",
        1,
    );
    assert_eq!(
        ran.stdout, "first\nthird\n",
        "the other tasks' output is missing"
    );
    assert!(
        ran.stderr.contains("troop-no-such-program-xyz"),
        "{:?}",
        ran.stderr
    );
    assert!(ran.stderr.contains("not found"), "{:?}", ran.stderr);
}

#[test]
fn command_not_found_is_127_in_a_shell() {
    // The shell's status for a missing program is 127, the status troop records; a task that
    // prints the status of the same missing program shows it.
    check_code(
        &[
            "troop-no-such-program-xyz {} 2>/dev/null; echo $?",
            ":::",
            "a",
        ],
        "",
        0,
    )
    .assert_ok_with("127\n");
}

#[test]
fn every_missing_program_counts() {
    let ran = check_code(&["troop-no-such-program-xyz", ":::", "a", "b", "c"], "", 3);
    assert_eq!(ran.stdout, "");
    assert_eq!(
        ran.stderr.matches("troop-no-such-program-xyz").count(),
        3,
        "{:?}",
        ran.stderr
    );
}
