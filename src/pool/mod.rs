//! The worker pool: starting, feeding, replacing and reaping workers, whatever they are.
//!
//! Process workers start by spawning troop's own program as a worker ([`spawn`]) or by forking
//! ([`fork`]); thread workers run the same runtime on threads ([`thread`]), with or without a
//! global lock; async workers are slots of one event loop. Every start completes asynchronously:
//! the worker's hello arrives in the supervisor's inbox as [`Msg::WorkerUp`] (or its failure as
//! [`Msg::WorkerFailed`]), and its death as [`Msg::WorkerGone`]. Every worker process runs in its
//! own process group and is always reaped. A slot whose worker cannot start is retired, and the
//! pool is no larger than the file-handle limit allows ([`budget`]).
//! The commands of in-process workers have no worker process to die with troop: a [`reaper`]
//! process kills them if troop dies.

pub mod budget;
pub mod fork;
pub mod listen;
pub mod reaper;
pub mod remote;
pub mod slurm;
pub mod spawn;
pub mod thread;
pub mod watch;

use std::time::Duration;

use crossbeam_channel::Sender;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::sync::Arc;
use thiserror::Error;

use troop_worker::event_loop::{EventLoop, Replies};
use troop_worker::gil::Gil;
use troop_worker::kernel::CancelHost;
use troop_worker::protocol::{Hello, PROTOCOL_VERSION, ToWorker, WorkerConfig};

use crate::inbox::{Link, Msg};
use thread::ThreadHost;

/// A worker that did not start or cannot be reached.
#[derive(Debug, Error)]
pub enum PoolError {
    #[error(
        "cannot find the worker program `{path}` ({reason}); unset TROOP_WORKER_EXE to let troop serve as its own worker"
    )]
    WorkerExeMissing { path: String, reason: String },
    #[error("no worker could start: {reason}")]
    NoWorker { reason: String },
    #[error(
        "the limit on open files (ulimit -n is {limit}) leaves no room for a worker: raise it (try: ulimit -n `ulimit -Hn`)"
    )]
    NoFileHandles { limit: u64 },
    #[error("cannot start worker w{worker}: {reason}")]
    Start { worker: u32, reason: String },
    #[error(
        "worker w{worker} speaks protocol version {theirs}, this troop speaks {ours}: install troop and troop-worker from the same build"
    )]
    Version { worker: u32, theirs: u32, ours: u32 },
    #[error("worker w{worker} presented a wrong token; refusing it")]
    Token { worker: u32 },
    #[error(
        "TMPDIR `{dir}` is too long for a Unix socket path ({len} bytes with the socket name; the limit is {max}): set TMPDIR to a shorter directory, such as /tmp"
    )]
    SocketPathTooLong { dir: String, len: usize, max: usize },
    #[error("--start fork needs a single-threaded supervisor, but {threads} threads are running")]
    NotSingleThreaded { threads: usize },
    #[error("cannot start the reaper process: {0}")]
    Reaper(String),
}

/// Why a worker did not start, as its reader thread reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFailure {
    /// The worker ended before it said hello (how, in words).
    Ended(String),
    /// Something that is not the worker connected to its bootstrap socket and was refused (what
    /// it did, in words); the worker was killed, to be started again.
    BadPeer(String),
    /// The worker speaks another protocol version.
    Version { theirs: u32 },
}

/// An OS error in words, with what to do when it means a per-user limit was reached.
pub(crate) fn os_reason(what: &str, e: &std::io::Error) -> String {
    format!("{what}: {e}{}", crate::error::limit_hint(e))
}

/// How this pool's workers start.
#[derive(Debug)]
pub enum Launcher {
    Spawn(spawn::Spawner),
    Fork(fork::ForkServer),
    /// Threads with no lock.
    Thread,
    /// Threads that share one global lock, handed over every interval.
    Gil(Duration),
    /// Slots of one event loop; started with the pool.
    Async(Option<EventLoop>),
    /// Processes on other hosts through ssh; slots placed on `:` are spawned here.
    Remote {
        remote: Box<remote::Remote>,
        local: spawn::Spawner,
    },
    /// Slurm job steps that connect back over TCP.
    Slurm(Box<slurm::Slurm>),
}

