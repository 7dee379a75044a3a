//! Handles on submitted tasks ([`TaskHandle`], like `concurrent.futures.Future`) and
//! [`as_completed`].
//!
//! A task is queued, then running (sent to a worker), then done. [`TaskHandle::cancel`] succeeds
//! only while it is queued: it is then never sent. A task already sent to a worker runs to its
//! end (as `Future.cancel` returns `False` for a running call), and its result stays available.

use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crossbeam_channel::{Receiver, Sender};
use serde::de::DeserializeOwned;

use super::LibraryError;
use super::chunk::Reply;

/// Where a submitted task stands.
#[derive(Debug)]
enum State {
    Queued,
    Running,
    /// Finished; the reply until [`TaskHandle::wait`] takes it.
    Done(Option<Reply>),
    Cancelled,
}

/// A task's state, and who to tell (a channel and an index) once it is finished.
type Watched = (State, Vec<(Sender<usize>, usize)>);

/// A submitted task's state, shared by its handle and the driver.
#[derive(Debug)]
pub(crate) struct Slot {
    state: Mutex<Watched>,
    changed: Condvar,
}

impl Slot {
    pub(crate) fn new() -> Arc<Slot> {
        Arc::new(Slot {
            state: Mutex::new((State::Queued, Vec::new())),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the task running; false when it was cancelled.
    pub(crate) fn start(&self) -> bool {
        let mut guard = self.lock();
        match guard.0 {
            State::Queued => {
                guard.0 = State::Running;
                true
            }
            _ => false,
        }
    }

    /// Records how the task ended and wakes whoever waits.
    pub(crate) fn finish(&self, reply: Reply) {
        let mut guard = self.lock();
        if matches!(guard.0, State::Cancelled) {
            return;
        }
        guard.0 = State::Done(Some(reply));
        self.notify(&mut guard);
    }

    fn notify(&self, guard: &mut Watched) {
        for (tx, index) in guard.1.drain(..) {
            let _ = tx.send(index);
        }
        self.changed.notify_all();
    }

    fn is_finished(state: &State) -> bool {
        matches!(state, State::Done(_) | State::Cancelled)
    }
}

/// A task given to [`Pool::submit`](super::Pool::submit): wait for its result, or cancel it.
pub struct TaskHandle<R> {
    slot: Arc<Slot>,
    name: &'static str,
    result: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("task", &self.name)
            .field("state", &self.slot.lock().0)
            .finish()
    }
}

impl<R: DeserializeOwned> TaskHandle<R> {
    pub(crate) fn new(slot: Arc<Slot>, name: &'static str) -> Self {
        TaskHandle {
            slot,
            name,
            result: PhantomData,
        }
    }

    /// Waits for the task and returns its result: [`LibraryError::Task`] when it panicked,
    /// [`LibraryError::Cancelled`] when it was cancelled.
    ///
    /// ```
    /// # let pool = troop::Pool::builder().workers(1).mode(troop::Mode::Thread).build().unwrap();
    /// let add = troop::register("add", |(a, b): (u32, u32)| a + b);
    /// assert_eq!(pool.submit(add, (2, 3))?.wait()?, 5);
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn wait(self) -> Result<R, LibraryError> {
        let mut guard = self.slot.lock();
        loop {
            match &mut guard.0 {
                State::Done(reply) => {
                    let reply = reply.take().unwrap_or(Err(LibraryError::ShutDown));
                    return decode_one(self.name, reply?);
                }
                State::Cancelled => return Err(LibraryError::Cancelled),
                _ => {
                    guard = self
                        .slot
                        .changed
                        .wait(guard)
                        .unwrap_or_else(PoisonError::into_inner)
                }
            }
        }
    }

    /// Cancels the task if it has not been sent to a worker yet, and says whether it is
    /// cancelled. A task that runs, or ran, is not stopped: this returns false, and
    /// [`wait`](Self::wait) returns its result.
    ///
    /// ```
    /// # let pool = troop::Pool::builder().workers(1).mode(troop::Mode::Thread).build().unwrap();
    /// let id = troop::register("id", |x: u8| x);
    /// let handle = pool.submit(id, 1)?;
    /// if handle.cancel() {
    ///     assert_eq!(handle.wait(), Err(troop::LibraryError::Cancelled));
    /// }
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let mut guard = self.slot.lock();
        match guard.0 {
            State::Queued => {
                guard.0 = State::Cancelled;
                self.slot.notify(&mut guard);
                true
            }
            State::Cancelled => true,
            _ => false,
        }
    }

    /// True once the task finished or was cancelled.
    ///
    /// ```
    /// # let pool = troop::Pool::builder().workers(1).mode(troop::Mode::Thread).build().unwrap();
    /// let id = troop::register("id", |x: u8| x);
    /// let handle = pool.submit(id, 1)?;
    /// let _ = handle.is_done(); // false until it ends
    /// # Ok::<(), troop::LibraryError>(())
    /// ```
    pub fn is_done(&self) -> bool {
        Slot::is_finished(&self.slot.lock().0)
    }

    /// Sends `index` on `tx` once the task is finished (at once if it is).
    fn watch(&self, tx: Sender<usize>, index: usize) {
        let mut guard = self.slot.lock();
        if Slot::is_finished(&guard.0) {
            let _ = tx.send(index);
        } else {
            guard.1.push((tx, index));
        }
    }
}

/// Decodes the one result of a single call.
fn decode_one<R: DeserializeOwned>(name: &'static str, bytes: Vec<u8>) -> Result<R, LibraryError> {
    let mut results = super::stream::decode(name, &bytes, 1);
    results.pop().unwrap_or(Err(LibraryError::Codec {
        name: name.into(),
        message: "no result came back".into(),
    }))
}

/// The handles of `handles`, each as soon as its task finished (or was cancelled), like
/// `concurrent.futures.as_completed`.
///
/// ```
/// # let pool = troop::Pool::builder().workers(2).mode(troop::Mode::Thread).build().unwrap();
/// let square = troop::register("square", |x: u64| x * x);
/// let handles = (1..=3).map(|x| pool.submit(square, x)).collect::<Result<Vec<_>, _>>()?;
/// let mut results: Vec<u64> = troop::as_completed(handles).map(|h| h.wait().unwrap()).collect();
/// results.sort();
/// assert_eq!(results, vec![1, 4, 9]);
/// # Ok::<(), troop::LibraryError>(())
/// ```
pub fn as_completed<R: DeserializeOwned>(handles: Vec<TaskHandle<R>>) -> AsCompleted<R> {
    let (tx, rx) = crossbeam_channel::unbounded();
    for (index, handle) in handles.iter().enumerate() {
        handle.watch(tx.clone(), index);
    }
    AsCompleted {
        left: handles.len(),
        handles: handles.into_iter().map(Some).collect(),
        rx,
    }
}

/// The iterator [`as_completed`] returns.
#[derive(Debug)]
pub struct AsCompleted<R> {
    handles: Vec<Option<TaskHandle<R>>>,
    left: usize,
    rx: Receiver<usize>,
}

impl<R: DeserializeOwned> Iterator for AsCompleted<R> {
    type Item = TaskHandle<R>;

    fn next(&mut self) -> Option<TaskHandle<R>> {
        loop {
            if self.left == 0 {
                return None;
            }
            let index = self.rx.recv().ok()?;
            if let Some(handle) = self.handles.get_mut(index).and_then(Option::take) {
                self.left -= 1;
                return Some(handle);
            }
        }
    }
}
