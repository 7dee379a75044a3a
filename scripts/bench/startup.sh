#!/usr/bin/env bash
# Pool start-up time of each start method: `troop run -jN --start spawn|fork @noop ::: x` (one no-op task, so
# the run is start-up, one dispatch and shutdown), thread mode for reference, and /usr/bin/true as the floor of
# starting any process. Variants interleaved within every run, order rotated; median/min/max ms.
# Usage: scripts/bench/startup.sh [--workers "2 8 32"] [--runs 30]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORKERS="2 8 32"; RUNS=30
while [ $# -gt 0 ]; do
    case $1 in
        --workers) WORKERS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        *) echo "usage: $0 [--workers \"2 8 32\"] [--runs 30]" >&2; exit 2 ;;
    esac
done
build_troop
header "startup.sh --workers \"$WORKERS\" --runs $RUNS"
python3 "$BENCH/startup_driver.py" --troop "$TROOP" --workers "$WORKERS" --runs "$RUNS"
footer