/// What the pool must do to reap a worker.
#[derive(Debug)]
enum Body {
    /// A spawned process, our child.
    Child(std::process::Child),
    /// The ssh process, our child, that carries a worker on another host.
    Remote(std::process::Child),
    /// A remote worker that waits for its host's first worker to log in.
    Waiting,
    /// A process forked by the supervisor itself, our child.
    Forked(Pid),
    /// A process forked by the fork server, which reaps it.
    Adopted,
    /// A thread of ours.
    Thread(std::thread::JoinHandle<()>),
    /// A slot of the event loop, which ends with the loop.
    Slot,
}

#[derive(Debug)]
struct Worker {
    link: Option<Link>,
    body: Body,
    pid: Option<u32>,
    /// A remote worker still to get the `--basefile`s, with its first task.
    basefiles_due: bool,
}

impl Worker {
    /// The worker's process, if it is one (known before its hello for the ones troop started
    /// itself); `None` for a worker that lives in troop's own process.
    fn process(&self) -> Option<Pid> {
        match &self.body {
            Body::Thread(_) | Body::Slot | Body::Remote(_) | Body::Waiting => None,
            Body::Child(child) => Some(Pid::from_raw(child.id() as i32)),
            Body::Forked(pid) => Some(*pid),
            Body::Adopted => self.pid.map(|p| Pid::from_raw(p as i32)),
        }
    }

    /// The local process that carries the worker: the worker itself, or its ssh.
    fn carrier(&self) -> Option<Pid> {
        match &self.body {
            Body::Remote(ssh) => Some(Pid::from_raw(ssh.id() as i32)),
            _ => self.process(),
        }
    }
}

/// The pool of workers.
#[derive(Debug)]
pub struct Pool {
    launcher: Launcher,
    workers: Vec<Option<Worker>>,
    /// Slots given up on: no worker starts there again, and their messages are ignored.
    retired: Vec<bool>,
    inbox: Sender<Msg>,
    token: String,
    config: WorkerConfig,
    /// Raised to stop the kernels of thread workers.
    cancel: CancelHost,
    /// The lock of a gil pool.
    gil: Arc<Gil>,
}

impl Pool {
    /// A pool of `size` empty slots.
    pub fn new(
        launcher: Launcher,
        size: usize,
        inbox: Sender<Msg>,
        token: String,
        config: WorkerConfig,
    ) -> Self {
        Pool {
            launcher,
            workers: (0..size).map(|_| None).collect(),
            retired: vec![false; size],
            inbox,
            token,
            config,
            cancel: CancelHost::default(),
            gil: Arc::default(),
        }
    }

    /// Makes room for `size` slots; slots added are empty (the pool grows, `-j FILE`).
    pub fn grow(&mut self, size: usize) {
        if size > self.workers.len() {
            self.workers.resize_with(size, || None);
            self.retired.resize(size, false);
        }
    }

