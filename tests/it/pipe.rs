//! `--pipe` and `--pipepart`: standard input (or a file) cut into blocks of whole records, each
//! block the input of one task, checked in process and thread mode against expected outputs
//! written here and against GNU parallel.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Output;

use crate::util::{
    COMMAND_TIMEOUT, TROOP, check_modes_like_parallel, gnu_parallel_in, temp_dir, troop, write_file,
};

/// `seq 1 n`, as bytes.
fn seq(n: u64) -> String {
    (1..=n).map(|i| format!("{i}\n")).collect()
}

/// The sizes of the blocks GNU parallel cuts `input` into: as many whole lines as fit in
/// `block` bytes, a longer line alone.
fn packed(input: &str, block: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut current = 0;
    for line in input.split_inclusive('\n') {
        if current > 0 && current + line.len() > block {
            sizes.push(current);
            current = 0;
        }
        current += line.len();
    }
    if current > 0 {
        sizes.push(current);
    }
    sizes
}

/// Lines per block for blocks of these sizes.
fn lines_per_block(input: &str, sizes: &[usize]) -> String {
    let mut at = 0;
    let mut out = String::new();
    for size in sizes {
        let lines = input[at..at + size].matches('\n').count();
        out.push_str(&format!("{lines}\n"));
        at += size;
    }
    out
}

/// Checks that `troop run -k --mode M ARGS…` prints `expected` in process and thread mode, and
/// that GNU parallel given `-k ARGS…` does too.
#[track_caller]
fn check(dir: Option<&Path>, args: &[&str], stdin: &str, expected: &str) {
    for mode in ["process", "thread"] {
        let mut ours = vec!["run", "-k", "--mode", mode];
        ours.extend_from_slice(args);
        let ran = crate::util::troop_in(dir, &ours, stdin);
        assert_eq!(
            ran.code,
            Some(0),
            "troop {ours:?} failed; stderr: {}",
            ran.stderr
        );
        assert_eq!(
            ran.stdout, expected,
            "troop {ours:?}; stderr: {}",
            ran.stderr
        );
    }
    let mut theirs = vec!["-k"];
    theirs.extend_from_slice(args);
    if let Some(gnu) = gnu_parallel_in(dir, &theirs, stdin) {
        assert_eq!(
            gnu.stdout, expected,
            "GNU parallel {theirs:?}: {}",
            gnu.stderr
        );
    }
}

#[test]
fn default_blocks_are_one_mebibyte_of_whole_lines_in_order() {
    let input = seq(400_000);
    let expected = lines_per_block(&input, &packed(&input, 1 << 20));
    assert!(expected.lines().count() >= 2, "{expected}");
    check(None, &["--pipe", "wc", "-l"], &input, &expected);
}

#[test]
fn block_sizes_take_gnu_multipliers_k_for_1000_and_upper_k_for_1024() {
    let input = seq(20_000);
    let by = |block: usize| {
        packed(&input, block)
            .iter()
            .map(|s| format!("{s}\n"))
            .collect::<String>()
    };
    check(
        None,
        &["--pipe", "--block", "10k", "wc", "-c"],
        &input,
        &by(10_000),
    );
    check(
        None,
        &["--pipe", "--block", "10K", "wc", "-c"],
        &input,
        &by(10_240),
    );
}

#[test]
fn n_gives_exactly_that_many_records_per_block() {
    check(
        None,
        &["--pipe", "-N", "1000", "wc", "-l"],
        &seq(10_000),
        &"1000\n".repeat(10),
    );
}

#[test]
fn block_number_is_the_sequence_number() {
    check(
        None,
        &["--pipe", "-N2", "echo {#}; cat"],
        &seq(5),
        "1\n1\n2\n2\n3\n4\n3\n5\n",
    );
}

#[test]
fn l_makes_records_of_several_lines() {
    check(None, &["--pipe", "-L", "3", "wc", "-l"], &seq(10), "9\n1\n");
    check(
        None,
        &["--pipe", "-L", "3", "-N", "2", "wc", "-l"],
        &seq(10),
        "6\n4\n",
    );
    check(
        None,
        &["--pipe", "--block", "10", "-L", "3", "wc", "-l"],
        &seq(12),
        "3\n3\n3\n3\n",
    );
}

