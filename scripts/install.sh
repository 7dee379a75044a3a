#!/bin/sh
# Installs troop under PREFIX (default ~/.local): the program, its manual pages, and completion
# scripts for bash, zsh and fish, where each shell looks for them.
#
#   scripts/install.sh [PREFIX]
#
# TROOP_BIN=path installs that binary instead of building one (`cargo build --release` otherwise,
# unless target/release/troop is already newer than every source file).
set -eu

prefix=${1:-"$HOME/.local"}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${TROOP_BIN:-}" ]; then
    bin=$TROOP_BIN
else
    bin=$root/target/release/troop
    stale=
    if [ ! -x "$bin" ]; then
        stale=yes
    elif [ -n "$(find "$root/src" "$root/worker" "$root/Cargo.toml" "$root/Cargo.lock" \
            -newer "$bin" -print 2>/dev/null | head -n 1)" ]; then
        stale=yes
    fi
    if [ -n "$stale" ]; then
        echo "install.sh: building troop (cargo build --release)" >&2
        (cd "$root" && cargo build --release --bin troop)
    fi
fi
if [ ! -x "$bin" ]; then
    echo "install.sh: no troop binary at $bin" >&2
    exit 1
fi

bindir=$prefix/bin
mandir=$prefix/share/man/man1
bashdir=$prefix/share/bash-completion/completions
zshdir=$prefix/share/zsh/site-functions
fishdir=$prefix/share/fish/vendor_completions.d
mkdir -p "$bindir" "$mandir" "$bashdir" "$zshdir" "$fishdir"

# Copy to a temporary name and rename, so that a running troop is never overwritten in place.
cp "$bin" "$bindir/.troop.new"
chmod 755 "$bindir/.troop.new"
mv -f "$bindir/.troop.new" "$bindir/troop"

"$bindir/troop" man --dir "$mandir"
"$bindir/troop" completions bash > "$bashdir/troop"
"$bindir/troop" completions zsh > "$zshdir/_troop"
"$bindir/troop" completions fish > "$fishdir/troop.fish"

echo "installed troop in $bindir, its manual in $mandir, completions for bash, zsh and fish"
case ":$PATH:" in
    *":$bindir:"*) ;;
    *) echo "note: $bindir is not on PATH" >&2 ;;
esac
