//! The driver: one thread that owns a library pool's workers, feeds them chunks and hands the
//! results back.
//!
//! The driver starts the workers itself and lives as long as they do: a worker process dies
//! with the thread that started it (`PR_SET_PDEATHSIG`), so no caller's thread may start one.
//! It waits on two channels, the pool's requests and the workers' messages ([`Msg`], the same
//! inbox the CLI's supervisor reads, from the same [`crate::pool`]). Each worker holds at most
//! `prefetch` chunks; the rest wait in the driver's queue, where a cancelled task is dropped
//! before it is ever sent. A worker that dies fails the chunks it held and is started again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, select};
use troop_worker::protocol::{Captured, FromWorker, Job, Outcome, TaskSpec, ToWorker};

use super::chunk::{Chunk, Request};
use super::{LibraryError, Mode};
use crate::inbox::{Link, Msg};
use crate::pool::Pool as Workers;

/// A worker slot that fails to start this many times in a row is given up on.
const START_ATTEMPTS: u32 = 3;

/// The driver's state.
pub struct Driver {
    pub workers: Workers,
    pub inbox: Receiver<Msg>,
    pub requests: Receiver<Request>,
    pub mode: Mode,
    pub prefetch: usize,
    /// The pids of the workers that are up, shared with the pool.
    pub pids: Arc<Mutex<Vec<u32>>>,
    queue: VecDeque<Chunk>,
    held: Vec<VecDeque<(u64, Chunk)>>,
    up: Vec<bool>,
    failures: Vec<u32>,
    next_id: u64,
    /// Why no worker is left, once none is.
    dead: Option<String>,
    /// Set once the pool was dropped with work left: what that work meets is a shutdown.
    abandoned: bool,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("queued", &self.queue.len())
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver for `size` slots, none started yet.
    pub fn new(
        workers: Workers,
        inbox: Receiver<Msg>,
        requests: Receiver<Request>,
        mode: Mode,
        prefetch: usize,
        size: usize,
    ) -> Driver {
        Driver {
            workers,
            inbox,
            requests,
            mode,
            prefetch: prefetch.max(1),
            pids: Arc::default(),
            queue: VecDeque::new(),
            held: (0..size).map(|_| VecDeque::new()).collect(),
            up: vec![false; size],
            failures: vec![0; size],
            next_id: 0,
            dead: None,
            abandoned: false,
        }
    }

    /// Starts every worker and waits for each to say hello; the first failure is the error.
    pub fn start_all(&mut self) -> Result<(), LibraryError> {
        let start_error = |e: crate::pool::PoolError| LibraryError::Start(e.to_string());
        for i in 0..self.up.len() {
            self.workers.start(i as u32).map_err(start_error)?;
        }
        while self.up.iter().any(|u| !u) {
            let msg = self
                .inbox
                .recv()
                .map_err(|_| LibraryError::Start("the workers' channel closed".into()))?;
            match msg {
                Msg::WorkerUp { index, hello, link } => {
                    self.workers.up(index, &hello, link).map_err(start_error)?;
                    self.up[index as usize] = true;
                }
                Msg::WorkerFailed { index, failure } => {
                    return Err(LibraryError::Start(format!(
                        "worker w{} did not start: {failure:?}",
                        index + 1
                    )));
                }
                _ => {}
            }
        }
        self.publish_pids();
        Ok(())
    }

    /// Serves requests until told to stop, then stops and reaps every worker.
    pub fn run(mut self) {
        let mut stopping = None;
        loop {
            self.dispatch();
            let in_flight: usize = self.held.iter().map(VecDeque::len).sum();
            if stopping.is_some() && self.queue.is_empty() && in_flight == 0 {
                break;
            }
            select! {
                recv(self.requests) -> r => match r {
                    Ok(Request::Run(chunk)) => match &self.dead {
                        Some(why) => chunk.sink.deliver(Err(LibraryError::Start(why.clone()))),
                        None => self.queue.push_back(chunk),
                    },
                    Ok(Request::Stop { graceful }) if stopping.is_none() => {
                        stopping = Some(graceful);
                        if !graceful {
                            self.abandon();
                        }
                    }
                    Ok(Request::Stop { .. }) => {}
                    Err(_) => {
                        if stopping.is_none() {
                            stopping = Some(false);
                            self.abandon();
                        }
                    }
                },
                recv(self.inbox) -> m => match m {
                    Ok(msg) => self.on_msg(msg, stopping.is_some()),
                    Err(_) => break,
                },
            }
        }
        self.stop();
    }

    /// Drops what waits, and stops what runs: worker processes are killed; worker threads give
    /// back what they hold but have not started, and finish the task they run.
    fn abandon(&mut self) {
        self.abandoned = true;
        for chunk in self.queue.drain(..) {
            chunk.sink.deliver(Err(LibraryError::ShutDown));
        }
        for i in 0..self.up.len() as u32 {
            match self.mode {
                Mode::Process => self.workers.kill(i),
                Mode::Thread => {
                    self.workers.send(i, ToWorker::Withdraw);
                }
            }
        }
    }

