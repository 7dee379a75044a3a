//! The scheduler: pure decisions about which task goes to which worker, and when a run is over.
//!
//! It takes [`Event`]s and returns [`Action`]s. It does no I/O and reads no clock, so every policy
//! here (flow control, batching, replacing lost workers, stopping) is unit-tested without a
//! single process. The supervisor carries the actions out.
//!
//! Flow control: a worker never holds more than a bounded number of tasks. Slow tasks go one at a
//! time, so a worker that is busy never hoards work another could start. Tiny tasks (measured
//! cheaper than [`TINY_TASK_US`]) travel in batches sized to take about that long, with a second
//! batch queued behind the running one so the worker never waits for the supervisor.
//!
//! Stopping: once the run stops starting tasks, each worker is asked to give back the tasks it
//! holds behind its running one ([`Action::Withdraw`]); they go back to the queue unstarted.
//! When any task's outcome may stop the run (`--halt`), the scheduler runs in lockstep: one task
//! per worker and none behind it, so no task starts after the one that decides.

use std::collections::VecDeque;

use crate::config::Chunk;

/// Identifies a worker slot; a replacement worker takes over the slot of the one it replaces.
pub type WorkerId = u32;
/// Identifies a task: its sequence number `{#}`, from 1.
pub type TaskId = u64;

/// Tasks measured cheaper than this (in microseconds) are sent in batches.
pub const TINY_TASK_US: u64 = 2_000;
/// The largest batch sent in one message.
pub const MAX_CHUNK: usize = 1024;
/// The fewest tiny tasks a worker may hold.
pub const MIN_PIPELINE: usize = 64;

/// Something that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A worker finished starting and can take tasks.
    WorkerReady(WorkerId),
    /// A new task was read from the input.
    Queued(TaskId),
    /// The input has no more tasks.
    InputEnded,
    /// A worker finished a task after `wall_us` microseconds.
    TaskDone {
        worker: WorkerId,
        id: TaskId,
        wall_us: u64,
    },
    /// A worker died (or its channel closed) with tasks possibly in flight.
    WorkerLost(WorkerId),
    /// A worker slot is given up on (its worker could not start): it takes no more tasks, and
    /// what it held goes back to the queue.
    WorkerRetired(WorkerId),
    /// Start no new task; let the running ones finish.
    StopStarting,
    /// A failed task will run again after a delay: the run is not over meanwhile.
    RetryPending,
    /// The supervisor settled a task it was told was lost: retried (after
    /// [`Event::RetryPending`]) or ended for good.
    LostSettled,
    /// A task to run again: it goes to the front of the queue.
    Requeue(TaskId),
    /// Hold back (true) or resume (false) dispatching, e.g. while memory is short.
    Hold(bool),
    /// A worker gave back these tasks, which it held but had not started.
    Withdrawn {
        worker: WorkerId,
        tasks: Vec<TaskId>,
    },
    /// The delay after the last start (`--delay`) has passed: the next task may start.
    PaceElapsed,
    /// The pool should have this many workers (`-j FILE` changed): new slots start, or slots
    /// stop taking tasks and retire once they hold none.
    Resize(usize),
}

/// Something the supervisor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these tasks, in order, to the worker.
    Dispatch {
        worker: WorkerId,
        tasks: Vec<TaskId>,
    },
    /// This task was running on a worker that died: record it as lost.
    Lost(TaskId),
    /// Start a worker in this slot (a replacement).
    StartWorker(WorkerId),
    /// Ask the worker to give back the tasks it holds but has not started.
    Withdraw(WorkerId),
    /// Stop worker `w`, which holds no task, and forget its slot: the pool shrank.
    RetireWorker(WorkerId),
    /// A task started under `--delay`: tell the scheduler [`Event::PaceElapsed`] after the delay.
    Pace,
    /// Every task has ended (or will not start): shut the pool down.
    Finished,
}

/// What a worker slot is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// Being started; takes no tasks yet.
    Starting,
    /// Up, with these tasks sent and not yet reported, in the order sent.
    Ready { in_flight: VecDeque<TaskId> },
    /// Up, taking no new task: it retires once the tasks it holds are reported (the pool
    /// shrank).
    Leaving { in_flight: VecDeque<TaskId> },
    /// Its worker died when nothing was left for it to do: started again if work comes back
    /// (a task of the dead worker that is retried).
    Vacant,
    /// Given up on: no worker, no tasks.
    Retired,
}

