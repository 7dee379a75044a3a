//! Exit codes: the one place that decides them, following GNU parallel.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every task succeeded (or there was nothing to do) |
//! | 1–100 | that many tasks failed |
//! | 101 | more than 100 tasks failed |
//! | 130 | interrupted (Ctrl-C, SIGTERM) |
//! | 141 | the reader of troop's output went away (`troop … \| head`) |
//! | other | `--halt`: the exit value of the task that stopped the run (`fail=1`, `done=1`), or the percentage of tasks that failed (`…=N%`) |
//! | 255 | any other error: bad options, bad input, a worker that could not start |

use std::process::ExitCode;

/// How a troop invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every task succeeded.
    Success,
    /// This many tasks failed (more than zero).
    TasksFailed(u64),
    /// Stopped by a signal from the user.
    Interrupted,
    /// Standard output was closed by its reader.
    BrokenPipe,
    /// `--halt` decided this status: the exit value of the task that stopped the run, or the
    /// percentage of the tasks that failed.
    Halted(u8),
    /// An error of troop's own, or of its input.
    Error,
}

impl Exit {
    /// The status of a run in which `failed` tasks failed.
    pub fn from_failures(failed: u64) -> Exit {
        if failed == 0 {
            Exit::Success
        } else {
            Exit::TasksFailed(failed)
        }
    }

    /// The status of a run under `--halt` with a percentage, in which `failed` of `of` tasks
    /// failed: that percentage, rounded up, as GNU parallel has it.
    pub fn from_failed_share(failed: u64, of: u64) -> Exit {
        if failed == 0 {
            return Exit::Success;
        }
        let pct = (failed * 100).div_ceil(of.max(failed)).clamp(1, 100);
        Exit::Halted(pct as u8)
    }

    /// The numeric exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::TasksFailed(n) => n.min(101) as u8,
            Exit::Interrupted => 130,
            Exit::BrokenPipe => 141,
            Exit::Halted(code) => code,
            Exit::Error => 255,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_gnu_parallel() {
        assert_eq!(Exit::from_failures(0).code(), 0);
        assert_eq!(Exit::from_failures(1).code(), 1);
        assert_eq!(Exit::from_failures(100).code(), 100);
        assert_eq!(Exit::from_failures(101).code(), 101);
        assert_eq!(Exit::from_failures(5000).code(), 101);
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::Error.code(), 255);
    }
}
