//! The Rust library's pool ([`troop::Pool`]) in both modes: map, map_unordered, imap, submit,
//! cancel, as_completed, panics, lost workers, and workers reaped on drop.
//!
//! This test binary is its own worker program, as a user's program is: `main` registers the
//! task functions and calls `troop::worker_main()` before anything else, so it has no libtest
//! harness (`harness = false`) and runs its tests itself, one after another. Arguments filter
//! the tests by name, as libtest's do.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

use troop::{LibraryError, Mode, Pool, TaskFn};

fn square(x: u64) -> u64 {
    x * x
}

fn picky(x: u64) -> u64 {
    assert!(x != 3, "boom on three");
    x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn touch(path: String) {
    std::fs::write(path, b"ran").unwrap();
}

fn own_pid(_: ()) -> u32 {
    std::process::id()
}

fn abort(_: ()) {
    std::process::abort()
}

/// The registered functions, as every test sees them.
#[derive(Clone, Copy)]
struct Tasks {
    square: TaskFn<u64, u64>,
    picky: TaskFn<u64, u64>,
    sleep_ms: TaskFn<u64, u64>,
    touch: TaskFn<String, ()>,
    own_pid: TaskFn<(), u32>,
    abort: TaskFn<(), ()>,
}

fn pool(mode: Mode, workers: usize) -> Pool {
    Pool::builder().workers(workers).mode(mode).build().unwrap()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// This process's threads named as thread workers (`troop-t<N>`).
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("troop-t"))
        .count()
}

fn map_keeps_input_order(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let want: Vec<u64> = (0..1000u64).map(square).collect();
    assert_eq!(pool.map(t.square, 0..1000u64).unwrap(), want);
    let small = Pool::builder()
        .workers(3)
        .mode(mode)
        .chunksize(7)
        .build()
        .unwrap();
    assert_eq!(small.map(t.square, 0..1000u64).unwrap(), want);
    assert_eq!(
        small.map(t.square, Vec::<u64>::new()).unwrap(),
        Vec::<u64>::new()
    );
}

fn map_unordered_returns_every_result(t: Tasks, mode: Mode) {
    let pool = Pool::builder()
        .workers(2)
        .mode(mode)
        .chunksize(1)
        .build()
        .unwrap();
    // The first input is slow: with two workers, it cannot come first.
    let got = pool.map_unordered(t.sleep_ms, [300, 1, 1, 1, 1]).unwrap();
    assert_eq!(got.len(), 5);
    assert_ne!(got[0], 300, "{got:?}");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, vec![1, 1, 1, 1, 300]);
}

fn imap_streams_an_endless_input_in_order(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let got: Vec<u64> = pool
        .imap(t.square, 1u64..)
        .take(50)
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, (1..=50u64).map(square).collect::<Vec<_>>());
    // The pool is free again once the stream is dropped.
    assert_eq!(pool.map(t.square, [4u64]).unwrap(), vec![16]);
}

fn submit_and_wait(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let handles: Vec<_> = (0..20u64)
        .map(|x| pool.submit(t.square, x).unwrap())
        .collect();
    let got: Vec<u64> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(got, (0..20u64).map(square).collect::<Vec<_>>());
    let pid = pool.submit(t.own_pid, ()).unwrap().wait().unwrap();
    match mode {
        Mode::Process => {
            assert_ne!(pid, std::process::id());
            assert!(pool.pids().contains(&pid), "{pid} not in {:?}", pool.pids());
        }
        Mode::Thread => assert_eq!(pid, std::process::id()),
    }
}

fn a_queued_task_is_cancelled_and_never_runs(t: Tasks, mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let pool = Pool::builder()
        .workers(1)
        .prefetch(1)
        .mode(mode)
        .build()
        .unwrap();
    let busy = pool.submit(t.sleep_ms, 400).unwrap();
    let queued = pool.submit(t.touch, marker.display().to_string()).unwrap();
    assert!(queued.cancel(), "a queued task can be cancelled");
    assert!(queued.is_done());
    assert_eq!(queued.wait(), Err(LibraryError::Cancelled));
    // A running task is not stopped: cancel says so, and its result still comes.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!busy.cancel());
    assert_eq!(busy.wait(), Ok(400));
    pool.shutdown();
    assert!(!marker.exists(), "the cancelled task ran");
}

fn as_completed_yields_the_first_finished_first(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let slow = pool.submit(t.sleep_ms, 500).unwrap();
    let fast = pool.submit(t.sleep_ms, 10).unwrap();
    let order: Vec<u64> = troop::as_completed(vec![slow, fast])
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(order, vec![10, 500]);
}

