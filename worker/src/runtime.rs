//! The worker runtime: the serve loop that receives batches, runs each task and reports back.
//!
//! The loop is the same wherever it runs: in a worker process over IPC, or on a thread of the
//! supervisor over in-process channels. Only the [`Transport`] and the kernel [`Host`] differ.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::exec::{self, Progress};
use crate::kernel::{CancelHost, DeadlineHost, Host};
use crate::protocol::{
    Captured, FromWorker, Job, Outcome, TaskReport, TaskSpec, ToWorker, Usage, WorkerConfig,
};
use crate::transport::{Transport, TransportError};

/// Microseconds since the Unix epoch.
pub fn unix_now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The most reports one reply carries.
const MAX_REPORTS: usize = 1024;

/// Finished tasks not yet reported, and how much work they took.
#[derive(Debug, Default)]
struct Outbox {
    done: Vec<TaskReport>,
    pending_us: u64,
}

impl Outbox {
    fn flush<T: Transport>(&mut self, transport: &mut T) -> Result<(), TransportError> {
        self.pending_us = 0;
        if self.done.is_empty() {
            return Ok(());
        }
        transport.send(FromWorker::Done(std::mem::take(&mut self.done)))
    }
}

/// Serves tasks until the supervisor says [`ToWorker::Shutdown`] or goes away.
///
/// Reports wait in an outbox while more work is already queued, and go out when the worker is
/// about to wait, when they took [`WorkerConfig::flush_after_us`] of work, or when there are many:
/// so tiny tasks cost one reply per burst, even at one task per request, and a slow task is
/// reported as soon as it ends.
///
/// Before each task it starts, the worker looks for a [`ToWorker::Withdraw`] (at most once per
/// [`WITHDRAW_CHECK_US`] of work, so tiny tasks pay nothing for it): every task it holds but has
/// not started then goes back to the supervisor unstarted.
pub fn serve<T: Transport>(transport: &mut T, host: &mut dyn Host) -> Result<(), TransportError> {
    let mut config = WorkerConfig::default();
    let mut outbox = Outbox::default();
    let mut backlog = VecDeque::new();
    loop {
        let msg = match backlog.pop_front() {
            Some(msg) => msg,
            None => {
                outbox.flush(transport)?;
                crate::title::idle();
                transport.recv()?
            }
        };
        match msg {
            ToWorker::Configure(c) => {
                if let Some(n) = c.nice {
                    // On Linux this sets the calling thread's niceness: the worker's own kernels.
                    // SAFETY: setpriority has no memory effects.
                    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
                }
                if let Some(dir) = &c.spill_dir {
                    let _ = exec::SPILL_DIR.set(dir.clone());
                }
                config = c
            }
            ToWorker::Run(batch) => {
                let mut batch = Batch {
                    tasks: batch.into(),
                    backlog: &mut backlog,
                };
                run_batch(transport, host, &config, &mut batch, &mut outbox)?;
                if backlog.is_empty()
                    && let Some(msg) = transport.try_recv()?
                {
                    backlog.push_back(msg);
                }
            }
            // Nothing is held here: every earlier batch has run.
            ToWorker::Withdraw => {}
            ToWorker::Shutdown => return outbox.flush(transport),
        }
    }
}

/// A worker looks for a withdrawal at most this often, in microseconds of work.
pub const WITHDRAW_CHECK_US: u64 = 1_000;

/// The batch being run, and the messages that arrived behind it.
struct Batch<'a> {
    tasks: VecDeque<TaskSpec>,
    backlog: &'a mut VecDeque<ToWorker>,
}

impl Batch<'_> {
    /// Reads every message already waiting. If one is [`ToWorker::Withdraw`], takes out every
    /// task held before it (the rest of this batch and the batches queued behind it) and
    /// returns their ids.
    fn withdrawn<T: Transport>(&mut self, transport: &mut T) -> Result<Vec<u64>, TransportError> {
        while let Some(msg) = transport.try_recv()? {
            self.backlog.push_back(msg);
        }
        Ok(take_withdrawn(&mut self.tasks, self.backlog))
    }
}

