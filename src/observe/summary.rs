//! The summary of a finished run on stderr: tasks, failures, retries, wall and CPU time, the
//! slowest tasks and each worker's peak memory.
//!
//! It is printed with `--summary`, or on a terminal when `-v` was given or something failed.
//! Without `--summary`, stderr that is not a terminal never gets it: scripts, and comparisons
//! with GNU parallel, see the same stderr as before.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use super::{Observer, RunEvent, Summary};
use crate::config::{Mode, RunConfig};

/// How many of the slowest tasks are named.
const SLOWEST: usize = 3;

/// A task among the slowest so far.
#[derive(Debug)]
struct Slow {
    seq: u64,
    wall_us: u64,
    command: Option<Box<[u8]>>,
}

/// Gathers what the summary says while the run goes, and prints it when the run ends.
#[derive(Debug)]
pub struct Summarizer {
    /// `--summary`: print whatever happened.
    always: bool,
    /// `-v` on a terminal: print whatever happened.
    verbose: bool,
    mode: Mode,
    retries: u64,
    /// The command lines of the tasks running now, as the supervisor gave them.
    running: HashMap<u64, Box<[u8]>>,
    /// The slowest tasks, slowest first.
    slowest: Vec<Slow>,
    /// Each worker's peak resident memory in KiB, by worker number (`None`: lost, unknown).
    peaks: Vec<(u32, Option<u64>)>,
}

impl Summarizer {
    /// The summary a command line asks for, or `None` when it can never be printed.
    pub fn for_config(config: &RunConfig) -> Option<Summarizer> {
        Summarizer::new(
            config.watch.summary,
            std::io::stderr().is_terminal(),
            config.verbose > 0,
            config.mode,
        )
    }

    /// `always` is `--summary`; `terminal` says stderr is one.
    pub fn new(always: bool, terminal: bool, verbose: bool, mode: Mode) -> Option<Summarizer> {
        (always || terminal).then(|| Summarizer {
            always,
            verbose,
            mode,
            retries: 0,
            running: HashMap::new(),
            slowest: Vec::new(),
            peaks: Vec::new(),
        })
    }

    /// Counts a task's final end among the slowest.
    fn finished(&mut self, seq: u64, wall_us: u64) {
        let command = self.running.remove(&seq);
        let at = self
            .slowest
            .iter()
            .position(|s| wall_us > s.wall_us)
            .unwrap_or(self.slowest.len());
        if at < SLOWEST {
            self.slowest.insert(
                at,
                Slow {
                    seq,
                    wall_us,
                    command,
                },
            );
            self.slowest.truncate(SLOWEST);
        }
    }

    /// The summary's text, one line per figure.
    pub fn render(&self, summary: &Summary) -> String {
        let wall_us = summary.wall.as_micros() as u64;
        let capacity = wall_us.saturating_mul(summary.workers.max(1) as u64);
        let utilisation = match capacity {
            0 => 0.0,
            c => summary.cpu_us as f64 * 100.0 / c as f64,
        };
        let mut text = format!(
            "troop: summary\n  tasks     {} ({} failed, {} retries, {} not started, {} skipped)\n  wall      {}\n  CPU       {}: {utilisation:.0}% of {} worker{}\n",
            summary.total,
            summary.failed,
            self.retries,
            summary.not_started,
            summary.skipped,
            seconds(wall_us),
            seconds(summary.cpu_us),
            summary.workers,
            if summary.workers == 1 { "" } else { "s" },
        );
        for (i, slow) in self.slowest.iter().enumerate() {
            let label = if i == 0 { "slowest" } else { "" };
            text.push_str(&format!(
                "  {label:<9} task {}: {}",
                slow.seq,
                seconds(slow.wall_us)
            ));
            if let Some(command) = &slow.command {
                text.push_str(": ");
                text.push_str(&String::from_utf8_lossy(command));
            }
            text.push('\n');
        }
        let peaks: Vec<String> = match self.mode {
            Mode::Process => self
                .peaks
                .iter()
                .map(|(worker, kib)| format!("w{worker} {}", kib.map_or("lost".into(), size)))
                .collect(),
            // Every worker is a thread of troop: its own peak is theirs.
            _ => status_kib("self", "VmHWM:")
                .map(|kib| {
                    format!(
                        "troop and its {} worker threads {}",
                        summary.workers,
                        size(kib)
                    )
                })
                .into_iter()
                .collect(),
        };
        if !peaks.is_empty() {
            text.push_str(&format!("  peak RSS  {}\n", peaks.join(", ")));
        }
        text
    }
}

