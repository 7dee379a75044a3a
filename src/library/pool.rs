//! [`Pool`]: the library's face, like `multiprocessing.Pool`.
//!
//! A pool is a `Drop` guard. [`Pool::shutdown`] lets every task already asked for finish, then
//! stops the workers and reaps them. Dropping the pool instead stops at once, like
//! `Pool.terminate`: tasks not yet sent to a worker fail with [`LibraryError::ShutDown`], worker
//! processes are killed (a task they run fails the same way), worker threads finish the task they
//! run; either way every worker is gone, and every process reaped, when the drop returns.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::builder::MAX_AUTO_CHUNK;
use super::chunk::{Chunk, Request, Sink};
use super::handle::{Slot, TaskHandle};
use super::stream::{Imap, encode};
use super::{LibraryError, Mode, PoolBuilder, TaskFn};

/// A pool of workers that run registered task functions. See the [module](super) for how
/// functions are registered, and [this module](self) for how a pool stops.
#[derive(Debug)]
pub struct Pool {
    pub(super) requests: Sender<Request>,
    pub(super) driver: Option<JoinHandle<()>>,
    pub(super) settings: PoolBuilder,
    pub(super) pids: Arc<Mutex<Vec<u32>>>,
}

impl Pool {
    /// A builder with the default settings.
    ///
    /// ```
    /// let pool = troop::Pool::builder().mode(troop::Mode::Thread).build()?;
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            mode: Mode::Process,
            chunksize: None,
            prefetch: 2,
        }
    }

    /// The number of workers.
    ///
    /// ```
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.settings.workers
    }

    /// Where the workers run.
    ///
    /// ```
    /// let pool = troop::Pool::builder().mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.mode(), troop::Mode::Thread);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// The process ids of the workers that are up (this process's own, for threads).
    ///
    /// ```
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.pids(), vec![std::process::id(); 2]);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn pids(&self) -> Vec<u32> {
        self.pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls `task` on every input and returns the results in input order; the first task that
    /// failed is the error.
    ///
    /// ```
    /// let square = troop::register("square", |x: u64| x * x);
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.map(square, 1..=4u64)?, vec![1, 4, 9, 16]);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn map<A, R, I>(&self, task: TaskFn<A, R>, inputs: I) -> Result<Vec<R>, LibraryError>
    where
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.stream(task, inputs.into_iter(), true).collect()
    }

    /// Like [`map`](Self::map), with the results in the order they completed.
    ///
    /// ```
    /// let square = troop::register("square", |x: u64| x * x);
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// let mut got = pool.map_unordered(square, 1..=4u64)?;
    /// got.sort();
    /// assert_eq!(got, vec![1, 4, 9, 16]);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn map_unordered<A, R, I>(
        &self,
        task: TaskFn<A, R>,
        inputs: I,
    ) -> Result<Vec<R>, LibraryError>
    where
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.stream(task, inputs.into_iter(), false).collect()
    }

    /// Streams the results in input order, one `Result` per input, reading the inputs only as
    /// the results are taken: a bounded number of chunks is in flight at any time.
    ///
    /// ```
    /// let square = troop::register("square", |x: u64| x * x);
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// let first: Vec<u64> = pool.imap(square, 1u64..).take(3).map(Result::unwrap).collect();
    /// assert_eq!(first, vec![1, 4, 9]);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn imap<A, R, I>(&self, task: TaskFn<A, R>, inputs: I) -> Imap<'_, A, R, I::IntoIter>
    where
        A: Serialize,
        R: DeserializeOwned,
        I: IntoIterator<Item = A>,
    {
        self.stream(task, inputs.into_iter(), true)
    }

    fn stream<A, R, I>(&self, task: TaskFn<A, R>, inputs: I, ordered: bool) -> Imap<'_, A, R, I>
    where
        A: Serialize,
        R: DeserializeOwned,
        I: Iterator<Item = A>,
    {
        let workers = self.settings.workers;
        let chunk = self.settings.chunksize.unwrap_or_else(|| {
            let len = inputs.size_hint().1.unwrap_or(0);
            (len / (4 * workers)).clamp(1, MAX_AUTO_CHUNK)
        });
        let window = workers * (self.settings.prefetch + 2);
        Imap::new(self, task, inputs, chunk, window, ordered)
    }

    /// Queues one call of `task` and returns its handle at once.
    ///
    /// ```
    /// let square = troop::register("square", |x: u64| x * x);
    /// let pool = troop::Pool::builder().workers(1).mode(troop::Mode::Thread).build()?;
    /// let handle = pool.submit(square, 12)?;
    /// assert_eq!(handle.wait()?, 144);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn submit<A, R>(&self, task: TaskFn<A, R>, arg: A) -> Result<TaskHandle<R>, LibraryError>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let mut args = Vec::new();
        encode(task.name(), &mut args, &arg)?;
        let slot = Slot::new();
        let chunk = Chunk {
            name: task.name(),
            args,
            count: 1,
            sink: Sink::Handle(slot.clone()),
        };
        if self.requests.send(Request::Run(chunk)).is_err() {
            return Err(LibraryError::ShutDown);
        }
        Ok(TaskHandle::new(slot, task.name()))
    }

    /// Hands a chunk to the driver; if the driver is gone, the chunk fails at once.
    pub(crate) fn request(&self, chunk: Chunk) {
        if let Err(e) = self.requests.send(Request::Run(chunk))
            && let Request::Run(chunk) = e.into_inner()
        {
            chunk.sink.deliver(Err(LibraryError::ShutDown));
        }
    }

    /// Lets every task already asked for finish, then stops the workers and reaps them.
    ///
    /// ```
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// pool.shutdown();
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn shutdown(mut self) {
        self.stop(true);
    }

    fn stop(&mut self, graceful: bool) {
        if let Some(driver) = self.driver.take() {
            let _ = self.requests.send(Request::Stop { graceful });
            let _ = driver.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop(false);
    }
}
