//! Workers on other hosts, through ssh (`-S/--sshlogin`).
//!
//! Each remote worker runs as `ssh [-p PORT] HOST -- exec troop --worker-stdio [w<N>]
//! --heartbeat E/L`: the ssh process is troop's child, in a process group of its own, and its
//! stdin and stdout carry the protocol in frames ([`troop_worker::stream`]). ssh authenticates
//! both ends and encrypts, so the worker's hello carries no token. A slot placed on `:` is an
//! ordinary local worker.
//!
//! The supervisor's side of each stream has three threads: the stream's reader, which turns
//! frames into inbox messages (the hello into [`Msg::WorkerUp`]); its heartbeat, which also
//! notices a worker that has said nothing for the heartbeat's limit (a host that died or left
//! the network) and kills its ssh, so the slot is lost and its tasks run elsewhere; and a
//! writer, which takes messages from the worker's [`Link`] so that a slow network never
//! blocks the supervisor's loop.
//!
//! The workers of one host share one connection: the first worker of a host starts alone, and
//! the others start once it said hello, riding its connection. With the stock `ssh`, troop
//! makes that first connection the ControlMaster, its socket in this run's private directory
//! (an `--ssh` command may set up its own); the master outlives its first session briefly
//! (`ControlPersist`), and is told to exit when the pool shuts down. A host whose first worker
//! never says hello fails the workers waiting for it, and the run goes on with the others.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use troop_worker::frame::FrameError;
use troop_worker::protocol::{FromWorker, ToWorker};
use troop_worker::stream::{self, Heartbeat, Peer};

use super::{PoolError, StartFailure, os_reason};
use crate::hosts::{Login, Placement, SshLogin};
use crate::inbox::{Link, Msg};

/// How remote workers are reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub placement: Placement,
    /// The ssh command (`--ssh`), as words.
    pub ssh: Vec<String>,
    /// The worker program on the remote hosts (`--remote-worker`).
    pub worker: String,
    /// Copy this program to the hosts first (`--transfer-worker`).
    pub transfer: bool,
    /// Variables set for the remote workers and their commands (`--env`).
    pub env: Vec<(String, String)>,
    pub beat: Heartbeat,
}

/// How far a host's connection got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostState {
    /// No worker started there yet.
    Idle,
    /// Its first worker is logging in; these slots wait for it.
    Connecting { first: u32, waiting: Vec<u32> },
    /// A worker said hello: others start at once.
    Up,
}

/// Starts remote workers.
#[derive(Debug)]
pub struct Remote {
    /// Per host, as the placement numbers them.
    states: Vec<HostState>,
    spec: RemoteSpec,
    /// Where the ControlMaster sockets go: this run's private directory.
    control_dir: Option<PathBuf>,
    /// The worker program as the remote shell names it.
    worker: String,
}

impl Remote {
    pub fn new(spec: RemoteSpec, run_dir: &Path) -> Remote {
        let stock_ssh =
            spec.ssh.len() == 1 && Path::new(&spec.ssh[0]).file_name() == Some("ssh".as_ref());
        // A socket path must fit a socket address: `ssh-` and 40 hex digits of %C after it.
        let fits = run_dir.as_os_str().len() + "/ssh-".len() + 40 < 104;
        let stock_ssh = stock_ssh && fits;
        let worker =
            shlex::try_quote(&spec.worker).map_or_else(|_| spec.worker.clone(), |q| q.into_owned());
        let mut remote = Remote {
            states: vec![HostState::Idle; spec.placement.hosts().len()],
            spec,
            control_dir: stock_ssh.then(|| run_dir.to_path_buf()),
            worker,
        };
        if remote.spec.transfer {
            remote.transfer_worker();
        }
        remote
    }

    /// Copies this program to every host that lacks this build, in parallel, and runs the
    /// workers from there. A host the copy fails on is named; its workers then fail to start,
    /// and the run goes on with the others.
    fn transfer_worker(&mut self) {
        let exe = match std::fs::read("/proc/self/exe") {
            Ok(exe) => exe,
            Err(e) => {
                troop_worker::process::eprint_line(&format!(
                    "troop: warning: --transfer-worker: cannot read this program: {e}"
                ));
                return;
            }
        };
        let dir = format!("$HOME/.cache/troop/{}", build_tag(&exe));
        let script = format!(
            "d=\"{dir}\"; test -x \"$d/troop\" && exit 0; mkdir -p \"$d\" && cat > \"$d/troop.$$\" && chmod 755 \"$d/troop.$$\" && mv \"$d/troop.$$\" \"$d/troop\""
        );
        let mut hosts: Vec<&SshLogin> = Vec::new();
        for host in self.spec.placement.hosts() {
            if host.login != Login::Local && !hosts.iter().any(|h| h.name == host.name) {
                hosts.push(host);
            }
        }
        std::thread::scope(|scope| {
            for host in hosts {
                let Login::Ssh { target, port } = &host.login else {
                    continue;
                };
                let mut cmd = self.ssh_command(target, *port);
                cmd.arg(&script);
                let exe = &exe;
                scope.spawn(move || {
                    if let Err(why) = copy_to(cmd, exe) {
                        troop_worker::process::eprint_line(&format!(
                            "troop: warning: --transfer-worker: cannot copy troop to {}: {why}",
                            host.name
                        ));
                    }
                });
            }
        });
        self.worker = format!("\"{dir}/troop\"");
    }