    /// Sends queued chunks to workers with room, level by level so that work spreads.
    fn dispatch(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        let mut batches: Vec<Vec<TaskSpec>> = vec![Vec::new(); self.up.len()];
        'levels: for level in 0..self.prefetch {
            for (i, batch) in batches.iter_mut().enumerate() {
                if self.queue.is_empty() {
                    break 'levels;
                }
                if !self.up[i] || self.held[i].len() > level {
                    continue;
                }
                let Some(mut chunk) = self.next_wanted() else {
                    break 'levels;
                };
                self.next_id += 1;
                let job = Job::Call {
                    name: chunk.name.to_string(),
                    args: std::mem::take(&mut chunk.args),
                    count: chunk.count,
                };
                batch.push(TaskSpec {
                    id: self.next_id,
                    job,
                    timeout_ms: None,
                    input: None,
                    transfer: None,
                });
                self.held[i].push_back((self.next_id, chunk));
            }
        }
        for (i, batch) in batches.into_iter().enumerate() {
            if !batch.is_empty() {
                // A worker that is gone fails what it held when its loss is read.
                self.workers.send(i as u32, ToWorker::Run(batch));
            }
        }
    }

    /// The next queued chunk that is still wanted.
    fn next_wanted(&mut self) -> Option<Chunk> {
        while let Some(chunk) = self.queue.pop_front() {
            if chunk.sink.start() {
                return Some(chunk);
            }
        }
        None
    }

    fn on_msg(&mut self, msg: Msg, stopping: bool) {
        match msg {
            Msg::Worker(i, FromWorker::Done(reports)) => {
                for report in reports {
                    let Some(chunk) = self.take_held(i, report.id) else {
                        continue;
                    };
                    let reply = match (report.outcome, report.stdout) {
                        (Outcome::Exited(0), Captured::Bytes(bytes)) => Ok(bytes),
                        (Outcome::BadKernelArgs(message), _) => Err(LibraryError::Task {
                            name: chunk.name.into(),
                            message,
                        }),
                        (outcome, _) => Err(LibraryError::Task {
                            name: chunk.name.into(),
                            message: format!("the worker reported {outcome:?}"),
                        }),
                    };
                    chunk.sink.deliver(reply);
                }
            }
            Msg::Worker(i, FromWorker::Withdrawn(ids)) => {
                for id in ids {
                    if let Some(chunk) = self.take_held(i, id) {
                        chunk.sink.deliver(Err(LibraryError::ShutDown));
                    }
                }
            }
            Msg::WorkerGone(i) => self.lost(i, stopping),
            Msg::WorkerUp { index, hello, link } => self.restarted(index, &hello, link),
            Msg::WorkerFailed { index, failure } => {
                self.workers.reap_failed(index);
                self.failures[index as usize] += 1;
                if self.failures[index as usize] < START_ATTEMPTS && !stopping {
                    self.restart(index);
                } else {
                    self.retire(index, format!("{failure:?}"));
                }
            }
            _ => {}
        }
    }

    /// A worker started again after a loss said hello.
    fn restarted(&mut self, index: u32, hello: &troop_worker::protocol::Hello, link: Link) {
        if self.workers.up(index, hello, link).is_ok() {
            self.up[index as usize] = true;
            self.failures[index as usize] = 0;
            self.publish_pids();
        }
    }

    fn take_held(&mut self, i: u32, id: u64) -> Option<Chunk> {
        let held = &mut self.held[i as usize];
        let at = held.iter().position(|(held_id, _)| *held_id == id)?;
        held.remove(at).map(|(_, chunk)| chunk)
    }

    /// Worker `i` is gone: its chunks fail, and it starts again unless the pool stops.
    fn lost(&mut self, i: u32, stopping: bool) {
        if !self.up[i as usize] {
            return;
        }
        self.up[i as usize] = false;
        let signal = self.workers.lost(i);
        for (_, chunk) in self.held[i as usize].drain(..) {
            let name = chunk.name.into();
            chunk.sink.deliver(Err(match self.abandoned {
                true => LibraryError::ShutDown,
                false => LibraryError::WorkerLost { name, signal },
            }));
        }
        self.publish_pids();
        if !stopping {
            self.restart(i);
        }
    }

    fn restart(&mut self, i: u32) {
        if let Err(e) = self.workers.start(i) {
            self.retire(i, e.to_string());
        }
    }

    /// Gives up on slot `i`; once every slot is given up on, all work fails.
    fn retire(&mut self, i: u32, why: String) {
        self.workers.retire(i);
        self.up[i as usize] = false;
        if (0..self.up.len() as u32).all(|s| self.workers.is_retired(s)) {
            let why = format!("no worker could start: {why}");
            for chunk in self.queue.drain(..) {
                chunk.sink.deliver(Err(LibraryError::Start(why.clone())));
            }
            self.dead = Some(why);
        }
    }

    fn publish_pids(&self) {
        *self.pids.lock().unwrap_or_else(PoisonError::into_inner) = self.workers.pids();
    }

    /// Lets every worker go and reaps it; whatever is still asked for fails.
    pub fn stop(mut self) {
        for i in 0..self.up.len() as u32 {
            self.workers.send(i, ToWorker::Shutdown);
        }
        for i in 0..self.up.len() as u32 {
            self.workers.lost(i);
            for (_, chunk) in self.held[i as usize].drain(..) {
                chunk.sink.deliver(Err(LibraryError::ShutDown));
            }
        }
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        for chunk in self.queue.drain(..) {
            chunk.sink.deliver(Err(LibraryError::ShutDown));
        }
        while let Ok(request) = self.requests.try_recv() {
            if let Request::Run(chunk) = request {
                chunk.sink.deliver(Err(LibraryError::ShutDown));
            }
        }
    }
}
