//! The supervisor: the one event loop of a run.
//!
//! Everything the loop reacts to arrives in one inbox ([`Msg`]): worker hellos, replies and
//! deaths, and signals. Input records arrive on a bounded side channel that the loop reads only
//! while the scheduler wants more tasks, so a huge input never floods memory. Timers (retry
//! delays, termination sequences, resource gates) live in one ordered set. The loop blocks in a
//! single `select` on the inbox, the input and the earliest deadline; it never polls.
//!
//! Each event goes to the pure [`Scheduler`], and the loop carries out the actions it returns.
//! The modules beside this one hold the rest: `feed` turns input into dispatched tasks,
//! `finish` settles each attempt (retry, job log, output, halt), `stop` handles interrupts
//! and termination, `timers` keeps the deadlines.

mod feed;
mod finish;
mod listing;
mod stop;
mod table;
mod timers;
mod transfer;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use troop_worker::protocol::{FromWorker, ToWorker, WorkerConfig};

use crate::config::{Mode, OutputMode, Resume, RunConfig, StartMethod};
use crate::error::RunError;
use crate::exit::Exit;
use crate::inbox::Msg;
use crate::input::{InputError, Record};
use crate::joblog::{DoneSet, JobLog};
use crate::observe::{Control, Controls, Observer, RunEvent, Summary};
use crate::output::Output;
use crate::policy::{RunningMedian, Tally};
use crate::pool::{
    Launcher, Pool, PoolError, StartFailure, fork::ForkServer, reaper::Reaper, spawn::Spawner,
};
use crate::run_io::RunIo;
use crate::rundir::RunDir;
use crate::scheduler::{Action, Event, Scheduler, TaskId};
use table::Table;
use timers::{Timer, Timers};

/// How long a worker may take from start to hello.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
/// How many times in a row a slot's worker may be started again after a peer that is not the
/// worker took its bootstrap connection.
const MAX_REFUSALS: u32 = 3;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    /// Read, waiting for a worker.
    Queued,
    /// Sent to a worker, not known to have started.
    Sent { worker: u32 },
    /// Running on a worker; a command has a process group, a kernel has none.
    Running { worker: u32, pgid: Option<i32> },
    /// Failed, waiting out its retry delay.
    RetryWait,
}

/// A task the supervisor knows about.
#[derive(Debug)]
struct Task {
    record: Record,
    /// The block the command reads (`--pipe`), kept until the task is settled so that a retry
    /// reads it again.
    block: Option<crate::input::pipe::Block>,
    state: TaskState,
    /// Attempts started so far.
    attempts: u32,
    /// The command line as the job log records it (only kept when a job log is written).
    command: Option<Vec<u8>>,
    /// When the current attempt started, in µs since the Unix epoch: when it was sent to its
    /// worker, then when the worker announced it (0 before it is sent).
    started_us: u64,
    /// The timeout the current attempt was sent with.
    timeout: Option<Duration>,
    /// When the current attempt started, as far as the supervisor knows.
    since: Option<Instant>,
    /// The supervisor stopped the current attempt because it overran its timeout.
    timed_out: bool,
    /// The timer that guards the current attempt's timeout, while armed.
    overdue: Option<timers::TimerKey>,
}

impl Task {
    /// The command line as the job log shows it: the one kept when the task was sent, or
    /// rendered now (`id` is `{#}`, `worker` the slot from 0).
    fn command_line(
        &self,
        template: &crate::input::Template,
        id: TaskId,
        worker: u32,
    ) -> std::borrow::Cow<'_, [u8]> {
        match &self.command {
            Some(command) => std::borrow::Cow::Borrowed(command),
            None => std::borrow::Cow::Owned(crate::input::Template::display(&template.render(
                &self.record,
                id,
                worker + 1,
            ))),
        }
    }
}

/// Why the run is stopping early, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    No,
    /// Interrupted by the user: this many times so far (1–3).
    Interrupted(u8),
    /// `--halt` fired; the exit status it decided.
    Halted(Exit),
    /// Whoever read stdout went away.
    BrokenPipe,
    /// The user asked from the dashboard to finish the running tasks and start no more; the
    /// run ends as the tasks that ran decide.
    Drained,
}

