//! Stopping: interrupts, deadlines, the termination sequence, and pausing every task with the
//! terminal.
//!
//! | signal | effect |
//! |---|---|
//! | first SIGINT, or SIGHUP | start no new task; let running ones finish; say what is left |
//! | second SIGINT, or SIGTERM | also run the termination sequence on every running task |
//! | third SIGINT | kill every task and worker at once |
//! | SIGTSTP / SIGCONT | stop / continue every task's process group and every worker |
//!
//! Every stage works whatever state a worker is in: each continues stopped workers (a stopped
//! worker cannot report), the termination sequence continues the groups it signals, and a
//! worker that still holds a running task once the sequence has run its course is killed.
//! Deadlines hold the same way: a worker enforces its task's timeout itself, and the
//! supervisor kills a worker that has not reported the task once the timeout and the
//! termination sequence are over. `--timeout N%` is enforced by the supervisor, since the
//! median it depends on changes while tasks run.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg, raise};
use nix::unistd::Pid;

use super::{Stopping, Supervisor, TaskState, Timer};
use crate::policy::TimeoutSpec;
use crate::scheduler::{Action, Event, TaskId};

/// How soon an overdue task is judged again when the inbox held messages the first time.
const OVERDUE_RECHECK: Duration = Duration::from_millis(20);

