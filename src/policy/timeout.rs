//! Task timeouts: a fixed duration, or a percentage of the median run time of successful tasks.
//!
//! GNU parallel's `--timeout 200%` stops a task that runs longer than twice the median run time
//! of the tasks that succeeded so far, from the first success on, and looks again at every
//! running task each time the median changes. [`RunningMedian`] keeps that median exactly.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::PolicyError;
use crate::units::parse_duration;

/// How long a task may run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeoutSpec {
    /// The same limit for every task.
    Fixed(Duration),
    /// This percentage of the median run time of the successful tasks so far (200.0 is twice
    /// the median).
    PercentOfMedian(f64),
}

/// The fewest successful run times a percentage timeout needs before it applies: one, as in GNU
/// parallel.
pub const MIN_SAMPLES: usize = 1;

/// The shortest timeout a percentage ever yields.
pub const MIN_PERCENT_TIMEOUT: Duration = Duration::from_millis(1);

/// Parses a timeout: a duration (`10s`, `500ms`, `2m`, or a bare number of seconds) or a
/// percentage of the median run time (`200%`). Zero and negative values are refused.
pub fn parse_timeout(s: &str) -> Result<TimeoutSpec, PolicyError> {
    let t = s.trim();
    if let Some(number) = t.strip_suffix('%') {
        let well_formed = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && number.bytes().filter(|&b| b == b'.').count() <= 1
            && number != ".";
        let pct: f64 = match number.parse() {
            Ok(p) if well_formed => p,
            _ => return Err(PolicyError::InvalidTimeout(s.into())),
        };
        if pct <= 0.0 {
            return Err(PolicyError::ZeroTimeout(s.into()));
        }
        if !pct.is_finite() {
            return Err(PolicyError::InvalidTimeout(s.into()));
        }
        return Ok(TimeoutSpec::PercentOfMedian(pct));
    }
    match parse_duration(t) {
        Ok(d) if d.is_zero() => Err(PolicyError::ZeroTimeout(s.into())),
        Ok(d) => Ok(TimeoutSpec::Fixed(d)),
        Err(_) => Err(PolicyError::InvalidTimeout(s.into())),
    }
}

impl TimeoutSpec {
    /// The timeout for the next task (and the limit for running ones): a fixed one always; a
    /// percentage only once at least [`MIN_SAMPLES`] successful run times are known (`None`
    /// before), and never below [`MIN_PERCENT_TIMEOUT`].
    pub fn for_next_task(&self, median: &RunningMedian) -> Option<Duration> {
        match *self {
            TimeoutSpec::Fixed(d) => Some(d),
            TimeoutSpec::PercentOfMedian(pct) => {
                if median.len() < MIN_SAMPLES {
                    return None;
                }
                let us = median.median()? as f64;
                let secs = us * pct / 100.0 / 1e6;
                let limit = if secs.is_nan() {
                    MIN_PERCENT_TIMEOUT
                } else {
                    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
                };
                Some(limit.max(MIN_PERCENT_TIMEOUT))
            }
        }
    }
}

/// The running median of successful task run times in microseconds, with O(log n) per push.
///
/// Two heaps hold the lower and upper halves. With an even count the median is the lower of the
/// two middle values, as GNU parallel takes it (`sorted[(n - 1) / 2]`).
#[derive(Debug, Clone, Default)]
pub struct RunningMedian {
    /// The lower half, largest on top; holds the extra value when the count is odd.
    low: BinaryHeap<u64>,
    /// The upper half, smallest on top.
    high: BinaryHeap<Reverse<u64>>,
}

impl RunningMedian {
    /// An empty median.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one run time in microseconds.
    pub fn push(&mut self, us: u64) {
        match self.low.peek() {
            Some(&top) if us > top => self.high.push(Reverse(us)),
            _ => self.low.push(us),
        }
        if self.low.len() > self.high.len() + 1 {
            if let Some(v) = self.low.pop() {
                self.high.push(Reverse(v));
            }
        } else if self.high.len() > self.low.len() {
            if let Some(Reverse(v)) = self.high.pop() {
                self.low.push(v);
            }
        }
    }

    /// The median so far, or `None` before the first push.
    pub fn median(&self) -> Option<u64> {
        self.low.peek().copied()
    }

