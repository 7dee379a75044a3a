//! Input that is not UTF-8: its bytes pass unchanged from every source and replacement string to
//! the command, the output, the job logs and `--resume`, as in GNU parallel, which each check
//! is compared with when it is installed.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Output;

use crate::util::{COMMAND_TIMEOUT, TROOP, have_gnu_parallel, temp_dir};

fn run(program: &str, dir: Option<&Path>, args: &[&[u8]], stdin: &[u8]) -> Output {
    let mut command = assert_cmd::Command::new(program);
    command.args(args.iter().map(|a| OsString::from_vec(a.to_vec())));
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
        .write_stdin(stdin.to_vec())
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run the command")
}

/// Runs `troop run ARGS…`.
fn troop(dir: Option<&Path>, args: &[&[u8]], stdin: &[u8]) -> Output {
    let mut all: Vec<&[u8]> = vec![b"run"];
    all.extend_from_slice(args);
    run(TROOP, dir, &all, stdin)
}

/// Runs `parallel --will-cite ARGS…`, or gives `None` without GNU parallel (which fails the test
/// under CI).
fn gnu(dir: Option<&Path>, args: &[&[u8]], stdin: &[u8]) -> Option<Output> {
    if !have_gnu_parallel() {
        assert!(
            std::env::var_os("CI").is_none(),
            "GNU parallel is needed for this check under CI"
        );
        return None;
    }
    let mut all: Vec<&[u8]> = vec![b"--will-cite"];
    all.extend_from_slice(args);
    Some(run("parallel", dir, &all, stdin))
}

#[track_caller]
fn assert_output(who: &str, out: &Output, expected: &[u8]) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{who} failed; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout.escape_ascii().to_string(),
        expected.escape_ascii().to_string(),
        "{who}; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks that `troop run -k ARGS…` prints `expected` in process and thread mode, and that GNU
/// parallel given `-k ARGS…` prints the same.
#[track_caller]
fn check_bytes(dir: Option<&Path>, args: &[&[u8]], stdin: &[u8], expected: &[u8]) {
    for mode in [&b"process"[..], b"thread"] {
        let mut ours: Vec<&[u8]> = vec![b"-k", b"--mode", mode];
        ours.extend_from_slice(args);
        let who = format!("troop run {}", String::from_utf8_lossy(&ours.join(&b' ')));
        assert_output(&who, &troop(dir, &ours, stdin), expected);
    }
    let mut theirs: Vec<&[u8]> = vec![b"-k"];
    theirs.extend_from_slice(args);
    if let Some(out) = gnu(dir, &theirs, stdin) {
        assert_output("GNU parallel", &out, expected);
    }
}

#[test]
fn stdin_lines_that_are_not_utf8_reach_the_command() {
    check_bytes(None, &[b"echo"], b"a\xffb\n", b"a\xffb\n");
}

#[test]
fn one_line_that_is_not_utf8_does_not_stop_the_others() {
    check_bytes(
        None,
        &[b"echo", b"[{}]"],
        b"a\n\xfe\xff\nb\n",
        b"[a]\n[\xfe\xff]\n[b]\n",
    );
}

#[test]
fn arguments_that_are_not_utf8_are_accepted_after_three_colons() {
    check_bytes(
        None,
        &[b"printf", b"%s/", b":::", b"x\xff", b"\xc3(", b"ok"],
        b"",
        b"x\xff/\xc3(/ok/",
    );
    check_bytes(
        None,
        &[b"echo", b":::", b"a\xff", b"b", b":::+", b"1", b"2\xfe"],
        b"",
        b"a\xff 1\nb 2\xfe\n",
    );
}

#[test]
fn file_sources_that_are_not_utf8_pass_unchanged() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("f"), b"one\xff\ntwo\n").expect("write");
    let expected = b"[one\xff]\n[two]\n";
    check_bytes(
        Some(dir.path()),
        &[b"echo", b"[{}]", b"::::", b"f"],
        b"",
        expected,
    );
    check_bytes(
        Some(dir.path()),
        &[b"-a", b"f", b"echo", b"[{}]"],
        b"",
        expected,
    );
    check_bytes(
        Some(dir.path()),
        &[b"echo", b"[{}]", b"::::", b"-"],
        b"one\xff\ntwo\n",
        expected,
    );
}

#[test]
fn colsep_splits_values_that_are_not_utf8() {
    check_bytes(
        None,
        &[b"--colsep", b",", b"echo", b"{2}-{1}"],
        b"a\xff,b\xfe\nc,d\n",
        b"b\xfe-a\xff\nd-c\n",
    );
}

