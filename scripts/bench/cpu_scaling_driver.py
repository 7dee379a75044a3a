#!/usr/bin/env python3
"""Driver for cpu_scaling.sh. Tools: troop (process, thread); GNU parallel, xargs and rust-parallel running the
compiled primes program (each if installed); Python ProcessPoolExecutor(J).map and multiprocessing.Pool(J).map
(chunksize 1) on the calibrated limit. Every rep runs every (tool, -j) variant once, in rotated order.
Reports, per tool, median/min/max wall at -j1 and -jCORES, the speedup median(j1)/median(jCORES),
and the spread of the per-rep speedups (j1 and jCORES of the same rep)."""
import argparse, os, resource, shutil, statistics, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep scripts/bench free of __pycache__
from py_primes import count_primes  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--tasks", type=int, default=8)
ap.add_argument("--limit", type=int, default=2500000)
ap.add_argument("--cores", type=int, default=2, help="compare -jCORES with -j1")
ap.add_argument("--pylimit", type=int, default=0, help="limit for the Python tasks; 0 = calibrate")
ap.add_argument("--troop", required=True)
ap.add_argument("--cprimes", required=True)
ap.add_argument("--workdir", required=True)
a = ap.parse_args()
J = a.cores


def load1():
    return open("/proc/loadavg").read().split()[0]


def run(cmd, stdin_path=None, expect_lines=None):
    fin = open(stdin_path) if stdin_path else subprocess.DEVNULL
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(["/bin/bash", "-c", cmd], stdin=fin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if stdin_path:
        fin.close()
    if p.returncode != 0:
        sys.exit(f"FAILED rc={p.returncode}: {cmd}\n{p.stderr.decode()[-2000:]}")
    if expect_lines is not None:
        n = len(p.stdout.split())
        if n != expect_lines:
            sys.exit(f"FAILED: {cmd} printed {n} results, expected {expect_lines}\n{p.stderr.decode()[-2000:]}")
    return dt, cpu


def med3(cmd):
    """median wall and median CPU (user+sys) seconds of 3 runs"""
    r = [run(cmd) for _ in range(3)]
    return statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)


def py_cpu(limit):
    t0 = time.process_time(); count_primes(limit); return time.process_time() - t0


# Input: LIMIT repeated TASKS times, one per line, fed on stdin to every shell tool.
inp = os.path.join(a.workdir, "limits.txt")
with open(inp, "w") as f:
    f.write(f"{a.limit}\n" * a.tasks)

# One-task times (median of 3), to show the per-task work is the same for every tool.
# Calibrated on CPU time (user+sys), which competing load on a shared machine disturbs far less than wall time.
w_troop1, c_troop1 = med3(f"{a.troop} run -j1 @primes {{}} ::: {a.limit}")
w_c1, c_c1 = med3(f"{a.cprimes} {a.limit}")
if a.pylimit == 0:
    lim = 60000
    for _ in range(8):
        dt = statistics.median(py_cpu(lim) for _ in range(3))
        if abs(dt / c_troop1 - 1) < 0.05:
            break
        lim = int(lim * (c_troop1 / dt) ** (2 / 3))
    a.pylimit = lim
c_py1 = statistics.median(py_cpu(a.pylimit) for _ in range(3))
print(f"# one task, CPU s (wall s), median of 3: troop -j1 @primes {a.limit}: {c_troop1:.3f} ({w_troop1:.3f}, incl. start-up); "
      f"C primes {a.limit}: {c_c1:.3f} ({w_c1:.3f}); Python count_primes({a.pylimit}) in-process: {c_py1:.3f}")
print(f"# {a.tasks} tasks, -j1 vs -j{J}, {a.reps} reps, all variants interleaved, order rotated each rep; "
      f"python {sys.version.split()[0]}")

tools = [
    ("troop (process)", lambda j: f"{a.troop} run -j{j} --mode process @primes", True),
    ("troop (thread)", lambda j: f"{a.troop} run -j{j} --mode thread @primes", True),
]
if shutil.which("parallel"):
    tools.append(("GNU parallel + C primes", lambda j: f"parallel --will-cite -j{j} {a.cprimes}", True))
