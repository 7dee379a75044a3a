#!/usr/bin/env bash
# --pipe and --pipepart over one big file of lines: `troop run --pipe --block 10M wc -l < FILE` against GNU
# parallel's `parallel --pipe --block 10M wc -l < FILE`, and `troop run --pipepart -a FILE --block 10M wc -l`
# against `cat FILE | wc -l`. GNU parallel's --pipepart is timed too, for reference. Every command's line count is
# checked against `wc -l`. Reps are interleaved, the order rotated each rep; ratios are taken within each rep.
# Targets: --pipe at >= 1.5x GNU parallel's throughput; --pipepart within 1.2x of cat | wc -l.
# Usage: scripts/bench/pipe.sh [--mb 500] [--reps 5] [--block 10M]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
MB=500
REPS=5
BLOCK=10M
while [ $# -gt 0 ]; do
    case $1 in
        --mb) MB=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --block) BLOCK=$2; shift 2 ;;
        *) echo "usage: $0 [--mb N] [--reps N] [--block SIZE]" >&2; exit 2 ;;
    esac
done
ensure_parallel
build_troop
header "pipe.sh --mb $MB --reps $REPS --block $BLOCK"

FILE="$WORKDIR/lines.txt"
# seq's lines, cut to MB megabytes less the last (partial) line.
seq 1 200000000 | head -c "$((MB * 1000000))" | sed '$d' >"$FILE" || true
LINES=$(wc -l <"$FILE")
BYTES=$(stat -c %s "$FILE")
echo "# file: $BYTES bytes, $LINES lines (read once beforehand, so every command finds it in the page cache)"
cat "$FILE" >/dev/null

sum() { awk '{ s += $1 } END { print s + 0 }'; }
run_case() {  # run_case NAME -> prints the line count the command saw
    case $1 in
        cat_wc) cat "$FILE" | wc -l ;;
        troop_pipe) "$TROOP" run --pipe --block "$BLOCK" wc -l <"$FILE" | sum ;;
        troop_pipepart) "$TROOP" run --pipepart -a "$FILE" --block "$BLOCK" wc -l | sum ;;
        gnu_pipe) parallel --will-cite --pipe --block "$BLOCK" wc -l <"$FILE" | sum ;;
        gnu_pipepart) parallel --will-cite --pipepart -a "$FILE" --block "$BLOCK" wc -l | sum ;;
    esac
}

CASES=(cat_wc troop_pipe troop_pipepart)
command -v parallel >/dev/null 2>&1 && CASES+=(gnu_pipe gnu_pipepart)
TIMES="$WORKDIR/times.tsv"
time_interleaved "$REPS" "$LINES" lines "$TIMES" "${CASES[@]}"

python3 - "$TIMES" "$BYTES" <<'PY'
import statistics, sys
from collections import defaultdict
times = defaultdict(dict)
for line in open(sys.argv[1]):
    rep, name, us = line.split("\t")
    times[name][int(rep)] = int(us) / 1e6
size = int(sys.argv[2])
print(f"{'command':<16} {'median s':>9} {'min s':>7} {'max s':>7} {'MB/s':>7}")
for name, by_rep in times.items():
    t = list(by_rep.values())
    print(f"{name:<16} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f} {size / 1e6 / statistics.median(t):7.0f}")
def ratio(label, num, den, target):
    if num not in times or den not in times:
        return
    r = [times[num][k] / times[den][k] for k in times[num] if k in times[den]]
    print(f"{label:<44} median {statistics.median(r):5.2f}  min {min(r):5.2f}  max {max(r):5.2f}  ({target})")
print()
ratio("--pipe throughput, troop / GNU parallel", "gnu_pipe", "troop_pipe", "target >= 1.5")
ratio("--pipepart time / cat | wc -l time", "troop_pipepart", "cat_wc", "target <= 1.2")
ratio("--pipepart throughput, troop / GNU parallel", "gnu_pipepart", "troop_pipepart", "for reference")
PY
footer
