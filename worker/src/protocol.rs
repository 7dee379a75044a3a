//! The wire protocol between the supervisor and its workers: one versioned contract.
//!
//! Every message that crosses a transport is defined here and nowhere else. Both ends must be built
//! from the same definitions, so a connection opens with [`Hello`], whose first field is
//! [`PROTOCOL_VERSION`]; the supervisor refuses a worker that speaks another version.
//!
//! # Conversation
//!
//! ```text
//! worker                                   supervisor
//!   (over TCP: MAGIC, Challenge, Answer, Verdict first; see crate::handshake)
//!   Hello { protocol_version, pid, .. }  ─▶
//!                                        ◀─ Configure(WorkerConfig)        once
//!                                        ◀─ Run(vec![TaskSpec, ..])        a batch ("chunk")
//!   Started { id, pgid }                 ─▶   (commands only, before they run)
//!   Output { id, stream, bytes }         ─▶   (only with line buffering)
//!   Done(vec![TaskReport, ..])           ─▶   one or more per batch
//!                                        ◀─ Withdraw                       when the run stops
//!   Withdrawn(vec![id, ..])              ─▶   the tasks held but not started
//!                                        ◀─ Shutdown
//! ```
//!
//! A batch carries several tasks so that tiny tasks cost one message per chunk, not per task. The
//! supervisor bounds the number of tasks in flight per worker, so no channel grows without bound.
//! Reports are flushed whenever a task took long enough to matter, so slow tasks are reported at
//! once and tiny ones in bulk.
//!
//! The encoding is postcard (through ipc-channel). Field order is part of the contract: add fields
//! only together with a bump of [`PROTOCOL_VERSION`].

use serde::{Deserialize, Serialize};

use crate::kernel::Kernel;

/// Bumped on every change to any message in this module.
pub const PROTOCOL_VERSION: u32 = 7;

/// The first message from a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must equal [`PROTOCOL_VERSION`]; kept first so that a mismatch still decodes this far.
    pub protocol_version: u32,
    /// The worker's process id (the supervisor's own pid for a thread worker).
    pub pid: u32,
    /// The worker's index, from 0; shown as `w<index+1>`.
    pub index: u32,
    /// The token the supervisor handed to this worker; proves the connection is ours.
    pub token: String,
}

/// Settings that hold for every task of a run, sent once after [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// The shell that runs commands with shell syntax.
    pub shell: String,
    /// Stream complete lines of output as [`FromWorker::Output`] while a task runs.
    pub line_buffer: bool,
    /// Report a batch's finished tasks early once this many microseconds of work piled up.
    pub flush_after_us: u64,
    /// How a command that overran its timeout is stopped: signal, then wait, in order.
    pub term_seq: Vec<TermStep>,
    /// Where output beyond `spill_threshold` bytes is written (a private directory), if anywhere.
    pub spill_dir: Option<String>,
    /// A task's output is kept in memory up to this many bytes per stream.
    pub spill_threshold: u64,
    /// RLIMIT_AS for each command, in bytes.
    pub memory_limit: Option<u64>,
    /// Niceness for each command (and for the worker's own kernels).
    pub nice: Option<i32>,
    /// A command's process group is announced ([`FromWorker::Started`]) only once it has run
    /// this long; most short commands end first, which saves a message each.
    pub announce_after_ms: u64,
    /// Commands get SIGKILL when the thread that started them ends: for workers that live
    /// inside the supervisor, whose death no worker process would outlive to clean up after.
    pub die_with_parent: bool,
}

/// One step of a termination sequence: send `signal`, then wait up to `wait_ms` for the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermStep {
    pub signal: i32,
    pub wait_ms: u64,
}

/// GNU parallel's default `--term-seq`: TERM,200,TERM,100,TERM,50,KILL,25.
pub fn default_term_seq() -> Vec<TermStep> {
    let step = |signal, wait_ms| TermStep { signal, wait_ms };
    vec![
        step(libc::SIGTERM, 200),
        step(libc::SIGTERM, 100),
        step(libc::SIGTERM, 50),
        step(libc::SIGKILL, 25),
    ]
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            shell: "/bin/sh".into(),
            line_buffer: false,
            flush_after_us: 2_000,
            term_seq: default_term_seq(),
            spill_dir: None,
            spill_threshold: 1 << 20,
            memory_limit: None,
            nice: None,
            announce_after_ms: 2,
            die_with_parent: false,
        }
    }
}

