#!/usr/bin/env bash
# Interop suites: drive mcp-daemon with the official MCP client SDKs.
#
#   bash tests/interop/run.sh
#   bash tests/interop/run.sh --install-python   # only ensure .tooling/venv, run nothing
#                                                # (scripts/test.sh: the Rust tests need moto)
#
# Idempotent: installs the Python SDK (with selenium, moto and boto3 for the auth tests) into
# .tooling/venv and the TypeScript SDKs (v1 @modelcontextprotocol/sdk, v2
# @modelcontextprotocol/client) into .tooling/node (both ignored project-local folders), and
# Debian's chromium + chromium-driver for the browser test of the login and consent pages,
# skipping each install when it is already in place. .tooling/node also gets oidc-provider, the
# OpenID provider (tests/interop/oidc/provider.mjs) that test_sso.py signs in at. Then runs
# pytest and node's test runner, and exits non-zero if anything failed. Screenshots of the auth pages are kept in
# target/test-artifacts/auth-pages/.
#
# Both suites cover the handshake era (initialize, sessions) and the 2026-07-28 stateless era
# (server/discover, per-request _meta, input-required results) on the same daemon: the Python
# `mcp` client in legacy and in its default auto mode, the v1 TypeScript SDK (legacy only) and
# the v2 client with versionNegotiation 'auto'.
#
# Env:
#   MCP_DAEMON_BIN   daemon binary (default target/release/mcp-daemon, relative to repo root)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INTEROP="$REPO_ROOT/tests/interop"
TOOLING="$REPO_ROOT/.tooling"
VENV="$TOOLING/venv"
NODE_DIR="$TOOLING/node"
PY_REQ="$INTEROP/python/requirements.txt"
TS_DIR="$INTEROP/ts"

log() { printf '[interop] %s\n' "$*" >&2; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- python venv + mcp
ensure_python() {
  local want stamp="$VENV/.interop-installed"
  want="$(hash_of "$PY_REQ")"
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating venv at $VENV"
    mkdir -p "$TOOLING"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      log "python3 -m venv failed; installing python3-venv"
      rm -rf "$VENV"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"
    fi
  fi
  log "installing python requirements ($PY_REQ)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$PY_REQ"
  echo "$want" >"$stamp"
}

# ---------------------------------------------------------------- chromium + chromedriver (test_browser.py)
ensure_chromium() {
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  if (( ${#missing[@]} == 0 )); then
    return 0
  fi
  log "installing ${missing[*]} (Debian packages; browser test of the login and consent pages)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- node + @modelcontextprotocol/{sdk,client}
ensure_node() {
  local want stamp="$NODE_DIR/.interop-installed"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "node/npm not found on PATH"
    return 1
  fi
  if (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
    log "node >= 20 required by @modelcontextprotocol/client (found $(node --version))"
    return 1
  fi
  want="$(hash_of "$TS_DIR/package.json" "$TS_DIR/package-lock.json")"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" \
        && -f "$NODE_DIR/node_modules/@modelcontextprotocol/sdk/package.json" \
        && -f "$NODE_DIR/node_modules/@modelcontextprotocol/client/package.json" \
        && -f "$NODE_DIR/node_modules/oidc-provider/package.json" ]]; then
    return 0
  fi
  log "installing npm packages into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$TS_DIR/package.json" "$TS_DIR/package-lock.json" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
}

ensure_python
if [[ "${1:-}" == "--install-python" ]]; then
  log "python venv ready: $VENV ($("$VENV/bin/python" -m pip show moto 2>/dev/null | sed -n 's/^Version: /moto /p'))"
  exit 0
fi
ensure_chromium
ensure_node

# ---------------------------------------------------------------- daemon binary
MCP_DAEMON_BIN="${MCP_DAEMON_BIN:-target/release/mcp-daemon}"
if [[ "$MCP_DAEMON_BIN" != /* ]]; then
  MCP_DAEMON_BIN="$REPO_ROOT/$MCP_DAEMON_BIN"
fi
if [[ ! -x "$MCP_DAEMON_BIN" ]]; then
  log "daemon binary not found or not executable: $MCP_DAEMON_BIN (build it, or set MCP_DAEMON_BIN)"
  exit 1
fi
export MCP_DAEMON_BIN
export MCP_INTEROP_NODE_MODULES="$NODE_DIR/node_modules"
log "daemon: $MCP_DAEMON_BIN"
npm_version() { node -p "require('$NODE_DIR/node_modules/$1/package.json').version"; }
log "python: $("$VENV/bin/python" -m pip show mcp 2>/dev/null | sed -n 's/^Version: /mcp /p')," \
  "typescript: @modelcontextprotocol/sdk $(npm_version @modelcontextprotocol/sdk)," \
  "@modelcontextprotocol/client $(npm_version @modelcontextprotocol/client)," \
  "oidc-provider $(npm_version oidc-provider)," \
  "node $(node --version)"
log "auth tests: $("$VENV/bin/python" -m pip show selenium moto boto3 2>/dev/null | sed -n 's/^Version: //p' \
  | paste -sd' ' | awk '{print "selenium " $1 ", moto " $2 ", boto3 " $3}'), $(chromium --version 2>/dev/null | cut -d' ' -f1-2)"

REPORTS="$(mktemp -d "${TMPDIR:-/tmp}/mcp-interop.XXXXXX")"
trap 'rm -rf "$REPORTS"' EXIT

# ---------------------------------------------------------------- python suite
log "running python interop suite (mcp SDK, legacy and auto mode)"
py_rc=0
(cd "$INTEROP/python" && timeout --kill-after=15 300 \
  "$VENV/bin/python" -m pytest -v --junitxml="$REPORTS/pytest.xml" .) || py_rc=$?

# ---------------------------------------------------------------- typescript suite
log "running typescript interop suite (@modelcontextprotocol/sdk, @modelcontextprotocol/client)"
ts_rc=0
(cd "$TS_DIR" && timeout --kill-after=15 240 node --test --test-timeout=60000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$REPORTS/node.tap" \
  ./*.test.mjs) || ts_rc=$?

# ---------------------------------------------------------------- combined summary
py_counts="$("$VENV/bin/python" - "$REPORTS/pytest.xml" <<'EOF' || true
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skipped, bad, skipped)
EOF
)"
ts_counts="$(awk '/^# pass /{p=$3} /^# fail /{f=$3} /^# skipped /{s=$3} END{if (p!="") print p+0, f+0, s+0}' \
  "$REPORTS/node.tap" 2>/dev/null || true)"

if [[ -n "$py_counts" && -n "$ts_counts" ]]; then
  read -r pp pf ps <<<"$py_counts"
  read -r tp tf ts <<<"$ts_counts"
  log "python: $pp passed, $pf failed, $ps skipped (exit $py_rc); typescript: $tp passed, $tf failed, $ts skipped (exit $ts_rc)"
  failed=$((pf + tf))
  # A runner that crashed without reporting its failures still fails the run.
  if [[ $py_rc -ne 0 && $pf -eq 0 ]] || [[ $ts_rc -ne 0 && $tf -eq 0 ]]; then failed=$((failed + 1)); fi
  echo "interop: $((pp + tp)) passed, $failed failed, $((ps + ts)) skipped"
else
  log "could not read test counts (python exit $py_rc, typescript exit $ts_rc)"
fi

if [[ $py_rc -ne 0 || $ts_rc -ne 0 ]]; then
  exit 1
fi