impl Slot {
    /// The tasks a worker that is up holds.
    fn held(&self) -> Option<&VecDeque<TaskId>> {
        match self {
            Slot::Ready { in_flight } | Slot::Leaving { in_flight } => Some(in_flight),
            Slot::Starting | Slot::Vacant | Slot::Retired => None,
        }
    }

    fn held_mut(&mut self) -> Option<&mut VecDeque<TaskId>> {
        match self {
            Slot::Ready { in_flight } | Slot::Leaving { in_flight } => Some(in_flight),
            Slot::Starting | Slot::Vacant | Slot::Retired => None,
        }
    }

    /// Starting or up, and taking tasks (or vacant, to be started when tasks come).
    fn active(&self) -> bool {
        matches!(self, Slot::Starting | Slot::Ready { .. } | Slot::Vacant)
    }
}

/// The scheduler's state.
#[derive(Debug)]
pub struct Scheduler {
    slots: Vec<Slot>,
    queue: VecDeque<TaskId>,
    chunk: Chunk,
    /// Running mean of task wall time in microseconds, once anything finished.
    mean_us: Option<f64>,
    input_ended: bool,
    stopping: bool,
    finished: bool,
    /// Failed tasks waiting out their retry delay.
    retries_pending: usize,
    /// Tasks lost with their worker ([`Action::Lost`]) that the supervisor has not yet settled
    /// ([`Event::LostSettled`]): each may come back as a retry.
    lost_pending: usize,
    held: bool,
    /// One task at a time per worker, none queued behind it: set when the outcome of any task
    /// may stop the run (`--halt`), so that no task starts after the one that stopped it.
    lockstep: bool,
    /// Tasks carry blocks of input (`--pipe`): one per message, at most two held per worker and
    /// as few read ahead as keep every worker busy, so memory holds about two blocks per worker.
    blocks: bool,
    /// `--delay`: tasks start one at a time, each after [`Event::PaceElapsed`] for the one before.
    pace: Pace,
}

/// Whether tasks start at a pace, and where the pace stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Tasks start as soon as a worker can take them.
    Free,
    /// The next task may start.
    Ready,
    /// A task started; the next waits for the delay to pass.
    Waiting,
}

impl Scheduler {
    /// A scheduler for `workers` slots, all starting.
    pub fn new(workers: usize, chunk: Chunk) -> Self {
        Scheduler {
            slots: vec![Slot::Starting; workers],
            queue: VecDeque::new(),
            chunk,
            mean_us: None,
            input_ended: false,
            stopping: false,
            finished: false,
            retries_pending: 0,
            lost_pending: 0,
            held: false,
            lockstep: false,
            blocks: false,
            pace: Pace::Free,
        }
    }

    /// Starts tasks one at a time with a delay between starts (`--delay`): each start asks for
    /// [`Action::Pace`], and the next waits for [`Event::PaceElapsed`].
    pub fn paced(mut self, on: bool) -> Self {
        self.pace = if on { Pace::Ready } else { Pace::Free };
        self
    }

    /// Bounds the tasks read and held as for tasks that carry blocks of input (see `blocks`).
    pub fn blocks(mut self, on: bool) -> Self {
        self.blocks = on;
        self
    }

    /// Sends one task at a time to each worker, with none queued behind it (see `lockstep`).
    pub fn lockstep(mut self, on: bool) -> Self {
        self.lockstep = on;
        self
    }

    /// Applies one event and appends what must be done to `actions`.
    pub fn handle(&mut self, event: Event, actions: &mut Vec<Action>) {
        self.apply(event, actions);
        self.fill(actions);
    }

