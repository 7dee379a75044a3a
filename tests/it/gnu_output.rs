//! GNU parallel's output options, run in process and thread mode and checked against fixed
//! expectations and, when it is installed, against GNU parallel given the same arguments.

use crate::util::{Ran, check_refused, gnu_parallel_in, troop, troop_in};

/// The modes every option is checked in.
const MODES: [&str; 2] = ["process", "thread"];

#[track_caller]
fn check_in(dir: Option<&std::path::Path>, args: &[&str], stdin: &str, expected: &str) {
    crate::util::check_modes_like_parallel(dir, args, stdin, expected);
}

#[track_caller]
fn check(args: &[&str], stdin: &str, expected: &str) {
    check_in(None, args, stdin, expected);
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

/// Every file under `dir`, sorted, as `path=contents` lines (paths relative to `dir`).
fn listing(dir: &std::path::Path) -> String {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).expect("under root").display();
                let text = std::fs::read(&path).expect("read");
                out.push(format!("{name}={}", String::from_utf8_lossy(&text)));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out.join("|")
}

/// Start times and run times, which differ from run to run, as `T` and `R`.
fn without_times(table: &str) -> String {
    let times = regex::Regex::new(r"\d{10}\.\d{3}([,\t]|, .JobRuntime.: )\d+\.\d{3}").unwrap();
    times.replace_all(table, "T${1}R").into_owned()
}

/// Runs `troop run --mode M ARGS…` in a new directory per mode (and GNU parallel in another);
/// checks each prints `stdout` and leaves files whose [`listing`] is `files`.
#[track_caller]
fn check_files(args: &[&str], stdout: &str, files: &str) {
    for mode in MODES {
        let dir = crate::util::temp_dir();
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = troop_in(Some(dir.path()), &ours, "");
        ran.assert_ok_with(stdout);
        assert_eq!(listing(dir.path()), files, "troop {ours:?}");
    }
    let dir = crate::util::temp_dir();
    if let Some(gnu) = gnu_parallel_in(Some(dir.path()), args, "") {
        assert_eq!(gnu.stdout, stdout, "GNU parallel {args:?}");
        assert_eq!(listing(dir.path()), files, "GNU parallel {args:?}");
    }
}

#[test]
fn results_dir_has_a_level_per_argument_with_stdout_stderr_and_seq() {
    check_files(
        &[
            "-j1",
            "--results",
            "rr",
            "echo {}; echo e{} >&2",
            ":::",
            "a",
            "b c",
        ],
        "",
        "rr/1/a/seq=1|rr/1/a/stderr=ea\n|rr/1/a/stdout=a\n|\
         rr/1/b c/seq=2|rr/1/b c/stderr=eb c\n|rr/1/b c/stdout=b c\n",
    );
}

#[test]
fn results_dir_nests_the_arguments_of_several_sources() {
    check_files(
        &[
            "-j1",
            "--results",
            "rr",
            "echo",
            ":::",
            "a",
            ":::",
            "1",
            "2",
        ],
        "",
        "rr/1/a/2/1/seq=1|rr/1/a/2/1/stderr=|rr/1/a/2/1/stdout=a 1\n|\
         rr/1/a/2/2/seq=2|rr/1/a/2/2/stderr=|rr/1/a/2/2/stdout=a 2\n",
    );
}

#[test]
fn results_dir_escapes_slashes_and_backslashes_in_arguments() {
    check_files(
        &["-j1", "--results", "rr", "true", ":::", "a/b", "x\\y"],
        "",
        "rr/1/a\\_b/seq=1|rr/1/a\\_b/stderr=|rr/1/a\\_b/stdout=|\
         rr/1/x\\\\y/seq=2|rr/1/x\\\\y/stderr=|rr/1/x\\\\y/stdout=",
    );
}

#[test]
fn results_dir_levels_take_header_names() {
    check_files(
        &[
            "--header",
            ":",
            "--results",
            "rr",
            "echo",
            ":::",
            "f1",
            "a",
            ":::",
            "f2",
            "b",
        ],
        "",
        "rr/f1/a/f2/b/seq=1|rr/f1/a/f2/b/stderr=|rr/f1/a/f2/b/stdout=a b\n",
    );
}

#[test]
fn results_with_replacement_strings_names_the_files_or_the_directory() {
    check_files(
        &[
            "-j1",
            "--results",
            "out/{}/x",
            "echo {}; echo e >&2",
            ":::",
            "a",
        ],
        "",
        "out/a/x.err=e\n|out/a/x.seq=1|out/a/x=a\n",
    );
    check_files(
        &["-j1", "--results", "out/{#}/", "echo", ":::", "a"],
        "",
        "out/1/seq=1|out/1/stderr=|out/1/stdout=a\n",
    );
}