/// What one task runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Job {
    /// Execute a program directly, with no shell: `argv[0]` is looked up in `PATH`, and a name
    /// that no `PATH` directory holds runs through the shell, which may know it as a function.
    /// Arguments are bytes, passed to the program unchanged (they need not be UTF-8).
    Exec(#[serde(with = "byte_strings")] Vec<Vec<u8>>),
    /// Run a script with the configured shell (`$shell -c script`); bytes, passed unchanged.
    Shell(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Run a built-in kernel inside the worker, with no exec.
    Kernel(Kernel),
    /// Call a function the worker's program registered under `name` ([`crate::registry`]; the
    /// Rust library's tasks), once per argument: `args` holds `count` postcard-encoded arguments
    /// back to back, so that one task carries a whole chunk of tiny calls.
    ///
    /// The report's `stdout` holds `count` postcard-encoded `Result<R, String>` back to back, in
    /// the order of the arguments: `Err` for a call that panicked (the panic's message). Its
    /// outcome is `Exited(0)` when every argument was read, and [`Outcome::BadKernelArgs`] when
    /// no function has that name or an argument does not decode (then `stdout` is empty).
    Call {
        name: String,
        #[serde(with = "serde_bytes")]
        args: Vec<u8>,
        count: u32,
    },
}

/// One task as sent to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// The task's sequence number (`{#}`), unique within a run.
    pub id: u64,
    pub job: Job,
    /// Stop the task after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// What the command reads (`--pipe`, `--pipepart`); none means `/dev/null`.
    pub input: Option<TaskInput>,
    /// Files that go with the task to a worker on another host, and come back.
    pub transfer: Option<Box<Transfer>>,
}

/// A file that travels with a task: to a remote worker before it runs (`--transferfile`,
/// `--basefile`), or back after (`--return`). A relative path is relative to the worker's
/// working directory (a remote login's home) and to troop's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCopy {
    pub path: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// The permission bits.
    pub mode: u32,
}

/// GNU parallel's `--transferfile`, `--return` and `--cleanup` for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Put in place before the task runs, and kept (`--basefile`: a worker's first task).
    pub base: Vec<FileCopy>,
    /// Put in place before the task runs.
    pub send: Vec<FileCopy>,
    /// Read back after it ended, into the report.
    pub fetch: Vec<String>,
    /// Remove both afterwards.
    pub cleanup: bool,
}

/// The data a command reads, and how it reaches the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInput {
    pub data: InputData,
    pub via: InputVia,
}

/// The bytes a command reads: in the message, or a range of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputData {
    /// The bytes themselves (a small block).
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// `head` (a header, possibly empty), then `len` bytes of the file at `path` from `offset`.
    /// The file is only read: a block spilled by the supervisor, or the `--pipepart` input.
    File {
        path: String,
        #[serde(with = "serde_bytes")]
        head: Vec<u8>,
        offset: u64,
        len: u64,
    },
    /// A named pipe the supervisor writes a stream of blocks into (`--roundrobin`): opened
    /// for reading and given to the command as it is.
    Stream { path: String },
}

/// How the data reaches the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InputVia {
    /// On its standard input.
    Stdin,
    /// In a file at this path, which the command names as `{}` (`--cat`); removed afterwards.
    File(String),
    /// Through a named pipe at this path, named as `{}` (`--fifo`); removed afterwards.
    Fifo(String),
}

/// Messages from the supervisor to a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToWorker {
    Configure(WorkerConfig),
    /// Run these tasks in order.
    Run(Vec<TaskSpec>),
    /// Finish the current batch, then exit.
    Shutdown,
    /// Give back every task held but not started (answered by [`FromWorker::Withdrawn`]).
    Withdraw,
}

