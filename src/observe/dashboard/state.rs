//! The dashboard's model of a run: one row per worker, the totals, the throughput history and
//! the last failures, kept up to date from [`RunEvent`]s. Pure: the caller passes the time.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use troop_worker::protocol::Outcome;

use crate::config::Mode;
use crate::observe::RunEvent;

/// How many failures the dashboard keeps.
pub const FAILURES_KEPT: usize = 5;
/// How many throughput samples (one a second) the sparkline keeps.
pub const SAMPLES_KEPT: usize = 120;
/// The longest command line kept for a row, in bytes.
const COMMAND_KEPT: usize = 256;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    Starting,
    Idle,
    Running,
    Exited,
}

impl WorkerState {
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Running => "running",
            WorkerState::Exited => "exited",
        }
    }
}

/// The task a worker runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub seq: u64,
    pub command: String,
    pub since: Instant,
    /// The task's process group (its leader's pid), once known.
    pub pgid: Option<i32>,
}

/// One worker's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub pid: Option<u32>,
    /// The host of a remote worker; `None` here.
    pub host: Option<String>,
    pub state: WorkerState,
    pub task: Option<Current>,
    pub done: u64,
}

impl Row {
    fn starting() -> Row {
        Row {
            pid: None,
            host: None,
            state: WorkerState::Starting,
            task: None,
            done: 0,
        }
    }
}

/// A task that failed, as the failures list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub seq: u64,
    pub slot: u32,
    /// "exit 3", "signal 9", "timed out", …
    pub how: String,
    pub command: String,
}

/// Everything the dashboard shows about a run.
#[derive(Debug, Clone)]
pub struct Model {
    pub mode: Option<Mode>,
    pub started: Instant,
    /// Rows by slot (worker `w1` is index 0).
    pub rows: Vec<Row>,
    /// The number of workers asked for (from the start, or by `+`/`-`).
    pub target: usize,
    /// Tasks in the run, once known.
    pub total: Option<u64>,
    pub done: u64,
    pub failed: u64,
    pub skipped: u64,
    pub failures: VecDeque<Failure>,
    /// Tasks done in each past second, oldest first.
    pub samples: VecDeque<u64>,
    done_at_sample: u64,
    next_sample: Instant,
    pub paused: bool,
    pub stopping: bool,
    pub finished: bool,
}

impl Model {
    pub fn new(now: Instant) -> Model {
        Model {
            mode: None,
            started: now,
            rows: Vec::new(),
            target: 0,
            total: None,
            done: 0,
            failed: 0,
            skipped: 0,
            failures: VecDeque::new(),
            samples: VecDeque::new(),
            done_at_sample: 0,
            next_sample: now + Duration::from_secs(1),
            paused: false,
            stopping: false,
            finished: false,
        }
    }

    /// Takes one event in.
    pub fn apply(&mut self, event: &RunEvent<'_>, now: Instant) {
        match *event {
            RunEvent::RunStarted {
                mode,
                workers,
                total,
            } => {
                self.mode = Some(mode);
                self.started = now;
                self.next_sample = now + Duration::from_secs(1);
                self.target = workers;
                self.total = total;
                self.grow(workers);
            }
            RunEvent::WorkerStarted { slot, pid, host } => {
                let row = self.row(slot);
                row.pid = Some(pid);
                row.host = (host != ":").then(|| host.to_string());
                row.state = WorkerState::Idle;
                row.task = None;
            }
            RunEvent::WorkerExited { slot, pid, .. } => {
                let row = self.row(slot);
                row.pid = pid.or(row.pid);
                row.state = WorkerState::Exited;
                row.task = None;
            }
            RunEvent::TaskStarted {
                seq, slot, command, ..
            } => {
                let command = command.map(short).unwrap_or_default();
                let row = self.row(slot);
                row.state = WorkerState::Running;
                row.task = Some(Current {
                    seq,
                    command,
                    since: now,
                    pgid: None,
                });
            }
            RunEvent::TaskRunning { seq, slot, pgid } => {
                if let Some(task) = self.row(slot).task.as_mut().filter(|t| t.seq == seq) {
                    task.pgid = Some(pgid);
                }
            }
            RunEvent::TaskFinished {
                seq,
                slot,
                outcome,
                retry,
                ..
            } => self.finished_task(seq, slot, outcome, retry),
            RunEvent::TaskSkipped { .. } => self.skipped += 1,
            RunEvent::InputEnded { total } => self.total = Some(total),
            RunEvent::RunFinished { .. } => self.finished = true,
        }
    }