#[test]
fn recend_and_recstart_mark_where_records_split() {
    check(
        None,
        &["--pipe", "--recend", ";", "-N1", "cat; echo"],
        "a;b;c;",
        "a;\nb;\nc;\n",
    );
    check(
        None,
        &["--pipe", "--recstart", "X", "-N1", "echo [; cat"],
        "Xa\nb\nXc\nXd\n",
        "[\nXa\nb\n[\nXc\n[\nXd\n",
    );
    check(
        None,
        &[
            "--pipe",
            "--regexp",
            "--recstart",
            "[XY]",
            "-N1",
            "echo [; cat",
        ],
        "Xa\nYb\nc\n",
        "[\nXa\n[\nYb\nc\n",
    );
}

#[test]
fn header_is_repeated_at_the_top_of_every_block() {
    let input = "h1\nh2\na\nb\nc\n";
    check(
        None,
        &["--pipe", "--header", ":", "-N1", "cat"],
        input,
        "h1\nh2\nh1\na\nh1\nb\nh1\nc\n",
    );
    check(
        None,
        &["--pipe", "--header", "2", "-N2", "cat"],
        input,
        "h1\nh2\na\nb\nh1\nh2\nc\n",
    );
}

#[test]
fn cat_and_fifo_give_the_block_a_name() {
    let input = seq(3000);
    let expected = "1000\n".repeat(3);
    check(
        None,
        &["--pipe", "-N1000", "--cat", "wc -l < {}"],
        &input,
        &expected,
    );
    check(
        None,
        &["--pipe", "-N1000", "--fifo", "wc -l < {}"],
        &input,
        &expected,
    );
    // Without {}, the name is appended, as for any argument.
    check(
        None,
        &["--pipe", "-N2", "--cat", "cat"],
        "a\nb\nc\n",
        "a\nb\nc\n",
    );
}

#[test]
fn a_fifo_the_command_never_opens_does_not_hang_the_run() {
    let ran = troop(
        &["run", "--pipe", "-N1", "--fifo", "test -p {} && echo ran"],
        "a\nb\n",
    );
    ran.assert_ok_with("ran\nran\n");
}

/// The parts GNU parallel's --pipepart makes of `input`: each ends at the first line end at or
/// after the next multiple of `block` from its start.
fn parts(input: &str, block: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut start = 0;
    while start < input.len() {
        let want = start + block;
        let end = if want >= input.len() {
            input.len()
        } else {
            input[want - 1..]
                .find('\n')
                .map_or(input.len(), |i| want + i)
        };
        sizes.push(end - start);
        start = end;
    }
    sizes
}

#[test]
fn pipepart_reads_parts_of_the_file_at_record_ends() {
    let dir = temp_dir();
    let input = seq(200_000);
    write_file(dir.path(), "data", &input);
    let expected = lines_per_block(&input, &parts(&input, 100_000));
    assert!(expected.lines().count() > 5);
    check(
        Some(dir.path()),
        &["--pipepart", "-a", "data", "--block", "100k", "wc", "-l"],
        "",
        &expected,
    );
    write_file(dir.path(), "headed", "h\n1\n2\n3\n4\n");
    check(
        Some(dir.path()),
        &[
            "--pipepart",
            "-a",
            "headed",
            "--header",
            ":",
            "--block",
            "3",
            "cat; echo -",
        ],
        "",
        "h\n1\n2\n-\nh\n3\n4\n-\n",
    );
}

fn run_bytes(program: &str, args: &[&[u8]], stdin: &[u8]) -> Output {
    assert_cmd::Command::new(program)
        .args(args.iter().map(|a| OsString::from_vec(a.to_vec())))
        .write_stdin(stdin.to_vec())
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run the command")
}

