//! The supervisor: the one event loop of a run.
//!
//! Everything the loop reacts to arrives in one inbox ([`Msg`]): worker hellos, replies and
//! deaths, and signals. Input records arrive on a bounded side channel that the loop reads only
//! while the scheduler wants more tasks, so a huge input never floods memory. Each event goes to
//! the pure [`Scheduler`], and the loop carries out the actions it returns: send a batch, record a
//! lost task, start a replacement worker, finish. The loop never polls: it blocks in one `select`
//! on the inbox, the input and the earliest worker start-up deadline.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use troop_worker::kernel::Kernel;
use troop_worker::protocol::{Captured, FromWorker, Job, Outcome, TaskReport, TaskSpec, ToWorker, Usage, WorkerConfig};

use crate::config::{Mode, OutputMode, RunConfig, StartMethod};
use crate::error::RunError;
use crate::exit::Exit;
use crate::inbox::Msg;
use crate::input::{self, InputError, Record, Rendered, Template};
use crate::observe::{Observer, Summary};
use crate::output::{Output, Piece};
use crate::pool::{Launcher, Pool, fork::ForkServer, spawn::Spawner};
use crate::run_io::RunIo;
use crate::scheduler::{Action, Event, Scheduler, TaskId};

/// How long a worker may take from start to hello.
pub const START_DEADLINE: Duration = Duration::from_secs(10);
/// Records per message from the input thread.
const INPUT_CHUNK: usize = 1024;

/// A task the supervisor knows about.
#[derive(Debug)]
struct Task {
    record: Record,
    worker: Option<u32>,
    pgid: Option<i32>,
}

type InputChunk = Result<Vec<Record>, InputError>;

/// Runs a whole batch as `config` says, reading input from and writing output to `io`.
pub fn run(config: &RunConfig, io: RunIo, observer: &mut dyn Observer) -> Result<Summary, RunError> {
    let started = Instant::now();
    let cpu_before = crate::observe::cpu_time_us();
    if config.dry_run {
        return dry_run(config, io, started);
    }
    // Forking comes first, while this process is still single-threaded.
    let token = new_token();
    let launcher = match (config.mode, config.start) {
        (Mode::Thread, _) => Launcher::Thread,
        (Mode::Gil, _) => Launcher::Gil(config.switch_interval),
        (Mode::Async, _) => Launcher::Async(None),
        (Mode::Process, StartMethod::Fork) => Launcher::Fork(ForkServer::prefork(config.jobs, &token)?),
        (Mode::Process, StartMethod::Spawn) => Launcher::Spawn(Spawner::new(config.worker_exe.clone())?),
    };
    let (inbox_tx, inbox) = crossbeam_channel::unbounded();
    let signals = crate::signals::watch(inbox_tx.clone())?;
    let worker_config = WorkerConfig {
        shell: config.shell.clone(),
        line_buffer: config.output == OutputMode::LineBuffer,
        ..WorkerConfig::default()
    };
    let pool = Pool::new(launcher, config.jobs, inbox_tx.clone(), token, worker_config);
    let input_rx = spawn_input(config, io.stdin);
    let mut sup = Supervisor {
        config,
        sched: Scheduler::new(config.jobs, config.chunk),
        pool,
        output: Output::new(io.stdout, io.stderr, config.keep_order),
        tasks: HashMap::new(),
        next_id: 1,
        starting: BTreeMap::new(),
        counts: Counts::default(),
        interrupts: 0,
        input_error: None,
        announced: false,
        observer,
        finished: false,
        broken_pipe: false,
        lost_worker: None,
    };
    drop(inbox_tx);
    let result = sup.run_loop(&inbox, &input_rx);
    signals.close();
    let Supervisor {
        pool,
        mut output,
        counts,
        interrupts,
        input_error,
        broken_pipe,
        sched,
        ..
    } = sup;
    let pids = pool.pids();
    match result {
        Ok(()) => pool.shutdown(),
        Err(e) => {
            pool.kill_all();
            pool.shutdown();
            let _ = output.close();
            return Err(e);
        }
    }
    let close = output.close();
    if let Some(e) = input_error {
        return Err(RunError::Input(e));
    }
    let exit = if broken_pipe || close.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        Exit::BrokenPipe
    } else if interrupts > 0 {
        Exit::Interrupted
    } else {
        close.map_err(RunError::Output)?;
        Exit::from_failures(counts.failed)
    };
    Ok(Summary {
        total: counts.done,
        failed: counts.failed,
        not_started: sched.queued() as u64,
        exit,
        wall: started.elapsed(),
        cpu_us: crate::observe::cpu_time_us().saturating_sub(cpu_before),
        workers: config.jobs,
        worker_pids: pids,
    })
}

