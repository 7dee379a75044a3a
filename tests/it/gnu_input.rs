//! GNU parallel's input options, run in process and thread mode and checked against fixed
//! expectations and, when it is installed, against GNU parallel given the same arguments.

use crate::util::{
    check_modes_like_parallel, check_refused, gnu_parallel_in, skip, temp_dir, troop, write_file,
};

/// The modes every option is checked in.
const MODES: [&str; 2] = ["process", "thread"];

/// Runs `troop run -k --mode M ARGS…` for each mode in `dir` and checks each prints `expected`
/// and succeeds; when GNU parallel is installed, checks `parallel -k ARGS…` prints the same.
#[track_caller]
fn check_in(dir: Option<&std::path::Path>, args: &[&str], stdin: &str, expected: &str) {
    let mut keep_order = vec!["-k"];
    keep_order.extend_from_slice(args);
    crate::util::check_modes_like_parallel(dir, &keep_order, stdin, expected);
}

#[track_caller]
fn check(args: &[&str], stdin: &str, expected: &str) {
    check_in(None, args, stdin, expected);
}

/// Checks troop alone, where GNU parallel 20221122 differs on purpose or cannot run the case.
#[track_caller]
fn check_troop(args: &[&str], stdin: &str, expected: &str) {
    for mode in MODES {
        let mut ours = vec!["run", "-k", "--mode", mode];
        ours.extend_from_slice(args);
        troop(&ours, stdin).assert_ok_with(expected);
    }
}

#[test]
fn null_ends_items_at_nul_and_keeps_newlines() {
    check(&["-0", "echo", "[{}]"], "a b\0c\nd\0", "[a b]\n[c\nd]\n");
    check(&["--null", "echo", "[{}]"], "x\0y", "[x]\n[y]\n");
}

#[test]
fn null_reads_find_print0_output() {
    let dir = temp_dir();
    write_file(dir.path(), "with space.txt", "1");
    write_file(dir.path(), "line\nbreak.txt", "2");
    let list = "./line\nbreak.txt\0./with space.txt\0";
    check_in(
        Some(dir.path()),
        &["-0", "cat"],
        list,
        "21", // cat prints the two files' contents, in input order
    );
}

#[test]
fn delimiter_takes_text_and_escapes() {
    check(&["-d", ",", "echo", "[{}]"], "a,b,c\n", "[a]\n[b]\n[c\n]\n");
    check(&["-d", r"\t", "echo", "[{}]"], "a\tb\tc", "[a]\n[b]\n[c]\n");
    check(
        &["-d", "::", "echo", "[{}]"],
        "a::b:c::d",
        "[a]\n[b:c]\n[d]\n",
    );
    check(&["-d", r"\0", "echo", "[{}]"], "a\0b", "[a]\n[b]\n");
    check(&["-d", r"\101", "echo", "[{}]"], "aAb", "[a]\n[b]\n");
    check(&["-d", r"\r\n", "echo", "[{}]"], "x\r\ny\r\n", "[x]\n[y]\n");
    check(&["--delimiter", "-", "echo", "[{}]"], "p-q", "[p]\n[q]\n");
}

#[test]
fn delimiter_hex_escape() {
    // GNU parallel 20221122 reads `\xHH` as plain text; troop reads it as the byte.
    check_troop(&["-d", r"\x41", "echo", "[{}]"], "aAbAc", "[a]\n[b]\n[c]\n");
    check_troop(&["-d", r"\x2c", "echo", "[{}]"], "1,2", "[1]\n[2]\n");
}

#[test]
fn bad_delimiter_is_refused_naming_the_option() {
    check_refused(&["-d", r"\x4", "echo", ":::", "a"], "--delimiter");
    check_refused(&["-d", "", "echo", ":::", "a"], "--delimiter");
}

#[test]
fn eof_string_ends_a_source() {
    check(&["-E", "STOP", "echo"], "a\nb\nSTOP\nc\n", "a\nb\n");
    check(&["-E", "b", "echo", ":::", "a", "b", "c"], "", "a\n");
    check(&["-E", "", "echo"], "a\nb\n", "a\nb\n");
}

