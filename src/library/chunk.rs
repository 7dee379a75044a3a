//! What travels from a pool to its driver: [`Chunk`]s of calls, each with the [`Sink`] its
//! reply goes to, and the [`Request`]s that carry them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;

use super::LibraryError;
use super::handle::Slot;

/// What a chunk came back as: its encoded results, or why it has none.
pub type Reply = Result<Vec<u8>, LibraryError>;

/// Calls to one function, to run as one task.
#[derive(Debug)]
pub struct Chunk {
    pub name: &'static str,
    pub args: Vec<u8>,
    pub count: u32,
    pub sink: Sink,
}

/// Where a chunk's reply goes.
#[derive(Debug)]
pub enum Sink {
    /// Chunk `index` of a map; nobody wants it once `live` is false.
    Stream {
        index: usize,
        tx: Sender<(usize, Reply)>,
        live: Arc<AtomicBool>,
    },
    /// A submitted task's handle.
    Handle(Arc<Slot>),
}

impl Sink {
    /// True when the chunk is still wanted; a handle's task is marked running.
    pub(super) fn start(&self) -> bool {
        match self {
            Sink::Stream { live, .. } => live.load(Ordering::Relaxed),
            Sink::Handle(slot) => slot.start(),
        }
    }

    /// Delivers the reply.
    pub fn deliver(self, reply: Reply) {
        match self {
            Sink::Stream { index, tx, .. } => {
                let _ = tx.send((index, reply));
            }
            Sink::Handle(slot) => slot.finish(reply),
        }
    }
}

/// A request from the pool to its driver.
#[derive(Debug)]
pub enum Request {
    Run(Chunk),
    /// Stop: after the work already asked for (`graceful`), or now, dropping what waits and
    /// killing worker processes that still run tasks.
    Stop {
        graceful: bool,
    },
}