    fn finished_task(&mut self, seq: u64, slot: u32, outcome: &Outcome, retry: bool) {
        let row = self.row(slot);
        let command = match row.task.take_if(|t| t.seq == seq) {
            Some(task) => task.command,
            None => String::new(),
        };
        if row.task.is_none() && row.state == WorkerState::Running {
            row.state = WorkerState::Idle;
        }
        if retry {
            return;
        }
        row.done += 1;
        self.done += 1;
        if !outcome.is_success() {
            self.failed += 1;
            if self.failures.len() == FAILURES_KEPT {
                self.failures.pop_front();
            }
            self.failures.push_back(Failure {
                seq,
                slot,
                how: how(outcome),
                command,
            });
        }
    }

    /// The row of `slot`, made (as starting) if the pool had not reached it yet.
    fn row(&mut self, slot: u32) -> &mut Row {
        self.grow(slot as usize + 1);
        &mut self.rows[slot as usize]
    }

    fn grow(&mut self, n: usize) {
        while self.rows.len() < n {
            self.rows.push(Row::starting());
        }
    }

    /// The user asked for `n` workers: rows up to `n` that are not up yet show as starting.
    pub fn set_target(&mut self, n: usize) {
        self.target = n;
        self.grow(n);
        for row in &mut self.rows[..n] {
            if row.state == WorkerState::Exited {
                *row = Row {
                    done: row.done,
                    ..Row::starting()
                };
            }
        }
    }

    /// Moves the throughput history on to `now`: one sample per whole second passed.
    pub fn tick(&mut self, now: Instant) {
        while now >= self.next_sample {
            if self.samples.len() == SAMPLES_KEPT {
                self.samples.pop_front();
            }
            self.samples.push_back(self.done - self.done_at_sample);
            self.done_at_sample = self.done;
            self.next_sample += Duration::from_secs(1);
        }
    }

    /// Tasks running now.
    pub fn running(&self) -> u64 {
        self.rows.iter().filter(|r| r.task.is_some()).count() as u64
    }

    /// Tasks not yet started, when the total is known.
    pub fn queued(&self) -> Option<u64> {
        self.total
            .map(|t| t.saturating_sub(self.done + self.running()))
    }

    /// Tasks done per second since the start.
    pub fn throughput(&self, now: Instant) -> f64 {
        crate::observe::progress::figures::rate(self.done, now.duration_since(self.started))
    }

    /// The time left at the throughput so far, when the total is known and a task is done.
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.done);
        let rate = self.throughput(now);
        (self.done > 0 && rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }
}

/// How a task failed, in a few words.
pub fn how(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Exited(code) => format!("exit {code}"),
        Outcome::Signaled(sig) => format!("signal {sig}"),
        Outcome::SpawnFailed { code, .. } => format!("not started ({code})"),
        Outcome::BadKernelArgs(_) => "bad kernel arguments".into(),
        Outcome::WorkerLost { signal: Some(s) } => format!("worker lost (signal {s})"),
        Outcome::WorkerLost { signal: None } => "worker lost".into(),
        Outcome::TimedOut { .. } => "timed out".into(),
        Outcome::OutputLost { .. } => "output lost".into(),
    }
}

