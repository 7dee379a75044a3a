//! The figures a progress display shows (counts, rate, time left) and the text it shows them
//! in: pure functions of a count and a clock reading, with no I/O.

use std::fmt::Write as _;
use std::time::Duration;

/// Where a run stands: what the observer counts from the run's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Tasks that ended for good (a retried attempt is not an end).
    pub done: u64,
    /// Of those, the ones that did not succeed.
    pub failed: u64,
    /// Attempts running now.
    pub running: u64,
    /// Tasks in the run, once the input has ended.
    pub total: Option<u64>,
    /// The median wall time of the attempts that ended, in microseconds.
    pub median_us: Option<u64>,
}

/// What the display shows, from `--bar`, `--eta` and `--progress`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Show {
    /// A bar with the percentage done (`--bar`, `--progress`).
    pub bar: bool,
    /// The tasks done, failed and running and the rate (`--progress`).
    pub counts: bool,
    /// The estimated time left (`--eta`, `--progress`).
    pub eta: bool,
}

impl Counts {
    /// Tasks not yet done (the running ones included), once the total is known.
    pub fn remaining(&self) -> Option<u64> {
        self.total.map(|total| total.saturating_sub(self.done))
    }
}

/// The estimated time left: every remaining task takes the median wall time of the attempts
/// that ended, and as many run at once as run now, so the rest takes
/// `remaining × median / running`. With nothing running (between two tasks, say) it counts one
/// at a time. Unknown until the total is known and one attempt has ended.
pub fn eta(counts: &Counts) -> Option<Duration> {
    let remaining = counts.remaining()?;
    if remaining == 0 {
        return Some(Duration::ZERO);
    }
    let median = counts.median_us?;
    let at_once = counts.running.max(1);
    let us = u128::from(remaining) * u128::from(median) / u128::from(at_once);
    Some(Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX)))
}

/// Tasks done per second since the run started.
pub fn rate(done: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 { 0.0 } else { done as f64 / secs }
}

/// A duration as people read a countdown: `7s`, `2m05s`, `1h02m`, rounded to the second.
pub fn human(d: Duration) -> String {
    let secs = (d.as_millis() + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m"),
    }
}

/// The line `--progress` prints every few seconds when stderr is not a terminal:
/// `troop: 120/1000 done, 2 failed, 4 running, 85.3/s, ETA 10s` (no total and no ETA while the
/// input streams; no ETA before a task has ended).
pub fn plain_line(counts: &Counts, elapsed: Duration) -> String {
    let mut line = String::from("troop: ");
    push_counts(&mut line, counts, elapsed);
    if let Some(eta) = eta(counts) {
        let _ = write!(line, ", ETA {}", human(eta));
    }
    line
}

/// The last line `--progress` prints when stderr is not a terminal:
/// `troop: 1000/1000 done, 2 failed, 0 running, 85.3/s, took 11s`.
pub fn final_line(counts: &Counts, elapsed: Duration) -> String {
    let mut line = String::from("troop: ");
    push_counts(&mut line, counts, elapsed);
    let _ = write!(line, ", took {}", human(elapsed));
    line
}

/// The spinner's frames, one per redraw while the total is unknown.
const SPINNER: [char; 8] = ['⠁', '⠂', '⠄', '⡀', '⢀', '⠠', '⠐', '⠈'];
/// The bar's width in cells, brackets not counted.
const BAR_CELLS: u64 = 24;

/// The line drawn on a terminal: `[=====>      ]  42% ` and the message once the total is known
/// (under `--bar` or `--progress`), a spinner (`frame` picks its face) and the message before.
pub fn terminal_line(show: Show, counts: &Counts, elapsed: Duration, frame: u64) -> String {
    let text = message(show, counts, elapsed);
    match counts.total {
        None => format!(
            "{} {text}",
            SPINNER[(frame % SPINNER.len() as u64) as usize]
        ),
        Some(total) if show.bar => format!("{} {text}", bar(counts.done, total)),
        Some(_) => text,
    }
}

/// `[=========>              ]  42%`.
pub fn bar(done: u64, total: u64) -> String {
    let done = done.min(total);
    let (cells, percent) = match total {
        0 => (BAR_CELLS, 100),
        _ => (done * BAR_CELLS / total, done * 100 / total),
    };
    let mut text = String::with_capacity(BAR_CELLS as usize + 8);
    text.push('[');
    (0..BAR_CELLS).for_each(|i| {
        text.push(match i.cmp(&cells) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        })
    });
    let _ = write!(text, "] {percent:>3}%");
    text
}

/// The text beside the bar (or the spinner, while the total is unknown) on a terminal.
pub fn message(show: Show, counts: &Counts, elapsed: Duration) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(2);
    if show.counts {
        let mut text = String::new();
        push_counts(&mut text, counts, elapsed);
        parts.push(text);
    } else if show.bar || counts.total.is_none() {
        parts.push(match counts.total {
            Some(total) => format!("{}/{total}", counts.done),
            None => format!("{} done, {} running", counts.done, counts.running),
        });
    }
    if show.eta {
        let eta = eta(counts).map_or_else(|| "?".to_owned(), human);
        match (show.bar || show.counts, counts.remaining()) {
            (false, Some(left)) => parts.push(format!("ETA {eta}, {left} left")),
            _ => parts.push(format!("ETA {eta}")),
        }
    }
    parts.join(", ")
}

