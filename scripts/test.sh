#!/usr/bin/env bash
# Runs every test of mcp-daemon on a fresh machine. Idempotent: installs what is missing
# (Debian packages with apt-get, the Python SDK into .tooling/venv, npm packages into
# .tooling/node), builds once, and reuses the binary for every suite.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

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

step "unit and integration tests"
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
