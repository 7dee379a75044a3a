#!/usr/bin/env bash
# Dispatch rate of trivial jobs, one table per command: `seq N | TOOL -j2 /usr/bin/true` (input appended as
# the argument) and `seq N | TOOL -j2 /usr/bin/echo {}` (output to /dev/null), through troop (process and
# thread mode), xargs -P2 (-n1 / -I{}), GNU parallel -j2 and rust-parallel -j2, plus the posix_spawn+waitpid
# floor (src/spawnbench.c, 2 spawners, N spawns in total), bare and with each spawn given its number as its
# argument as the tools give it. All variants interleaved in each rep, order rotated. --skip "GNU,rust" leaves
# variants out (by name prefix).
# Usage: scripts/bench/dispatch.sh [--n 5000] [--reps 5] [--j 2] [--cmds true,echo] [--skip PREFIXES]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_parallel
ensure_rust_parallel
build_troop
compile_c spawnbench
header "dispatch.sh $*"
echo "# versions: $(xargs --version | head -1); $(parallel --will-cite --version 2>/dev/null | head -1 || true); $(rust-parallel --version 2>/dev/null || true)"
python3 "$BENCH/dispatch_driver.py" --troop "$TROOP" --spawnbench "$WORKDIR/spawnbench" "$@"
footer
