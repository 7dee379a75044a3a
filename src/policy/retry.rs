//! Retrying failed tasks: which failures qualify, how many times, and how long to wait between.
//!
//! [`RetryPolicy::retries`] counts runs after the first: 0 never retries, 2 runs a task at most
//! three times. (GNU parallel's `--retries N` counts every run, so `N` there is `N - 1` here.)

use std::time::Duration;

use troop_worker::protocol::Outcome;

use super::PolicyError;

/// The longest wait before a retry, however many attempts came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Which failures are retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RetryOn {
    /// Every failure (except bad kernel arguments, which cannot succeed).
    #[default]
    AnyFailure,
    /// Only these exit codes and these signals.
    Only {
        /// Exit codes, 1 to 255 (a command that could not start counts by its shell code,
        /// 126 or 127).
        codes: Vec<i32>,
        /// Signal numbers that ended the task, its worker, or its timeout.
        signals: Vec<i32>,
    },
}

/// Signal names accepted in a retry condition, without their `SIG` prefix.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("SYS", libc::SIGSYS),
];

/// The highest signal number accepted as `sigN`.
const MAX_SIGNAL: i32 = 64;

/// Parses a retry condition: `any`, or a comma-separated list of exit codes (`1,75`), signal
/// names with or without `SIG` in any case (`KILL`, `SIGKILL`, `sigkill`), and signal numbers
/// written `sig9`. `any` anywhere in the list means any failure.
pub fn parse_retry_on(s: &str) -> Result<RetryOn, PolicyError> {
    let mut codes = Vec::new();
    let mut signals = Vec::new();
    let mut any = false;
    for raw in s.split(',') {
        let item = raw.trim();
        let bad = || PolicyError::InvalidRetryOn {
            item: item.into(),
            value: s.into(),
        };
        if item.eq_ignore_ascii_case("any") {
            any = true;
        } else if item.bytes().all(|b| b.is_ascii_digit()) {
            match item.parse::<i32>() {
                Ok(code @ 1..=255) => codes.push(code),
                _ => return Err(bad()),
            }
        } else {
            signals.push(parse_signal(item).ok_or_else(bad)?);
        }
    }
    if any {
        return Ok(RetryOn::AnyFailure);
    }
    codes.sort_unstable();
    codes.dedup();
    signals.sort_unstable();
    signals.dedup();
    Ok(RetryOn::Only { codes, signals })
}

/// `KILL`, `SIGKILL`, `sigkill` or `sig9` to a signal number.
pub fn parse_signal(item: &str) -> Option<i32> {
    let upper = item.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) && upper.starts_with("SIG") {
        return name
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=MAX_SIGNAL).contains(n));
    }
    SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, sig)| sig)
}

/// How failed tasks are retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a failed task runs again after its first run (0: never).
    pub retries: u32,
    /// The wait before the first retry, doubled for each further one; `None` retries at once.
    pub base_delay: Option<Duration>,
    /// Which failures are retried.
    pub on: RetryOn,
}

impl RetryPolicy {
    /// After a task's `attempts` (at least 1) runs, the last ending with `outcome`: `Some(delay)`
    /// to run it again after `delay`, `None` to record the outcome as final.
    ///
    /// A success is never retried, nor are bad kernel arguments (they cannot succeed). Under
    /// [`RetryOn::Only`], `Exited` and `SpawnFailed` match by their code, `Signaled` by its
    /// signal, and `WorkerLost` and `TimedOut` by their signal when they have one (without one
    /// they match only [`RetryOn::AnyFailure`]).
    ///
    /// The delay is `base * 2^(attempts - 1) * (0.5 + jitter)`, capped at [`MAX_BACKOFF`], where
    /// `jitter` in `[0, 1)` comes from the caller (values outside are clamped); it is zero
    /// without a base delay.
    pub fn next_attempt(&self, outcome: &Outcome, attempts: u32, jitter: f64) -> Option<Duration> {
        if outcome.is_success() || attempts > self.retries || !self.on.matches(outcome) {
            return None;
        }
        Some(self.backoff(attempts, jitter))
    }

