//! The library's `map` of many tiny tasks: tasks per second over several repetitions.
//!
//! `cargo run --release --example library_map -- [TASKS] [WORKERS] [REPS] [CHUNKSIZE|auto] [process|thread] [PREFETCH]`
//! prints one line: `library_map mode=.. chunksize=.. tasks=.. median=.. min=.. max=..` (tasks/s).
//! scripts/bench/library_map.sh compares it with Python's `multiprocessing.Pool.map`.

use std::time::Instant;

use troop::{Mode, Pool};

fn tiny(x: u64) -> u64 {
    x.wrapping_mul(x)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let task = troop::task!(tiny);
    troop::worker_main();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let tasks: u64 = arg(0, "1000000").parse()?;
    let workers: usize = arg(1, "2").parse()?;
    let reps: usize = arg(2, "5").parse()?;
    let chunk = arg(3, "auto");
    let mode = match arg(4, "process").as_str() {
        "thread" => Mode::Thread,
        _ => Mode::Process,
    };
    let prefetch: usize = arg(5, "2").parse()?;
    let mut builder = Pool::builder()
        .workers(workers)
        .mode(mode)
        .prefetch(prefetch);
    if chunk != "auto" {
        builder = builder.chunksize(chunk.parse()?);
    }
    let pool = builder.build()?;
    let want: u64 = (0..tasks).map(tiny).fold(0, u64::wrapping_add);
    let mut rates = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        let results = pool.map(task, 0..tasks)?;
        let secs = started.elapsed().as_secs_f64();
        let got = results.iter().fold(0u64, |a, b| a.wrapping_add(*b));
        assert!(
            results.len() as u64 == tasks && got == want,
            "wrong results"
        );
        rates.push(tasks as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "library_map mode={mode:?} chunksize={chunk} prefetch={prefetch} tasks={tasks} workers={workers} reps={reps} median={:.0} min={:.0} max={:.0}",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    Ok(())
}
