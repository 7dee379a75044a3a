//! `troop demo`: the concurrency lesson, measured. The same CPU-bound batch and the same
//! I/O-bound batch run serially and in every mode (thread, gil, async, process), side by side,
//! with a table, a chart and a reading drawn from the figures.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use troop_worker::kernel::{FreeHost, Kernel};

use crate::chart::{BarGroup, speedup_bars};
use crate::config::{Mode, RunConfig};
use crate::error::RunError;
use crate::exit::Exit;
use crate::input::{InputSpec, SourceSpec, Template};
use crate::observe::{Observer, cpu_time_us};
use crate::run_io::RunIo;

/// Settings of `troop demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Workers for the parallel runs.
    pub cores: usize,
    /// A batch about a sixth of the size.
    pub quick: bool,
    /// Print JSON instead of the table.
    pub json: bool,
    /// Where the chart goes.
    pub svg: PathBuf,
}

/// The modes, in the order the demo runs them.
const MODES: [Mode; 4] = [Mode::Thread, Mode::Gil, Mode::Async, Mode::Process];

/// How many times a run that other work disturbed is measured, at most (with `--quick`, 2).
const MAX_MEASUREMENTS: u32 = 3;

/// A run is disturbed when it got less than this share of the cores it should have used.
const DISTURBED_BELOW: f64 = 0.8;

/// What a batch's tasks spend their time on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Work {
    /// Computing: a mode is as fast as the cores it computes on at once.
    Cpu,
    /// Waiting: waits overlap without any core.
    Io,
}

/// One batch of identical tasks.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Batch {
    pub name: &'static str,
    #[serde(serialize_with = "as_text")]
    pub kernel: Kernel,
    pub tasks: usize,
    pub work: Work,
}

fn as_text<S: serde::Serializer>(k: &Kernel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// One measured run of a batch: serially, or in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub mode: &'static str,
    pub workers: usize,
    pub wall_s: f64,
    /// The serial run's wall time over this run's.
    pub speedup: f64,
    /// CPU time of troop and its workers over wall time × workers, in percent.
    pub cpu_percent: f64,
    /// CPU time over wall time: how many cores the run kept busy on average.
    pub cpu_cores: f64,
    /// How many cores the run should have kept busy on this batch (0 when its tasks wait rather
    /// than compute, so that its CPU use says nothing).
    pub expected_cores: f64,
    /// Other work on the machine held the cores this run needed (it kept fewer than 80% of
    /// `expected_cores` busy in every measurement), so its figures say nothing about the mode.
    pub disturbed: bool,
    /// How many times it was measured: a disturbed run is measured again, and the least
    /// disturbed measurement is kept.
    pub measurements: u32,
}

/// A batch and its runs.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    #[serde(flatten)]
    pub batch: Batch,
    /// The serial run first, then one per mode.
    pub runs: Vec<Row>,
}

/// Everything the demo measured, and what it reads in the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Workers of each pooled run.
    pub cores: usize,
    /// Cores this process may run on.
    pub usable_cores: usize,
    pub batches: Vec<BatchReport>,
    /// The reading: one line about each batch.
    pub reading: Vec<String>,
}

/// The two batches for `workers` workers.
pub fn batches(workers: usize, quick: bool) -> [Batch; 2] {
    let w = workers.max(2);
    let (primes, sleep_ms, cpu_tasks, io_tasks) = if quick {
        (1_200_000, 100, 2 * w, 4 * w)
    } else {
        (2_500_000, 200, 4 * w, 8 * w)
    };
    [
        Batch {
            name: "CPU-bound",
            kernel: Kernel::Primes(primes),
            tasks: cpu_tasks,
            work: Work::Cpu,
        },
        Batch {
            name: "I/O-bound",
            kernel: Kernel::Sleep(sleep_ms),
            tasks: io_tasks,
            work: Work::Io,
        },
    ]
}

/// How many cores a run should keep busy: on computing tasks one for the serial run and for the
/// modes that compute on one core at a time (gil, async), and as many as there are workers and
/// usable cores for the others; none on waiting tasks.
pub fn expected_cores(work: Work, mode: &str, workers: usize, usable: usize) -> f64 {
    match (work, mode) {
        (Work::Io, _) => 0.0,
        (Work::Cpu, "serial" | "gil" | "async") => 1.0,
        (Work::Cpu, _) => workers.min(usable).max(1) as f64,
    }
}

