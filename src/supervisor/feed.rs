//! Feeding workers: input records become tasks, tasks become batches, and the resource gates
//! decide when new tasks may start.

use std::io::Write as _;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use troop_worker::kernel::Kernel;
use troop_worker::protocol::{Job, Outcome, TaskReport, TaskSpec, ToWorker, Usage};

use super::{Supervisor, Task, TaskState, Timer};
use crate::cli::shell_quote;
use crate::config::{Limits, RunConfig, ShellQuote};
use crate::error::RunError;
use crate::exit::Exit;
use crate::input::pipe::{self, Block};
use crate::input::{self, InputError, Record, Rendered, Template};
use crate::observe::Summary;
use crate::run_io::RunIo;
use crate::scheduler::{Action, Event, TaskId};

/// Records per message from the input thread.
const INPUT_CHUNK: usize = 1024;
/// How often free memory and load are looked at while they hold tasks back.
const GATE_INTERVAL: Duration = Duration::from_millis(500);

/// A chunk of input records, each with the block its command reads (`--pipe`), or the error
/// that ended the input.
pub(super) type InputChunk = Result<Vec<(Record, Option<Block>)>, InputError>;

/// Blocks larger than this travel to workers as files in the run's private directory, which the
/// command then reads directly: it is faster than a pipe fed by the worker, and the block is not
/// held in memory while its task waits or runs.
const SPILL_BLOCKS_OVER: usize = 64 * 1024;

