//! Per-task policies, pure and clock-free: timeouts, retries with backoff, and halting a run.
//!
//! Each policy is parsed once from its command-line text and then consulted by the supervisor
//! with plain numbers, so every decision is unit-tested without processes or time.

pub mod halt;
pub mod retry;
pub mod term_seq;
pub mod timeout;

pub use halt::{Condition, Halt, Tally, Threshold, Urgency, parse_halt};
pub use retry::{RetryOn, RetryPolicy, parse_retry_on};
pub use term_seq::parse_term_seq;
pub use timeout::{RunningMedian, TimeoutSpec, parse_timeout};

use thiserror::Error;

/// A policy value from the command line that cannot be used.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PolicyError {
    /// Not pairs of a signal and milliseconds.
    #[error(
        "invalid --term-seq `{0}`: use pairs of a signal and milliseconds to wait, e.g. TERM,200,TERM,100,KILL,25"
    )]
    InvalidTermSeq(String),
    /// Not a duration or percentage.
    #[error(
        "invalid timeout `{0}`: use a duration such as 10s, 500ms or 2m (a bare number means \
         seconds), or a percentage of the median run time such as 200%"
    )]
    InvalidTimeout(String),
    /// A timeout of zero (or a percentage of zero).
    #[error("invalid timeout `{0}`: a timeout must be more than zero; use e.g. 10s, 500ms or 200%")]
    ZeroTimeout(String),
    /// One item of a retry condition list is neither an exit code nor a signal.
    #[error(
        "invalid retry condition `{item}` in `{value}`: use a comma-separated list of exit codes \
         1 to 255 (e.g. 1,75), signal names or numbers (e.g. KILL, SIGTERM, sig9), or `any`"
    )]
    InvalidRetryOn {
        /// The item that was not understood (empty for an empty item).
        item: String,
        /// The whole list as given.
        value: String,
    },
    /// Not a halt condition in any form GNU parallel accepts.
    #[error(
        "invalid halt condition `{0}`: use never, or now or soon followed by ,fail= ,success= or \
         ,done= and a count or a percentage (e.g. now,fail=1 or soon,fail=10%), or a legacy 0, 1, \
         2, -1, -2 or N%"
    )]
    InvalidHalt(String),
    /// A halt count of zero, or a percentage outside (0, 100].
    #[error(
        "invalid halt condition `{0}`: a count must be at least 1 and a percentage more than 0% \
         and at most 100%"
    )]
    HaltThreshold(String),
}
