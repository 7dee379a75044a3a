//! Input is data, never shell syntax: a value with `;`, `$( )` or backticks stays one argument.

use std::path::Path;

use crate::util::{Ran, temp_dir, troop_in, write_file};

/// Lines that would each create `target` if a shell interpreted them.
fn hostile_lines(target: &Path) -> Vec<String> {
    let t = target.display();
    vec![
        format!("a; touch {t}"),
        format!("$(touch {t})"),
        format!("`touch {t}`"),
        format!("x && touch {t}"),
        format!("y | touch {t}"),
        format!("'; touch {t}; '"),
        format!("\"; touch {t}; \""),
        format!("z\ntouch {t}"),
    ]
}

/// Runs `troop run -k --mode MODE TEMPLATE… :::: input` in a fresh directory, the input holding
/// the one-line hostile lines; returns the run, the input and the file that must not appear.
fn run_hostile(
    template: &[&str],
    mode: &str,
) -> (Ran, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = temp_dir();
    let pwned = dir.path().join("pwned");
    let lines: Vec<String> = hostile_lines(&pwned)
        .into_iter()
        .filter(|l| !l.contains('\n'))
        .collect();
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_file(dir.path(), "input", &input);
    let mut args = vec!["run", "-k", "--mode", mode];
    args.extend_from_slice(template);
    args.extend_from_slice(&["::::", "input"]);
    let ran = troop_in(Some(dir.path()), &args, "");
    (ran, input, pwned, dir)
}

fn check_template(template: &[&str], mode: &str) {
    let (ran, input, pwned, _dir) = run_hostile(template, mode);
    assert!(
        !pwned.exists(),
        "{template:?} ({mode}) let input run `touch`"
    );
    ran.assert_code(0);
    assert_eq!(
        ran.stdout, input,
        "{template:?} ({mode}) did not print the lines literally"
    );
}

#[test]
fn input_stays_one_argument_in_a_shell_template() {
    for mode in ["process", "thread", "gil", "async"] {
        check_template(&["echo {} | cat"], mode);
        check_template(&["echo", "{}", "|", "cat"], mode);
    }
}

#[test]
fn input_stays_one_argument_in_a_plain_template() {
    for mode in ["process", "thread", "gil", "async"] {
        check_template(&["echo", "{}"], mode);
        check_template(&["echo"], mode);
    }
}

#[test]
fn input_stays_one_argument_inside_sh_c() {
    // The value is one argument of `sh -c 'script' name value`: the script sees it as $1.
    for mode in ["process", "thread", "gil", "async"] {
        check_template(&["sh", "-c", "'echo \"$1\"'", "sh", "{}"], mode);
    }
}

#[test]
fn arguments_stay_one_argument_each() {
    // `:::` values, in a shell template with the value in several places. A value that holds a
    // newline is two values, as in GNU parallel; each is still one word, and none runs.
    let dir = temp_dir();
    let pwned = dir.path().join("pwned");
    let lines = hostile_lines(&pwned);
    let mut args = vec!["run", "-k", "printf '[%s]\\n' {} {/}; true", ":::"];
    args.extend(lines.iter().map(String::as_str));
    let ran = troop_in(Some(dir.path()), &args, "");
    assert!(!pwned.exists(), "a `:::` value ran `touch`");
    ran.assert_code(0);
    let values: Vec<&str> = lines.iter().flat_map(|l| l.split('\n')).collect();
    assert!(values.len() > lines.len(), "a value holds a newline");
    let printed = ran.stdout.matches('[').count();
    assert_eq!(
        printed,
        2 * values.len(),
        "each value must be one word: {}",
        ran.stdout
    );
    for value in &values {
        assert!(
            ran.stdout.contains(&format!("[{value}]\n")),
            "{value:?} missing from {}",
            ran.stdout
        );
    }
}

#[test]
fn colsep_columns_stay_one_argument() {
    let dir = temp_dir();
    let pwned = dir.path().join("pwned");
    let t = pwned.display();
    write_file(dir.path(), "input", &format!("$(touch {t}),`touch {t}`\n"));
    let ran = troop_in(
        Some(dir.path()),
        &[
            "run",
            "--colsep",
            ",",
            "echo {2} {1} | cat",
            "::::",
            "input",
        ],
        "",
    );
    assert!(!pwned.exists(), "a column ran `touch`");
    ran.assert_ok_with(&format!("`touch {t}` $(touch {t})\n"));
}
