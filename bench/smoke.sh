#!/usr/bin/env bash
# Quick benchmark check for CI (a few seconds): the release daemon with bench/config.json,
# `loadgen calls` for 2 s at 4 clients for `add` and for `echo`; fails unless every call
# succeeded and some were made. Expects target/release/{mcp-daemon,loadgen} to be built.
#
#   bash bench/smoke.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
trap 'stop_all; rm -rf "$BENCH_TMP"' EXIT

DAEMON=${MCP_DAEMON_BIN:-target/release/mcp-daemon}
LOADGEN=${LOADGEN_BIN:-target/release/loadgen}
port=$(free_port)
spawn "$BENCH_TMP/daemon.log" env LOG_LEVEL=warn "$DAEMON" --config bench/config.json --port "$port"
daemon=$SPAWNED_PID
wait_port "$port" "$daemon" 20 || { cat "$BENCH_TMP/daemon.log"; echo "smoke: the daemon did not start"; exit 1; }

for tool in add echo; do
  out=$("$LOADGEN" calls --url "http://127.0.0.1:$port/mcp" --concurrency 4 --duration 2s \
    --warmup 0.5s --tool "$tool" --server-pid "$daemon")
  python3 -c '
import json, sys
tool, r = sys.argv[1], json.loads(sys.argv[2])
print("smoke: %s: %d calls, %s calls/s, p99 %s us, %s us CPU/call, %d errors" % (
    tool, r["calls"], r["calls_per_s"], r["p99_us"], r["server_cpu_us_per_call"], r["errors"]))
if r["errors"] or not r["calls"]:
    sys.exit("smoke: %s failed: %s" % (tool, r["error_samples"]))
' "$tool" "$out"
done
echo "smoke: ok"