    /// Applies one event without dispatching yet: for a burst of events (a chunk of input, a
    /// batch of reports) followed by one [`Scheduler::fill`].
    pub fn apply(&mut self, event: Event, actions: &mut Vec<Action>) {
        match event {
            Event::WorkerReady(w) => {
                if self.slots[w as usize] == Slot::Starting {
                    self.slots[w as usize] = Slot::Ready {
                        in_flight: VecDeque::new(),
                    }
                }
            }
            Event::Queued(id) => self.queue.push_back(id),
            Event::InputEnded => self.input_ended = true,
            Event::TaskDone {
                worker,
                id,
                wall_us,
            } => {
                if let Some(in_flight) = self.slots[worker as usize].held_mut() {
                    if in_flight.front() == Some(&id) {
                        in_flight.pop_front();
                    } else if let Some(pos) = in_flight.iter().position(|&t| t == id) {
                        in_flight.remove(pos);
                    }
                }
                let sample = wall_us as f64;
                self.mean_us = Some(match self.mean_us {
                    None => sample,
                    Some(m) => m * 0.9 + sample * 0.1,
                });
            }
            Event::WorkerLost(w) => {
                let slot = std::mem::replace(&mut self.slots[w as usize], Slot::Starting);
                let leaving = matches!(slot, Slot::Leaving { .. });
                if let Slot::Ready { mut in_flight } | Slot::Leaving { mut in_flight } = slot {
                    // Tasks run in the order sent: the first was running, the rest never started.
                    if let Some(running) = in_flight.pop_front() {
                        self.lost_pending += 1;
                        actions.push(Action::Lost(running));
                    }
                    while let Some(id) = in_flight.pop_back() {
                        self.queue.push_front(id);
                    }
                }
                if leaving {
                    // The pool shrank: the slot is not filled again.
                    self.slots[w as usize] = Slot::Retired;
                } else if !(self.stopping
                    || self.input_ended && self.queue.is_empty() && self.retries_pending == 0)
                {
                    actions.push(Action::StartWorker(w));
                } else {
                    // Nothing left for it to do: the slot stays empty, until a task comes back.
                    self.slots[w as usize] = Slot::Vacant;
                }
            }
            Event::WorkerRetired(w) => {
                let slot = std::mem::replace(&mut self.slots[w as usize], Slot::Retired);
                if let Slot::Ready { in_flight } | Slot::Leaving { in_flight } = slot {
                    for id in in_flight.into_iter().rev() {
                        self.queue.push_front(id);
                    }
                }
            }
            Event::StopStarting => {
                if !self.stopping {
                    self.stopping = true;
                    // Tasks a worker holds behind its running one must not start either.
                    for (w, slot) in self.slots.iter().enumerate() {
                        if slot.held().is_some_and(|held| held.len() > 1) {
                            actions.push(Action::Withdraw(w as WorkerId));
                        }
                    }
                }
            }
            Event::RetryPending => self.retries_pending += 1,
            Event::LostSettled => self.lost_pending = self.lost_pending.saturating_sub(1),
            Event::Requeue(id) => {
                self.retries_pending = self.retries_pending.saturating_sub(1);
                self.queue.push_front(id);
            }
            Event::Hold(held) => self.held = held,
            Event::PaceElapsed => {
                if self.pace == Pace::Waiting {
                    self.pace = Pace::Ready;
                }
            }
            Event::Resize(n) => self.resize(n.max(1), actions),
            Event::Withdrawn { worker, tasks } => {
                if let Some(in_flight) = self.slots[worker as usize].held_mut() {
                    in_flight.retain(|t| !tasks.contains(t));
                }
                for &id in tasks.iter().rev() {
                    self.queue.push_front(id);
                }
            }
        }
    }

    /// Grows or shrinks the slots taking tasks to `n`. Growing takes back slots that are
    /// leaving, then starts new ones; shrinking gives up slots still starting first, then idle
    /// ones (retired at once), then busy ones (retired when their tasks are reported).
    fn resize(&mut self, n: usize, actions: &mut Vec<Action>) {
        let mut active = self.active_slots();
        for slot in self.slots.iter_mut().rev() {
            if active >= n {
                break;
            }
            if let Slot::Leaving { in_flight } = slot {
                *slot = Slot::Ready {
                    in_flight: std::mem::take(in_flight),
                };
                active += 1;
            }
        }
        while active < n {
            self.slots.push(Slot::Starting);
            actions.push(Action::StartWorker((self.slots.len() - 1) as WorkerId));
            active += 1;
        }
        let ranked = |slot: &Slot| match slot {
            Slot::Starting | Slot::Vacant => Some(0),
            Slot::Ready { in_flight } if in_flight.is_empty() => Some(1),
            Slot::Ready { .. } => Some(2),
            Slot::Leaving { .. } | Slot::Retired => None,
        };
        while active > n {
            let Some(w) = (0..self.slots.len())
                .rev()
                .filter_map(|w| ranked(&self.slots[w]).map(|rank| (rank, w)))
                .min_by_key(|&(rank, w)| (rank, std::cmp::Reverse(w)))
                .map(|(_, w)| w)
            else {
                break;
            };
            self.slots[w] = match std::mem::replace(&mut self.slots[w], Slot::Retired) {
                Slot::Ready { in_flight } if !in_flight.is_empty() => Slot::Leaving { in_flight },
                _ => {
                    actions.push(Action::RetireWorker(w as WorkerId));
                    Slot::Retired
                }
            };
            active -= 1;
        }
    }