#[test]
fn bytes_that_are_not_utf8_pass_unchanged() {
    let input = b"a\xff\n\xfe\xc3\n\x00z\n";
    let mut expected = Vec::new();
    for line in input.split_inclusive(|&b| b == b'\n') {
        expected.extend_from_slice(b"[\n");
        expected.extend_from_slice(line);
    }
    for mode in ["process", "thread"] {
        let out = run_bytes(
            TROOP,
            &[
                b"run",
                b"-k",
                b"--mode",
                mode.as_bytes(),
                b"--pipe",
                b"-N1",
                b"echo [; cat",
            ],
            input,
        );
        assert_eq!(
            out.stdout.escape_ascii().to_string(),
            expected.escape_ascii().to_string(),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if crate::util::require_gnu_parallel("the byte check against GNU parallel") {
        let out = run_bytes(
            "parallel",
            &[b"--will-cite", b"-k", b"--pipe", b"-N1", b"echo [; cat"],
            input,
        );
        assert_eq!(out.stdout, expected);
    }
}

#[test]
fn a_failed_block_is_retried_whole_and_logged_once() {
    for mode in ["process", "thread"] {
        let dir = temp_dir();
        std::fs::create_dir(dir.path().join("tries")).expect("mkdir");
        // Every block fails on its first attempt, then counts its lines: it must see all of them
        // again. Blocks of 50000 lines are large enough to travel as files in process mode.
        let command = "mkdir tries/{#} 2>/dev/null && { head -c 10 >/dev/null; exit 3; }; wc -l";
        let ran = crate::util::troop_in(
            Some(dir.path()),
            &[
                "run",
                "-k",
                "-j1",
                "--mode",
                mode,
                "--pipe",
                "-N",
                "50000",
                "--retries",
                "1",
                "--joblog",
                "log",
                command,
            ],
            &seq(100_000),
        );
        ran.assert_ok_with("50000\n50000\n");
        let log = std::fs::read_to_string(dir.path().join("log")).expect("job log");
        let rows: Vec<Vec<&str>> = log
            .lines()
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(rows.len(), 2, "{log}");
        // Send: the bytes the block held.
        let sizes = [seq(50_000).len(), seq(100_000).len() - seq(50_000).len()];
        for (row, size) in rows.iter().zip(sizes) {
            assert_eq!(row[4], size.to_string(), "{log}");
            assert_eq!(row[6], "0", "{log}");
        }
    }
}

#[test]
fn empty_input_runs_no_task() {
    check(None, &["--pipe", "echo ran"], "", "");
}

#[test]
fn bad_pipe_values_name_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["--pipe", "--block", "0", "cat"], "--block"),
        (&["--pipe", "--block", "1X", "cat"], "--block"),
        (&["--pipe", "-N", "many", "cat"], "-N"),
        (&["--pipe", "--recend", "", "cat"], "--recend"),
        (&["--pipe", "--regexp", "--recend", "(", "cat"], "--recend"),
        (&["--pipepart", "cat"], "--pipepart"),
        (&["--block", "1M", "cat"], "--block"),
        (&["--pipe", "cat", ":::", "a"], "--pipe"),
        (
            &["--pipe", "--resume", "--joblog", "/dev/null", "cat"],
            "--resume",
        ),
    ];
    for (args, option) in cases {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let ran = troop(&all, "a\n");
        ran.assert_code(255);
        assert!(ran.stderr.contains(option), "{all:?}: {}", ran.stderr);
    }
}

/// Runs `troop run ARGS…` and sums the numbers it prints, one per line: (lines, sum).
fn count_and_sum(args: &[&str], stdin: &str) -> (usize, u64) {
    let ran = troop(args, stdin);
    ran.assert_code(0);
    let numbers: Vec<u64> = ran
        .lines()
        .iter()
        .map(|l| l.trim().parse().expect("a count"))
        .collect();
    (numbers.len(), numbers.iter().sum())
}

