#!/usr/bin/env bash
# Dispatch overhead with no work at all: troop's @noop kernel through IPC (process mode) and
# in-process channels (thread mode), at one task per message and batched, against Python's
# ProcessPoolExecutor(2).map and multiprocessing.Pool(2).map of a no-op function at chunksize 1
# and 64, and the end-to-end CLI `seq N | troop run -j2 @noop`. Interleaved reps, rotated order.
# With --events FILE, only the CLI is timed, with and without `--events FILE` (the cost of the
# event stream), in both modes; the target is a dispatch rate at most 5% lower with events.
# Usage: scripts/bench/noop.sh [--n 200000] [--reps 5] [--events FILE]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=200000
REPS=5
EVENTS=
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --n) N=$2; ARGS+=("$1" "$2"); shift 2 ;;
        --reps) REPS=$2; ARGS+=("$1" "$2"); shift 2 ;;
        --events) EVENTS=$2; shift 2 ;;
        *) echo "usage: $0 [--n N] [--reps N] [--events FILE]" >&2; exit 2 ;;
    esac
done
build_troop
if [ -z "$EVENTS" ]; then
    header "noop.sh ${ARGS[*]}"
    python3 "$BENCH/noop_driver.py" --troop "$TROOP" "${ARGS[@]}"
    footer
    exit 0
fi

header "noop.sh --n $N --reps $REPS --events $EVENTS"
TASKS=$((N * 5))
run_case() {  # run_case MODE-EVENTS -> prints ok when troop succeeded
    local mode=${1%-*} events=()
    [ "${1#*-}" = events ] && events=(--events "$EVENTS")
    seq "$TASKS" | "$TROOP" run --mode "$mode" -j2 "${events[@]}" @noop >/dev/null && echo ok
}
TIMES="$WORKDIR/times.tsv"
time_interleaved "$REPS" ok status "$TIMES" process-plain process-events thread-plain thread-events
finished=$(grep -c '"event":"task_finished"' "$EVENTS")
[ "$finished" = "$TASKS" ] || { echo "the event stream has $finished task_finished events, not $TASKS" >&2; exit 1; }
echo "# event stream of the last run: $(stat -c %s "$EVENTS") bytes, $(wc -l <"$EVENTS") lines"
python3 - "$TIMES" "$TASKS" <<'EOF'
import collections, statistics, sys
times = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    rep, name, us = line.split()
    times[name][rep] = int(us)
tasks = int(sys.argv[2])
print(f"\n# tasks per run: {tasks}; rates in tasks/s, CLI end to end (seq piped to troop run -j2 @noop)")
print("| mode | without --events (median, min, max) | with --events (median, min, max) | ratio with/without per rep (median, min, max) |")
print("|---|---|---|---|")
verdicts = []
for mode in ["process", "thread"]:
    plain, events = times[f"{mode}-plain"], times[f"{mode}-events"]
    rate = lambda d: [tasks * 1e6 / us for us in d.values()]
    ratios = [plain[r] / events[r] for r in plain]
    cell = lambda xs, f: f"{f(statistics.median(xs))}, {f(min(xs))}, {f(max(xs))}"
    k = lambda x: f"{x:,.0f}"
    print(f"| {mode} | {cell(rate(plain), k)} | {cell(rate(events), k)} | {cell(ratios, lambda x: f'{x:.3f}')} |")
    verdict = "met" if statistics.median(ratios) >= 0.95 else "MISSED"
    verdicts.append(f"# target ({mode}): rate with events >= 0.95 x without: {verdict} ({statistics.median(ratios):.3f})")
print("\n".join(verdicts))
EOF
footer
