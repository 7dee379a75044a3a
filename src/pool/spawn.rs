//! Starting a worker by executing the `troop-worker` binary.
//!
//! Each worker gets a fresh one-shot ipc-channel server. The server's name, the run's token and
//! the worker's index travel in the environment, never on the command line, and the worker's argv
//! reads `troop-worker [w<N>]` so `ps` and `top -c` show which worker is which. One thread per
//! worker accepts the connection and then forwards the worker's messages to the inbox.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crossbeam_channel::Sender;
use ipc_channel::ipc::IpcOneShotServer;
use troop_worker::process::{ENV_INDEX, ENV_PARENT, ENV_SERVER, ENV_TOKEN};
use troop_worker::protocol::Bootstrap;

use super::{PoolError, forward};
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

/// Starts workers from the `troop-worker` executable.
#[derive(Debug)]
pub struct Spawner {
    exe: PathBuf,
}

impl Spawner {
    /// Finds `troop-worker`: `exe` if given, else next to the running program.
    pub fn new(exe: Option<PathBuf>) -> Result<Self, PoolError> {
        let exe = match exe {
            Some(p) => p,
            None if std::env::var_os(ENV_WORKER_EXE).is_some() => {
                PathBuf::from(std::env::var_os(ENV_WORKER_EXE).unwrap_or_default())
            }
            None => {
                let me = std::env::current_exe().map_err(|e| PoolError::WorkerExeMissing {
                    path: "troop-worker".into(),
                    reason: e.to_string(),
                })?;
                me.with_file_name("troop-worker")
            }
        };
        check_socket_dir()?;
        if !exe.is_file() {
            return Err(PoolError::WorkerExeMissing {
                path: exe.display().to_string(),
                reason: "no such file".into(),
            });
        }
        Ok(Spawner { exe })
    }

    /// Spawns worker `index`; its hello arrives in `inbox`.
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
            .map_err(|e| err(format!("cannot create the bootstrap socket: {e}")))?;
        let child = Command::new(&self.exe)
            .arg0("troop-worker")
            .arg(format!("[w{}]", index + 1))
            .env(ENV_SERVER, &name)
            .env(ENV_TOKEN, token)
            .env(ENV_INDEX, index.to_string())
            .env(ENV_PARENT, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| err(format!("cannot execute {}: {e}", self.exe.display())))?;
        std::thread::Builder::new()
            .name(format!("troop-r{}", index + 1))
            .spawn(move || match server.accept() {
                Ok((_bootstrap_rx, boot)) => {
                    let up = Msg::WorkerUp {
                        index,
                        hello: boot.hello,
                        link: Link::Ipc(boot.to_worker),
                    };
                    if inbox.send(up).is_ok() {
                        forward(index, boot.from_worker, inbox, None);
                    }
                }
                Err(e) => {
                    let _ = inbox.send(Msg::WorkerFailed {
                        index,
                        error: format!("the worker did not complete its hello: {e}"),
                    });
                }
            })
            .map_err(|e| err(format!("cannot start a reader thread: {e}")))?;
        Ok(child)
    }
}
