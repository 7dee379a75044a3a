#!/usr/bin/env bash
# Pool start-up time of each start method: `troop run -jN --start spawn|fork @noop ::: x` (one
# no-op task, so the run is start-up, one dispatch and shutdown), and thread mode for reference,
# timed by hyperfine with the variants interleaved in each of its runs.
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
if ! command -v hyperfine >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get install -y -qq hyperfine >"$WORKDIR/apt.log" 2>&1 || true
fi
command -v hyperfine >/dev/null 2>&1 || { note "hyperfine missing and could not be installed"; exit 1; }
build_troop
header "startup.sh --workers \"$WORKERS\" --runs $RUNS"
for j in $WORKERS; do
    echo
    echo "## -j$j"
    hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-markdown "$WORKDIR/j$j.md" \
        -n "spawn" "$TROOP run -j$j --start spawn @noop ::: x" \
        -n "fork" "$TROOP run -j$j --start fork @noop ::: x" \
        -n "thread" "$TROOP run -j$j --mode thread @noop ::: x" >/dev/null
    cat "$WORKDIR/j$j.md"
done
footer