#[derive(Debug, Default)]
struct Counts {
    done: u64,
    failed: u64,
}

struct Supervisor<'a> {
    config: &'a RunConfig,
    sched: Scheduler,
    pool: Pool,
    output: Output,
    tasks: HashMap<TaskId, Task>,
    next_id: TaskId,
    /// Workers being started, with their deadlines.
    starting: BTreeMap<u32, Instant>,
    counts: Counts,
    interrupts: u8,
    input_error: Option<InputError>,
    announced: bool,
    observer: &'a mut dyn Observer,
    finished: bool,
    broken_pipe: bool,
    /// The last worker that died: slot, pid and killing signal, for the lost task's record.
    lost_worker: Option<(u32, Option<u32>, Option<i32>)>,
}

impl Supervisor<'_> {
    fn run_loop(&mut self, inbox: &Receiver<Msg>, input: &Receiver<InputChunk>) -> Result<(), RunError> {
        for w in 0..self.config.jobs as u32 {
            self.start_worker(w)?;
        }
        let never_input = crossbeam_channel::never();
        let mut input_open = true;
        let mut actions = Vec::new();
        while !self.finished {
            let input_rx = if input_open && self.sched.wants_input() { input } else { &never_input };
            let deadline = match self.starting.values().min() {
                Some(t) => crossbeam_channel::at(*t),
                None => crossbeam_channel::never(),
            };
            if inbox.is_empty() {
                self.output_result(|o| o.flush())?;
            }
            select! {
                recv(inbox) -> msg => {
                    let msg = msg.expect("the supervisor holds a sender");
                    self.on_msg(msg, &mut actions)?;
                }
                recv(input_rx) -> chunk => match chunk {
                    Ok(Ok(records)) => self.queue(records, &mut actions),
                    Ok(Err(e)) => {
                        self.input_error = Some(e);
                        input_open = false;
                        self.sched.handle(Event::InputEnded, &mut actions);
                    }
                    Err(_) => {
                        input_open = false;
                        self.sched.handle(Event::InputEnded, &mut actions);
                    }
                },
                recv(deadline) -> _ => {
                    let (&w, _) = self.starting.iter().min_by_key(|(_, t)| **t).expect("a deadline");
                    return Err(RunError::StartTimeout { worker: w + 1, secs: START_DEADLINE.as_secs() });
                }
            }
            self.apply(&mut actions)?;
        }
        Ok(())
    }

    fn start_worker(&mut self, w: u32) -> Result<(), RunError> {
        self.pool.start(w)?;
        self.starting.insert(w, Instant::now() + START_DEADLINE);
        Ok(())
    }

    fn queue(&mut self, records: Vec<Record>, actions: &mut Vec<Action>) {
        for record in records {
            let id = self.next_id;
            self.next_id += 1;
            self.tasks.insert(
                id,
                Task {
                    record,
                    worker: None,
                    pgid: None,
                },
            );
            self.sched.apply(Event::Queued(id), actions);
        }
        self.sched.fill(actions);
    }

    fn on_msg(&mut self, msg: Msg, actions: &mut Vec<Action>) -> Result<(), RunError> {
        match msg {
            Msg::WorkerUp { index, hello, link } => {
                self.starting.remove(&index);
                self.pool.up(index, &hello, link)?;
                if self.starting.is_empty() && !self.announced {
                    self.announced = true;
                    self.observer.pool_up(self.config.mode, &self.pool.pids());
                }
                self.sched.handle(Event::WorkerReady(index), actions);
            }
            Msg::WorkerFailed { index, error } => {
                return Err(RunError::Pool(crate::pool::PoolError::Start { worker: index + 1, reason: error }));
            }
            Msg::Worker(index, FromWorker::Done(reports)) => {
                for report in reports {
                    self.sched.apply(
                        Event::TaskDone {
                            worker: index,
                            id: report.id,
                            wall_us: report.usage.wall_us,
                        },
                        actions,
                    );
                    self.complete(report)?;
                }
                self.sched.fill(actions);
            }
            Msg::Worker(_, FromWorker::Started { id, pgid }) => {
                if let Some(t) = self.tasks.get_mut(&id) {
                    t.pgid = Some(pgid);
                    if self.interrupts >= 2 {
                        let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
                    }
                }
            }
            Msg::Worker(_, FromWorker::Output { id, stream, bytes }) => {
                let tag = self.tag(id);
                self.output_result(|o| o.lines(id, tag.as_deref(), stream, &bytes))?;
            }
            Msg::Worker(_, FromWorker::Hello(_)) => {}
            Msg::WorkerGone(index) => {
                if self.starting.remove(&index).is_some() {
                    return Err(RunError::Pool(crate::pool::PoolError::Start {
                        worker: index + 1,
                        reason: "it exited before saying hello".into(),
                    }));
                }
                let pid = self.pool.pid(index);
                let signal = self.pool.lost(index);
                self.lost_worker = Some((index, pid, signal));
                self.sched.handle(Event::WorkerLost(index), actions);
            }
            Msg::Signal(sig) => self.on_signal(sig, actions),
        }
        Ok(())
    }

    fn on_signal(&mut self, sig: i32, actions: &mut Vec<Action>) {
        let level = match sig {
            libc::SIGHUP => 1,
            libc::SIGTERM => 2.max(self.interrupts + 1),
            _ => self.interrupts + 1,
        };
        self.interrupts = level.min(3);
        let running = self.sched.in_flight();
        let waiting = self.sched.queued();
        let stderr = |msg: String| eprintln!("troop: {msg}");
        match self.interrupts {
            1 => stderr(format!(
                "interrupted: starting no new task; waiting for {running} running (Ctrl-C again to stop them); {waiting} not started"
            )),
            2 => {
                stderr(format!("stopping {running} running tasks (Ctrl-C again to kill everything now)"));
                self.terminate_running(Signal::SIGTERM);
            }
            _ => {
                stderr("killing every task and worker now".into());
                self.terminate_running(Signal::SIGKILL);
                self.pool.kill_all();
                self.finished = true;
            }
        }
        self.sched.handle(Event::StopStarting, actions);
    }

    /// Signals the process group of every running command; kills the worker of a running kernel.
    fn terminate_running(&mut self, signal: Signal) {
        for task in self.tasks.values() {
            match (task.worker, task.pgid) {
                (Some(_), Some(pgid)) => {
                    let _ = killpg(Pid::from_raw(pgid), signal);
                }
                (Some(w), None) if self.config.mode == Mode::Process => self.pool.kill(w),
                _ => {}
            }
        }
    }

    fn apply(&mut self, actions: &mut Vec<Action>) -> Result<(), RunError> {
        let mut i = 0;
        while i < actions.len() {
            match std::mem::replace(&mut actions[i], Action::Finished) {
                Action::Dispatch { worker, tasks } => self.dispatch(worker, tasks, actions)?,
                Action::Lost(id) => self.lose(id)?,
                Action::StartWorker(w) => self.start_worker(w)?,
                Action::Finished => self.finished = true,
            }
            i += 1;
        }
        actions.clear();
        Ok(())
    }

    fn dispatch(&mut self, worker: u32, ids: Vec<TaskId>, actions: &mut Vec<Action>) -> Result<(), RunError> {
        let mut specs = Vec::with_capacity(ids.len());
        let mut refused = Vec::new();
        for id in ids {
            let Some(task) = self.tasks.get_mut(&id) else { continue };
            task.worker = Some(worker);
            match job_for(self.config.template.render(&task.record, id, worker + 1)) {
                Ok(job) => specs.push(TaskSpec { id, job, timeout_ms: None }),
                Err(message) => refused.push((id, message)),
            }
        }
        if !specs.is_empty() && !self.pool.send(worker, ToWorker::Run(specs)) {
            // The worker is gone; its death is already on its way through the inbox.
        }
        for (id, message) in refused {
            self.sched.apply(Event::TaskDone { worker, id, wall_us: 0 }, actions);
            self.complete(TaskReport {
                id,
                stderr: format!("troop: task {id}: {message}\n").into_bytes().into(),
                outcome: Outcome::BadKernelArgs(message),
                stdout: Captured::EMPTY,
                usage: Usage::default(),
            })?;
            self.sched.fill(actions);
        }
        Ok(())
    }

    fn lose(&mut self, id: TaskId) -> Result<(), RunError> {
        let (index, pid, signal) = self.lost_worker.unwrap_or((0, None, None));
        if let Some(pgid) = self.tasks.get(&id).and_then(|t| t.pgid) {
            // The task's worker is gone; its command must not outlive it.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let how = match signal {
            Some(sig) => format!("was killed by signal {sig}"),
            None => "exited".into(),
        };
        let pid = pid.map_or(String::new(), |p| format!(" (pid {p})"));
        self.complete(TaskReport {
            id,
            outcome: Outcome::WorkerLost { signal },
            stdout: Captured::EMPTY,
            stderr: format!("troop: task {id} lost: worker w{}{pid} {how}\n", index + 1).into_bytes().into(),
            usage: Usage::default(),
        })
    }

    fn complete(&mut self, report: TaskReport) -> Result<(), RunError> {
        self.counts.done += 1;
        if !report.outcome.is_success() {
            self.counts.failed += 1;
        }
        let tag = self.tag(report.id);
        self.tasks.remove(&report.id);
        let stdout = Piece::open(report.stdout).unwrap_or_else(|e| Piece::Bytes(format!("troop: task {}: spilled output lost: {e}\n", report.id).into_bytes()));
        let stderr = Piece::open(report.stderr).unwrap_or_else(|e| Piece::Bytes(format!("troop: task {}: spilled output lost: {e}\n", report.id).into_bytes()));
        self.output_result(|o| o.finish(report.id, tag.as_deref(), stdout, stderr))
    }

    fn tag(&self, id: TaskId) -> Option<String> {
        if !self.config.tag {
            return None;
        }
        self.tasks.get(&id).map(|t| Template::tag(&t.record))
    }

    /// Runs an output operation; a closed stdout stops the run quietly.
    fn output_result(&mut self, f: impl FnOnce(&mut Output) -> std::io::Result<()>) -> Result<(), RunError> {
        match f(&mut self.output) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                if !self.broken_pipe {
                    self.broken_pipe = true;
                    self.interrupts = self.interrupts.max(2);
                    self.terminate_running(Signal::SIGTERM);
                    let mut actions = Vec::new();
                    self.sched.handle(Event::StopStarting, &mut actions);
                    for a in actions {
                        if a == Action::Finished {
                            self.finished = true;
                        }
                    }
                }
                Ok(())
            }
            Err(e) => Err(RunError::Output(e)),
        }
    }
}