    /// Starts a worker in slot `index`; its hello will arrive in the inbox.
    pub fn start(&mut self, index: u32) -> Result<(), PoolError> {
        let inbox = self.inbox.clone();
        let body = match &mut self.launcher {
            Launcher::Spawn(s) => Body::Child(s.start(index, &self.token, inbox)?),
            Launcher::Slurm(slurm) => Body::Remote(slurm.start(index)?),
            Launcher::Remote { remote, local } => {
                if remote.host(index).login == crate::hosts::Login::Local {
                    Body::Child(local.start(index, &self.token, inbox)?)
                } else {
                    match remote.start(index, inbox)? {
                        Some(ssh) => Body::Remote(ssh),
                        None => Body::Waiting,
                    }
                }
            }
            Launcher::Fork(f) => match f.start(index, &self.token, inbox)? {
                Some(pid) => Body::Forked(pid),
                None => Body::Adopted,
            },
            Launcher::Thread => Body::Thread(thread::start(
                index,
                &self.token,
                inbox,
                ThreadHost::Free(self.cancel.clone()),
            )?),
            Launcher::Gil(interval) => {
                let host = ThreadHost::Gil {
                    gil: self.gil.clone(),
                    interval: *interval,
                    cancel: self.cancel.clone(),
                };
                Body::Thread(thread::start(index, &self.token, inbox, host)?)
            }
            Launcher::Async(event_loop) => {
                let event_loop = match event_loop {
                    Some(l) => l,
                    None => {
                        let replies = Replies {
                            tx: inbox.clone(),
                            wrap: Msg::from_worker,
                            gone: Msg::gone,
                        };
                        event_loop.insert(EventLoop::start(replies).map_err(|e| {
                            PoolError::Start {
                                worker: index + 1,
                                reason: os_reason("cannot start the event loop", &e),
                            }
                        })?)
                    }
                };
                let link = Link::Async(event_loop.add_slot(index));
                let hello = Hello {
                    protocol_version: PROTOCOL_VERSION,
                    pid: std::process::id(),
                    index,
                    token: self.token.clone(),
                };
                let _ = inbox.send(Msg::WorkerUp { index, hello, link });
                Body::Slot
            }
        };
        self.workers[index as usize] = Some(Worker {
            link: None,
            body,
            pid: None,
            basefiles_due: true,
        });
        Ok(())
    }

