#!/usr/bin/env python3
"""Driver for dispatch.sh. For each command in --cmds (`true`: /usr/bin/true with the input as its argument;
`echo`: /usr/bin/echo {} with the output sent to /dev/null), every rep runs every variant once, in rotated order.
Reports, one table per command, jobs/s median/min/max, wall ms/job, CPU ms/job (children user+sys) and the
ratio of median jobs/s to xargs's median jobs/s measured in the same run."""
import argparse, resource, shutil, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=5000)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--j", type=int, default=2)
ap.add_argument("--cmds", default="true,echo", help="comma-separated: true, echo (one table each)")
ap.add_argument("--troop", required=True)
ap.add_argument("--spawnbench", required=True)
ap.add_argument("--skip", default="", help="comma-separated prefixes of variant names to leave out (e.g. 'GNU')")
a = ap.parse_args()
N, J = a.n, a.j
CMDS = [c.strip() for c in a.cmds.split(",") if c.strip()]
for c in CMDS:
    if c not in ("true", "echo"):
        sys.exit(f"--cmds: unknown command {c!r} (known: true, echo)")
HAVE_PARALLEL = shutil.which("parallel") is not None
HAVE_RUST_PARALLEL = shutil.which("rust-parallel") is not None
if not HAVE_PARALLEL:
    print("# GNU parallel not available: skipped")
if not HAVE_RUST_PARALLEL:
    print("# rust-parallel not available: skipped")


def variants_for(cmd):
    """(name, shell command, jobs it runs) for one command; every variant's output goes to /dev/null"""
    prog = f"/usr/bin/{cmd}"
    # true: the input line is appended as the argument; echo {}: substituted for {}.
    arg = "" if cmd == "true" else " {}"
    xargs = f"xargs -P{J} -n1 {prog}" if cmd == "true" else f"xargs -P{J} -I{{}} {prog} {{}}"
    v = [
        ("troop (process)", f"seq {N} | {a.troop} run -j{J} {prog}{arg}"),
        ("troop (thread)", f"seq {N} | {a.troop} run -j{J} --mode thread {prog}{arg}"),
        ("xargs -P", f"seq {N} | {xargs}"),
    ]
    if HAVE_PARALLEL:
        v.append(("GNU parallel", f"seq {N} | parallel --will-cite -j{J} {prog}{arg}"))
    if HAVE_RUST_PARALLEL:  # rust-parallel appends the input line as the last argument
        v.append(("rust-parallel", f"seq {N} | rust-parallel -j{J} {prog}"))
    per = N // J
    v.append((f"floor: posix_spawn+waitpid, {J} spawners", f"{a.spawnbench} {per} {J} {prog}"))
    # The same spawns, each given its number as its argument like the tools above give theirs.
    v.append((f"floor, with the argument", f"{a.spawnbench} {per} {J} {prog} arg"))
    skip = [s.strip() for s in a.skip.split(",") if s.strip()]
    v = [(name, c) for name, c in v if not any(name.startswith(s) for s in skip)]
    return [(name, c, per * J if name.startswith("floor") else N) for name, c in v]


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


for cmd_name in CMDS:
    variants = variants_for(cmd_name)
    desc = "/usr/bin/true ARG" if cmd_name == "true" else "/usr/bin/echo {}"
    print()
    print(f"## {desc}")
    print(f"# N={N} jobs of {desc}, -j{J}, {a.reps} reps, variants interleaved, order rotated each rep; "
          f"output -> /dev/null")
    for name, cmd, _ in variants:
        print(f"#   {name:38s}: {cmd}")
    if cmd_name == "echo":
        print("#   (the floor spawns /usr/bin/echo with no argument)")
    res = {n: [] for n, _, _ in variants}
    cpu = {n: [] for n, _, _ in variants}
    loads = []
    for r in range(a.reps):
        k = r % len(variants)
        for name, cmd, njobs in variants[k:] + variants[:k]:
            loads.append(float(load1()))
            dt, c = run(cmd)
            res[name].append(njobs / dt)
            cpu[name].append(c / njobs)
        print(f"# {cmd_name}: rep {r + 1}/{a.reps} done, load {load1()}", file=sys.stderr, flush=True)

    base = statistics.median(res["xargs -P"])
    print()
    print("| variant | jobs/s median | min | max | wall ms/job | CPU ms/job (user+sys) | jobs/s ratio vs xargs (medians) | per-rep ratio min..max |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _, _ in variants:
        v = res[name]; m = statistics.median(v)
        pr = [x / y for x, y in zip(v, res["xargs -P"])]
        print(f"| {name} | {m:.0f} | {min(v):.0f} | {max(v):.0f} | {1000 / m:.3f} | {statistics.median(cpu[name]) * 1000:.3f} "
              f"| **{m / base:.2f}x** | {min(pr):.2f}..{max(pr):.2f} |")
    print()
    for name in ("troop (process)", "troop (thread)"):
        rt = statistics.median(res[name]) / base
        print(f"# target ({cmd_name}): {name} jobs/s >= 1.2x xargs: {rt:.2f}x -> {'met' if rt >= 1.2 else 'MISSED'}")
    print(f"# 1-min load sampled before each run: min {min(loads):.2f} median {statistics.median(loads):.2f} max {max(loads):.2f}")
