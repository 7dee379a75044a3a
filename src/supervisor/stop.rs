//! Stopping: interrupts, the termination sequence, and pausing every task with the terminal.
//!
//! | signal | effect |
//! |---|---|
//! | first SIGINT, or SIGHUP | start no new task; let running ones finish; say what is left |
//! | second SIGINT, or SIGTERM | also run the termination sequence on every running task |
//! | third SIGINT | kill every task and worker at once |
//! | SIGTSTP / SIGCONT | stop / continue every task's process group and every worker |

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg, raise};
use nix::unistd::Pid;

use super::{Stopping, Supervisor, TaskState, Timer};
use crate::scheduler::{Action, Event};

impl Supervisor<'_> {
    pub(super) fn on_signal(&mut self, sig: i32, actions: &mut Vec<Action>) {
        match sig {
            libc::SIGTSTP => return self.pause(),
            libc::SIGCONT => return self.signal_running(Signal::SIGCONT),
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
        match level {
            1 => eprintln!(
                "troop: interrupted: starting no new task; waiting for {running} running; {waiting} not started ({} done). Ctrl-C again stops the running ones",
                self.tally.done
            ),
            2 => {
                eprintln!(
                    "troop: stopping {running} running tasks; Ctrl-C again kills everything at once"
                );
                self.terminate_running();
            }
            _ => {
                eprintln!("troop: killing every task and worker now");
                self.signal_running(Signal::SIGKILL);
                self.pool.kill_all();
                self.finished = true;
            }
        }
        self.sched.fill(actions);
    }

    /// Runs the termination sequence on every running command and stops every running kernel.
    pub(super) fn terminate_running(&mut self) {
        for pgid in self.running_groups() {
            self.term_step(pgid, 0);
        }
        self.pool.cancel_kernels();
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
    }

    /// Sends `signal` to every running command's process group and every worker process.
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