    /// Accepts a worker's hello: checks it, keeps its link and configures it.
    pub fn up(&mut self, index: u32, hello: &Hello, link: Link) -> Result<(), PoolError> {
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(PoolError::Version {
                worker: index + 1,
                theirs: hello.protocol_version,
                ours: PROTOCOL_VERSION,
            });
        }
        let remote = self.workers[index as usize]
            .as_ref()
            .is_some_and(|w| matches!(w.body, Body::Remote(_)));
        // ssh vouched for a remote worker; a local one proves itself with the run's token.
        if !remote && hello.token != self.token {
            return Err(PoolError::Token { worker: index + 1 });
        }
        let mut config = self.config.clone();
        if remote {
            // This host's files are not the worker's: its output comes back in the stream.
            config.spill_dir = None;
        }
        link.send(ToWorker::Configure(config));
        if let Some(w) = self.workers[index as usize].as_mut() {
            w.pid = Some(hello.pid);
            w.link = Some(link);
        }
        if remote {
            self.start_waiting(index);
        }
        Ok(())
    }

    /// Worker `index` on another host said hello: the workers that waited for its connection
    /// start now. One that cannot start fails as any start does, through the inbox.
    fn start_waiting(&mut self, index: u32) {
        let Launcher::Remote { remote, .. } = &mut self.launcher else {
            return;
        };
        for w in remote.up(index) {
            let Some(worker) = self.workers[w as usize].as_mut() else {
                continue;
            };
            match remote.spawn(w, self.inbox.clone()) {
                Ok(ssh) => worker.body = Body::Remote(ssh),
                Err(e) => {
                    let _ = self.inbox.send(Msg::WorkerFailed {
                        index: w,
                        failure: StartFailure::Ended(format!("could not start: {e}")),
                    });
                }
            }
        }
    }

    /// Slot `index` is given up on: if it was its host's first worker, still logging in, the
    /// workers waiting for that host fail as well.
    fn forget_remote(&mut self, index: u32) {
        let Launcher::Remote { remote, .. } = &mut self.launcher else {
            return;
        };
        for w in remote.ended(index) {
            let _ = self.inbox.send(Msg::WorkerFailed {
                index: w,
                failure: StartFailure::Ended(format!("could not reach {}", remote.host(w).name)),
            });
        }
    }

    /// Sends a message to worker `index`; false when it is gone.
    pub fn send(&self, index: u32, msg: ToWorker) -> bool {
        self.workers[index as usize]
            .as_ref()
            .and_then(|w| w.link.as_ref())
            .is_some_and(|l| l.send(msg))
    }

    /// The pids of the workers that are up (the supervisor's own pid for thread workers).
    pub fn pids(&self) -> Vec<u32> {
        self.workers
            .iter()
            .flatten()
            .filter_map(|w| w.pid)
            .collect()
    }

    /// The slots and pids of the workers that are up.
    pub fn slot_pids(&self) -> Vec<(u32, u32)> {
        self.workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| Some((i as u32, w.as_ref()?.pid?)))
            .collect()
    }

    /// The host worker `index` runs on, as the job log's Host column names it: `:` for this
    /// machine.
    pub fn host(&self, index: u32) -> std::borrow::Cow<'_, str> {
        match &self.launcher {
            Launcher::Remote { remote, .. } => remote.host(index).name.as_str().into(),
            Launcher::Slurm(slurm) => slurm.host(index).into(),
            _ => ":".into(),
        }
    }

    /// True when worker `index` runs on another host (its files are not this machine's).
    pub fn is_remote(&self, index: u32) -> bool {
        self.workers[index as usize]
            .as_ref()
            .is_some_and(|w| matches!(w.body, Body::Remote(_) | Body::Waiting))
    }

    /// True the first time it is asked for a remote worker: its first task carries the
    /// `--basefile`s.
    pub fn take_basefiles_due(&mut self, index: u32) -> bool {
        self.workers[index as usize]
            .as_mut()
            .is_some_and(|w| std::mem::take(&mut w.basefiles_due))
    }

    /// The pid of worker `index`, once it said hello.
    pub fn pid(&self, index: u32) -> Option<u32> {
        self.workers[index as usize].as_ref().and_then(|w| w.pid)
    }

    /// Forgets worker `index` after its channel closed; reaps it and returns the signal that
    /// killed it, if one did.
    pub fn lost(&mut self, index: u32) -> Option<i32> {
        let worker = self.workers[index as usize].take()?;
        reap(worker, Duration::from_secs(2))
    }

    /// Kills worker process `index` at once, even one still starting (a thread worker cannot be
    /// killed).
    pub fn kill(&self, index: u32) {
        let Some(worker) = self.workers[index as usize].as_ref() else {
            return;
        };
        if let Launcher::Slurm(slurm) = &self.launcher {
            slurm.disconnect(index);
            if let Body::Remote(srun) = &worker.body {
                // srun cancels its job when asked to stop (a job still waiting for resources
                // included), which SIGKILL would leave behind; it gets a moment for that.
                let pid = srun.id() as i32;
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
                if wait_exit(pid, Duration::from_secs(2)) {
                    return;
                }
            }
        }
        if let Body::Remote(ssh) = &worker.body {
            // ssh leads a process group of its own: whatever it started goes with it.
            let _ = nix::sys::signal::killpg(Pid::from_raw(ssh.id() as i32), Signal::SIGKILL);
        } else if let Some(pid) = worker.process() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }

    /// Gives up on slot `index` for good: kills its worker if one is there, reaps it, and
    /// ignores whatever still comes from the slot. Returns how the worker ended, when known.
    pub fn retire(&mut self, index: u32) -> Option<String> {
        self.retired[index as usize] = true;
        self.forget_remote(index);
        self.kill(index);
        let worker = self.workers[index as usize].take()?;
        reap_ended(worker)
    }

    /// Reaps the worker of slot `index` after a failed start (it is dead, or is killed now), so
    /// that the slot can start again. Returns how it ended, when known.
    pub fn reap_failed(&mut self, index: u32) -> Option<String> {
        self.forget_remote(index);
        self.kill(index);
        let worker = self.workers[index as usize].take()?;
        reap_ended(worker)
    }

    /// True for a slot given up on.
    pub fn is_retired(&self, index: u32) -> bool {
        self.retired[index as usize]
    }

    /// Workers that are up or starting.
    pub fn live(&self) -> usize {
        self.workers.iter().flatten().count()
    }

    /// Workers that said hello.
    pub fn up_count(&self) -> usize {
        self.workers
            .iter()
            .flatten()
            .filter(|w| w.link.is_some())
            .count()
    }

    /// Stops every running kernel at its next checkpoint: through a flag for thread workers and
    /// the event loop, and SIGUSR1 for worker processes. Only worker processes are signalled:
    /// an in-process worker's pid is troop's own.
    pub fn cancel_kernels(&self) {
        self.cancel
            .cancel
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Launcher::Async(Some(event_loop)) = &self.launcher {
            event_loop.cancel();
        }
        for w in self.workers.iter().flatten() {
            if let Body::Thread(handle) = &w.body {
                handle.thread().unpark();
            }
        }
        self.signal_processes(Signal::SIGUSR1);
    }

    /// Sends `signal` to every worker process, those still starting included. Workers that live
    /// in this process (threads, event-loop slots) are never signalled: their pid is troop's.
    pub fn signal_processes(&self, signal: Signal) {
        for w in self.workers.iter().flatten() {
            if let Some(pid) = w.process() {
                let _ = kill(pid, signal);
            }
        }
    }

    /// True for a pool whose workers live in this process (threads or event-loop slots), which
    /// cannot be killed one by one.
    pub fn in_process(&self) -> bool {
        matches!(
            self.launcher,
            Launcher::Thread | Launcher::Gil(_) | Launcher::Async(_)
        )
    }

    /// Kills and reaps every child process of troop that is not one of its workers: a command
    /// whose worker died before it announced the command's process group was reparented to
    /// troop, a child subreaper in process mode. Returns how many were swept.
    pub fn sweep_orphans(&self) -> usize {
        if self.in_process() {
            return 0; // In-process workers' commands are troop's own children.
        }
        let known: Vec<u32> = self
            .workers
            .iter()
            .flatten()
            .filter_map(|w| w.pid)
            .collect();
        let server = match &self.launcher {
            Launcher::Fork(f) => Some(f.server_pid().as_raw() as u32),
            _ => None,
        };
        let mut swept = 0;
        for pid in children_of_self() {
            if known.contains(&pid) || server == Some(pid) || self.is_child_worker(pid) {
                continue;
            }
            let p = Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(p, Signal::SIGKILL);
            let _ = kill(p, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
            swept += 1;
        }
        swept
    }

    /// True when `pid` is a worker process still being started (no hello yet).
    fn is_child_worker(&self, pid: u32) -> bool {
        self.workers.iter().flatten().any(|w| match &w.body {
            Body::Child(c) | Body::Remote(c) => c.id() == pid,
            Body::Forked(p) => p.as_raw() as u32 == pid,
            _ => false,
        })
    }

    /// Kills every worker process at once.
    pub fn kill_all(&self) {
        for i in 0..self.workers.len() {
            self.kill(i as u32);
        }
    }

    /// Asks every worker to exit, then reaps them all. Workers that never said hello have
    /// nothing to finish and are killed at once; the others have [`SHUTDOWN_GRACE`], all
    /// together, before they are killed.
    pub fn shutdown(mut self) {
        for w in self.workers.iter().flatten() {
            match &w.link {
                Some(link) => {
                    link.send(ToWorker::Shutdown);
                }
                None => {
                    if let Some(pid) = w.carrier() {
                        let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
                        let _ = kill(pid, Signal::SIGKILL);
                    }
                }
            }
        }
        let deadline = std::time::Instant::now() + SHUTDOWN_GRACE;
        for w in self.workers.iter_mut().filter_map(Option::take) {
            reap(
                w,
                deadline.saturating_duration_since(std::time::Instant::now()),
            );
        }
        // With every worker reaped, any other child is a command a dead worker left behind.
        self.sweep_orphans();
        match self.launcher {
            // Every worker is dead now, so every reader lets go of its server soon.
            Launcher::Spawn(s) => s.wait_servers_closed(Duration::from_secs(2)),
            Launcher::Remote { local, remote } => {
                remote.close_masters();
                local.wait_servers_closed(Duration::from_secs(2));
            }
            Launcher::Fork(f) => f.stop(),
            Launcher::Async(Some(event_loop)) => event_loop.join(),
            _ => {}
        }
    }
}