#[test]
fn no_run_if_empty_skips_blank_items() {
    check(&["-r", "echo", "[{}]"], "a\n\n  \nb\n", "[a]\n[b]\n");
    check(&["echo", "[{}]"], "a\n\n  \nb\n", "[a]\n[]\n[  ]\n[b]\n");
    check(&["--no-run-if-empty", "echo", "hi"], "\n\n", "");
    check(&["-r", "echo", "x", ":::", "", " ", "a"], "", "x a\n");
}

#[test]
fn trim_strips_the_sides_asked_for() {
    for (how, want) in [
        ("n", "[  a  ]\n"),
        ("l", "[a  ]\n"),
        ("r", "[  a]\n"),
        ("lr", "[a]\n"),
        ("rl", "[a]\n"),
    ] {
        check(&["--trim", how, "echo", "[{}]"], "  a  \n", want);
    }
    check(
        &["--trim", "n", "--colsep", ",", "echo", "[{1}][{2}]"],
        " a , b \n",
        "[ a ][ b ]\n",
    );
}

#[test]
fn colsep_trims_columns_unless_told_not_to() {
    check(
        &["--colsep", ",", "echo", "[{1}][{2}]"],
        " a , b \n",
        "[a][b]\n",
    );
}

#[test]
fn bad_trim_is_refused_naming_the_option() {
    let ran = check_refused(&["--trim", "x", "echo", ":::", "a"], "--trim");
    assert!(ran.stderr.contains("lr"), "{}", ran.stderr);
    if let Some(gnu) = gnu_parallel_in(None, &["--trim", "x", "echo", ":::", "a"], "") {
        gnu.assert_code(255);
    }
}

#[test]
fn replace_string_takes_the_place_of_braces() {
    check(&["-I", ",,", "echo", ",,", "{}", ":::", "a"], "", "a {}\n");
    check(
        &["-I", ",,", "echo", ",,.", "{.}", "{1}", ",,1", ":::", "a.b"],
        "",
        "a.b. a {1} a.b1\n",
    );
    check(
        &[
            "-I", ",,", "echo", ",,", "{1.}", "{/}", "{#}", ":::", "x/a.b",
        ],
        "",
        "x/a.b x/a a.b 1\n",
    );
    check(&["-I", "{}", "echo", "{}", "{1}", ":::", "a"], "", "a a\n");
    check(
        &["--replace=X", "echo", "X", "{}", ":::", "a"],
        "",
        "a {}\n",
    );
}

#[test]
fn replace_string_without_a_value_is_braces() {
    // GNU parallel's `-i` and `--replace` take the next word as their value when one follows;
    // troop takes a value only after `=`.
    check_troop(&["-i", "echo", "={}=", ":::", "a"], "", "=a=\n");
    check_troop(&["--replace", "echo", "={}=", ":::", "a"], "", "=a=\n");
}

#[test]
fn replace_string_is_appended_when_unused() {
    check(&["-I", "XX", "echo", ":::", "a", "b"], "", "a\nb\n");
}

#[test]
fn header_names_the_columns_of_stdin() {
    check(
        &["--header", ":", "echo", "{name}-{age}-{1}"],
        "name\tage\nbob\t3\nal\t4\n",
        "bob-3-bob\nal-4-al\n",
    );
    check(
        &["--header", ":", "--colsep", ",", "echo", "{name}-{age}"],
        "name,age\nbob,3\n",
        "bob-3\n",
    );
    check(
        &["--header", "1", "--colsep", ",", "echo", "{name}-{age}"],
        "name,age\nbob,3\n",
        "bob-3\n",
    );
    check(
        &[
            "--header", ":", "--colsep", ",", "echo", "={}=", "{n/}", "{n.}",
        ],
        "n,a\nx/bob.x,3\n",
        "=x/bob.x 3= bob.x x/bob\n",
    );
    check(
        &["--header", "0", "--colsep", ",", "echo", "[{1}][{2}]"],
        "a,b\n1,2\n",
        "[a][b]\n[1][2]\n",
    );
}

