#!/usr/bin/env bash
# Haven's one test command (the README's; .ci/run runs exactly this).
# Installs what the tests need, fails loudly when something is missing,
# then runs formatting, lints and every test of the workspace, and the
# engine suite a second time against S3.
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

# The demo test runs a throwaway PostgreSQL cluster (Debian's server
# binaries; the demo uses them when present) and must find it.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing: postgresql" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
    || die "could not install postgresql"
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "PostgreSQL's initdb is still missing"
export HAVEN_TEST_REQUIRE_POSTGRES=1

# The console's browser tests drive a real headless Chromium through
# chromedriver (Debian's packages).
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  echo "installing: chromium chromium-driver" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
    || die "could not install chromium and chromium-driver"
fi
export HAVEN_TEST_CHROMEDRIVER="$(command -v chromedriver)" || die "chromedriver is still missing"
[ -x "$HAVEN_TEST_CHROMEDRIVER" ] || die "chromedriver is still missing"
# The accessibility pass runs axe-core (the npm registry's package) in
# that browser, on every console page.
NODE_CACHE="$HOME/.cache/haven/node"
if [ ! -f "$NODE_CACHE/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; } \
    || die "could not install npm (for axe-core)"
  mkdir -p "$NODE_CACHE"
  npm install --silent --no-audit --no-fund --prefix "$NODE_CACHE" axe-core@4 >/dev/null \
    || die "could not install axe-core from the npm registry"
fi
export HAVEN_TEST_AXE="$NODE_CACHE/node_modules/axe-core/axe.min.js"
[ -f "$HAVEN_TEST_AXE" ] || die "axe-core is missing from $NODE_CACHE"
command -v python3 >/dev/null || die "python3 is missing (the server tests edit a test database with it)"
command -v cargo >/dev/null || die "cargo is missing (install Rust 1.95 or newer)"

# The S3 tests run against a real S3-protocol server on loopback: moto,
# installed from PyPI into a cached virtualenv.
VENV="$HOME/.cache/haven/venv"
if [ ! -x "$VENV/bin/moto_server" ]; then
  command -v python3 >/dev/null || die "python3 is missing (needed for the moto S3 test server)"
  python3 -m venv "$VENV" || die "cannot create a Python virtualenv at $VENV"
  "$VENV/bin/pip" install --quiet "moto[server]" || die "cannot install moto[server] from PyPI"
fi
export HAVEN_TEST_MOTO_SERVER="$VENV/bin/moto_server"
[ -x "$HAVEN_TEST_MOTO_SERVER" ] || die "moto_server is missing from $VENV"
# The mail tests run a real SMTP server (aiosmtpd, with STARTTLS and
# authentication) on loopback; it makes its certificates with
# `cryptography` (a moto dependency, asked for explicitly all the same).
if ! "$VENV/bin/python" -c "import aiosmtpd, cryptography" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet aiosmtpd cryptography || die "cannot install aiosmtpd from PyPI"
fi
"$VENV/bin/python" -c "import aiosmtpd, cryptography" || die "aiosmtpd is missing from $VENV"
# Single sign-on is tested against a real OpenID Connect provider on
# loopback: oidc-provider-mock.
if ! "$VENV/bin/python" -W ignore -c "import oidc_provider_mock" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet oidc-provider-mock || die "cannot install oidc-provider-mock from PyPI"
fi
"$VENV/bin/python" -W ignore -c "import oidc_provider_mock" || die "oidc-provider-mock is missing from $VENV"
# The API's OpenAPI document and real answers are validated with
# openapi-spec-validator and jsonschema.
if ! "$VENV/bin/python" -c "import openapi_spec_validator, jsonschema" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet openapi-spec-validator jsonschema || die "cannot install openapi-spec-validator from PyPI"
fi
"$VENV/bin/python" -c "import openapi_spec_validator, jsonschema" || die "openapi-spec-validator is missing from $VENV"
export HAVEN_TEST_PYTHON="$VENV/bin/python"

# A persistent target dir makes repeated runs fast; correctness never
# depends on it (cargo rebuilds whatever changed).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/haven/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental state only helps edit-compile loops and doubles the cache.
export CARGO_INCREMENTAL=0

# A build and the tests' repositories need room; a full disk midway fails
# with confusing errors. Old artifacts pile up in the cached target dir
# (every dependency version ever built), so when space is short the cache
# is dropped first, and the run stops here if that is still not enough.
need_gib=8
free_gib() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'; }
mkdir -p "$CARGO_TARGET_DIR"
if [ "$(free_gib "$CARGO_TARGET_DIR")" -lt "$need_gib" ]; then
  echo "less than $need_gib GiB free: removing the cached build dir $CARGO_TARGET_DIR" >&2
  rm -rf "$CARGO_TARGET_DIR" && mkdir -p "$CARGO_TARGET_DIR"
fi
have=$(free_gib "$CARGO_TARGET_DIR")
[ "$have" -ge "$need_gib" ] || die "only $have GiB free for $CARGO_TARGET_DIR; the build and tests need $need_gib GiB (free space or set CARGO_TARGET_DIR to a larger disk)"
tmp_have=$(free_gib "${TMPDIR:-/tmp}")
[ "$tmp_have" -ge 2 ] || die "only $tmp_have GiB free in ${TMPDIR:-/tmp}; the tests write repositories there and need 2 GiB"

# Unused dependencies fail the run (cargo-machete, pinned, installed once
# into the cache from crates.io).
MACHETE="$HOME/.cache/haven/tools/bin/cargo-machete"
if ! "$MACHETE" --version 2>/dev/null | grep -q "0.9.2"; then
  echo "installing: cargo-machete 0.9.2" >&2
  cargo install cargo-machete --version 0.9.2 --locked --quiet --root "$HOME/.cache/haven/tools" \
    || die "cannot install cargo-machete from crates.io"
fi

cargo fmt --all --check
"$MACHETE" || die "unused dependencies (above): remove them from Cargo.toml"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# The engine suite again, every test against S3 (moto on loopback) instead
# of a local directory.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$HAVEN_TEST_MOTO_SERVER" -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$moto_pid" 2>/dev/null || die "the moto S3 server exited at start"
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || die "the moto S3 server is not listening on 127.0.0.1:$port"
echo "engine suite against S3 (moto on 127.0.0.1:$port)" >&2
HAVEN_TEST_BACKEND=s3 HAVEN_TEST_S3_ENDPOINT="http://127.0.0.1:$port" \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  cargo test -p haven-engine --test engine --locked
