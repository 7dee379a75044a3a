//! Starting a worker by executing a worker program: troop's own, by default.
//!
//! `troop` serves as its own worker (as Python's spawn start method re-runs the interpreter): it
//! executes `/proc/self/exe` under the command line `troop-worker [w<N>]`, which `main` recognizes,
//! so one binary is always enough. `TROOP_WORKER_EXE` names another worker program instead, such
//! as the separate `troop-worker` binary.
//!
//! Each worker gets a fresh one-shot ipc-channel server. The server's name, the run's token and
//! the worker's index travel in the environment, never on the command line, and the worker's argv
//! reads `troop-worker [w<N>]` so `ps` and `top -c` show which worker is which (followed by spaces
//! that make room for the title the worker shows as it works: `troop-worker [w<N>] task 7: ...`). One reader thread
//! per worker accepts the connection and then forwards the worker's messages to the inbox.
//!
//! The reader alone reports how a start went, exactly once: [`Msg::WorkerUp`] or
//! [`Msg::WorkerFailed`]. It checks the hello (protocol version and token) before the
//! supervisor sees it. A worker that ends before it connects is noticed at once through its
//! pidfd ([`super::watch`]), and the report says how it ended. A peer that is not the worker
//! (junk bytes, a wrong token) is refused; since a one-shot server serves one connection, the
//! worker is then killed and the supervisor starts it again.

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, Once, PoisonError};
use std::time::Duration;

use crossbeam_channel::Sender;
use ipc_channel::ipc::IpcOneShotServer;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use troop_worker::process::{
    ENV_INDEX, ENV_PARENT, ENV_SERVER, ENV_TOKEN, WORKER_ARGV0, worker_arg,
};
use troop_worker::protocol::{Bootstrap, PROTOCOL_VERSION};

use super::watch::{ExitWatch, Watched};
use super::{PoolError, StartFailure, forward, os_reason};
use crate::inbox::{Link, Msg};

/// Names another worker program (for installations that keep it elsewhere, and for tests).
pub const ENV_WORKER_EXE: &str = "TROOP_WORKER_EXE";

/// The longest socket path a Unix socket address holds (`sun_path` less its final NUL).
const MAX_SOCKET_PATH: usize = 107;
/// What ipc-channel adds to the temporary directory: `/.tmpXXXXXX/socket`.
const SOCKET_SUFFIX: usize = "/.tmpXXXXXX/socket".len();

/// Checks that a one-shot socket under `$TMPDIR` would fit a socket address. ipc-channel would
/// otherwise bind a truncated path: a socket in the wrong place.
pub fn check_socket_dir() -> Result<(), PoolError> {
    let dir = std::env::temp_dir();
    let len = dir.as_os_str().len() + SOCKET_SUFFIX;
    if len > MAX_SOCKET_PATH {
        return Err(PoolError::SocketPathTooLong {
            dir: dir.display().to_string(),
            len,
            max: MAX_SOCKET_PATH,
        });
    }
    Ok(())
}

/// Creates a one-shot server whose socket sits in a directory only this user can enter.
///
/// ipc-channel creates that directory with the process's umask, so under umask 000 another user
/// could connect. The umask is narrowed to 077 for the moment of creation: the directory is 0700
/// whatever the caller's umask. (Another thread creating a file at that instant would only get
/// stricter permissions, never looser ones.)
fn private_server() -> std::io::Result<(IpcOneShotServer<Bootstrap>, String)> {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    let server = IpcOneShotServer::<Bootstrap>::new();
    umask(old);
    server
}

/// Starts workers from a worker program.
#[derive(Debug)]
pub struct Spawner {
    exe: PathBuf,
    /// How the program is named in messages.
    shown: String,
    watch: ExitWatch,
    /// Reader threads that still hold their one-shot server (and its socket directory).
    accepting: Arc<Accepting>,
}

/// Counts the reader threads that still hold a one-shot server.
#[derive(Debug, Default)]
struct Accepting {
    count: Mutex<usize>,
    changed: Condvar,
}

