//! The async mode: one thread runs an event loop (tokio's current-thread runtime), as a Python
//! program runs asyncio.
//!
//! Each worker slot is a task on that one loop. Waiting overlaps: `@sleep` is a timer, and
//! commands are spawned and awaited asynchronously, so many `sleep 1` commands run at once on one
//! thread. Computing does not: a CPU-bound kernel runs on the loop's thread and blocks every other
//! slot until it ends, which is the point of the lesson. A command's output is captured as in the
//! other modes: past the spill threshold it goes to a file, so memory stays bounded.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::exec::{self, Capture, Progress};
use crate::kernel::{CancelHost, DeadlineHost, Kernel};
use crate::protocol::{
    Captured, FromWorker, Job, Outcome, Stream, TaskReport, TaskSpec, ToWorker, Usage, WorkerConfig,
};
use crate::runtime::unix_now_us;

/// How a slot's replies reach the supervisor.
#[derive(Debug)]
pub struct Replies<E> {
    pub tx: Sender<E>,
    /// Wraps a reply of slot `index`.
    pub wrap: fn(u32, FromWorker) -> E,
    /// Says slot `index` ended.
    pub gone: fn(u32) -> E,
}

impl<E> Clone for Replies<E> {
    fn clone(&self) -> Self {
        Replies {
            tx: self.tx.clone(),
            wrap: self.wrap,
            gone: self.gone,
        }
    }
}

/// The event-loop thread, which hosts every slot of an async pool.
#[derive(Debug)]
pub struct EventLoop {
    new_slots: UnboundedSender<(u32, UnboundedReceiver<ToWorker>)>,
    cancel: CancelHost,
    wake: Arc<Notify>,
    thread: std::thread::JoinHandle<()>,
}

impl EventLoop {
    /// Starts the loop's thread.
    pub fn start<E: Send + 'static>(replies: Replies<E>) -> std::io::Result<EventLoop> {
        let (new_slots, mut incoming) = unbounded_channel::<(u32, UnboundedReceiver<ToWorker>)>();
        let cancel = CancelHost::default();
        let wake = Arc::new(Notify::new());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (c, w) = (cancel.clone(), wake.clone());
        let thread = std::thread::Builder::new()
            .name("troop-loop".into())
            .spawn(move || {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    let mut slots = Vec::new();
                    while let Some((index, rx)) = incoming.recv().await {
                        slots.push(tokio::task::spawn_local(serve_slot(
                            index,
                            rx,
                            replies.clone(),
                            c.clone(),
                            w.clone(),
                        )));
                    }
                    for slot in slots {
                        let _ = slot.await;
                    }
                });
            })?;
        Ok(EventLoop {
            new_slots,
            cancel,
            wake,
            thread,
        })
    }

    /// Adds slot `index` to the loop; returns the sender that feeds it.
    pub fn add_slot(&self, index: u32) -> UnboundedSender<ToWorker> {
        let (tx, rx) = unbounded_channel();
        let _ = self.new_slots.send((index, rx));
        tx
    }

    /// Stops every running kernel and sleep.
    pub fn cancel(&self) {
        self.cancel.cancel.store(true, Ordering::Relaxed);
        self.wake.notify_waiters();
    }

    /// Waits for every slot to end (their senders must be dropped or told to shut down).
    pub fn join(self) {
        drop(self.new_slots);
        let _ = self.thread.join();
    }
}