/// Whether a run that kept `cpu_cores` busy did not get the `expected` cores it needed.
pub fn is_disturbed(cpu_cores: f64, expected: f64) -> bool {
    expected > 0.0 && cpu_cores < DISTURBED_BELOW * expected
}

/// One measurement: wall time and CPU time in µs.
type Measurement = (Duration, u64);

/// Measures with `run` until a measurement is not disturbed, at most `max` times, telling
/// `again` how many cores the disturbed one kept busy before each new one; the measurement that
/// kept the most cores busy, and how many were taken.
fn measure(
    expected: f64,
    max: u32,
    mut again: impl FnMut(f64),
    mut run: impl FnMut() -> Result<Measurement, RunError>,
) -> Result<(Measurement, u32), RunError> {
    let cores = |(wall, cpu_us): Measurement| cpu_us as f64 / 1e6 / wall.as_secs_f64().max(1e-9);
    let mut last = run()?;
    let mut best = last;
    let mut taken = 1;
    while taken < max && is_disturbed(cores(best), expected) {
        again(cores(last));
        last = run()?;
        taken += 1;
        if cores(last) > cores(best) {
            best = last;
        }
    }
    Ok((best, taken))
}

/// Prints the worker pids to watch while a pool runs.
struct Announce {
    to_stderr: bool,
}

impl Observer for Announce {
    fn pool_up(&mut self, mode: Mode, pids: &[u32]) {
        let line = match mode {
            Mode::Process => {
                let list: Vec<String> = pids.iter().map(u32::to_string).collect();
                format!(
                    "  process pool up, one line per worker: top -p {}",
                    list.join(",")
                )
            }
            _ => format!(
                "  {} pool up inside troop: top -H -p {}",
                mode.name(),
                std::process::id()
            ),
        };
        if self.to_stderr {
            troop_worker::process::eprint_line(&line);
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Runs the demo: prints the table (or JSON), writes the chart, prints the reading.
pub fn run(config: &DemoConfig) -> Result<Exit, RunError> {
    // A chart that cannot be written is refused before any batch runs.
    check_writable(&config.svg).map_err(|e| RunError::Usage(e.to_string()))?;
    check_process_worker()?;
    let usable = crate::jobs::usable_cores();
    let say = |line: String| {
        if config.json {
            troop_worker::process::eprint_line(&line);
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "troop demo: the same two batches serially and in {} modes, {} ({} usable {}; {})",
        MODES.len(),
        if config.cores == 1 {
            "1 worker".to_string()
        } else {
            format!("{} workers", config.cores)
        },
        usable,
        if usable == 1 { "core" } else { "cores" },
        machine()
    ));
    let mut report = Report {
        cores: config.cores,
        usable_cores: usable,
        batches: Vec::new(),
        reading: Vec::new(),
    };
    for batch in batches(config.cores, config.quick) {
        say(format!(
            "{}: {} × {}",
            batch.name, batch.tasks, batch.kernel
        ));
        let expect = |mode: &str, workers| expected_cores(batch.work, mode, workers, usable);
        let max = if config.quick { 2 } else { MAX_MEASUREMENTS };
        let retry = |mode: &'static str, expected: f64| {
            move |busy: f64| {
                say(format!(
                    "  {mode}: other work held the cores ({busy:.1} of {expected:.0} busy); \
                     measuring again"
                ))
            }
        };
        let expected = expect("serial", 1);
        let (serial, taken) = measure(expected, max, retry("serial", expected), || {
            Ok(serial(&batch))
        })?;
        let base = serial.0.as_secs_f64();
        let mut runs = vec![row("serial", 1, serial, base, expect("serial", 1), taken)];
        for mode in MODES {
            let expected = expect(mode.name(), config.cores);
            let (measured, taken) = measure(expected, max, retry(mode.name(), expected), || {
                pooled(mode, config.cores, &batch, config.json)
            })?;
            runs.push(row(
                mode.name(),
                config.cores,
                measured,
                base,
                expected,
                taken,
            ));
        }
        report.batches.push(BatchReport { batch, runs });
    }
    report.reading = reading(&report);
    if config.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serializes")
        );
    } else {
        print_table(&report);
    }
    write_chart(config, &report)?;
    if !config.json {
        println!("\nchart: {}", config.svg.display());
        for line in &report.reading {
            println!("{line}");
        }
    }
    Ok(Exit::Success)
}

