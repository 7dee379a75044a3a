//! The worker runtime: the serve loop that receives batches, runs each task and reports back.
//!
//! The loop is the same wherever it runs: in a worker process over IPC, or on a thread of the
//! supervisor over in-process channels. Only the [`Transport`] and the kernel [`Host`] differ.

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
pub fn serve<T: Transport>(transport: &mut T, host: &mut dyn Host) -> Result<(), TransportError> {
    let mut config = WorkerConfig::default();
    let mut outbox = Outbox::default();
    let mut next = None;
    loop {
        let msg = match next.take() {
            Some(msg) => msg,
            None => {
                outbox.flush(transport)?;
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
                run_batch(transport, host, &config, batch, &mut outbox)?;
                next = transport.try_recv()?;
            }
            ToWorker::Shutdown => return outbox.flush(transport),
        }
    }
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
    batch: Vec<TaskSpec>,
    outbox: &mut Outbox,
) -> Result<(), TransportError> {
    for task in batch {
        let mut send_error = None;
        let report = execute(&task, config, host, &mut |msg| {
            if send_error.is_none() {
                send_error = transport.send(msg).err();
            }
        });
        if let Some(e) = send_error {
            return Err(e);
        }
        outbox.pending_us += report.usage.wall_us;
        outbox.done.push(report);
        if outbox.pending_us >= config.flush_after_us || outbox.done.len() >= MAX_REPORTS {
            outbox.flush(transport)?;
        }
    }
    Ok(())
}

/// Runs one task to completion. `notify` receives the messages a running command produces
/// ([`FromWorker::Started`], [`FromWorker::Output`]).
pub fn execute(
    task: &TaskSpec,
    config: &WorkerConfig,
    host: &mut dyn Host,
    notify: &mut dyn FnMut(FromWorker),
) -> TaskReport {
    let id = task.id;
    let timeout = task.timeout_ms.map(Duration::from_millis);
    match &task.job {
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
            }
        }
        job => {
            let finished = exec::run(id, job, config, timeout, &mut |progress| match progress {
                Progress::Spawned { pgid } => {
                    exec::CURRENT_PGID.store(pgid, std::sync::atomic::Ordering::SeqCst)
                }
                Progress::Started { pgid } => notify(FromWorker::Started { id, pgid }),
                Progress::Lines { stream, bytes } => notify(FromWorker::Output {
                    id,
                    stream,
                    bytes: bytes.to_vec(),
                }),
            });
            exec::CURRENT_PGID.store(0, std::sync::atomic::Ordering::SeqCst);
            TaskReport {
                id,
                outcome: finished.outcome,
                stdout: finished.stdout,
                stderr: finished.stderr,
                usage: finished.usage,
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