async fn serve_slot<E>(
    index: u32,
    mut rx: UnboundedReceiver<ToWorker>,
    replies: Replies<E>,
    cancel: CancelHost,
    wake: Arc<Notify>,
) {
    let send = |msg: FromWorker| replies.tx.send((replies.wrap)(index, msg)).is_ok();
    let mut config = WorkerConfig::default();
    let mut backlog = std::collections::VecDeque::new();
    'serve: loop {
        let msg = match backlog.pop_front() {
            Some(msg) => msg,
            None => match rx.recv().await {
                Some(msg) => msg,
                None => break,
            },
        };
        match msg {
            ToWorker::Configure(c) => config = c,
            ToWorker::Run(batch) => {
                let mut tasks: std::collections::VecDeque<TaskSpec> = batch.into();
                let mut done = Vec::new();
                let mut pending_us = 0;
                loop {
                    while let Ok(msg) = rx.try_recv() {
                        backlog.push_back(msg);
                    }
                    let withdrawn = crate::runtime::take_withdrawn(&mut tasks, &mut backlog);
                    if !withdrawn.is_empty() {
                        if !done.is_empty() && !send(FromWorker::Done(std::mem::take(&mut done))) {
                            break 'serve;
                        }
                        if !send(FromWorker::Withdrawn(withdrawn)) {
                            break 'serve;
                        }
                        continue 'serve;
                    }
                    let Some(task) = tasks.pop_front() else {
                        break;
                    };
                    let report = execute(&task, &config, &cancel, &wake, &send).await;
                    pending_us += report.usage.wall_us;
                    done.push(report);
                    if pending_us >= config.flush_after_us {
                        pending_us = 0;
                        if !send(FromWorker::Done(std::mem::take(&mut done))) {
                            break 'serve;
                        }
                    }
                    // Let the other slots run between tasks, as an `await` point would.
                    tokio::task::yield_now().await;
                }
                if !done.is_empty() && !send(FromWorker::Done(done)) {
                    break;
                }
            }
            // Nothing is held here: every earlier batch has run.
            ToWorker::Withdraw => {}
            ToWorker::Shutdown => break,
        }
    }
    let _ = replies.tx.send((replies.gone)(index));
}

async fn execute(
    task: &TaskSpec,
    config: &WorkerConfig,
    cancel: &CancelHost,
    wake: &Notify,
    send: &dyn Fn(FromWorker) -> bool,
) -> TaskReport {
    let (id, timeout) = (task.id, task.timeout_ms.map(Duration::from_millis));
    let start_unix_us = unix_now_us();
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    let mut usage = Usage::default();
    let (outcome, stdout, stderr) = match &task.job {
        Job::Kernel(Kernel::Sleep(ms)) => {
            let end = started + Duration::from_millis(*ms);
            let until = deadline.map_or(end, |d| d.min(end));
            let outcome = tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => if until < end { Outcome::TimedOut { signal: None } } else { Outcome::Exited(0) },
                _ = wake.notified() => Outcome::Signaled(libc::SIGTERM),
            };
            (outcome, Captured::EMPTY, Captured::EMPTY)
        }
        Job::Kernel(kernel) => {
            // Computing blocks the loop: no other slot runs until this ends.
            let mut host = cancel.clone();
            let mut out = Vec::new();
            let result = match deadline {
                None => kernel.run(&mut host, &mut out),
                Some(deadline) => kernel.run(
                    &mut DeadlineHost {
                        inner: &mut host,
                        deadline,
                    },
                    &mut out,
                ),
            };
            let outcome = match result {
                Ok(()) => Outcome::Exited(0),
                Err(_) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    Outcome::TimedOut { signal: None }
                }
                Err(_) => Outcome::Signaled(libc::SIGTERM),
            };
            (outcome, Captured::Bytes(out), Captured::EMPTY)
        }
        Job::Call { name, args, count } => {
            let report = crate::registry::execute(id, name, args, *count);
            usage = report.usage;
            (report.outcome, report.stdout, report.stderr)
        }
        job => match command(id, job, task.input.as_ref(), config, deadline, send).await {
            Ok((outcome, stdout, stderr, used)) => {
                usage = used;
                (outcome, stdout, stderr)
            }
            Err(err) => {
                let f = exec::spawn_failed(job, config, &err, start_unix_us, started);
                (f.outcome, f.stdout, f.stderr)
            }
        },
    };
    TaskReport {
        id,
        outcome,
        stdout,
        stderr,
        usage: Usage {
            start_unix_us,
            wall_us: started.elapsed().as_micros() as u64,
            ..usage
        },
        returned: Vec::new(),
    }
}

