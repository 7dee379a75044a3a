//! Input sources and replacement strings, checked against fixed expectations and, when it is
//! installed, against GNU parallel given the same arguments.

use std::path::Path;

use crate::util::{
    COMMAND_TIMEOUT, Ran, TROOP, check_like_parallel, gnu_parallel_in, temp_dir, troop, troop_in,
    write_file,
};

#[test]
fn stdin_lines_are_the_default_source() {
    check_like_parallel(
        None,
        &["echo", "line:{}"],
        "a\nb b\n\nc\n",
        "line:a\nline:b b\nline:\nline:c\n",
    );
}

#[test]
fn stdin_last_line_without_newline_counts() {
    check_like_parallel(None, &["echo"], "x\ny", "x\ny\n");
}

#[test]
fn three_colons_give_arguments() {
    check_like_parallel(
        None,
        &["echo", "in:{}", ":::", "a", "b", "c"],
        "",
        "in:a\nin:b\nin:c\n",
    );
}

#[test]
fn four_colons_read_a_file() {
    let dir = temp_dir();
    write_file(dir.path(), "args.txt", "one\ntwo words\nthree\n");
    check_like_parallel(
        Some(dir.path()),
        &["echo", "[{}]", "::::", "args.txt"],
        "",
        "[one]\n[two words]\n[three]\n",
    );
}

#[test]
fn four_colons_dash_reads_stdin() {
    check_like_parallel(
        None,
        &["echo", "in:{}", "::::", "-"],
        "s1\ns2\n",
        "in:s1\nin:s2\n",
    );
}

#[test]
fn arg_file_option_reads_a_file() {
    let dir = temp_dir();
    write_file(dir.path(), "list", "l1\nl2\nl3\n");
    check_like_parallel(
        Some(dir.path()),
        &["-a", "list", "echo", "x"],
        "",
        "x l1\nx l2\nx l3\n",
    );
}

#[test]
fn arg_file_option_combines_with_other_sources() {
    let dir = temp_dir();
    write_file(dir.path(), "list", "l1\nl2\n");
    check_like_parallel(
        Some(dir.path()),
        &["-a", "list", "echo", "{1}-{2}", ":::", "p", "q"],
        "",
        "l1-p\nl1-q\nl2-p\nl2-q\n",
    );
}

#[test]
fn two_sources_give_the_cartesian_product_first_outermost() {
    check_like_parallel(
        None,
        &["echo", "{1}{2}", ":::", "a", "b", "c", ":::", "1", "2"],
        "",
        "a1\na2\nb1\nb2\nc1\nc2\n",
    );
}

#[test]
fn three_sources_give_the_product_with_appended_args() {
    check_like_parallel(
        None,
        &["echo", ":::", "a", "b", ":::", "1", "2", ":::", "x", "y"],
        "",
        "a 1 x\na 1 y\na 2 x\na 2 y\nb 1 x\nb 1 y\nb 2 x\nb 2 y\n",
    );
}

#[test]
fn file_and_args_sources_multiply() {
    let dir = temp_dir();
    write_file(dir.path(), "f", "f1\nf2\n");
    check_like_parallel(
        Some(dir.path()),
        &["echo", "{1}/{2}", "::::", "f", ":::", "a", "b"],
        "",
        "f1/a\nf1/b\nf2/a\nf2/b\n",
    );
}

#[test]
fn three_colons_plus_links_to_the_source_before() {
    check_like_parallel(
        None,
        &[
            "echo", "{1}={2}", ":::", "a", "b", "c", ":::+", "1", "2", "3",
        ],
        "",
        "a=1\nb=2\nc=3\n",
    );
}

#[test]
fn linked_sources_stop_at_the_shortest() {
    check_like_parallel(
        None,
        &["echo", ":::", "a", "b", "c", ":::+", "1", "2"],
        "",
        "a 1\nb 2\n",
    );
}

#[test]
fn linked_group_multiplies_with_another_source() {
    check_like_parallel(
        None,
        &[
            "echo",
            "{1}{2}{3}",
            ":::",
            "a",
            "b",
            ":::+",
            "1",
            "2",
            ":::",
            "x",
            "y",
        ],
        "",
        "a1x\na1y\nb2x\nb2y\n",
    );
}

