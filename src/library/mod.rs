//! troop's pool as a Rust library, in the manner of Python's `concurrent.futures` and
//! `multiprocessing.Pool`.
//!
//! # Tasks cross a process boundary by name
//!
//! A closure cannot travel to another process, so a task is a function the program
//! [`register`]s under a name, with serde arguments and results (postcard on the wire). The
//! typed [`TaskFn`] it returns is what [`Pool::map`], [`Pool::submit`] and the others take.
//! Worker processes are the program itself, started again from `/proc/self/exe` (as the spawn
//! start method re-imports `__main__`): `main` registers its functions and then calls
//! [`worker_main`], which serves and exits in a worker and returns at once everywhere else.
//!
//! ```no_run
//! use troop::{Mode, Pool};
//!
//! fn main() -> Result<(), troop::LibraryError> {
//!     let square = troop::register("square", |x: u64| x * x);
//!     troop::worker_main(); // a worker serves here and exits; the program goes on otherwise
//!     let pool = Pool::builder().workers(2).mode(Mode::Process).build()?;
//!     assert_eq!(pool.map(square, 0..5u64)?, vec![0, 1, 4, 9, 16]);
//!     Ok(())
//! }
//! ```
//!
//! Register every function before `worker_main`, in the same way on every run: a worker finds
//! functions by name, so one registered only after it, or only on some condition, is unknown
//! there (its tasks fail with [`LibraryError::Task`] naming it). Thread mode runs the same
//! functions on threads of the calling process, with no encoding saved.
//!
//! # Chunks
//!
//! Tiny tasks are sent in chunks, several calls to one function per message
//! ([`troop_worker::protocol::Job::Call`]): [`PoolBuilder::chunksize`], or by default a size from
//! the input's length, as `multiprocessing.Pool.map` picks one. A panic fails only its own call.
//!
//! Modules: [`pool`] (the pool), [`builder`] (its settings and start), `chunk` (what the
//! pool asks its driver), [`stream`] (the chunked map engine behind
//! `map`, `map_unordered` and `imap`), [`handle`] (`submit`'s handles and [`as_completed`]) and
//! `driver` (the thread that owns the workers).

pub mod builder;
pub(crate) mod chunk;
pub(crate) mod driver;
pub mod handle;
pub mod pool;
pub mod stream;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

pub use builder::PoolBuilder;
pub use handle::{AsCompleted, TaskHandle, as_completed};
pub use pool::Pool;
pub use stream::Imap;

/// Where a pool's workers run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Worker processes: this program started again, one process per worker (the default).
    #[default]
    Process,
    /// Worker threads in this process.
    Thread,
}

/// What can go wrong with a pool or one of its tasks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LibraryError {
    /// The builder was asked for no workers.
    #[error("a pool needs at least one worker")]
    NoWorkers,
    /// Process mode in a program whose `main` never called [`worker_main`].
    #[error(
        "process mode needs troop::worker_main() to be called first thing in main (after the task functions are registered)"
    )]
    NoWorkerMain,
    /// A worker could not be started.
    #[error("cannot start the pool: {0}")]
    Start(String),
    /// The task function panicked, or is unknown to the worker: what it said.
    #[error("task `{name}` failed: {message}")]
    Task {
        /// The task function's name.
        name: String,
        /// What went wrong: the panic's message and place, or why the worker could not call it.
        message: String,
    },
    /// An argument or a result could not be encoded or decoded.
    #[error("task `{name}`: {message}")]
    Codec {
        /// The task function's name.
        name: String,
        /// What could not be encoded or decoded, and why.
        message: String,
    },
    /// The worker process that ran the task died (the signal that killed it, if any).
    #[error("task `{name}`: its worker died while running it{}", signal.map(|s| format!(" (signal {s})")).unwrap_or_default())]
    WorkerLost {
        /// The task function's name.
        name: String,
        /// The signal that killed the worker, if one did.
        signal: Option<i32>,
    },
    /// The task was cancelled before it started.
    #[error("the task was cancelled")]
    Cancelled,
    /// The pool stopped before the task ran.
    #[error("the pool is shut down")]
    ShutDown,
}

/// A registered task function taking `A` and returning `R`: a name and two types. Cheap to
/// copy; made by [`register`] or [`task!`](crate::task).
pub struct TaskFn<A, R> {
    name: &'static str,
    types: PhantomData<fn(A) -> R>,
}

impl<A, R> TaskFn<A, R> {
    /// The name the function was registered under.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<A, R> Clone for TaskFn<A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A, R> Copy for TaskFn<A, R> {}

impl<A, R> std::fmt::Debug for TaskFn<A, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskFn({})", self.name)
    }
}

/// Registers `f` under `name` for this process and its workers, replacing any function
/// registered under that name before. Call it before [`worker_main`].
///
/// ```
/// let len = troop::register("len", |s: String| s.len());
/// assert_eq!(len.name(), "len");
/// ```
pub fn register<A, R, F>(name: &'static str, f: F) -> TaskFn<A, R>
where
    A: Serialize + DeserializeOwned + 'static,
    R: Serialize + DeserializeOwned + 'static,
    F: Fn(A) -> R + Send + Sync + 'static,
{
    troop_worker::registry::register(name, f);
    TaskFn {
        name,
        types: PhantomData,
    }
}

/// Registers a function under its own name: `troop::task!(square)` is
/// `troop::register("square", square)`.
///
/// ```
/// fn double(x: i32) -> i32 {
///     2 * x
/// }
/// let double = troop::task!(double);
/// assert_eq!(double.name(), "double");
/// ```
#[macro_export]
macro_rules! task {
    ($f:ident) => {
        $crate::register(stringify!($f), $f)
    };
}

/// Set once [`worker_main`] ran in this process.
static WORKER_MAIN: AtomicBool = AtomicBool::new(false);

/// The start-up hook of a program that uses process mode; call it first thing in `main`, once
/// the task functions are registered. In a process troop started as a worker it serves until
/// the pool lets it go, then exits the process; anywhere else it returns at once.
///
/// ```
/// troop::worker_main(); // not a worker: returns
/// ```
pub fn worker_main() {
    WORKER_MAIN.store(true, Ordering::Relaxed);
    if troop_worker::process::invoked_as_worker() {
        let code = troop_worker::process::main();
        let status = (0..=u8::MAX)
            .find(|&n| std::process::ExitCode::from(n) == code)
            .unwrap_or(1);
        std::process::exit(i32::from(status));
    }
}

/// True once [`worker_main`] ran in this process.
pub(crate) fn worker_main_called() -> bool {
    WORKER_MAIN.load(Ordering::Relaxed)
}
