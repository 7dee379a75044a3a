//! Documentation generated from the command line's own definition: shell completion scripts
//! (`troop completions bash|zsh|fish`) and manual pages (`troop man`), so they never drift from
//! the options troop accepts.
//!
//! `troop man` prints one page, `troop.1`, that holds every subcommand with its options (so that
//! `man troop` alone documents `troop run`). `troop man --dir DIR` writes that page and one page
//! per subcommand, `troop-run.1` and so on, as `scripts/install.sh` installs them.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use thiserror::Error;

use super::args::Cli;
use crate::exit::Exit;

/// The shells troop writes completion scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Documentation that could not be written.
#[derive(Debug, Error)]
pub enum DocsError {
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("cannot write `{}`: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The program's name as a user types it.
const BIN: &str = "troop";

/// The command line's definition, built (so that subcommands know their `troop run` names).
/// Pages leave out clap's `help` pseudo-subcommand; completions keep it.
fn command(with_help: bool) -> clap::Command {
    let mut cmd = Cli::command()
        .bin_name(BIN)
        .disable_help_subcommand(!with_help);
    cmd.build();
    cmd
}

/// Writes `shell`'s completion script for troop into `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command(true), BIN, out);
}

/// Prints `shell`'s completion script on stdout.
pub fn print_completions(shell: Shell) -> Result<Exit, DocsError> {
    let mut text = Vec::new();
    completions(shell, &mut text);
    write_stdout(&text)?;
    Ok(Exit::Success)
}

/// The subcommands a page documents.
fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// A subcommand's own page: titled and named `troop-<name>`.
fn sub_page(sub: &clap::Command) -> clap_mangen::Man {
    let name = format!("{BIN}-{}", sub.get_name());
    clap_mangen::Man::new(sub.clone().display_name(name.clone())).title(name.to_uppercase())
}

/// Turns a page's sections into subsections (`.SH` into `.SS`), to nest it in another page.
fn demote(roff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(roff.len());
    for line in roff.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(b".SH ") {
            Some(rest) => {
                out.extend_from_slice(b".SS ");
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Renders `troop.1`: the program, its subcommands, then each subcommand's synopsis, options and
/// notes in a section of its own.
pub fn main_page(out: &mut dyn Write) -> std::io::Result<()> {
    let cmd = command(false);
    let man = clap_mangen::Man::new(cmd.clone()).title(BIN.to_uppercase());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in subcommands(&cmd) {
        writeln!(
            out,
            ".SH \"{} {}\"",
            BIN.to_uppercase(),
            sub.get_name().to_uppercase()
        )?;
        let page = sub_page(sub);
        let mut body = Vec::new();
        page.render_description_section(&mut body)?;
        page.render_synopsis_section(&mut body)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            page.render_options_section(&mut body)?;
        }
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            page.render_extra_section(&mut body)?;
        }
        out.write_all(&demote(&body))?;
    }
    man.render_version_section(out)
}

/// `troop man`: prints `troop.1`, or writes it and every subcommand's page into `dir`.
pub fn man(dir: Option<&Path>) -> Result<Exit, DocsError> {
    let mut page = Vec::new();
    main_page(&mut page).map_err(DocsError::Stdout)?;
    let Some(dir) = dir else {
        write_stdout(&page)?;
        return Ok(Exit::Success);
    };
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DocsError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    let main = dir.join(format!("{BIN}.1"));
    std::fs::write(&main, &page).map_err(file_error(&main))?;
    let cmd = command(false);
    for sub in subcommands(&cmd) {
        let page = sub_page(sub);
        let path = dir.join(page.get_filename());
        let mut text = Vec::new();
        page.render(&mut text).map_err(file_error(&path))?;
        std::fs::write(&path, text).map_err(file_error(&path))?;
    }
    Ok(Exit::Success)
}

fn write_stdout(bytes: &[u8]) -> Result<(), DocsError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(DocsError::Stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_script_completes_the_run_options() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut text = Vec::new();
            completions(shell, &mut text);
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains("--joblog"), "{shell:?}: no --joblog");
        }
    }

    #[test]
    fn the_main_page_nests_each_subcommand_as_subsections() {
        let mut page = Vec::new();
        main_page(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("\n.TH TROOP 1 "), "{}", &page[..80]);
        assert!(page.contains(".SH \"TROOP RUN\""));
        assert!(page.contains("\\-\\-joblog"));
        assert!(page.contains(".SS SYNOPSIS"));
    }

    #[test]
    fn demoting_touches_only_section_headers() {
        let roff = b".SH NAME\n.SHOUT\ntext .SH x\n";
        assert_eq!(demote(roff), b".SS NAME\n.SHOUT\ntext .SH x\n");
    }
}