impl Supervisor<'_> {
    /// Takes a chunk of input records as tasks, skipping those a resumed job log records.
    pub(super) fn queue(
        &mut self,
        records: Vec<(Record, Option<Block>)>,
        actions: &mut Vec<Action>,
    ) {
        if let Some(held) = &mut self.held_for_total {
            // `{##}`: no task starts before the number of tasks is known.
            held.extend(records);
            return;
        }
        for (record, block) in records {
            let id = self.next_id;
            self.next_id += 1;
            if let Some(done) = &self.done {
                let command = Template::display(&self.config.template.render(&record, id, 1));
                let command = crate::joblog::write::log_command(&command);
                let key = self
                    .config
                    .template
                    .resume_key(&command)
                    .unwrap_or_else(|| command.to_vec());
                if done.skip(&key, self.config.resume == crate::config::Resume::Failed) {
                    self.skipped += 1;
                    self.observer
                        .event(&crate::observe::RunEvent::TaskSkipped { seq: id });
                    let _ = self.output.skip(id);
                    continue;
                }
            }
            self.tasks.insert(
                id,
                Task {
                    record,
                    block,
                    state: TaskState::Queued,
                    attempts: 0,
                    command: None,
                    started_us: 0,
                    timeout: None,
                    since: None,
                    timed_out: false,
                    overdue: None,
                },
            );
            self.sched.apply(Event::Queued(id), actions);
        }
        self.check_gates(actions);
        self.sched.fill(actions);
    }

    /// Sends a batch to a worker. A kernel with bad arguments fails at once, without a trip.
    pub(super) fn dispatch(
        &mut self,
        worker: u32,
        ids: Vec<TaskId>,
        actions: &mut Vec<Action>,
    ) -> Result<(), RunError> {
        let timeout = self.current_timeout();
        let timeout_ms = timeout.map(|t| t.as_millis().max(1) as u64);
        let verbose = self.config.verbose > 0;
        let keep_command = self.joblog.is_some()
            || verbose
            || self.config.announce
            || self.config.keep.is_some()
            || self.observer.wants_commands();
        let mut announced = Vec::new();
        let mut specs = Vec::with_capacity(ids.len());
        let mut refused = Vec::new();
        let remote = self.config.transfer.is_some() && self.pool.is_remote(worker);
        for id in ids {
            let Some(task) = self.tasks.get_mut(id) else {
                continue;
            };
            task.state = TaskState::Sent { worker };
            task.attempts += 1;
            task.started_us = super::finish::unix_now_us();
            task.timeout = timeout;
            task.since = None;
            task.timed_out = false;
            let rendered = self.config.template.render(&task.record, id, worker + 1);
            if keep_command {
                let command = Template::display(&rendered);
                if verbose {
                    self.output.command(id, &command);
                }
                if self.config.announce {
                    announced.extend_from_slice(&command);
                    announced.push(b'\n');
                }
                task.command = Some(command);
            }
            let transfer = match (&self.config.transfer, remote) {
                (Some(spec), true) => {
                    let basefiles = spec.basefiles.as_slice();
                    let basefiles = if self.pool.take_basefiles_due(worker) {
                        basefiles
                    } else {
                        &[]
                    };
                    match super::transfer::for_task(spec, basefiles, &task.record, id, worker) {
                        Ok(t) => Some(Box::new(t)),
                        Err(message) => {
                            refused.push((id, message));
                            continue;
                        }
                    }
                }
                _ => None,
            };
            match job_for(rendered) {
                Ok(job) => specs.push(TaskSpec {
                    id,
                    job,
                    timeout_ms,
                    input: task.block.as_ref().map(Block::task_input),
                    transfer,
                }),
                Err(message) => refused.push((id, message)),
            }
        }
        if !announced.is_empty() {
            self.write_output(|o| o.announce(&announced))?;
        }
        // A worker that is gone cannot take the batch; its death is already on its way through
        // the inbox, and the scheduler will requeue what it held.
        if !specs.is_empty() {
            let first = specs[0].id;
            let _ = self.pool.send(worker, ToWorker::Run(specs));
            // A worker that held nothing starts the first task at once.
            if self.sched.head(worker) == Some(first) {
                self.mark_started(first);
            }
        }
        let any_refused = !refused.is_empty();
        for (id, message) in refused {
            self.sched.apply(
                Event::TaskDone {
                    worker,
                    id,
                    wall_us: 0,
                },
                actions,
            );
            let report = TaskReport {
                id,
                stderr: format!("troop: task {id}: {message}\n").into_bytes().into(),
                outcome: Outcome::BadKernelArgs(message),
                stdout: Vec::new().into(),
                usage: Usage::default(),
                returned: Vec::new(),
            };
            self.settle_attempt(worker, report, actions)?;
        }
        if any_refused {
            // The refused tasks freed their places: fill them, or end a run that has no more.
            self.sched.fill(actions);
        }
        Ok(())
    }

    /// The timeout for a task starting now, if any.
    pub(super) fn current_timeout(&self) -> Option<Duration> {
        self.config
            .timeout
            .and_then(|spec| spec.for_next_task(&self.median))
    }

    /// The `--tag` text of a task.
    /// With `--color`, it starts with the task's colour; with a tag, it ends with a TAB.
    pub(super) fn tag(&self, id: TaskId) -> Option<Vec<u8>> {
        let config = self.config;
        if !config.tag && config.tagstring.is_none() && !config.color {
            return None;
        }
        let task = self.tasks.get(id)?;
        let mut prefix = Vec::new();
        if config.color {
            prefix.extend_from_slice(crate::output::colour(id).as_bytes());
        }
        if let Some(text) = &config.tagstring {
            let slot = match task.state {
                TaskState::Sent { worker } | TaskState::Running { worker, .. } => worker + 1,
                _ => 1,
            };
            prefix.extend(text.render(&task.record, id, slot));
            prefix.push(b'\t');
        } else if config.tag {
            prefix.extend(Template::tag(&task.record));
            prefix.push(b'\t');
        }
        Some(prefix)
    }

    /// Holds dispatch back while free memory is below `--memfree` or the load is above `--load`,
    /// looking again every [`GATE_INTERVAL`] until they allow it.
    pub(super) fn check_gates(&mut self, actions: &mut Vec<Action>) {
        let limits = &self.config.limits;
        if limits.memfree.is_none() && limits.load.is_none() {
            return;
        }
        let now = Instant::now();
        if self
            .last_gate_check
            .is_some_and(|t| now.duration_since(t) < GATE_INTERVAL / 5)
            && !self.timers.has(Timer::Gate)
        {
            return;
        }
        self.last_gate_check = Some(now);
        let free = limits.memfree.and(available_memory());
        let load = limits.load.and(load_average());
        let short_of_memory = limits.memfree.zip(free).filter(|(need, free)| free < need);
        let overloaded = limits.load.zip(load).filter(|(max, load)| load > max);
        let hold = short_of_memory.is_some() || overloaded.is_some();
        if hold && !self.gate_said {
            // Said once: a run held back for long must not look hung.
            self.gate_said = true;
            let mut reasons = Vec::new();
            if let Some((need, free)) = short_of_memory {
                reasons.push(format!(
                    "free memory ({}) to reach --memfree {}",
                    human_size(free),
                    human_size(need)
                ));
            }
            if let Some((max, load)) = overloaded {
                reasons.push(format!(
                    "the load average ({load:.2}) to fall to --load {max}"
                ));
            }
            troop_worker::process::eprint_line(&format!(
                "troop: holding back new tasks: waiting for {}",
                reasons.join(" and ")
            ));
        }
        self.sched.apply(Event::Hold(hold || self.paused), actions);
        if hold && !self.timers.has(Timer::Gate) {
            self.timers.add(now + GATE_INTERVAL, Timer::Gate);
        }
    }
}

