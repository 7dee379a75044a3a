//! troop's pool as a library, in process mode: the task functions run in worker processes,
//! which are this very program started again.
//!
//! Run it with `cargo run --example pool_process`.

use troop::{LibraryError, Mode, Pool};

/// A task function: serde arguments and results, so it can cross a process boundary.
fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), LibraryError> {
    // Register every task function first, then let a worker serve: in a worker process,
    // worker_main() never returns; here it returns at once.
    let steps = troop::task!(collatz_steps);
    let shout = troop::register("shout", |s: String| s.to_uppercase());
    let fail = troop::register("fail", |x: u32| -> u32 { panic!("no luck with {x}") });
    troop::worker_main();

    let pool = Pool::builder().workers(2).mode(Mode::Process).build()?;
    println!(
        "workers: {:?} (this program is {})",
        pool.pids(),
        std::process::id()
    );

    // map: results in input order; a chunk of calls travels in one message.
    let all = pool.map(steps, 1..=100_000u64)?;
    let (best, most) = all.iter().enumerate().max_by_key(|(_, s)| **s).unwrap();
    println!(
        "map: {} results; {} takes the most steps ({most})",
        all.len(),
        best + 1
    );

    // imap: a stream over an endless input, read only as results are taken.
    let first: Vec<u32> = pool
        .imap(steps, 1u64..)
        .take(10)
        .collect::<Result<_, _>>()?;
    println!("imap: {first:?}");

    // submit: one call, a handle to wait on or cancel.
    let handle = pool.submit(shout, "hello from a worker".to_string())?;
    println!("submit: {}", handle.wait()?);

    // A panic is an error for that task alone; the pool goes on.
    match pool.submit(fail, 7)?.wait() {
        Err(e) => println!("a panicking task: {e}"),
        Ok(v) => println!("unexpected: {v}"),
    }
    let handles = (1..=5u64)
        .map(|n| pool.submit(steps, n * 1_000_003))
        .collect::<Result<Vec<_>, _>>()?;
    for handle in troop::as_completed(handles) {
        println!("as_completed: {}", handle.wait()?);
    }
    // Finish everything asked for, then stop and reap the workers (dropping the pool would
    // stop them at once).
    pool.shutdown();
    Ok(())
}
