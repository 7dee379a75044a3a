//! Output: grouped per task unless --line-buffer, --tag prefixes, --dry-run runs nothing.

use std::io::Write;

use crate::util::{TROOP, check_like_parallel, temp_dir, troop, troop_in};

/// Each task prints three lines with pauses, so two tasks running at once would interleave their
/// lines if output were not grouped.
const SLOW_PRINTER: &str = "for i in 1 2 3; do echo {}$i; sleep 0.1; done";

#[test]
fn grouped_output_never_interleaves() {
    for mode in ["process", "thread"] {
        let ran = troop(
            &["run", "-j2", "--mode", mode, SLOW_PRINTER, ":::", "a", "b"],
            "",
        );
        ran.assert_code(0);
        let lines = ran.lines();
        let a_first = ["a1", "a2", "a3", "b1", "b2", "b3"];
        let b_first = ["b1", "b2", "b3", "a1", "a2", "a3"];
        assert!(
            lines == a_first || lines == b_first,
            "{mode}: the tasks' output interleaved: {lines:?}"
        );
    }
}

#[test]
fn grouped_output_keeps_stdout_and_stderr_of_a_task_together() {
    let ran = troop(
        &[
            "run",
            "-j2",
            "-k",
            "echo out{}; sleep 0.1; echo err{} >&2",
            ":::",
            "a",
            "b",
        ],
        "",
    );
    ran.assert_code(0);
    assert_eq!(ran.stdout, "outa\noutb\n");
    assert_eq!(ran.stderr, "erra\nerrb\n");
}

#[test]
fn each_tasks_stderr_follows_its_stdout_when_both_go_to_one_file() {
    // `troop … 2>&1`: one open file behind both descriptors. Repeated, because the mix-up
    // depended on when the buffers happened to be flushed.
    let dir = temp_dir();
    let expected = "1-out\n1-out2\n1-err\n2-out\n2-out2\n2-err\n3-out\n3-out2\n3-err\n";
    for jobs in ["-j1", "-j2"] {
        for round in 0..15 {
            let path = dir.path().join(format!("both{jobs}-{round}"));
            let file = std::fs::File::create(&path).expect("create the output file");
            let status = std::process::Command::new(TROOP)
                .args([
                    "run",
                    jobs,
                    "-k",
                    "echo {}-out; echo {}-err >&2; echo {}-out2",
                    ":::",
                    "1",
                    "2",
                    "3",
                ])
                .stdin(std::process::Stdio::null())
                .stderr(file.try_clone().expect("share the output file"))
                .stdout(file)
                .status()
                .expect("run troop");
            assert!(status.success(), "{status:?}");
            let both = std::fs::read_to_string(&path).expect("read the output");
            assert_eq!(both, expected, "{jobs}, round {round}");
        }
    }
}

#[test]
fn line_buffer_prints_every_line() {
    for mode in ["process", "thread"] {
        let ran = troop(
            &[
                "run",
                "-j2",
                "--line-buffer",
                "--mode",
                mode,
                SLOW_PRINTER,
                ":::",
                "a",
                "b",
            ],
            "",
        );
        ran.assert_code(0);
        let lines = ran.lines();
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(sorted, ["a1", "a2", "a3", "b1", "b2", "b3"], "{mode}");
        for task in ["a", "b"] {
            let own: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| l.starts_with(task))
                .collect();
            assert_eq!(
                own,
                [format!("{task}1"), format!("{task}2"), format!("{task}3")],
                "{mode}"
            );
        }
    }
}

/// A task prints a line and then waits for a go-ahead through a FIFO, which the test gives only
/// once it has read that line from troop's stdout: so the line must come out while its task is
/// still running, as `--line-buffer` promises.
#[test]
fn line_buffer_prints_a_line_while_its_task_still_runs() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::OpenOptionsExt;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    let deadline = Duration::from_secs(20);
    for mode in ["process", "thread", "async"] {
        for extra in [None, Some("-k"), Some("--tag")] {
            let dir = temp_dir();
            let fifo = dir.path().join("go");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
            let script = format!(
                "echo first-{{}}; read go < '{}'; echo second-{{}}",
                fifo.display()
            );
            let mut args = vec!["run", "--line-buffer", "--mode", mode];
            args.extend(extra);
            args.extend([script.as_str(), ":::", "x"]);
            let mut troop = Command::new(TROOP)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start troop");
            let stdout = troop.stdout.take().expect("troop's stdout");
            let (tx, lines) = mpsc::channel();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    if tx.send(line.expect("read troop's stdout")).is_err() {
                        break;
                    }
                }
            });
            let first = lines.recv_timeout(deadline);
            // The go-ahead, given in any case so that nothing is left waiting: opened for
            // reading and writing, the FIFO never blocks, and it stays open until the task has
            // read from it.
            let mut go = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fifo)
                .expect("open the FIFO");
            go.write_all(b"go\n").expect("write the go-ahead");
            let second = lines.recv_timeout(deadline);
            drop(go);
            let status = troop.wait().expect("wait for troop");
            reader.join().expect("the reader");
            let what = format!("{mode} {extra:?}");
            let tag = if extra == Some("--tag") { "x\t" } else { "" };
            assert_eq!(
                first,
                Ok(format!("{tag}first-x")),
                "{what}: the first line did not appear while its task ran"
            );
            assert_eq!(second, Ok(format!("{tag}second-x")), "{what}");
            assert!(status.success(), "{what}: {status:?}");
        }
    }
}