/// Which output stream a chunk of bytes belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The command or kernel ran to its end with this exit status (0 is success).
    Exited(i32),
    /// The command was killed by this signal.
    Signaled(i32),
    /// The command could not be started: `code` is what a shell would report (127 not found,
    /// 126 not executable).
    SpawnFailed { code: i32, message: String },
    /// A kernel was given arguments it cannot use.
    BadKernelArgs(String),
    /// The worker that ran the task died; the signal that killed it, if any.
    WorkerLost { signal: Option<i32> },
    /// The task overran its timeout and was stopped; the signal that ended it, if one did (a
    /// kernel stops at its next checkpoint, with no signal).
    TimedOut { signal: Option<i32> },
    /// Output the task wrote could not be kept (its spill file could not be written, say on a
    /// full disk), so the task was failed, and stopped if it was still running: the signal that
    /// ended it, if one did, and what went wrong, naming the stream and the file.
    OutputLost {
        signal: Option<i32>,
        message: String,
    },
}

impl Outcome {
    /// True only for a clean exit with status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }

    /// The exit value recorded for this outcome, as GNU parallel's job log does: a task killed
    /// by a signal has 0 (its signal is in [`Outcome::signal`]); one that troop stopped or lost
    /// (timeout, dead worker, output that could not be kept) has -1.
    pub fn exit_value(&self) -> i32 {
        match self {
            Outcome::Exited(code) => *code,
            // GNU parallel logs a killed job as exit value 0 with its signal.
            Outcome::Signaled(_) => 0,
            Outcome::WorkerLost { .. } | Outcome::TimedOut { .. } | Outcome::OutputLost { .. } => {
                -1
            }
            Outcome::SpawnFailed { code, .. } => *code,
            Outcome::BadKernelArgs(_) => 2,
        }
    }

    /// The signal that ended the task, or 0.
    pub fn signal(&self) -> i32 {
        match self {
            Outcome::Signaled(sig) => *sig,
            Outcome::WorkerLost { signal }
            | Outcome::TimedOut { signal }
            | Outcome::OutputLost { signal, .. } => signal.unwrap_or(0),
            _ => 0,
        }
    }
}

/// Resource use of one task, as measured by the worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Wall-clock start, microseconds since the Unix epoch.
    pub start_unix_us: u64,
    /// Wall-clock run time in microseconds.
    pub wall_us: u64,
    /// User CPU time in microseconds.
    pub user_us: u64,
    /// System CPU time in microseconds.
    pub sys_us: u64,
    /// Peak resident set size in KiB (commands only; 0 for kernels).
    pub max_rss_kib: u64,
}

/// A task's captured output on one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Captured {
    /// Small output, carried in the message.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Output that outgrew memory, in a file of the spill directory. The receiver opens it,
    /// removes its name at once, and copies it out.
    File { path: String, len: u64 },
}

impl Captured {
    /// No output.
    pub const EMPTY: Captured = Captured::Bytes(Vec::new());

    /// The number of bytes captured.
    pub fn len(&self) -> u64 {
        match self {
            Captured::Bytes(b) => b.len() as u64,
            Captured::File { len, .. } => *len,
        }
    }

    /// True when nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Vec<u8>> for Captured {
    fn from(bytes: Vec<u8>) -> Self {
        Captured::Bytes(bytes)
    }
}

/// The result of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    pub id: u64,
    pub outcome: Outcome,
    /// Captured standard output (what was not already streamed).
    pub stdout: Captured,
    /// Captured standard error (what was not already streamed).
    pub stderr: Captured,
    pub usage: Usage,
    /// The files [`Transfer::fetch`] asked for, that were there.
    pub returned: Vec<FileCopy>,
}

/// Messages from a worker to the supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The first message of a forked worker (a spawned one sends its hello in [`Bootstrap`]).
    Hello(Hello),
    /// A task started. For a command, `pgid` is its process group, for signals and clean-up; a
    /// kernel has none (0), and reports its start only when it has a timeout.
    Started { id: u64, pgid: i32 },
    /// Complete lines a running task wrote (line-buffered mode only).
    Output {
        id: u64,
        stream: Stream,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Finished tasks, in the order they ran.
    Done(Vec<TaskReport>),
    /// Tasks given back after [`ToWorker::Withdraw`]: they were never started.
    Withdrawn(Vec<u64>),
}

/// What a spawned worker sends through the one-shot bootstrap socket: its hello, and the two
/// channel ends the supervisor keeps.
#[derive(Debug, Serialize, Deserialize)]
pub struct Bootstrap {
    pub hello: Hello,
    pub to_worker: ipc_channel::ipc::IpcSender<ToWorker>,
    pub from_worker: ipc_channel::ipc::IpcReceiver<FromWorker>,
}

