#!/usr/bin/env python3
"""Driver for dispatch.sh. Every rep runs every variant once, in rotated order.
Reports jobs/s median/min/max, wall ms/job, CPU ms/job (children user+sys) and the ratio of median jobs/s
to xargs's median jobs/s measured in the same run."""
import argparse, os, resource, shutil, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=5000)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--j", type=int, default=2)
ap.add_argument("--troop", required=True)
ap.add_argument("--spawnbench", required=True)
a = ap.parse_args()
N, J = a.n, a.j
TRUE = "/usr/bin/true"

variants = [
    ("troop (process)", f"seq {N} | {a.troop} run -j{J} {TRUE}"),
    ("troop (thread)", f"seq {N} | {a.troop} run -j{J} --mode thread {TRUE}"),
    ("xargs -P", f"seq {N} | xargs -P{J} -n1 {TRUE}"),
]
if shutil.which("parallel"):
    variants.append(("GNU parallel", f"seq {N} | parallel --will-cite -j{J} {TRUE}"))
else:
    print("# GNU parallel not available: skipped")
if shutil.which("rust-parallel"):
    variants.append(("rust-parallel", f"seq {N} | rust-parallel -j{J} {TRUE}"))
else:
    print("# rust-parallel not available: skipped")
per = N // J
variants.append((f"floor: posix_spawn+waitpid, {J} spawners", f"{a.spawnbench} {per} {J} {TRUE}"))
NJOBS = {name: (per * J if name.startswith("floor") else N) for name, _ in variants}


def load1():
    return open("/proc/loadavg").read().split()[0]


def run(cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(["/bin/bash", "-c", cmd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"FAILED rc={p.returncode}: {cmd}\n{p.stderr.decode()[-2000:]}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


print(f"# N={N} jobs of {TRUE}, -j{J}, {a.reps} reps, variants interleaved, order rotated each rep; output -> /dev/null")
for name, cmd in variants:
    print(f"#   {name:38s}: {cmd}")
res = {n: [] for n, _ in variants}
cpu = {n: [] for n, _ in variants}
loads = []
for r in range(a.reps):
    k = r % len(variants)
    for name, cmd in variants[k:] + variants[:k]:
        loads.append(float(load1()))
        dt, c = run(cmd)
        res[name].append(NJOBS[name] / dt)
        cpu[name].append(c / NJOBS[name])
    print(f"# rep {r + 1}/{a.reps} done, load {load1()}", file=sys.stderr, flush=True)

base = statistics.median(res["xargs -P"])
print()
print("| variant | jobs/s median | min | max | wall ms/job | CPU ms/job (user+sys) | jobs/s ratio vs xargs (medians) | per-rep ratio min..max |")
print("|---|---|---|---|---|---|---|---|")
for name, _ in variants:
    v = res[name]; m = statistics.median(v)
    pr = [x / y for x, y in zip(v, res["xargs -P"])]
    print(f"| {name} | {m:.0f} | {min(v):.0f} | {max(v):.0f} | {1000 / m:.3f} | {statistics.median(cpu[name]) * 1000:.3f} "
          f"| **{m / base:.2f}x** | {min(pr):.2f}..{max(pr):.2f} |")
print()
for name in ("troop (process)", "troop (thread)"):
    rt = statistics.median(res[name]) / base
    print(f"# target: {name} jobs/s >= 1.2x xargs: {rt:.2f}x -> {'met' if rt >= 1.2 else 'MISSED'}")
print(f"# 1-min load sampled before each run: min {min(loads):.2f} median {statistics.median(loads):.2f} max {max(loads):.2f}")