    /// Once the input has ended, the most tasks one worker should hold: an even share of what
    /// is left among the slots taking tasks, those still starting included, so that the last
    /// tasks do not pile up behind one worker while another waits (after the first tasks were
    /// measured tiny, or when the pool grows). Unbounded while more input may come.
    fn fair_share(&self) -> usize {
        if !self.input_ended {
            return usize::MAX;
        }
        let (mut active, mut load) = (0, self.queue.len());
        for slot in &self.slots {
            match slot {
                Slot::Starting => active += 1,
                Slot::Ready { in_flight } => {
                    active += 1;
                    load += in_flight.len();
                }
                Slot::Leaving { .. } | Slot::Vacant | Slot::Retired => {}
            }
        }
        load.div_ceil(active.max(1)).max(1)
    }

    /// Slots starting or taking tasks.
    fn active_slots(&self) -> usize {
        self.slots.iter().filter(|s| s.active()).count()
    }

    /// The worker slots so far, retired ones included: the next slot started is this number.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// True while the supervisor should read more input.
    pub fn wants_input(&self) -> bool {
        let active = self.active_slots();
        let limit = if self.blocks {
            active.max(1)
        } else {
            (4 * self.chunk_size() * active).max(256)
        };
        !self.input_ended && !self.stopping && self.queue.len() < limit
    }

