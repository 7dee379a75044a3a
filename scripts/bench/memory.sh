#!/usr/bin/env bash
# Memory of idle workers and of the dispatching process: VmRSS (from /proc/PID/status, MiB), with RssAnon and
# Pss (/proc/PID/smaps_rollup) alongside. troop workers are read while they sit in `@sleep 3000` (idle: not
# computing); Python ProcessPoolExecutor workers while in time.sleep(3); GNU parallel, xargs and rust-parallel
# while they run two `sleep 3`. Scenarios rotate each sample; medians of the samples are reported.
# Usage: scripts/bench/memory.sh [--samples 3]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_parallel
ensure_rust_parallel
build_troop
header "memory.sh $*"
python3 "$BENCH/memory_driver.py" --troop "$TROOP" "$@"
footer
