#!/usr/bin/env bash
# CPU scaling: TASKS x "count primes below LIMIT" at -j1 and -jCORES through troop (process and thread mode),
# and for reference the compiled src/primes.c through GNU parallel, xargs and rust-parallel (each if installed),
# and the same algorithm in pure Python through ProcessPoolExecutor(J).map and multiprocessing.Pool(J).map
# (chunksize 1; limit calibrated on CPU time so one Python task costs as much as one troop task). All
# variants are interleaved within each repetition, order rotated every rep.
# Usage: scripts/bench/cpu_scaling.sh [--reps 5] [--tasks 8] [--limit 2500000] [--cores 2]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_parallel
ensure_rust_parallel
build_troop
compile_c primes
header "cpu_scaling.sh $*"
python3 "$BENCH/cpu_scaling_driver.py" --troop "$TROOP" --cprimes "$WORKDIR/primes" --workdir "$WORKDIR" "$@"
footer
