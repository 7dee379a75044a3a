//! Workers as Slurm job steps (`--launcher slurm`).
//!
//! Each worker is one `srun` (troop's child, in a process group of its own) running
//! `troop --worker-connect HOST:PORT [w<N>]` on a node: inside the current allocation when
//! `SLURM_JOB_ID` is set (as a step with `--exact` resources), otherwise as a job of its own,
//! shaped by `--slurm-args`. The worker connects back to the [`Listener`] troop opened, proves
//! with a challenge-response that it holds the run's secret (which travels in srun's
//! environment, never on a command line), and says hello; from there the conversation is the
//! one every remote worker has (`remote::attach`). A connection that fails the
//! handshake, or claims a slot troop is not starting, is dropped and counted; an `srun` that
//! ends before its worker connected fails that worker's start, with what srun said on stderr.

use std::collections::HashSet;
use std::net::{Shutdown, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crossbeam_channel::Sender;
use nix::unistd::Pid;
use troop_worker::stream::Heartbeat;

use super::listen::{Accepted, ENV_SECRET, Listener};
use super::{PoolError, StartFailure, os_reason};
use crate::inbox::Msg;

/// How Slurm workers are started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmSpec {
    /// The srun program (`srun`, or a path).
    pub srun: String,
    /// Extra srun options (`--slurm-args`), as words.
    pub args: Vec<String>,
    pub cpus_per_task: Option<u32>,
    /// srun's `--mem`, as given.
    pub mem: Option<String>,
    /// The troop program on the nodes (`--remote-worker`).
    pub worker: String,
    /// Where to listen (`--listen`): `HOST` or `HOST:PORT`; this host's name when not given.
    pub listen: Option<String>,
    pub beat: Heartbeat,
}

/// What the accept callback and the pool share.
#[derive(Debug, Default)]
struct Slots {
    /// Slots started and not yet connected.
    pending: HashSet<u32>,
    /// The srun of each slot started.
    sruns: std::collections::HashMap<u32, Pid>,
    /// Each connected slot's connection, to close when its worker is killed, and its node.
    connected: Vec<Option<(TcpStream, String)>>,
}