/// Runs a whole batch as `config` says, reading input from and writing output to `io`.
pub fn run(
    config: &RunConfig,
    io: RunIo,
    observer: &mut dyn Observer,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let cpu_before = crate::observe::cpu_time_us();
    if config.dry_run {
        return feed::dry_run(config, io, started);
    }
    // Everything that can be refused is checked before the first task starts. The job logs are
    // locked first, so that no other run reads or writes them while this one does.
    let _joblog_lock = crate::joblog::LogLock::acquire(crate::joblog::lock::paths(
        config.joblog.as_ref(),
        config.joblog_json.as_ref(),
    ))?;
    // Everything that can be refused is checked before the first task starts.
    feed::check_gate_limits(&config.limits)?;
    let done = match (config.resume, &config.joblog) {
        (Resume::No, _) => None,
        (_, Some(path)) => Some(crate::joblog::read_done(path, &|cmd| {
            config.template.resume_key(cmd)
        })?),
        (_, None) => {
            return Err(RunError::Usage(
                "--resume and --resume-failed need --joblog FILE".into(),
            ));
        }
    };
    let joblog = match (&config.joblog, &config.joblog_json) {
        (None, None) => None,
        (tsv, json) => Some(JobLog::create(
            tsv.as_deref(),
            json.as_deref(),
            config.resume != Resume::No,
        )?),
    };
    let keeper = match &config.keep {
        Some(spec) => Some(
            crate::results::Keeper::open(
                spec,
                config.input.framing.header.clone(),
                config.keep_order,
            )
            .map_err(RunError::Usage)?,
        ),
        None => None,
    };
    let jobs = worker_count(config)?;
    if let Some(dir) = &config.tmpdir {
        // Commands see the directory as their TMPDIR, as with GNU parallel's --tmpdir.
        // SAFETY: the run has started no thread yet; nothing reads the environment meanwhile.
        unsafe { std::env::set_var("TMPDIR", dir) };
    }
    // Forking comes first, while this process is still single-threaded.
    let token = feed::new_token()?;
    let launcher = match (config.mode, config.start) {
        (Mode::Thread, _) => Launcher::Thread,
        (Mode::Gil, _) => Launcher::Gil(config.switch_interval),
        (Mode::Async, _) => Launcher::Async(None),
        (Mode::Process, StartMethod::Fork) if config.remote.is_none() => {
            Launcher::Fork(ForkServer::prefork(jobs, &token)?)
        }
        (Mode::Process, _) => Launcher::Spawn(Spawner::new(config.worker_exe.clone())?),
    };
    // Whatever a task leaves running, and commands orphaned by a crashed worker, come to troop,
    // which kills them when the run ends.
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let tmpdir = config.tmpdir.clone().unwrap_or_else(std::env::temp_dir);
    let rundir = RunDir::create_in(&tmpdir, &token).map_err(|e| {
        RunError::Usage(format!(
            "cannot create a private directory in {}: {e}",
            tmpdir.display()
        ))
    })?;
    let (inbox_tx, inbox) = crossbeam_channel::unbounded();
    let launcher = match (launcher, &config.remote) {
        (Launcher::Spawn(_), _) if config.slurm.is_some() => {
            let spec = config.slurm.clone().expect("checked");
            Launcher::Slurm(Box::new(crate::pool::slurm::Slurm::new(
                spec,
                inbox_tx.clone(),
            )?))
        }
        (Launcher::Spawn(local), Some(spec)) => Launcher::Remote {
            remote: Box::new(crate::pool::remote::Remote::new(
                spec.clone(),
                rundir.path(),
            )),
            local,
        },
        (launcher, _) => launcher,
    };
    // In-process commands have no worker process to die with troop: a reaper outlives troop.
    let reaper = match config.mode {
        Mode::Process => None,
        Mode::Thread | Mode::Gil | Mode::Async => Some(Reaper::start(rundir.path())?),
    };
    let signals = crate::signals::watch(inbox_tx.clone())?;
    let worker_config = WorkerConfig {
        shell: config.shell.clone(),
        line_buffer: config.output != OutputMode::Group,
        term_seq: config.term_seq.clone(),
        spill_dir: Some(rundir.path().to_string_lossy().into_owned()),
        spill_threshold: config.spill_threshold,
        memory_limit: config.limits.memory_limit,
        nice: config.limits.nice,
        announce_after_ms: announce_after_ms(),
        die_with_parent: config.mode != Mode::Process,
        ..WorkerConfig::default()
    };
    observer.attach(Controls(inbox_tx.clone()));
    let pool = Pool::new(launcher, jobs, inbox_tx, token, worker_config);
    let input = match feed::spawn_input(config, io.stdin, rundir.path(), jobs) {
        Ok(input) => input,
        Err(e) => {
            signals.close();
            pool.shutdown();
            return Err(e);
        }
    };
    let mut sup = Supervisor {
        config,
        jobs,
        max_jobs: crate::pool::budget::budget(config.mode != Mode::Process)
            .map_or(crate::jobs::MAX_WORKERS, |b| b.workers.max(jobs)),
        // With `--halt`, any task's outcome may stop the run: none may wait behind another.
        sched: Scheduler::new(jobs, config.chunk)
            // --roundrobin's tasks read until the input ends: all must run at once.
            .lockstep(config.halt.is_some() || config.pipe.as_ref().is_some_and(|p| p.roundrobin))
            .blocks(config.pipe.is_some())
            .paced(config.sched.delay.is_some()),
        pool,
        output: Output::new(io.stdout, io.stderr, config.keep_order)
            .hold_in(rundir.path().to_path_buf())
            .coloured(config.color),
        tasks: Table::default(),
        next_id: 1,
        unstarted: 0..jobs as u32,
        starting: BTreeMap::new(),
        timers: Timers::default(),
        joblog,
        keeper,
        done,
        median: RunningMedian::new(),
        tally: Tally {
            done: 0,
            succeeded: 0,
            failed: 0,
            total: None,
        },
        skipped: 0,
        stopping: Stopping::No,
        input_error: None,
        announced: false,
        observer: &mut *observer,
        finished: false,
        lost_worker: None,
        timed_out_workers: HashSet::new(),
        running_since: BTreeSet::new(),
        percent_check: None,
        last_gate_check: None,
        gate_said: false,
        start_failures: Vec::new(),
        reaper_pid: reaper.as_ref().map(Reaper::pid),
        refusals: BTreeMap::new(),
        bad_peers: 0,
        paused: false,
        halted_at_us: None,
        held_for_total: config.template.needs_total().then(Vec::new),
    };
    sup.observer.event(&RunEvent::RunStarted {
        mode: config.mode,
        workers: jobs,
        total: None,
    });
    let result = sup.run_loop(&inbox, &input);
    signals.close();
    let summary = sup.settle(result, started, cpu_before);
    if let Ok(summary) = &summary {
        observer.event(&RunEvent::RunFinished { summary });
    }
    observer.flush();
    // No task runs now: what the tasks left running ends with the run, in every mode.
    crate::pool::reaper::sweep_leftovers(reaper.as_ref().map(Reaper::pid));
    if let Some(reaper) = reaper {
        reaper.finish();
    }
    summary
}