    /// The host of slot `index`.
    pub fn host(&self, index: u32) -> &SshLogin {
        self.spec.placement.host(index)
    }

    /// The ssh command up to the host and `--`: the remote command follows.
    fn ssh_command(&self, target: &str, port: Option<u16>) -> Command {
        let mut cmd = Command::new(&self.spec.ssh[0]);
        cmd.args(&self.spec.ssh[1..]);
        if let Some(dir) = &self.control_dir {
            cmd.arg("-o")
                .arg("ControlMaster=auto")
                .arg("-o")
                .arg(format!("ControlPath={}/ssh-%C", dir.display()))
                .arg("-o")
                .arg("ControlPersist=30")
                .arg("-o")
                .arg("BatchMode=yes");
        }
        if let Some(port) = port {
            cmd.arg("-p").arg(port.to_string());
        }
        cmd.arg(target).arg("--");
        cmd
    }

    /// The command that starts worker `index` on `target`.
    fn command(&self, index: u32, target: &str, port: Option<u16>) -> Command {
        let mut cmd = self.ssh_command(target, port);
        let beat = format!(
            "{}/{}",
            self.spec.beat.every.as_millis(),
            self.spec.beat.limit.as_millis()
        );
        let mut env = String::new();
        for (name, value) in &self.spec.env {
            let assignment = format!("{name}={value}");
            if let Ok(quoted) = shlex::try_quote(&assignment) {
                env.push_str(&quoted);
                env.push(' ');
            }
        }
        let env = if env.is_empty() {
            env
        } else {
            format!("env {env}")
        };
        cmd.arg(format!(
            "exec {env}{} {} {} --heartbeat {beat}",
            self.worker,
            troop_worker::process::STDIO_FLAG,
            troop_worker::process::worker_arg(index)
        ));
        cmd
    }

    /// Starts worker `index` on its host, or, while the host's first worker is still logging
    /// in, has it wait (`None`). Its hello will arrive in the inbox.
    pub fn start(&mut self, index: u32, inbox: Sender<Msg>) -> Result<Option<Child>, PoolError> {
        let host = self.spec.placement.host_index(index);
        match &mut self.states[host] {
            HostState::Connecting { waiting, .. } => {
                waiting.push(index);
                return Ok(None);
            }
            HostState::Idle => {
                self.states[host] = HostState::Connecting {
                    first: index,
                    waiting: Vec::new(),
                }
            }
            HostState::Up => {}
        }
        self.spawn(index, inbox).map(Some)
    }

    /// Worker `index` said hello: its host is up. Returns the slots that waited for it.
    pub fn up(&mut self, index: u32) -> Vec<u32> {
        let host = self.spec.placement.host_index(index);
        match std::mem::replace(&mut self.states[host], HostState::Up) {
            HostState::Connecting { waiting, .. } => waiting,
            _ => Vec::new(),
        }
    }

