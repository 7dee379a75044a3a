#!/usr/bin/env bash
# Dispatch overhead with no work at all: troop's @noop kernel through IPC (process mode) and
# in-process channels (thread mode), at one task per message and batched, against Python's
# ProcessPoolExecutor(2).map and multiprocessing.Pool(2).map of a no-op function at chunksize 1
# and 64, and the end-to-end CLI `seq N | troop run -j2 @noop`. Interleaved reps, rotated order.
# Usage: scripts/bench/noop.sh [--n 200000] [--reps 5]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
build_troop
header "noop.sh $*"
python3 "$BENCH/noop_driver.py" --troop "$TROOP" "$@"
footer