#[test]
fn header_names_the_arguments_of_each_source() {
    check(
        &[
            "--header", ":", "echo", "{a}-{b}", ":::", "a", "1", "2", ":::", "b", "x", "y",
        ],
        "",
        "1-x\n1-y\n2-x\n2-y\n",
    );
    check(
        &[
            "--header", ":", "--colsep", ",", "echo", "{a}", ":::", "a,b", "1,2",
        ],
        "",
        "1\n",
    );
}

#[test]
fn header_of_a_file_source() {
    let dir = temp_dir();
    write_file(dir.path(), "t.tsv", "host\tport\nh1\t22\nh2\t80\n");
    check_in(
        Some(dir.path()),
        &["--header", ":", "-a", "t.tsv", "echo", "{host}:{port}"],
        "",
        "h1:22\nh2:80\n",
    );
}

#[test]
fn unknown_column_name_stays_as_written() {
    check(
        &["--header", ":", "echo", "{nosuch}", "{n}"],
        "n\nv\n",
        "{nosuch} v\n",
    );
}

/// Whether GNU parallel can read CSV here (it needs Perl's Text::CSV).
fn gnu_reads_csv() -> bool {
    gnu_parallel_in(None, &["--csv", "echo", ":::", "a"], "")
        .is_some_and(|r| !r.stderr.contains("Text::CSV"))
}

/// [`check`] for `--csv`: GNU parallel is asked only where it has Text::CSV.
#[track_caller]
fn check_csv(args: &[&str], stdin: &str, expected: &str) {
    if gnu_reads_csv() {
        check(args, stdin, expected);
    } else {
        skip(
            "the --csv cross-check against GNU parallel",
            "Perl's Text::CSV is not installed",
        );
        check_troop(args, stdin, expected);
    }
}

#[test]
fn csv_fields_may_hold_separators_quotes_and_newlines() {
    check_csv(
        &["--csv", "echo", "[{1}][{2}][{3}]"],
        "a,\"b,c\",d\n\"x\ny\",2,3\n",
        "[a][b,c][d]\n[x\ny][2][3]\n",
    );
    check_csv(
        &["--csv", "echo", "[{1}][{2}]"],
        "\"a\"\"b\",c\n a , b \n",
        "[a\"b][c]\n[ a ][ b ]\n",
    );
    check_csv(
        &["--csv", "echo", "[{1}][{2}][{3}]"],
        "a,,c\n\nd\n",
        "[a][][c]\n[][][]\n[d][][]\n",
    );
    check_csv(&["--csv", "echo", "[{}]"], "a,\"b c\",d\n", "[a b c d]\n");
}

#[test]
fn csv_with_header_and_separator() {
    check_csv(
        &["--csv", "--header", ":", "echo", "[{n}][{v}]"],
        "n,v\n\"a b\",2\n",
        "[a b][2]\n",
    );
    check_csv(
        &["--csv", "--colsep", ";", "echo", "[{1}][{2}]"],
        "a;\"b;c\"\n",
        "[a][b;c]\n",
    );
    check_csv(
        &["--csv", "echo", "[{1}][{2}]", ":::", "a,b", "\"c,d\",e"],
        "",
        "[a][b]\n[c,d][e]\n",
    );
}

#[test]
fn csv_separator_must_be_one_character() {
    check_refused(&["--csv", "--colsep", "ab", "echo", ":::", "a"], "--colsep");
}

#[test]
fn max_args_puts_n_items_in_each_command() {
    check(
        &["-n2", "echo", ":::", "a", "b", "c", "d", "e"],
        "",
        "a b\nc d\ne\n",
    );
    check(
        &["-n", "2", "echo", "{1}-{2}", ":::", "a", "b", "c", "d", "e"],
        "",
        "a-b\nc-d\ne-\n",
    );
    check(
        &["--max-args", "2", "echo", "[{}]"],
        "a\nb\nc\n",
        "[a b]\n[c]\n",
    );
    check(
        &["-n2", "--dry-run", "echo", ":::", "a", "b c", "d"],
        "",
        "echo a 'b c'\necho d\n",
    );
    check(
        &["-n2", "--tag", "echo", ":::", "a", "b", "c"],
        "",
        "a b\ta b\nc\tc\n",
    );
}

