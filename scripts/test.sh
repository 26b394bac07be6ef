#!/usr/bin/env bash
# Haven's one test command (the README's; .ci/run runs exactly this).
# Installs what the tests need, fails loudly when something is missing,
# then runs formatting, lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/test.sh: $*" >&2; exit 1; }

# The fault tests mount a small tmpfs (full-disk restore) and drop
# privileges with setpriv (unreadable source files): they need root.
[ "$(id -u)" = 0 ] || die "the tests must run as root (they mount a tmpfs and switch users); CI runs as root"

missing=()
command -v setpriv >/dev/null || missing+=(util-linux)
command -v mount >/dev/null || missing+=(mount)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "could not install ${missing[*]}"
fi
command -v setpriv >/dev/null || die "setpriv is still missing"
command -v cargo >/dev/null || die "cargo is missing (install Rust 1.95 or newer)"

# A persistent target dir makes repeated runs fast; correctness never
# depends on it (cargo rebuilds whatever changed).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/haven/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