#[test]
fn four_colons_plus_links_files() {
    let dir = temp_dir();
    write_file(dir.path(), "names", "ann\nbob\ncid\n");
    write_file(dir.path(), "ages", "31\n42\n53\n");
    check_like_parallel(
        Some(dir.path()),
        &["echo", "{1} is {2}", "::::", "names", "::::+", "ages"],
        "",
        "ann is 31\nbob is 42\ncid is 53\n",
    );
}

#[test]
fn colsep_splits_columns() {
    check_like_parallel(
        None,
        &["--colsep", ",", "echo", "{2}-{1}"],
        "a,b\nc,d\n",
        "b-a\nd-c\n",
    );
}

#[test]
fn colsep_is_a_regex_and_applies_to_files() {
    let dir = temp_dir();
    write_file(dir.path(), "table", "x1 , y1\nx2,y2\n");
    check_like_parallel(
        Some(dir.path()),
        &["--colsep", " *, *", "echo", "{2}:{1}", "::::", "table"],
        "",
        "y1:x1\ny2:x2\n",
    );
}

#[test]
fn whole_argument_and_path_replacement_strings() {
    check_like_parallel(
        None,
        &[
            "echo",
            "{}:{.}:{/}:{//}:{/.}",
            ":::",
            "/a/b/c.tar.gz",
            "d/f.txt",
            "plain",
            "a.b/c",
        ],
        "",
        "/a/b/c.tar.gz:/a/b/c.tar:c.tar.gz:/a/b:c.tar\n\
         d/f.txt:d/f:f.txt:d:f\n\
         plain:plain:plain:.:plain\n\
         a.b/c:a.b/c:c:a.b:c\n",
    );
}

#[test]
fn positional_replacement_strings() {
    check_like_parallel(
        None,
        &[
            "echo",
            "{1} {2} {1.} {2.} {2/} {1//} {2/.}",
            ":::",
            "a.x/y.z",
            "b.y",
            ":::",
            "/c.z/w.q",
        ],
        "",
        "a.x/y.z /c.z/w.q a.x/y /c.z/w w.q a.x w\n\
         b.y /c.z/w.q b /c.z/w w.q . w\n",
    );
}

#[test]
fn sequence_number_is_deterministic() {
    check_like_parallel(
        None,
        &["echo", "{#}:{}", ":::", "a", "b", "c", "d"],
        "",
        "1:a\n2:b\n3:c\n4:d\n",
    );
}

#[test]
fn sequence_number_counts_product_records() {
    check_like_parallel(
        None,
        &["echo", "{#}", "{}", ":::", "a", "b", ":::", "1", "2"],
        "",
        "1 a 1\n2 a 2\n3 b 1\n4 b 2\n",
    );
}

#[test]
fn slot_is_between_one_and_the_number_of_workers() {
    for mode in ["process", "thread"] {
        let ran = troop(
            &[
                "run", "-k", "-j3", "--mode", mode, "echo", "{#} {%}", ":::", "a", "b", "c", "d",
                "e", "f", "g",
            ],
            "",
        );
        ran.assert_code(0);
        let lines = ran.lines();
        assert_eq!(lines.len(), 7, "{mode}: {}", ran.stdout);
        for (i, line) in lines.iter().enumerate() {
            let (seq, slot) = line.split_once(' ').expect("two words");
            assert_eq!(seq, (i + 1).to_string(), "{mode}: {line}");
            let slot: u32 = slot
                .parse()
                .unwrap_or_else(|_| panic!("{mode}: slot in {line:?}"));
            assert!(
                (1..=3).contains(&slot),
                "{mode}: slot {slot} is not in 1..=3"
            );
        }
    }
}

#[test]
fn slot_with_one_worker_is_one() {
    let ran = troop(
        &["run", "-k", "-j1", "echo", "{%}", ":::", "a", "b", "c"],
        "",
    );
    ran.assert_ok_with("1\n1\n1\n");
}

#[test]
fn args_are_appended_without_replacement_string() {
    check_like_parallel(
        None,
        &["echo", "pre", "post", ":::", "a", "b c"],
        "",
        "pre post a\npre post b c\n",
    );
}

#[test]
fn appended_stdin_lines_stay_one_argument() {
    // printf would split the line into several arguments if it were not one word.
    check_like_parallel(None, &["printf '[%s]\\n'"], "a b\nc\n", "[a b]\n[c]\n");
}

