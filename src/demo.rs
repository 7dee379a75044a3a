//! `troop demo`: the same CPU-bound batch serially, on threads and on processes, side by side.

use std::io::Write;
use std::time::{Duration, Instant};

use troop_worker::kernel::{FreeHost, Kernel};

use crate::cli::DemoConfig;
use crate::config::{Mode, RunConfig};
use crate::error::RunError;
use crate::exit::Exit;
use crate::input::{InputSpec, SourceSpec, Template};
use crate::observe::{Observer, cpu_time_us};
use crate::run_io::RunIo;

/// The prime limit of one demo task: about 0.7 s of one core on a 2026 x86-64 core.
pub const DEMO_LIMIT: u64 = 3_000_000;

/// One measured row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub mode: &'static str,
    pub workers: usize,
    pub wall: Duration,
    pub cpu_us: u64,
}

/// Prints the worker pids to watch while the process pool runs.
struct Announce;
impl Observer for Announce {
    fn pool_up(&mut self, mode: Mode, pids: &[u32]) {
        if mode == Mode::Process {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            println!("  process pool up, one line per worker: top -p {}", list.join(","));
            let _ = std::io::stdout().flush();
        }
    }
}

/// Runs the demo and prints its table.
pub fn run(config: &DemoConfig) -> Result<Exit, RunError> {
    let tasks = if config.quick { 4 } else { 4 * config.cores.max(2) };
    let limit = DEMO_LIMIT;
    println!(
        "troop demo: {tasks} tasks of @primes {limit} (CPU-bound), {} workers, {} usable cores",
        config.cores,
        crate::jobs::usable_cores()
    );
    let mut rows = Vec::new();
    rows.push(serial(tasks, limit));
    for mode in [Mode::Thread, Mode::Process] {
        rows.push(pooled(mode, config.cores, tasks, limit)?);
    }
    print_table(&rows, crate::jobs::usable_cores());
    Ok(Exit::Success)
}

fn serial(tasks: usize, limit: u64) -> Row {
    let cpu0 = cpu_time_us();
    let t0 = Instant::now();
    for _ in 0..tasks {
        Kernel::Primes(limit)
            .run(&mut FreeHost, &mut Vec::new())
            .expect("a free host never stops a kernel");
    }
    Row {
        mode: "serial",
        workers: 1,
        wall: t0.elapsed(),
        cpu_us: cpu_time_us() - cpu0,
    }
}

fn pooled(mode: Mode, workers: usize, tasks: usize, limit: u64) -> Result<Row, RunError> {
    let template = Template::parse(&["@primes".to_string(), "{}".to_string()])?;
    let input = InputSpec {
        sources: vec![(SourceSpec::Args(vec![limit.to_string(); tasks]), false)],
        colsep: None,
    };
    let mut config = RunConfig::new(template, input, workers);
    config.mode = mode;
    let summary = crate::supervisor::run(&config, RunIo::discard(), &mut Announce)?;
    if summary.failed > 0 || summary.total != tasks as u64 {
        return Err(RunError::Usage(format!(
            "the {mode:?} run finished {} of {tasks} tasks, {} failed",
            summary.total, summary.failed
        )));
    }
    Ok(Row {
        mode: mode.name(),
        workers,
        wall: summary.wall,
        cpu_us: summary.cpu_us,
    })
}

fn print_table(rows: &[Row], cores: usize) {
    let base = rows[0].wall.as_secs_f64();
    println!();
    println!("{:<8} {:>7} {:>8} {:>8} {:>8}", "mode", "workers", "wall s", "speedup", "CPU use");
    for r in rows {
        let wall = r.wall.as_secs_f64();
        let util = r.cpu_us as f64 / 1e6 / (wall * cores as f64) * 100.0;
        println!("{:<8} {:>7} {:>8.2} {:>7.2}x {:>7.0}%", r.mode, r.workers, wall, base / wall, util);
    }
}