#[test]
fn max_args_flattens_the_columns_of_each_item() {
    check(
        &[
            "-n2", "echo", "{1}", "{2}", "{3}", ":::", "a", "b", ":::", "1", "2",
        ],
        "",
        "a 1 a\nb 1 b\n",
    );
    check(
        &[
            "-n2", "--colsep", ",", "echo", "{1}", "{2}", "{3}", ":::", "a,b", "c,d",
        ],
        "",
        "a b c\n",
    );
}

#[test]
fn max_replace_args_sets_positions_and_repeats_context() {
    check(
        &["-N2", "echo", "{1}-{2}", ":::", "a", "b", "c", "d", "e"],
        "",
        "a-b\nc-d\ne-\n",
    );
    check(
        &["-N2", "echo", "[{}]", ":::", "a", "b", "c"],
        "",
        "[a] [b]\n[c]\n",
    );
    check(
        &["-N0", "echo", "hi", ":::", "a", "b", "c"],
        "",
        "hi\nhi\nhi\n",
    );
    check(
        &["-N", "3", "echo", "{3}:{1}"],
        "root\nx\n0\nbin\nx\n1\n",
        "0:root\n1:bin\n",
    );
}

#[test]
fn context_replace_repeats_the_word_for_each_item() {
    check(
        &["-j1", "-X", "echo", "pre-{}-post", ":::", "a", "b", "c"],
        "",
        "pre-a-post pre-b-post pre-c-post\n",
    );
    check(
        &[
            "-j1", "-X", "echo", "x{}y", "|", "tr", "a-z", "A-Z", ":::", "a", "b",
        ],
        "",
        "XAY XBY\n",
    );
    check(
        &["-n2", "-X", "echo", "x{}y", ":::", "a", "b", "c", "d", "e"],
        "",
        "xay xby\nxcy xdy\nxey\n",
    );
}

#[test]
fn multiple_puts_all_values_in_one_place() {
    check(
        &["-j1", "-m", "echo", "pre-{}-post", ":::", "a", "b", "c"],
        "",
        "pre-a b c-post\n",
    );
}

#[test]
fn context_and_multiple_spread_the_last_items_over_the_jobs() {
    check(
        &[
            "-j3", "-X", "echo", ":::", "a", "b", "c", "d", "e", "f", "g",
        ],
        "",
        "a b c\nd e f\ng\n",
    );
    check(
        &["-j2", "-m", "echo", ":::", "a", "b", "c", "d", "e"],
        "",
        "a b c\nd e\n",
    );
    check(
        &["-j2", "-X", "echo", "{.}", "{#}", ":::", "a.x", "b.y"],
        "",
        "a 1\nb 2\n",
    );
    check(
        &["-j1", "-X", "echo", ":::", "a", "b", "c", "d", "e"],
        "",
        "a b c d e\n",
    );
}

#[test]
fn xargs_fills_each_command_without_spreading() {
    check(
        &["-j4", "--xargs", "echo", ":::", "a", "b", "c", "d", "e"],
        "",
        "a b c d e\n",
    );
    check(
        &[
            "--xargs", "-s", "16", "echo", ":::", "aaa", "bbb", "ccc", "ddd", "eee",
        ],
        "",
        "aaa bbb\nccc ddd\neee\n",
    );
}

#[test]
fn max_chars_bounds_the_command_line() {
    check(
        &[
            "-j1", "-s", "12", "-X", "echo", ":::", "aaa", "bbb", "ccc", "ddd",
        ],
        "",
        "aaa\nbbb\nccc\nddd\n",
    );
    check(
        &[
            "-j1", "-s", "13", "-X", "echo", ":::", "aaa", "bbb", "ccc", "ddd",
        ],
        "",
        "aaa bbb\nccc ddd\n",
    );
}

#[test]
fn an_item_longer_than_max_chars_is_an_error() {
    let ran = check_refused(&["-s", "3", "echo", ":::", "aaa"], "too long");
    assert!(ran.stderr.contains("aaa"), "{}", ran.stderr);
    if let Some(gnu) = gnu_parallel_in(None, &["-s", "3", "echo", ":::", "aaa"], "") {
        gnu.assert_code(255);
    }
}

