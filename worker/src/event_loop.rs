//! The async mode: one thread runs an event loop (tokio's current-thread runtime), as a Python
//! program runs asyncio.
//!
//! Each worker slot is a task on that one loop. Waiting overlaps: `@sleep` is a timer, and
//! commands are spawned and awaited asynchronously, so many `sleep 1` commands run at once on one
//! thread. Computing does not: a CPU-bound kernel runs on the loop's thread and blocks every other
//! slot until it ends, which is the point of the lesson. Spilling big output to disk is not done
//! here: a slot keeps its task's output in memory.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::exec;
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
        job => match command(id, job, config, deadline, send).await {
            Ok(done) => done,
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
            ..Usage::default()
        },
    }
}

/// Runs a command asynchronously: spawn, read both pipes and wait, all on the loop.
async fn command(
    id: u64,
    job: &Job,
    config: &WorkerConfig,
    deadline: Option<Instant>,
    send: &dyn Fn(FromWorker) -> bool,
) -> std::io::Result<(Outcome, Captured, Captured)> {
    let mut child = tokio::process::Command::from(exec::prepare(job, config)).spawn()?;
    let pgid = child.id().map_or(0, |p| p as i32);
    send(FromWorker::Started { id, pgid });
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let lines = |stream| {
        move |bytes: &[u8]| {
            send(FromWorker::Output {
                id,
                stream,
                bytes: bytes.to_vec(),
            });
        }
    };
    let line_buffer = config.line_buffer;
    let work = async {
        tokio::join!(
            pump(out, line_buffer, lines(Stream::Stdout)),
            pump(err, line_buffer, lines(Stream::Stderr)),
            child.wait()
        )
    };
    tokio::pin!(work);
    let mut timed_out = false;
    let (stdout, stderr, status) = match deadline {
        None => work.await,
        Some(at) => tokio::select! {
            r = &mut work => r,
            _ = tokio::time::sleep_until(at.into()) => {
                timed_out = true;
                let mut steps = config.term_seq.iter();
                loop {
                    let Some(step) = steps.next() else { break work.await };
                    // SAFETY: killpg has no memory effects.
                    unsafe { libc::killpg(pgid, step.signal) };
                    tokio::select! {
                        r = &mut work => break r,
                        _ = tokio::time::sleep(Duration::from_millis(step.wait_ms)) => {}
                    }
                }
            }
        },
    };
    use std::os::unix::process::ExitStatusExt;
    let outcome = match status {
        Ok(s) => match (s.signal(), s.code()) {
            (Some(sig), _) => Outcome::Signaled(sig),
            (None, code) => Outcome::Exited(code.unwrap_or(255)),
        },
        Err(_) => Outcome::Exited(255),
    };
    let outcome = if timed_out {
        // SAFETY: killpg has no memory effects.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
        Outcome::TimedOut {
            signal: match outcome {
                Outcome::Signaled(sig) => Some(sig),
                _ => None,
            },
        }
    } else {
        outcome
    };
    Ok((outcome, Captured::Bytes(stdout), Captured::Bytes(stderr)))
}

/// Reads a pipe to its end; in line-buffered mode hands complete lines to `emit` as they come.
async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    line_buffer: bool,
    emit: impl Fn(&[u8]),
) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if line_buffer && let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                    emit(&buf[..=end]);
                    buf.drain(..=end);
                }
            }
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
    fn a_command_timeout_runs_the_term_sequence() {
        let (lp, tx, rx) = pool(1);
        tx[0]
            .send(ToWorker::Run(vec![TaskSpec {
                id: 1,
                job: Job::Shell("sleep 30".into()),
                timeout_ms: Some(100),
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
