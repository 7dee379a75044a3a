#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then runs the format check,
# clippy with warnings denied, every test, and the documentation build with warnings denied.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# What the tests call besides troop: GNU parallel (outputs are compared with it), ps, gzip,
# setpriv (to probe the IPC socket as another user), python3 and coreutils.
need=()
parallel --version 2>/dev/null | grep -q 'GNU parallel' || need+=(parallel)
perl -MText::CSV -e1 2>/dev/null || need+=(libtext-csv-perl)
command -v ps >/dev/null || need+=(procps)
command -v gzip >/dev/null || need+=(gzip)
command -v setpriv >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
command -v sha256sum >/dev/null || need+=(coreutils)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "scripts/test.sh: missing ${need[*]}; tests that need them use built-in expectations or skip" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The test environment for remote workers (scripts/testenv): two ssh hosts in network namespaces
# and a single-node Slurm. As root they start before the tests (installing what they need) and
# stop when this script exits, which fails if they leave anything running; the variables they
# write reach the tests. Elsewhere, or when they cannot start, the tests that need them skip.
testenv_state=${TROOP_TESTENV:-/tmp/troop-testenv}
testenv_started=()
stop_testenv() {
  local rc=$? part
  for part in "${testenv_started[@]}"; do
    if ! "scripts/testenv/$part.sh" stop; then
      echo "scripts/test.sh: scripts/testenv/$part.sh stop left something running" >&2
      [ "$rc" != 0 ] || rc=1
    fi
  done
  exit "$rc"
}
if [ "$(id -u)" = 0 ]; then
  trap stop_testenv EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # One apt-get run for both (each start installs what it lacks, which is then nothing).
  scripts/testenv/install.sh || true
  for part in ssh-hosts slurm; do
    testenv_started+=("$part")
    "scripts/testenv/$part.sh" start ||
      echo "scripts/test.sh: scripts/testenv/$part.sh start failed; the tests that need it skip" >&2
  done
  # shellcheck source=/dev/null
  [ -f "$testenv_state/env" ] && . "$testenv_state/env"
fi

cargo test --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "scripts/test.sh: all checks passed"
