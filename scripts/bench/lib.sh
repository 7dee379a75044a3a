# Shared setup for the troop benchmark scripts; sourced, not run.
# Sets ROOT, BENCH, TROOP, WORKDIR; installs missing tools (skipping one with a note when its install fails);
# builds troop in release mode. TROOP_SRC=DIR builds and benchmarks the troop source tree in DIR instead of this
# checkout (e.g. an export of one commit: git archive COMMIT | tar -x -C DIR).
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/troop-bench.XXXXXX")"
trap 'rm -rf "$WORKDIR"' EXIT

note() { echo "# NOTE: $*"; }

ensure_parallel() {
    command -v parallel >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get install -y parallel || { apt-get update && apt-get install -y parallel; }; } >"$WORKDIR/apt.log" 2>&1 || true
    fi
    command -v parallel >/dev/null 2>&1 || note "GNU parallel missing and could not be installed; skipped"
}

ensure_rust_parallel() {
    command -v rust-parallel >/dev/null 2>&1 && return 0
    if command -v cargo >/dev/null 2>&1; then
        echo "# installing rust-parallel (cargo install rust-parallel) ..." >&2
        cargo install --quiet rust-parallel >"$WORKDIR/cargo-install.log" 2>&1 || true
    fi
    command -v rust-parallel >/dev/null 2>&1 || note "rust-parallel missing and could not be installed; skipped"
}

build_troop() {
    SRC="${TROOP_SRC:-$ROOT}"
    (cd "$SRC" && cargo build --release --quiet) || { echo "cargo build --release failed in $SRC" >&2; exit 1; }
    TROOP="$SRC/target/release/troop"
    [ -x "$TROOP" ] && [ -x "$SRC/target/release/troop-worker" ] || { echo "troop build produced no binaries" >&2; exit 1; }
}

compile_c() {  # compile_c NAME -> $WORKDIR/NAME from src/NAME.c
    gcc -O2 -o "$WORKDIR/$1" "$BENCH/src/$1.c"
}

header() {  # header TITLE
    echo "# $1"
    echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')  nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')  kernel: $(uname -r)"
    echo "# troop: $("$TROOP" --version 2>/dev/null) built from $SRC$( [ "$SRC" = "$ROOT" ] && echo " at $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' with uncommitted changes')")"
    echo "# load average before: $(cat /proc/loadavg)"
}

footer() {
    echo "# load average after: $(cat /proc/loadavg)"
}

# time_interleaved REPS EXPECTED WHAT TIMES CASE...: runs `run_case NAME` (defined by the caller) for every case,
# REPS times, in an order rotated each rep so that no case always runs first or after the same one. Each run must
# print EXPECTED (WHAT says what was counted); its time in µs is appended to TIMES as `rep<TAB>name<TAB>µs`.
time_interleaved() {
    local reps=$1 expected=$2 what=$3 times=$4
    shift 4
    local cases=("$@") n=$# rep i name start end seen
    : >"$times"
    for rep in $(seq 1 "$reps"); do
        for i in $(seq 0 $((n - 1))); do
            name=${cases[$(((i + rep) % n))]}
            start=$(date +%s%N)
            seen=$(run_case "$name")
            end=$(date +%s%N)
            if [ "$seen" != "$expected" ]; then
                echo "$name gave $seen $what, not $expected" >&2
                exit 1
            fi
            printf '%s\t%s\t%s\n' "$rep" "$name" "$(((end - start) / 1000))" >>"$times"
        done
    done
}