/// If `backlog` holds a [`ToWorker::Withdraw`], takes out every task held before it (`tasks`, the
/// rest of the batch being run, and the batches queued in `backlog` ahead of the withdrawal) and
/// returns their ids; other messages stay in the backlog, in order.
pub fn take_withdrawn(
    tasks: &mut VecDeque<TaskSpec>,
    backlog: &mut VecDeque<ToWorker>,
) -> Vec<u64> {
    let Some(at) = backlog.iter().position(|m| matches!(m, ToWorker::Withdraw)) else {
        return Vec::new();
    };
    let mut ids: Vec<u64> = tasks.drain(..).map(|t| t.id).collect();
    let before: Vec<ToWorker> = backlog.drain(..=at).collect();
    let mut kept = Vec::new();
    for msg in before {
        match msg {
            ToWorker::Run(batch) => ids.extend(batch.iter().map(|t| t.id)),
            ToWorker::Withdraw => {}
            other => kept.push(other),
        }
    }
    for msg in kept.into_iter().rev() {
        backlog.push_front(msg);
    }
    ids
}

/// Serves with no lock and no interleaving: the process and thread modes. Kernels stop when
/// `cancel` is raised.
pub fn serve_free<T: Transport>(
    transport: &mut T,
    cancel: CancelHost,
) -> Result<(), TransportError> {
    let mut host = cancel;
    serve(transport, &mut host)
}

fn run_batch<T: Transport>(
    transport: &mut T,
    host: &mut dyn Host,
    config: &WorkerConfig,
    batch: &mut Batch<'_>,
    outbox: &mut Outbox,
) -> Result<(), TransportError> {
    // Look before the first task: this whole batch may have been withdrawn while it waited.
    let mut since_check_us = WITHDRAW_CHECK_US;
    loop {
        if since_check_us >= WITHDRAW_CHECK_US {
            since_check_us = 0;
            let ids = batch.withdrawn(transport)?;
            if !ids.is_empty() {
                outbox.flush(transport)?;
                return transport.send(FromWorker::Withdrawn(ids));
            }
        }
        let Some(task) = batch.tasks.pop_front() else {
            return Ok(());
        };
        crate::title::task_started(task.id, &task.job);
        let mut send_error = None;
        let report = execute(&task, config, host, &mut |msg| {
            if send_error.is_none() {
                send_error = transport.send(msg).err();
            }
        });
        if let Some(e) = send_error {
            return Err(e);
        }
        since_check_us += report.usage.wall_us.max(1);
        outbox.pending_us += report.usage.wall_us;
        outbox.done.push(report);
        if outbox.pending_us >= config.flush_after_us || outbox.done.len() >= MAX_REPORTS {
            outbox.flush(transport)?;
        }
    }
}

/// Runs one task to completion. `notify` receives the messages a running command produces
/// ([`FromWorker::Started`], [`FromWorker::Output`]).
pub fn execute(
    task: &TaskSpec,
    config: &WorkerConfig,
    host: &mut dyn Host,
    notify: &mut dyn FnMut(FromWorker),
) -> TaskReport {
    let Some(transfer) = &task.transfer else {
        return execute_job(task, config, host, notify);
    };
    if let Err(message) = crate::transfer::place(transfer) {
        crate::transfer::clean(transfer);
        return TaskReport {
            id: task.id,
            stderr: Captured::Bytes(format!("troop-worker: {message}\n").into_bytes()),
            outcome: Outcome::SpawnFailed { code: 1, message },
            stdout: Captured::EMPTY,
            usage: Usage::default(),
            returned: Vec::new(),
        };
    }
    let mut report = execute_job(task, config, host, notify);
    let (returned, complaints) = crate::transfer::collect(transfer);
    report.returned = returned;
    if !complaints.is_empty()
        && let Captured::Bytes(stderr) = &mut report.stderr
    {
        stderr.extend_from_slice(&complaints);
    }
    crate::transfer::clean(transfer);
    report
}