else:
    print("# GNU parallel not available: skipped")
tools.append(("xargs + C primes", lambda j: f"xargs -P{j} -n1 {a.cprimes}", True))
if shutil.which("rust-parallel"):
    tools.append(("rust-parallel + C primes", lambda j: f"rust-parallel -j{j} {a.cprimes}", True))
else:
    print("# rust-parallel not available: skipped")
tools.append(("Python ProcessPoolExecutor", lambda j: f"python3 {HERE}/py_primes.py {j} {a.tasks} {a.pylimit} executor", False))
tools.append(("Python multiprocessing.Pool", lambda j: f"python3 {HERE}/py_primes.py {j} {a.tasks} {a.pylimit} pool", False))
for name, c, _ in tools:
    print(f"#   {name:28s}: {c('J')}" + (f"  < file with {a.tasks} lines '{a.limit}'" if _ else ""))

variants = [(name, j) for name, _, _ in tools for j in (1, J)]
cmd = {(name, j): (c(j), stdin) for name, c, stdin in tools for j in (1, J)}
res = {v: [] for v in variants}
cpus = {v: [] for v in variants}
loads = []
for r in range(a.reps):
    k = (r * 3) % len(variants)  # rotate by 3 so the j1/jN pairs of a tool do not always sit side by side
    for v in variants[k:] + variants[:k]:
        loads.append(float(load1()))
        c, stdin = cmd[v]
        dt, cpu = run(c, inp if stdin else None, a.tasks)
        res[v].append(dt); cpus[v].append(cpu)
    print(f"# rep {r + 1}/{a.reps} done, load {load1()}", file=sys.stderr, flush=True)

print()
print(f"| tool | -j1 median s | min | max | -j{J} median s | min | max | speedup = median j1 / median j{J} "
      f"| per-rep speedup min..max | CPU s j1 / j{J} (medians) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, _, _ in tools:
    v1, vj = res[(name, 1)], res[(name, J)]
    m1, mj = statistics.median(v1), statistics.median(vj)
    per = [x / y for x, y in zip(v1, vj)]
    print(f"| {name} | {m1:.3f} | {min(v1):.3f} | {max(v1):.3f} | {mj:.3f} | {min(vj):.3f} | {max(vj):.3f} "
          f"| **{m1 / mj:.2f}x** | {min(per):.2f}..{max(per):.2f} "
          f"| {statistics.median(cpus[(name, 1)]):.2f} / {statistics.median(cpus[(name, J)]):.2f} |")
print()
for name in ("troop (process)", "troop (thread)"):
    sp = statistics.median(res[(name, 1)]) / statistics.median(res[(name, J)])
    print(f"# target: {name} speedup -j{J} over -j1 >= {0.95 * J:.2f}x: {sp:.2f}x -> {'met' if sp >= 0.95 * J else 'MISSED'}")
print(f"# wall-time ratio troop / (xargs + C primes) at -j{J}, medians (1.00 = same, lower is faster): process {statistics.median(res[('troop (process)', J)]) / statistics.median(res[('xargs + C primes', J)]):.2f}, "
      f"thread {statistics.median(res[('troop (thread)', J)]) / statistics.median(res[('xargs + C primes', J)]):.2f}")
print(f"# 1-min load sampled before each run: min {min(loads):.2f} median {statistics.median(loads):.2f} max {max(loads):.2f}")
ncpu = os.cpu_count() or 1
# this benchmark itself contributes about (1 + J) / 2 to the load average; more than that means competing work
if statistics.median(loads) > ncpu - J + (1 + J) / 2 + 0.5:
    print(f"# WARNING: median load {statistics.median(loads):.2f} on {ncpu} CPUs: other work held CPUs during this run, "
          f"so -j{J} could not get {J} idle CPUs and every speedup above is bounded by that, not only by the tool.")