#[test]
fn replacement_inside_a_shell_command() {
    check_like_parallel(None, &["echo {} | tr a-z A-Z"], "abc\nxyz\n", "ABC\nXYZ\n");
}

#[test]
fn command_words_are_joined_like_a_shell_line() {
    check_like_parallel(None, &["echo", "{}", "|", "wc", "-c"], "abc\n", "4\n");
}

#[test]
fn many_stdin_lines_all_run_once() {
    let input: String = (1..=100).map(|i| format!("{i}\n")).collect();
    let ran = troop(&["run", "-j2", "echo hello {}"], &input);
    ran.assert_code(0);
    let mut got: Vec<String> = ran.lines().iter().map(|s| s.to_string()).collect();
    assert_eq!(got.len(), 100, "{}", ran.stdout);
    got.sort();
    let mut want: Vec<String> = (1..=100).map(|i| format!("hello {i}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn many_stdin_lines_keep_order() {
    let input: String = (1..=100).map(|i| format!("{i}\n")).collect();
    let want: String = (1..=100).map(|i| format!("hello {i}\n")).collect();
    troop(&["run", "-j2", "-k", "echo hello {}"], &input).assert_ok_with(&want);
    troop(
        &["run", "-j2", "-k", "--mode", "thread", "echo hello {}"],
        &input,
    )
    .assert_ok_with(&want);
}

#[test]
fn tasks_run_in_the_working_directory() {
    let dir = temp_dir();
    let here = dir.path().canonicalize().expect("canonical temp dir");
    let want = format!("{}\n", here.display());
    for mode in ["process", "thread"] {
        let ran = troop_in(
            Some(&here),
            &["run", "--mode", mode, "pwd -P # {}", ":::", "x"],
            "",
        );
        ran.assert_ok_with(&want);
    }
    troop_in(Some(&here), &["run", "cat", ":::", "file"], "").assert_code(1);
    write_file(&here, "file", "content\n");
    troop_in(Some(&here), &["run", "cat", ":::", "file"], "").assert_ok_with("content\n");
}

#[test]
fn empty_input_runs_nothing() {
    troop(&["run", "echo", "x"], "").assert_ok_with("");
}

#[test]
fn jobs_forms_are_accepted() {
    for jobs in ["1", "3", "50%", "+1", "0"] {
        let ran = troop(
            &[
                "run", "-k", "-j", jobs, "--mode", "thread", "echo", ":::", "a", "b", "c",
            ],
            "",
        );
        assert_eq!(ran.code, Some(0), "-j {jobs}: {}", ran.stderr);
        assert_eq!(ran.stdout, "a\nb\nc\n", "-j {jobs}");
    }
}

#[test]
fn chunksize_does_not_change_output() {
    let input: String = (1..=300).map(|i| format!("{i}\n")).collect();
    let want: String = (1..=300).map(|i| format!("{i}\n")).collect();
    for chunk in ["1", "7", "auto"] {
        troop(&["run", "-k", "-j2", "--chunksize", chunk, "echo"], &input).assert_ok_with(&want);
    }
}

#[test]
fn jobs_minus_n_is_accepted_as_its_own_argument() {
    // `-j -1` (one core less), as GNU parallel accepts it; also `--jobs=-1` and `-j-1`.
    for args in [&["-j", "-1"][..], &["--jobs=-1"], &["-j-1"]] {
        let mut argv = vec!["run", "-k", "--mode", "thread"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["echo", ":::", "a", "b"]);
        let ran = troop(&argv, "");
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stdout, "a\nb\n", "{args:?}");
    }
}

// ---- The shell that runs commands, and what quoting protects ----

/// `path` when it is an executable file; a missing one fails the test under CI.
fn require_program(path: &str) -> Option<&str> {
    if Path::new(path).is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{path} is needed for this test under CI"
    );
    None
}

