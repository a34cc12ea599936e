#!/usr/bin/env bash
# Runs every test of mcp-daemon on a fresh machine. Idempotent: installs what is missing
# (Debian packages with apt-get, the Python SDK into .tooling/venv, npm packages into
# .tooling/node), builds once, and reuses the binary for every suite.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

# Every process this run starts inherits MCP_TEST_RUN (the harnesses pass it on even where they
# clear the environment), so at the end the ones still running can be told from everyone
# else's: a Redis the machine runs on 6379, or another checkout's test run, never counts.
export MCP_TEST_RUN="${MCP_TEST_RUN:-$$-$(date +%s%N)}"
ROOT="$PWD"

# Lists (and then ends, by pid) the processes this run started that still run: those with
# MCP_TEST_RUN in their environment, and those running something from this checkout's
# target/ or .tooling/ (a daemon, node, a venv's python, moto, chromedriver). Waits up to 10 s
# first for processes that are already on their way out.
leftovers() {
  local p pid
  LEFT=()
  # The glob is expanded before any grep below starts, so the check never counts itself.
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid == "$$" ]] && continue
    if grep -qzx "MCP_TEST_RUN=$MCP_TEST_RUN" "$p/environ" 2>/dev/null ||
      grep -qzE "^$ROOT/(target|\.tooling)/" "$p/cmdline" 2>/dev/null; then
      # A zombie is already dead; its parent just has not reaped it.
      [[ "$(cut -d' ' -f3 "$p/stat" 2>/dev/null)" == Z ]] && continue
      LEFT+=("$pid")
    fi
  done
}
check_no_leftovers() {
  local rc=$? pid
  for _ in $(seq 50); do
    leftovers
    (( ${#LEFT[@]} == 0 )) && break
    sleep 0.2
  done
  if (( ${#LEFT[@]} > 0 )); then
    printf '\n==> processes started by this run are still running:\n' >&2
    for pid in "${LEFT[@]}"; do
      printf '  %s  %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" >&2
    done
    for pid in "${LEFT[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    (( rc == 0 )) && rc=1
  fi
  exit "$rc"
}
trap check_no_leftovers EXIT

apt_install() {
  if [[ -z "${APT_UPDATED:-}" ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "tools"
command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
command -v python3 >/dev/null || apt_install python3 python3-venv
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
command -v curl >/dev/null || apt_install curl
# Real Redis servers for the state contract, cross-node, cluster and fault tests (the harness
# starts its own on free ports; it never touches one already running on 6379).
command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools
# Headless Chromium and its driver for the browser test of the OAuth login and consent pages.
command -v chromium >/dev/null || apt_install chromium
command -v chromedriver >/dev/null || apt_install chromium-driver
if command -v rustup >/dev/null && ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
  rustup component add clippy rustfmt
fi
echo "$(cargo --version); $(python3 --version); node $(node --version); $(redis-server --version | cut -d' ' -f1-3)"

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "build (release, once)"
cargo build --release --workspace --tests --bins --quiet

step "python venv (.tooling/venv: moto's S3 server for the blob and bundle tests)"
bash tests/interop/run.sh --install-python

step "unit and integration tests"
# nextest reads .config/nextest.toml: a test that hangs is ended after 3 minutes and fails.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --workspace --no-fail-fast
else
  cargo test --release --workspace --no-fail-fast
fi

step "conformance: the official MCP conformance suite"
MCP_DAEMON_BIN="$PWD/target/release/mcp-daemon" bash tests/conformance/run.sh

step "interop: official Python and TypeScript SDK clients"
MCP_DAEMON_BIN="$PWD/target/release/mcp-daemon" bash tests/interop/run.sh

step "benchmark smoke: loadgen against the release binary (2 s per tool)"
MCP_DAEMON_BIN="$PWD/target/release/mcp-daemon" LOADGEN_BIN="$PWD/target/release/loadgen" bash bench/smoke.sh

step "all suites passed"