#[test]
fn every_replacement_string_keeps_bytes_that_are_not_utf8() {
    let value = b"d\xff.x/f\xfe.t\xfd.gz";
    let parts: &[u8] =
        b"d\xff.x/f\xfe.t\xfd.gz/d\xff.x/f\xfe.t\xfd/f\xfe.t\xfd.gz/d\xff.x/f\xfe.t\xfd/";
    // Run directly, and through the shell.
    for template in [
        &b"printf %s/ {} {.} {/} {//} {/.}"[..],
        b"printf %s/ {} {.} {/} {//} {/.} | cat",
    ] {
        check_bytes(None, &[template, b":::", value], b"", parts);
    }
    let positional: &[&[u8]] = &[
        b"printf %s/ {1} {2} {1.} {2/} {-1//} x{1}y {#}",
        b":::",
        value,
        b":::",
        b"\xe9/z",
    ];
    let expected: &[u8] =
        b"d\xff.x/f\xfe.t\xfd.gz/\xe9/z/d\xff.x/f\xfe.t\xfd/z/\xe9/xd\xff.x/f\xfe.t\xfd.gzy/1/";
    check_bytes(None, positional, b"", expected);
}

#[test]
fn file_names_that_are_not_utf8_are_processed_like_any_other() {
    let dir = temp_dir();
    let names: [&[u8]; 2] = [b"f\xffg", b"plain"];
    for name in names {
        let path = dir.path().join(OsString::from_vec(name.to_vec()));
        std::fs::write(path, b"data\n").expect("write");
    }
    // `ls | troop run gzip`
    let out = troop(Some(dir.path()), &[b"gzip"], b"f\xffg\nplain\n");
    assert_output("troop run gzip", &out, b"");
    for name in names {
        let mut gz = name.to_vec();
        gz.extend_from_slice(b".gz");
        let path = dir.path().join(OsString::from_vec(gz));
        assert!(path.exists(), "{} is missing", path.display());
    }
    // `troop run echo ::: *`
    check_bytes(
        None,
        &[b"echo", b":::", b"f\xffg.gz", b"plain.gz"],
        b"",
        b"f\xffg.gz\nplain.gz\n",
    );
}

#[test]
fn dry_run_and_tag_show_bytes_that_are_not_utf8() {
    check_bytes(
        None,
        &[b"--dry-run", b"echo", b":::", b"a\xffb", b"c"],
        b"",
        b"echo 'a\xffb'\necho c\n",
    );
    check_bytes(
        None,
        &[b"--tag", b"echo", b"x", b":::", b"a\xff"],
        b"",
        b"a\xff\tx a\xff\n",
    );
}

#[test]
fn job_logs_keep_bytes_that_are_not_utf8_and_resume_finds_them() {
    let dir = temp_dir();
    let run_with = |values: &[&[u8]], resume: bool| {
        let mut args: Vec<&[u8]> = vec![
            b"-k",
            b"--joblog",
            b"log.tsv",
            b"--joblog-json",
            b"log.json",
            b"echo",
        ];
        if resume {
            args.insert(0, b"--resume");
        }
        args.push(b":::");
        args.extend_from_slice(values);
        troop(Some(dir.path()), &args, b"")
    };
    assert_output(
        "first run",
        &run_with(&[b"a\xff", b"b"], false),
        b"a\xff\nb\n",
    );

    let tsv = std::fs::read(dir.path().join("log.tsv")).expect("TSV log");
    let mut commands: Vec<&[u8]> = tsv
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|row| !row.is_empty())
        .map(|row| row.splitn(9, |&b| b == b'\t').nth(8).expect("9 columns"))
        .collect();
    commands.sort();
    assert_eq!(commands, [&b"echo 'a\xff'"[..], b"echo b"]);

    let json = std::fs::read_to_string(dir.path().join("log.json")).expect("JSON log is UTF-8");
    let mut rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    rows.sort_by_key(|row| row["seq"].as_u64());
    assert_eq!(rows[0]["command"], "echo 'a\u{fffd}'");
    assert_eq!(rows[0]["command_b64"], "ZWNobyAnYf8n");
    assert_eq!(rows[0]["key_b64"], "ZWNobyAnYf8n");
    assert_eq!(rows[0]["input_b64"], serde_json::json!(["Yf8="]));
    assert!(rows[1].get("command_b64").is_none(), "{}", rows[1]);
    assert_eq!(rows[1]["command"], "echo b");

    // Both tasks are recognised; only the new value runs.
    let again = run_with(&[b"a\xff", b"b", b"c\xfe"], true);
    assert_output("resumed run", &again, b"c\xfe\n");
}

#[test]
fn a_nul_byte_fails_its_task_with_a_clear_message_and_the_others_run() {
    for mode in [&b"process"[..], b"thread"] {
        let out = troop(None, &[b"-k", b"--mode", mode, b"echo"], b"a\0b\nc\n");
        assert_eq!(out.stdout, b"c\n");
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("holds a NUL byte"), "{stderr}");
    }
}
