//! Integration tests of the `troop` command line: every test runs the real binaries.

mod errors;
mod exit_codes;
mod inputs;
mod kernels;
mod modes;
mod output;
mod safety;
mod util;
mod workers;