    /// How many run times were pushed.
    pub fn len(&self) -> usize {
        self.low.len() + self.high.len()
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.low.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_timeouts_parse() {
        let fixed = |ms| Ok(TimeoutSpec::Fixed(Duration::from_millis(ms)));
        assert_eq!(parse_timeout("10s"), fixed(10_000));
        assert_eq!(parse_timeout("500ms"), fixed(500));
        assert_eq!(parse_timeout("2m"), fixed(120_000));
        assert_eq!(parse_timeout("5"), fixed(5_000));
        assert_eq!(parse_timeout("0.5"), fixed(500));
    }

    #[test]
    fn percentages_parse() {
        assert_eq!(
            parse_timeout("200%"),
            Ok(TimeoutSpec::PercentOfMedian(200.0))
        );
        assert_eq!(
            parse_timeout("150.5%"),
            Ok(TimeoutSpec::PercentOfMedian(150.5))
        );
    }

    #[test]
    fn zero_and_garbage_are_refused_with_the_value() {
        for zero in ["0", "0s", "0ms", "0%", "0.0%"] {
            let err = parse_timeout(zero).unwrap_err();
            assert_eq!(err, PolicyError::ZeroTimeout(zero.into()));
            assert!(err.to_string().contains(&format!("`{zero}`")));
        }
        for bad in [
            "", "abc", "-5", "-5s", "%", "-10%", "x%", "1e3%", "inf%", "1.2.3%", ".%",
        ] {
            let err = parse_timeout(bad).unwrap_err();
            assert_eq!(err, PolicyError::InvalidTimeout(bad.into()), "{bad}");
        }
        assert_eq!(
            parse_timeout("abc").unwrap_err().to_string(),
            "invalid timeout `abc`: use a duration such as 10s, 500ms or 2m (a bare number means \
             seconds), or a percentage of the median run time such as 200%"
        );
    }

    #[test]
    fn median_matches_a_sorted_reference() {
        // A linear congruential generator: deterministic, no extra crates.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        for round in 0..20 {
            let modulus = [3, 10, 1000, u64::MAX][round % 4];
            let mut m = RunningMedian::new();
            let mut reference = Vec::new();
            assert_eq!(m.median(), None);
            assert!(m.is_empty());
            for _ in 0..300 {
                let v = next() % modulus;
                m.push(v);
                reference.push(v);
                reference.sort_unstable();
                assert_eq!(m.median(), Some(reference[(reference.len() - 1) / 2]));
                assert_eq!(m.len(), reference.len());
                assert!(!m.is_empty());
            }
        }
    }

    #[test]
    fn median_of_sorted_and_reversed_runs() {
        let mut up = RunningMedian::new();
        let mut down = RunningMedian::new();
        for i in 0..101 {
            up.push(i);
            down.push(100 - i);
        }
        assert_eq!(up.median(), Some(50));
        assert_eq!(down.median(), Some(50));
    }

    #[test]
    fn a_percentage_applies_from_the_first_success() {
        let spec = TimeoutSpec::PercentOfMedian(200.0);
        let mut m = RunningMedian::new();
        assert_eq!(spec.for_next_task(&m), None);
        m.push(1_000_000);
        assert_eq!(spec.for_next_task(&m), Some(Duration::from_secs(2)));
        m.push(3_000_000);
        assert_eq!(spec.for_next_task(&m), Some(Duration::from_secs(2)));
        m.push(2_000_000);
        assert_eq!(spec.for_next_task(&m), Some(Duration::from_secs(4)));
    }

    #[test]
    fn a_percentage_is_never_below_one_millisecond() {
        let spec = TimeoutSpec::PercentOfMedian(50.0);
        let mut m = RunningMedian::new();
        for _ in 0..3 {
            m.push(10);
        }
        assert_eq!(spec.for_next_task(&m), Some(MIN_PERCENT_TIMEOUT));
        let huge = TimeoutSpec::PercentOfMedian(1e300);
        assert_eq!(huge.for_next_task(&m), Some(Duration::MAX));
    }

    #[test]
    fn a_fixed_timeout_needs_no_samples() {
        let spec = TimeoutSpec::Fixed(Duration::from_secs(3));
        assert_eq!(
            spec.for_next_task(&RunningMedian::new()),
            Some(Duration::from_secs(3))
        );
    }
}
