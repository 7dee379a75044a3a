//! The number of workers: `-j` values and the number of cores this process may really use.

use thiserror::Error;

/// The most workers `-j 0` ("as many as possible") starts.
pub const MAX_WORKERS: usize = 256;

/// A `-j` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid -j value `{given}`: use N, N%, +N, -N or 0 (as many as possible)")]
pub struct JobsError {
    pub given: String,
}

/// The cores this process may run on, respecting CPU affinity and the cgroup CPU quota.
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Parses a `-j` value against `cores`: `N`, `N%` of the cores, `+N` or `-N` cores, or `0`.
/// The result is at least 1 and at most [`MAX_WORKERS`].
pub fn parse_jobs(text: &str, cores: usize) -> Result<usize, JobsError> {
    let bad = || JobsError { given: text.into() };
    let t = text.trim();
    let n = if let Some(pct) = t.strip_suffix('%') {
        let p: f64 = pct.parse().map_err(|_| bad())?;
        if !(p > 0.0 && p.is_finite()) {
            return Err(bad());
        }
        ((cores as f64) * p / 100.0).round() as usize
    } else if let Some(plus) = t.strip_prefix('+') {
        cores + plus.parse::<usize>().map_err(|_| bad())?
    } else if let Some(minus) = t.strip_prefix('-') {
        cores.saturating_sub(minus.parse::<usize>().map_err(|_| bad())?)
    } else {
        match t.parse::<usize>().map_err(|_| bad())? {
            0 => MAX_WORKERS,
            n => n,
        }
    };
    Ok(n.clamp(1, MAX_WORKERS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form() {
        assert_eq!(parse_jobs("3", 2), Ok(3));
        assert_eq!(parse_jobs("50%", 4), Ok(2));
        assert_eq!(parse_jobs("200%", 2), Ok(4));
        assert_eq!(parse_jobs("+2", 2), Ok(4));
        assert_eq!(parse_jobs("-1", 2), Ok(1));
        assert_eq!(parse_jobs("-5", 2), Ok(1), "never below one worker");
        assert_eq!(parse_jobs("0", 2), Ok(MAX_WORKERS));
        assert_eq!(parse_jobs("1%", 2), Ok(1));
    }

    #[test]
    fn garbage_is_an_error_that_quotes_it() {
        for bad in ["", "x", "2x", "%", "-x", "+", "1.5", "-0%"] {
            let err = parse_jobs(bad, 2).unwrap_err();
            assert!(err.to_string().contains(&format!("`{bad}`")), "{bad}");
        }
    }

    #[test]
    fn usable_cores_is_positive() {
        assert!(usable_cores() >= 1);
    }
}
