//! [`Pool`] and its [`PoolBuilder`]: the library's face, like `multiprocessing.Pool`.
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
use troop_worker::protocol::WorkerConfig;

use super::driver::{Chunk, Driver, Request, Sink};
use super::handle::{Slot, TaskHandle};
use super::stream::{Imap, encode};
use super::{LibraryError, Mode, TaskFn};
use crate::pool::{Launcher, Pool as Workers, spawn::Spawner};

/// The largest chunk picked by default.
const MAX_AUTO_CHUNK: usize = 4096;

/// Settings for a [`Pool`]; from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    workers: usize,
    mode: Mode,
    chunksize: Option<usize>,
    prefetch: usize,
}

impl PoolBuilder {
    /// The number of workers (default: the number of CPUs).
    ///
    /// ```
    /// let pool = troop::Pool::builder().workers(3).mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Processes or threads (default: processes).
    ///
    /// ```
    /// let pool = troop::Pool::builder().mode(troop::Mode::Thread).build()?;
    /// assert_eq!(pool.mode(), troop::Mode::Thread);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Calls per message for the maps. By default: the input's length (as its `size_hint`
    /// tells) over four times the workers, at most 4096; 1 when the length is unknown.
    ///
    /// ```
    /// let pool = troop::Pool::builder().chunksize(64).mode(troop::Mode::Thread).build()?;
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n.max(1));
        self
    }

    /// How many messages each worker holds at once, the one it runs included (default 2).
    /// Tasks beyond those wait in the pool, where they can still be cancelled.
    ///
    /// ```
    /// let pool = troop::Pool::builder().prefetch(1).mode(troop::Mode::Thread).build()?;
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n.max(1);
        self
    }

    /// Starts the workers and returns once every one of them said hello.
    ///
    /// ```
    /// let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build()?;
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn build(self) -> Result<Pool, LibraryError> {
        if self.workers == 0 {
            return Err(LibraryError::NoWorkers);
        }
        if self.mode == Mode::Process && !super::worker_main_called() {
            return Err(LibraryError::NoWorkerMain);
        }
        let (requests_tx, requests) = crossbeam_channel::unbounded();
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let settings = self.clone();
        // The driver starts the workers: a worker process dies with the thread that started it.
        let driver = std::thread::Builder::new()
            .name("troop-pool".into())
            .spawn(move || {
                let mut driver = match settings.driver(requests) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                match driver.start_all() {
                    Ok(()) => {
                        let _ = started_tx.send(Ok(driver.pids.clone()));
                        driver.run();
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        driver.stop();
                    }
                }
            })
            .map_err(|e| LibraryError::Start(format!("cannot start the pool's thread: {e}")))?;
        let pids = started
            .recv()
            .map_err(|_| LibraryError::Start("the pool's thread ended".into()))
            .and_then(|r| r);
        match pids {
            Ok(pids) => Ok(Pool {
                requests: requests_tx,
                driver: Some(driver),
                settings: self,
                pids,
            }),
            Err(e) => {
                drop(requests_tx);
                let _ = driver.join();
                Err(e)
            }
        }
    }

    fn driver(
        &self,
        requests: crossbeam_channel::Receiver<Request>,
    ) -> Result<Driver, LibraryError> {
        let launcher = match self.mode {
            Mode::Process => {
                // This very program, whatever TROOP_WORKER_EXE says: it knows the functions.
                let me = std::path::PathBuf::from("/proc/self/exe");
                let spawner =
                    Spawner::new(Some(me)).map_err(|e| LibraryError::Start(e.to_string()))?;
                Launcher::Spawn(spawner)
            }
            Mode::Thread => Launcher::Thread,
        };
        let (inbox_tx, inbox) = crossbeam_channel::unbounded();
        let config = WorkerConfig {
            // One report per chunk, at once: the chunk is the batch.
            flush_after_us: 0,
            ..WorkerConfig::default()
        };
        let workers = Workers::new(launcher, self.workers, inbox_tx, new_token()?, config);
        Ok(Driver::new(
            workers,
            inbox,
            requests,
            self.mode,
            self.prefetch,
            self.workers,
        ))
    }
}

/// A random token that a worker must present.
fn new_token() -> Result<String, LibraryError> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(LibraryError::Start(format!(
            "the kernel's random source failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A pool of workers that run registered task functions. See the [module](super) for how
/// functions are registered, and [this module](self) for how a pool stops.
#[derive(Debug)]
pub struct Pool {
    requests: Sender<Request>,
    driver: Option<JoinHandle<()>>,
    settings: PoolBuilder,
    pids: Arc<Mutex<Vec<u32>>>,
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
