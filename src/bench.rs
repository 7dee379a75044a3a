//! `troop bench`: scaling curves and dispatch overhead, measured through troop's own supervisor.
//!
//! Every (mode, workers) cell runs `repeat` times, interleaved: each repetition runs every cell
//! once, in a rotated order, so a burst of load from elsewhere spreads over all cells instead of
//! spoiling one. Figures are medians with their min and max; speedups are ratios of medians taken
//! in the same run.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::chart::{Series, scaling_curves};
use crate::config::{Chunk, Mode, RunConfig};
use crate::error::RunError;
use crate::exit::Exit;
use crate::input::{InputSpec, SourceSpec, Template};
use crate::observe::Quiet;
use crate::run_io::RunIo;

/// How the results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// Settings of `troop bench`.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// The kernel and its argument, e.g. `@primes 1000000`.
    pub kernel: String,
    pub modes: Vec<Mode>,
    pub workers: Vec<usize>,
    pub tasks: usize,
    pub repeat: usize,
    pub chunk: Chunk,
    pub format: Format,
    pub svg: Option<PathBuf>,
    /// Measure dispatch overhead (`@noop` through IPC and in-process) instead of scaling.
    pub dispatch: bool,
}

/// One measured cell.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub mode: &'static str,
    pub workers: usize,
    pub chunksize: String,
    pub tasks: usize,
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    /// Median wall time of the fewest workers measured in this mode, over this cell's.
    pub speedup: f64,
    /// Speedup per added worker: speedup × base workers / workers. None for `--dispatch`, where
    /// cells differ in batching, not in workers.
    pub efficiency: Option<f64>,
    pub tasks_per_s: f64,
    pub us_per_task: f64,
}

/// Runs the benchmark and prints it.
pub fn run(config: &BenchConfig) -> Result<Exit, RunError> {
    let cells = if config.dispatch {
        dispatch(config)?
    } else {
        scaling(config)?
    };
    match config.format {
        Format::Table => print_table(config, &cells),
        Format::Csv => print_csv(&cells),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&cells).expect("cells serialize")
        ),
    }
    if let Some(path) = &config.svg {
        let series: Vec<Series> = config
            .modes
            .iter()
            .map(|m| Series {
                label: format!(
                    "{}{}",
                    m.name(),
                    if config.dispatch {
                        " (tasks/s ÷ 1 worker)"
                    } else {
                        ""
                    }
                ),
                points: cells
                    .iter()
                    .filter(|c| c.mode == m.name())
                    .map(|c| (c.workers as f64, c.speedup))
                    .collect(),
            })
            .collect();
        let title = format!(
            "{} × {}: speedup against workers",
            config.tasks, config.kernel
        );
        scaling_curves(path, &title, &series).map_err(|e| RunError::Usage(e.to_string()))?;
        if config.format == Format::Table {
            println!("chart: {}", path.display());
        }
    }
    Ok(Exit::Success)
}

/// Wall times of every (mode, workers, chunk) cell, interleaved over the repetitions.
fn measure(
    config: &BenchConfig,
    cells: &[(Mode, usize, Chunk)],
) -> Result<Vec<Vec<Duration>>, RunError> {
    let mut times = vec![Vec::new(); cells.len()];
    for rep in 0..config.repeat.max(1) {
        for k in 0..cells.len() {
            let i = (k + rep) % cells.len();
            let (mode, workers, chunk) = cells[i];
            times[i].push(once(config, mode, workers, chunk)?);
        }
    }
    Ok(times)
}

fn once(
    config: &BenchConfig,
    mode: Mode,
    workers: usize,
    chunk: Chunk,
) -> Result<Duration, RunError> {
    let mut words: Vec<String> = config
        .kernel
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let arg = if words.len() > 1 {
        words.pop().unwrap_or_default()
    } else {
        String::new()
    };
    words.push("{}".into());
    let template = Template::parse(&words)?;
    let input = InputSpec {
        sources: vec![(
            SourceSpec::Args(vec![arg.into_bytes(); config.tasks]),
            false,
        )],
        colsep: None,
        ..InputSpec::default()
    };
    let mut run = RunConfig::new(template, input, workers);
    run.mode = mode;
    run.chunk = chunk;
    let summary = crate::supervisor::run(&run, RunIo::discard(), &mut Quiet)?;
    if summary.failed > 0 {
        return Err(RunError::Usage(format!(
            "{} of the benchmark's tasks failed in {} mode",
            summary.failed,
            mode.name()
        )));
    }
    Ok(summary.wall)
}

