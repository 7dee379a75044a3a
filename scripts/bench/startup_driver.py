#!/usr/bin/env python3
"""Driver for startup.sh: wall time of `troop run -jN --start spawn|fork @noop ::: x` and thread mode, with
`/usr/bin/true` timed the same way as the floor of starting any process from this driver. Every run times each
variant once, in an order rotated every run (after WARMUP untimed rounds). Prints median/min/max ms and the
ratio of medians to spawn, measured in the same run."""
import argparse, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--troop", required=True)
ap.add_argument("--workers", default="2 8 32")
ap.add_argument("--runs", type=int, default=30)
ap.add_argument("--warmup", type=int, default=3)
a = ap.parse_args()


def once(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"FAILED rc={p.returncode}: {' '.join(argv)}\n{p.stderr.decode()[-1500:]}")
    return dt * 1000


print(f"# {a.runs} timed runs per variant after {a.warmup} warm-up rounds; variants interleaved, order rotated "
      f"every run; wall time from this driver's subprocess.run, so every row includes the floor row's cost")
for j in a.workers.split():
    variants = [
        ("spawn", [a.troop, "run", f"-j{j}", "--start", "spawn", "@noop", ":::", "x"]),
        ("fork", [a.troop, "run", f"-j{j}", "--start", "fork", "@noop", ":::", "x"]),
        ("thread", [a.troop, "run", f"-j{j}", "--mode", "thread", "@noop", ":::", "x"]),
        ("floor: /usr/bin/true", ["/usr/bin/true"]),
    ]
    t = {n: [] for n, _ in variants}
    for r in range(a.warmup + a.runs):
        k = r % len(variants)
        for name, argv in variants[k:] + variants[:k]:
            ms = once(argv)
            if r >= a.warmup:
                t[name].append(ms)
    base = statistics.median(t["spawn"])
    print()
    print(f"## -j{j}")
    print("| variant | command | median ms | min | max | ratio of medians vs spawn |")
    print("|---|---|---|---|---|---|")
    for name, argv in variants:
        v = t[name]; m = statistics.median(v)
        cmd = " ".join(argv).replace(a.troop, "troop")
        print(f"| {name} | `{cmd}` | {m:.1f} | {min(v):.1f} | {max(v):.1f} | {m / base:.2f}x |")
    print(f"# load {open('/proc/loadavg').read().split()[0]}", file=sys.stderr, flush=True)