/// Runs one task's job, with no files to move.
fn execute_job(
    task: &TaskSpec,
    config: &WorkerConfig,
    host: &mut dyn Host,
    notify: &mut dyn FnMut(FromWorker),
) -> TaskReport {
    let id = task.id;
    let timeout = task.timeout_ms.map(Duration::from_millis);
    match &task.job {
        Job::Call { name, args, count } => crate::registry::execute(id, name, args, *count),
        Job::Kernel(kernel) => {
            let mut stdout = Vec::new();
            // A no-op is measured by its dispatch alone: reading clocks would double its cost.
            let measure = !matches!(kernel, crate::kernel::Kernel::Noop);
            let start_unix_us = if measure { unix_now_us() } else { 0 };
            let cpu0 = if measure { thread_cpu() } else { (0, 0) };
            let started = Instant::now();
            let result = match timeout {
                None => {
                    host.enter();
                    let r = kernel.run(host, &mut stdout);
                    host.leave();
                    r
                }
                Some(t) => {
                    notify(FromWorker::Started { id, pgid: 0 });
                    let mut bounded = DeadlineHost {
                        inner: host,
                        deadline: started + t,
                    };
                    bounded.enter();
                    let r = kernel.run(&mut bounded, &mut stdout);
                    bounded.leave();
                    r
                }
            };
            let wall_us = started.elapsed().as_micros() as u64;
            let cpu1 = if measure { thread_cpu() } else { (0, 0) };
            let outcome = match (result, timeout) {
                (Ok(()), _) => Outcome::Exited(0),
                (Err(_), Some(t)) if started.elapsed() >= t => Outcome::TimedOut { signal: None },
                // Stopped by an interrupt: reported as a command stopped by SIGTERM would be.
                (Err(_), _) => Outcome::Signaled(libc::SIGTERM),
            };
            TaskReport {
                id,
                outcome,
                stdout: Captured::Bytes(stdout),
                stderr: Captured::EMPTY,
                usage: Usage {
                    start_unix_us,
                    wall_us,
                    user_us: cpu1.0.saturating_sub(cpu0.0),
                    sys_us: cpu1.1.saturating_sub(cpu0.1),
                    max_rss_kib: 0,
                },
                returned: Vec::new(),
            }
        }
        job => {
            let input = task.input.as_ref();
            let finished =
                exec::run_with_input(
                    id,
                    job,
                    config,
                    timeout,
                    input,
                    &mut |progress| match progress {
                        Progress::Spawned { pgid } => {
                            exec::CURRENT_PGID.store(pgid, std::sync::atomic::Ordering::SeqCst)
                        }
                        Progress::Started { pgid } => notify(FromWorker::Started { id, pgid }),
                        Progress::Lines { stream, bytes } => notify(FromWorker::Output {
                            id,
                            stream,
                            bytes: bytes.to_vec(),
                        }),
                    },
                );
            exec::CURRENT_PGID.store(0, std::sync::atomic::Ordering::SeqCst);
            TaskReport {
                id,
                outcome: finished.outcome,
                stdout: finished.stdout,
                stderr: finished.stderr,
                usage: finished.usage,
                returned: Vec::new(),
            }
        }
    }
}

/// This thread's (user, system) CPU time in microseconds.
fn thread_cpu() -> (u64, u64) {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_THREAD) {
        Ok(u) => {
            let us =
                |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
            (us(u.user_time()), us(u.system_time()))
        }
        Err(_) => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ids: &[u64]) -> ToWorker {
        ToWorker::Run(
            ids.iter()
                .map(|&id| TaskSpec {
                    id,
                    job: Job::Kernel(crate::kernel::Kernel::Noop),
                    timeout_ms: None,
                    input: None,
                    transfer: None,
                })
                .collect(),
        )
    }

    #[test]
    fn a_withdrawal_takes_every_task_held_before_it() {
        let mut tasks: VecDeque<TaskSpec> = match run(&[2, 3]) {
            ToWorker::Run(b) => b.into(),
            _ => unreachable!(),
        };
        let mut backlog = VecDeque::from([
            run(&[4, 5]),
            ToWorker::Withdraw,
            run(&[9]),
            ToWorker::Shutdown,
        ]);
        assert_eq!(take_withdrawn(&mut tasks, &mut backlog), vec![2, 3, 4, 5]);
        assert!(tasks.is_empty());
        assert_eq!(backlog, VecDeque::from([run(&[9]), ToWorker::Shutdown]));
    }

    #[test]
    fn without_a_withdrawal_nothing_is_taken() {
        let mut tasks = VecDeque::new();
        let mut backlog = VecDeque::from([run(&[4])]);
        assert!(take_withdrawn(&mut tasks, &mut backlog).is_empty());
        assert_eq!(backlog.len(), 1);
    }
}
