#!/usr/bin/env bash
# -X over many file names: `troop run -X -j2 echo < NAMES` against `xargs -P2 -n K -s S echo < NAMES`, where K is
# the most names troop put in one command and S the longest command line xargs can use (so both build about as
# many commands), and against plain `xargs -P2 echo`
# (xargs' own size limit, 128 KiB). GNU parallel's `parallel -X -j2 echo` is timed too, for reference. Every
# command's output is checked to hold every name. Reps are interleaved, the order rotated each rep; ratios are
# taken within each rep. Target: troop's throughput >= 1.0x that of xargs -P2.
# Usage: scripts/bench/xargs_x.sh [--names 100000] [--reps 5]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
NAMES=100000
REPS=5
while [ $# -gt 0 ]; do
    case $1 in
        --names) NAMES=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        *) echo "usage: $0 [--names N] [--reps N]" >&2; exit 2 ;;
    esac
done
ensure_parallel
build_troop
header "xargs_x.sh --names $NAMES --reps $REPS"

FILE="$WORKDIR/names.txt"
# Names as `find` prints them: a few directories deep, about 40 bytes each.
seq 1 "$NAMES" | awk '{ printf "src/module-%03d/data/file-%06d.txt\n", $1 % 997, $1 }' >"$FILE"
COMMANDS_TROOP=$("$TROOP" run -X -j2 --dry-run echo <"$FILE" | wc -l)
K=$("$TROOP" run -X -j2 --dry-run echo <"$FILE" | awk '{ if (NF - 1 > k) k = NF - 1 } END { print k }')
# xargs' own size limit (128 KiB) would cut at fewer names than troop puts in a command: -s lifts it to
# the most xargs can use, so that -n K decides.
S=$(xargs --show-limits </dev/null 2>&1 | awk -F: '/actually use/ { gsub(/ /, "", $2); print $2 }')
COMMANDS_XARGS_N=$(xargs -n "$K" -s "$S" echo <"$FILE" | wc -l)
COMMANDS_XARGS=$(xargs echo <"$FILE" | wc -l)
echo "# $NAMES names, $(stat -c %s "$FILE") bytes; troop -X builds $COMMANDS_TROOP commands of at most $K names;"
echo "# xargs -n $K -s $S builds $COMMANDS_XARGS_N; plain xargs builds $COMMANDS_XARGS"

run_case() {  # run_case NAME -> prints the number of names the commands printed
    case $1 in
        troop_X) "$TROOP" run -X -j2 echo <"$FILE" | wc -w ;;
        xargs_n) xargs -P2 -n "$K" -s "$S" echo <"$FILE" | wc -w ;;
        xargs) xargs -P2 echo <"$FILE" | wc -w ;;
        gnu_X) parallel --will-cite -X -j2 echo <"$FILE" | wc -w ;;
    esac
}

CASES=(troop_X xargs_n xargs)
command -v parallel >/dev/null 2>&1 && CASES+=(gnu_X)
TIMES="$WORKDIR/times.tsv"
time_interleaved "$REPS" "$NAMES" names "$TIMES" "${CASES[@]}"

python3 - "$TIMES" "$NAMES" <<'PY'
import statistics, sys
from collections import defaultdict
times = defaultdict(dict)
for line in open(sys.argv[1]):
    rep, name, us = line.split("\t")
    times[name][int(rep)] = int(us) / 1e6
names = int(sys.argv[2])
print(f"{'command':<10} {'median s':>9} {'min s':>7} {'max s':>7} {'names/s':>10}")
for name, by_rep in times.items():
    t = list(by_rep.values())
    print(f"{name:<10} {statistics.median(t):9.3f} {min(t):7.3f} {max(t):7.3f} {names / statistics.median(t):10.0f}")
def ratio(label, num, den, target):
    if num not in times or den not in times:
        return
    r = [times[num][k] / times[den][k] for k in times[num] if k in times[den]]
    print(f"{label:<48} median {statistics.median(r):5.2f}  min {min(r):5.2f}  max {max(r):5.2f}  ({target})")
print()
ratio("throughput, troop -X / xargs -P2 -n (same size)", "xargs_n", "troop_X", "target >= 1.0")
ratio("throughput, troop -X / xargs -P2", "xargs", "troop_X", "target >= 1.0")
ratio("throughput, troop -X / GNU parallel -X", "gnu_X", "troop_X", "for reference")
PY
footer