    /// Tasks read but not started.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Tasks sent to workers and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .map(|s| s.held().map_or(0, VecDeque::len))
            .sum()
    }

    /// The task worker `worker` runs (or is about to run): the first of those it holds.
    pub fn head(&self, worker: WorkerId) -> Option<TaskId> {
        self.slots[worker as usize]
            .held()
            .and_then(|held| held.front().copied())
    }

    /// The workers that hold tasks.
    pub fn busy_workers(&self) -> Vec<WorkerId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.held().is_some_and(|held| !held.is_empty()))
            .map(|(w, _)| w as WorkerId)
            .collect()
    }

    /// Tasks running now: each worker runs the first of the tasks it holds; the others wait
    /// behind it.
    pub fn running(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.held().is_some_and(|held| !held.is_empty()))
            .count()
    }

    /// The batch size for the next dispatch.
    pub fn chunk_size(&self) -> usize {
        if self.lockstep || self.blocks || self.pace != Pace::Free {
            return 1;
        }
        match (self.chunk, self.mean_us) {
            (Chunk::Fixed(n), _) => n.max(1),
            (Chunk::Auto, None) => 1,
            (Chunk::Auto, Some(mean)) => {
                ((TINY_TASK_US as f64 / mean.max(0.5)) as usize).clamp(1, MAX_CHUNK)
            }
        }
    }

    /// The most tasks one worker may hold: one at a time for slow tasks; for tiny ones, two
    /// batches, and never fewer than [`MIN_PIPELINE`], so even one task per message keeps the
    /// worker busy while replies travel.
    fn cap(&self, chunk: usize) -> usize {
        if self.lockstep || self.pace != Pace::Free {
            return 1;
        }
        if self.blocks {
            return 2;
        }
        let tiny = match (self.chunk, self.mean_us) {
            (Chunk::Fixed(_), _) => true,
            (Chunk::Auto, Some(mean)) => mean < TINY_TASK_US as f64,
            (Chunk::Auto, None) => false,
        };
        if tiny {
            (2 * chunk).max(MIN_PIPELINE)
        } else {
            chunk
        }
    }

    /// Dispatches what can be dispatched, and says when the run is over.
    pub fn fill(&mut self, actions: &mut Vec<Action>) {
        if !self.stopping && !self.queue.is_empty() {
            // Work came back after a worker died with nothing left to do: its slot starts again.
            for (w, slot) in self.slots.iter_mut().enumerate() {
                if *slot == Slot::Vacant {
                    *slot = Slot::Starting;
                    actions.push(Action::StartWorker(w as WorkerId));
                }
            }
        }
        if !self.stopping && !self.held {
            let chunk = self.chunk_size();
            let cap = self.cap(chunk);
            let limit = cap.min(self.fair_share());
            for (w, slot) in self.slots.iter_mut().enumerate() {
                let Slot::Ready { in_flight } = slot else {
                    continue;
                };
                while !self.queue.is_empty() && self.pace != Pace::Waiting {
                    let room = limit.saturating_sub(in_flight.len());
                    let n = chunk.min(self.queue.len()).min(room);
                    if n == 0 {
                        break;
                    }
                    if !self.input_ended && (room < chunk || n < chunk && !in_flight.is_empty()) {
                        // A busy worker waits for a full batch rather than get many small ones.
                        break;
                    }
                    let tasks: Vec<TaskId> = self.queue.drain(..n).collect();
                    in_flight.extend(&tasks);
                    actions.push(Action::Dispatch {
                        worker: w as WorkerId,
                        tasks,
                    });
                    if self.pace == Pace::Ready {
                        self.pace = Pace::Waiting;
                        actions.push(Action::Pace);
                    }
                }
            }
        }
        // A slot leaving the pool retires once it holds nothing.
        for (w, slot) in self.slots.iter_mut().enumerate() {
            if matches!(slot, Slot::Leaving { in_flight } if in_flight.is_empty()) {
                *slot = Slot::Retired;
                actions.push(Action::RetireWorker(w as WorkerId));
            }
        }
        // A run that stops does not wait for workers still starting: they have nothing to do.
        let idle =
            self.in_flight() == 0 && (self.stopping || !self.slots.contains(&Slot::Starting));
        let nothing_left = self.stopping
            || (self.input_ended
                && self.queue.is_empty()
                && self.retries_pending == 0
                && self.lost_pending == 0);
        if idle && nothing_left && !self.finished {
            self.finished = true;
            actions.push(Action::Finished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &mut Scheduler, events: impl IntoIterator<Item = Event>) -> Vec<Action> {
        let mut actions = Vec::new();
        for e in events {
            s.handle(e, &mut actions);
        }
        actions
    }

    fn dispatched(actions: &[Action]) -> Vec<(WorkerId, Vec<TaskId>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Dispatch { worker, tasks } => Some((*worker, tasks.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn slow_tasks_go_one_at_a_time_to_ready_workers() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        let a = run(
            &mut s,
            (1..=5).map(Event::Queued).chain([Event::InputEnded]),
        );
        assert!(a.is_empty(), "no worker is ready yet: {a:?}");
        let a = run(&mut s, [Event::WorkerReady(0), Event::WorkerReady(1)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1]), (1, vec![2])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 1,
                id: 2,
                wall_us: 500_000,
            }],
        );
        assert_eq!(dispatched(&a), vec![(1, vec![3])]);
        assert_eq!(s.in_flight(), 2);
        assert_eq!(s.queued(), 2);
    }

    #[test]
    fn tiny_tasks_are_batched_with_one_batch_queued_behind() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(&mut s, (1..=10_000).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 1,
            }],
        );
        let d = dispatched(&a);
        assert_eq!(d.len(), 2, "a running batch and a queued one");
        assert_eq!(d[0].1.len(), MAX_CHUNK);
        assert_eq!(d[0].1[0], 2);
        assert_eq!(s.in_flight(), 2 * MAX_CHUNK);
    }

    #[test]
    fn a_delay_starts_one_task_per_elapsed_pace() {
        let mut s = Scheduler::new(3, Chunk::Fixed(8)).paced(true);
        run(
            &mut s,
            (1..=4).map(Event::Queued).chain([Event::InputEnded]),
        );
        let a = run(&mut s, [0, 1, 2].map(Event::WorkerReady));
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
        assert_eq!(a.iter().filter(|x| **x == Action::Pace).count(), 1);
        let a = run(&mut s, [Event::PaceElapsed]);
        assert_eq!(dispatched(&a), vec![(1, vec![2])]);
        assert!(a.contains(&Action::Pace));
        // A task that ends frees its worker, but the next start still waits for the pace.
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 1,
            }],
        );
        assert!(dispatched(&a).is_empty(), "{a:?}");
        let a = run(&mut s, [Event::PaceElapsed]);
        assert_eq!(dispatched(&a), vec![(0, vec![3])]);
    }

    fn retired(actions: &[Action]) -> Vec<WorkerId> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::RetireWorker(w) => Some(*w),
                _ => None,
            })
            .collect()
    }

    fn done(worker: WorkerId, id: TaskId) -> Event {
        Event::TaskDone {
            worker,
            id,
            wall_us: 500_000,
        }
    }

    #[test]
    fn growing_starts_new_slots_that_take_tasks() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(&mut s, (1..=5).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
        let a = run(&mut s, [Event::Resize(3)]);
        assert_eq!(
            a,
            vec![Action::StartWorker(1), Action::StartWorker(2)],
            "two new slots start"
        );
        let a = run(&mut s, [Event::WorkerReady(1), Event::WorkerReady(2)]);
        assert_eq!(dispatched(&a), vec![(1, vec![2]), (2, vec![3])]);
        assert_eq!(s.running(), 3);
    }

    #[test]
    fn the_last_tasks_are_shared_among_the_slots_even_after_tiny_ones() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(&mut s, (1..=7).map(Event::Queued));
        run(&mut s, [Event::InputEnded]);
        let a = run(&mut s, [Event::WorkerReady(0)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
        // The first task was tiny, and the pool grows to 3 when it ends: the 6 tasks left are
        // not all batched to slot 0 while slots 1 and 2 start.
        let mut a = Vec::new();
        s.apply(
            Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 100,
            },
            &mut a,
        );
        s.apply(Event::Resize(3), &mut a);
        s.fill(&mut a);
        assert_eq!(dispatched(&a), vec![(0, vec![2, 3])]);
        let a = run(&mut s, [Event::WorkerReady(1), Event::WorkerReady(2)]);
        assert_eq!(dispatched(&a), vec![(1, vec![4, 5]), (2, vec![6, 7])]);
    }

    #[test]
    fn shrinking_retires_idle_slots_at_once_and_busy_ones_when_their_task_ends() {
        let mut s = Scheduler::new(3, Chunk::Auto);
        run(&mut s, (0..3).map(Event::WorkerReady));
        let a = run(&mut s, (1..=2).map(Event::Queued));
        assert_eq!(dispatched(&a), vec![(0, vec![1]), (1, vec![2])]);
        // Slot 2 is idle, slot 1 busy: going to 1 worker retires 2 now and 1 after its task.
        let a = run(&mut s, [Event::Resize(1)]);
        assert_eq!(retired(&a), vec![2]);
        run(&mut s, (3..=6).map(Event::Queued));
        let a = run(&mut s, [done(1, 2)]);
        assert_eq!(retired(&a), vec![1]);
        assert!(
            dispatched(&a).is_empty(),
            "a leaving slot takes no task: {a:?}"
        );
        let a = run(&mut s, [done(0, 1)]);
        assert_eq!(dispatched(&a), vec![(0, vec![3])]);
        assert_eq!(s.running(), 1);
        // Growing again starts a fresh slot; the retired ones stay retired.
        let a = run(&mut s, [Event::Resize(2)]);
        assert_eq!(a, vec![Action::StartWorker(3)]);
    }

    #[test]
    fn growing_takes_back_a_leaving_slot_first() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        run(&mut s, (0..2).map(Event::WorkerReady));
        run(&mut s, (1..=4).map(Event::Queued));
        let a = run(&mut s, [Event::Resize(1)]);
        assert!(retired(&a).is_empty(), "both are busy: {a:?}");
        let a = run(&mut s, [Event::Resize(2)]);
        assert!(a.is_empty(), "the leaving slot stays: {a:?}");
        let a = run(&mut s, [done(1, 2)]);
        assert_eq!(dispatched(&a), vec![(1, vec![3])]);
    }

    #[test]
    fn a_run_that_shrinks_still_finishes() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        run(&mut s, (0..2).map(Event::WorkerReady));
        run(
            &mut s,
            [Event::Queued(1), Event::Queued(2), Event::InputEnded],
        );
        run(&mut s, [Event::Resize(1)]);
        let a = run(&mut s, [done(1, 2)]);
        assert_eq!(retired(&a), vec![1]);
        assert!(!a.contains(&Action::Finished));
        let a = run(&mut s, [done(0, 1)]);
        assert!(a.contains(&Action::Finished), "{a:?}");
    }

    #[test]
    fn a_fixed_chunk_is_respected() {
        let mut s = Scheduler::new(2, Chunk::Fixed(3));
        run(&mut s, (1..=20).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0)]);
        let d = dispatched(&a);
        assert_eq!(d[0], (0, vec![1, 2, 3]));
        assert_eq!(d[1], (0, vec![4, 5, 6]));
        assert!(d.iter().all(|(_, t)| t.len() == 3), "{d:?}");
    }

    #[test]
    fn finishes_once_when_everything_reported() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        let a = run(
            &mut s,
            [Event::WorkerReady(0), Event::Queued(1), Event::InputEnded],
        );
        assert!(!a.contains(&Action::Finished));
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 10,
            }],
        );
        assert_eq!(a, vec![Action::Finished]);
        let a = run(&mut s, [Event::InputEnded]);
        assert!(a.is_empty(), "finished only once");
    }

    #[test]
    fn empty_input_finishes_when_workers_are_up() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        let a = run(&mut s, [Event::InputEnded, Event::WorkerReady(0)]);
        assert!(a.is_empty(), "a worker is still starting");
        let a = run(&mut s, [Event::WorkerReady(1)]);
        assert_eq!(a, vec![Action::Finished]);
    }

    #[test]
    fn a_lost_worker_loses_its_running_task_requeues_the_rest_and_is_replaced() {
        let mut s = Scheduler::new(2, Chunk::Fixed(2));
        run(
            &mut s,
            (1..=8).map(Event::Queued).chain([Event::InputEnded]),
        );
        let a = run(&mut s, [Event::WorkerReady(0)]);
        // Its share: half of the 8, as slot 1 is still starting.
        assert_eq!(dispatched(&a), vec![(0, vec![1, 2]), (0, vec![3, 4])]);
        let a = run(&mut s, [Event::WorkerLost(0)]);
        assert_eq!(a, vec![Action::Lost(1), Action::StartWorker(0)]);
        assert_eq!(s.queued(), 7, "2 to 8 are back in the queue, in order");
        let a = run(&mut s, [Event::WorkerReady(0)]);
        assert_eq!(dispatched(&a)[0], (0, vec![2, 3]));
    }

    #[test]
    fn a_slot_whose_worker_died_with_nothing_left_starts_again_for_a_retried_task() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        run(
            &mut s,
            [Event::Queued(1), Event::Queued(2), Event::InputEnded],
        );
        run(&mut s, [Event::WorkerReady(0), Event::WorkerReady(1)]);
        // Worker 0 dies running task 1, the last one, while worker 1 still runs task 2:
        // nothing is queued, so it is not replaced, and the run is not over either.
        let a = run(&mut s, [Event::WorkerLost(0)]);
        assert_eq!(a, vec![Action::Lost(1)]);
        let a = run(&mut s, [done(1, 2)]);
        assert!(
            !a.contains(&Action::Finished),
            "task 1 may come back: {a:?}"
        );
        // It comes back as a retry: its slot starts again, and the idle worker takes it.
        let a = run(
            &mut s,
            [Event::RetryPending, Event::Requeue(1), Event::LostSettled],
        );
        assert!(a.contains(&Action::StartWorker(0)), "{a:?}");
        assert_eq!(dispatched(&a), vec![(1, vec![1])]);
        assert!(!a.contains(&Action::Finished), "{a:?}");
        let a = run(&mut s, [done(1, 1), Event::WorkerReady(0)]);
        assert!(a.contains(&Action::Finished), "{a:?}");
    }

    #[test]
    fn a_task_lost_for_good_ends_the_run_once_settled() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(
            &mut s,
            [Event::Queued(1), Event::InputEnded, Event::WorkerReady(0)],
        );
        let a = run(&mut s, [Event::WorkerLost(0)]);
        assert_eq!(a, vec![Action::Lost(1)], "not over before it is settled");
        let a = run(&mut s, [Event::LostSettled]);
        assert_eq!(a, vec![Action::Finished]);
    }

    #[test]
    fn stopping_starts_nothing_and_finishes_when_running_tasks_end() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(
            &mut s,
            [Event::WorkerReady(0), Event::Queued(1), Event::Queued(2)],
        );
        let a = run(&mut s, [Event::StopStarting]);
        assert!(a.is_empty());
        assert!(!s.wants_input());
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 5_000,
            }],
        );
        assert_eq!(a, vec![Action::Finished]);
        assert_eq!(s.queued(), 1, "task 2 never started");
    }

    #[test]
    fn a_pending_retry_keeps_the_run_open_and_goes_first() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        run(
            &mut s,
            [
                Event::WorkerReady(0),
                Event::Queued(1),
                Event::Queued(2),
                Event::InputEnded,
            ],
        );
        let a = run(
            &mut s,
            [
                Event::TaskDone {
                    worker: 0,
                    id: 1,
                    wall_us: 5_000,
                },
                Event::RetryPending,
            ],
        );
        assert_eq!(dispatched(&a), vec![(0, vec![2])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 2,
                wall_us: 5_000,
            }],
        );
        assert!(a.is_empty(), "task 1 will run again: not finished: {a:?}");
        let a = run(&mut s, [Event::Requeue(1)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
    }

    #[test]
    fn holding_dispatches_nothing_until_released() {
        let mut s = Scheduler::new(1, Chunk::Auto);
        let a = run(
            &mut s,
            [Event::Hold(true), Event::WorkerReady(0), Event::Queued(1)],
        );
        assert!(dispatched(&a).is_empty());
        let a = run(&mut s, [Event::Hold(false)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
    }

    #[test]
    fn a_retired_slot_takes_no_task_and_does_not_hold_the_run_open() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        let a = run(
            &mut s,
            [
                Event::Queued(1),
                Event::Queued(2),
                Event::InputEnded,
                Event::WorkerRetired(1),
                Event::WorkerReady(0),
            ],
        );
        assert_eq!(dispatched(&a), vec![(0, vec![1])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 500_000,
            }],
        );
        assert_eq!(dispatched(&a), vec![(0, vec![2])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 2,
                wall_us: 500_000,
            }],
        );
        assert_eq!(a, vec![Action::Finished]);
    }

    #[test]
    fn tasks_with_blocks_go_one_at_a_time_two_per_worker_and_few_are_read_ahead() {
        let mut s = Scheduler::new(2, Chunk::Auto).blocks(true);
        run(&mut s, (1..=2).map(Event::Queued));
        assert!(
            !s.wants_input(),
            "two queued blocks are enough for two workers"
        );
        run(&mut s, (3..=6).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0), Event::WorkerReady(1)]);
        assert_eq!(
            dispatched(&a),
            vec![(0, vec![1]), (0, vec![2]), (1, vec![3]), (1, vec![4])]
        );
        // Tiny tasks do not grow the batches.
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 1,
            }],
        );
        assert_eq!(dispatched(&a), vec![(0, vec![5])]);
        assert!(s.wants_input());
    }

    #[test]
    fn wants_input_is_bounded() {
        let mut s = Scheduler::new(2, Chunk::Auto);
        assert!(s.wants_input());
        run(&mut s, (1..=10_000).map(Event::Queued));
        assert!(!s.wants_input());
    }

    #[test]
    fn lockstep_sends_one_task_per_worker_and_none_behind_it() {
        let mut s = Scheduler::new(2, Chunk::Fixed(8)).lockstep(true);
        run(&mut s, (1..=10).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0), Event::WorkerReady(1)]);
        assert_eq!(dispatched(&a), vec![(0, vec![1]), (1, vec![2])]);
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 1,
            }],
        );
        assert_eq!(dispatched(&a), vec![(0, vec![3])], "tiny tasks too");
        assert_eq!(s.in_flight(), 2);
    }

    #[test]
    fn stopping_withdraws_the_tasks_queued_behind_the_running_ones() {
        let mut s = Scheduler::new(2, Chunk::Fixed(2));
        run(&mut s, (1..=200).map(Event::Queued));
        run(&mut s, [Event::WorkerReady(0), Event::WorkerReady(1)]);
        assert_eq!(s.running(), 2);
        assert_eq!(s.in_flight(), 2 * MIN_PIPELINE);
        let a = run(&mut s, [Event::StopStarting]);
        assert_eq!(a, vec![Action::Withdraw(0), Action::Withdraw(1)]);
        let a = run(
            &mut s,
            [Event::Withdrawn {
                worker: 0,
                tasks: (2..=MIN_PIPELINE as u64).collect(),
            }],
        );
        assert!(a.is_empty(), "still running: {a:?}");
        assert_eq!(s.in_flight(), 1 + MIN_PIPELINE);
        assert_eq!(s.queued(), 200 - 2 * MIN_PIPELINE + MIN_PIPELINE - 1);
        assert_eq!(s.running(), 2, "a withdrawal leaves the running tasks");
    }

    #[test]
    fn a_withdrawn_task_goes_back_to_the_front_of_the_queue() {
        let mut s = Scheduler::new(1, Chunk::Fixed(2));
        run(&mut s, (1..=6).map(Event::Queued));
        let a = run(&mut s, [Event::WorkerReady(0)]);
        assert_eq!(dispatched(&a)[0], (0, vec![1, 2]));
        let a = run(
            &mut s,
            [
                Event::StopStarting,
                Event::Withdrawn {
                    worker: 0,
                    tasks: vec![3, 4, 5, 6],
                },
            ],
        );
        assert_eq!(a, vec![Action::Withdraw(0)]);
        assert_eq!(s.queued(), 4);
        assert_eq!(s.in_flight(), 2);
        let a = run(
            &mut s,
            [
                Event::TaskDone {
                    worker: 0,
                    id: 1,
                    wall_us: 5,
                },
                Event::TaskDone {
                    worker: 0,
                    id: 2,
                    wall_us: 5,
                },
            ],
        );
        assert_eq!(a, vec![Action::Finished]);
    }

    #[test]
    fn a_run_that_stops_does_not_wait_for_workers_still_starting() {
        let mut s = Scheduler::new(3, Chunk::Auto);
        run(&mut s, [Event::WorkerReady(0), Event::Queued(1)]);
        let a = run(&mut s, [Event::StopStarting]);
        assert!(a.is_empty(), "task 1 runs: {a:?}");
        let a = run(
            &mut s,
            [Event::TaskDone {
                worker: 0,
                id: 1,
                wall_us: 5,
            }],
        );
        assert_eq!(
            a,
            vec![Action::Finished],
            "workers 1 and 2 never said hello"
        );
    }
}