/// Marks one reader thread as holding its server, until dropped.
struct Holding(Arc<Accepting>);

impl Holding {
    fn new(accepting: &Arc<Accepting>) -> Holding {
        *accepting
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner) += 1;
        Holding(accepting.clone())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.0.changed.notify_all();
    }
}

impl Spawner {
    /// Finds the worker program: `exe` if given, else `TROOP_WORKER_EXE`, else this program.
    pub fn new(exe: Option<PathBuf>) -> Result<Self, PoolError> {
        let exe = exe.or_else(|| {
            std::env::var_os(ENV_WORKER_EXE)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let (exe, shown) = match exe {
            Some(p) => {
                let shown = p.display().to_string();
                (p, shown)
            }
            None => {
                let me = std::env::current_exe().map_err(|e| PoolError::WorkerExeMissing {
                    path: "/proc/self/exe".into(),
                    reason: e.to_string(),
                })?;
                // /proc/self/exe names this very program even if its file was replaced or
                // removed since it started, so a worker always speaks this troop's protocol.
                let own = Path::new("/proc/self/exe");
                let exe = if own.is_file() {
                    own.to_path_buf()
                } else {
                    me.clone()
                };
                (exe, me.display().to_string())
            }
        };
        check_socket_dir()?;
        if !exe.is_file() {
            return Err(PoolError::WorkerExeMissing {
                path: shown,
                reason: "no such file".into(),
            });
        }
        quiet_caught_panics();
        Ok(Spawner {
            exe,
            shown,
            watch: ExitWatch::default(),
            accepting: Arc::default(),
        })
    }

    /// Spawns worker `index`; how its start went arrives in `inbox`.
    pub fn start(
        &mut self,
        index: u32,
        token: &str,
        inbox: Sender<Msg>,
    ) -> Result<Child, PoolError> {
        let err = |reason: String| PoolError::Start {
            worker: index + 1,
            reason,
        };
        let (server, name) = private_server()
            .map_err(|e| err(os_reason("cannot create the bootstrap socket", &e)))?;
        let mut child = Command::new(&self.exe)
            .arg0(WORKER_ARGV0)
            .arg(worker_arg(index))
            .arg(troop_worker::title::room_arg())
            .env(ENV_SERVER, &name)
            .env(ENV_TOKEN, token)
            .env(ENV_INDEX, index.to_string())
            .env(ENV_PARENT, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| err(os_reason(&format!("cannot execute {}", self.shown), &e)))?;
        let abort = |child: &mut Child, reason: String| {
            let _ = child.kill();
            let _ = child.wait();
            err(reason)
        };
        let pidfd = match troop_worker::exec::pidfd_open(child.id() as i32) {
            Some(fd) => Arc::new(fd),
            None => {
                let e = std::io::Error::last_os_error();
                return Err(abort(&mut child, os_reason("cannot watch the worker", &e)));
            }
        };
        let watched = match self.watch.watch(pidfd.clone(), name) {
            Ok(w) => w,
            Err(e) => return Err(abort(&mut child, os_reason("cannot watch the worker", &e))),
        };
        let reader = Reader {
            index,
            token: token.to_string(),
            pidfd,
            watched: watched.clone(),
            inbox,
        };
        let holding = Holding::new(&self.accepting);
        let spawned = std::thread::Builder::new()
            .name(format!("troop-r{}", index + 1))
            .spawn(move || reader.run(server, holding));
        if let Err(e) = spawned {
            watched.settle();
            return Err(abort(
                &mut child,
                os_reason("cannot start a reader thread", &e),
            ));
        }
        Ok(child)
    }

    /// Waits (at most `limit`) until every reader thread has let go of its one-shot server, so
    /// that no socket directory outlives the run. Call it once every worker is dead.
    pub fn wait_servers_closed(&self, limit: Duration) {
        let count = self
            .accepting
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = self
            .accepting
            .changed
            .wait_timeout_while(count, limit, |n| *n > 0);
    }
}

/// A spawned worker's reader thread: accepts its connection, checks its hello, then forwards.
struct Reader {
    index: u32,
    token: String,
    pidfd: Arc<OwnedFd>,
    watched: Watched,
    inbox: Sender<Msg>,
}

impl Reader {
    fn run(self, server: IpcOneShotServer<Bootstrap>, holding: Holding) {
        let accepted = accept_quietly(server);
        drop(holding);
        self.watched.settle();
        let failure = match accepted {
            Ok(boot) if boot.hello.protocol_version != PROTOCOL_VERSION => StartFailure::Version {
                theirs: boot.hello.protocol_version,
            },
            Ok(boot) if boot.hello.token != self.token => {
                self.refuse("it presented a wrong token".into())
            }
            Ok(boot) => {
                let Reader {
                    index,
                    inbox,
                    pidfd,
                    ..
                } = self;
                // The worker is up: its pidfd is no longer needed (and handles are counted).
                drop(pidfd);
                let up = Msg::WorkerUp {
                    index,
                    hello: boot.hello,
                    link: Link::Ipc(boot.to_worker),
                };
                if inbox.send(up).is_ok() {
                    forward(index, boot.from_worker, inbox, None);
                }
                return;
            }
            // An empty connection comes from the exit watch when the worker ended; a peer that
            // hangs up while the worker still runs is someone else.
            Err(Refused::HungUp) => match ended(&self.pidfd) {
                Some(how) => StartFailure::Ended(how),
                None => self.refuse("it hung up without a word".into()),
            },
            Err(Refused::Junk(what)) => self.refuse(what),
        };
        let _ = self.inbox.send(Msg::WorkerFailed {
            index: self.index,
            failure,
        });
    }

    /// Refuses a peer that is not this worker. The one-shot server is spent, so the worker
    /// cannot connect any more: kill it (it will be started again) and wait for its end.
    fn refuse(&self, what: String) -> StartFailure {
        // SAFETY: pidfd_send_signal takes a pidfd, a signal and no info; it has no memory effects.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        while let Err(nix::errno::Errno::EINTR) = poll(&mut fds, PollTimeout::NONE) {}
        StartFailure::BadPeer(what)
    }
}

/// Accepts one connection and its bootstrap message. A peer that sends something else is an
/// error, even where ipc-channel panics on it: the panic is caught here, and not printed.
fn accept_quietly(server: IpcOneShotServer<Bootstrap>) -> Result<Bootstrap, Refused> {
    QUIET.with(|q| q.set(true));
    let accepted = std::panic::catch_unwind(AssertUnwindSafe(|| server.accept()));
    QUIET.with(|q| q.set(false));
    match accepted {
        Ok(Ok((_rx, boot))) => Ok(boot),
        Ok(Err(ipc_channel::IpcError::Disconnected)) => Err(Refused::HungUp),
        Ok(Err(e)) => Err(Refused::Junk(format!(
            "it sent something that is not a hello ({e})"
        ))),
        Err(_) => Err(Refused::Junk(
            "it sent bytes that are not troop's protocol".into(),
        )),
    }
}

/// Why a connection to the bootstrap socket brought no hello.
enum Refused {
    /// It closed without sending anything.
    HungUp,
    /// It sent something else.
    Junk(String),
}

thread_local! {
    /// Set while a reader thread expects that ipc-channel may panic on a bad peer.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Keeps the panics that [`accept_quietly`] catches off stderr; every other panic is reported as
/// before.
fn quiet_caught_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// How the process behind `pidfd` ended ("exited with status 127", "was killed by signal 9
/// (SIGKILL)"), without reaping it; `None` while it runs.
fn ended(pidfd: &OwnedFd) -> Option<String> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
    match waitid(Id::PIDFd(pidfd.as_fd()), flags) {
        Ok(WaitStatus::Exited(_, code)) => Some(format!("exited with status {code}")),
        Ok(WaitStatus::Signaled(_, sig, _)) => {
            Some(format!("was killed by signal {} ({sig})", sig as i32))
        }
        Ok(_) => None,
        // Already reaped (by the pool, which killed it).
        Err(_) => Some("ended".into()),
    }
}