/// Refuses `--memfree` and `--load` values that no state of this machine can meet: they
/// would hold every task back for ever.
pub(super) fn check_gate_limits(limits: &Limits) -> Result<(), RunError> {
    if let Some(need) = limits.memfree
        && let Some(total) = total_memory()
        && need > total
    {
        return Err(RunError::Usage(format!(
            "--memfree {} can never be met: this machine has {} of memory in all",
            human_size(need),
            human_size(total)
        )));
    }
    if let Some(max) = limits.load
        && (max.is_nan() || max <= 0.0)
    {
        return Err(RunError::Usage(format!(
            "--load {max} would hold every task back until the load average is 0, which it \
             never is while anything runs: give a load above 0, such as the number of cores"
        )));
    }
    Ok(())
}

/// Bytes as a person reads them: `512 B`, `1.5 GiB`, `1.0 TiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes of memory in all (MemTotal).
fn total_memory() -> Option<u64> {
    meminfo("MemTotal:")
}

/// Bytes of memory available for new work (MemAvailable).
fn available_memory() -> Option<u64> {
    meminfo("MemAvailable:")
}

/// A field of /proc/meminfo, in bytes.
fn meminfo(field: &str) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The 1-minute load average.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Turns a rendered command into a job, checking a kernel's arguments.
fn job_for(rendered: Rendered) -> Result<Job, String> {
    Ok(match rendered {
        Rendered::Exec(argv) => Job::Exec(argv),
        Rendered::Shell(script) => Job::Shell(script),
        Rendered::Kernel { name, args } => {
            Job::Kernel(Kernel::parse(&name, &args).map_err(|e| e.to_string())?)
        }
    })
}

