//! The `troop` binary: parse the command line once, run, and turn the outcome into an exit code.

use std::process::ExitCode;

use troop::cli::{self, Command};
use troop::exit::Exit;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        Err(e) => return e.report().into(),
    };
    match execute(command) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("troop: {e:#}");
            Exit::Error.into()
        }
    }
}

fn execute(command: Command) -> anyhow::Result<Exit> {
    Ok(match command {
        Command::Run(config) => troop::run_cli(&config)?,
        Command::Demo(config) => troop::demo::run(&config)?,
        Command::Bench(config) => troop::bench::run(&config)?,
    })
}
