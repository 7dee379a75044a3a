//! Integration tests of the `troop` command line: every test runs the real binaries.

mod bytes;
mod control;
mod dashboard;
mod errors;
mod exit_codes;
mod faults;
mod gnu_input;
mod gnu_output;
mod gnu_sched;
mod hygiene;
mod inputs;
mod joblog;
mod kernels;
mod lesson;
mod limits;
mod modes;
mod output;
mod pipe;
mod pty;
mod safety;
mod signals;
mod spill;
mod startup;
mod util;
mod workers;