/// Reads records on a thread of their own, in chunks, into a bounded channel.
/// With `--pipe`, the records are blocks of standard input (or parts of the `--pipepart`
/// file), one per chunk; large blocks are written to files in `rundir`.
pub(super) fn spawn_input(
    config: &RunConfig,
    stdin: Box<dyn std::io::BufRead + Send>,
    rundir: &std::path::Path,
    jobs: usize,
) -> Result<Receiver<InputChunk>, RunError> {
    if let Some(spec) = &config.pipe {
        let store = pipe::Store {
            dir: rundir.to_path_buf(),
            spill_over: (!spec.roundrobin).then_some(SPILL_BLOCKS_OVER),
        };
        return spawn_blocks(spec.clone(), store, stdin, jobs);
    }
    let (tx, rx) = crossbeam_channel::bounded::<InputChunk>(16);
    let spec = config.input.clone();
    let shuf = config.sched.shuf;
    let seed = match shuf {
        true => u64::from_str_radix(&new_token()?[..16], 16).unwrap_or(1),
        false => 0,
    };
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
            let records: Box<dyn Iterator<Item = Result<Record, InputError>>> = if shuf {
                // All input is read first, then run in random order.
                match records.collect::<Result<Vec<Record>, InputError>>() {
                    Ok(mut all) => {
                        shuffle(&mut all, seed);
                        Box::new(all.into_iter().map(Ok))
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            } else {
                Box::new(records)
            };
            let mut chunk = Vec::new();
            for record in records {
                match record {
                    Ok(r) => chunk.push((r, None)),
                    Err(e) => {
                        let _ = tx.send(Ok(std::mem::take(&mut chunk)));
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
                // Send at once while the supervisor waits for input; batch while it is busy.
                if (chunk.len() >= INPUT_CHUNK || tx.is_empty())
                    && tx.send(Ok(std::mem::take(&mut chunk))).is_err()
                {
                    return;
                }
            }
            if !chunk.is_empty() {
                let _ = tx.send(Ok(chunk));
            }
        })
        .map_err(|error| RunError::Resource {
            what: "the input thread",
            error,
        })?;
    Ok(rx)
}

/// Reads blocks on a thread of their own, one per chunk, into a channel that holds one: with
/// the scheduler's bound on tasks read ahead, memory holds about two blocks per worker.
fn spawn_blocks(
    spec: pipe::PipeSpec,
    store: pipe::Store,
    stdin: Box<dyn std::io::BufRead + Send>,
    jobs: usize,
) -> Result<Receiver<InputChunk>, RunError> {
    let (tx, rx) = crossbeam_channel::bounded::<InputChunk>(1);
    std::thread::Builder::new()
        .name("troop-input".into())
        .spawn(move || {
            let send = |block: Block| {
                let record = Record {
                    args: block
                        .path
                        .iter()
                        .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                        .collect(),
                    ends: Vec::new(),
                };
                tx.send(Ok(vec![(record, Some(block))])).is_ok()
            };
            if let Some(path) = spec.part.clone() {
                match pipe::parts(&spec, &store, &path) {
                    Ok(blocks) => {
                        for block in blocks {
                            if !send(block) {
                                return;
                            }
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Err(InputError::Open { path, error }));
                    }
                }
                return;
            }
            let read_error = |error| InputError::Read {
                input: "standard input".into(),
                error,
            };
            if spec.roundrobin {
                let blocks = pipe::Blocks::new(spec, store.clone(), stdin);
                let mut start = |block| send(block);
                if let Err(e) = pipe::RoundRobin::new(store, jobs).feed(blocks, &mut start) {
                    let _ = tx.send(Err(read_error(e)));
                }
                return;
            }
            for block in pipe::Blocks::new(spec, store, stdin) {
                match block {
                    Ok(block) => {
                        if !send(block) {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Err(read_error(error)));
                        return;
                    }
                }
            }
        })
        .map_err(|error| RunError::Resource {
            what: "the input thread",
            error,
        })?;
    Ok(rx)
}

/// Prints what would run, one command per line, and runs nothing.
pub(super) fn dry_run(
    config: &RunConfig,
    mut io: RunIo,
    started: Instant,
) -> Result<Summary, RunError> {
    let records: Box<dyn Iterator<Item = Result<Record, InputError>>> = match &config.pipe {
        // One command per block, the blocks read and dropped.
        Some(spec) => {
            let store = pipe::Store {
                dir: std::env::temp_dir(),
                spill_over: None,
            };
            let mut spec = spec.clone();
            spec.via = pipe::Via::Stdin;
            let blocks: Box<dyn Iterator<Item = std::io::Result<Block>>> = match &spec.part {
                Some(path) => Box::new(
                    pipe::parts(&spec, &store, path)
                        .map_err(|error| InputError::Open {
                            path: path.clone(),
                            error,
                        })?
                        .into_iter()
                        .map(Ok),
                ),
                None => Box::new(pipe::Blocks::new(spec, store, io.stdin)),
            };
            Box::new(blocks.map(|b| {
                b.map(|_| Record::default())
                    .map_err(|error| InputError::Read {
                        input: "standard input".into(),
                        error,
                    })
            }))
        }
        None if config.sched.shuf => {
            let mut all = input::open(&config.input, io.stdin)?.collect::<Result<Vec<_>, _>>()?;
            shuffle(
                &mut all,
                u64::from_str_radix(&new_token()?[..16], 16).unwrap_or(1),
            );
            Box::new(all.into_iter().map(Ok))
        }
        None if config.template.needs_total() => {
            let all = input::open(&config.input, io.stdin)?.collect::<Result<Vec<_>, _>>()?;
            config.template.set_total(all.len() as u64);
            Box::new(all.into_iter().map(Ok))
        }
        None => Box::new(input::open(&config.input, io.stdin)?),
    };
    let mut total = 0u64;
    for (i, record) in records.enumerate() {
        let record = record?;
        let slot = (i % config.jobs) as u32 + 1;
        let line =
            match config.shellquote {
                None => Template::display(&config.template.render(&record, i as u64 + 1, slot)),
                Some(ShellQuote::Input) => shell_quote(&record.args.join(&b' ')),
                Some(ShellQuote::Command) => shell_quote(&Template::display(
                    &config.template.render(&record, i as u64 + 1, slot),
                )),
            };
        if config.announce {
            let mut shown = line.clone();
            shown.push(b'\n');
            io.stderr.write_all(&shown).map_err(RunError::Output)?;
            io.stderr.flush().map_err(RunError::Output)?;
        }
        // As GNU parallel does, --tag and --tagstring tag the lines of a dry run too.
        if let Some(text) = &config.tagstring {
            io.stdout
                .write_all(&text.render(&record, i as u64 + 1, slot))
                .map_err(RunError::Output)?;
            io.stdout.write_all(b"\t").map_err(RunError::Output)?;
        } else if config.tag {
            io.stdout
                .write_all(&Template::tag(&record))
                .map_err(RunError::Output)?;
            io.stdout.write_all(b"\t").map_err(RunError::Output)?;
        }
        io.stdout.write_all(&line).map_err(RunError::Output)?;
        io.stdout.write_all(b"\n").map_err(RunError::Output)?;
        total += 1;
    }
    io.stdout.flush().map_err(RunError::Output)?;
    Ok(Summary {
        total,
        failed: 0,
        not_started: 0,
        skipped: 0,
        exit: Exit::Success,
        wall: started.elapsed(),
        cpu_us: 0,
        workers: config.jobs,
        worker_pids: Vec::new(),
    })
}

/// Puts `items` in a random order drawn from `seed` (Fisher-Yates, with xorshift64*).
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// A random token for this run's workers, from the kernel's random source.
pub(super) fn new_token() -> Result<String, RunError> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into `bytes`.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(RunError::Resource {
            what: "the run: the kernel's random source failed",
            error: std::io::Error::last_os_error(),
        });
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
