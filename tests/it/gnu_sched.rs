//! GNU parallel's scheduling and shell options (`-P`, `--delay`, `--shuf`, `-q`, `--shellquote`,
//! `--tmpdir`, `--env`, `-j FILE`), run in process and thread mode and checked against fixed
//! expectations and, when it is installed, against GNU parallel given the same arguments.

use crate::util::{check_refused, temp_dir, troop};

/// The modes every option is checked in.
const MODES: [&str; 2] = ["process", "thread"];

#[track_caller]
fn check(args: &[&str], stdin: &str, expected: &str) {
    crate::util::check_modes_like_parallel(None, args, stdin, expected);
}

#[test]
fn max_procs_is_an_alias_of_jobs() {
    check(
        &["-k", "-P", "1", "echo", "{%}", "{}", ":::", "a", "b", "c"],
        "",
        "1 a\n1 b\n1 c\n",
    );
    check(
        &["-k", "--max-procs=1", "echo", "{%}", "{}", ":::", "a", "b"],
        "",
        "1 a\n1 b\n",
    );
}

/// The start times (seconds since the epoch) the job log records, in order.
fn start_times(joblog: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(joblog).expect("job log");
    let mut times: Vec<f64> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.split('\t')
                .nth(2)
                .expect("a start time")
                .parse()
                .expect("a number")
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

#[test]
fn delay_spaces_the_starts_of_tasks() {
    let dir = temp_dir();
    for mode in MODES {
        let log = dir.path().join(format!("{mode}.log"));
        let log_arg = log.to_string_lossy().into_owned();
        troop(
            &[
                "run", "--mode", mode, "-j3", "--delay", "1s", "--joblog", &log_arg, "true", ":::",
                "1", "2", "3",
            ],
            "",
        )
        .assert_code(0);
        let times = start_times(&log);
        assert_eq!(times.len(), 3);
        // The delay is kept between the moments troop starts tasks; a loaded machine may take
        // a while longer to start a command, so the job log's start times get some slack.
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= 0.5,
                "{mode}: tasks started {:.3} s apart, far less than --delay 1s: {times:?}",
                pair[1] - pair[0]
            );
        }
        assert!(
            times[2] - times[0] >= 1.5,
            "{mode}: three starts took less than two delays: {times:?}"
        );
    }
}

#[test]
fn shuf_runs_every_task_once_in_a_random_order_numbered_as_run() {
    let dir = temp_dir();
    let items: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    for mode in MODES {
        let log = dir.path().join(format!("{mode}.log"));
        let log_arg = log.to_string_lossy().into_owned();
        let mut args = vec![
            "run", "--mode", mode, "-j1", "--shuf", "--joblog", &log_arg, "echo", "{#}", "{}",
            ":::",
        ];
        args.extend(items.iter().map(String::as_str));
        let ran = troop(&args, "");
        ran.assert_code(0);
        let lines = ran.lines();
        assert_eq!(lines.len(), 200);
        // `{#}` numbers the tasks in the order they run, as in GNU parallel.
        let seqs: Vec<String> = lines
            .iter()
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(seqs, items, "{mode}: {{#}} counts the tasks as run");
        let mut values: Vec<u32> = lines
            .iter()
            .map(|l| {
                l.split(' ')
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .expect("a value")
            })
            .collect();
        assert_ne!(
            values,
            (1..=200).collect::<Vec<_>>(),
            "{mode}: the input order is kept"
        );
        values.sort_unstable();
        assert_eq!(
            values,
            (1..=200).collect::<Vec<_>>(),
            "{mode}: every task once"
        );
        let log_text = std::fs::read_to_string(&log).expect("job log");
        let logged: Vec<&str> = log_text
            .lines()
            .skip(1)
            .map(|l| l.split('\t').next().unwrap_or_default())
            .collect();
        assert_eq!(
            logged,
            items.iter().map(String::as_str).collect::<Vec<_>>(),
            "{mode}"
        );
    }
}

#[test]
fn shellquote_prints_the_input_quoted_as_gnu_parallel_does() {
    check(
        &[
            "-k",
            "--shellquote",
            ":::",
            "a b",
            "plain",
            "a,b",
            "",
            "$x",
            "'a",
            "a'",
            "''",
        ],
        "",
        "'a b'\nplain\n'a,b'\n''\n'$x'\n\"'\"'a'\n'a'\"'\"\n\"'\"''\"'\"\n",
    );
    check(&["--shellquote"], "a b\n$c\n", "'a b'\n'$c'\n");
    check(
        &["-k", "--shellquote", "echo", ":::", "a b", "c"],
        "",
        "'echo '\"'\"'a b'\"'\"\n'echo c'\n",
    );
}