/// Runs a command on the loop: spawn, read both pipes, wait for its end, all without blocking
/// the thread. Output is captured as in the other modes (spilled to a file past the threshold,
/// streamed as lines in line-buffered mode), and the exit status and resource use come from
/// `wait4(2)` once a pidfd says the command has ended.
async fn command(
    id: u64,
    job: &Job,
    input: Option<&crate::protocol::TaskInput>,
    config: &WorkerConfig,
    deadline: Option<Instant>,
    send: &dyn Fn(FromWorker) -> bool,
) -> std::io::Result<(Outcome, Captured, Captured, Usage)> {
    let mut command = exec::prepare(job, config);
    let pending = crate::task_input::attach(&mut command, input)?;
    let mut child = command.spawn()?;
    let _input = pending.start(&mut child);
    let pid = child.id() as i32;
    exec::reaper_watch(pid);
    send(FromWorker::Started { id, pgid: pid });
    let watch = |fd: Option<OwnedFd>| -> std::io::Result<Option<AsyncFd<OwnedFd>>> {
        let Some(fd) = fd else { return Ok(None) };
        exec::set_nonblocking(&fd);
        // SAFETY: an OwnedFd is a valid open descriptor, and it stays open and the same for
        // as long as the AsyncFd that owns it lives.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        Ok(Some(registered?))
    };
    let fds = (|| {
        Ok::<_, std::io::Error>((
            watch(child.stdout.take().map(OwnedFd::from))?,
            watch(child.stderr.take().map(OwnedFd::from))?,
            watch(exec::pidfd_open(pid))?,
        ))
    })();
    let (mut out_fd, mut err_fd, exit_fd) = match fds {
        Ok(fds) => fds,
        Err(e) => {
            // The command runs but cannot be watched: it must not be left behind.
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
            exec::wait4(pid);
            exec::reaper_forget(pid);
            return Err(e);
        }
    };
    let spill = exec::Spill::of(config, id);
    let mut out = Capture::new(Stream::Stdout, config.line_buffer, spill.clone());
    let mut err = Capture::new(Stream::Stderr, config.line_buffer, spill);
    let mut emit = |progress: Progress<'_>| {
        if let Progress::Lines { stream, bytes } = progress {
            send(FromWorker::Output {
                id,
                stream,
                bytes: bytes.to_vec(),
            });
        }
    };
    // The termination sequence: the next step to take and when.
    let mut next_step = deadline;
    let mut steps = config.term_seq.iter();
    // Why the sequence runs: the deadline passed, or output could not be kept.
    let mut timed_out = false;
    let mut stopping = false;
    let mut exited = false;
    loop {
        if exited {
            // Whatever the command wrote is in the pipes now; a background process that still
            // holds them open does not keep this task running.
            for (fd, capture) in [(&out_fd, &mut out), (&err_fd, &mut err)] {
                if let Some(fd) = fd {
                    drain(fd.get_ref(), capture, &mut emit);
                }
            }
            break;
        }
        if exit_fd.is_none() && out_fd.is_none() && err_fd.is_none() {
            // No pidfd (an old kernel): the end of both pipes stands for the end of the command.
            break;
        }
        let far = Instant::now() + Duration::from_secs(3600);
        tokio::select! {
            ready = readable(&out_fd), if out_fd.is_some() => {
                if ready_drain(ready, &mut out, &mut emit) {
                    out_fd = None;
                }
            }
            ready = readable(&err_fd), if err_fd.is_some() => {
                if ready_drain(ready, &mut err, &mut emit) {
                    err_fd = None;
                }
            }
            _ = readable(&exit_fd), if exit_fd.is_some() => exited = true,
            _ = tokio::time::sleep_until(next_step.unwrap_or(far).into()), if next_step.is_some() => {
                // Overran, or lost output: take the next step of the termination sequence.
                if !stopping {
                    timed_out = true;
                }
                stopping = true;
                next_step = steps.next().map(|step| {
                    // SAFETY: killpg has no memory effects.
                    unsafe { libc::killpg(pid, step.signal) };
                    Instant::now() + Duration::from_millis(step.wait_ms)
                });
            }
        }
        if !stopping && (out.is_lost() || err.is_lost()) {
            // Output that cannot be kept: stop the command now; the task fails.
            stopping = true;
            next_step = Some(Instant::now());
        }
    }
    let (status, usage) = exec::wait4(pid);
    if stopping {
        // Nothing the task started may outlive its timeout or its failure.
        // SAFETY: killpg has no memory effects.
        unsafe { libc::killpg(pid, libc::SIGKILL) };
    }
    exec::reaper_forget(pid);
    let (stdout, out_lost) = out.finish(&mut emit);
    let (stderr, err_lost) = err.finish(&mut emit);
    let outcome = exec::final_outcome(status, timed_out, [out_lost, err_lost]);
    Ok((outcome, stdout, stderr, usage))
}

