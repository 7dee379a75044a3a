//! Command lines troop cannot run: each fails with a message that names the problem, on stderr,
//! with nothing on stdout.

use crate::util::{Ran, temp_dir, troop, troop_in};

#[track_caller]
fn assert_usage_error(ran: &Ran, needles: &[&str]) {
    assert_eq!(
        ran.code,
        Some(255),
        "expected exit 255; stderr: {}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "", "nothing may be printed on stdout");
    for needle in needles {
        assert!(
            ran.stderr.contains(needle),
            "stderr does not mention {needle:?}: {:?}",
            ran.stderr
        );
    }
}

#[test]
fn unknown_option() {
    let ran = troop(&["run", "--frobnicate", "echo", ":::", "a"], "");
    assert_usage_error(&ran, &["--frobnicate"]);
}

#[test]
fn unknown_subcommand() {
    let ran = troop(&["sprint", "echo"], "");
    assert_eq!(ran.stdout, "");
    assert_ne!(ran.code, Some(0));
    assert!(ran.stderr.contains("sprint"), "{:?}", ran.stderr);
}

#[test]
fn missing_four_colon_file() {
    let dir = temp_dir();
    let ran = troop_in(
        Some(dir.path()),
        &["run", "echo", "::::", "no-such-file.txt"],
        "",
    );
    assert_usage_error(&ran, &["no-such-file.txt"]);
}

#[test]
fn missing_arg_file() {
    let dir = temp_dir();
    let ran = troop_in(Some(dir.path()), &["run", "-a", "absent.list", "echo"], "");
    assert_usage_error(&ran, &["absent.list"]);
}

#[test]
fn missing_file_runs_no_task() {
    let dir = temp_dir();
    let made = dir.path().join("made");
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "touch {}",
            ":::",
            made.to_str().expect("utf-8 path"),
            "::::",
            "no-such-file.txt",
        ],
        "",
    );
    assert_usage_error(&ran, &["no-such-file.txt"]);
    assert!(!made.exists(), "a task ran although the input was bad");
}

#[test]
fn unknown_kernel() {
    let ran = troop(&["run", "@frobnicate", "{}", ":::", "1"], "");
    assert_usage_error(
        &ran,
        &[
            "@frobnicate",
            "@primes",
            "@spin",
            "@sleep",
            "@hash",
            "@noop",
        ],
    );
}

#[test]
fn bad_jobs_value() {
    for bad in ["garbage", "1.5x", "%", ""] {
        let ran = troop(&["run", "-j", bad, "echo", ":::", "a"], "");
        let quoted = [format!("`{bad}`"), format!("'{bad}'"), format!("\"{bad}\"")];
        assert_usage_error(&ran, &[]);
        assert!(
            quoted.iter().any(|q| ran.stderr.contains(q.as_str())),
            "-j {bad:?}: the message does not quote the value: {:?}",
            ran.stderr
        );
    }
}

#[test]
fn bad_chunksize_value() {
    let ran = troop(&["run", "--chunksize", "lots", "echo", ":::", "a"], "");
    assert_usage_error(&ran, &["lots"]);
}

#[test]
fn bad_colsep_regex() {
    let ran = troop(&["run", "--colsep", "(", "echo", ":::", "a"], "");
    assert_usage_error(&ran, &["("]);
}

#[test]
fn without_a_command_each_argument_is_a_command() {
    crate::util::check_like_parallel(None, &[":::", "echo a", "echo b; echo c"], "", "a\nb\nc\n");
}

#[test]
fn without_a_command_each_input_line_is_a_command() {
    crate::util::check_like_parallel(None, &[], "echo x\necho 'y  z'\n", "x\ny  z\n");
    let ran = troop(&["run", "-k"], "echo x\nexit 3\n");
    ran.assert_code(1);
    assert_eq!(ran.stdout, "x\n");
}

#[test]
fn four_colons_without_a_file() {
    let ran = troop(&["run", "echo", "::::"], "");
    assert_usage_error(&ran, &["::::"]);
}

#[test]
fn an_os_error_is_named_once() {
    let dir = temp_dir();
    let file = crate::util::write_file(dir.path(), "file", "");
    let log = file.join("log");
    let ran = troop(
        &["run", "--joblog", log.to_str().unwrap(), "echo", ":::", "a"],
        "",
    );
    assert_usage_error(&ran, &["cannot write job log", "Not a directory"]);
    assert_eq!(
        ran.stderr.matches("Not a directory").count(),
        1,
        "{:?}",
        ran.stderr
    );
    assert_eq!(ran.stderr.lines().count(), 1, "{:?}", ran.stderr);
}

#[test]
fn a_colsep_that_matches_nothing_is_refused() {
    for colsep in ["", "x*", "^"] {
        let ran = troop(&["run", "--colsep", colsep, "echo", ":::", "a,b"], "");
        assert_usage_error(&ran, &["--colsep", "empty string"]);
    }
    troop(&["run", "--colsep", ",", "echo {2}", ":::", "a,b"], "").assert_ok_with("b\n");
}

#[test]
fn a_memory_limit_too_small_to_start_a_command_is_refused() {
    let dir = temp_dir();
    for limit in ["1", "1K", "3M"] {
        let ran = troop_in(
            Some(dir.path()),
            &["run", "--memory-limit", limit, "touch ran-{}", ":::", "a"],
            "",
        );
        assert_usage_error(&ran, &["--memory-limit", limit, "at least 4M"]);
        assert!(!dir.path().join("ran-a").exists());
    }
}

#[test]
fn a_task_killed_under_a_memory_limit_says_so() {
    let ran = troop(
        &[
            "run",
            "--memory-limit",
            "1G",
            "kill -SEGV $$; : {}",
            ":::",
            "a",
        ],
        "",
    );
    ran.assert_code(1);
    assert!(
        ran.stderr.contains(
            "troop: task 1 was killed by SIGSEGV under --memory-limit 1G (a command that runs out \
             of address space often ends so): kill -SEGV $$; : a\n"
        ),
        "{:?}",
        ran.stderr
    );
}

/// GNU parallel's two lines: `Warning: This job was killed because it timed out:` and the
/// command.
fn timed_out(command: &str) -> String {
    format!(
        "troop: Warning: This job was killed because it timed out:\ntroop: Warning: {command}\n"
    )
}

#[test]
fn a_timed_out_task_prints_gnu_parallels_warning_naming_it() {
    for (template, slow) in [("sleep {}", "30"), ("@sleep {}", "30000")] {
        let ran = troop(
            &["run", "-k", "--timeout", "1", template, ":::", slow, "0"],
            "",
        );
        ran.assert_code(1);
        let command = template.replace("{}", slow);
        assert_eq!(ran.stderr, timed_out(&command), "{template}");
    }
}

#[test]
fn a_task_stopped_by_a_percentage_timeout_prints_the_warning_naming_it() {
    let ran = troop(
        &[
            "run",
            "-j4",
            "--timeout",
            "200%",
            "sleep {}",
            ":::",
            "0.1",
            "0.1",
            "0.1",
            "30",
        ],
        "",
    );
    ran.assert_code(1);
    assert_eq!(ran.stderr, timed_out("sleep 30"), "{:?}", ran.stderr);
}

#[test]
fn a_perl_expression_is_refused_rather_than_passed_as_text() {
    let ran = troop(&["run", "echo", "{= s/a/b/ =}", ":::", "aa"], "");
    assert_usage_error(&ran, &["{= s/a/b/ =}", "Perl expression"]);
    troop(&["run", "echo", "{=}", ":::", "a"], "").assert_ok_with("{=} a\n");
}