/// A request to the fork server: fork a worker that talks over these channel ends.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForkRequest {
    pub index: u32,
    pub token: String,
    pub rx: ipc_channel::ipc::IpcReceiver<ToWorker>,
    pub tx: ipc_channel::ipc::IpcSender<FromWorker>,
}

/// A list of byte strings (an argv), each written as one run of bytes rather than byte by byte:
/// the wire format is postcard's for a sequence of byte sequences, at the cost of a copy.
mod byte_strings {
    use serde::de::{SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(items: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(items.len()))?;
        for item in items {
            seq.serialize_element(serde_bytes::Bytes::new(item))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = Vec<Vec<u8>>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of byte strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                // The length is the sender's word: reserve no more than a bounded amount up front.
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(item) = seq.next_element::<serde_bytes::ByteBuf>()? {
                    items.push(item.into_vec());
                }
                Ok(items)
            }
        }
        d.deserialize_seq(Items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_version_leads() {
        let hello = Hello {
            protocol_version: PROTOCOL_VERSION,
            pid: 42,
            index: 3,
            token: "abc".into(),
        };
        let bytes = postcard::to_stdvec(&hello).unwrap();
        // postcard writes a u32 as a varint: the version is the first byte for small versions.
        assert_eq!(bytes[0] as u32, PROTOCOL_VERSION);
        assert_eq!(postcard::from_bytes::<Hello>(&bytes).unwrap(), hello);
    }

    #[test]
    fn byte_strings_travel_whole_in_postcards_sequence_format() {
        let argv = vec![b"echo".to_vec(), vec![0xff, 0, b'x'], Vec::new()];
        let job = Job::Exec(argv.clone());
        let bytes = postcard::to_stdvec(&job).unwrap();
        // The same bytes as a plain sequence of sequences: variant 0, then the lists.
        let mut plain = postcard::to_stdvec(&0u32).unwrap();
        plain.extend(postcard::to_stdvec(&argv).unwrap());
        assert_eq!(bytes, plain);
        assert_eq!(postcard::from_bytes::<Job>(&bytes).unwrap(), job);
        let out = FromWorker::Output {
            id: 1,
            stream: Stream::Stdout,
            bytes: vec![1, 2, 255],
        };
        let wire = postcard::to_stdvec(&out).unwrap();
        assert_eq!(postcard::from_bytes::<FromWorker>(&wire).unwrap(), out);
    }

    #[test]
    fn a_call_carries_its_arguments_as_one_run_of_bytes() {
        let job = Job::Call {
            name: "square".into(),
            args: vec![1, 2, 3],
            count: 3,
        };
        let bytes = postcard::to_stdvec(&job).unwrap();
        // Variant 3, the name, the arguments (length, then the bytes), the count.
        assert_eq!(
            bytes,
            [3, 6, b's', b'q', b'u', b'a', b'r', b'e', 3, 1, 2, 3, 3]
        );
        assert_eq!(postcard::from_bytes::<Job>(&bytes).unwrap(), job);
    }

    #[test]
    fn a_noop_task_is_a_few_bytes() {
        let msg = ToWorker::Run(vec![TaskSpec {
            id: 7,
            job: Job::Kernel(Kernel::Noop),
            timeout_ms: None,
            input: None,
            transfer: None,
        }]);
        let bytes = postcard::to_stdvec(&msg).unwrap();
        // Variant, length, id, job, timeout, input and transfer: a byte each.
        assert!(bytes.len() <= 8, "{} bytes: {:?}", bytes.len(), bytes);
    }

    #[test]
    fn outcome_exit_values_follow_gnu_parallel() {
        assert_eq!(Outcome::Exited(3).exit_value(), 3);
        assert_eq!(Outcome::Signaled(9).exit_value(), 0);
        assert_eq!(Outcome::TimedOut { signal: Some(15) }.exit_value(), -1);
        assert_eq!(Outcome::Signaled(9).signal(), 9);
        let nf = Outcome::SpawnFailed {
            code: 127,
            message: "not found".into(),
        };
        assert_eq!(nf.exit_value(), 127);
        assert!(!nf.is_success());
        assert!(Outcome::Exited(0).is_success());
    }
}
