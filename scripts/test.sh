#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, then runs the format check,
# clippy with warnings denied, every test, and the documentation build with warnings denied.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# GNU parallel: the integration tests compare troop's output with it where it is installed.
if ! parallel --version 2>/dev/null | grep -q 'GNU parallel'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "scripts/test.sh: installing GNU parallel" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq parallel gzip procps >/dev/null
  else
    echo "scripts/test.sh: GNU parallel is not installed; tests use their built-in expectations" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "scripts/test.sh: all checks passed"