fn scaling(config: &BenchConfig) -> Result<Vec<Cell>, RunError> {
    let grid: Vec<(Mode, usize, Chunk)> = config
        .modes
        .iter()
        .flat_map(|&m| config.workers.iter().map(move |&w| (m, w, config.chunk)))
        .collect();
    let times = measure(config, &grid)?;
    Ok(cells(config, &grid, &times))
}

fn dispatch(config: &BenchConfig) -> Result<Vec<Cell>, RunError> {
    let w = config.workers.last().copied().unwrap_or(2);
    let grid: Vec<(Mode, usize, Chunk)> = config
        .modes
        .iter()
        .flat_map(|&m| [(m, w, Chunk::Fixed(1)), (m, w, config.chunk)])
        .collect();
    let times = measure(config, &grid)?;
    Ok(cells(config, &grid, &times))
}

fn cells(
    config: &BenchConfig,
    grid: &[(Mode, usize, Chunk)],
    times: &[Vec<Duration>],
) -> Vec<Cell> {
    let medians: Vec<f64> = times.iter().map(|t| median(t)).collect();
    grid.iter()
        .enumerate()
        .map(|(i, &(mode, workers, chunk))| {
            // The base is this mode's cell with the fewest workers (and the same chunking).
            let base = grid
                .iter()
                .enumerate()
                .filter(|(_, (m, _, c))| *m == mode && (*c == chunk || config.dispatch))
                .min_by_key(|(_, (_, w, _))| *w)
                .map_or(i, |(j, _)| j);
            let (base_w, m) = (grid[base].1, medians[i]);
            let speedup = medians[base] / m;
            let secs = |d: &Duration| d.as_secs_f64();
            Cell {
                mode: mode.name(),
                workers,
                chunksize: match chunk {
                    Chunk::Auto => "auto".into(),
                    Chunk::Fixed(n) => n.to_string(),
                },
                tasks: config.tasks,
                median_s: m,
                min_s: times[i].iter().map(secs).fold(f64::MAX, f64::min),
                max_s: times[i].iter().map(secs).fold(0.0, f64::max),
                speedup,
                efficiency: (!config.dispatch).then(|| speedup * base_w as f64 / workers as f64),
                tasks_per_s: config.tasks as f64 / m,
                us_per_task: m * 1e6 / config.tasks as f64,
            }
        })
        .collect()
}

