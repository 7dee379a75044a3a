//! The supervisor's inbox: every event its one loop reacts to, from every source.
//!
//! Worker replies (through one reader thread per worker process, or straight from thread
//! workers), worker births and deaths, and signals all arrive here, in the order they happened.

use ipc_channel::ipc::IpcSender;
use troop_worker::protocol::{FromWorker, Hello, ToWorker};

/// The supervisor's end of the channel to one worker.
#[derive(Debug)]
pub enum Link {
    /// A worker process, over ipc-channel.
    Ipc(IpcSender<ToWorker>),
    /// A worker thread, over an in-process channel.
    Thread(crossbeam_channel::Sender<ToWorker>),
    /// A slot of the async mode's event loop.
    Async(tokio::sync::mpsc::UnboundedSender<ToWorker>),
}

impl Link {
    /// Sends a message; false when the worker is gone.
    pub fn send(&self, msg: ToWorker) -> bool {
        match self {
            Link::Ipc(tx) => tx.send(msg).is_ok(),
            Link::Thread(tx) => tx.send(msg).is_ok(),
            Link::Async(tx) => tx.send(msg).is_ok(),
        }
    }
}

/// One event for the supervisor.
#[derive(Debug)]
pub enum Msg {
    /// A worker started and said hello.
    WorkerUp {
        index: u32,
        hello: Hello,
        link: Link,
    },
    /// A worker could not start.
    WorkerFailed {
        index: u32,
        failure: crate::pool::StartFailure,
    },
    /// A worker sent a message.
    Worker(u32, FromWorker),
    /// A worker's channel closed: it exited or died.
    WorkerGone(u32),
    /// A signal arrived.
    Signal(i32),
    /// An observer (the dashboard) asks the run to do something.
    Control(crate::observe::Control),
}

impl Msg {
    /// Wraps a reply from worker `index`; the shape a thread worker's transport needs. Lines
    /// wait here, on the sender's side, while too many are on their way
    /// ([`crate::output::LINES_IN_FLIGHT`]).
    pub fn from_worker(index: u32, msg: FromWorker) -> Msg {
        if let FromWorker::Output { bytes, .. } = &msg {
            crate::output::LINES_IN_FLIGHT.reserve(bytes.len() as u64);
        }
        Msg::Worker(index, msg)
    }

    /// Says worker `index` ended; the shape the async event loop needs.
    pub fn gone(index: u32) -> Msg {
        Msg::WorkerGone(index)
    }
}