/// Runs troop (each mode) and GNU parallel in new directories and checks that the table `name`
/// they write is `expected`, times removed; troop exits with `code` (the failed tasks).
#[track_caller]
fn check_table_code(args: &[&str], name: &str, code: i32, expected: &str) {
    let read = |dir: &tempfile::TempDir| {
        let text = std::fs::read_to_string(dir.path().join(name)).expect("the table");
        without_times(&text)
    };
    for mode in MODES {
        let dir = crate::util::temp_dir();
        let mut ours = vec!["run", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = troop_in(Some(dir.path()), &ours, "");
        ran.assert_code(code);
        assert_eq!(ran.stdout, "", "the output is in the table, not printed");
        assert_eq!(read(&dir), expected, "troop {ours:?}");
    }
    let dir = crate::util::temp_dir();
    if gnu_parallel_in(Some(dir.path()), args, "").is_some() {
        assert_eq!(read(&dir), expected, "GNU parallel {args:?}");
    }
}

#[track_caller]
fn check_table(args: &[&str], name: &str, expected: &str) {
    check_table_code(args, name, 0, expected);
}

#[test]
fn results_csv_has_gnu_parallels_columns_and_quoting() {
    check_table(
        &[
            "-j1",
            "--results",
            "r.csv",
            "echo {}; echo e >&2",
            ":::",
            "a",
            "b,\"c",
            ":::",
            "1",
        ],
        "r.csv",
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,V1,V2,Stdout,Stderr\n\
         1,:,T,R,0,4,0,0,\"echo a 1; echo e >&2\",a,1,\"a 1\n\",\"e\n\"\n\
         2,:,T,R,0,7,0,0,\"echo 'b,\"\"c' 1; echo e >&2\",\"b,\"\"c\",1,\"b,\"\"c 1\n\",\"e\n\"\n",
    );
}

#[test]
fn results_tsv_quotes_fields_with_tabs_and_names_columns_by_header() {
    check_table(
        &["-j1", "--results", "r.tsv", "printf '{}\\tx'", ":::", "a"],
        "r.tsv",
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tV1\tStdout\tStderr\n\
         1\t:\tT\tR\t0\t3\t0\t0\t\"printf 'a\\tx'\"\ta\t\"a\tx\"\t\n",
    );
    check_table_code(
        &[
            "--header",
            ":",
            "--results",
            "h.csv",
            "exit 2 #{X}",
            ":::",
            "X",
            "a",
        ],
        "h.csv",
        1,
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,X,Stdout,Stderr\n\
         1,:,T,R,0,0,2,0,\"exit 2 #a\",a,,\n",
    );
}

#[test]
fn results_json_writes_a_line_per_task_as_gnu_parallel() {
    check_table(
        &[
            "-j1",
            "--results",
            "r.json",
            "echo {}",
            ":::",
            "a\"\\",
            ":::",
            "b",
        ],
        "r.json",
        "{ \"Seq\": 1, \"Host\": \":\", \"Starttime\": T, \"JobRuntime\": R, \"Send\": 0, \
         \"Receive\": 6, \"Exitval\": 0, \"Signal\": 0, \"Command\": \"echo 'a\\\"\\\\' b\", \
         \"V\": [ \"a\\\"\\\\\",\"b\" ], \"Stdout\": \"a\\\"\\\\ b\\u000a\", \"Stderr\": \"\" }\n",
    );
}

#[test]
fn results_refuses_an_empty_name_and_an_unwritable_table() {
    check_refused(&["--results", "", "echo", ":::", "a"], "--results");
    check_refused(
        &["--results", "/nonexistent-dir/r.csv", "echo", ":::", "a"],
        "--results",
    );
}

#[test]
fn files_prints_the_name_of_a_file_holding_each_tasks_stdout() {
    for mode in MODES {
        let tmp = crate::util::temp_dir();
        let ran: Ran = std::process::Command::new(crate::util::TROOP)
            .args([
                "run",
                "--mode",
                mode,
                "-k",
                "--files",
                "echo {}; echo e >&2",
            ])
            .args([":::", "a", "b"])
            .env("TMPDIR", tmp.path())
            .output()
            .expect("run troop")
            .into();
        ran.assert_code(0);
        let names = ran.lines();
        assert_eq!(names.len(), 2, "{}", ran.stdout);
        for (name, value) in names.iter().zip(["a\n", "b\n"]) {
            let path = std::path::Path::new(name);
            assert_eq!(path.parent(), Some(tmp.path()), "not in $TMPDIR: {name}");
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                file.len() == 12 && file.starts_with("par") && file.ends_with(".par"),
                "not named as GNU parallel names them: {file}"
            );
            assert_eq!(std::fs::read_to_string(path).unwrap(), value);
        }
        // Only the stdout files are left, and stderr goes nowhere, as in GNU parallel.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
        assert_eq!(ran.stderr, "");
    }
}

