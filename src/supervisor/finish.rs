//! Settling an attempt: run it again, or make it final (tally, job log, output, halt).

use std::time::Instant;

use troop_worker::protocol::{Captured, Outcome, TaskReport, ToWorker, Usage};

use super::{Stopping, Supervisor, TaskState, Timer};
use crate::error::RunError;
use crate::joblog::LogRecord;
use crate::output::{Output, Piece};
use crate::policy::Urgency;
use crate::scheduler::{Action, Event, TaskId};

impl Supervisor<'_> {
    /// One attempt of a task ended: retry it if the policy says so, else record it for good.
    pub(super) fn settle_attempt(
        &mut self,
        worker: u32,
        report: TaskReport,
        actions: &mut Vec<Action>,
    ) -> Result<(), RunError> {
        let id = report.id;
        let Some(task) = self.tasks.get_mut(id) else {
            return Ok(());
        };
        if let Some(key) = task.overdue.take() {
            self.timers.cancel(key);
        }
        let mut report = report;
        if task.timed_out && !report.outcome.is_success() {
            // Stopped by the supervisor for overrunning its timeout.
            let signal = report.outcome.signal();
            report.outcome = Outcome::TimedOut {
                signal: (signal > 0).then_some(signal),
            };
        }
        let success = report.outcome.is_success();
        if !success && self.stopping == Stopping::No {
            if let Some(delay) =
                self.config
                    .retry
                    .next_attempt(&report.outcome, task.attempts, jitter())
            {
                // This attempt's output is dropped (a spill file is removed with it).
                drop(Piece::open(report.stdout));
                drop(Piece::open(report.stderr));
                self.sched.apply(Event::RetryPending, actions);
                if delay.is_zero() {
                    task.state = TaskState::Queued;
                    self.sched.apply(Event::Requeue(id), actions);
                } else {
                    task.state = TaskState::RetryWait;
                    self.timers.add(Instant::now() + delay, Timer::Retry(id));
                }
                return Ok(());
            }
        }
        let tag = self.tag(id);
        let Some(task) = self.tasks.remove(id) else {
            return Ok(());
        };
        self.tally.done += 1;
        if success {
            self.tally.succeeded += 1;
            if matches!(
                self.config.timeout,
                Some(crate::policy::TimeoutSpec::PercentOfMedian(_))
            ) {
                self.median.push(report.usage.wall_us);
                // The limit moved: running tasks may be past it now.
                self.check_percent_timeouts();
            }
        } else {
            self.tally.failed += 1;
        }
        if let Some(log) = &mut self.joblog {
            let pid = self.pool.pid(worker).unwrap_or(0);
            let command = task.command.as_deref().unwrap_or_default();
            let logged = crate::joblog::write::log_command(command);
            let key = self
                .config
                .template
                .resume_key(&logged)
                .unwrap_or_else(|| logged.to_string());
            let record = LogRecord {
                seq: id,
                host: ":",
                usage: &report.usage,
                send: 0,
                receive: report.stdout.len() + report.stderr.len(),
                outcome: &report.outcome,
                command,
                worker: worker + 1,
                pid,
                attempts: task.attempts,
                input: &task.record.args,
                key: &key,
            };
            log.record(&record).map_err(RunError::JobLogWrite)?;
        }
        let open = |c: Captured| {
            Piece::open(c).unwrap_or_else(|e| {
                Piece::Bytes(format!("troop: task {id}: spilled output lost: {e}\n").into_bytes())
            })
        };
        let (stdout, stderr) = (open(report.stdout), open(report.stderr));
        self.write_output(|o| o.finish(id, tag.as_deref(), stdout, stderr))?;
        self.check_halt(halt_status(&report.outcome), actions);
        Ok(())
    }

    /// A task was running on a worker that died.
    pub(super) fn lose(&mut self, id: TaskId, actions: &mut Vec<Action>) -> Result<(), RunError> {
        let (index, pid, signal) = self.lost_worker.unwrap_or((0, None, None));
        if let Some(TaskState::Running {
            pgid: Some(pgid), ..
        }) = self.tasks.get(id).map(|t| t.state)
        {
            // The task's worker is gone; its command must not outlive it.
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
        let pid = pid.map_or(String::new(), |p| format!(" (pid {p})"));
        let (outcome, why) = if self.timed_out_workers.remove(&index) {
            (
                Outcome::TimedOut {
                    signal: Some(libc::SIGKILL),
                },
                format!("timed out; its worker w{}{pid} was killed", index + 1),
            )
        } else {
            let how = match signal {
                Some(sig) => format!("was killed by signal {sig}"),
                None => "exited".into(),
            };
            (
                Outcome::WorkerLost { signal },
                format!("lost: worker w{}{pid} {how}", index + 1),
            )
        };
        let report = TaskReport {
            id,
            outcome,
            stdout: Captured::EMPTY,
            stderr: format!("troop: task {id} {why}\n").into_bytes().into(),
            usage: Usage::default(),
        };
        self.settle_attempt(index, report, actions)
    }

    /// Stops the run if `--halt` says so; `status` is the exit status of the task that just
    /// ended.
    fn check_halt(&mut self, status: u8, actions: &mut Vec<Action>) {
        let Some(halt) = &self.config.halt else {
            return;
        };
        if self.stopping != Stopping::No || !halt.triggered(&self.tally) {
            return;
        }
        let exit = halt.exit_when_halted(&self.tally, status);
        self.stopping = Stopping::Halted(exit);
        self.sched.apply(Event::StopStarting, actions);
        let now = halt.urgency == Urgency::Now;
        let running = self.sched.running();
        eprintln!(
            "troop: --halt: {} ({} done, {} failed){}",
            if now {
                "stopping now"
            } else {
                "starting no new task"
            },
            self.tally.done,
            self.tally.failed,
            if now || running == 0 {
                String::new()
            } else {
                format!("; waiting for {running} running")
            }
        );
        if now {
            self.terminate_running();
        }
    }

    /// Runs an output operation; a closed stdout stops the run quietly.
    pub(super) fn write_output(
        &mut self,
        f: impl FnOnce(&mut Output) -> std::io::Result<()>,
    ) -> Result<(), RunError> {
        match f(&mut self.output) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                if self.stopping != Stopping::BrokenPipe {
                    self.stopping = Stopping::BrokenPipe;
                    let mut actions = Vec::new();
                    self.sched.handle(Event::StopStarting, &mut actions);
                    self.terminate_running();
                    for action in actions {
                        match action {
                            Action::Finished => self.finished = true,
                            Action::Withdraw(w) => {
                                let _ = self.pool.send(w, ToWorker::Withdraw);
                            }
                            // Nothing is dispatched, lost or started once the run stops.
                            Action::Dispatch { .. } | Action::Lost(_) | Action::StartWorker(_) => {}
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(RunError::Output(e)),
        }
    }
}

/// A task's exit status as `--halt` reports it, as a shell would: its exit value, or 128 plus
/// the signal that killed it; 1 for a task that failed with neither (a lost worker).
fn halt_status(outcome: &Outcome) -> u8 {
    match (outcome.exit_value(), outcome.signal()) {
        (code @ 1..=255, _) => code as u8,
        (_, sig @ 1..=127) => 128 + sig as u8,
        _ if outcome.is_success() => 0,
        _ => 1,
    }
}

/// A random number in [0, 1) for retry jitter.
fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom writes at most 8 bytes into `bytes`.
    unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), 8, 0) };
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
