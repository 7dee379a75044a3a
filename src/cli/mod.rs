//! The command line: clap definitions, turned once into a validated [`Command`].
//!
//! Nothing outside this folder sees a clap type. [`parse`] returns either a command to run or a
//! [`CliError`] that knows its own exit code (help and version are not errors; a bad option is).

mod args;
mod pipe_args;
mod validate;

pub use validate::{Command, DemoConfig};

use std::ffi::OsString;

use clap::Parser;

use crate::exit::Exit;

/// A command line that does not describe something troop can do, or a request for help.
#[derive(Debug)]
pub struct CliError {
    message: String,
    exit: Exit,
    /// Help and version go to stdout.
    to_stdout: bool,
}

impl CliError {
    /// A usage error with this message.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            exit: Exit::Error,
            to_stdout: false,
        }
    }

    /// Prints the message where it belongs and returns the exit status.
    pub fn report(&self) -> Exit {
        if self.to_stdout {
            print!("{}", self.message);
        } else {
            eprint!("{}", self.message);
            if !self.message.ends_with('\n') {
                eprintln!();
            }
        }
        self.exit
    }
}

/// Parses and validates a command line.
pub fn parse<I, T>(argv: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = args::Cli::try_parse_from(argv).map_err(|e| {
        use clap::error::ErrorKind;
        let help = matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        CliError {
            message: e.to_string(),
            exit: if help && e.kind() != ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                Exit::Success
            } else {
                Exit::Error
            },
            to_stdout: help,
        }
    })?;
    validate::validate(cli).map_err(|e| CliError::usage(format!("troop: {e}")))
}
