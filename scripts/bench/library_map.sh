#!/usr/bin/env bash
# The Rust library's Pool::map of N tiny tasks (x*x on a u64) in process mode on W workers, against Python's
# multiprocessing.Pool(W).map(f, range(N), chunksize=64) measured in the same run. Each side keeps one pool
# for all its reps (pool start-up is not timed), times REPS maps and reports tasks/s median/min/max; troop
# is measured with its default chunk size (auto) and with chunksize 64, like Python's. Every result is checked.
# Usage: scripts/bench/library_map.sh [--n 1000000] [--workers 2] [--reps 5]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=1000000
W=2
REPS=5
while [ $# -gt 0 ]; do
    case $1 in
        --n) N=$2; shift 2 ;;
        --workers) W=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        *) echo "usage: $0 [--n N] [--workers W] [--reps N]" >&2; exit 2 ;;
    esac
done
SRC="${TROOP_SRC:-$ROOT}"
(cd "$SRC" && cargo build --release --quiet --example library_map) || { echo "cargo build --release --example library_map failed" >&2; exit 1; }
EXAMPLE="$SRC/target/release/examples/library_map"
TROOP=true  # the header asks "$TROOP --version"; the example has none
header "library_map.sh --n $N --workers $W --reps $REPS"

python3 - "$N" "$W" "$REPS" >"$WORKDIR/python.txt" <<'PY'
import multiprocessing, sys, time
def f(x):
    return x * x
if __name__ == "__main__":
    n, w, reps = map(int, sys.argv[1:4])
    want = sum(x * x for x in range(n))
    rates = []
    with multiprocessing.Pool(w) as pool:
        for _ in range(reps):
            t = time.perf_counter()
            got = pool.map(f, range(n), chunksize=64)
            rates.append(n / (time.perf_counter() - t))
            assert len(got) == n and sum(got) == want
    rates.sort()
    print(f"python_pool chunksize=64 tasks={n} workers={w} reps={reps} "
          f"median={rates[len(rates)//2]:.0f} min={rates[0]:.0f} max={rates[-1]:.0f}")
PY
"$EXAMPLE" "$N" "$W" "$REPS" auto process >"$WORKDIR/auto.txt"
"$EXAMPLE" "$N" "$W" "$REPS" 64 process >"$WORKDIR/c64.txt"
cat "$WORKDIR/python.txt" "$WORKDIR/auto.txt" "$WORKDIR/c64.txt"
python3 - "$WORKDIR/python.txt" "$WORKDIR/auto.txt" "$WORKDIR/c64.txt" <<'PY'
import sys
def median(path):
    line = open(path).read().split()
    return float(next(w for w in line if w.startswith("median=")).split("=")[1])
py = median(sys.argv[1])
for label, path in (("auto chunks", sys.argv[2]), ("chunksize 64", sys.argv[3])):
    m = median(path)
    print(f"# troop Pool::map ({label}): {m/1e6:.2f} M tasks/s median, {m/py:.1f}x Python's Pool.map at chunksize 64 ({py/1e6:.2f} M/s)")
PY
footer