#[test]
fn bad_counts_are_refused_naming_the_option() {
    check_refused(&["-n", "x", "echo", ":::", "a"], "--max-args");
    check_refused(&["-N", "-1", "echo", ":::", "a"], "-N");
    check_refused(&["-L", "2q", "echo", ":::", "a"], "--max-lines");
    check_refused(&["-s", "0", "echo", ":::", "a"], "--max-chars");
}

#[test]
fn max_lines_groups_lines_and_continues_after_a_blank() {
    check(
        &["-L2", "echo", "[{}]"],
        "a b\nc d\ne\n",
        "[a b] [c d]\n[e]\n",
    );
    check(
        &["-L1", "echo", "[{}]"],
        "a b \nc d\ne\n",
        "[a b c d]\n[e]\n",
    );
    check(
        &["--max-lines", "2", "--colsep", ",", "echo", "{1}-{2}-{3}"],
        "a,b\nc,d\ne,f\n",
        "a-b-c\ne-f-\n",
    );
    check(&["-L1", "-m", "echo", "[{}]"], "a\nb\n", "[a]\n[b]\n");
}

/// Runs `troop run -X COMMAND` over `names` and returns the commands it ran, one output line
/// each.
fn context_commands(mode: &str, names: &str, command: &[&str]) -> Vec<String> {
    let mut args = vec!["run", "--mode", mode, "-X"];
    args.extend_from_slice(command);
    let ran = troop(&args, names);
    ran.assert_code(0);
    ran.stdout.lines().map(str::to_string).collect()
}

#[test]
fn context_replace_on_100000_names_builds_as_few_commands_as_fit() {
    let names: String = (0..100_000)
        .map(|i| format!("some/dir/file_{i:06}.txt\n"))
        .collect();
    for mode in MODES {
        // Run directly, a command takes arguments up to ARG_MAX less the environment (2 MiB
        // less on Linux by default): all 2.5 MB of names fit in 2 commands, spread over the
        // job slots at the end.
        let lines = context_commands(mode, &names, &["-j1", "echo"]);
        let words: usize = lines.iter().map(|l| l.split(' ').count()).sum();
        assert_eq!(words, 100_000, "every name once");
        let total: usize = 2_500_000 + 100_000 * 9;
        let least = total.div_ceil(ArgLimitProbe::total());
        assert!(
            lines.len() <= least + 1,
            "{} commands, {least} would do",
            lines.len()
        );
        // Through the shell, the script is one argument of at most 128 KiB.
        let lines = context_commands(mode, &names, &["-j1", "echo", "{}", "|", "cat"]);
        let words: usize = lines.iter().map(|l| l.split(' ').count()).sum();
        assert_eq!(words, 100_000, "every name once");
        let least = 2_600_000usize.div_ceil(128 * 1024);
        assert!(
            (least..=least + 1).contains(&lines.len()),
            "{} commands, {least} would do",
            lines.len()
        );
    }
}

/// The room for arguments the tests' environment leaves, as troop computes it.
struct ArgLimitProbe;

impl ArgLimitProbe {
    fn total() -> usize {
        // SAFETY: sysconf has no preconditions.
        let arg_max = (unsafe { libc::sysconf(libc::_SC_ARG_MAX) } as usize).clamp(4096, 6 << 20);
        let env: usize = std::env::vars_os()
            .map(|(k, v)| k.len() + v.len() + 2 + 8)
            .sum();
        arg_max - env - 4096 - 8
    }
}

#[test]
fn show_limits_prints_the_limits_and_runs() {
    for mode in MODES {
        let ran = troop(
            &["run", "--mode", mode, "--show-limits", "echo", ":::", "a"],
            "",
        );
        ran.assert_code(0);
        let lines = ran.lines();
        assert!(
            lines[0].starts_with("Maximal size of command: "),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("Maximal usable size of command: "),
            "{lines:?}"
        );
        let usable: usize = lines[1].rsplit(' ').next().unwrap().parse().unwrap();
        assert!(usable > 100_000, "{usable}");
        assert_eq!(lines.last(), Some(&"a"), "then it runs");
    }
}

