//! `troop-worker`: everything that runs on the worker side of troop.
//!
//! - [`protocol`]: the versioned messages between supervisor and worker.
//! - [`transport`]: how those messages travel (ipc-channel, in-process channels, streams).
//! - [`frame`]: messages as length-prefixed frames on a byte stream, for remote workers.
//! - [`stream`]: a conversation over a byte stream with a heartbeat each way; the remote
//!   worker's transport.
//! - [`handshake`]: how a worker that connects back over TCP and its supervisor prove that they
//!   belong to the same run.
//! - [`secret`]: the run's secret, in a worker's environment, and the proofs made with it.
//! - [`connect`]: the worker that connects back to its supervisor over TCP (Slurm's workers).
//! - [`runtime`]: the serve loop, generic over the transport; thread mode runs it on threads.
//! - [`exec`]: one command in its own process group, with captured output and usage.
//! - [`task_input`]: what a command reads (`--pipe` blocks), on stdin, in a file or a fifo.
//! - [`kernel`]: the built-in `@name` workloads.
//! - [`registry`]: the task functions a program registers by name (the Rust library's tasks).
//! - [`gil`]: a global interpreter lock, for the gil mode.
//! - [`event_loop`]: the async mode: every slot on one thread's event loop.
//! - [`process`]: the worker as an OS process: bootstrap, name, death with the supervisor.
//! - [`title`]: the process title `ps` and `top -c` show, rewritten as a worker works.
//! - [`transfer`]: files that travel with a task to a remote worker and back.

pub mod connect;
pub mod event_loop;
pub mod exec;
pub mod frame;
pub mod gil;
pub mod handshake;
pub mod kernel;
pub mod process;
pub mod protocol;
pub mod registry;
pub mod runtime;
pub mod secret;
pub mod stream;
pub mod task_input;
pub mod title;
pub mod transfer;
pub mod transport;