fn a_panicking_task_is_an_error_and_the_pool_survives(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let pids = pool.pids();
    match pool.map(t.picky, 0..6u64) {
        Err(LibraryError::Task { name, message }) => {
            assert_eq!(name, "picky");
            assert!(message.contains("boom on three"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let each: Vec<_> = pool.imap(t.picky, 2..5u64).collect();
    assert_eq!(each[0], Ok(2));
    assert!(each[1].is_err());
    assert_eq!(each[2], Ok(4));
    assert!(pool.submit(t.picky, 3).unwrap().wait().is_err());
    assert_eq!(pool.map(t.square, 0..4u64).unwrap(), vec![0, 1, 4, 9]);
    assert_eq!(pool.pids(), pids, "no worker was replaced");
}

fn shutdown_finishes_what_was_submitted(t: Tasks, mode: Mode) {
    let pool = pool(mode, 1);
    let handles: Vec<_> = (0..3)
        .map(|_| pool.submit(t.sleep_ms, 50).unwrap())
        .collect();
    pool.shutdown();
    for h in handles {
        assert_eq!(h.wait(), Ok(50));
    }
}

fn dropping_the_pool_reaps_its_workers(t: Tasks, mode: Mode) {
    let pool = pool(mode, 2);
    let pids = pool.pids();
    assert_eq!(pids.len(), 2);
    if mode == Mode::Thread {
        assert!(pids.iter().all(|&p| p == std::process::id()));
        // A thread names itself as it starts, which may be just after its hello.
        let deadline = Instant::now() + Duration::from_secs(5);
        while worker_threads() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(worker_threads(), 2);
        let _busy = pool.submit(t.sleep_ms, 200).unwrap();
        drop(pool);
        assert_eq!(worker_threads(), 0, "worker threads outlived their pool");
        return;
    }
    assert!(pids.iter().all(|&p| alive(p)));
    // One worker busy for a long time: the drop does not wait for it.
    let long = pool.submit(t.sleep_ms, 20_000).unwrap();
    let queued = pool.submit(t.sleep_ms, 20_000).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    drop(pool);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    for pid in pids {
        // Gone and reaped: a zombie would still have its /proc entry.
        assert!(!alive(pid), "worker {pid} outlived its pool");
    }
    assert_eq!(long.wait(), Err(LibraryError::ShutDown));
    assert!(queued.wait().is_err());
}

fn a_worker_that_dies_fails_its_task_and_is_replaced(t: Tasks) {
    let pool = pool(Mode::Process, 1);
    let before = pool.pids();
    match pool.submit(t.abort, ()).unwrap().wait() {
        Err(LibraryError::WorkerLost { name, signal }) => {
            assert_eq!(name, "abort");
            assert_eq!(signal, Some(libc::SIGABRT));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.map(t.square, [5u64]).unwrap(), vec![25]);
    let after = pool.pids();
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
    assert!(!alive(before[0]));
}

fn building_needs_a_worker(_: Tasks) {
    let err = Pool::builder().workers(0).build().unwrap_err();
    assert_eq!(err, LibraryError::NoWorkers);
}

type Test = (String, Box<dyn Fn(Tasks)>);

fn tests() -> Vec<Test> {
    let mut all: Vec<Test> = Vec::new();
    macro_rules! both {
        ($($f:ident),* $(,)?) => {$(
            all.push((format!("{}::process", stringify!($f)), Box::new(|t| $f(t, Mode::Process))));
            all.push((format!("{}::thread", stringify!($f)), Box::new(|t| $f(t, Mode::Thread))));
        )*};
    }
    both!(
        map_keeps_input_order,
        map_unordered_returns_every_result,
        imap_streams_an_endless_input_in_order,
        submit_and_wait,
        a_queued_task_is_cancelled_and_never_runs,
        as_completed_yields_the_first_finished_first,
        a_panicking_task_is_an_error_and_the_pool_survives,
        shutdown_finishes_what_was_submitted,
        dropping_the_pool_reaps_its_workers,
    );
    all.push((
        "a_worker_that_dies_fails_its_task_and_is_replaced::process".into(),
        Box::new(a_worker_that_dies_fails_its_task_and_is_replaced),
    ));
    all.push((
        "building_needs_a_worker".into(),
        Box::new(building_needs_a_worker),
    ));
    all
}

fn main() -> std::process::ExitCode {
    let tasks = Tasks {
        square: troop::task!(square),
        picky: troop::task!(picky),
        sleep_ms: troop::task!(sleep_ms),
        touch: troop::task!(touch),
        own_pid: troop::task!(own_pid),
        abort: troop::task!(abort),
    };
    troop::worker_main();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests() {
            println!("{name}: test");
        }
        return std::process::ExitCode::SUCCESS;
    }
    // Words are name filters; flags are ignored, with the value of those that take one.
    let mut filters: Vec<&String> = Vec::new();
    let mut words = args.iter();
    while let Some(arg) = words.next() {
        if ["--test-threads", "--skip", "--format", "--color", "-Z"].contains(&arg.as_str()) {
            words.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let exact = args.iter().any(|a| a == "--exact");
    let chosen: Vec<Test> = tests()
        .into_iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        name == *f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    println!("\nrunning {} tests", chosen.len());
    let mut failed = Vec::new();
    for (name, test) in &chosen {
        let outcome = catch_unwind(AssertUnwindSafe(|| test(tasks)));
        println!(
            "test {name} ... {}",
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        if outcome.is_err() {
            failed.push(name.clone());
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        chosen.len() - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        println!("failures: {failed:?}");
        std::process::ExitCode::FAILURE
    }
}
