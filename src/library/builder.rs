//! [`PoolBuilder`]: a pool's settings, and how its workers and their driver start.

use troop_worker::protocol::WorkerConfig;

use super::chunk::Request;
use super::driver::Driver;
use super::{LibraryError, Mode, Pool};
use crate::pool::{Launcher, Pool as Workers, spawn::Spawner};

/// The largest chunk picked by default.
pub(super) const MAX_AUTO_CHUNK: usize = 4096;

/// Settings for a [`Pool`]; from [`Pool::builder`].
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    pub(super) workers: usize,
    pub(super) mode: Mode,
    pub(super) chunksize: Option<usize>,
    pub(super) prefetch: usize,
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
            // A chunk's report goes out once it, or the chunks run since the last report, took
            // this long: tiny chunks share a message, a slow one is reported as it ends.
            flush_after_us: 100,
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
