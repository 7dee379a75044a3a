//! The chunked map engine behind [`Pool::map`], [`Pool::map_unordered`] and [`Pool::imap`]:
//! inputs are read lazily, encoded a chunk at a time, and at most a window of chunks is out at
//! once, so memory stays bounded however long the input is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::chunk::{Chunk, Reply, Sink};
use super::{LibraryError, Pool, TaskFn};

/// Decodes `count` results of calls to `name`, in order. A result that does not decode fails
/// it and every one after it.
pub(crate) fn decode<R: DeserializeOwned>(
    name: &'static str,
    mut bytes: &[u8],
    count: u32,
) -> Vec<Result<R, LibraryError>> {
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match troop_worker::registry::take::<Result<R, String>>(bytes) {
            Ok((result, rest)) => {
                bytes = rest;
                out.push(result.map_err(|message| LibraryError::Task {
                    name: name.into(),
                    message,
                }));
            }
            Err(e) => {
                let e = LibraryError::Codec {
                    name: name.into(),
                    message: format!("cannot decode a result: {e}"),
                };
                while out.len() < count as usize {
                    out.push(Err(e.clone()));
                }
                break;
            }
        }
    }
    out
}

/// Appends `arg`, encoded, to `args`.
pub(crate) fn encode<A: Serialize>(
    name: &'static str,
    args: &mut Vec<u8>,
    arg: &A,
) -> Result<(), LibraryError> {
    troop_worker::registry::write(args, arg).map_err(|e| LibraryError::Codec {
        name: name.into(),
        message: format!("cannot encode an argument: {e}"),
    })
}

/// The results of a map as they come: in input order ([`Pool::imap`]) or in completion order.
/// Dropping it early drops the chunks not yet sent to a worker.
pub struct Imap<'p, A, R, I> {
    pool: &'p Pool,
    task: TaskFn<A, R>,
    input: I,
    input_done: bool,
    chunk: usize,
    window: usize,
    ordered: bool,
    /// Chunks made, and chunks whose results were taken.
    sent: usize,
    received: usize,
    counts: HashMap<usize, u32>,
    /// Replies that came early (or never left: an argument that did not encode).
    parked: HashMap<usize, Reply>,
    current: VecDeque<Result<R, LibraryError>>,
    tx: Sender<(usize, Reply)>,
    rx: Receiver<(usize, Reply)>,
    live: Arc<AtomicBool>,
}

impl<A, R, I> std::fmt::Debug for Imap<'_, A, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("task", &self.task)
            .field("chunk", &self.chunk)
            .field("sent", &self.sent)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl<'p, A, R, I> Imap<'p, A, R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    pub(crate) fn new(
        pool: &'p Pool,
        task: TaskFn<A, R>,
        input: I,
        chunk: usize,
        window: usize,
        ordered: bool,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Imap {
            pool,
            task,
            input,
            input_done: false,
            chunk: chunk.max(1),
            window: window.max(1),
            ordered,
            sent: 0,
            received: 0,
            counts: HashMap::new(),
            parked: HashMap::new(),
            current: VecDeque::new(),
            tx,
            rx,
            live: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Sends chunks until the window is full or the input ends.
    fn top_up(&mut self) {
        let name = self.task.name();
        while !self.input_done && self.sent - self.received < self.window {
            let mut args = Vec::new();
            let mut count = 0u32;
            let mut failed = None;
            for item in (&mut self.input).take(self.chunk) {
                count += 1;
                if failed.is_none() {
                    failed = encode(name, &mut args, &item).err();
                }
            }
            if (count as usize) < self.chunk {
                self.input_done = true;
            }
            if count == 0 {
                break;
            }
            let index = self.sent;
            self.sent += 1;
            self.counts.insert(index, count);
            if let Some(e) = failed {
                self.parked.insert(index, Err(e));
                continue;
            }
            let sink = Sink::Stream {
                index,
                tx: self.tx.clone(),
                live: self.live.clone(),
            };
            self.pool.request(Chunk {
                name,
                args,
                count,
                sink,
            });
        }
    }

    /// The next chunk's reply, as the order asks.
    fn next_reply(&mut self) -> Option<(usize, Reply)> {
        if self.ordered {
            loop {
                if let Some(reply) = self.parked.remove(&self.received) {
                    return Some((self.received, reply));
                }
                let (index, reply) = self.rx.recv().ok()?;
                self.parked.insert(index, reply);
            }
        }
        if let Some(&index) = self.parked.keys().next() {
            return self.parked.remove_entry(&index);
        }
        self.rx.recv().ok()
    }
}

impl<A, R, I> Iterator for Imap<'_, A, R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    type Item = Result<R, LibraryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(result) = self.current.pop_front() {
                return Some(result);
            }
            self.top_up();
            if self.received == self.sent {
                return None;
            }
            let (index, reply) = self.next_reply()?;
            self.received += 1;
            let count = self.counts.remove(&index).unwrap_or(1);
            match reply {
                Ok(bytes) => self.current.extend(decode(self.task.name(), &bytes, count)),
                Err(e) => {
                    for _ in 0..count {
                        self.current.push_back(Err(e.clone()));
                    }
                }
            }
        }
    }
}

impl<A, R, I> Drop for Imap<'_, A, R, I> {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Relaxed);
    }
}