#[test]
fn will_cite_citation_and_bibtex_are_accepted_without_a_word() {
    check(&["--will-cite", "echo", ":::", "a"], "", "a\n");
    for flag in [
        "--citation",
        "--bibtex",
        "--willcite",
        "--nn",
        "--no-notice",
    ] {
        check_troop(&[flag, "echo", ":::", "a"], "", "a\n");
    }
    // Alone, GNU parallel's --citation and --bibtex print a notice and run nothing.
    for flag in ["--citation", "--bibtex"] {
        let alone = troop(&["run", flag], "");
        alone.assert_ok_with("");
        assert_eq!(alone.stderr, "", "{flag}");
    }
}

#[test]
fn run_version_prints_the_version() {
    let ran = troop(&["run", "--version"], "");
    ran.assert_code(0);
    assert_eq!(
        ran.stdout,
        format!("troop {}\n", env!("CARGO_PKG_VERSION")),
        "{}",
        ran.stderr
    );
    assert_eq!(troop(&["--version"], "").stdout, ran.stdout);
}

#[test]
fn a_gnu_option_troop_lacks_is_named_as_such() {
    for (args, name) in [
        (&["--tmux", "echo", ":::", "a"][..], "--tmux"),
        (&["--semaphore=x", "echo", ":::", "a"], "--semaphore"),
        (&["--sqlmaster", "x", "echo"], "--sqlmaster"),
    ] {
        let ran = check_refused(args, name);
        assert!(
            ran.stderr.contains(&format!(
                "`{name}` is a GNU parallel option that troop does not support"
            )),
            "{}",
            ran.stderr
        );
        assert!(!ran.stderr.contains("similar"), "{}", ran.stderr);
    }
    // An option GNU parallel does not have either keeps the usual message.
    let ran = check_refused(&["--no-such-option", "echo"], "--no-such-option");
    assert!(!ran.stderr.contains("GNU parallel"), "{}", ran.stderr);
}

#[test]
fn gnu_parallels_other_spellings_of_the_input_options() {
    check(&["--eof=X", "echo"], "a\nX\nb\n", "a\n");
    check(&["-l", "2", "echo"], "a\nb\nc\n", "a b\nc\n");
    check(&["--maxargs", "2", "echo"], "a\nb\nc\n", "a b\nc\n");
    check(&["--maxlines", "2", "echo"], "a\nb\nc\n", "a b\nc\n");
    check(&["--norunifempty", "echo"], "a\n\n", "a\n");
    check(&["--max-replace-args", "2", "echo", "{2}"], "a\nb\n", "b\n");
    check_troop(&["-e", "echo"], "a\nX\n", "a\nX\n");
}

#[test]
fn context_replace_keeps_positions_for_the_whole_command() {
    check(
        &["-j1", "-X", "echo", "{1}:{}", ":::", "a", "b", "c"],
        "",
        "a:a a:b a:c\n",
    );
    check(
        &["-j1", "-N2", "echo", "{1}:{}", ":::", "a", "b", "c", "d"],
        "",
        "a:a a:b\nc:c c:d\n",
    );
    check(
        &["-j1", "-X", "echo", "{1}:{}", "|", "cat", ":::", "a", "b"],
        "",
        "a:a a:b\n",
    );
    check(
        &[
            "-j1", "-X", "--header", ":", "echo", "x{h}", ":::", "h", "a", "b",
        ],
        "",
        "xa\n",
    );
}

