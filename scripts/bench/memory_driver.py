#!/usr/bin/env python3
"""Driver for memory.sh. Starts each scenario, waits until its workers/jobs are running, reads
VmRSS/RssAnon (status) and Pss (smaps_rollup) of the processes of interest, then lets it finish."""
import argparse, os, shutil, statistics, subprocess, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("--samples", type=int, default=3)
ap.add_argument("--troop", required=True)
a = ap.parse_args()
HERE = os.path.dirname(os.path.abspath(__file__))



def mem(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                d[k] = int(v.split()[0]) / 1024
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    d["Pss"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return d


def comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def children(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(x) for x in open(f"/proc/{pid}/task/{t}/children").read().split()]
        except OSError:
            pass
    return out


def wait_for(p, pred, timeout=8.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if p.poll() is not None:
            sys.exit(f"FAILED: {p.args} exited rc={p.returncode} before it could be sampled:\n{p.stderr.read().decode()[-1500:]}")
        kids = children(p.pid)
        if pred(kids):
            return kids
        time.sleep(0.05)
    p.kill()
    sys.exit(f"FAILED: {p.args}: expected processes did not appear; children: {[(k, comm(k)) for k in children(p.pid)]}")


def finish(p):
    try:
        rc = p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait(); sys.exit(f"FAILED: {p.args} did not finish")
    if rc != 0:
        sys.exit(f"FAILED rc={rc}: {p.args}\n{p.stderr.read().decode()[-1500:]}")


rows = {}  # name -> list of mem dicts
order_names = []


def rec(name, pid):
    if name not in rows:
        rows[name] = []; order_names.append(name)
    rows[name].append(mem(pid))


def troop(label, extra):
    def f():
        argv = [a.troop, "run", "-j2", *extra, "@sleep", "{}", ":::", "3000", "3000"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if "thread" in extra:
            time.sleep(1.0)
            if p.poll() is not None:
                sys.exit(f"FAILED: {argv} exited early")
        else:
            kids = wait_for(p, lambda ks: sum(comm(k).startswith("troop-w") for k in ks) >= 2)
            time.sleep(0.5)  # both tasks are now inside @sleep
            for k in kids:
                c = comm(k)
                if c.startswith("troop-w"):
                    rec(f"troop-worker, idle in @sleep ({label})", k)
                elif c:
                    rec(f"troop helper process `{c}` ({label})", k)
        rec(f"troop supervisor ({label})", p.pid)
        finish(p)
    return f


def pypool(method):
    def f():
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "py_idle_pool.py"), method], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = p.stdout.readline().decode().split()
        if len(line) != 2:
            p.kill(); sys.exit(f"FAILED: Python pool ({method}) printed {line!r}")
        for pid in line:
            rec(f"Python {sys.version.split()[0]} ProcessPoolExecutor worker, idle in sleep ({method})", int(pid))
        rec(f"Python pool parent process ({method})", p.pid)
        finish(p)
    return f


def two_sleeps(name, argv, stdin_data=None):
    def f():
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_data else subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if stdin_data:
            p.stdin.write(stdin_data); p.stdin.close()
        kids = wait_for(p, lambda ks: sum(comm(k) == "sleep" for k in ks) >= 2)
        time.sleep(0.3)
        rec(name, p.pid)
        if name.startswith("xargs"):
            rec("/usr/bin/sleep itself (a minimal C process, for scale)", kids[0])
        finish(p)
    return f


scen = [
    troop("process, --start spawn", ["--mode", "process", "--start", "spawn"]),
    troop("process, --start fork", ["--mode", "process", "--start", "fork"]),
    troop("thread mode, 2 worker threads", ["--mode", "thread"]),
    pypool("spawn"),
    pypool("fork"),
]
if shutil.which("parallel"):
    scen.append(two_sleeps("GNU parallel (perl) while running 2 x sleep 3",
                           ["parallel", "--will-cite", "-j2", "sleep", ":::", "3", "3"]))
else:
    print("# GNU parallel not available: skipped")
scen.append(two_sleeps("xargs -P2 while running 2 x sleep 3", ["xargs", "-P2", "-n1", "sleep"], b"3\n3\n"))
if shutil.which("rust-parallel"):
    scen.append(two_sleeps("rust-parallel -j2 while running 2 x sleep 3",
                           ["rust-parallel", "-j2", "sleep", ":::", "3", "3"]))
else:
    print("# rust-parallel not available: skipped")

print(f"# {a.samples} samples per scenario (scenarios rotated each sample); workers: 2 per sample, all pooled")
print(f"#   troop: {a.troop} run -j2 [--mode process --start spawn|fork | --mode thread] @sleep {{}} ::: 3000 3000")
for s in range(a.samples):
    k = s % len(scen)
    for f in scen[k:] + scen[:k]:
        f()
    print(f"# sample {s + 1}/{a.samples} done, load {open('/proc/loadavg').read().split()[0]}", file=sys.stderr, flush=True)

print()
print("| process | VmRSS MiB median | min | max | RssAnon MiB median | Pss MiB median | n |")
print("|---|---|---|---|---|---|---|")
for name in order_names:
    v = [d["VmRSS"] for d in rows[name]]
    an = statistics.median(d["RssAnon"] for d in rows[name])
    ps = [d["Pss"] for d in rows[name] if "Pss" in d]
    pss = f"{statistics.median(ps):.2f}" if ps else "-"
    print(f"| {name} | **{statistics.median(v):.2f}** | {min(v):.2f} | {max(v):.2f} | {an:.2f} | {pss} | {len(v)} |")
w = statistics.median(d["VmRSS"] for d in rows["troop-worker, idle in @sleep (process, --start spawn)"])
print()
for name in order_names:
    if name.startswith("troop-worker"):
        m = statistics.median(d["VmRSS"] for d in rows[name])
        print(f"# target: idle troop-worker VmRSS <= 3 MiB: {name}: {m:.2f} MiB -> {'met' if m <= 3 else 'MISSED'}")
for name in order_names:
    if "ProcessPoolExecutor worker" in name or name.startswith("GNU parallel"):
        print(f"# VmRSS ratio {name} / troop-worker (spawn): {statistics.median(d['VmRSS'] for d in rows[name]) / w:.1f}x")