/// Turns a rendered command into a job, checking a kernel's arguments.
fn job_for(rendered: Rendered) -> Result<Job, String> {
    Ok(match rendered {
        Rendered::Exec(argv) => Job::Exec(argv),
        Rendered::Shell(script) => Job::Shell(script),
        Rendered::Kernel { name, args } => Job::Kernel(Kernel::parse(&name, &args).map_err(|e| e.to_string())?),
    })
}

/// Reads records on a thread of their own, in chunks, into a bounded channel.
fn spawn_input(config: &RunConfig, stdin: Box<dyn std::io::BufRead + Send>) -> Receiver<InputChunk> {
    let (tx, rx) = crossbeam_channel::bounded::<InputChunk>(16);
    let spec = config.input.clone();
    std::thread::Builder::new()
        .name("troop-input".into())
        .spawn(move || {
            let records = match input::open(&spec, stdin) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let mut chunk = Vec::new();
            for record in records {
                match record {
                    Ok(r) => chunk.push(r),
                    Err(e) => {
                        let _ = tx.send(Ok(std::mem::take(&mut chunk)));
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                // Send at once while the supervisor waits for input; batch while it is busy.
                if chunk.len() >= INPUT_CHUNK || tx.is_empty() {
                    if tx.send(Ok(std::mem::take(&mut chunk))).is_err() {
                        return;
                    }
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(Ok(chunk));
            }
        })
        .expect("start the input thread");
    rx
}

/// Prints what would run, one command per line.
fn dry_run(config: &RunConfig, mut io: RunIo, started: Instant) -> Result<Summary, RunError> {
    let records = input::open(&config.input, io.stdin)?;
    let mut total = 0u64;
    for (i, record) in records.enumerate() {
        let record = record?;
        let id = i as u64 + 1;
        let slot = (i % config.jobs) as u32 + 1;
        let line = Template::display(&config.template.render(&record, id, slot));
        writeln!(io.stdout, "{line}").map_err(RunError::Output)?;
        total += 1;
    }
    io.stdout.flush().map_err(RunError::Output)?;
    Ok(Summary {
        total,
        failed: 0,
        not_started: 0,
        exit: Exit::Success,
        wall: started.elapsed(),
        cpu_us: 0,
        workers: config.jobs,
        worker_pids: Vec::new(),
    })
}

use std::io::Write as _;

/// A random token for this run's workers, from the kernel's random source.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    assert_eq!(n, bytes.len() as isize, "the kernel's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