#[test]
fn max_chars_cuts_where_gnu_parallel_cuts() {
    let numbers: String = (1..=200).map(|i| format!("{i}\n")).collect();
    for args in [
        &["-s", "100", "-X", "echo"][..],
        &["-j1", "-s", "50", "-X", "echo", "x{}y"],
        &["-j1", "-s", "50", "-m", "echo", "x{}y"],
        &["-j1", "-s", "60", "--xargs", "echo", "{}", "{}"],
        &["-j1", "-s", "50", "-X", "echo", "{}", "|", "cat"],
    ] {
        for mode in MODES {
            let mut ours = vec!["run", "-k", "--mode", mode];
            ours.extend_from_slice(args);
            let ran = troop(&ours, &numbers);
            ran.assert_code(0);
            let limit: usize = args[args.iter().position(|a| *a == "-s").unwrap() + 1]
                .parse()
                .unwrap();
            // Every command line (`echo` and a space, then what it prints) is shorter than -s.
            assert!(
                ran.lines().iter().all(|l| l.len() + 5 < limit),
                "{args:?}: {}",
                ran.stdout
            );
            let mut gnu = vec!["-k"];
            gnu.extend_from_slice(args);
            if let Some(gnu) = gnu_parallel_in(None, &gnu, &numbers) {
                assert_eq!(ran.stdout, gnu.stdout, "{args:?} in {mode} mode");
            }
        }
    }
}

#[test]
fn context_replace_repeats_for_each_value_of_several_columns() {
    check(
        &[
            "-j1", "-X", "--colsep", ",", "echo", "x{}y{1}", ":::", "a,b", "c,d",
        ],
        "",
        "xaya xbya xcya xdya\n",
    );
    check(
        &[
            "-j1", "-X", "echo", "x{}y", ":::", "a", "b", ":::", "1", "2",
        ],
        "",
        "xay x1y xay x2y xby x1y xby x2y\n",
    );
    check(
        &[
            "-j1", "-N2", "echo", "x{}y", ":::", "a", "b", ":::", "1", "2",
        ],
        "",
        "xay x1y xay x2y\nxby x1y xby x2y\n",
    );
}

/// `--plus`: the extra replacement strings, on values with and without directories and
/// extensions, positional forms included; without `--plus` they are plain text.
#[test]
fn plus_strings_split_paths_and_extensions_as_gnu_parallel_does() {
    let template = "echo '{..}:{...}:{/..}:{/...}:{+/}:{+.}:{+..}:{+...}:{1..}'";
    let values = [
        "a/b.tar.gz",
        "x.tar.gz.bz2",
        "plain",
        "dir/plain",
        "a.b/c",
        ".hidden",
        "a/b.c.d.e",
        "/r.x",
    ];
    let mut args = vec!["-k", "--plus", template, ":::"];
    args.extend_from_slice(&values);
    let expected = "\
a/b:a/b.tar.gz:b:b.tar.gz:a:gz:tar.gz::a/b
x.tar:x:x.tar:x::bz2:gz.bz2:tar.gz.bz2:x.tar
plain:plain:plain:plain:::::plain
dir/plain:dir/plain:plain:plain:dir::::dir/plain
a.b/c:a.b/c:c:c:a.b:b/c:::a.b/c
.hidden:.hidden:.hidden:.hidden::hidden:::.hidden
a/b.c:a/b:b.c:b:a:e:d.e:c.d.e:a/b.c
/r.x:/r.x:r.x:r.x::x:::/r.x
";
    check_modes_like_parallel(None, &args, "", expected);
    // Without --plus the strings are plain text, in troop as in GNU parallel.
    check_modes_like_parallel(
        None,
        &["echo", "{..}", "{+/}", ":::", "a.b.c"],
        "",
        "{..} {+/} a.b.c\n",
    );
}

/// `--link` (and its old name `--xapply`): the sources are zipped and shorter ones start over
/// until the longest ends, while `:::+` stops at the shortest.
#[test]
fn link_zips_every_source_and_wraps_the_shorter_ones() {
    for link in ["--link", "--xapply"] {
        check_modes_like_parallel(
            None,
            &[
                "-k", link, "echo", ":::", "a", "b", ":::", "1", "2", "3", ":::", "X",
            ],
            "",
            "a 1 X\nb 2 X\na 3 X\n",
        );
    }
    check_modes_like_parallel(
        None,
        &["-k", "echo", ":::", "a", "b", ":::+", "1", "2", "3"],
        "",
        "a 1\nb 2\n",
    );
}