/// Runs `troop ARGS…` with `SHELL` (and no `PARALLEL_SHELL`) set as given.
fn troop_with_shell(shell: Option<&str>, parallel_shell: Option<&str>, args: &[&str]) -> Ran {
    let mut command = assert_cmd::Command::new(TROOP);
    command
        .args(args)
        .env_remove("SHELL")
        .env_remove("PARALLEL_SHELL");
    if let Some(shell) = shell {
        command.env("SHELL", shell);
    }
    if let Some(shell) = parallel_shell {
        command.env("PARALLEL_SHELL", shell);
    }
    command
        .write_stdin(Vec::new())
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run troop")
        .into()
}

#[test]
fn functions_exported_from_bash_run_as_commands() {
    let Some(bash) = require_program("/bin/bash") else {
        return;
    };
    // As a user types it: the functions are defined and exported in bash, which starts troop. A
    // function wins over a program of the same name, as in the shell.
    for (mode, command, want) in [
        ("process", "f", "f:a\nf:b\n"),
        ("thread", "f", "f:a\nf:b\n"),
        ("process", "f {} | tr a-z A-Z", "F:A\nF:B\n"),
        ("process", "ls", "ls:a\nls:b\n"),
    ] {
        let script = format!(
            "f() {{ echo \"f:$1\"; }}; ls() {{ echo \"ls:$1\"; }}; export -f f ls; \
             \"$0\" run -k --mode {mode} '{command}' ::: a b"
        );
        let ran: Ran = assert_cmd::Command::new(bash)
            .args(["-c", &script, TROOP])
            .env("SHELL", bash)
            .env_remove("PARALLEL_SHELL")
            .timeout(COMMAND_TIMEOUT)
            .output()
            .expect("run bash")
            .into();
        assert_eq!(ran.stdout, want, "{mode} {command:?}: {}", ran.stderr);
        ran.assert_code(0);
    }
}

#[test]
fn commands_run_with_the_users_shell() {
    let Some(bash) = require_program("/bin/bash") else {
        return;
    };
    let args = ["run", "echo $0 {}", ":::", "x"];
    troop_with_shell(Some(bash), None, &args).assert_ok_with("/bin/bash x\n");
    troop_with_shell(Some(bash), Some("/bin/sh"), &args).assert_ok_with("/bin/sh x\n");
    troop_with_shell(None, None, &args).assert_ok_with("/bin/sh x\n");
    troop_with_shell(Some("/bin/csh"), None, &args).assert_ok_with("/bin/sh x\n");
    let thread = ["run", "--mode", "thread", "echo $0 {}", ":::", "x"];
    troop_with_shell(Some(bash), None, &thread).assert_ok_with("/bin/bash x\n");
}

#[test]
fn help_says_which_templates_input_can_inject_into() {
    let help = troop(&["run", "--help"], "");
    help.assert_code(0);
    assert!(!help.stdout.contains("never inject"), "{}", help.stdout);
    for claim in [
        "outside quotes",
        "`echo \"{}\"`",
        "`echo '{}'`",
        "`sh -c {}`",
    ] {
        assert!(
            help.stdout.contains(claim),
            "{claim} missing:\n{}",
            help.stdout
        );
    }
    // The claims hold: unquoted is safe; inside the command's own quotes the value runs, as it
    // does in GNU parallel.
    let cases = [
        ("echo {}", "$(touch marker); touch marker", false),
        ("echo \"{}\"", "$(touch marker)", true),
        ("echo '{}'", "a; touch marker", true),
    ];
    for (template, value, injected) in cases {
        let (ours, theirs) = (temp_dir(), temp_dir());
        troop_in(Some(ours.path()), &["run", template, ":::", value], "");
        let what = format!("{template} with {value:?}");
        assert_eq!(ours.path().join("marker").exists(), injected, "{what}");
        if gnu_parallel_in(Some(theirs.path()), &[template, ":::", value], "").is_some() {
            assert_eq!(
                theirs.path().join("marker").exists(),
                injected,
                "GNU: {what}"
            );
        }
    }
}

#[test]
fn a_first_linked_source_reads_as_a_plain_one() {
    crate::util::check_like_parallel(
        None,
        &["echo", ":::+", "a", "b", ":::+", "1", "2"],
        "",
        "a 1\nb 2\n",
    );
    let dir = crate::util::temp_dir();
    crate::util::write_file(dir.path(), "two", "a\nb\n");
    crate::util::check_like_parallel(
        Some(dir.path()),
        &["echo", "::::+", "two", ":::", "x"],
        "",
        "a x\nb x\n",
    );
}
