//! Halting a run early, as GNU parallel's `--halt`: when, and on which count of finished tasks.
//!
//! GNU parallel counts a percentage against the total number of tasks, which it knows because
//! it reads all input before starting any task when `--halt` has a percentage. Here a percentage
//! is of the total once the caller knows it, and of the tasks done so far before that; either
//! way it triggers only once at least one task of the kind counted has ended.

use super::PolicyError;
use crate::exit::Exit;

/// What halting does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    /// Kill the running tasks and stop at once.
    Now,
    /// Start no new tasks; let the running ones finish.
    Soon,
}

/// How many tasks it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// At least this many tasks (at least 1).
    Count(u64),
    /// At least this percentage of the tasks (more than 0, at most 100).
    Percent(f64),
}

/// Which tasks are counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Tasks that failed.
    Fail(Threshold),
    /// Tasks that succeeded.
    Success(Threshold),
    /// Tasks that ended, either way.
    Done(Threshold),
}

/// A halt policy: what to do once a condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Halt {
    /// Stop at once or let running tasks finish.
    pub urgency: Urgency,
    /// When to halt.
    pub condition: Condition,
}

/// Counts of finished tasks, for [`Halt::triggered`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tasks that ended (succeeded plus failed).
    pub done: u64,
    /// Tasks that succeeded.
    pub succeeded: u64,
    /// Tasks that failed.
    pub failed: u64,
    /// The number of tasks in the run, once the input has ended.
    pub total: Option<u64>,
}

/// Parses a `--halt` value in GNU parallel's forms: `never`; `now` or `soon`, then `,fail=`,
/// `,success=` or `,done=` and a count (`3`) or a percentage (`10%`); or the legacy `0` (never),
/// `1` (soon,fail=1), `2` (now,fail=1), `-1` (soon,success=1), `-2` (now,success=1) and `N%`
/// (soon,fail=N%). `Ok(None)` means never halt.
pub fn parse_halt(s: &str) -> Result<Option<Halt>, PolicyError> {
    let t = s.trim().to_ascii_lowercase();
    let halt = |urgency, condition| Ok(Some(Halt { urgency, condition }));
    let one = Threshold::Count(1);
    match t.as_str() {
        "never" | "0" => return Ok(None),
        "1" => return halt(Urgency::Soon, Condition::Fail(one)),
        "2" => return halt(Urgency::Now, Condition::Fail(one)),
        "-1" => return halt(Urgency::Soon, Condition::Success(one)),
        "-2" => return halt(Urgency::Now, Condition::Success(one)),
        _ => {}
    }
    if t.ends_with('%') && !t.contains(',') {
        return halt(Urgency::Soon, Condition::Fail(parse_threshold(&t, s)?));
    }
    let invalid = || PolicyError::InvalidHalt(s.into());
    let (when, why) = t.split_once(',').ok_or_else(invalid)?;
    let urgency = match when.trim() {
        "now" => Urgency::Now,
        "soon" => Urgency::Soon,
        _ => return Err(invalid()),
    };
    let (kind, amount) = why.split_once('=').ok_or_else(invalid)?;
    let threshold = parse_threshold(amount.trim(), s)?;
    let condition = match kind.trim() {
        "fail" => Condition::Fail(threshold),
        "success" => Condition::Success(threshold),
        "done" => Condition::Done(threshold),
        _ => return Err(invalid()),
    };
    halt(urgency, condition)
}

/// `3` or `10%` (of the whole value `original`, for errors).
fn parse_threshold(text: &str, original: &str) -> Result<Threshold, PolicyError> {
    let invalid = || PolicyError::InvalidHalt(original.into());
    let out_of_range = || PolicyError::HaltThreshold(original.into());
    let (number, percent) = match text.strip_suffix('%') {
        Some(n) => (n, true),
        None => (text, false),
    };
    let decimal = !number.is_empty()
        && number != "."
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && number.bytes().filter(|&b| b == b'.').count() <= 1;
    if !decimal || (!percent && number.contains('.')) {
        return Err(invalid());
    }
    if percent {
        let p: f64 = number.parse().map_err(|_| invalid())?;
        if p > 0.0 && p <= 100.0 {
            Ok(Threshold::Percent(p))
        } else {
            Err(out_of_range())
        }
    } else {
        match number.parse::<u64>() {
            Ok(0) => Err(out_of_range()),
            Ok(n) => Ok(Threshold::Count(n)),
            Err(_) => Err(invalid()),
        }
    }
}