/// `--arg-sep` and `--arg-file-sep` change the words that start sources; `:::` is then a
/// plain word of the command.
#[test]
fn source_separators_can_be_changed() {
    let dir = temp_dir();
    write_file(dir.path(), "in.txt", "f1\nf2\n");
    check_modes_like_parallel(
        Some(dir.path()),
        &["-k", "--arg-sep", ",,,", "echo", ":::", ",,,", "a", "b"],
        "",
        "::: a\n::: b\n",
    );
    check_modes_like_parallel(
        Some(dir.path()),
        &[
            "-k",
            "--arg-file-sep",
            "FILES",
            "echo",
            "FILES",
            "in.txt",
            ":::",
            "x",
        ],
        "",
        "f1 x\nf2 x\n",
    );
}

/// A `:::` value that holds newlines is several values, as in GNU parallel (its values pass
/// through a queue of lines); with `-d` the value stays whole.
#[test]
fn a_value_with_newlines_is_several_values() {
    check_modes_like_parallel(
        None,
        &["-k", "echo", "[{}]", ":::", "a\nb", "x\n", "y"],
        "",
        "[a]\n[b]\n[x]\n[]\n[y]\n",
    );
}

/// `--halt-on-error` is GNU parallel's old name of `--halt`.
#[test]
fn halt_on_error_is_halt() {
    for mode in ["process", "thread"] {
        let ran = troop(
            &[
                "run",
                "--mode",
                mode,
                "-k",
                "-j1",
                "--halt-on-error",
                "1",
                "echo {}; exit {}",
                ":::",
                "0",
                "1",
                "0",
            ],
            "",
        );
        ran.assert_code(1);
        assert_eq!(ran.stdout, "0\n1\n", "{mode}: {}", ran.stderr);
    }
    if let Some(gnu) = gnu_parallel_in(
        None,
        &[
            "-k",
            "-j1",
            "--halt-on-error",
            "1",
            "echo {}; exit {}",
            ":::",
            "0",
            "1",
            "0",
        ],
        "",
    ) {
        assert_eq!((gnu.code, gnu.stdout.as_str()), (Some(1), "0\n1\n"));
    }
}

/// `--plus`'s shell-like edits of `{}`: defaults, substrings, prefix and suffix removal,
/// substitution and case changes, as GNU parallel applies them.
#[test]
fn plus_edits_change_the_value_as_the_shells_do() {
    check_modes_like_parallel(
        None,
        &[
            "-k", "--plus", "echo", "{:-none}", "{:2}", "{:1:3}", "{//a/X}", "{^a}", "{,,B}",
            "{%.gz}", "{#a}", ":::", "", "abcaB.gz",
        ],
        "",
        "none       \nabcaB.gz caB.gz bca XbcXB.gz AbcaB.gz abcab.gz abcaB bcaB.gz\n",
    );
    check_modes_like_parallel(
        None,
        &[
            "-k",
            "--plus",
            "echo",
            "{##z.*z.}",
            "{#z.*z.}",
            "{%.z.*z}",
            "{%%.z.*z}",
            ":::",
            "z.z.z.foo",
        ],
        "",
        "foo z.foo z.z.z.foo z.z.z.foo\n",
    );
}

/// `--plus`'s `{##}` (the number of tasks) and `{0#}` (`{#}` padded to its width): the whole
/// input is read first, from `:::` or from stdin, as GNU parallel does.
#[test]
fn plus_total_and_padded_sequence_count_every_task() {
    let values: Vec<String> = (1..=12).map(|n| n.to_string()).collect();
    let mut args = vec!["-k", "--plus", "echo", "{0#}/{##}", "{}", ":::"];
    args.extend(values.iter().map(String::as_str));
    let expected: String = (1..=12).map(|n| format!("{n:02}/12 {n}\n")).collect();
    check_modes_like_parallel(None, &args, "", &expected);
    let stdin: String = (1..=3).map(|n| format!("{n}\n")).collect();
    check_modes_like_parallel(
        None,
        &["-k", "--plus", "echo", "{#}/{##}"],
        &stdin,
        "1/3\n2/3\n3/3\n",
    );
}
