//! The `troop` binary: parse the command line once, run, and turn the outcome into an exit code.
//!
//! The same program is also its own worker: process mode spawns it again under the command line
//! `troop-worker [w<N>]`, so one binary is always enough, wherever it was built or copied.

use std::process::ExitCode;

use troop::cli::{self, Command};
use troop::exit::Exit;

fn main() -> ExitCode {
    if troop_worker::process::invoked_as_worker() {
        return troop_worker::process::main();
    }
    match troop_worker::process::stdio_worker_args(std::env::args_os()) {
        Some(Ok(args)) => return troop_worker::process::serve_stdio(args),
        Some(Err(msg)) => {
            troop_worker::process::eprint_line(&format!("troop: {msg}"));
            return Exit::Error.into();
        }
        None => {}
    }
    match troop_worker::process::connect_worker_args(std::env::args_os()) {
        Some(Ok(args)) => return troop_worker::connect::serve_connect(args),
        Some(Err(msg)) => {
            troop_worker::process::eprint_line(&format!("troop: {msg}"));
            return Exit::Error.into();
        }
        None => {}
    }
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        Err(e) => return e.report().into(),
    };
    match execute(command) {
        Ok(exit) => exit.into(),
        Err(e) => {
            troop_worker::process::eprint_line(&format!("troop: {}", message(&e)));
            Exit::Error.into()
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text an error's own
/// message already holds (as `cannot write X: Permission denied (os error 13)` holds its OS
/// error) is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn execute(command: Command) -> anyhow::Result<Exit> {
    Ok(match command {
        Command::Run(config) => troop::run_cli(&config)?,
        Command::Demo(config) => troop::demo::run(&config)?,
        Command::Bench(config) => troop::bench::run(&config)?,
        Command::Completions(shell) => cli::docs::print_completions(shell)?,
        Command::Man { dir } => cli::docs::man(dir.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_named_once() {
        let os = std::io::Error::from_raw_os_error(libc::EACCES);
        let err = troop::joblog::JobLogError::Create {
            path: "log".into(),
            source: os,
        };
        let err = anyhow::Error::from(troop::error::RunError::from(err));
        assert_eq!(
            message(&err),
            "cannot write job log `log`: Permission denied (os error 13)"
        );
        // A cause its error does not quote is still named.
        let err = anyhow::Error::from(std::io::Error::from_raw_os_error(libc::ENOENT))
            .context("cannot open `x`");
        assert_eq!(
            message(&err),
            "cannot open `x`: No such file or directory (os error 2)"
        );
    }
}
