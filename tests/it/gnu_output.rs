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

#[test]
fn tagstring_renders_replacement_strings_unquoted() {
    check(
        &["-k", "--tagstring", "{}-{#}", "echo", ":::", "a", "b c"],
        "",
        "a-1\ta\nb c-2\tb c\n",
    );
    check(
        &[
            "-k",
            "--tagstring",
            "{1}:{2}",
            "echo",
            ":::",
            "a",
            "b",
            ":::",
            "1",
        ],
        "",
        "a:1\ta 1\nb:1\tb 1\n",
    );
    check(
        &["-k", "--tagstring", "[{.}] x\"$y", "echo", ":::", "f.txt"],
        "",
        "[f] x\"$y\tf.txt\n",
    );
}

#[test]
fn tagstring_slot_is_the_tasks_worker() {
    check(
        &["-j1", "--tagstring", "{%}", "echo", ":::", "a"],
        "",
        "1\ta\n",
    );
}

#[test]
fn tagstring_reads_gnu_escapes() {
    check(
        &["--tag-string", "p\\tq\\101", "echo", ":::", "a"],
        "",
        "p\tqA\ta\n",
    );
}

#[test]
fn tagstring_tags_stderr_and_every_line() {
    check_stderr(
        &[
            "--tagstring",
            "T",
            "echo x; echo y; echo e{} >&2",
            ":::",
            "a",
        ],
        "T\tx\nT\ty\n",
        "T\tea\n",
    );
}

#[test]
fn tag_starts_again_after_a_carriage_return() {
    check(
        &["--tag", "printf 'a\\rb\\r\\nc'", ":::", "1"],
        "",
        "1\ta\r1\tb\r1\t\n1\tc",
    );
}

#[test]
fn ungroup_ignores_tagstring_and_colour() {
    check(
        &["-u", "--tagstring", "T", "--color", "echo", ":::", "a"],
        "",
        "a\n",
    );
}

/// Task 1's and task 2's colours, as GNU parallel 20221122 writes them without a terminal.
const COLOUR_1: &str = "\x1b[48;5;134;38;5;231m\x1b[K";
const COLOUR_2: &str = "\x1b[48;5;021;38;5;231m\x1b[K";
const RESET: &str = "\x1b[m";

#[test]
fn ctag_colours_the_tag_and_the_line_of_each_task() {
    check(
        &["-k", "--ctag", "echo", ":::", "a", "b"],
        "",
        &format!("{COLOUR_1}a\ta{RESET}\n{COLOUR_2}b\tb{RESET}\n"),
    );
}

#[test]
fn color_without_a_tag_colours_lines_and_ends_the_last_one() {
    check(
        &["-k", "--color", "printf 'x\\ny'", ":::", "1"],
        "",
        &format!("{COLOUR_1}x{RESET}\n{COLOUR_1}y{RESET}\n"),
    );
    check(
        &["-k", "--colour", "printf 'a\\rb'", ":::", "1"],
        "",
        &format!("{COLOUR_1}a{RESET}\r{COLOUR_1}b{RESET}\n"),
    );
}

#[test]
fn ctagstring_colours_a_tagstring() {
    check(
        &["--ctagstring", "X{}", "echo", ":::", "a"],
        "",
        &format!("{COLOUR_1}Xa\ta{RESET}\n"),
    );
}

#[test]
fn colours_follow_gnu_parallels_sequence() {
    // The 100th task's colour, and the wrap-around after all of them.
    let args: Vec<String> = (1..=300).map(|i| i.to_string()).collect();
    let mut all = vec!["-k", "-j1", "--color", "echo", ":::"];
    all.extend(args.iter().map(String::as_str));
    let ran = troop(&[&["run"][..], &all].concat(), "");
    ran.assert_code(0);
    let lines = ran.lines();
    assert_eq!(lines.len(), 300);
    assert_eq!(lines[0], format!("{COLOUR_1}1{RESET}"));
    assert_eq!(
        lines[99],
        format!("\x1b[48;5;028;38;5;231m\x1b[K100{RESET}")
    );
    if let Some(gnu) = gnu_parallel_in(None, &all, "") {
        assert_eq!(gnu.stdout, ran.stdout, "GNU parallel's colours differ");
    }
}