/// Waits until `fd` is readable (never, for none).
async fn readable(
    fd: &Option<AsyncFd<OwnedFd>>,
) -> std::io::Result<AsyncFdReadyGuard<'_, OwnedFd>> {
    match fd {
        Some(fd) => fd.readable().await,
        None => std::future::pending().await,
    }
}

/// Reads a pipe that was found readable; true once it reached its end.
fn ready_drain(
    ready: std::io::Result<AsyncFdReadyGuard<'_, OwnedFd>>,
    capture: &mut Capture,
    emit: &mut dyn FnMut(Progress<'_>),
) -> bool {
    let Ok(mut guard) = ready else { return true };
    match drain(guard.get_inner(), capture, emit) {
        Drained::Closed => true,
        Drained::Empty => {
            guard.clear_ready();
            false
        }
        Drained::More => false,
    }
}

/// How a drain of a pipe ended.
enum Drained {
    /// End of file (or an error that ends reading).
    Closed,
    /// Nothing more to read now.
    Empty,
    /// A burst was read; there may be more.
    More,
}

/// Reads what `fd` has (up to a burst) into `capture`.
fn drain(fd: &OwnedFd, capture: &mut Capture, emit: &mut dyn FnMut(Progress<'_>)) -> Drained {
    use nix::errno::Errno;
    let mut read = 0;
    loop {
        match capture.read_from(fd.as_fd()) {
            Ok(0) => return Drained::Closed,
            Ok(n) => {
                capture.settle(emit);
                read += n;
                if read >= exec::READ_BURST {
                    return Drained::More;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Drained::Empty,
            Err(_) => return Drained::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Ev {
        Msg(FromWorker),
        Gone,
    }

    fn pool(
        slots: u32,
    ) -> (
        EventLoop,
        Vec<UnboundedSender<ToWorker>>,
        crossbeam_channel::Receiver<Ev>,
    ) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let lp = EventLoop::start(Replies {
            tx,
            wrap: |_, m| Ev::Msg(m),
            gone: |_| Ev::Gone,
        })
        .unwrap();
        let senders = (0..slots).map(|i| lp.add_slot(i)).collect();
        (lp, senders, rx)
    }

    fn reports(rx: &crossbeam_channel::Receiver<Ev>, n: usize) -> Vec<TaskReport> {
        let mut out = Vec::new();
        while out.len() < n {
            if let Ev::Msg(FromWorker::Done(r)) =
                rx.recv_timeout(Duration::from_secs(20)).expect("a report")
            {
                out.extend(r);
            }
        }
        out
    }

    fn task(id: u64, job: Job) -> ToWorker {
        ToWorker::Run(vec![TaskSpec {
            id,
            job,
            timeout_ms: None,
            input: None,
            transfer: None,
        }])
    }

    #[test]
    fn sleeps_and_commands_overlap_on_one_thread() {
        let (lp, tx, rx) = pool(4);
        tx[0]
            .send(task(1, Job::Kernel(Kernel::Sleep(400))))
            .unwrap();
        tx[1]
            .send(task(2, Job::Kernel(Kernel::Sleep(400))))
            .unwrap();
        tx[2]
            .send(task(3, Job::Shell("sleep 0.4; echo done".into())))
            .unwrap();
        tx[3]
            .send(task(4, Job::Exec(vec!["sleep".into(), "0.4".into()])))
            .unwrap();
        let r = reports(&rx, 4);
        // Every task started before any other ended: they ran at the same time.
        let first_end = r
            .iter()
            .map(|r| r.usage.start_unix_us + r.usage.wall_us)
            .min()
            .unwrap();
        let last_start = r.iter().map(|r| r.usage.start_unix_us).max().unwrap();
        assert!(
            last_start < first_end,
            "the tasks ran one after another: {r:?}"
        );
        assert!(r.iter().all(|r| r.outcome.is_success()), "{r:?}");
        let echo = r.iter().find(|r| r.id == 3).unwrap();
        assert_eq!(echo.stdout, Captured::Bytes(b"done\n".to_vec()));
        for s in tx {
            s.send(ToWorker::Shutdown).unwrap();
        }
        lp.join();
    }

    #[test]
    fn big_command_output_spills_and_usage_is_measured() {
        let dir = std::env::temp_dir().join(format!("troop-loop-spill-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (lp, tx, rx) = pool(1);
        tx[0]
            .send(ToWorker::Configure(WorkerConfig {
                spill_dir: Some(dir.to_string_lossy().into_owned()),
                spill_threshold: 64 * 1024,
                ..WorkerConfig::default()
            }))
            .unwrap();
        let busy = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; head -c 1000000 /dev/zero";
        tx[0].send(task(1, Job::Shell(busy.into()))).unwrap();
        let r = reports(&rx, 1);
        let Captured::File { path, len } = &r[0].stdout else {
            panic!("not spilled: {} bytes in memory", r[0].stdout.len())
        };
        assert_eq!(*len, 1_000_000);
        assert_eq!(std::fs::metadata(path).unwrap().len(), 1_000_000);
        let usage = r[0].usage;
        assert!(usage.user_us + usage.sys_us > 0, "{usage:?}");
        assert!(usage.max_rss_kib > 0, "{usage:?}");
        drop(tx);
        lp.join();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_command_timeout_runs_the_term_sequence() {
        let (lp, tx, rx) = pool(1);
        tx[0]
            .send(ToWorker::Run(vec![TaskSpec {
                id: 1,
                job: Job::Shell("sleep 30".into()),
                timeout_ms: Some(100),
                input: None,
                transfer: None,
            }]))
            .unwrap();
        let r = reports(&rx, 1);
        assert_eq!(
            r[0].outcome,
            Outcome::TimedOut {
                signal: Some(libc::SIGTERM)
            }
        );
        drop(tx);
        lp.join();
    }

    #[test]
    fn a_background_process_holding_stdout_does_not_hold_the_task() {
        let (lp, tx, rx) = pool(1);
        tx[0]
            .send(task(1, Job::Shell("sleep 30 & echo $!".into())))
            .unwrap();
        let r = reports(&rx, 1);
        let Captured::Bytes(out) = &r[0].stdout else {
            panic!("spilled")
        };
        let background: i32 = String::from_utf8_lossy(out).trim().parse().unwrap();
        // The task was reported while the background process still ran.
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(background), None).is_ok();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(background),
            nix::sys::signal::SIGKILL,
        );
        assert!(alive, "the task waited for its background process");
        assert_eq!(r[0].outcome, Outcome::Exited(0));
        drop(tx);
        lp.join();
    }

    #[test]
    fn cancel_stops_a_sleeping_slot() {
        let (lp, tx, rx) = pool(1);
        tx[0]
            .send(task(1, Job::Kernel(Kernel::Sleep(60_000))))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        lp.cancel();
        let r = reports(&rx, 1);
        assert_eq!(r[0].outcome, Outcome::Signaled(libc::SIGTERM));
        drop(tx);
        lp.join();
    }
}