impl Halt {
    /// True when the condition holds for `tally`: the count of the tasks counted reaches the
    /// threshold. A percentage is of `tally.total` when known, otherwise of `tally.done`; no
    /// condition holds before one task of the kind counted has ended (so 10% of 0 never does).
    pub fn triggered(&self, tally: &Tally) -> bool {
        let (count, threshold) = match self.condition {
            Condition::Fail(t) => (tally.failed, t),
            Condition::Success(t) => (tally.succeeded, t),
            Condition::Done(t) => (tally.done, t),
        };
        if count == 0 {
            return false;
        }
        match threshold {
            Threshold::Count(n) => count >= n,
            Threshold::Percent(p) => {
                let of = tally.total.unwrap_or(tally.done);
                count as f64 * 100.0 >= p * of as f64
            }
        }
    }
}

impl Halt {
    /// The exit status of a run this policy stopped, as GNU parallel decides it: 0 for
    /// `success=`; for `fail=` and `done=`, the percentage of the tasks that failed (rounded up)
    /// when the threshold is a percentage, the status of the task that stopped the run
    /// (`status`: its exit value, or 128 plus its signal) when it is a count of 1, and the
    /// number of failed tasks otherwise.
    pub fn exit_when_halted(&self, tally: &Tally, status: u8) -> Exit {
        match self.condition {
            Condition::Success(_) => Exit::Success,
            Condition::Fail(t) | Condition::Done(t) => match t {
                Threshold::Percent(_) => {
                    Exit::from_failed_share(tally.failed, tally.total.unwrap_or(tally.done))
                }
                Threshold::Count(1) if status == 0 => Exit::Success,
                Threshold::Count(1) => Exit::Halted(status),
                Threshold::Count(_) => Exit::from_failures(tally.failed),
            },
        }
    }