/// The number of workers: `-j`, capped to what the file-handle limit allows, with one warning,
/// as GNU parallel does.
fn worker_count(config: &RunConfig) -> Result<usize, RunError> {
    let Some(budget) = crate::pool::budget::budget(config.mode != Mode::Process) else {
        return Ok(config.jobs);
    };
    if budget.workers >= config.jobs {
        return Ok(config.jobs);
    }
    if budget.workers == 0 {
        return Err(RunError::Pool(PoolError::NoFileHandles {
            limit: budget.limit,
        }));
    }
    troop_worker::process::eprint_line(&format!(
        "troop: warning: only enough file handles to run {} workers in parallel (ulimit -n is {}); running {} instead of {}. To run more, raise the limit (try: ulimit -n `ulimit -Hn`)",
        budget.workers, budget.limit, budget.workers, config.jobs
    ));
    Ok(budget.workers)
}

/// How long a command runs before its worker announces its process group: 2 ms, or
/// `TROOP_ANNOUNCE_AFTER_MS` (for tests of what happens before the announcement).
fn announce_after_ms() -> u64 {
    std::env::var("TROOP_ANNOUNCE_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(WorkerConfig::default().announce_after_ms)
}

struct Supervisor<'a> {
    config: &'a RunConfig,
    /// Workers in the pool: `-j`, or fewer where the file-handle limit says so.
    jobs: usize,
    /// The most workers the file-handle limit allows (`-j FILE` grows the pool up to it).
    max_jobs: usize,
    sched: Scheduler,
    pool: Pool,
    output: Output,
    tasks: Table<Task>,
    next_id: TaskId,
    /// Worker slots not started yet.
    unstarted: std::ops::Range<u32>,
    /// Workers being started, with their deadlines.
    starting: BTreeMap<u32, Instant>,
    timers: Timers,
    joblog: Option<JobLog>,
    /// Where output is kept instead of printed: `--files`, `--results`.
    keeper: Option<crate::results::Keeper>,
    /// Tasks an earlier run recorded, with `--resume`.
    done: Option<DoneSet>,
    /// Run times of successful tasks, for `--timeout N%`.
    median: RunningMedian,
    tally: Tally,
    /// Tasks skipped because the job log records them.
    skipped: u64,
    stopping: Stopping,
    input_error: Option<InputError>,
    announced: bool,
    observer: &'a mut dyn Observer,
    finished: bool,
    /// The last worker that died: slot, pid and killing signal, for the lost task's record.
    lost_worker: Option<(u32, Option<u32>, Option<i32>)>,
    /// Workers killed because the task they ran overran its timeout.
    timed_out_workers: HashSet<u32>,
    /// With `--timeout N%`: running tasks by start time, for the re-check each time the median
    /// changes (entries of tasks that have ended are dropped as they are met).
    running_since: BTreeSet<(Instant, TaskId)>,
    /// When the percentage timeouts are looked at next, if a look is armed.
    percent_check: Option<Instant>,
    last_gate_check: Option<Instant>,
    /// What the resource gates wait for was said.
    gate_said: bool,
    /// Why workers could not start, while no worker is up to carry on without them.
    start_failures: Vec<String>,
    /// The reaper of an in-process run, which no kill of troop's children may touch.
    reaper_pid: Option<u32>,
    /// Bootstrap connections refused in a row, by slot.
    refusals: BTreeMap<u32, u32>,
    /// The user paused the run from the dashboard.
    paused: bool,
    /// When the task that made `--halt now` stop the run ended (µs since the Unix epoch).
    halted_at_us: Option<u64>,
    /// With `{##}`: the input read so far, held until it ends and the number of tasks is known.
    held_for_total: Option<Vec<(crate::input::Record, Option<crate::input::pipe::Block>)>>,
    /// Peers refused on a bootstrap socket in this run.
    bad_peers: u32,
}

