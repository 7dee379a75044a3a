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
        let mut report = report;
        super::transfer::write_returned(id, std::mem::take(&mut report.returned));
        let Some(task) = self.tasks.get_mut(id) else {
            self.explain_end(worker, id, &report.outcome);
            return Ok(());
        };
        if let Some(key) = task.overdue.take() {
            self.timers.cancel(key);
        }
        if task.timed_out && !report.outcome.is_success() {
            // Stopped by the supervisor for overrunning its timeout.
            let signal = report.outcome.signal();
            report.outcome = Outcome::TimedOut {
                signal: (signal > 0).then_some(signal),
            };
        }
        self.explain_end(worker, id, &report.outcome);
        let Some(task) = self.tasks.get_mut(id) else {
            return Ok(());
        };
        let success = report.outcome.is_success();
        if !success && self.stopping == Stopping::No {
            if let Some(delay) =
                self.config
                    .retry
                    .next_attempt(&report.outcome, task.attempts, jitter())
            {
                let attempt = task.attempts;
                self.report_end(worker, id, attempt, &report, true);
                let Some(task) = self.tasks.get_mut(id) else {
                    return Ok(());
                };
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
        self.report_end(worker, id, task.attempts, &report, false);
        if let Some(log) = &mut self.joblog {
            // A lost worker is no longer in the pool: its pid comes with the news of its death.
            let lost_pid = self.lost_worker.filter(|l| l.0 == worker).and_then(|l| l.1);
            let pid = self.pool.pid(worker).or(lost_pid).unwrap_or(0);
            let command = task.command.as_deref().unwrap_or_default();
            let logged = crate::joblog::write::log_command(command);
            let key = self
                .config
                .template
                .resume_key(&logged)
                .unwrap_or_else(|| logged.to_vec());
            let host = self.pool.host(worker).into_owned();
            let record = LogRecord {
                seq: id,
                host: &host,
                usage: &report.usage,
                // The bytes of input the command was given, as GNU parallel logs for --pipe.
                send: task.block.as_ref().map_or(0, |b| b.len()),
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
        let note = match &report.outcome {
            Outcome::OutputLost { message, .. } => Some(format!(
                "troop: task {id} failed: its output could not be kept: {message}\n"
            )),
            _ => None,
        };
        let (mut stdout, mut stderr) = (open(report.stdout), open(report.stderr));
        let ended_us = report.usage.start_unix_us + report.usage.wall_us;
        if self.halted_now().is_some_and(|at| ended_us > at) {
            // `--halt now` stopped the run while this task was running: as with GNU parallel,
            // nothing it wrote is printed, however it ended. (A task that ended before the
            // deciding one, but whose news came later, is printed.)
            (stdout, stderr) = (Piece::Bytes(Vec::new()), Piece::Bytes(Vec::new()));
        }
        let (stdout, stderr) = match &mut self.keeper {
            Some(keeper) => {
                let finished = crate::results::Finished {
                    seq: id,
                    slot: worker + 1,
                    record: &task.record,
                    command: task.command.as_deref().unwrap_or_default(),
                    usage: &report.usage,
                    outcome: &report.outcome,
                };
                keeper
                    .keep(&finished, stdout, stderr)
                    .map_err(RunError::Output)?
            }
            None => (stdout, stderr),
        };
        self.write_output(|o| o.finish_noted(id, tag.as_deref(), stdout, stderr, note))?;
        let success = report.outcome.is_success();
        self.check_halt(halt_status(&report.outcome), ended_us, actions, || {
            let command = task.command_line(&self.config.template, id, worker);
            (command.into_owned(), success)
        })?;
        Ok(())
    }

    /// Once `--halt now` has stopped the run: when the deciding task ended, in µs since the
    /// Unix epoch.
    fn halted_now(&self) -> Option<u64> {
        match self.stopping {
            Stopping::Halted(_) => self.halted_at_us,
            _ => None,
        }
    }

    /// Tells the observer that an attempt of task `id` ended.
    fn report_end(
        &mut self,
        worker: u32,
        id: TaskId,
        attempt: u32,
        report: &TaskReport,
        retry: bool,
    ) {
        let lost_pid = self.lost_worker.filter(|l| l.0 == worker).and_then(|l| l.1);
        self.observer
            .event(&crate::observe::RunEvent::TaskFinished {
                seq: id,
                slot: worker,
                pid: self.pool.pid(worker).or(lost_pid),
                attempt,
                outcome: &report.outcome,
                usage: &report.usage,
                retry,
            });
    }

    /// A task was running on a worker that died. Its record tells when it started and how long
    /// it ran until the loss; it received no output that troop kept. Why it was lost is troop's
    /// own message, on stderr.
    pub(super) fn lose(&mut self, id: TaskId, actions: &mut Vec<Action>) -> Result<(), RunError> {
        let (index, pid, signal) = self.lost_worker.unwrap_or((0, None, None));
        let now_us = unix_now_us();
        let start_unix_us = match self.tasks.get(id).map(|t| t.started_us) {
            Some(t) if t > 0 && t <= now_us => t,
            _ => now_us,
        };
        if let Some(TaskState::Running {
            pgid: Some(pgid), ..
        }) = self.tasks.get(id).map(|t| t.state)
        {
            // The task's worker is gone; its command must not outlive it.
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
        let outcome = if self.timed_out_workers.remove(&index) {
            // A kernel that overran its timeout, stopped by killing its worker; the line that
            // says so is the one every timeout gets.
            Outcome::TimedOut {
                signal: Some(libc::SIGKILL),
            }
        } else {
            let how = match signal {
                Some(sig) => format!("was killed by signal {sig}"),
                None => "exited".into(),
            };
            let pid = pid.map_or(String::new(), |p| format!(" (pid {p})"));
            troop_worker::process::eprint_line(&format!(
                "troop: task {id} lost: worker w{}{pid} {how}",
                index + 1
            ));
            Outcome::WorkerLost { signal }
        };
        let report = TaskReport {
            id,
            outcome,
            stdout: Captured::EMPTY,
            stderr: Captured::EMPTY,
            usage: Usage {
                start_unix_us,
                wall_us: now_us - start_unix_us,
                ..Usage::default()
            },
            returned: Vec::new(),
        };
        self.settle_attempt(index, report, actions)?;
        // The run may end only now that the task was retried or ended for good.
        self.sched
            .handle(crate::scheduler::Event::LostSettled, actions);
        Ok(())
    }

    /// Says on stderr, in one line naming the task, why an attempt ended when a limit of the run
    /// ended it: `--timeout` (as GNU parallel warns), or probably `--memory-limit` (a command
    /// that cannot get address space often dies of SIGSEGV, SIGABRT or SIGBUS rather than
    /// saying so).
    fn explain_end(&self, worker: u32, id: TaskId, outcome: &Outcome) {
        let why = match (outcome, self.config.limits.memory_limit) {
            (Outcome::TimedOut { .. }, _) => "was killed because it timed out".to_string(),
            // Signals troop sends while stopping a run are not the limit's doing.
            (Outcome::Signaled(sig), Some(limit))
                if self.stopping == Stopping::No
                    && [libc::SIGSEGV, libc::SIGABRT, libc::SIGBUS].contains(sig) =>
            {
                format!(
                    "was killed by {} under --memory-limit {} (a command that runs out of \
                     address space often ends so)",
                    signal_name(*sig),
                    size_words(limit)
                )
            }
            _ => return,
        };
        let Some(task) = self.tasks.get(id) else {
            return;
        };
        let command = task.command_line(&self.config.template, id, worker);
        let command = String::from_utf8_lossy(&command);
        let message = match outcome {
            // GNU parallel's own two lines, which scripts look for.
            Outcome::TimedOut { .. } => format!(
                "troop: Warning: This job was killed because it timed out:\ntroop: Warning: {command}"
            ),
            _ => format!("troop: task {id} {why}: {command}"),
        };
        troop_worker::process::eprint_line(&message);
    }

    /// Stops the run if `--halt` says so; `status` is the exit status of the task that just
    /// ended, and `deciding` gives its command line and whether it succeeded. The message is
    /// GNU parallel's, after the task's output.
    fn check_halt(
        &mut self,
        status: u8,
        ended_us: u64,
        actions: &mut Vec<Action>,
        deciding: impl FnOnce() -> (Vec<u8>, bool),
    ) -> Result<(), RunError> {
        let Some(halt) = &self.config.halt else {
            return Ok(());
        };
        if self.stopping != Stopping::No || !halt.triggered(&self.tally) {
            return Ok(());
        }
        let exit = halt.exit_when_halted(&self.tally, status);
        let now = halt.urgency == Urgency::Now;
        let (command, success) = deciding();
        self.stopping = Stopping::Halted(exit);
        self.sched.apply(Event::StopStarting, actions);
        let running = self.sched.running();
        self.write_output(|o| o.flush())?;
        let mut message = format!(
            "troop: This job {}:\n{}",
            if success { "succeeded" } else { "failed" },
            String::from_utf8_lossy(&command)
        );
        if !now && running > 0 {
            message.push_str(&format!(
                "\ntroop: Starting no more jobs. Waiting for {running} jobs to finish."
            ));
        }
        troop_worker::process::eprint_line(&message);
        if now {
            self.halted_at_us = Some(ended_us);
            self.terminate_running();
        }
        Ok(())
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
                            // Nothing is dispatched, lost, started or paced once the run stops.
                            _ => {}
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(RunError::Output(e)),
        }
    }
}

/// `SIGSEGV`, or `signal N` for a number with no name.
fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig).map_or(format!("signal {sig}"), |s| s.to_string())
}

/// A size as `--memory-limit` takes it: `4M`, `2G`, or bytes.
fn size_words(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// Now, in microseconds since the Unix epoch.
pub(super) fn unix_now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
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