/// Fails unless `path` can be written; leaves no file behind that was not there.
fn check_writable(path: &std::path::Path) -> Result<(), crate::chart::ChartError> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| crate::chart::ChartError {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Starts one worker process and runs one task on it, so that a demo whose process batch could
/// not start its workers says so before the first batch, not after the others.
fn check_process_worker() -> Result<(), RunError> {
    let template = Template::parse(&["@noop".to_string()])?;
    let input = InputSpec {
        sources: vec![(SourceSpec::Args(vec!["check".into()]), false)],
        colsep: None,
        ..InputSpec::default()
    };
    let mut config = RunConfig::new(template, input, 1);
    config.mode = Mode::Process;
    let cannot = |why: String| {
        RunError::Usage(format!(
            "the demo cannot start a worker process, which its process batch needs: {why}"
        ))
    };
    let summary = crate::supervisor::run(&config, RunIo::discard(), &mut crate::observe::Quiet)
        .map_err(|e| cannot(e.to_string()))?;
    if summary.failed > 0 || summary.total != 1 {
        return Err(cannot("its test task failed".into()));
    }
    Ok(())
}

/// The processor and memory of this machine, as sysinfo reads them.
pub fn machine() -> String {
    use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
    let Ok(sys) = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    ) else {
        return "machine unknown".into();
    };
    let brand = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .unwrap_or_default();
    let gib = sys.total_memory() as f64 / (1u64 << 30) as f64;
    format!("{} CPUs {brand}, {gib:.0} GiB", sys.cpus().len())
}

fn row(
    mode: &'static str,
    workers: usize,
    (wall, cpu_us): Measurement,
    base: f64,
    expected_cores: f64,
    measurements: u32,
) -> Row {
    let wall_s = wall.as_secs_f64();
    let cpu_cores = cpu_us as f64 / 1e6 / wall_s;
    Row {
        mode,
        workers,
        wall_s,
        speedup: base / wall_s,
        cpu_percent: cpu_cores / workers as f64 * 100.0,
        cpu_cores,
        expected_cores,
        disturbed: is_disturbed(cpu_cores, expected_cores),
        measurements,
    }
}

/// The batch run one task after another on this thread, with no pool at all.
fn serial(batch: &Batch) -> (Duration, u64) {
    let cpu0 = cpu_time_us();
    let t0 = Instant::now();
    for _ in 0..batch.tasks {
        batch
            .kernel
            .run(&mut FreeHost, &mut Vec::new())
            .expect("a free host never stops a kernel");
    }
    (t0.elapsed(), cpu_time_us() - cpu0)
}

/// The batch through troop's own supervisor in `mode`.
fn pooled(
    mode: Mode,
    workers: usize,
    batch: &Batch,
    quiet: bool,
) -> Result<(Duration, u64), RunError> {
    let words: Vec<String> = batch
        .kernel
        .to_string()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let (name, arg) = (words[0].clone(), words.get(1).cloned().unwrap_or_default());
    let template = Template::parse(&[name, "{}".to_string()])?;
    let input = InputSpec {
        sources: vec![(SourceSpec::Args(vec![arg.into_bytes(); batch.tasks]), false)],
        colsep: None,
        ..InputSpec::default()
    };
    let mut config = RunConfig::new(template, input, workers);
    config.mode = mode;
    let summary = crate::supervisor::run(
        &config,
        RunIo::discard(),
        &mut Announce { to_stderr: quiet },
    )?;
    if summary.failed > 0 || summary.total != batch.tasks as u64 {
        return Err(RunError::Usage(format!(
            "the {} run of the {} batch finished {} of {} tasks, {} failed",
            mode.name(),
            batch.name,
            summary.total,
            batch.tasks,
            summary.failed
        )));
    }
    Ok((summary.wall, summary.cpu_us))
}

