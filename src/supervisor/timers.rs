//! The supervisor's timers: one ordered set, whose earliest deadline the event loop waits on.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::scheduler::TaskId;

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Put a failed task back in the queue for another attempt.
    Retry(TaskId),
    /// Take step `step` of the termination sequence on a process group.
    Term { pgid: i32, step: usize },
    /// Attempt `attempt` of a task with a timeout should have ended by now, its termination
    /// sequence included: if its worker has not reported it, the worker is stuck (stopped, or
    /// a kernel that ignores its deadline) and is killed.
    Overdue { id: TaskId, attempt: u32 },
    /// Look for running tasks past `--timeout N%` of the median run time.
    PercentCheck,
    /// The termination sequence of an interrupt has run its course: kill the workers that still
    /// hold running tasks.
    Stragglers,
    /// Look at free memory and load again.
    Gate,
    /// The delay between task starts (`--delay`) has passed.
    Pace,
    /// Kill commands orphaned by a worker that died (they are reparented to troop).
    Sweep,
}

/// Names one armed timer, to cancel it.
pub type TimerKey = (Instant, u64);

/// Pending timers, earliest first.
#[derive(Debug, Default)]
pub struct Timers {
    set: BTreeMap<(Instant, u64), Timer>,
    seq: u64,
}

impl Timers {
    /// Arms `timer` to fire at `at`.
    pub fn add(&mut self, at: Instant, timer: Timer) -> TimerKey {
        self.seq += 1;
        self.set.insert((at, self.seq), timer);
        (at, self.seq)
    }

    /// Disarms a timer that has not fired (a timer that fired already is ignored).
    pub fn cancel(&mut self, key: TimerKey) {
        self.set.remove(&key);
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next(&self) -> Option<Instant> {
        self.set.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns every timer due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Timer> {
        let mut fired = Vec::new();
        while let Some(entry) = self.set.first_entry() {
            if entry.key().0 > now {
                break;
            }
            fired.push(entry.remove());
        }
        fired
    }

    /// Moves every armed timer that `pick` selects and that would fire before `at` to `at`;
    /// returns each timer moved with its new key.
    pub fn postpone(
        &mut self,
        at: Instant,
        pick: impl Fn(&Timer) -> bool,
    ) -> Vec<(Timer, TimerKey)> {
        let early: Vec<TimerKey> = self
            .set
            .range(..(at, 0))
            .filter(|(_, t)| pick(t))
            .map(|(k, _)| *k)
            .collect();
        let mut moved = Vec::with_capacity(early.len());
        for key in early {
            if let Some(timer) = self.set.remove(&key) {
                moved.push((timer, self.add(at, timer)));
            }
        }
        moved
    }

    /// True when a timer of this kind is armed.
    pub fn has(&self, timer: Timer) -> bool {
        self.set.values().any(|t| *t == timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fire_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_millis(20), Timer::Retry(2));
        timers.add(t0 + Duration::from_millis(10), Timer::Retry(1));
        timers.add(t0 + Duration::from_millis(30), Timer::Gate);
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(
            timers.due(t0 + Duration::from_millis(25)),
            vec![Timer::Retry(1), Timer::Retry(2)]
        );
        assert!(timers.has(Timer::Gate));
        assert_eq!(timers.due(t0), vec![]);
    }

    #[test]
    fn postponed_timers_fire_later_and_others_stay() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let mut timers = Timers::default();
        timers.add(t0, Timer::Stragglers);
        timers.add(t0, Timer::Gate);
        timers.add(later + Duration::from_secs(1), Timer::Stragglers);
        let moved = timers.postpone(later, |t| *t == Timer::Stragglers);
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].0, Timer::Stragglers);
        assert_eq!(moved[0].1.0, later);
        assert_eq!(timers.due(t0), vec![Timer::Gate]);
        assert_eq!(timers.next(), Some(later));
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let key = timers.add(t0, Timer::PercentCheck);
        timers.add(t0, Timer::Gate);
        timers.cancel(key);
        timers.cancel(key);
        assert_eq!(timers.due(t0), vec![Timer::Gate]);
        assert_eq!(timers.next(), None);
    }
}
