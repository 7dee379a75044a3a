#!/usr/bin/env bash
# Runs cpu_scaling.sh, dispatch.sh, noop.sh, startup.sh and memory.sh and writes each one's output to scripts/bench/results/NAME.txt
# (git-ignored) as well as to the terminal. Extra options per script go in CPU_ARGS, DISPATCH_ARGS, NOOP_ARGS,
# STARTUP_ARGS, MEMORY_ARGS, e.g.  CPU_ARGS="--reps 3" DISPATCH_ARGS="--reps 3" scripts/bench/run_all.sh
# TROOP_SRC=DIR benchmarks the troop source tree in DIR instead of this checkout (see lib.sh).
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$BENCH/results"
mkdir -p "$OUT"
status=0
for s in cpu_scaling dispatch noop startup memory; do
    case $s in
        cpu_scaling) args=${CPU_ARGS:-} ;;
        dispatch) args=${DISPATCH_ARGS:-} ;;
        noop) args=${NOOP_ARGS:-} ;;
        startup) args=${STARTUP_ARGS:-} ;;
        memory) args=${MEMORY_ARGS:-} ;;
    esac
    echo "=== $s.sh $args  ($(date -u '+%H:%M:%S UTC'))" >&2
    # shellcheck disable=SC2086
    if ! "$BENCH/$s.sh" $args 2>&1 | tee "$OUT/$s.txt"; then
        echo "=== $s.sh FAILED (see $OUT/$s.txt)" >&2
        status=1
    fi
done
echo "=== results in $OUT: $(cd "$OUT" && echo *.txt)" >&2
exit $status
