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
cargo test --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "scripts/test.sh: all checks passed"
