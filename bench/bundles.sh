#!/usr/bin/env bash
# Cold, cached and warm first calls of Python functions whose bundles come from S3 (moto's
# server): see bench/bundles.py for what each figure holds.
#
#   bash bench/bundles.sh
#
# Environment: BUNDLES (10 of each kind), WARM_CALLS (20), SERVER_CPU (1), CLIENT_CPU (0),
# DAEMON (another build of the binary to measure; default target/release/mcp-daemon),
# QUIET_WAIT (120: seconds to wait for other load on the machine to stop first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v taskset >/dev/null || { echo "taskset (util-linux) is required" >&2; exit 1; }
echo "==> build: mcp-daemon (release)" >&2
nice -n 10 cargo build --release --quiet -p mcp-daemon --bins
# moto[server] and boto3 live in the test venv; this installs it when missing (idempotent).
bash tests/interop/run.sh --install-python >&2
source bench/lib.sh
wait_quiet "${QUIET_WAIT:-120}" # another job's compile must not land in the figures
rm -rf "$BENCH_TMP"
exec .tooling/venv/bin/python bench/bundles.py
