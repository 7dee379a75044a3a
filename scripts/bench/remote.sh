#!/usr/bin/env bash
# Remote workers: (1) the start-up time of N workers through each launcher (local spawn, ssh to
# one namespace host, Slurm job steps when the test node runs), as the wall time of a run of N
# @noop tasks on N workers; (2) the @noop dispatch rate over ssh to one namespace host against
# local IPC, one worker each, batched as troop batches tiny tasks (target: >= 10,000 tasks/s per
# host); (3) the wall time of a CPU-bound batch (@primes) on local + 2 hosts against local alone.
# The namespace hosts run on this machine's cores, so (3) shows the cost of spreading, not a
# gain in cores: on one machine it cannot be faster.
# Needs the test environment: starts it (as root) when it is not running.
# Usage: scripts/bench/remote.sh [--reps 5] [--tasks 200000] [--workers "1 4 8"]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPS=5
TASKS=200000
WORKERS="1 4 8"
while [ $# -gt 0 ]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --tasks) TASKS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        *) echo "usage: $0 [--reps N] [--tasks N] [--workers \"1 4 8\"]" >&2; exit 2 ;;
    esac
done
build_troop
STATE=${TROOP_TESTENV:-/tmp/troop-testenv}
if ! grep -q TROOP_TEST_SSH_CONFIG "$STATE/env" 2>/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "the ssh test hosts do not run, and starting them needs root" >&2; exit 1; }
    "$ROOT/scripts/testenv/install.sh" ssh slurm >/dev/null
    "$ROOT/scripts/testenv/ssh-hosts.sh" start >/dev/null
    "$ROOT/scripts/testenv/slurm.sh" start >/dev/null || note "the Slurm node did not start; Slurm skipped"
fi
# shellcheck disable=SC1091
source "$STATE/env"
SSH=(--ssh "ssh -F $TROOP_TEST_SSH_CONFIG" --remote-worker "$TROOP")
SLURM=()
if [ -n "${SLURM_CONF:-}" ] && "$TROOP" run --help | grep -q -- '--launcher'; then
    SLURM=(--launcher slurm --remote-worker "$TROOP")
fi
header "remote.sh --reps $REPS --tasks $TASKS --workers \"$WORKERS\""
TIMES="$WORKDIR/times.tsv"

# (1) start-up of N workers.
run_case() {
    local how=${1%-*} n=${1##*-}
    case $how in
        local) seq "$n" | "$TROOP" run -j "$n" @noop ;;
        ssh) seq "$n" | "$TROOP" run "${SSH[@]}" -S "$n/h1" @noop ;;
        slurm) seq "$n" | "$TROOP" run "${SLURM[@]}" -j "$n" @noop ;;
    esac && echo ok
}
CASES=()
for n in $WORKERS; do
    CASES+=("local-$n" "ssh-$n")
    # A worker is a job that holds its CPUs for the whole run: no more than the node has.
    [ ${#SLURM[@]} -gt 0 ] && [ "$n" -le "${TROOP_TEST_SLURM_CPUS:-1}" ] && CASES+=("slurm-$n")
done
time_interleaved "$REPS" ok status "$TIMES" "${CASES[@]}"
echo
echo "## (1) start-up: wall time of N @noop tasks on N new workers (s)"
python3 - "$TIMES" <<'PY'
import statistics, sys
from collections import defaultdict
t = defaultdict(list)
for line in open(sys.argv[1]):
    rep, name, us = line.split("\t")
    t[name].append(int(us) / 1e6)
print("| launcher, workers | median | min | max |")
print("|---|---|---|---|")
for name, xs in t.items():
    print(f"| {name} | {statistics.median(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |")
PY

# (2) @noop dispatch over one ssh host against local IPC, one worker each.
seq "$TASKS" >"$WORKDIR/input"
run_case() {
    case $1 in
        local) "$TROOP" run -j1 @noop <"$WORKDIR/input" ;;
        ssh) "$TROOP" run "${SSH[@]}" -S 1/h1 @noop <"$WORKDIR/input" ;;
    esac && echo ok
}
time_interleaved "$REPS" ok status "$TIMES" local ssh
echo
echo "## (2) @noop dispatch, $TASKS tasks, one worker (start-up included)"
python3 - "$TIMES" "$TASKS" <<'PY'
import statistics, sys
from collections import defaultdict
t = defaultdict(dict)
for line in open(sys.argv[1]):
    rep, name, us = line.split("\t")
    t[name][rep] = int(us) / 1e6
n = int(sys.argv[2])
print("| where | tasks/s median | min | max |")
print("|---|---|---|---|")
for name in ["local", "ssh"]:
    rates = [n / s for s in t[name].values()]
    print(f"| {name} | {statistics.median(rates):,.0f} | {min(rates):,.0f} | {max(rates):,.0f} |")
ratio = [t["local"][r] / t["ssh"][r] for r in t["ssh"]]
print(f"ssh / local rate per rep: median {statistics.median(ratio):.2f}, min {min(ratio):.2f}, max {max(ratio):.2f}")
ssh = statistics.median([n / s for s in t["ssh"].values()])
print(f"# target: >= 10,000 tasks/s per host over ssh: {'met' if ssh >= 10000 else 'MISSED'} ({ssh:,.0f})")
PY

# (3) A CPU-bound batch: 2 local workers, against 2 local + 2 on each host.
run_case() {
    case $1 in
        local) printf "1000000\n%.0s" $(seq 40) | "$TROOP" run -j2 @primes >/dev/null ;;
        spread) printf "1000000\n%.0s" $(seq 40) | "$TROOP" run "${SSH[@]}" -S 2/:,2/h1,2/h2 @primes >/dev/null ;;
    esac && echo ok
}
time_interleaved "$REPS" ok status "$TIMES" local spread
echo
echo "## (3) 40 x @primes 1000000 (fixed CPU work): local -j2 against local + 2 hosts (2 workers each), same $(nproc) cores"
python3 - "$TIMES" <<'PY'
import statistics, sys
from collections import defaultdict
t = defaultdict(dict)
for line in open(sys.argv[1]):
    rep, name, us = line.split("\t")
    t[name][rep] = int(us) / 1e6
for name in ["local", "spread"]:
    xs = list(t[name].values())
    print(f"{name}: median {statistics.median(xs):.3f} s, min {min(xs):.3f}, max {max(xs):.3f}")
r = [t["local"][k] / t["spread"][k] for k in t["spread"]]
print(f"speed-up of spreading (local time / spread time): median {statistics.median(r):.2f}, min {min(r):.2f}, max {max(r):.2f}")
PY
footer
