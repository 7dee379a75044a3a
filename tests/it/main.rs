//! Integration tests of the `troop` command line: every test runs the real binaries.

mod errors;
mod exit_codes;
mod faults;
mod inputs;
mod joblog;
mod kernels;
mod lesson;
mod limits;
mod modes;
mod output;
mod safety;
mod signals;
mod startup;
mod util;
mod workers;