#[test]
fn files_are_tagged_like_output() {
    let tmp = crate::util::temp_dir();
    let ran: Ran = std::process::Command::new(crate::util::TROOP)
        .args(["run", "--files", "--tag", "echo", ":::", "c"])
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run troop")
        .into();
    ran.assert_code(0);
    let prefix = format!("c\t{}/par", tmp.path().display());
    assert!(ran.stdout.starts_with(&prefix), "{}", ran.stdout);
}

#[test]
fn group_cannot_be_combined_with_line_buffer() {
    // GNU parallel refuses the pair too: "--group cannot be combined with --line-buffer".
    check_refused(&["--group", "--line-buffer", "echo", ":::", "a"], "--group");
}

#[test]
fn tag_and_tagstring_tag_the_lines_of_a_dry_run() {
    check(
        &["-k", "--tag", "--dry-run", "echo", ":::", "a", "b c"],
        "",
        "a\techo a\nb c\techo 'b c'\n",
    );
    check(
        &["-k", "--tagstring", "{#}", "--dry-run", "echo", ":::", "a"],
        "",
        "1\techo a\n",
    );
}

#[test]
fn results_dir_of_a_pipe_task_has_no_argument_levels() {
    let expected = "rr/1/seq=1|rr/1/stderr=|rr/1/stdout=1\n|\
                    rr/2/seq=2|rr/2/stderr=|rr/2/stdout=2\n";
    for mode in MODES {
        let dir = crate::util::temp_dir();
        let args = [
            "run",
            "--mode",
            mode,
            "--pipe",
            "-N1",
            "--results",
            "rr/{#}/",
            "cat",
        ];
        troop_in(Some(dir.path()), &args, "1\n2\n").assert_ok_with("");
        assert_eq!(listing(dir.path()), expected, "troop {args:?}");
    }
    let dir = crate::util::temp_dir();
    let args = ["--pipe", "-N1", "--results", "rr/{#}/", "cat"];
    if gnu_parallel_in(Some(dir.path()), &args, "1\n2\n").is_some() {
        assert_eq!(listing(dir.path()), expected, "GNU parallel");
    }
}

#[test]
fn results_table_rows_follow_task_order_with_keep_order() {
    check_table(
        &[
            "-k",
            "-j2",
            "--results",
            "r.csv",
            "sleep",
            ":::",
            "0.5",
            "0",
        ],
        "r.csv",
        "Seq,Host,Starttime,JobRuntime,Send,Receive,Exitval,Signal,Command,V1,Stdout,Stderr\n\
         1,:,T,R,0,0,0,0,\"sleep 0.5\",0.5,,\n\
         2,:,T,R,0,0,0,0,\"sleep 0\",0,,\n",
    );
}

/// `--results DIR` cuts a value's directory to the longest name the file system takes, as GNU
/// parallel does, instead of failing on it.
#[test]
fn results_cut_long_values_to_the_longest_file_name() {
    let long = "a".repeat(300);
    let longer = format!("{long}b");
    for mode in ["process", "thread"] {
        let dir = crate::util::temp_dir();
        let out = dir.path().join("out");
        let ran = troop(
            &[
                "run",
                "--mode",
                mode,
                "--results",
                out.to_str().unwrap(),
                "echo",
                ":::",
                &long,
                &longer,
            ],
            "",
        );
        ran.assert_code(0);
        let cut = out.join("1").join("a".repeat(255));
        // Both values cut to the same name: the second task's files replace the first's.
        assert!(cut.join("stdout").is_file(), "{mode}: {}", ran.stderr);
        let stdout = std::fs::read_to_string(cut.join("stdout")).unwrap();
        assert!(stdout == format!("{long}\n") || stdout == format!("{longer}\n"));
        if let Some(gnu) = crate::util::gnu_parallel_in(
            Some(dir.path()),
            &["--results", "gnu", "echo", ":::", &long, &longer],
            "",
        ) {
            assert_eq!(gnu.code, Some(0));
            assert!(dir.path().join("gnu/1").join("a".repeat(255)).is_dir());
        }
    }
}