fn print_table(report: &Report) {
    println!();
    println!(
        "{:<10} {:<8} {:>7} {:>8} {:>8} {:>8}",
        "batch", "mode", "workers", "wall s", "speedup", "CPU use"
    );
    for b in &report.batches {
        for r in &b.runs {
            let note = if r.disturbed {
                format!("  disturbed: {}", busy_words(r))
            } else {
                String::new()
            };
            println!(
                "{:<10} {:<8} {:>7} {:>8.2} {:>7.2}× {:>7.0}%{note}",
                b.batch.name, r.mode, r.workers, r.wall_s, r.speedup, r.cpu_percent
            );
        }
    }
}

fn write_chart(config: &DemoConfig, report: &Report) -> Result<(), RunError> {
    let names: Vec<&str> = report.batches.iter().map(|b| b.batch.name).collect();
    let modes: Vec<&str> = report.batches[0].runs.iter().map(|r| r.mode).collect();
    let groups: Vec<BarGroup> = modes
        .iter()
        .map(|m| BarGroup {
            label: m.to_string(),
            values: report
                .batches
                .iter()
                .filter_map(|b| b.runs.iter().find(|r| r.mode == *m).map(|r| r.speedup))
                .collect(),
        })
        .collect();
    let title = format!("speedup over serial with {} workers", report.cores);
    speedup_bars(&config.svg, &title, &names, &groups, report.cores as f64)
        .map_err(|e| RunError::Usage(e.to_string()))
}

