//! The errors a run can end with, each naming what went wrong and how to fix it.

use thiserror::Error;

use crate::input::{InputError, TemplateError};
use crate::jobs::JobsError;
use crate::pool::PoolError;

/// Why a run could not start or could not finish.
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Jobs(#[from] JobsError),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    Kernel(#[from] troop_worker::kernel::KernelError),
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    #[error(transparent)]
    JobLog(#[from] crate::joblog::JobLogError),
    /// Writing a row failed; the error names the log.
    #[error("{0}")]
    JobLogWrite(std::io::Error),
    #[error("worker w{worker} did not start within {secs} s")]
    StartTimeout { worker: u32, secs: u64 },
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    #[error("cannot watch signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot start {what}: {error}{}", limit_hint(error))]
    Resource {
        what: &'static str,
        error: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

/// What to do about an error that means a per-user limit was reached ("" for other errors).
pub fn limit_hint(error: &std::io::Error) -> &'static str {
    match error.raw_os_error() {
        Some(libc::EAGAIN) => {
            " (the limit on processes and threads of this user is reached: see `ulimit -u`)"
        }
        Some(libc::EMFILE) => " (the limit on open files is reached: see `ulimit -n`)",
        _ => "",
    }
}