#[test]
fn quote_passes_each_command_word_as_one_word() {
    check(
        &["-q", "echo", "a  b", "$HOME", ":::", "x y"],
        "",
        "a  b $HOME x y\n",
    );
    check(
        &[
            "-q",
            "sh",
            "-c",
            "echo \"$0|$1\"",
            "{}",
            "{}x",
            ":::",
            "p q",
        ],
        "",
        "p q|p qx\n",
    );
    check(
        &["-q", "-I", "XX", "echo", "a XX;", ":::", "p q"],
        "",
        "a p q;\n",
    );
    check(&["--quote", "printf", "%s;\\n", ":::", "a;b"], "", "a;b;\n");
}

#[test]
fn tmpdir_holds_the_run_directory_and_is_the_commands_tmpdir() {
    let dir = temp_dir();
    let tmp = dir.path().to_string_lossy().into_owned();
    check(
        &["--tmpdir", &tmp, "echo $TMPDIR {}", ":::", "1"],
        "",
        &format!("{tmp} 1\n"),
    );
    for mode in MODES {
        let ran = troop(
            &["run", "--mode", mode, "--tmpdir", &tmp, "ls", ":::", &tmp],
            "",
        );
        ran.assert_code(0);
        assert!(
            ran.stdout.starts_with("troop-"),
            "{mode}: the run's directory is in --tmpdir: {}",
            ran.stdout
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "the run's directory is removed at the end"
    );
}

#[test]
fn env_is_accepted_and_the_variable_reaches_the_command() {
    let home = std::env::var("HOME").unwrap_or_default();
    check(
        &["--env", "HOME", "echo $HOME {}", ":::", "1"],
        "",
        &format!("{home} 1\n"),
    );
    // `_` names every variable; here it changes nothing.
    for mode in MODES {
        troop(
            &[
                "run",
                "--mode",
                mode,
                "--env",
                "_",
                "echo $HOME",
                ":::",
                "1",
            ],
            "",
        )
        .assert_ok_with(&format!("{home} 1\n"));
    }
}

#[test]
fn bad_scheduling_values_are_refused_naming_the_option() {
    check_refused(&["--delay", "soon", "echo", ":::", "1"], "--delay");
    check_refused(&["--delay=-1", "echo", ":::", "1"], "--delay");
    check_refused(
        &["--tmpdir", "/nonexistent/troop", "echo", ":::", "1"],
        "--tmpdir",
    );
    check_refused(&["--env", "A B", "echo", ":::", "1"], "--env");
    check_refused(&["-P", "many", "echo", ":::", "1"], "many");
}

/// The `{%}` slot each of the tasks `first..` ran in, from lines `N SLOT`.
fn slots_from(stdout: &str, first: u32) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, _)| n.parse::<u32>().is_ok_and(|n| n >= first))
        .map(|(_, slot)| slot.to_string())
        .collect()
}

/// `troop run -j FILE`: the file is read again when a task ends. The first task writes `after`
/// into the file; every other task takes 0.3 s.
fn jobs_file_run(mode: &str, before: &str, after: &str) -> String {
    let dir = temp_dir();
    let file = dir.path().join("jobs");
    std::fs::write(&file, format!("{before}\n")).expect("write");
    let file = file.to_string_lossy().into_owned();
    let command =
        format!("if [ {{}} = 1 ]; then echo {after} > {file}; else sleep 0.3; fi; echo {{}} {{%}}");
    let args = [
        "-k", "-j", &file, &command, ":::", "1", "2", "3", "4", "5", "6", "7",
    ];
    let mut ours = vec!["run", "--mode", mode];
    ours.extend_from_slice(&args);
    let ran = troop(&ours, "");
    ran.assert_code(0);
    ran.stdout
}

#[test]
fn jobs_file_grows_the_pool_when_a_task_ends() {
    for mode in MODES {
        let out = jobs_file_run(mode, "1", "3");
        let mut slots = slots_from(&out, 3);
        slots.sort();
        slots.dedup();
        assert!(
            slots.len() > 1,
            "{mode}: after the file said 3, tasks ran in more than one slot:\n{out}"
        );
    }
    // GNU parallel re-reads the file only when its modification time (in whole seconds)
    // changed, so within the first second it may not grow at all: no cross-check here.
}

#[test]
fn jobs_file_shrinks_the_pool_when_a_task_ends() {
    for mode in MODES {
        let out = jobs_file_run(mode, "3", "1");
        let mut slots = slots_from(&out, 4);
        assert_eq!(slots.len(), 4, "{mode}: every task ran:\n{out}");
        slots.dedup();
        assert_eq!(
            slots.len(),
            1,
            "{mode}: after the file said 1, the tasks left ran in one slot:\n{out}"
        );
    }
}

#[test]
fn a_jobs_file_without_a_number_is_refused() {
    let dir = temp_dir();
    let file = dir.path().join("jobs");
    std::fs::write(&file, "many\n").expect("write");
    check_refused(&["-j", &file.to_string_lossy(), "echo", ":::", "1"], "-j");
}