impl Observer for Summarizer {
    fn event(&mut self, event: &RunEvent<'_>) {
        match *event {
            RunEvent::TaskStarted {
                seq,
                command: Some(command),
                ..
            } => {
                self.running.insert(seq, command.into());
            }
            RunEvent::TaskFinished { retry: true, .. } => self.retries += 1,
            RunEvent::TaskFinished { seq, usage, .. } => self.finished(seq, usage.wall_us),
            // Sent while the worker is still alive, at the end of the run.
            RunEvent::WorkerExited {
                slot,
                pid: Some(pid),
                lost: false,
                ..
            } if self.mode == Mode::Process => {
                self.peaks
                    .push((slot + 1, status_kib(&pid.to_string(), "VmHWM:")));
            }
            RunEvent::WorkerExited {
                slot, lost: true, ..
            } if self.mode == Mode::Process => self.peaks.push((slot + 1, None)),
            RunEvent::RunFinished { summary }
                if self.always || self.verbose || summary.failed > 0 =>
            {
                self.peaks.sort_by_key(|p| p.0);
                troop_worker::process::eprint_line(&self.render(summary));
            }
            _ => {}
        }
    }

    fn wants_commands(&self) -> bool {
        true
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM:`, say); `pid` may be `self`.
fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Microseconds as seconds a person reads: `0.042 s`, `12.3 s`, `1h 02m 03s`.
fn seconds(us: u64) -> String {
    let d = Duration::from_micros(us);
    match d.as_secs() {
        0..10 => format!("{:.3} s", d.as_secs_f64()),
        10..3600 => format!("{:.1} s", d.as_secs_f64()),
        s => format!("{}h {:02}m {:02}s", s / 3600, s / 60 % 60, s % 60),
    }
}

/// KiB as a person reads them: `812 KiB`, `3.1 MiB`, `1.2 GiB`.
fn size(kib: u64) -> String {
    match kib {
        0..1024 => format!("{kib} KiB"),
        1024..1_048_576 => format!("{:.1} MiB", kib as f64 / 1024.0),
        _ => format!("{:.1} GiB", kib as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Exit;
    use troop_worker::protocol::{Outcome, Usage};

    fn finish(s: &mut Summarizer, seq: u64, wall_us: u64, retry: bool) {
        let usage = Usage {
            wall_us,
            ..Usage::default()
        };
        s.event(&RunEvent::TaskFinished {
            seq,
            slot: 0,
            pid: None,
            attempt: 1,
            outcome: &Outcome::Exited(0),
            usage: &usage,
            retry,
        });
    }

    #[test]
    fn the_summary_names_the_three_slowest_and_counts_retries() {
        let mut s = Summarizer::new(true, false, false, Mode::Process).unwrap();
        for seq in 1..=5 {
            s.event(&RunEvent::TaskStarted {
                seq,
                slot: 0,
                pid: None,
                attempt: 1,
                command: Some(format!("sleep {seq}").as_bytes()),
            });
        }
        finish(&mut s, 2, 2_000_000, true);
        for (seq, wall) in [
            (1, 1_000_000),
            (2, 2_000_000),
            (3, 500),
            (4, 40_000_000),
            (5, 3),
        ] {
            finish(&mut s, seq, wall, false);
        }
        s.peaks.push((1, Some(2048)));
        let summary = Summary {
            total: 5,
            failed: 0,
            not_started: 0,
            skipped: 0,
            exit: Exit::Success,
            wall: Duration::from_secs(10),
            cpu_us: 5_000_000,
            workers: 2,
            worker_pids: Vec::new(),
        };
        let text = s.render(&summary);
        assert!(text.contains("tasks     5 (0 failed, 1 retries"), "{text}");
        assert!(
            text.contains("CPU       5.000 s: 25% of 2 workers"),
            "{text}"
        );
        let slow: Vec<&str> = text.lines().filter(|l| l.contains(" task ")).collect();
        assert_eq!(
            slow,
            [
                "  slowest   task 4: 40.0 s: sleep 4",
                "            task 2: 2.000 s: sleep 2",
                "            task 1: 1.000 s: sleep 1",
            ],
            "{text}"
        );
        assert!(text.contains("peak RSS  w1 2.0 MiB"), "{text}");
        assert!(s.running.is_empty());
    }

    #[test]
    fn no_summary_without_the_option_off_a_terminal() {
        assert!(Summarizer::new(false, false, true, Mode::Thread).is_none());
        assert!(Summarizer::new(false, true, false, Mode::Thread).is_some());
    }
}
