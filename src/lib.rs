//! troop runs batches of tasks on a pool of workers and measures how they ran.
//!
//! # Theory of operation
//!
//! A run is one supervisor and a pool of workers. The supervisor reads input records
//! ([`input`]), renders each into a task with the command template, and feeds tasks to workers;
//! workers run them and report back. Every worker, process or thread, runs the same runtime from
//! the `troop-worker` crate, so the two modes differ only in where work runs.
//!
//! - **One loop, one inbox.** [`supervisor`] is a single event loop. Worker replies, worker
//!   births and deaths, and signals all arrive as [`inbox::Msg`]s; input arrives on a bounded side
//!   channel read only while more tasks are wanted. The loop blocks in one `select`, never polls.
//! - **A pure scheduler.** [`scheduler`] takes events and returns actions (dispatch a batch,
//!   record a lost task, start a replacement, finish) with no I/O and no clock, so flow control
//!   and batching are unit-tested without processes. Each worker holds a bounded number of tasks.
//! - **Pools behind one type.** [`pool`] starts workers by spawning `troop-worker`, by forking (a
//!   fork server forks replacements, so a multi-threaded supervisor never forks), or as threads.
//!   Process workers talk over ipc-channel; each runs in its own process group, dies with the
//!   supervisor and is always reaped.
//! - **Remote workers speak the same protocol over a stream.** A worker on another host
//!   ([`hosts`], [`pool::remote`]: `ssh HOST troop --worker-stdio`) or a Slurm job step
//!   ([`pool::slurm`]: `troop --worker-connect`, back over TCP after a challenge-response on
//!   the run's secret, [`pool::listen`]) runs the same runtime; the messages travel as
//!   length-prefixed frames with a heartbeat each way, and the carrying process (ssh, srun) is
//!   the pool's child, so a silent host is killed and its tasks count as lost.
//! - **One owner of the terminal.** [`output`] alone writes stdout and stderr: grouped or
//!   line-buffered, in completion or input order, tagged or not.
//! - **Exit codes in one place.** [`exit`] maps how a run ended to GNU parallel's codes.
//!
//! [`library`] is the same pool as a Rust library ([`Pool`]), in the manner of Python's
//! `multiprocessing.Pool`, for task functions the program registers by name.
//!
//! [`cli`] turns the command line into a validated [`config::RunConfig`] once; nothing past it
//! sees clap.

pub mod bench;
pub mod chart;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod exit;
pub mod hosts;
pub mod inbox;
pub mod input;
pub mod joblog;
pub mod jobs;
pub mod library;
pub mod observe;
pub mod output;
pub mod policy;
pub mod pool;
pub mod results;
pub mod run_io;
pub mod rundir;
pub mod scheduler;
pub mod signals;
pub mod supervisor;
#[cfg(test)]
pub(crate) mod test_support;
pub mod units;

pub use library::{
    AsCompleted, Imap, LibraryError, Mode, Pool, PoolBuilder, TaskFn, TaskHandle, as_completed,
    register, worker_main,
};

use config::RunConfig;
use error::RunError;
use exit::Exit;

/// Runs `troop run` with the process's own stdin, stdout and stderr.
pub fn run_cli(config: &RunConfig) -> Result<Exit, RunError> {
    use observe::Observer as _;
    let mut observer = observe::for_config(config)?;
    // A progress bar on the terminal takes task output past itself, so neither tears the other.
    let mut io = observer.route_io(run_io::RunIo::standard());
    // --dashboard: output meant for the terminal waits until the dashboard has given it back.
    let held = observe::dashboard::hold_output(config, &mut io);
    let result = supervisor::run(config, io, &mut observer);
    if config.watch.dashboard {
        drop(observer);
        observe::dashboard::finish(held, result.as_ref().ok());
    }
    let summary = result?;
    Ok(summary.exit)
}