fn short(command: &[u8]) -> String {
    let cut = &command[..command.len().min(COMMAND_KEPT)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use troop_worker::protocol::Usage;

    fn finished(m: &mut Model, seq: u64, slot: u32, outcome: Outcome, retry: bool, now: Instant) {
        m.apply(
            &RunEvent::TaskFinished {
                seq,
                slot,
                pid: None,
                attempt: 1,
                outcome: &outcome,
                usage: &Usage::default(),
                retry,
            },
            now,
        );
    }

    fn started(m: &mut Model, seq: u64, slot: u32, command: &[u8], now: Instant) {
        m.apply(
            &RunEvent::TaskStarted {
                seq,
                slot,
                pid: Some(100 + slot),
                attempt: 1,
                command: Some(command),
            },
            now,
        );
    }

    fn two_workers(now: Instant) -> Model {
        let mut m = Model::new(now);
        m.apply(
            &RunEvent::RunStarted {
                mode: Mode::Process,
                workers: 2,
                total: Some(5),
            },
            now,
        );
        m.apply(
            &RunEvent::WorkerStarted {
                slot: 0,
                pid: 11,
                host: ":",
            },
            now,
        );
        m
    }

    #[test]
    fn rows_follow_workers_from_starting_to_idle_to_exited() {
        let t = Instant::now();
        let mut m = two_workers(t);
        assert_eq!(m.rows.len(), 2);
        assert_eq!(
            (m.rows[0].pid, m.rows[0].state),
            (Some(11), WorkerState::Idle)
        );
        assert_eq!(
            (m.rows[1].pid, m.rows[1].state),
            (None, WorkerState::Starting)
        );
        m.apply(
            &RunEvent::WorkerExited {
                slot: 0,
                pid: Some(11),
                signal: None,
                lost: false,
            },
            t,
        );
        assert_eq!(m.rows[0].state, WorkerState::Exited);
        m.set_target(3);
        assert_eq!(m.rows.len(), 3);
        assert_eq!(m.rows[0].state, WorkerState::Starting);
        assert_eq!(m.rows[2].state, WorkerState::Starting);
    }

    #[test]
    fn a_task_shows_on_its_row_until_it_ends_and_counts_once_despite_retries() {
        let t = Instant::now();
        let mut m = two_workers(t);
        started(&mut m, 1, 0, b"sleep 1\n", t);
        m.apply(
            &RunEvent::TaskRunning {
                seq: 1,
                slot: 0,
                pgid: 77,
            },
            t,
        );
        let task = m.rows[0].task.clone().unwrap();
        assert_eq!(
            (task.seq, task.command.as_str(), task.pgid),
            (1, "sleep 1 ", Some(77))
        );
        assert_eq!(m.rows[0].state, WorkerState::Running);
        assert_eq!((m.running(), m.queued()), (1, Some(4)));
        finished(&mut m, 1, 0, Outcome::Exited(3), true, t);
        assert_eq!(
            (m.done, m.failed, m.rows[0].state),
            (0, 0, WorkerState::Idle)
        );
        started(&mut m, 1, 1, b"sleep 1", t);
        finished(&mut m, 1, 1, Outcome::Exited(0), false, t);
        assert_eq!(
            (m.done, m.failed, m.rows[1].done, m.rows[0].done),
            (1, 0, 1, 0)
        );
        assert_eq!(m.queued(), Some(4));
    }

    #[test]
    fn failures_keep_the_last_few_with_their_exit_code_or_signal() {
        let t = Instant::now();
        let mut m = two_workers(t);
        for seq in 1..=7 {
            started(&mut m, seq, 0, format!("job {seq}").as_bytes(), t);
            let outcome = if seq % 2 == 0 {
                Outcome::Signaled(9)
            } else {
                Outcome::Exited(seq as i32)
            };
            finished(&mut m, seq, 0, outcome, false, t);
        }
        assert_eq!((m.done, m.failed), (7, 7));
        let seen: Vec<(u64, &str, &str)> = m
            .failures
            .iter()
            .map(|f| (f.seq, f.how.as_str(), f.command.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (3, "exit 3", "job 3"),
                (4, "signal 9", "job 4"),
                (5, "exit 5", "job 5"),
                (6, "signal 9", "job 6"),
                (7, "exit 7", "job 7")
            ]
        );
    }

    #[test]
    fn throughput_samples_one_a_second_and_eta_follows_the_rate() {
        let t = Instant::now();
        let mut m = two_workers(t);
        assert_eq!(m.eta(t + Duration::from_secs(1)), None);
        for seq in 1..=2 {
            started(&mut m, seq, 0, b"x", t);
            finished(&mut m, seq, 0, Outcome::Exited(0), false, t);
        }
        m.tick(t + Duration::from_millis(2500));
        assert_eq!(m.samples, [2, 0]);
        let now = t + Duration::from_secs(2);
        assert!((m.throughput(now) - 1.0).abs() < 1e-9);
        assert_eq!(m.eta(now), Some(Duration::from_secs(3)));
        m.apply(&RunEvent::InputEnded { total: 2 }, now);
        assert_eq!((m.queued(), m.eta(now)), (Some(0), Some(Duration::ZERO)));
    }
}