fn median(times: &[Duration]) -> f64 {
    let mut v: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn print_table(config: &BenchConfig, cells: &[Cell]) {
    println!(
        "troop bench: {} × {}, {} repetitions, {} usable cores",
        config.tasks,
        config.kernel,
        config.repeat,
        crate::jobs::usable_cores()
    );
    println!(
        "{:<8} {:>7} {:>6} {:>9} {:>9} {:>9} {:>8} {:>6} {:>12} {:>12}",
        "mode",
        "workers",
        "chunk",
        "median s",
        "min s",
        "max s",
        "speedup",
        "eff.",
        "tasks/s",
        "µs/task"
    );
    for c in cells {
        println!(
            "{:<8} {:>7} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>7.2}× {:>6} {:>12.0} {:>12.2}",
            c.mode,
            c.workers,
            c.chunksize,
            c.median_s,
            c.min_s,
            c.max_s,
            c.speedup,
            c.efficiency
                .map_or("-".to_string(), |e| format!("{:.0}%", e * 100.0)),
            c.tasks_per_s,
            c.us_per_task
        );
    }
}

fn print_csv(cells: &[Cell]) {
    println!(
        "mode,workers,chunksize,tasks,median_s,min_s,max_s,speedup,efficiency,tasks_per_s,us_per_task"
    );
    for c in cells {
        println!(
            "{},{},{},{},{:.6},{:.6},{:.6},{:.4},{},{:.1},{:.3}",
            c.mode,
            c.workers,
            c.chunksize,
            c.tasks,
            c.median_s,
            c.min_s,
            c.max_s,
            c.speedup,
            c.efficiency.map_or(String::new(), |e| format!("{e:.4}")),
            c.tasks_per_s,
            c.us_per_task
        );
    }
}

/// Parses `--workers`: `N`, `A..B` (inclusive) or a comma list.
pub fn parse_workers(text: &str) -> Result<Vec<usize>, String> {
    let bad = || {
        format!("invalid --workers `{text}`: use N, A..B or a list such as 1,2,4 (each at least 1)")
    };
    let list: Vec<usize> = if let Some((a, b)) = text.split_once("..") {
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a == 0 || b < a {
            return Err(bad());
        }
        (a..=b).collect()
    } else {
        text.split(',')
            .map(|w| w.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if list.is_empty() || list.contains(&0) {
        return Err(bad());
    }
    Ok(list)
}

/// Parses `--modes`: a comma list of process, thread, gil, async.
pub fn parse_modes(text: &str) -> Result<Vec<Mode>, String> {
    text.split(',')
        .map(|m| match m.trim() {
            "process" => Ok(Mode::Process),
            "thread" => Ok(Mode::Thread),
            "gil" => Ok(Mode::Gil),
            "async" => Ok(Mode::Async),
            other => Err(format!(
                "unknown mode `{other}` in --modes: use process, thread, gil or async"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_forms() {
        assert_eq!(parse_workers("1..4"), Ok(vec![1, 2, 3, 4]));
        assert_eq!(parse_workers("1,2,8"), Ok(vec![1, 2, 8]));
        assert_eq!(parse_workers("3"), Ok(vec![3]));
        for bad in ["0", "4..1", "a", "1,,2", "0..2"] {
            assert!(
                parse_workers(bad)
                    .unwrap_err()
                    .contains(&format!("`{bad}`")),
                "{bad}"
            );
        }
    }

    #[test]
    fn modes_list() {
        assert_eq!(
            parse_modes("process,gil"),
            Ok(vec![Mode::Process, Mode::Gil])
        );
        assert!(
            parse_modes("process,fiber")
                .unwrap_err()
                .contains("`fiber`")
        );
    }

    #[test]
    fn cells_compute_speedup_and_efficiency_from_medians() {
        let config = BenchConfig {
            kernel: "@spin 10".into(),
            modes: vec![Mode::Thread],
            workers: vec![1, 2],
            tasks: 10,
            repeat: 3,
            chunk: Chunk::Auto,
            format: Format::Table,
            svg: None,
            dispatch: false,
        };
        let grid = [
            (Mode::Thread, 1, Chunk::Auto),
            (Mode::Thread, 2, Chunk::Auto),
        ];
        let ms = Duration::from_millis;
        let times = vec![vec![ms(100), ms(120), ms(90)], vec![ms(50), ms(80), ms(55)]];
        let c = cells(&config, &grid, &times);
        assert!((c[0].speedup - 1.0).abs() < 1e-9);
        assert!(
            (c[1].speedup - 100.0 / 55.0).abs() < 1e-9,
            "{}",
            c[1].speedup
        );
        assert!((c[1].efficiency.unwrap() - 100.0 / 55.0 / 2.0).abs() < 1e-9);
        assert!((c[1].min_s - 0.05).abs() < 1e-9 && (c[1].max_s - 0.08).abs() < 1e-9);
        assert!((c[1].tasks_per_s - 10.0 / 0.055).abs() < 1e-6);
    }

    #[test]
    fn a_small_bench_runs_every_cell_and_thread_mode_scales_on_sleep() {
        let config = BenchConfig {
            kernel: "@sleep 50".into(),
            modes: vec![Mode::Thread, Mode::Async],
            workers: vec![1, 4],
            tasks: 8,
            repeat: 1,
            chunk: Chunk::Auto,
            format: Format::Table,
            svg: None,
            dispatch: false,
        };
        let cells = scaling(&config).unwrap();
        assert_eq!(cells.len(), 4);
        // Sleeps overlap in both modes: 4 workers finish in well under the 1-worker time.
        for c in cells.iter().filter(|c| c.workers == 4) {
            assert!(c.speedup > 1.5, "{} {:.2}", c.mode, c.speedup);
        }
    }
}
