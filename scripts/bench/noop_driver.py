#!/usr/bin/env python3
"""Driver for noop.sh: tasks per second of no-op tasks through troop and Python's pools.

Each variant runs N no-op tasks on 2 workers; every rep runs every variant once in a rotated
order. Python's pools are timed from the first submit to the last result, pool start-up
excluded, as troop bench's figures are timed from the first task to the last report."""
import argparse, concurrent.futures as cf, json, multiprocessing as mp, statistics, subprocess, sys, time

def noop(x):
    return x

def py_ppe(n, chunk):
    with cf.ProcessPoolExecutor(2) as ex:
        list(ex.map(noop, range(64)))  # warm the pool: start-up is not dispatch
        t0 = time.perf_counter()
        for _ in ex.map(noop, range(n), chunksize=chunk):
            pass
        return time.perf_counter() - t0

def py_pool(n, chunk):
    with mp.Pool(2) as p:
        p.map(noop, range(64))
        t0 = time.perf_counter()
        p.map(noop, range(n), chunksize=chunk)
        return time.perf_counter() - t0

def troop_bench(troop, n, mode, chunk):
    out = subprocess.run([troop, "bench", "--dispatch", "--modes", mode, "--workers", "2", "--tasks", str(n),
                          "--repeat", "1", "--chunksize", chunk, "--json"], check=True, capture_output=True, text=True).stdout
    cells = json.loads(out)
    return next(c for c in cells if c["chunksize"] == (chunk if chunk != "1" else "1"))["median_s"]

def troop_cli(troop, n):
    t0 = time.perf_counter()
    subprocess.run(f"seq {n} | {troop} run -j2 @noop > /dev/null", shell=True, check=True)
    return time.perf_counter() - t0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--troop", required=True)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    n = a.n
    variants = [
        ("troop process, chunksize 1", lambda: troop_bench(a.troop, n, "process", "1")),
        ("troop process, chunksize 64", lambda: troop_bench(a.troop, n, "process", "64")),
        ("troop process, chunksize auto", lambda: troop_bench(a.troop, n, "process", "auto")),
        ("troop thread, chunksize 1", lambda: troop_bench(a.troop, n, "thread", "1")),
        ("troop thread, chunksize auto", lambda: troop_bench(a.troop, n, "thread", "auto")),
        ("python ProcessPoolExecutor(2).map, chunksize 1", lambda: py_ppe(min(n, 50000), 1)),
        ("python ProcessPoolExecutor(2).map, chunksize 64", lambda: py_ppe(n, 64)),
        ("python multiprocessing.Pool(2).map, chunksize 1", lambda: py_pool(n, 1)),
        ("python multiprocessing.Pool(2).map, chunksize 64", lambda: py_pool(n, 64)),
        (f"troop CLI: seq {n*5} piped to troop run -j2 @noop", lambda: troop_cli(a.troop, n * 5)),
    ]
    sizes = {name: (min(n, 50000) if "chunksize 1" in name and "Executor" in name else (n * 5 if "CLI" in name else n)) for name, _ in variants}
    times = {name: [] for name, _ in variants}
    for rep in range(a.reps):
        order = variants[rep % len(variants):] + variants[:rep % len(variants)]
        for name, fn in order:
            times[name].append(fn())
        print(f"# rep {rep + 1}/{a.reps} done, load {open('/proc/loadavg').read().split()[0]}", file=sys.stderr)
    rates = {name: [sizes[name] / t for t in ts] for name, ts in times.items()}
    base = statistics.median(rates["python multiprocessing.Pool(2).map, chunksize 64"])
    print(f"\n# {a.reps} reps; tasks per run: {n} (ProcessPoolExecutor at chunksize 1: {min(n, 50000)}; CLI: {n * 5})")
    print("| variant | median tasks/s | min | max | µs/task (median) | ratio vs Pool(2).map chunksize 64 |")
    print("|---|---|---|---|---|---|")
    for name, _ in variants:
        r = rates[name]
        m = statistics.median(r)
        print(f"| {name} | {m:,.0f} | {min(r):,.0f} | {max(r):,.0f} | {1e6 / m:.2f} | {m / base:.2f}x |")
    targets = [("troop process, chunksize 1", 100_000), ("troop process, chunksize auto", 1_500_000),
               (f"troop CLI: seq {n*5} piped to troop run -j2 @noop", 500_000)]
    for name, target in targets:
        m = statistics.median(rates[name])
        print(f"# target: {name} >= {target:,}/s: {'met' if m >= target else 'MISSED'} ({m:,.0f}/s)")

if __name__ == "__main__":
    main()