impl Supervisor<'_> {
    fn run_loop(
        &mut self,
        inbox: &Receiver<Msg>,
        input: &Receiver<feed::InputChunk>,
    ) -> Result<(), RunError> {
        let never_input = crossbeam_channel::never();
        let mut input_open = true;
        let mut actions = Vec::new();
        while !self.finished {
            // Workers start one at a time between events, so that a signal is heard at once
            // even while a large pool is starting; a run that stops starts no more.
            if let Some(w) = self.unstarted.next() {
                if self.pool.is_retired(w) {
                    // The pool shrank (`-j FILE`) before this slot started.
                    continue;
                }
                if self.stopping == Stopping::No {
                    self.start_worker(w, &mut actions)?;
                    if self.unstarted.is_empty() && self.pool.live() == 0 {
                        let reason = self.start_failures.first().cloned().unwrap_or_default();
                        return Err(RunError::Pool(PoolError::NoWorker { reason }));
                    }
                    self.apply(&mut actions)?;
                    if inbox.is_empty() {
                        continue;
                    }
                } else {
                    self.unstarted = 0..0;
                }
            }
            let input_rx = if input_open && self.sched.wants_input() {
                input
            } else {
                &never_input
            };
            let deadline = [self.starting.values().min().copied(), self.timers.next()]
                .into_iter()
                .flatten()
                .min();
            let deadline = deadline.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
            if inbox.is_empty() {
                self.write_output(|o| o.flush())?;
                self.observer.flush();
            }
            select! {
                recv(inbox) -> msg => {
                    let msg = msg.expect("the pool holds a sender");
                    self.on_msg(msg, &mut actions)?;
                }
                recv(input_rx) -> chunk => match chunk {
                    Ok(Ok(records)) => self.queue(records, &mut actions),
                    Ok(Err(e)) => {
                        self.input_error = Some(e);
                        input_open = false;
                        self.input_ended(&mut actions);
                    }
                    Err(_) => {
                        input_open = false;
                        self.input_ended(&mut actions);
                    }
                },
                recv(deadline) -> _ => self.on_deadline(&mut actions, !inbox.is_empty())?,
            }
            if self.stopping != Stopping::No && !self.starting.is_empty() {
                self.abandon_starting(&mut actions);
            }
            self.apply(&mut actions)?;
        }
        Ok(())
    }

    /// Does what an observer (the dashboard) asks.
    fn on_control(&mut self, control: Control, actions: &mut Vec<Action>) {
        match control {
            Control::Workers(n) => {
                let n = n.clamp(1, self.max_jobs);
                if n != self.jobs && self.stopping == Stopping::No {
                    self.jobs = n;
                    self.sched.apply(Event::Resize(n), actions);
                    self.sched.fill(actions);
                }
            }
            Control::Pause(on) => self.hold_for_user(on, actions),
            Control::Kill(id) => self.kill_task(id),
            Control::Stop => self.drain(actions),
        }
    }

    /// Stops worker `w`, which holds no task, for good: the pool shrank.
    fn retire_worker(&mut self, w: u32) {
        if self.starting.remove(&w).is_none() {
            let _ = self.pool.send(w, ToWorker::Shutdown);
            self.observer.event(&RunEvent::WorkerExited {
                slot: w,
                pid: self.pool.pid(w),
                signal: None,
                lost: false,
            });
        }
        self.pool.retire(w);
    }

    /// With `-j FILE`: reads the number of workers again, as GNU parallel does each time a task
    /// ends, and grows or shrinks the pool to it. A file that cannot be read or holds no number
    /// leaves the pool as it is.
    fn reread_jobs(&mut self, actions: &mut Vec<Action>) {
        let Some(path) = &self.config.sched.jobs_file else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let Ok(n) = crate::jobs::parse_jobs(text.trim(), crate::jobs::usable_cores()) else {
            return;
        };
        let n = n.min(self.max_jobs);
        if n != self.jobs && self.stopping == Stopping::No {
            self.jobs = n;
            self.sched.apply(Event::Resize(n), actions);
        }
    }

    fn input_ended(&mut self, actions: &mut Vec<Action>) {
        if let Some(held) = self.held_for_total.take() {
            self.config.template.set_total(held.len() as u64);
            self.queue(held, actions);
        }
        let total = self.next_id - 1 - self.skipped;
        self.tally.total = Some(total);
        self.observer.event(&RunEvent::InputEnded { total });
        self.sched.handle(Event::InputEnded, actions);
    }

    fn start_worker(&mut self, w: u32, actions: &mut Vec<Action>) -> Result<(), RunError> {
        self.pool.grow(w as usize + 1);
        match self.pool.start(w) {
            Ok(()) => {
                self.starting.insert(w, Instant::now() + START_DEADLINE);
                Ok(())
            }
            Err(e) => self.start_failed(w, e.to_string(), actions),
        }
    }

    /// Gives up on slot `w`, whose worker could not start. The run goes on with the other
    /// workers, with a warning; when none is left, it fails with `reason`.
    fn start_failed(
        &mut self,
        w: u32,
        reason: String,
        actions: &mut Vec<Action>,
    ) -> Result<(), RunError> {
        self.starting.remove(&w);
        self.refusals.remove(&w);
        self.pool.retire(w);
        self.sched.handle(Event::WorkerRetired(w), actions);
        if self.pool.live() == 0 && self.unstarted.is_empty() {
            let first = self.start_failures.first().cloned().unwrap_or(reason);
            return Err(RunError::Pool(PoolError::NoWorker { reason: first }));
        }
        self.start_failures.push(reason);
        if self.pool.up_count() > 0 {
            self.warn_unstarted();
        }
        Ok(())
    }

    /// Says which workers could not start, once some worker is up to carry on without them.
    fn warn_unstarted(&mut self) {
        let live = self.pool.live();
        for reason in std::mem::take(&mut self.start_failures) {
            troop_worker::process::eprint_line(&format!(
                "troop: warning: {reason}; going on with {live} of {} workers",
                self.jobs
            ));
        }
    }

    /// Stops starting workers once the run is stopping: they would get no task.
    fn abandon_starting(&mut self, actions: &mut Vec<Action>) {
        let starting: Vec<u32> = self.starting.keys().copied().collect();
        for w in starting {
            self.starting.remove(&w);
            self.pool.retire(w);
            self.sched.apply(Event::WorkerRetired(w), actions);
        }
        self.sched.fill(actions);
    }

    /// A worker's start failed as its reader reports (spawned workers).
    fn on_start_failure(
        &mut self,
        w: u32,
        failure: StartFailure,
        actions: &mut Vec<Action>,
    ) -> Result<(), RunError> {
        match failure {
            StartFailure::Version { theirs } => Err(RunError::Pool(PoolError::Version {
                worker: w + 1,
                theirs,
                ours: troop_worker::protocol::PROTOCOL_VERSION,
            })),
            StartFailure::Ended(how) => {
                self.pool.reap_failed(w);
                let reason = format!(
                    "cannot start worker w{}: it {how} before it said hello",
                    w + 1
                );
                self.start_failed(w, reason, actions)
            }
            StartFailure::BadPeer(what) => {
                self.bad_peers += 1;
                self.pool.reap_failed(w);
                let refusals = self.refusals.entry(w).or_default();
                *refusals += 1;
                let again = *refusals < MAX_REFUSALS;
                troop_worker::process::eprint_line(&format!(
                    "troop: warning: refused a connection to the bootstrap socket of worker w{}: {what} ({} refused in this run){}",
                    w + 1,
                    self.bad_peers,
                    if again {
                        "; starting the worker again"
                    } else {
                        ""
                    }
                ));
                if again {
                    self.starting.remove(&w);
                    self.start_worker(w, actions)
                } else {
                    let reason = format!(
                        "cannot start worker w{}: {MAX_REFUSALS} other peers took its bootstrap connection",
                        w + 1
                    );
                    self.start_failed(w, reason, actions)
                }
            }
        }
    }

    /// Acts on the timers due; `inbox_pending` says that messages wait in the inbox.
    fn on_deadline(
        &mut self,
        actions: &mut Vec<Action>,
        inbox_pending: bool,
    ) -> Result<(), RunError> {
        let now = Instant::now();
        let late: Vec<u32> = self
            .starting
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(&w, _)| w)
            .collect();
        for w in late {
            let reason = format!(
                "worker w{} did not start within {} s",
                w + 1,
                START_DEADLINE.as_secs()
            );
            self.start_failed(w, reason, actions)?;
        }
        for timer in self.timers.due(now) {
            match timer {
                Timer::Retry(id) => {
                    if let Some(task) = self.tasks.get_mut(id) {
                        task.state = TaskState::Queued;
                        self.sched.apply(Event::Requeue(id), actions);
                    }
                }
                Timer::Term { pgid, step } => self.term_step(pgid, step),
                Timer::Overdue { id, attempt } => self.overdue(id, attempt, inbox_pending),
                Timer::PercentCheck => self.check_percent_timeouts(),
                Timer::Stragglers => self.kill_stragglers(),
                Timer::Gate => self.check_gates(actions),
                Timer::Pace => self.sched.apply(Event::PaceElapsed, actions),
                Timer::Sweep => {
                    self.pool.sweep_orphans();
                }
            }
        }
        self.sched.fill(actions);
        Ok(())
    }

    fn on_msg(&mut self, msg: Msg, actions: &mut Vec<Action>) -> Result<(), RunError> {
        match msg {
            Msg::WorkerUp { index, .. }
            | Msg::WorkerFailed { index, .. }
            | Msg::Worker(index, _)
            | Msg::WorkerGone(index)
                if self.pool.is_retired(index) => {}
            Msg::WorkerUp { index, hello, link } => {
                self.starting.remove(&index);
                self.refusals.remove(&index);
                self.pool.up(index, &hello, link)?;
                let host = self.pool.host(index).into_owned();
                self.observer.event(&RunEvent::WorkerStarted {
                    slot: index,
                    pid: hello.pid,
                    host: &host,
                });
                self.warn_unstarted();
                if self.starting.is_empty() && self.unstarted.is_empty() && !self.announced {
                    self.announced = true;
                    self.observer.pool_up(self.config.mode, &self.pool.pids());
                }
                self.sched.handle(Event::WorkerReady(index), actions);
            }
            Msg::WorkerFailed { index, failure } => {
                self.on_start_failure(index, failure, actions)?;
            }
            Msg::Worker(index, FromWorker::Done(reports)) => {
                for report in reports {
                    let (id, wall_us) = (report.id, report.usage.wall_us);
                    // A task that ran behind another in a batch started unseen: it is
                    // reported now, so that every task has its start.
                    if self.tasks.get(id).is_some_and(|t| t.since.is_none()) {
                        self.tell_started(id);
                    }
                    self.sched.apply(
                        Event::TaskDone {
                            worker: index,
                            id,
                            wall_us,
                        },
                        actions,
                    );
                    self.settle_attempt(index, report, actions)?;
                    if self.tally.done % crate::pool::reaper::REAP_EVERY == 0 {
                        crate::pool::reaper::reap_exited_leftovers();
                    }
                }
                // The worker went on with the next task it holds.
                if let Some(next) = self.sched.head(index) {
                    self.mark_started(next);
                }
                self.reread_jobs(actions);
                self.sched.fill(actions);
            }
            Msg::Worker(index, FromWorker::Started { id, pgid }) => self.started(index, id, pgid),
            Msg::Worker(_, FromWorker::Output { id, stream, bytes }) => {
                let tag = self.tag(id);
                self.write_output(|o| o.lines(id, tag.as_deref(), stream, &bytes))?;
            }
            Msg::Worker(index, FromWorker::Withdrawn(ids)) => {
                for &id in &ids {
                    if let Some(task) = self.tasks.get_mut(id) {
                        task.state = TaskState::Queued;
                        task.attempts = task.attempts.saturating_sub(1);
                    }
                }
                let event = Event::Withdrawn {
                    worker: index,
                    tasks: ids,
                };
                self.sched.handle(event, actions);
            }
            Msg::Worker(_, FromWorker::Hello(_)) => {}
            Msg::WorkerGone(index) => self.worker_gone(index, actions)?,
            Msg::Signal(sig) => self.on_signal(sig, actions),
            Msg::Control(control) => self.on_control(control, actions),
        }
        Ok(())
    }

    fn started(&mut self, worker: u32, id: TaskId, pgid: i32) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        let pgid = (pgid > 0).then_some(pgid);
        task.state = TaskState::Running { worker, pgid };
        if let Some(pgid) = pgid {
            self.observer.event(&RunEvent::TaskRunning {
                seq: id,
                slot: worker,
                pgid,
            });
        }
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        task.started_us = finish::unix_now_us();
        let since = task.since;
        match since {
            None => self.mark_started(id),
            // Known to have started before it said so: a percentage timeout looks at it again,
            // now that it can be stopped.
            Some(since) => self.recheck_started(id, since),
        }
        if let Some(g) = pgid
            && self.terminating()
        {
            self.term_step(g, 0)
        } else if let Some(g) = pgid
            && self.paused
        {
            // It started just before the pause: it pauses too.
            // SAFETY: killpg has no memory effects.
            unsafe { libc::killpg(g, libc::SIGSTOP) };
        }
    }

    fn worker_gone(&mut self, index: u32, actions: &mut Vec<Action>) -> Result<(), RunError> {
        if self.starting.contains_key(&index) {
            let how = self.pool.reap_failed(index);
            let reason = format!(
                "cannot start worker w{}: it {} before it said hello",
                index + 1,
                how.as_deref().unwrap_or("ended")
            );
            return self.start_failed(index, reason, actions);
        }
        // The task it was running was stopped for overrunning its timeout, by killing it.
        let timed_out = self
            .sched
            .head(index)
            .and_then(|id| self.tasks.get(id))
            .is_some_and(|t| t.timed_out);
        if timed_out {
            self.timed_out_workers.insert(index);
        } else {
            self.timed_out_workers.remove(&index);
        }
        let pid = self.pool.pid(index);
        let signal = self.pool.lost(index);
        self.lost_worker = Some((index, pid, signal));
        self.observer.event(&RunEvent::WorkerExited {
            slot: index,
            pid,
            signal,
            lost: true,
        });
        // A command the worker had not announced yet is reparented to troop: sweep it soon.
        self.timers
            .add(Instant::now() + Duration::from_millis(50), Timer::Sweep);
        self.sched.handle(Event::WorkerLost(index), actions);
        Ok(())
    }

    fn apply(&mut self, actions: &mut Vec<Action>) -> Result<(), RunError> {
        let mut i = 0;
        while i < actions.len() {
            match std::mem::replace(&mut actions[i], Action::Finished) {
                Action::Dispatch { worker, tasks } => self.dispatch(worker, tasks, actions)?,
                Action::Lost(id) => self.lose(id, actions)?,
                Action::StartWorker(w) => self.start_worker(w, actions)?,
                Action::Withdraw(w) => {
                    // A worker that is gone gives its tasks back through its death.
                    let _ = self.pool.send(w, ToWorker::Withdraw);
                }
                Action::RetireWorker(w) => self.retire_worker(w),
                Action::Pace => {
                    if let Some(delay) = self.config.sched.delay {
                        self.timers.add(Instant::now() + delay, Timer::Pace);
                    }
                }
                Action::Finished => self.finished = true,
            }
            i += 1;
        }
        actions.clear();
        Ok(())
    }

    /// Shuts the pool down and turns the loop's result into a summary.
    fn settle(
        self,
        result: Result<(), RunError>,
        started: Instant,
        cpu_before: u64,
    ) -> Result<Summary, RunError> {
        let Supervisor {
            pool,
            mut output,
            tally,
            stopping,
            input_error,
            sched,
            skipped,
            ..
        } = self;
        let pids = pool.pids();
        // Workers must not wait for room for their lines while they are told to stop.
        output.stop_reading();
        if let Err(e) = result {
            pool.kill_all();
            pool.shutdown();
            let _ = output.close();
            return Err(e);
        }
        for (slot, pid) in pool.slot_pids() {
            self.observer.event(&RunEvent::WorkerExited {
                slot,
                pid: Some(pid),
                signal: None,
                lost: false,
            });
        }
        pool.shutdown();
        let close = output.close();
        if let Some(e) = input_error {
            return Err(RunError::Input(e));
        }
        let broken = stopping == Stopping::BrokenPipe
            || close
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
        let exit = match stopping {
            _ if broken => Exit::BrokenPipe,
            Stopping::Interrupted(_) => Exit::Interrupted,
            Stopping::Halted(exit) => exit,
            _ => {
                close.map_err(RunError::Output)?;
                match &self.config.halt {
                    Some(halt) => halt.exit_at_end(&tally),
                    None => Exit::from_failures(tally.failed),
                }
            }
        };
        Ok(Summary {
            total: tally.done,
            failed: tally.failed,
            not_started: sched.queued() as u64,
            skipped,
            exit,
            wall: started.elapsed(),
            cpu_us: crate::observe::cpu_time_us().saturating_sub(cpu_before),
            workers: self.jobs,
            worker_pids: pids,
        })
    }
}