#[test]
fn roundrobin_deals_blocks_to_one_task_per_worker() {
    let input = seq(100_000);
    for mode in ["process", "thread", "async"] {
        let args = [
            "run",
            "--mode",
            mode,
            "-j4",
            "--pipe",
            "--roundrobin",
            "--block",
            "10k",
            "wc",
            "-l",
        ];
        assert_eq!(count_and_sum(&args, &input), (4, 100_000), "{mode}");
    }
    if let Some(gnu) = gnu_parallel_in(
        None,
        &[
            "-j4",
            "--pipe",
            "--roundrobin",
            "--block",
            "10k",
            "wc",
            "-l",
        ],
        &input,
    ) {
        assert_eq!(gnu.lines().len(), 4);
    }
    // One block starts one task only, as in GNU parallel.
    check(
        None,
        &["-j4", "--pipe", "--roundrobin", "wc", "-l"],
        &seq(10),
        "10\n",
    );
}

#[test]
fn roundrobin_refuses_retries_which_could_not_read_the_stream_again() {
    let ran = troop(
        &["run", "--pipe", "--roundrobin", "--retries", "1", "cat"],
        "a\n",
    );
    ran.assert_code(255);
    assert!(ran.stderr.contains("--roundrobin"), "{}", ran.stderr);
}

#[test]
fn blocks_read_ahead_stay_few_while_tasks_are_slow() {
    // 100 blocks of about 100 KB, each held in a file of the run's directory until its task is
    // settled. Each task counts those files while the input waits: with two workers, at most
    // two blocks each plus a few read ahead may exist, never the whole input.
    let input = seq(1_700_000);
    let command = "sleep 0.05; ls \"$(dirname {})\" | grep -c '^block-'";
    let ran = troop(
        &["run", "-j2", "--pipe", "--block", "100k", "--cat", command],
        &input,
    );
    ran.assert_code(0);
    let counts: Vec<usize> = ran
        .lines()
        .iter()
        .map(|l| l.trim().parse().expect("a count"))
        .collect();
    assert!(counts.len() >= 100, "{} tasks", counts.len());
    let most = counts.iter().max().copied().unwrap_or(0);
    assert!(most <= 8, "{most} blocks held at once: {counts:?}");
}

#[test]
fn dry_run_prints_one_command_per_block() {
    check(
        None,
        &["--pipe", "-N1", "--dry-run", "wc -l {#}"],
        &seq(3),
        "wc -l 1\nwc -l 2\nwc -l 3\n",
    );
}

#[test]
fn gil_and_async_modes_cut_the_same_blocks() {
    let input = seq(100_000);
    let expected = lines_per_block(&input, &packed(&input, 100 * 1024));
    for mode in ["gil", "async"] {
        let ran = troop(
            &[
                "run", "-k", "--mode", mode, "--pipe", "--block", "100K", "wc", "-l",
            ],
            &input,
        );
        ran.assert_ok_with(&expected);
    }
}

#[test]
fn pipepart_parts_can_be_files_or_fifos() {
    let dir = temp_dir();
    let input = seq(30_000);
    write_file(dir.path(), "data", &input);
    let expected = lines_per_block(&input, &parts(&input, 50_000));
    for via in ["--cat", "--fifo"] {
        check(
            Some(dir.path()),
            &[
                "--pipepart",
                "-a",
                "data",
                "--block",
                "50k",
                via,
                "wc -l < {}",
            ],
            "",
            &expected,
        );
    }
}

/// A part whose size lands exactly on a record start takes the next record too, as GNU
/// parallel's parts do (`seq 10000` has its 2223rd line start at byte 10003 = 3 + 10000).
#[test]
fn pipepart_parts_that_end_on_a_record_start_take_one_record_more() {
    let dir = temp_dir();
    let numbers: String = (1..=10000).map(|n| format!("{n}\n")).collect();
    write_file(dir.path(), "big", &numbers);
    check_modes_like_parallel(
        Some(dir.path()),
        &[
            "--pipepart",
            "-a",
            "big",
            "--block",
            "10k",
            "-k",
            "wc",
            "-l",
        ],
        "",
        "2222\n2001\n2001\n2001\n1775\n",
    );
}