/// Starts workers through srun, and takes their connections.
#[derive(Debug)]
pub struct Slurm {
    spec: SlurmSpec,
    listener: Listener,
    /// `HOST:PORT`, as the workers are told to connect.
    advertised: String,
    slots: Arc<Mutex<Slots>>,
    inbox: Sender<Msg>,
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slurm {
    /// Opens the listener and starts taking connections.
    pub fn new(spec: SlurmSpec, inbox: Sender<Msg>) -> Result<Slurm, PoolError> {
        let (host, port) = match spec.listen.as_deref() {
            Some(listen) => match listen.rsplit_once(':') {
                Some((host, port)) if port.parse::<u16>().is_ok() => (host.to_string(), port),
                _ => (listen.to_string(), "0"),
            },
            None => (local_host_name(), "0"),
        };
        let start_err = |reason: String| PoolError::NoWorker { reason };
        let mut listener =
            Listener::bind(format!("0.0.0.0:{port}")).map_err(|e| start_err(e.to_string()))?;
        let advertised = format!("{host}:{}", listener.local_addr().port());
        let slots = Arc::new(Mutex::new(Slots::default()));
        let (beat, s, tx) = (spec.beat, slots.clone(), inbox.clone());
        listener
            .start(move |accepted| take(accepted, beat, &s, &tx))
            .map_err(|e| start_err(e.to_string()))?;
        listener.on_refused(|refusal| {
            troop_worker::process::eprint_line(&format!(
                "troop: warning: refused a worker connection from {}: {}",
                refusal.peer, refusal.reason
            ));
        });
        Ok(Slurm {
            spec,
            listener,
            advertised,
            slots,
            inbox,
        })
    }

    /// Starts worker `index` as a job step; its hello arrives in the inbox once it connected.
    pub fn start(&mut self, index: u32) -> Result<Child, PoolError> {
        let err = |reason: String| PoolError::Start {
            worker: index + 1,
            reason,
        };
        let mut cmd = Command::new(&self.spec.srun);
        cmd.args(["--nodes=1", "--ntasks=1", "--quiet"]);
        if std::env::var_os("SLURM_JOB_ID").is_some() {
            // A step of the allocation this run is in, with only the resources it asks for.
            cmd.arg("--exact");
        }
        if let Some(n) = self.spec.cpus_per_task {
            cmd.arg(format!("--cpus-per-task={n}"));
        }
        if let Some(mem) = &self.spec.mem {
            cmd.arg(format!("--mem={mem}"));
        }
        cmd.args(&self.spec.args)
            .arg(format!("--job-name=troop-w{}", index + 1))
            .arg(&self.spec.worker)
            .arg(troop_worker::process::CONNECT_FLAG)
            .arg(&self.advertised)
            .arg(troop_worker::process::worker_arg(index))
            .arg("--heartbeat")
            .arg(format!(
                "{}/{}",
                self.spec.beat.every.as_millis(),
                self.spec.beat.limit.as_millis()
            ))
            .env(ENV_SECRET, self.listener.secret_hex())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        lock(&self.slots).pending.insert(index);
        let child = cmd.spawn().map_err(|e| {
            lock(&self.slots).pending.remove(&index);
            err(os_reason(&format!("cannot run {}", self.spec.srun), &e))
        })?;
        lock(&self.slots)
            .sruns
            .insert(index, Pid::from_raw(child.id() as i32));
        self.watch(index, child.id());
        Ok(child)
    }

    /// Waits, on a thread, for srun `pid` to end (without reaping it: the pool does); if its
    /// worker never connected, that worker failed to start.
    fn watch(&self, index: u32, pid: u32) {
        let (slots, inbox) = (self.slots.clone(), self.inbox.clone());
        let _ = std::thread::Builder::new()
            .name(format!("troop-srun{}", index + 1))
            .spawn(move || {
                use nix::sys::wait::{Id, WaitPidFlag, waitid};
                let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
                let _ = waitid(Id::Pid(Pid::from_raw(pid as i32)), flags);
                if lock(&slots).pending.remove(&index) {
                    let _ = inbox.send(Msg::WorkerFailed {
                        index,
                        failure: StartFailure::Ended("ended with its srun".into()),
                    });
                }
            });
    }

    /// Closes worker `index`'s connection (its srun is being killed): the worker sees the end
    /// of the stream and stops.
    pub fn disconnect(&self, index: u32) {
        let mut slots = lock(&self.slots);
        slots.pending.remove(&index);
        if let Some(Some((socket, _))) = slots.connected.get_mut(index as usize).map(Option::take) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// The node worker `index` connected from, for the job log's Host column.
    pub fn host(&self, index: u32) -> String {
        lock(&self.slots)
            .connected
            .get(index as usize)
            .and_then(|c| c.as_ref().map(|(_, node)| node.clone()))
            .unwrap_or_else(|| "slurm".into())
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.listener.refused()
    }
}

/// A worker connected and proved itself: if troop is starting its slot, its conversation
/// begins; otherwise it is dropped.
fn take(a: Accepted, beat: Heartbeat, slots: &Mutex<Slots>, inbox: &Sender<Msg>) {
    let index = a.hello.index;
    let node = a.peer.ip().to_string();
    let carrier = {
        let mut slots = lock(slots);
        if !slots.pending.remove(&index) {
            drop(slots);
            troop_worker::process::eprint_line(&format!(
                "troop: warning: refused a worker connection from {}: it claims slot w{}, which is not starting",
                a.peer,
                index + 1
            ));
            let _ = a.reader.shutdown(Shutdown::Both);
            return;
        }
        if slots.connected.len() <= index as usize {
            slots.connected.resize_with(index as usize + 1, || None);
        }
        if let Ok(socket) = a.reader.try_clone() {
            slots.connected[index as usize] = Some((socket, node.clone()));
        }
        slots.sruns.get(&index).copied()
    };
    // A silent worker's srun is killed, and with it the job step.
    let Some(carrier) = carrier else {
        return;
    };
    let hello = a.hello.clone();
    if let Err(why) = super::remote::attach(
        index,
        &node,
        a.reader,
        a.writer,
        beat,
        inbox.clone(),
        carrier,
        Some(hello),
    ) {
        let _ = inbox.send(Msg::WorkerFailed {
            index,
            failure: StartFailure::Ended(why),
        });
    }
}

/// This host's name, as the nodes should reach it.
fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
