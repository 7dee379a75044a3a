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

/// One batch of identical tasks.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Batch {
    pub name: &'static str,
    #[serde(serialize_with = "as_text")]
    pub kernel: Kernel,
    pub tasks: usize,
}

fn as_text<S: serde::Serializer>(k: &Kernel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&k.to_string())
}

/// One measured run of a batch.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub mode: &'static str,
    pub workers: usize,
    pub wall_s: f64,
    pub speedup: f64,
    /// CPU time of troop and its workers over wall time × cores, in percent.
    pub cpu_percent: f64,
}

/// Everything the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cores: usize,
    pub batches: Vec<(Batch, Vec<Row>)>,
}

/// The two batches for `workers` workers.
pub fn batches(workers: usize, quick: bool) -> [Batch; 2] {
    let w = workers.max(2);
    if quick {
        [
            Batch {
                name: "CPU-bound",
                kernel: Kernel::Primes(1_200_000),
                tasks: 2 * w,
            },
            Batch {
                name: "I/O-bound",
                kernel: Kernel::Sleep(100),
                tasks: 4 * w,
            },
        ]
    } else {
        [
            Batch {
                name: "CPU-bound",
                kernel: Kernel::Primes(2_500_000),
                tasks: 4 * w,
            },
            Batch {
                name: "I/O-bound",
                kernel: Kernel::Sleep(200),
                tasks: 8 * w,
            },
        ]
    }
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
            eprintln!("{line}");
        } else {
            println!("{line}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Runs the demo: prints the table (or JSON), writes the chart, prints the reading.
pub fn run(config: &DemoConfig) -> Result<Exit, RunError> {
    let usable = crate::jobs::usable_cores();
    let say = |line: String| {
        if config.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    say(format!(
        "troop demo: the same two batches serially and in {} modes, {} workers ({} usable cores; {})",
        MODES.len(),
        config.cores,
        usable,
        machine()
    ));
    let mut report = Report {
        cores: config.cores,
        batches: Vec::new(),
    };
    for batch in batches(config.cores, config.quick) {
        say(format!(
            "{}: {} × {}",
            batch.name, batch.tasks, batch.kernel
        ));
        let serial = serial(&batch);
        let base = serial.0.as_secs_f64();
        let mut rows = vec![row("serial", 1, serial, base, config.cores)];
        for mode in MODES {
            let measured = pooled(mode, config.cores, &batch, config.json)?;
            rows.push(row(mode.name(), config.cores, measured, base, config.cores));
        }
        report.batches.push((batch, rows));
    }
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
        println!("{}", reading(&report));
    }
    Ok(Exit::Success)
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
    (wall, cpu_us): (Duration, u64),
    base: f64,
    cores: usize,
) -> Row {
    let wall_s = wall.as_secs_f64();
    Row {
        mode,
        workers,
        wall_s,
        speedup: base / wall_s,
        cpu_percent: cpu_us as f64 / 1e6 / (wall_s * cores as f64) * 100.0,
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
    for (batch, rows) in &report.batches {
        for r in rows {
            println!(
                "{:<10} {:<8} {:>7} {:>8.2} {:>7.2}× {:>7.0}%",
                batch.name, r.mode, r.workers, r.wall_s, r.speedup, r.cpu_percent
            );
        }
    }
}

fn write_chart(config: &DemoConfig, report: &Report) -> Result<(), RunError> {
    let names: Vec<&str> = report.batches.iter().map(|(b, _)| b.name).collect();
    let modes: Vec<&str> = report.batches[0].1.iter().map(|r| r.mode).collect();
    let groups: Vec<BarGroup> = modes
        .iter()
        .map(|m| BarGroup {
            label: m.to_string(),
            values: report
                .batches
                .iter()
                .filter_map(|(_, rows)| rows.iter().find(|r| r.mode == *m).map(|r| r.speedup))
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
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Two sentences that read the measured figures: which modes scaled on the CPU-bound batch and
/// which stayed near serial (and why, when the figures say), and how the waits overlapped.
pub fn reading(report: &Report) -> String {
    let n = report.cores as f64;
    let cpu: Vec<&Row> = report.batches[0]
        .1
        .iter()
        .filter(|r| r.mode != "serial")
        .collect();
    let io: Vec<&Row> = report.batches[1]
        .1
        .iter()
        .filter(|r| r.mode != "serial")
        .collect();
    let scaled: Vec<&Row> = cpu
        .iter()
        .copied()
        .filter(|r| r.speedup >= 0.75 * n)
        .collect();
    let flat: Vec<&Row> = cpu.iter().copied().filter(|r| r.speedup < 1.3).collect();
    let partly: Vec<&Row> = cpu
        .iter()
        .copied()
        .filter(|r| r.speedup >= 1.3 && r.speedup < 0.75 * n)
        .collect();
    let mut first = String::from("On the CPU-bound batch");
    if !scaled.is_empty() {
        first += &format!(", {} used the {} workers", listing(&scaled), report.cores);
    }
    if !partly.is_empty() {
        first += &format!(
            "{} {} scaled only partly",
            if scaled.is_empty() { "," } else { ";" },
            listing(&partly)
        );
    }
    if !flat.is_empty() {
        let lesson = flat.iter().all(|r| r.mode == "gil" || r.mode == "async");
        first += &format!(
            "{} {} stayed near serial{}",
            if scaled.is_empty() && partly.is_empty() {
                ","
            } else {
                ", while"
            },
            listing(&flat),
            if lesson {
                ": with one lock, or one thread, only one core computes at a time".to_string()
            } else {
                let busiest = flat.iter().map(|r| r.cpu_percent).fold(0.0, f64::max);
                format!(" (CPU use at most {busiest:.0}%: other work held the cores)")
            }
        );
    }
    first.push('.');
    let (lo, hi) = io.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| {
        (lo.min(r.speedup), hi.max(r.speedup))
    });
    let second = if lo >= 0.75 * n {
        format!(
            "On the I/O-bound batch every mode overlapped the waits ({lo:.2}× to {hi:.2}×), because waiting needs no core: one lock or one event loop is enough for I/O."
        )
    } else {
        let slow: Vec<&Row> = io
            .iter()
            .copied()
            .filter(|r| r.speedup < 0.75 * n)
            .collect();
        format!(
            "On the I/O-bound batch the waits overlapped unevenly ({lo:.2}× to {hi:.2}×): {} fell short of the {} workers.",
            listing(&slow),
            report.cores
        )
    };
    format!("{first}\n{second}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(speedups: &[(&'static str, f64)]) -> Vec<Row> {
        speedups
            .iter()
            .map(|&(mode, speedup)| Row {
                mode,
                workers: 2,
                wall_s: 1.0 / speedup,
                speedup,
                cpu_percent: 50.0,
            })
            .collect()
    }

    fn report(cpu: &[(&'static str, f64)], io: &[(&'static str, f64)]) -> Report {
        let [b1, b2] = batches(2, true);
        Report {
            cores: 2,
            batches: vec![(b1, rows(cpu)), (b2, rows(io))],
        }
    }

    #[test]
    fn the_reading_quotes_the_figures_and_follows_them() {
        let good = report(
            &[
                ("serial", 1.0),
                ("thread", 1.93),
                ("gil", 0.98),
                ("async", 1.01),
                ("process", 1.95),
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
            reading(&good),
            "On the CPU-bound batch, thread (1.93×) and process (1.95×) used the 2 workers, while gil (0.98×) and async (1.01×) stayed near serial: with one lock, or one thread, only one core computes at a time.\n\
             On the I/O-bound batch every mode overlapped the waits (1.95× to 1.99×), because waiting needs no core: one lock or one event loop is enough for I/O."
        );
        let busy = report(
            &[
                ("serial", 1.0),
                ("thread", 1.15),
                ("gil", 0.99),
                ("async", 1.0),
                ("process", 1.4),
            ],
            &[
                ("serial", 1.0),
                ("thread", 1.2),
                ("gil", 1.9),
                ("async", 1.9),
                ("process", 1.9),
            ],
        );
        let text = reading(&busy);
        assert!(
            text.contains(", process (1.40×) scaled only partly"),
            "{text}"
        );
        assert!(
            text.contains("while thread (1.15×), gil (0.99×) and async (1.00×) stayed near serial (CPU use at most 50%"),
            "{text}"
        );
        assert!(
            text.contains("unevenly (1.20× to 1.90×): thread (1.20×) fell short"),
            "{text}"
        );
    }
}