    /// The wait after `attempts` runs.
    fn backoff(&self, attempts: u32, jitter: f64) -> Duration {
        let Some(base) = self.base_delay else {
            return Duration::ZERO;
        };
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        let doublings = attempts.saturating_sub(1).min(64) as i32;
        let secs = base.as_secs_f64() * 2f64.powi(doublings) * (0.5 + jitter);
        if secs >= MAX_BACKOFF.as_secs_f64() {
            MAX_BACKOFF
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

impl RetryOn {
    /// True when a task that ended with `outcome` (a failure) qualifies for a retry.
    fn matches(&self, outcome: &Outcome) -> bool {
        let (codes, signals) = match self {
            _ if matches!(outcome, Outcome::BadKernelArgs(_)) => return false,
            RetryOn::AnyFailure => return true,
            RetryOn::Only { codes, signals } => (codes, signals),
        };
        match outcome {
            Outcome::Exited(code) | Outcome::SpawnFailed { code, .. } => codes.contains(code),
            Outcome::Signaled(sig) => signals.contains(sig),
            Outcome::WorkerLost { signal }
            | Outcome::TimedOut { signal }
            | Outcome::OutputLost { signal, .. } => signal.is_some_and(|s| signals.contains(&s)),
            Outcome::BadKernelArgs(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(codes: &[i32], signals: &[i32]) -> RetryOn {
        RetryOn::Only {
            codes: codes.to_vec(),
            signals: signals.to_vec(),
        }
    }

    fn policy(retries: u32, on: RetryOn) -> RetryPolicy {
        RetryPolicy {
            retries,
            base_delay: None,
            on,
        }
    }

    #[test]
    fn retry_conditions_parse() {
        assert_eq!(parse_retry_on("any"), Ok(RetryOn::AnyFailure));
        assert_eq!(parse_retry_on("1,ANY"), Ok(RetryOn::AnyFailure));
        assert_eq!(parse_retry_on("1,75"), Ok(only(&[1, 75], &[])));
        assert_eq!(
            parse_retry_on("KILL, SIGTERM,sigsegv,sig9,75,1,75"),
            Ok(only(
                &[1, 75],
                &[libc::SIGKILL, libc::SIGSEGV, libc::SIGTERM]
            ))
        );
        assert_eq!(parse_retry_on("Sig64"), Ok(only(&[], &[64])));
    }

    #[test]
    fn bad_retry_conditions_name_the_item() {
        for (value, item) in [
            ("1,FOO", "FOO"),
            ("sigfoo", "sigfoo"),
            ("0", "0"),
            ("256", "256"),
            ("-1", "-1"),
            ("sig0", "sig0"),
            ("sig65", "sig65"),
            ("SIG", "SIG"),
            ("", ""),
            ("1,,2", ""),
            ("9KILL", "9KILL"),
        ] {
            let err = parse_retry_on(value).unwrap_err();
            assert_eq!(
                err,
                PolicyError::InvalidRetryOn {
                    item: item.into(),
                    value: value.into()
                },
                "{value}"
            );
        }
        assert_eq!(
            parse_retry_on("1,FOO").unwrap_err().to_string(),
            "invalid retry condition `FOO` in `1,FOO`: use a comma-separated list of exit codes \
             1 to 255 (e.g. 1,75), signal names or numbers (e.g. KILL, SIGTERM, sig9), or `any`"
        );
    }

    #[test]
    fn the_default_never_retries() {
        let p = RetryPolicy::default();
        assert_eq!(p.on, RetryOn::AnyFailure);
        assert_eq!(p.next_attempt(&Outcome::Exited(1), 1, 0.0), None);
    }

    #[test]
    fn any_failure_retries_every_failure_kind_until_the_limit() {
        let p = policy(2, RetryOn::AnyFailure);
        let failures = [
            Outcome::Exited(1),
            Outcome::Signaled(9),
            Outcome::SpawnFailed {
                code: 127,
                message: "not found".into(),
            },
            Outcome::WorkerLost { signal: None },
            Outcome::WorkerLost { signal: Some(9) },
            Outcome::TimedOut { signal: None },
            Outcome::TimedOut { signal: Some(15) },
        ];
        for o in &failures {
            assert_eq!(p.next_attempt(o, 1, 0.3), Some(Duration::ZERO), "{o:?}");
            assert_eq!(p.next_attempt(o, 2, 0.3), Some(Duration::ZERO), "{o:?}");
            assert_eq!(p.next_attempt(o, 3, 0.3), None, "{o:?}");
        }
        assert_eq!(p.next_attempt(&Outcome::Exited(0), 1, 0.3), None);
        let bad = Outcome::BadKernelArgs("n must be a number".into());
        assert_eq!(p.next_attempt(&bad, 1, 0.3), None);
    }

    #[test]
    fn only_matches_codes_and_signals() {
        let p = policy(5, only(&[75, 127], &[libc::SIGKILL]));
        let yes = [
            Outcome::Exited(75),
            Outcome::SpawnFailed {
                code: 127,
                message: String::new(),
            },
            Outcome::Signaled(libc::SIGKILL),
            Outcome::WorkerLost {
                signal: Some(libc::SIGKILL),
            },
            Outcome::TimedOut {
                signal: Some(libc::SIGKILL),
            },
        ];
        let no = [
            Outcome::Exited(0),
            Outcome::Exited(1),
            Outcome::SpawnFailed {
                code: 126,
                message: String::new(),
            },
            Outcome::Signaled(libc::SIGTERM),
            Outcome::WorkerLost { signal: None },
            Outcome::TimedOut { signal: None },
            Outcome::TimedOut {
                signal: Some(libc::SIGTERM),
            },
            Outcome::BadKernelArgs(String::new()),
        ];
        for o in &yes {
            assert!(p.next_attempt(o, 1, 0.0).is_some(), "{o:?}");
        }
        for o in &no {
            assert_eq!(p.next_attempt(o, 1, 0.0), None, "{o:?}");
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_bounds_and_is_capped() {
        let p = RetryPolicy {
            retries: 100,
            base_delay: Some(Duration::from_secs(1)),
            on: RetryOn::AnyFailure,
        };
        let fail = Outcome::Exited(1);
        let at = |attempts, jitter| p.next_attempt(&fail, attempts, jitter).unwrap();
        assert_eq!(at(1, 0.5), Duration::from_secs(1));
        assert_eq!(at(2, 0.5), Duration::from_secs(2));
        assert_eq!(at(3, 0.5), Duration::from_secs(4));
        assert_eq!(at(1, 0.0), Duration::from_millis(500));
        for attempts in 1..=8u32 {
            let nominal = Duration::from_secs(1 << (attempts - 1));
            for jitter in [0.0, 0.25, 0.5, 0.999_999] {
                let d = at(attempts, jitter);
                assert!(
                    d >= nominal / 2 && d < nominal * 3 / 2,
                    "{attempts} {jitter} {d:?}"
                );
            }
        }
        assert_eq!(at(9, 0.5), Duration::from_secs(256));
        assert_eq!(at(9, 0.9), MAX_BACKOFF);
        assert_eq!(at(10, 0.0), Duration::from_secs(256));
        assert_eq!(at(10, 0.2), MAX_BACKOFF);
        assert_eq!(at(100, 0.0), MAX_BACKOFF);
        assert_eq!(at(0, 0.5), Duration::from_secs(1));
        assert_eq!(at(1, -3.0), Duration::from_millis(500));
        assert_eq!(at(1, 7.0), Duration::from_millis(1500));
        assert_eq!(at(1, f64::NAN), Duration::from_millis(500));
    }
}
