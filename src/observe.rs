//! Watching a run: the observer hooks and the summary of a finished run.

use std::time::Duration;

use crate::config::Mode;
use crate::exit::Exit;

/// Hooks a caller can use to watch a run as it goes.
pub trait Observer {
    /// Every worker of the pool is up: these are their pids (for `top -p`).
    fn pool_up(&mut self, _mode: Mode, _pids: &[u32]) {}
}

/// An observer that watches nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl Observer for Quiet {}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Tasks that ended (succeeded, failed or lost).
    pub total: u64,
    /// Tasks that did not succeed.
    pub failed: u64,
    /// Tasks read but never started (after an interrupt or a halt).
    pub not_started: u64,
    /// Tasks skipped because the job log of an earlier run records them (`--resume`).
    pub skipped: u64,
    pub exit: Exit,
    pub wall: Duration,
    /// CPU time (user + system) of the supervisor, its threads and its reaped workers, in µs.
    pub cpu_us: u64,
    pub workers: usize,
    pub worker_pids: Vec<u32>,
}

/// CPU time used so far by this process and its reaped children, in microseconds.
pub fn cpu_time_us() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let us = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN]
        .into_iter()
        .filter_map(|who| getrusage(who).ok())
        .map(|u| us(u.user_time()) + us(u.system_time()))
        .sum()
}
