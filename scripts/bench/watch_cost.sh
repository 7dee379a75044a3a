#!/usr/bin/env bash
# The CPU cost of --dashboard: the drawing thread's own CPU time (getrusage RUSAGE_THREAD, printed at the end
# when TROOP_DASHBOARD_STATS=1) over a run of 16 workers, as a percentage of one core. Two batches: 16 workers
# in `@sleep` (kernels: only the workers' pids are read) and 16 workers running `sleep` commands (each task's
# process group leader is read too). Each run lasts about --secs seconds on a pseudo-terminal of 40x120;
# scenarios rotate each rep; median, min and max of the cost after the first frame (setting up the terminal
# and the first full draw left out) are reported, with one run's whole line. Target: under 1% of one core.
# Usage: scripts/bench/watch_cost.sh [--reps 3] [--secs 6]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REPS=3
SECS=6
while [ $# -gt 0 ]; do
    case $1 in
        --reps) REPS=$2; shift 2 ;;
        --secs) SECS=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
build_troop
header "watch_cost.sh --reps $REPS --secs $SECS"

# on_pty ARGS...: runs troop ARGS on a new pseudo-terminal and prints what it wrote there.
on_pty() {
    python3 - "$TROOP" "$@" <<'PY'
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.environ["TROOP_DASHBOARD_STATS"] = "1"
    os.execv(sys.argv[1], sys.argv[1:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
out = b""
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
PY
}

TASKS=16  # per worker, each lasting SECS/TASKS seconds
MS=$((SECS * 1000 / TASKS))
SLEEP=$(awk "BEGIN{print $MS/1000}")
: >"$WORKDIR/results"
for rep in $(seq 1 "$REPS"); do
    for i in 0 1; do
        case $(((i + rep) % 2)) in
            0) name="16 x @sleep"; cmd="@sleep"; arg=$MS ;;
            1) name="16 x sleep"; cmd="sleep"; arg=$SLEEP ;;
        esac
        # shellcheck disable=SC2046
        line=$(on_pty run --dashboard -j16 "$cmd" ::: $(yes "$arg" | head -n $((16 * TASKS))) |
            tr -d '\r' | grep -o 'troop: dashboard: [^)]*)' || true)
        [ -n "$line" ] || { echo "no statistics line from the $name run" >&2; exit 1; }
        pct=$(sed -E 's/.*after the first frame ([0-9.]+)% of one core.*/\1/' <<<"$line")
        printf '%s\t%s\t%s\n' "$name" "$pct" "$line" >>"$WORKDIR/results"
    done
done
echo "# the drawing thread's CPU after its first frame, % of one core (median min max over $REPS runs), and one run's line"
for name in "16 x @sleep" "16 x sleep"; do
    grep -F "$name"$'\t' "$WORKDIR/results" | cut -f2 | sort -g | awk -v name="$name" '
        { v[NR] = $1 } END { printf "%-12s median %.3f%%  min %.3f%%  max %.3f%%\n", name, v[int((NR + 1) / 2)], v[1], v[NR] }'
    grep -F "$name"$'\t' "$WORKDIR/results" | head -1 | cut -f3 | sed 's/^/#   /'
done
footer