/// How long the workers of a pool that shuts down have, all together, to finish and exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The pids of this process's children, from every thread's `children` list.
fn children_of_self() -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Waits up to `grace` for a worker to end, kills it if it has not, and reaps it. Returns the
/// signal that ended a process worker, if one did.
fn reap(worker: Worker, grace: Duration) -> Option<i32> {
    match worker.body {
        Body::Child(mut child) | Body::Remote(mut child) => {
            let pid = child.id() as i32;
            if !wait_exit(pid, grace) {
                let _ = child.kill();
            }
            use std::os::unix::process::ExitStatusExt;
            child.wait().ok().and_then(|s| s.signal())
        }
        Body::Forked(pid) => {
            if !wait_exit(pid.as_raw(), grace) {
                let _ = kill(pid, Signal::SIGKILL);
            }
            use nix::sys::wait::{WaitStatus, waitpid};
            match waitpid(pid, None) {
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(sig as i32),
                _ => None,
            }
        }
        Body::Adopted => {
            if let Some(pid) = worker.pid
                && !wait_exit(pid as i32, grace)
            {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
            None
        }
        Body::Thread(handle) => {
            drop(worker.link);
            let _ = handle.join();
            None
        }
        Body::Slot | Body::Waiting => None,
    }
}

/// Reaps a worker process that was killed or is dead, and says how it ended.
fn reap_ended(worker: Worker) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let describe = |code: Option<i32>, signal: Option<i32>| match (code, signal) {
        (Some(code), _) => Some(format!("exited with status {code}")),
        (_, Some(sig)) => Some(match Signal::try_from(sig) {
            Ok(name) => format!("was killed by signal {sig} ({name})"),
            Err(_) => format!("was killed by signal {sig}"),
        }),
        _ => None,
    };
    match worker.body {
        Body::Child(mut child) | Body::Remote(mut child) => {
            let status = child.wait().ok()?;
            describe(status.code(), status.signal())
        }
        Body::Forked(pid) => {
            use nix::sys::wait::{WaitStatus, waitpid};
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => describe(Some(code), None),
                Ok(WaitStatus::Signaled(_, sig, _)) => describe(None, Some(sig as i32)),
                _ => None,
            }
        }
        // A thread worker given up on before its hello was read still waits for its first
        // message, and the link that would end that wait may sit unread in the inbox: joining
        // it here would wait for ever. It ends by itself once that link is dropped.
        Body::Thread(_) | Body::Slot | Body::Waiting => None,
        Body::Adopted => {
            reap(worker, Duration::from_secs(2));
            None
        }
    }
}