    /// Worker `index` is given up on. If it was its host's first, still logging in, the host
    /// is taken for unreachable: returns the slots that waited for it, which fail too.
    pub fn ended(&mut self, index: u32) -> Vec<u32> {
        let host = self.spec.placement.host_index(index);
        match &self.states[host] {
            HostState::Connecting { first, .. } if *first == index => {
                match std::mem::replace(&mut self.states[host], HostState::Idle) {
                    HostState::Connecting { waiting, .. } => waiting,
                    _ => Vec::new(),
                }
            }
            HostState::Connecting { .. } => {
                if let HostState::Connecting { waiting, .. } = &mut self.states[host] {
                    waiting.retain(|&w| w != index);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Tells the ControlMasters troop made to exit (best effort, quietly).
    pub fn close_masters(&self) {
        let Some(dir) = &self.control_dir else {
            return;
        };
        for (host, state) in self.spec.placement.hosts().iter().zip(&self.states) {
            let Login::Ssh { target, port } = &host.login else {
                continue;
            };
            if *state == HostState::Idle {
                continue;
            }
            let mut cmd = Command::new(&self.spec.ssh[0]);
            cmd.args(["-o", &format!("ControlPath={}/ssh-%C", dir.display())]);
            if let Some(port) = port {
                cmd.arg("-p").arg(port.to_string());
            }
            let _ = cmd
                .args(["-O", "exit", target])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// Starts worker `index` on its host now. Returns the ssh process.
    pub fn spawn(&mut self, index: u32, inbox: Sender<Msg>) -> Result<Child, PoolError> {
        let host = self.spec.placement.host(index).clone();
        let Login::Ssh { target, port } = &host.login else {
            unreachable!("local slots start through the local launcher")
        };
        let err = |reason: String| PoolError::Start {
            worker: index + 1,
            reason: format!("on {}: {reason}", host.name),
        };
        let mut child = self
            .command(index, target, *port)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| err(os_reason(&format!("cannot run {}", self.spec.ssh[0]), &e)))?;
        let (Some(to_ssh), Some(from_ssh)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both were piped")
        };
        let carrier = Pid::from_raw(child.id() as i32);
        match attach(
            index,
            &host.name,
            from_ssh,
            to_ssh,
            self.spec.beat,
            inbox,
            carrier,
            None,
        ) {
            Ok(()) => Ok(child),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err(e))
            }
        }
    }
}

/// Carries worker `index`'s conversation over a stream: messages from `reader` go to the inbox
/// (its hello as [`Msg::WorkerUp`], unless `greeted` holds the hello read already, which is
/// announced at once), and what the worker's link is given is written to `writer` by a thread
/// of its own. `carrier` is the local process (ssh, srun) whose process group is killed when
/// the worker goes silent.
#[allow(clippy::too_many_arguments)]
pub(super) fn attach<R, W>(
    index: u32,
    host: &str,
    reader: R,
    writer: W,
    beat: Heartbeat,
    inbox: Sender<Msg>,
    carrier: Pid,
    greeted: Option<troop_worker::protocol::Hello>,
) -> Result<(), String>
where
    R: std::io::Read + Send + 'static,
    W: std::io::Write + Send + 'static,
{
    let (tx, rx) = crossbeam_channel::unbounded::<ToWorker>();
    let link = Link::Thread(tx);
    let (pending, up) = match greeted {
        Some(hello) => (None, Some((hello, link))),
        None => (Some(link), None),
    };
    let peer = HostPeer {
        index,
        host: host.to_string(),
        inbox: inbox.clone(),
        link: Arc::new(Mutex::new(pending)),
        ssh: carrier,
        beat,
    };
    let opened = if up.is_some() {
        stream::open_greeted::<_, _, FromWorker, ToWorker, _>(reader, writer, beat, peer)
    } else {
        stream::open::<_, _, FromWorker, ToWorker, _>(reader, writer, beat, peer, |_| {})
    };
    let mut sender = opened.map_err(|e| format!("cannot open the stream: {e}"))?;
    std::thread::Builder::new()
        .name(format!("troop-s{}", index + 1))
        .spawn(move || {
            for msg in rx {
                if sender.send(&msg).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| os_reason("cannot start a writer thread", &e))?;
    if let Some((hello, link)) = up {
        let _ = inbox.send(Msg::WorkerUp { index, hello, link });
    }
    Ok(())
}

/// The supervisor's side of one remote worker's stream.
#[derive(Debug, Clone)]
struct HostPeer {
    index: u32,
    host: String,
    inbox: Sender<Msg>,
    /// The worker's link, until its hello hands it over.
    link: Arc<Mutex<Option<Link>>>,
    ssh: Pid,
    beat: Heartbeat,
}

impl HostPeer {
    /// The worker is gone: lost if it had said hello, else it failed to start.
    fn gone(&self, how: String) {
        let pending = self.link.lock().unwrap_or_else(|e| e.into_inner()).take();
        let msg = match pending {
            Some(_) => Msg::WorkerFailed {
                index: self.index,
                failure: StartFailure::Ended(how),
            },
            None => Msg::WorkerGone(self.index),
        };
        let _ = self.inbox.send(msg);
    }
}

impl Peer<FromWorker> for HostPeer {
    fn message(&mut self, msg: FromWorker) -> bool {
        let msg = match msg {
            FromWorker::Hello(hello) => {
                match self.link.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    Some(link) => Msg::WorkerUp {
                        index: self.index,
                        hello,
                        link,
                    },
                    None => return true,
                }
            }
            msg => Msg::from_worker(self.index, msg),
        };
        self.inbox.send(msg).is_ok()
    }

    fn ended(&mut self, why: FrameError) {
        let how = match why {
            FrameError::Closed => format!("ended on {}", self.host),
            why => format!("broke its stream on {} ({why})", self.host),
        };
        self.gone(how);
    }

    fn silent(&self) {
        troop_worker::process::eprint_line(&format!(
            "troop: warning: worker w{} on {} said nothing for {:.1} s: taking it for lost",
            self.index + 1,
            self.host,
            self.beat.limit.as_secs_f64()
        ));
        // ssh (or srun) leads a process group of its own: whatever it started goes with it.
        if self.ssh.as_raw() > 1 {
            let _ = killpg(self.ssh, Signal::SIGKILL);
        }
        self.gone(format!("went silent on {}", self.host));
    }
}

/// Names this build: its version and the start of the program's SHA-256.
fn build_tag(exe: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(exe);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", env!("CARGO_PKG_VERSION"))
}

/// Runs the copy command with the program on its stdin. A host that has the build already
/// reads nothing: only the command's status counts.
fn copy_to(mut cmd: Command, exe: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(exe);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the copy ended with {status}"))
    }
}