#[test]
fn line_buffer_with_keep_order_prints_in_input_order() {
    let ran = troop(
        &[
            "run",
            "-j2",
            "-k",
            "--lb",
            SLOW_PRINTER,
            ":::",
            "a",
            "b",
            "c",
        ],
        "",
    );
    ran.assert_ok_with("a1\na2\na3\nb1\nb2\nb3\nc1\nc2\nc3\n");
}

#[test]
fn line_buffer_keeps_a_last_line_without_newline() {
    let ran = troop(
        &[
            "run",
            "-k",
            "--line-buffer",
            "printf 'x{}\\ny{}'",
            ":::",
            "1",
            "2",
        ],
        "",
    );
    ran.assert_code(0);
    assert!(
        ran.stdout.contains("x1\n") && ran.stdout.contains("y1"),
        "{:?}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("x2\n") && ran.stdout.contains("y2"),
        "{:?}",
        ran.stdout
    );
}

#[test]
fn keep_order_holds_early_finishers() {
    // The first task is the slowest; -k still prints it first.
    check_like_parallel(
        None,
        &["-j3", "sleep {}; echo {}", ":::", "0.3", "0.1", "0"],
        "",
        "0.3\n0.1\n0\n",
    );
}

#[test]
fn tag_prefixes_every_line_with_the_argument_and_a_tab() {
    check_like_parallel(
        None,
        &["--tag", "echo 1{}; echo 2{}", ":::", "a", "b"],
        "",
        "a\t1a\na\t2a\nb\t1b\nb\t2b\n",
    );
}

#[test]
fn tag_joins_several_arguments_with_spaces() {
    check_like_parallel(
        None,
        &["--tag", "echo", ":::", "a", "b", ":::", "1"],
        "",
        "a 1\ta 1\nb 1\tb 1\n",
    );
}

#[test]
fn tag_with_line_buffer() {
    let ran = troop(
        &[
            "run",
            "-k",
            "--tag",
            "--line-buffer",
            SLOW_PRINTER,
            ":::",
            "a",
            "b",
        ],
        "",
    );
    ran.assert_ok_with("a\ta1\na\ta2\na\ta3\nb\tb1\nb\tb2\nb\tb3\n");
}

#[test]
fn dry_run_prints_commands_and_runs_nothing() {
    let dir = temp_dir();
    let made = dir.path().join("made");
    let made = made.to_str().expect("utf-8 path");
    let spaced = dir.path().join("two words");
    let spaced = spaced.to_str().expect("utf-8 path");
    let ran = troop_in(
        Some(dir.path()),
        &["run", "--dry-run", "-k", "touch", "{}", ":::", made, spaced],
        "",
    );
    ran.assert_ok_with(&format!("touch {made}\ntouch '{spaced}'\n"));
    let shell = troop_in(
        Some(dir.path()),
        &["run", "--dry-run", "echo {} > {}.out", ":::", made],
        "",
    );
    shell.assert_ok_with(&format!("echo {made} > {made}.out\n"));
    let kernel = troop_in(
        Some(dir.path()),
        &["run", "--dry-run", "@primes", "{}", ":::", "10"],
        "",
    );
    kernel.assert_ok_with("@primes 10\n");
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read the temp dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(entries.is_empty(), "--dry-run ran a task: {entries:?}");
}

#[test]
fn dry_run_matches_gnu_parallel() {
    check_like_parallel(
        None,
        &["--dry-run", "touch {}", ":::", "x", "y z"],
        "",
        "touch x\ntouch 'y z'\n",
    );
}
