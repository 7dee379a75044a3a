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
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        Err(e) => return e.report().into(),
    };
    match execute(command) {
        Ok(exit) => exit.into(),
        Err(e) => {
            troop_worker::process::eprint_line(&format!("troop: {e:#}"));
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
