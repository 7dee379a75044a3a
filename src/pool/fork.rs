//! Starting workers by forking, as Python's `fork` and `forkserver` start methods do.
//!
//! [`ForkServer::prefork`] runs before the supervisor has started any thread (it checks): it
//! forks a small fork server first, then every initial worker, each with its own pair of
//! ipc-channel ends. A worker forked from a multi-threaded process could inherit a lock held by a
//! thread that does not exist in the child, so a worker needed later (a replacement) is forked by
//! the fork server, which stays single-threaded for its whole life. The supervisor sends it the
//! new worker's channel ends over IPC.

use crossbeam_channel::Sender;
use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid, fork, getpid, setpgid};
use troop_worker::process::{serve_forked, set_comm, set_title};
use troop_worker::protocol::{ForkRequest, FromWorker, ToWorker};

use super::{PoolError, forward};
use crate::inbox::{Link, Msg};

/// A worker forked before any thread started, waiting for its reader thread.
#[derive(Debug)]
struct Preforked {
    pid: Pid,
    link: IpcSender<ToWorker>,
    rx: IpcReceiver<FromWorker>,
}

/// The fork server and the workers forked at start-up.
#[derive(Debug)]
pub struct ForkServer {
    requests: IpcSender<ForkRequest>,
    server_pid: Pid,
    preforked: Vec<Option<Preforked>>,
}

/// The number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(1)
}

fn fork_error(worker: u32, e: impl Into<std::io::Error>) -> PoolError {
    PoolError::Start {
        worker,
        reason: super::os_reason("fork failed", &e.into()),
    }
}

impl ForkServer {
    /// Forks the fork server and `workers` workers. Must run while the process is single-threaded.
    pub fn prefork(workers: usize, token: &str) -> Result<ForkServer, PoolError> {
        let threads = thread_count();
        if threads != 1 {
            return Err(PoolError::NotSingleThreaded { threads });
        }
        let parent = getpid().as_raw();
        let (requests, server_rx) = ipc::channel::<ForkRequest>().map_err(|e| fork_error(0, e))?;
        // SAFETY: the process is single-threaded (checked above), so the child owns a consistent
        // copy of every lock and allocator state.
        let server_pid = match unsafe { fork() }.map_err(|e| fork_error(0, e))? {
            ForkResult::Child => {
                drop(requests);
                fork_server_main(server_rx)
            }
            ForkResult::Parent { child } => child,
        };
        drop(server_rx);
        let mut preforked: Vec<Option<Preforked>> = Vec::with_capacity(workers);
        for index in 0..workers as u32 {
            let (to_tx, to_rx) =
                ipc::channel::<ToWorker>().map_err(|e| fork_error(index + 1, e))?;
            let (from_tx, from_rx) =
                ipc::channel::<FromWorker>().map_err(|e| fork_error(index + 1, e))?;
            // SAFETY: still single-threaded: no thread has been started since the check.
            match unsafe { fork() }.map_err(|e| fork_error(index + 1, e))? {
                ForkResult::Child => {
                    // Close every end that belongs to the supervisor or to other workers, so
                    // that each worker's death closes exactly its own channel.
                    drop(preforked);
                    drop(requests);
                    drop(to_tx);
                    drop(from_rx);
                    serve_forked(index, parent, token.to_string(), to_rx, from_tx)
                }
                ForkResult::Parent { child } => preforked.push(Some(Preforked {
                    pid: child,
                    link: to_tx,
                    rx: from_rx,
                })),
            }
        }
        Ok(ForkServer {
            requests,
            server_pid,
            preforked,
        })
    }

    /// Starts worker `index`: hands a preforked worker to a reader thread, or asks the fork
    /// server for a new one. Returns the pid when the worker is the supervisor's own child.
    pub fn start(
        &mut self,
        index: u32,
        token: &str,
        inbox: Sender<Msg>,
    ) -> Result<Option<Pid>, PoolError> {
        let reader = |rx: IpcReceiver<FromWorker>, link: IpcSender<ToWorker>| {
            std::thread::Builder::new()
                .name(format!("troop-r{}", index + 1))
                .spawn(move || forward(index, rx, inbox, Some(Link::Ipc(link))))
                .map(|_| ())
                .map_err(|e| PoolError::Start {
                    worker: index + 1,
                    reason: super::os_reason("cannot start a reader thread", &e),
                })
        };
        if let Some(p) = self
            .preforked
            .get_mut(index as usize)
            .and_then(Option::take)
        {
            reader(p.rx, p.link)?;
            return Ok(Some(p.pid));
        }
        let err = |e: String| PoolError::Start {
            worker: index + 1,
            reason: e,
        };
        let (to_tx, to_rx) = ipc::channel::<ToWorker>().map_err(|e| err(e.to_string()))?;
        let (from_tx, from_rx) = ipc::channel::<FromWorker>().map_err(|e| err(e.to_string()))?;
        self.requests
            .send(ForkRequest {
                index,
                token: token.into(),
                rx: to_rx,
                tx: from_tx,
            })
            .map_err(|e| err(format!("the fork server is gone: {e}")))?;
        reader(from_rx, to_tx)?;
        Ok(None)
    }

    /// The fork server's pid.
    pub fn server_pid(&self) -> Pid {
        self.server_pid
    }

    /// Stops the fork server and reaps it.
    pub fn stop(self) {
        drop(self.requests);
        let _ = nix::sys::wait::waitpid(self.server_pid, None);
    }
}

/// The fork server: forks a worker for each request until the supervisor hangs up.
fn fork_server_main(requests: IpcReceiver<ForkRequest>) -> ! {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    set_comm("troop-forksrv");
    set_title("troop-worker [fork server]");
    // SAFETY: prctl(PR_SET_PDEATHSIG) has no memory effects.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // Let the kernel reap the workers this server forks.
    // SAFETY: installing SIG_IGN runs no code in signal context.
    unsafe {
        let _ = signal(Signal::SIGCHLD, SigHandler::SigIgn);
    }
    let me = getpid().as_raw();
    while let Ok(req) = requests.recv() {
        // SAFETY: the fork server never starts a thread.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(requests);
                // SAFETY: restoring the default disposition runs no code in signal context. A
                // worker must reap its own commands.
                unsafe {
                    let _ = signal(Signal::SIGCHLD, SigHandler::SigDfl);
                }
                serve_forked(req.index, me, req.token, req.rx, req.tx)
            }
            Ok(ForkResult::Parent { .. }) | Err(_) => drop(req),
        }
    }
    // SAFETY: _exit ends the process without running the supervisor's inherited destructors.
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefork_refuses_a_process_with_more_than_one_thread() {
        // A second thread that lives through the call: forking now could copy a held lock.
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        let result = ForkServer::prefork(1, "token");
        drop(done);
        let _ = other.join();
        match result {
            Err(PoolError::NotSingleThreaded { threads }) => assert!(threads >= 2),
            other => panic!("forked with other threads running: {other:?}"),
        }
    }
}
