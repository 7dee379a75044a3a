//! SIGUSR1: the running tasks, listed on stderr, as GNU parallel lists them on the same signal.
//!
//! One line per running task, in task order, each starting with `troop:` as GNU parallel's
//! start with `parallel:`: the task's number, its worker, the pid of its command (of its worker,
//! for a kernel or a command not announced yet), how long it has run, and its command line.
//! The run goes on as if nothing happened.

use std::fmt::Write as _;
use std::time::Instant;

use super::{Supervisor, TaskState};

impl Supervisor<'_> {
    /// Prints the running tasks on stderr.
    pub(super) fn list_running(&mut self) {
        // Task output written so far comes first, so the list is not lost among it.
        let _ = self.write_output(|o| o.flush());
        let now = Instant::now();
        let mut running: Vec<(u64, u32)> = self
            .sched
            .busy_workers()
            .into_iter()
            .filter_map(|w| Some((self.sched.head(w)?, w)))
            .collect();
        running.sort_unstable();
        let mut text = String::new();
        for (id, worker) in running {
            let Some(task) = self.tasks.get(id) else {
                continue;
            };
            let pid = match task.state {
                TaskState::Running {
                    pgid: Some(pgid), ..
                } => Some(pgid as u32),
                TaskState::Running { .. } | TaskState::Sent { .. } => self.pool.pid(worker),
                TaskState::Queued | TaskState::RetryWait => continue,
            };
            let command = task.command_line(&self.config.template, id, worker);
            let command = String::from_utf8_lossy(&command);
            let pid = pid.map_or(String::new(), |p| format!(" (pid {p})"));
            let elapsed = task
                .since
                .map_or(0.0, |since| now.duration_since(since).as_secs_f64());
            let _ = writeln!(
                text,
                "troop: running: task {id} on w{}{pid} for {elapsed:.1} s: {command}",
                worker + 1
            );
        }
        if text.is_empty() {
            text.push_str("troop: running: no task\n");
        }
        troop_worker::process::eprint_line(&text);
    }
}
