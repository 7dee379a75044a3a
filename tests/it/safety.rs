//! Input is data, never shell syntax: a value with `;`, `$( )` or backticks stays one argument.

use crate::util::{temp_dir, troop_in, write_file};

/// Lines that would each create `pwned` if the shell interpreted them.
fn hostile_lines() -> Vec<&'static str> {
    vec![
        "a; touch pwned",
        "$(touch pwned)",
        "`touch pwned`",
        "x && touch pwned",
        "y | touch pwned",
        "'; touch pwned; '",
        "\"; touch pwned; \"",
        "z\ntouch pwned",
    ]
}

fn check_template(template: &[&str], mode: &str) {
    let dir = temp_dir();
    let lines: Vec<&str> = hostile_lines()
        .into_iter()
        .filter(|l| !l.contains('\n'))
        .collect();
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    write_file(dir.path(), "input", &input);
    let mut args = vec!["run", "-k", "--mode", mode];
    args.extend_from_slice(template);
    args.extend_from_slice(&["::::", "input"]);
    let ran = troop_in(Some(dir.path()), &args, "");
    let pwned = dir.path().join("pwned");
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
    for mode in ["process", "thread"] {
        check_template(&["echo {} | cat"], mode);
    }
}

#[test]
fn input_stays_one_argument_in_a_plain_template() {
    for mode in ["process", "thread"] {
        check_template(&["echo", "{}"], mode);
        check_template(&["echo"], mode);
    }
}

#[test]
fn arguments_stay_one_argument_each() {
    // `:::` values, in a shell template with the value in several places and in a quoted context.
    let dir = temp_dir();
    let mut args = vec!["run", "-k", "printf '[%s]\\n' {} {.}; true"];
    args.push(":::");
    args.extend(hostile_lines());
    let ran = troop_in(Some(dir.path()), &args, "");
    assert!(
        !dir.path().join("pwned").exists(),
        "a `:::` value ran `touch`"
    );
    ran.assert_code(0);
    let printed = ran.stdout.matches('[').count();
    assert_eq!(
        printed,
        2 * hostile_lines().len(),
        "each value must be one word: {}",
        ran.stdout
    );
    assert!(ran.stdout.contains("[a; touch pwned]\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("[$(touch pwned)]\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("[`touch pwned`]\n"), "{}", ran.stdout);
    assert!(ran.stdout.contains("[z\ntouch pwned]\n"), "{}", ran.stdout);
}

#[test]
fn colsep_columns_stay_one_argument() {
    let dir = temp_dir();
    write_file(dir.path(), "input", "$(touch pwned),`touch pwned`\n");
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
    assert!(!dir.path().join("pwned").exists(), "a column ran `touch`");
    ran.assert_ok_with("`touch pwned` $(touch pwned)\n");
}