/// Waits until process `pid` has exited (it may still need reaping), at most `limit`.
fn wait_exit(pid: i32, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let Some(fd) = troop_worker::exec::pidfd_open(pid) else {
        return true; // Already reaped, or no pidfd: let waitpid decide.
    };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms =
        PollTimeout::try_from(limit.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
    matches!(poll(&mut fds, ms), Ok(n) if n > 0)
}

/// Forwards everything a worker process sends to the inbox until its channel closes. The first
/// message of a forked worker is its hello, which becomes [`Msg::WorkerUp`].
fn forward(
    index: u32,
    rx: ipc_channel::ipc::IpcReceiver<troop_worker::protocol::FromWorker>,
    inbox: Sender<Msg>,
    mut pending_link: Option<Link>,
) {
    use troop_worker::protocol::FromWorker;
    // ipc-channel may panic on a message it cannot take (out of file handles, say): the
    // worker is then as good as gone.
    let recv = |rx: &ipc_channel::ipc::IpcReceiver<FromWorker>| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv()))
            .ok()
            .and_then(Result::ok)
    };
    while let Some(msg) = recv(&rx) {
        let event = match (msg, pending_link.take()) {
            (FromWorker::Hello(hello), Some(link)) => Msg::WorkerUp { index, hello, link },
            (msg, link) => {
                pending_link = link;
                Msg::from_worker(index, msg)
            }
        };
        if inbox.send(event).is_err() {
            return;
        }
    }
    let _ = inbox.send(Msg::WorkerGone(index));
}