/// `120/1000 done, 2 failed, 4 running, 85.3/s` (`120 done, …` while the total is unknown).
fn push_counts(out: &mut String, counts: &Counts, elapsed: Duration) {
    let _ = write!(out, "{}", counts.done);
    if let Some(total) = counts.total {
        let _ = write!(out, "/{total}");
    }
    let _ = write!(
        out,
        " done, {} failed, {} running, {:.1}/s",
        counts.failed,
        counts.running,
        rate(counts.done, elapsed)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(done: u64, running: u64, total: Option<u64>, median_ms: Option<u64>) -> Counts {
        Counts {
            done,
            failed: 0,
            running,
            total,
            median_us: median_ms.map(|ms| ms * 1000),
        }
    }

    #[test]
    fn eta_is_remaining_times_median_over_running() {
        // 100 left (the 4 running included), 2 s each, 4 at once: 50 s.
        let c = counts(900, 4, Some(1000), Some(2000));
        assert_eq!(eta(&c), Some(Duration::from_secs(50)));
        // Twice as many at once: half the time.
        let c = counts(900, 8, Some(1000), Some(2000));
        assert_eq!(eta(&c), Some(Duration::from_secs(25)));
    }

    #[test]
    fn eta_counts_one_at_a_time_when_nothing_runs() {
        let c = counts(7, 0, Some(10), Some(1500));
        assert_eq!(eta(&c), Some(Duration::from_millis(4500)));
    }

    #[test]
    fn eta_is_unknown_without_a_total_or_a_finished_task() {
        assert_eq!(eta(&counts(5, 2, None, Some(100))), None);
        assert_eq!(eta(&counts(0, 2, Some(10), None)), None);
    }

    #[test]
    fn eta_is_zero_when_all_is_done() {
        assert_eq!(eta(&counts(10, 0, Some(10), None)), Some(Duration::ZERO));
    }

    #[test]
    fn eta_does_not_overflow_on_huge_figures() {
        let c = counts(0, 1, Some(u64::MAX), Some(u64::MAX / 1000));
        assert_eq!(eta(&c), Some(Duration::from_micros(u64::MAX)));
    }

    #[test]
    fn rate_is_done_per_second() {
        assert_eq!(rate(30, Duration::from_secs(2)), 15.0);
        assert_eq!(rate(30, Duration::ZERO), 0.0);
    }

    #[test]
    fn durations_read_as_a_countdown() {
        assert_eq!(human(Duration::from_millis(400)), "0s");
        assert_eq!(human(Duration::from_millis(9600)), "10s");
        assert_eq!(human(Duration::from_secs(125)), "2m05s");
        assert_eq!(human(Duration::from_secs(3600 + 120 + 7)), "1h02m");
    }

    #[test]
    fn the_plain_line_shows_counts_rate_and_eta() {
        let c = Counts {
            done: 120,
            failed: 2,
            running: 4,
            total: Some(1000),
            median_us: Some(45_000),
        };
        // 880 left × 45 ms / 4 = 9.9 s.
        assert_eq!(
            plain_line(&c, Duration::from_millis(1406)),
            "troop: 120/1000 done, 2 failed, 4 running, 85.3/s, ETA 10s"
        );
    }

    #[test]
    fn the_plain_line_has_no_total_or_eta_while_input_streams() {
        let c = counts(12, 3, None, Some(10));
        assert_eq!(
            plain_line(&c, Duration::from_secs(4)),
            "troop: 12 done, 0 failed, 3 running, 3.0/s"
        );
    }

    #[test]
    fn the_final_line_says_how_long_the_run_took() {
        let c = counts(40, 0, Some(40), Some(50));
        assert_eq!(
            final_line(&c, Duration::from_secs(2)),
            "troop: 40/40 done, 0 failed, 0 running, 20.0/s, took 2s"
        );
    }

    #[test]
    fn the_terminal_message_follows_the_options() {
        let c = counts(10, 2, Some(40), Some(1000));
        let t = Duration::from_secs(5);
        let bar = Show {
            bar: true,
            ..Show::default()
        };
        let eta_only = Show {
            eta: true,
            ..Show::default()
        };
        let all = Show {
            bar: true,
            counts: true,
            eta: true,
        };
        assert_eq!(message(bar, &c, t), "10/40");
        assert_eq!(message(eta_only, &c, t), "ETA 15s, 30 left");
        assert_eq!(
            message(all, &c, t),
            "10/40 done, 0 failed, 2 running, 2.0/s, ETA 15s"
        );
        // While the input streams: counts beside the spinner, the ETA unknown.
        let streaming = counts(10, 2, None, Some(1000));
        assert_eq!(message(bar, &streaming, t), "10 done, 2 running");
        assert_eq!(
            message(eta_only, &streaming, t),
            "10 done, 2 running, ETA ?"
        );
    }

    #[test]
    fn the_bar_fills_with_the_tasks_done() {
        assert_eq!(bar(0, 40), format!("[>{}]   0%", " ".repeat(23)));
        assert_eq!(
            bar(10, 40),
            format!("[{}>{}]  25%", "=".repeat(6), " ".repeat(17))
        );
        assert_eq!(bar(40, 40), format!("[{}] 100%", "=".repeat(24)));
        assert_eq!(bar(0, 0), format!("[{}] 100%", "=".repeat(24)));
    }

    #[test]
    fn the_terminal_line_is_a_spinner_until_the_total_is_known() {
        let bar_only = Show {
            bar: true,
            ..Show::default()
        };
        let t = Duration::from_secs(1);
        let streaming = counts(3, 2, None, None);
        assert_eq!(
            terminal_line(bar_only, &streaming, t, 0),
            "⠁ 3 done, 2 running"
        );
        assert_eq!(
            terminal_line(bar_only, &streaming, t, 9),
            "⠂ 3 done, 2 running"
        );
        let known = counts(3, 2, Some(6), None);
        assert!(terminal_line(bar_only, &known, t, 9).ends_with("]  50% 3/6"));
        let eta_only = Show {
            eta: true,
            ..Show::default()
        };
        assert_eq!(terminal_line(eta_only, &known, t, 9), "ETA ?, 3 left");
    }
}