    /// The exit status of a run with this policy that ran to its end without stopping: the
    /// percentage of the tasks that failed (rounded up) for a percentage threshold, the number
    /// of failed tasks otherwise.
    pub fn exit_at_end(&self, tally: &Tally) -> Exit {
        let (Condition::Fail(t) | Condition::Success(t) | Condition::Done(t)) = self.condition;
        match t {
            Threshold::Percent(_) => Exit::from_failed_share(tally.failed, tally.done),
            Threshold::Count(_) => Exit::from_failures(tally.failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(urgency: Urgency, condition: Condition) -> Option<Halt> {
        Some(Halt { urgency, condition })
    }

    use Condition::{Done, Fail, Success};
    use Threshold::{Count, Percent};
    use Urgency::{Now, Soon};

    #[test]
    fn gnu_forms_parse() {
        assert_eq!(parse_halt("now,fail=1"), Ok(h(Now, Fail(Count(1)))));
        assert_eq!(
            parse_halt("soon,fail=10%"),
            Ok(h(Soon, Fail(Percent(10.0))))
        );
        assert_eq!(parse_halt("now,success=3"), Ok(h(Now, Success(Count(3)))));
        assert_eq!(
            parse_halt("soon,done=50%"),
            Ok(h(Soon, Done(Percent(50.0))))
        );
        assert_eq!(parse_halt("NOW,Done=2.5%"), Ok(h(Now, Done(Percent(2.5)))));
        assert_eq!(
            parse_halt("soon,fail=100%"),
            Ok(h(Soon, Fail(Percent(100.0))))
        );
    }

    #[test]
    fn legacy_forms_parse() {
        assert_eq!(parse_halt("never"), Ok(None));
        assert_eq!(parse_halt("0"), Ok(None));
        assert_eq!(parse_halt("1"), Ok(h(Soon, Fail(Count(1)))));
        assert_eq!(parse_halt("2"), Ok(h(Now, Fail(Count(1)))));
        assert_eq!(parse_halt("-1"), Ok(h(Soon, Success(Count(1)))));
        assert_eq!(parse_halt("-2"), Ok(h(Now, Success(Count(1)))));
        assert_eq!(parse_halt("5%"), Ok(h(Soon, Fail(Percent(5.0)))));
    }

    #[test]
    fn bad_forms_quote_the_value() {
        for bad in [
            "",
            "3",
            "later,fail=1",
            "now",
            "now,fail",
            "now,crash=1",
            "now,fail=x",
            "now,fail=1.5",
            "now,fail=-1",
            "now,fail=%",
            "x%",
            "now,fail=1,2",
            "never,fail=1",
        ] {
            let err = parse_halt(bad).unwrap_err();
            assert_eq!(err, PolicyError::InvalidHalt(bad.into()), "{bad}");
        }
        for bad in ["now,fail=0", "soon,done=0%", "now,fail=101%", "0%", "150%"] {
            let err = parse_halt(bad).unwrap_err();
            assert_eq!(err, PolicyError::HaltThreshold(bad.into()), "{bad}");
        }
        assert_eq!(
            parse_halt("later,fail=1").unwrap_err().to_string(),
            "invalid halt condition `later,fail=1`: use never, or now or soon followed by ,fail= \
             ,success= or ,done= and a count or a percentage (e.g. now,fail=1 or soon,fail=10%), \
             or a legacy 0, 1, 2, -1, -2 or N%"
        );
    }

    fn tally(done: u64, succeeded: u64, total: Option<u64>) -> Tally {
        Tally {
            done,
            succeeded,
            failed: done - succeeded,
            total,
        }
    }

    #[test]
    fn counts_trigger_at_the_threshold() {
        let halt = Halt {
            urgency: Now,
            condition: Fail(Count(3)),
        };
        assert!(!halt.triggered(&tally(10, 8, None)));
        assert!(halt.triggered(&tally(10, 7, None)));
        assert!(halt.triggered(&tally(10, 6, Some(100))));
        let success = Halt {
            urgency: Soon,
            condition: Success(Count(1)),
        };
        assert!(!success.triggered(&tally(5, 0, None)));
        assert!(success.triggered(&tally(5, 1, None)));
        let done = Halt {
            urgency: Soon,
            condition: Done(Count(2)),
        };
        assert!(!done.triggered(&tally(1, 1, None)));
        assert!(done.triggered(&tally(2, 0, None)));
    }

    #[test]
    fn percentages_use_the_total_when_known() {
        let halt = Halt {
            urgency: Soon,
            condition: Fail(Percent(10.0)),
        };
        assert!(!halt.triggered(&tally(20, 11, Some(100))));
        assert!(halt.triggered(&tally(20, 10, Some(100))));
        assert!(!halt.triggered(&tally(0, 0, Some(0))));
        assert!(halt.triggered(&tally(1, 0, Some(5))));
    }

    #[test]
    fn percentages_use_the_tasks_done_before_the_total_is_known() {
        let halt = Halt {
            urgency: Soon,
            condition: Fail(Percent(10.0)),
        };
        assert!(!halt.triggered(&tally(0, 0, None)));
        assert!(!halt.triggered(&tally(11, 10, None)));
        assert!(halt.triggered(&tally(10, 9, None)));
        let done = Halt {
            urgency: Now,
            condition: Done(Percent(50.0)),
        };
        assert!(!done.triggered(&tally(0, 0, None)));
        assert!(done.triggered(&tally(1, 1, None)));
        assert!(!done.triggered(&tally(4, 4, Some(10))));
        assert!(done.triggered(&tally(5, 4, Some(10))));
    }

    #[test]
    fn exit_status_when_halted_follows_gnu_parallel() {
        let halted = |spec: &str, t: Tally, status: u8| {
            parse_halt(spec)
                .unwrap()
                .unwrap()
                .exit_when_halted(&t, status)
                .code()
        };
        // fail=1 and done=1: the status of the task that stopped the run.
        assert_eq!(halted("now,fail=1", tally(3, 2, Some(5)), 3), 3);
        assert_eq!(halted("2", tally(1, 0, Some(5)), 137), 137);
        assert_eq!(halted("now,done=1", tally(1, 1, Some(5)), 0), 0);
        // Other counts: the number of failed tasks.
        assert_eq!(halted("soon,fail=3", tally(7, 4, Some(9)), 5), 3);
        assert_eq!(halted("now,done=3", tally(3, 1, Some(6)), 0), 2);
        assert_eq!(halted("now,done=2", tally(2, 2, Some(5)), 0), 0);
        // Percentages: the percentage of the tasks that failed, rounded up.
        assert_eq!(halted("soon,fail=50%", tally(4, 1, Some(6)), 4), 50);
        assert_eq!(halted("now,done=60%", tally(3, 2, Some(5)), 3), 20);
        assert_eq!(halted("now,done=50%", tally(3, 2, Some(6)), 3), 17);
        // success=: 0.
        assert_eq!(halted("now,success=1", tally(3, 1, Some(6)), 0), 0);
        assert_eq!(halted("now,success=40%", tally(2, 2, Some(5)), 0), 0);
    }

    #[test]
    fn exit_status_at_the_end_counts_or_takes_the_percentage() {
        let end = |spec: &str, t: Tally| parse_halt(spec).unwrap().unwrap().exit_at_end(&t).code();
        assert_eq!(end("soon,fail=50%", tally(5, 4, Some(5))), 20);
        assert_eq!(end("now,fail=5", tally(5, 3, Some(5))), 2);
        assert_eq!(end("now,success=40%", tally(5, 5, Some(5))), 0);
        assert_eq!(end("now,done=100%", tally(3, 2, Some(3))), 34);
    }
}
