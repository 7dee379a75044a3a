//! The worker budget: how many workers the file-handle limit (`ulimit -n`) allows.
//!
//! Every worker costs the supervisor file handles: a worker process its channel ends and, while
//! it starts, its bootstrap socket and pidfd; a worker inside troop (thread, gil, async) the
//! pipes, pidfd and spill files of the command it runs. A pool larger than the limit allows
//! would fail in the middle of the run, so, as GNU parallel does, troop starts only as many
//! workers as the limit allows and says so once.

use nix::sys::resource::{Resource, getrlimit};

/// File handles kept free for troop's own use: the standard streams, job logs, input files,
/// the signal pipe, the event loop, the exit watch.
const RESERVE: u64 = 16;
/// Handles a worker process costs the supervisor: two channel ends once it is up; while it
/// starts, its bootstrap socket and pidfd, and for a moment the accepted connection.
const PER_PROCESS_WORKER: u64 = 3;
/// Handles a worker inside troop costs at most, while its command starts.
const PER_IN_PROCESS_WORKER: u64 = 8;

/// What the file-handle limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Workers the limit leaves room for (possibly 0).
    pub workers: usize,
    /// The soft limit on open files.
    pub limit: u64,
}

/// The most workers the soft file-handle limit allows, given the handles open now; `None` when
/// the limit is unknown or unlimited.
pub fn budget(in_process: bool) -> Option<Budget> {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft == libc::RLIM_INFINITY {
        return None;
    }
    Some(Budget {
        workers: workers_within(soft, open_handles(), in_process),
        limit: soft,
    })
}

/// How many workers fit in `limit` handles when `open` are already in use.
fn workers_within(limit: u64, open: u64, in_process: bool) -> usize {
    let per = if in_process {
        PER_IN_PROCESS_WORKER
    } else {
        PER_PROCESS_WORKER
    };
    let free = limit.saturating_sub(open).saturating_sub(RESERVE);
    usize::try_from(free / per).unwrap_or(usize::MAX)
}

/// The file handles this process has open.
fn open_handles() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as u64)
        .unwrap_or(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_a_reserve_and_counts_what_is_open() {
        assert_eq!(workers_within(64, 4, false), 44 / 3);
        assert_eq!(workers_within(64, 4, true), 44 / 8);
        assert_eq!(workers_within(22, 4, false), 0);
        assert_eq!(workers_within(10, 40, true), 0, "more open than the limit");
    }
}
