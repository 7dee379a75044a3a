//! Shell completions, the manual page and the install script, as a user gets them.

use std::process::Command;

use crate::util::{TROOP, temp_dir, troop};

fn completions(shell: &str) -> String {
    let ran = troop(&["completions", shell], "");
    assert_eq!(ran.code, Some(0), "completions {shell}: {}", ran.stderr);
    assert!(ran.stderr.is_empty(), "completions {shell}: {}", ran.stderr);
    ran.stdout
}

#[test]
fn each_shell_completes_the_run_subcommand_and_its_options() {
    for shell in ["bash", "zsh", "fish"] {
        let script = completions(shell);
        for needle in ["troop", "run", "joblog", "dashboard", "completions"] {
            assert!(script.contains(needle), "{shell}'s script lacks {needle}");
        }
    }
}

#[test]
fn the_bash_script_is_valid_bash() {
    let dir = temp_dir();
    let path = dir.path().join("troop.bash");
    std::fs::write(&path, completions("bash")).unwrap();
    let checked = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // And it defines the completion: sourcing it registers `troop`.
    let registered = Command::new("bash")
        .arg("-c")
        .arg(format!("source {}; complete -p troop", path.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&registered.stdout);
    assert!(said.contains("troop"), "complete -p troop: {said:?}");
}

#[test]
fn an_unknown_shell_is_refused() {
    let ran = troop(&["completions", "tcsh"], "");
    assert_eq!(ran.code, Some(255), "{}", ran.stderr);
    assert!(ran.stderr.contains("tcsh"), "{}", ran.stderr);
}

#[test]
fn the_manual_page_documents_run_and_its_options() {
    let ran = troop(&["man"], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let page = ran.stdout;
    assert!(page.contains(".TH TROOP 1"), "no .TH line");
    assert!(
        page.contains(".SH \"TROOP RUN\""),
        "no section for troop run"
    );
    assert!(page.contains("\\-\\-joblog"), "no --joblog in the roff");
    // Rendered, where man is installed.
    let man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut man) = man else {
        return;
    };
    use std::io::Write as _;
    man.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "man -l -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in ["--joblog", "TROOP RUN", "troop run", "--dashboard"] {
        assert!(
            text.contains(needle),
            "the rendered page lacks {needle}:\n{text}"
        );
    }
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = temp_dir();
    let out = dir.path().join("man1");
    let ran = troop(&["man", "--dir", out.to_str().unwrap()], "");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.is_empty());
    let mut pages: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(
        pages,
        [
            "troop-bench.1",
            "troop-completions.1",
            "troop-demo.1",
            "troop-man.1",
            "troop-run.1",
            "troop.1"
        ]
    );
    let run = std::fs::read_to_string(out.join("troop-run.1")).unwrap();
    assert!(
        run.contains(".TH TROOP-RUN 1"),
        "{}",
        &run[..run.len().min(200)]
    );
    assert!(run.contains("\\-\\-joblog"));
}

#[test]
fn the_install_script_installs_the_program_pages_and_completions() {
    let dir = temp_dir();
    let prefix = dir.path().join("prefix");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh");
    let ran = Command::new("sh")
        .arg(script)
        .arg(&prefix)
        .env("TROOP_BIN", TROOP)
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "install.sh: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    for file in [
        "bin/troop",
        "share/man/man1/troop.1",
        "share/man/man1/troop-run.1",
        "share/bash-completion/completions/troop",
        "share/zsh/site-functions/_troop",
        "share/fish/vendor_completions.d/troop.fish",
    ] {
        let path = prefix.join(file);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{file} is missing or empty");
    }
    // The installed program runs, and is troop.
    let version = Command::new(prefix.join("bin/troop"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("troop "));
    let zsh = std::fs::read_to_string(prefix.join("share/zsh/site-functions/_troop")).unwrap();
    assert!(
        zsh.starts_with("#compdef troop"),
        "{}",
        &zsh[..zsh.len().min(80)]
    );
}