impl Supervisor<'_> {
    pub(super) fn on_signal(&mut self, sig: i32, actions: &mut Vec<Action>) {
        match sig {
            libc::SIGTSTP => return self.pause(),
            libc::SIGCONT => return self.resume(),
            libc::SIGUSR1 => return self.list_running(),
            _ => {}
        }
        let before = match self.stopping {
            Stopping::Interrupted(n) => n,
            _ => 0,
        };
        let level = match sig {
            libc::SIGHUP => before.max(1),
            libc::SIGTERM => (before + 1).max(2),
            _ => before + 1,
        }
        .min(3);
        if level == before {
            return;
        }
        self.stopping = Stopping::Interrupted(level);
        self.sched.apply(Event::StopStarting, actions);
        let running = self.sched.running();
        // Tasks held by a worker behind its running one are withdrawn: they will not start.
        let waiting = self.sched.queued() + self.sched.in_flight() - running;
        // A stopped worker can neither finish its task nor stop it.
        self.pool.signal_processes(Signal::SIGCONT);
        match level {
            1 => troop_worker::process::eprint_line(&format!(
                "troop: interrupted: starting no new task; waiting for {running} running; {waiting} not started ({} done). Ctrl-C again stops the running ones",
                self.tally.done
            )),
            2 => {
                troop_worker::process::eprint_line(&format!(
                    "troop: stopping {running} running tasks; Ctrl-C again kills everything at once"
                ));
                self.terminate_running();
            }
            _ => {
                troop_worker::process::eprint_line("troop: killing every task and worker now");
                self.signal_running(Signal::SIGKILL);
                self.pool.kill_all();
                if self.pool.in_process() {
                    // Commands troop has not heard of yet are its own children too, and a
                    // worker may be starting one right now.
                    troop_worker::exec::abandon_commands();
                    crate::pool::reaper::kill_children(self.reaper_pid);
                }
                self.finished = true;
            }
        }
        self.sched.fill(actions);
    }

    /// Runs the termination sequence on every running command and stops every running kernel;
    /// workers that still hold a running task once the sequence is over are killed.
    pub(super) fn terminate_running(&mut self) {
        for pgid in self.running_groups() {
            self.term_step(pgid, 0);
        }
        self.pool.cancel_kernels();
        self.pool.signal_processes(Signal::SIGCONT);
        if let Some(at) = Instant::now().checked_add(self.stop_grace()) {
            self.timers.add(at, Timer::Stragglers);
        }
    }

    /// True once running tasks are to be stopped: a second interrupt, a closed stdout, or
    /// `--halt now`.
    pub(super) fn terminating(&self) -> bool {
        match self.stopping {
            Stopping::No | Stopping::Drained | Stopping::Interrupted(..=1) => false,
            Stopping::Interrupted(_) | Stopping::BrokenPipe => true,
            Stopping::Halted(_) => self
                .config
                .halt
                .is_some_and(|h| h.urgency == crate::policy::Urgency::Now),
        }
    }

    /// How long the termination sequence takes, plus a second for the worker to report.
    pub(super) fn stop_grace(&self) -> Duration {
        let sequence = self
            .config
            .term_seq
            .iter()
            .fold(0u64, |sum, s| sum.saturating_add(s.wait_ms));
        Duration::from_millis(sequence).saturating_add(Duration::from_secs(1))
    }

    /// Kills every worker process that still holds a running task after the termination
    /// sequence: a stopped or stuck worker. In-process workers cannot be killed; their running
    /// commands are.
    pub(super) fn kill_stragglers(&mut self) {
        let busy = self.sched.busy_workers();
        if self.pool.in_process() {
            for pgid in self.running_groups() {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            return;
        }
        for w in busy {
            self.pool.kill(w);
        }
    }

    /// The supervisor learnt that a task started (its worker took it up, or announced it):
    /// arms the deadlines that guard its timeout.
    pub(super) fn mark_started(&mut self, id: TaskId) {
        let percent = matches!(self.config.timeout, Some(TimeoutSpec::PercentOfMedian(_)));
        let grace = self.stop_grace();
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        if task.since.is_some() {
            return;
        }
        let now = Instant::now();
        task.since = Some(now);
        self.tell_started(id);
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        // A timeout too long to count to never needs guarding.
        if let Some(at) = task
            .timeout
            .and_then(|t| now.checked_add(t)?.checked_add(grace))
        {
            let attempt = task.attempts;
            task.overdue = Some(self.timers.add(at, Timer::Overdue { id, attempt }));
        }
        if percent {
            self.running_since.insert((now, id));
            self.arm_percent_check();
        }
    }

    /// Tells the observer that task `id` started on the worker it was sent to.
    pub(super) fn tell_started(&mut self, id: TaskId) {
        let Some(task) = self.tasks.get(id) else {
            return;
        };
        if let TaskState::Sent { worker } | TaskState::Running { worker, .. } = task.state {
            let (attempt, pid) = (task.attempts, self.pool.pid(worker));
            self.observer.event(&crate::observe::RunEvent::TaskStarted {
                seq: id,
                slot: worker,
                pid,
                attempt,
                command: task.command.as_deref(),
            });
        }
    }

    /// A task whose start was already known announced itself: with `--timeout N%`, it goes
    /// back among the running tasks the percentage looks at.
    pub(super) fn recheck_started(&mut self, id: TaskId, since: Instant) {
        if matches!(self.config.timeout, Some(TimeoutSpec::PercentOfMedian(_)))
            && self.tasks.get(id).is_some_and(|t| !t.timed_out)
        {
            self.running_since.insert((since, id));
            self.check_percent_timeouts();
        }
    }

    /// A task with a timeout has not been reported long after it should have ended: its worker
    /// is stopped or stuck. A worker process is killed (its task is recorded as timed out); for
    /// an in-process worker, the task's command is.
    ///
    /// While messages wait in the inbox (after troop itself was stopped, say), the verdict waits
    /// a moment: the report may be among them.
    pub(super) fn overdue(&mut self, id: TaskId, attempt: u32, inbox_pending: bool) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        if task.attempts != attempt {
            return;
        }
        if inbox_pending {
            let at = Instant::now() + OVERDUE_RECHECK;
            task.overdue = Some(self.timers.add(at, Timer::Overdue { id, attempt }));
            return;
        }
        let (worker, pgid) = match task.state {
            TaskState::Sent { worker } => (worker, None),
            TaskState::Running { worker, pgid } => (worker, pgid),
            TaskState::Queued | TaskState::RetryWait => return,
        };
        task.timed_out = true;
        if self.pool.in_process() {
            if let Some(g) = pgid {
                let _ = killpg(Pid::from_raw(g), Signal::SIGKILL);
            }
            return;
        }
        self.pool.kill(worker);
    }

    /// Arms the next look at percentage timeouts: when the earliest running task reaches the
    /// limit the median gives now.
    pub(super) fn arm_percent_check(&mut self) {
        let Some(limit) = self.current_timeout() else {
            return;
        };
        let Some(&(since, _)) = self.running_since.first() else {
            return;
        };
        let Some(at) = since.checked_add(limit) else {
            return; // A limit too long to count to.
        };
        if self.percent_check.is_none_or(|armed| at < armed) {
            self.percent_check = Some(at);
            self.timers.add(at, Timer::PercentCheck);
        }
    }

    /// Stops every running task past `--timeout N%` of the median run time of the successful
    /// tasks, as the median is now; then arms the next look.
    pub(super) fn check_percent_timeouts(&mut self) {
        self.percent_check = None;
        let Some(limit) = self.current_timeout() else {
            return;
        };
        let now = Instant::now();
        let grace = self.stop_grace();
        while let Some(&(since, id)) = self.running_since.first() {
            let current = self
                .tasks
                .get(id)
                .filter(|t| t.since == Some(since) && !t.timed_out)
                .map(|t| (t.state, t.attempts));
            let Some((state, attempt)) = current else {
                self.running_since.pop_first();
                continue; // Ended, or already stopped.
            };
            if since.checked_add(limit).is_none_or(|end| end > now) {
                break;
            }
            self.running_since.pop_first();
            match state {
                TaskState::Running { pgid: Some(g), .. } => {
                    let key = now
                        .checked_add(grace)
                        .map(|at| self.timers.add(at, Timer::Overdue { id, attempt }));
                    if let Some(task) = self.tasks.get_mut(id) {
                        task.timed_out = true;
                        if let Some(old) = std::mem::replace(&mut task.overdue, key) {
                            self.timers.cancel(old);
                        }
                    }
                    self.term_step(g, 0);
                }
                // A command not announced yet is looked at again when it is (see `started`).
                TaskState::Sent { .. } if self.config.template.kernel_name().is_none() => {}
                TaskState::Running { worker, pgid: None } | TaskState::Sent { worker } => {
                    // A kernel stops only with its worker; an in-process one cannot be stopped
                    // and keeps the timeout it was sent with.
                    if !self.pool.in_process() {
                        if let Some(task) = self.tasks.get_mut(id) {
                            task.timed_out = true;
                        }
                        self.pool.kill(worker);
                    }
                }
                TaskState::Queued | TaskState::RetryWait => {}
            }
        }
        self.arm_percent_check();
    }

    /// Takes step `step` of the termination sequence on a process group, and arms the next.
    pub(super) fn term_step(&mut self, pgid: i32, step: usize) {
        let Some(s) = self.config.term_seq.get(step) else {
            return;
        };
        let Ok(signal) = Signal::try_from(s.signal) else {
            return;
        };
        if killpg(Pid::from_raw(pgid), signal).is_err() {
            return; // The group is gone: nothing left to stop.
        }
        if signal != Signal::SIGKILL {
            // A stopped process acts on the signal only once it runs again.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
        }
        let at = Instant::now() + Duration::from_millis(s.wait_ms);
        self.timers.add(
            at,
            Timer::Term {
                pgid,
                step: step + 1,
            },
        );
    }

    /// Stops every task and worker process, then troop itself, as a terminal's Ctrl-Z expects.
    fn pause(&mut self) {
        self.signal_running(Signal::SIGSTOP);
        let _ = self.write_output(|o| o.flush());
        let _ = raise(Signal::SIGSTOP);
        // Here again: continued.
        self.postpone_overdue();
    }

    /// Continues every task and worker after a pause.
    fn resume(&mut self) {
        self.signal_running(Signal::SIGCONT);
        self.postpone_overdue();
    }

    /// Gives every worker the whole grace again before it is judged stuck: after a pause, the
    /// time paused counts against none.
    fn postpone_overdue(&mut self) {
        let Some(at) = Instant::now().checked_add(self.stop_grace()) else {
            return;
        };
        let moved = self.timers.postpone(at, |t| {
            matches!(t, Timer::Overdue { .. } | Timer::Stragglers)
        });
        for (timer, key) in moved {
            if let Timer::Overdue { id, .. } = timer
                && let Some(task) = self.tasks.get_mut(id)
            {
                task.overdue = Some(key);
            }
        }
    }

    /// Sends `signal` to every running command's process group and every worker process.
    /// Starts no new task and lets the running ones finish, at the user's request from the
    /// dashboard; a Ctrl-C afterwards still escalates as usual.
    pub(super) fn drain(&mut self, actions: &mut Vec<Action>) {
        if self.stopping != Stopping::No {
            return;
        }
        self.stopping = Stopping::Drained;
        self.hold_for_user(false, actions);
        self.sched.apply(Event::StopStarting, actions);
    }

    /// Pauses (true) or resumes (false) the run at the user's request from the dashboard:
    /// running tasks are stopped and no new one starts, until resumed.
    pub(super) fn hold_for_user(&mut self, on: bool, actions: &mut Vec<Action>) {
        if on == self.paused {
            return;
        }
        self.paused = on;
        if on {
            for pgid in self.running_groups() {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGSTOP);
            }
            self.sched.apply(Event::Hold(true), actions);
        } else {
            for pgid in self.running_groups() {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGCONT);
            }
            self.postpone_overdue();
            self.sched.apply(Event::Hold(false), actions);
            // A resource gate may still hold the run back.
            self.check_gates(actions);
            self.sched.fill(actions);
        }
    }

    /// Stops one running task at the user's request: its process group gets the termination
    /// sequence, and it ends as a task killed by a signal. A task not running is left alone.
    pub(super) fn kill_task(&mut self, id: TaskId) {
        if let Some(TaskState::Running { pgid: Some(g), .. }) = self.tasks.get(id).map(|t| t.state)
        {
            self.term_step(g, 0);
        }
    }

    fn signal_running(&mut self, signal: Signal) {
        for pgid in self.running_groups() {
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
        self.pool.signal_processes(signal);
    }

    fn running_groups(&self) -> Vec<i32> {
        self.tasks
            .values()
            .filter_map(|t| match t.state {
                TaskState::Running { pgid: Some(g), .. } => Some(g),
                _ => None,
            })
            .collect()
    }
}