/// Lists modes with their speedups: `gil (0.99×) and async (1.01×)`.
fn listing(rows: &[&Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| format!("{} ({:.2}×)", r.mode, r.speedup))
        .collect();
    and_list(&items)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// How busy a run kept the cores against what it needed: `0.6 of 2 cores busy`.
fn busy_words(r: &Row) -> String {
    let needed = r.expected_cores;
    format!(
        "{:.1} of {needed:.0} {} busy over {} {}",
        r.cpu_cores,
        if needed == 1.0 { "core" } else { "cores" },
        r.measurements,
        if r.measurements == 1 {
            "measurement"
        } else {
            "measurements"
        }
    )
}

/// Speedups at or above this share of the possible speedup count as scaling.
const SCALED: f64 = 0.75;
/// Speedups below this stayed near serial.
const NEAR_SERIAL: f64 = 1.3;

/// Reads the measured figures, one line per batch, true for any number of workers and cores:
/// which modes used the cores on the CPU-bound batch and which stayed near serial (and why,
/// when the figures say), which runs other work disturbed, and how the waits overlapped.
pub fn reading(report: &Report) -> Vec<String> {
    report
        .batches
        .iter()
        .map(|b| match b.batch.work {
            Work::Cpu => read_cpu(report, b),
            Work::Io => read_io(report, b),
        })
        .collect()
}

fn read_cpu(report: &Report, b: &BatchReport) -> String {
    let n = report.cores;
    let usable = report.usable_cores;
    let ceiling = n.min(usable).max(1);
    let name = b.batch.name;
    let serial = b.runs.iter().find(|r| r.mode == "serial");
    let runs: Vec<&Row> = b.runs.iter().filter(|r| r.mode != "serial").collect();
    let (clean, disturbed): (Vec<&Row>, Vec<&Row>) = runs.iter().partition(|r| !r.disturbed);
    let mut clauses = Vec::new();
    if let Some(s) = serial.filter(|s| s.disturbed) {
        // Every speedup is measured against the serial run: none can be read.
        let busy: Vec<String> = runs
            .iter()
            .map(|r| format!("{} {:.1}", r.mode, r.cpu_cores))
            .collect();
        return format!(
            "On the {name} batch, other work on this machine disturbed the serial run ({}), so \
             every speedup here is overstated and none is read; the cores each mode kept busy: \
             {}. Run the demo again when the machine is quieter.",
            busy_words(s),
            and_list(&busy)
        );
    }
    if ceiling < 2 {
        let why = if n == 1 {
            "with 1 worker".to_string()
        } else {
            format!("with {n} workers on 1 usable core")
        };
        let mut clause =
            format!("no mode can beat serial {why}, as only one task computes at a time");
        if !clean.is_empty() {
            clause += &format!(": {}", listing(&clean));
        }
        clauses.push(clause);
    } else {
        let possible = ceiling as f64;
        let scaled: Vec<&Row> = clean
            .iter()
            .copied()
            .filter(|r| r.speedup >= SCALED * possible)
            .collect();
        let partly: Vec<&Row> = clean
            .iter()
            .copied()
            .filter(|r| r.speedup >= NEAR_SERIAL && r.speedup < SCALED * possible)
            .collect();
        let flat: Vec<&Row> = clean
            .iter()
            .copied()
            .filter(|r| r.speedup < NEAR_SERIAL)
            .collect();
        if !scaled.is_empty() {
            let cores = if usable < n {
                format!("the {ceiling} usable cores (of {n} workers)")
            } else {
                format!("{ceiling} cores")
            };
            clauses.push(format!("{} computed on {cores} at once", listing(&scaled)));
        }
        if !partly.is_empty() {
            clauses.push(format!("{} scaled only partly", listing(&partly)));
        }
        let (lesson, other): (Vec<&Row>, Vec<&Row>) = flat
            .iter()
            .copied()
            .partition(|r| r.mode == "gil" || r.mode == "async");
        if !lesson.is_empty() {
            clauses.push(format!(
                "{} stayed near serial: with one lock, or one thread, only one core computes at \
                 a time",
                listing(&lesson)
            ));
        }
        for r in other {
            clauses.push(format!(
                "{} stayed near serial although it kept {:.1} cores busy",
                listing(&[r]),
                r.cpu_cores
            ));
        }
    }
    if !disturbed.is_empty() {
        let each: Vec<String> = disturbed
            .iter()
            .map(|r| format!("{} ({:.2}×, {})", r.mode, r.speedup, busy_words(r)))
            .collect();
        let one = disturbed.len() == 1;
        clauses.push(format!(
            "{} did not get the cores {} needed: other work on this machine held them, so {} \
             nothing about the {}",
            and_list(&each),
            if one { "it" } else { "they" },
            if one {
                "its figure says"
            } else {
                "their figures say"
            },
            if one { "mode" } else { "modes" }
        ));
    }
    let mut line = format!("On the {name} batch, {}.", clauses.join("; "));
    if ceiling < 2 {
        line +=
            " Run `troop demo --cores 2` or more, with two free cores, to see the modes differ.";
    }
    line
}

fn read_io(report: &Report, b: &BatchReport) -> String {
    let n = report.cores;
    let name = b.batch.name;
    let runs: Vec<&Row> = b.runs.iter().filter(|r| r.mode != "serial").collect();
    let (lo, hi) = runs.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| {
        (lo.min(r.speedup), hi.max(r.speedup))
    });
    let range = format!("{lo:.2}× to {hi:.2}×");
    if n == 1 {
        let overlapped: Vec<&Row> = runs
            .iter()
            .copied()
            .filter(|r| r.speedup >= NEAR_SERIAL)
            .collect();
        let mut line = format!(
            "On the {name} batch, 1 worker waits for one task at a time, so the waits could not \
             overlap ({range})"
        );
        if !overlapped.is_empty() {
            line += &format!(", yet {} ran faster than serial", listing(&overlapped));
        }
        return line + ".";
    }
    let ideal = SCALED * n as f64;
    if lo >= ideal {
        format!(
            "On the {name} batch every mode overlapped the waits ({range}), because waiting needs \
             no core: one lock or one event loop is enough for I/O."
        )
    } else {
        let slow: Vec<&Row> = runs.iter().copied().filter(|r| r.speedup < ideal).collect();
        format!(
            "On the {name} batch the waits overlapped unevenly ({range}): {} fell short of the {n} \
             workers.",
            listing(&slow)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run with `speedup`, keeping `share` of the cores it should busy.
    fn run(
        work: Work,
        mode: &'static str,
        n: usize,
        usable: usize,
        speedup: f64,
        share: f64,
    ) -> Row {
        let workers = if mode == "serial" { 1 } else { n };
        let expected = expected_cores(work, mode, workers, usable);
        let cpu_cores = expected * share;
        Row {
            mode,
            workers,
            wall_s: 1.0 / speedup,
            speedup,
            cpu_percent: cpu_cores / workers as f64 * 100.0,
            cpu_cores,
            expected_cores: expected,
            disturbed: is_disturbed(cpu_cores, expected),
            measurements: if is_disturbed(cpu_cores, expected) {
                3
            } else {
                1
            },
        }
    }

    /// A report for `n` workers on `usable` cores: (mode, speedup, share of its cores) per run.
    fn report(
        n: usize,
        usable: usize,
        cpu: &[(&'static str, f64, f64)],
        io: &[(&'static str, f64)],
    ) -> Report {
        let [b1, b2] = batches(n, true);
        let cpu = cpu
            .iter()
            .map(|&(m, s, share)| run(Work::Cpu, m, n, usable, s, share))
            .collect();
        let io = io
            .iter()
            .map(|&(m, s)| run(Work::Io, m, n, usable, s, 0.05))
            .collect();
        Report {
            cores: n,
            usable_cores: usable,
            batches: vec![
                BatchReport {
                    batch: b1,
                    runs: cpu,
                },
                BatchReport {
                    batch: b2,
                    runs: io,
                },
            ],
            reading: Vec::new(),
        }
    }

    #[test]
    fn with_two_free_cores_the_reading_teaches_the_lesson() {
        let r = report(
            2,
            2,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 1.93, 0.97),
                ("gil", 0.98, 0.99),
                ("async", 1.01, 1.0),
                ("process", 1.95, 0.98),
            ],
            &[
                ("serial", 1.0),
                ("thread", 1.97),
                ("gil", 1.96),
                ("async", 1.99),
                ("process", 1.95),
            ],
        );
        assert_eq!(
            reading(&r),
            [
                "On the CPU-bound batch, thread (1.93×) and process (1.95×) computed on 2 cores \
                 at once; gil (0.98×) and async (1.01×) stayed near serial: with one lock, or one \
                 thread, only one core computes at a time.",
                "On the I/O-bound batch every mode overlapped the waits (1.95× to 1.99×), because \
                 waiting needs no core: one lock or one event loop is enough for I/O."
            ]
        );
    }

    #[test]
    fn with_one_worker_the_reading_says_no_mode_can_beat_serial() {
        let r = report(
            1,
            16,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 0.99, 1.0),
                ("gil", 0.97, 1.0),
                ("async", 1.0, 1.0),
                ("process", 0.98, 1.0),
            ],
            &[
                ("serial", 1.0),
                ("thread", 0.99),
                ("gil", 0.98),
                ("async", 0.99),
                ("process", 0.97),
            ],
        );
        let text = reading(&r);
        assert_eq!(
            text[0],
            "On the CPU-bound batch, no mode can beat serial with 1 worker, as only one task \
             computes at a time: thread (0.99×), gil (0.97×), async (1.00×) and process (0.98×). \
             Run `troop demo --cores 2` or more, with two free cores, to see the modes differ."
        );
        assert_eq!(
            text[1],
            "On the I/O-bound batch, 1 worker waits for one task at a time, so the waits could \
             not overlap (0.97× to 0.99×)."
        );
        for line in &text {
            assert!(!line.contains("used the 1 workers"), "{line}");
        }
    }

    #[test]
    fn sixteen_workers_on_sixteen_cores() {
        let r = report(
            16,
            16,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 14.1, 0.95),
                ("gil", 1.0, 0.97),
                ("async", 0.99, 1.0),
                ("process", 9.0, 0.9),
            ],
            &[
                ("serial", 1.0),
                ("thread", 15.2),
                ("gil", 15.0),
                ("async", 15.6),
                ("process", 14.0),
            ],
        );
        let text = reading(&r);
        assert_eq!(
            text[0],
            "On the CPU-bound batch, thread (14.10×) computed on 16 cores at once; process \
             (9.00×) scaled only partly; gil (1.00×) and async (0.99×) stayed near serial: with \
             one lock, or one thread, only one core computes at a time."
        );
        assert!(text[1].contains("every mode overlapped the waits (14.00× to 15.60×)"));
    }

    #[test]
    fn more_workers_than_cores_are_measured_against_the_cores() {
        let r = report(
            16,
            2,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 1.9, 0.97),
                ("gil", 1.0, 0.99),
                ("async", 1.0, 1.0),
                ("process", 1.85, 0.96),
            ],
            &[("serial", 1.0), ("thread", 15.0), ("async", 15.5)],
        );
        assert!(
            reading(&r)[0].starts_with(
                "On the CPU-bound batch, thread (1.90×) and process (1.85×) computed on the 2 \
                 usable cores (of 16 workers) at once;"
            ),
            "{:?}",
            reading(&r)
        );
    }

    #[test]
    fn disturbed_runs_are_named_and_never_read_as_the_lesson() {
        // thread got half its cores and stayed near serial; it must not be read as a mode that
        // cannot use the cores.
        let r = report(
            2,
            2,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 1.05, 0.5),
                ("gil", 0.98, 0.99),
                ("async", 1.01, 1.0),
                ("process", 1.95, 0.98),
            ],
            &[
                ("serial", 1.0),
                ("thread", 1.2),
                ("gil", 1.9),
                ("async", 1.9),
                ("process", 1.9),
            ],
        );
        let text = reading(&r);
        assert_eq!(
            text[0],
            "On the CPU-bound batch, process (1.95×) computed on 2 cores at once; gil (0.98×) \
             and async (1.01×) stayed near serial: with one lock, or one thread, only one core \
             computes at a time; thread (1.05×, 1.0 of 2 cores busy over 3 measurements) did \
             not get the cores it needed: other work on this machine held them, so its figure \
             says nothing about the mode."
        );
        assert_eq!(
            text[1],
            "On the I/O-bound batch the waits overlapped unevenly (1.20× to 1.90×): thread \
             (1.20×) fell short of the 2 workers."
        );

        // A disturbed serial run makes every speedup look better than it is: none is read.
        let r = report(
            2,
            2,
            &[
                ("serial", 1.0, 0.5),
                ("thread", 3.8, 0.95),
                ("gil", 1.9, 0.3),
                ("async", 2.0, 0.95),
                ("process", 3.9, 0.95),
            ],
            &[("serial", 1.0), ("thread", 1.9)],
        );
        assert_eq!(
            reading(&r)[0],
            "On the CPU-bound batch, other work on this machine disturbed the serial run (0.5 of \
             1 core busy over 3 measurements), so every speedup here is overstated and none is \
             read; the cores each mode kept busy: thread 1.9, gil 0.3, async 0.9 and process \
             1.9. Run the demo again when the machine is quieter."
        );
    }

    #[test]
    fn a_mode_that_kept_its_cores_busy_but_did_not_scale_is_not_blamed_on_other_work() {
        let r = report(
            2,
            2,
            &[
                ("serial", 1.0, 1.0),
                ("thread", 1.05, 0.98),
                ("gil", 0.98, 0.99),
                ("async", 1.01, 1.0),
                ("process", 1.95, 0.98),
            ],
            &[("serial", 1.0), ("thread", 1.9)],
        );
        let text = reading(&r);
        assert!(
            text[0].contains("thread (1.05×) stayed near serial although it kept 2.0 cores busy"),
            "{text:?}"
        );
        assert!(!text[0].contains("other work"), "{text:?}");
    }

    #[test]
    fn expected_cores_follow_the_mode_and_the_work() {
        assert_eq!(expected_cores(Work::Cpu, "serial", 1, 8), 1.0);
        assert_eq!(expected_cores(Work::Cpu, "gil", 4, 8), 1.0);
        assert_eq!(expected_cores(Work::Cpu, "async", 4, 8), 1.0);
        assert_eq!(expected_cores(Work::Cpu, "thread", 4, 8), 4.0);
        assert_eq!(expected_cores(Work::Cpu, "process", 16, 2), 2.0);
        assert_eq!(expected_cores(Work::Io, "process", 16, 2), 0.0);
        assert!(is_disturbed(1.5, 2.0) && !is_disturbed(1.7, 2.0) && !is_disturbed(0.0, 0.0));
    }

    #[test]
    fn a_disturbed_run_is_measured_again_and_the_least_disturbed_kept() {
        let mut figures = vec![
            (Duration::from_secs(1), 500_000),
            (Duration::from_secs(1), 1_200_000),
            (Duration::from_secs(1), 900_000),
        ]
        .into_iter();
        let (best, taken) = measure(2.0, 3, |_| {}, || Ok(figures.next().unwrap())).unwrap();
        assert_eq!((best.1, taken), (1_200_000, 3));
        let (best, taken) =
            measure(1.0, 3, |_| {}, || Ok((Duration::from_secs(1), 950_000))).unwrap();
        assert_eq!((best.1, taken), (950_000, 1));
        let (_, taken) = measure(0.0, 3, |_| {}, || Ok((Duration::from_secs(1), 0))).unwrap();
        assert_eq!(taken, 1, "waiting work is never measured again");
    }
}
