//! troop's pool as a library, in thread mode: the same registered task functions, run on
//! threads of this process.
//!
//! Run it with `cargo run --example pool_thread`.

use troop::{LibraryError, Mode, Pool};

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn main() -> Result<(), LibraryError> {
    let prime = troop::task!(is_prime);
    let slow = troop::register("slow", |ms: u64| {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        ms
    });
    // Not needed in thread mode, but harmless: a program that may use either mode calls it.
    troop::worker_main();

    let pool = Pool::builder().workers(4).mode(Mode::Thread).build()?;
    let flags = pool.map(prime, 0..50_000u64)?;
    println!(
        "map: {} primes below 50000",
        flags.iter().filter(|p| **p).count()
    );

    let unordered = pool.map_unordered(slow, [300, 10, 200, 20])?;
    println!("map_unordered (completion order): {unordered:?}");

    // With every worker busy, a task waits in the pool, where it can still be cancelled.
    let busy: Vec<_> = (0..4)
        .map(|_| pool.submit(slow, 200))
        .collect::<Result<_, _>>()?;
    let extra: Vec<_> = (0..8)
        .map(|_| pool.submit(slow, 200))
        .collect::<Result<_, _>>()?;
    let cancelled = extra.iter().filter(|h| h.cancel()).count();
    println!("cancelled {cancelled} queued tasks of {}", extra.len());
    for handle in busy {
        handle.wait()?;
    }
    // Dropping the pool stops it: threads finish the task they run and are joined.
    drop(pool);
    Ok(())
}
