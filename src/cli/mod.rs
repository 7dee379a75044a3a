//! The command line: clap definitions, turned once into a validated [`Command`].
//!
//! Nothing outside this folder sees a clap type. [`parse`] returns either a command to run or a
//! [`CliError`] that knows its own exit code (help and version are not errors; a bad option is).

mod args;
pub mod docs;
mod gnu;
mod pipe_args;
mod remote_args;
mod validate;

pub use validate::{Command, DemoConfig, shell_quote};

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
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if e.kind() == ErrorKind::UnknownArgument
            && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
            && let Some(name) = gnu::gnu_option(arg)
        {
            return CliError::usage(format!(
                "troop: `{name}` is a GNU parallel option that troop does not support"
            ));
        }
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
    if let args::Sub::Run(run) = &cli.command
        && (run.citation || run.bibtex)
        && run.command.is_empty()
    {
        // GNU parallel's --citation and --bibtex print a notice and run nothing; troop has no
        // notice to print.
        return Err(CliError {
            message: String::new(),
            exit: Exit::Success,
            to_stdout: true,
        });
    }
    validate::validate(cli).map_err(|e| CliError::usage(format!("troop: {e}")))
}
