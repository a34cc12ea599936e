#!/usr/bin/env bash
# Benchmarks mcp-daemon against other MCP servers with the same two tools (bench/config.json):
# every server pinned to CPU 1 with taskset, the load generator on CPU 0, rounds interleaved
# (round 1: every server, round 2: every server, ...), the median per server reported.
# Then idle-session cost, 10,000 open GET streams and notification latency of the daemon.
#
#   bash bench/compare.sh
#
# Environment: ROUNDS (3), DURATION (10s), WARMUP (2s), CONCURRENCY (16), TOOL (add),
# SERVERS ("daemon-memory daemon-memory-jwt daemon-redis-1 daemon-redis-1-jwt daemon-redis-3
# daemon-python rmcp ts-sdk fastmcp python-sdk"; daemon-python serves the same two tools as
# Python functions (bench/python.json) in its worker pool; python-sdk is the official Python
# SDK's MCPServer; the -jwt ones have sign-in on and loadgen sends a bearer token that the
# daemon verifies, revocation included, on every call),
# EXTRAS (1: also sessions/streams/latency), SESSIONS (10000: fewer make the per-session RSS mostly allocator granularity), STREAMS (10000),
# NOTIFICATIONS (1000), SERVER_CPU (1), CLIENT_CPU (0), QUIET_WAIT (300: seconds to wait for
# other load on the machine to stop before each measurement; 0 = do not wait).
# A server that does not start is skipped with a message; the rest still run.
# Output: a markdown table on stdout and in bench/results/<date>.md, raw JSON next to it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-16}
TOOL=${TOOL:-add}
SERVERS=${SERVERS:-daemon-memory daemon-memory-jwt daemon-redis-1 daemon-redis-1-jwt daemon-redis-3 daemon-python rmcp ts-sdk fastmcp python-sdk}
# One client at a time: what a Python function adds to a call's latency over the builtin.
C1_SERVERS=${C1_SERVERS:-daemon-memory daemon-python}
C1_DURATION=${C1_DURATION:-5s}
EXTRAS=${EXTRAS:-1}
SESSIONS=${SESSIONS:-10000}
STREAMS=${STREAMS:-10000}
NOTIFICATIONS=${NOTIFICATIONS:-1000}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
QUIET_WAIT=${QUIET_WAIT:-300}

STAMP=$(date -u +%Y-%m-%d-%H%M%S)
mkdir -p bench/results
RAW=bench/results/$STAMP.json
MD=bench/results/$STAMP.md
: >"$RAW"
TOOLING=.tooling/bench
mkdir -p "$TOOLING"
DAEMON=target/release/mcp-daemon
LOADGEN=target/release/loadgen
RMCP_BIN=$TOOLING/rmcp-target/release/bench-peer-rmcp
VENV=.tooling/bench-venv
trap 'stop_all; rm -rf "$BENCH_TMP"' EXIT

say() { printf '==> %s\n' "$*" >&2; }

# --- build and install --------------------------------------------------------------------
declare -A UNAVAILABLE=()

# Installs what is missing, as scripts/test.sh does (jq reads loadgen's JSON).
# curl signs the bench user in.
command -v jq >/dev/null && command -v curl >/dev/null ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq curl >/dev/null; }
for tool in jq curl taskset python3; do
  command -v "$tool" >/dev/null || { say "$tool is required"; exit 1; }
done

say "build: mcp-daemon and loadgen (release)"
nice -n 10 cargo build --release --quiet -p mcp-daemon -p loadgen --bins

want() { [[ " $SERVERS " == *" $1 "* ]]; }

if want rmcp; then
  say "build: rmcp peer (bench/peers/rmcp, target dir $TOOLING/rmcp-target)"
  CARGO_TARGET_DIR=$TOOLING/rmcp-target nice -n 10 cargo build --release --quiet --locked \
    --manifest-path bench/peers/rmcp/Cargo.toml || UNAVAILABLE[rmcp]="build failed"
fi
if want ts-sdk; then
  say "install: TypeScript SDK peer ($TOOLING/ts)"
  mkdir -p "$TOOLING/ts"
  cp bench/peers/ts/package.json bench/peers/ts/package-lock.json bench/peers/ts/server.mjs "$TOOLING/ts/"
  if ! cmp -s bench/peers/ts/package-lock.json "$TOOLING/ts/.installed-lock" 2>/dev/null; then
    (cd "$TOOLING/ts" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) &&
      cp bench/peers/ts/package-lock.json "$TOOLING/ts/.installed-lock" ||
      UNAVAILABLE[ts-sdk]="npm ci failed"
  fi
fi
if want fastmcp || want python-sdk; then
  say "install: FastMCP peer ($VENV)"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  if ! cmp -s bench/peers/fastmcp/requirements.txt "$VENV/.installed-requirements" 2>/dev/null; then
    "$VENV/bin/pip" install --quiet -r bench/peers/fastmcp/requirements.txt &&
      cp bench/peers/fastmcp/requirements.txt "$VENV/.installed-requirements" ||
      { UNAVAILABLE[fastmcp]="pip install failed"; UNAVAILABLE[python-sdk]="pip install failed"; }
  fi
fi
if [[ " $SERVERS " == *" daemon-redis"* ]] && ! command -v redis-server >/dev/null; then
  for name in daemon-redis-1 daemon-redis-1-jwt daemon-redis-3; do
    UNAVAILABLE[$name]="redis-server not installed"
  done
fi

# Sockets for 10,000 streams (and their server side) need more than the usual 1024 files.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- servers ------------------------------------------------------------------------------
# start_server NAME [CONFIG]: sets URLS, PIDS (server processes), AUX (redis-server pid),
# REDIS_URL_USED; returns 1 (after printing why) when the server does not come up.
PIN=(taskset -c "$SERVER_CPU") # exec's its command: the pid stays the server's

start_redis() {
  local port
  port=$(free_port)
  mkdir -p "$BENCH_TMP/redis-$port"
  # The shipped redis.conf minus persistence: this measures the daemon, not fsync.
  spawn "$BENCH_TMP/redis-$port.log" "${PIN[@]}" redis-server redis/redis.conf --port "$port" \
    --save "" --appendonly no --dir "$BENCH_TMP/redis-$port" --daemonize no
  AUX=$SPAWNED_PID
  wait_port "$port" "$AUX" 10 || { say "redis-server did not start"; return 1; }
  REDIS_URL_USED=redis://127.0.0.1:$port/
}

EXTRA_ENV=() # more daemon settings (the extras lift the anonymous-session cap)

# auth_on: sign-in on (local users) for the next daemon, with one user to sign in as.
BENCH_PASSWORD=bench-password-not-a-secret
auth_on() {
  local dir=$BENCH_TMP/auth
  mkdir -p "$dir"
  AUTH_ENV=(AUTH_PROVIDER=local DATA_DIR="$dir" JWT_SECRET_KEY=mcp-daemon-benchmark-signing-key-not-a-secret)
  [[ -s $dir/users.json ]] ||
    env "${AUTH_ENV[@]}" "$DAEMON" user add bench --password-stdin <<<"$BENCH_PASSWORD" >/dev/null
}

# sign_in: a bearer token from the last daemon started (POST /auth/login) into BEARER.
sign_in() {
  BEARER=$BENCH_TMP/bearer
  curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"username\": \"bench\", \"password\": \"$BENCH_PASSWORD\"}" \
    "${URLS[-1]%/mcp}/auth/login" | jq -er .access_token >"$BEARER" ||
    { say "sign-in failed"; return 1; }
}

start_daemon() { # start_daemon CONFIG [REDIS_URL]
  local port
  port=$(free_port)
  local log=$BENCH_TMP/daemon-$port.log
  local vars=(LOG_LEVEL=warn "${AUTH_ENV[@]}" "${EXTRA_ENV[@]}")
  # Every node of a cluster seals requestState with the same key.
  [[ -n ${2:-} ]] && vars+=(REDIS_URL="$2" REQUEST_STATE_KEY=mcp-daemon-benchmark-key-not-a-secret)
  spawn "$log" "${PIN[@]}" env "${vars[@]}" "$DAEMON" --config "$1" --port "$port"
  PIDS+=("$SPAWNED_PID")
  URLS+=("http://127.0.0.1:$port/mcp")
  wait_port "$port" "$SPAWNED_PID" 20 || { say "mcp-daemon did not start: $(tail -n 3 "$log")"; return 1; }
}

start_server() {
  local name=$1 config=${2:-bench/config.json} port log
  URLS=() PIDS=() AUX="" REDIS_URL_USED="" AUTH_ENV=() BEARER=""
  case $name in
    daemon-memory) start_daemon "$config" ;;
    daemon-memory-jwt) auth_on && start_daemon "$config" && sign_in ;;
    daemon-redis-1) start_redis && start_daemon "$config" "$REDIS_URL_USED" ;;
    daemon-redis-1-jwt) start_redis && auth_on && start_daemon "$config" "$REDIS_URL_USED" && sign_in ;;
    daemon-redis-3)
      start_redis && start_daemon "$config" "$REDIS_URL_USED" &&
        start_daemon "$config" "$REDIS_URL_USED" && start_daemon "$config" "$REDIS_URL_USED"
      ;;
    daemon-python) start_daemon bench/python.json ;;
    rmcp | ts-sdk | fastmcp | python-sdk)
      port=$(free_port)
      log=$BENCH_TMP/$name-$port.log
      case $name in
        rmcp) spawn "$log" "${PIN[@]}" "$RMCP_BIN" "$port" ;;
        ts-sdk) spawn "$log" "${PIN[@]}" node "$TOOLING/ts/server.mjs" "$port" ;;
        fastmcp) spawn "$log" "${PIN[@]}" "$VENV/bin/python" bench/peers/fastmcp/server.py "$port" ;;
        python-sdk) spawn "$log" "${PIN[@]}" "$VENV/bin/python" bench/peers/python-sdk/server.py "$port" ;;
      esac
      PIDS=("$SPAWNED_PID")
      URLS=("http://127.0.0.1:$port/mcp")
      wait_port "$port" "$SPAWNED_PID" 60 || { say "$name did not start: $(tail -n 3 "$log")"; return 1; }
      ;;
    *) say "unknown server $name"; return 1 ;;
  esac
}

stop_server() {
  stop "${PIDS[@]}" ${AUX:+"$AUX"}
  BENCH_PIDS=()
}

url_args() { local u; for u in "${URLS[@]}"; do printf -- '--url\n%s\n' "$u"; done; }
pid_args() { local p; for p in "${PIDS[@]}"; do printf -- '--server-pid\n%s\n' "$p"; done; }

# record KIND SERVER ROUND JSON: one line of the raw file.
record() {
  jq -c --arg kind "$1" --arg server "$2" --argjson round "$3" \
    '. + {kind: $kind, server: $server, round: $round}' <<<"$4" >>"$RAW"
}

# --- interleaved rounds of tools/call -----------------------------------------------------
for round in $(seq "$ROUNDS"); do
  for name in $SERVERS; do
    if [[ -n ${UNAVAILABLE[$name]:-} ]]; then
      ((round == 1)) && say "skipping $name: ${UNAVAILABLE[$name]}"
      continue
    fi
    say "round $round/$ROUNDS: $name"
    if ! start_server "$name"; then
      UNAVAILABLE[$name]="did not start (see the message above)"
      say "skipping $name from now on"
      stop_server
      continue
    fi
    ((QUIET_WAIT > 0)) && wait_quiet "$QUIET_WAIT"
    mapfile -t args < <(url_args; pid_args)
    [[ -n $AUX ]] && args+=(--aux-pid "$AUX")
    [[ -n $BEARER ]] && args+=(--bearer-file "$BEARER")
    [[ $name == daemon-python ]] && args+=(--worker-parent "${PIDS[0]}")
    if out=$(taskset -c "$CLIENT_CPU" "$LOADGEN" calls "${args[@]}" --concurrency "$CONCURRENCY" \
      --duration "$DURATION" --warmup "$WARMUP" --tool "$TOOL"); then
      record calls "$name" "$round" "$out"
      jq -r '"    \(.calls_per_s) calls/s, p50 \(.p50_us) us, p99 \(.p99_us) us, \(.server_cpu_us_per_call) us CPU/call, \(.errors) errors"' <<<"$out" >&2
    else
      say "loadgen failed against $name"
    fi
    stop_server
  done
done

# --- one client: the latency a Python function adds ------------------------------------------
for round in $(seq "$ROUNDS"); do
  for name in $C1_SERVERS; do
    [[ -z ${UNAVAILABLE[$name]:-} ]] || continue
    say "c=1 round $round/$ROUNDS: $name"
    start_server "$name" || { stop_server; continue; }
    ((QUIET_WAIT > 0)) && wait_quiet "$QUIET_WAIT"
    mapfile -t args < <(url_args; pid_args)
    [[ $name == daemon-python ]] && args+=(--worker-parent "${PIDS[0]}")
    if out=$(taskset -c "$CLIENT_CPU" "$LOADGEN" calls "${args[@]}" --concurrency 1 \
      --duration "$C1_DURATION" --warmup "$WARMUP" --tool "$TOOL"); then
      record calls-c1 "$name" "$round" "$out"
      jq -r '"    c=1: p50 \(.p50_us) us, p99 \(.p99_us) us, \(.errors) errors"' <<<"$out" >&2
    else
      say "loadgen (c=1) failed against $name"
    fi
    stop_server
  done
done

# --- sessions, streams, notification latency (the daemon only) ----------------------------
extra() { # extra KIND SERVER LOADGEN-ARGS...
  local kind=$1 name=$2 out
  shift 2
  ((QUIET_WAIT > 0)) && wait_quiet "$QUIET_WAIT"
  if out=$(taskset -c "$CLIENT_CPU" "$LOADGEN" "$@"); then
    record "$kind" "$name" 0 "$out"
  else
    say "loadgen $kind failed against $name"
  fi
}

if [[ $EXTRAS == 1 ]]; then
  # Every session and stream of these runs is anonymous: lift the per-node cap on those.
  EXTRA_ENV=(MAX_ANONYMOUS_SESSIONS=$((SESSIONS + STREAMS + 100)))
  for name in daemon-memory daemon-redis-1 daemon-redis-3; do
    want "$name" && [[ -z ${UNAVAILABLE[$name]:-} ]] || continue
    say "extras: $name"
    start_server "$name" bench/notify.json || { stop_server; continue; }
    if [[ $name != daemon-redis-3 ]]; then
      extra sessions "$name" sessions --url "${URLS[0]}" --count "$SESSIONS" \
        --server-pid "${PIDS[0]}" ${REDIS_URL_USED:+--redis-url "$REDIS_URL_USED"}
      extra streams "$name" streams --url "${URLS[0]}" --count "$STREAMS" --server-pid "${PIDS[0]}"
    fi
    if [[ $name != daemon-redis-1 ]]; then
      # Memory: one node triggers and listens. Redis, 3 nodes: listen on node 1, trigger on 2.
      extra notify-latency "$name" notify-latency --listen-url "${URLS[0]}" \
        --trigger-url "${URLS[1]:-${URLS[0]}}" --count "$NOTIFICATIONS"
    fi
    stop_server
  done
fi

# --- report -------------------------------------------------------------------------------
versions=$(
  printf 'rustc %s; node %s; python %s' "$(rustc --version | cut -d' ' -f2)" "$(node --version)" \
    "$(python3 --version | cut -d' ' -f2)"
  printf '; rmcp %s' "$(grep -A1 '^name = "rmcp"$' bench/peers/rmcp/Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')"
  printf '; @modelcontextprotocol/sdk %s' "$(jq -r '.packages["node_modules/@modelcontextprotocol/sdk"].version' bench/peers/ts/package-lock.json)"
  printf '; fastmcp %s' "$(sed -n 's/^fastmcp==//p' bench/peers/fastmcp/requirements.txt)"
  command -v redis-server >/dev/null && printf '; redis %s' "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
)
python3 bench/report.py "$RAW" \
  --command "ROUNDS=$ROUNDS DURATION=$DURATION CONCURRENCY=$CONCURRENCY TOOL=$TOOL bash bench/compare.sh" \
  --machine "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r)" \
  --versions "$versions" \
  --pinning "server on CPU $SERVER_CPU (redis-server too), loadgen on CPU $CLIENT_CPU" \
  --server-cpu "$SERVER_CPU" --client-cpu "$CLIENT_CPU" | tee "$MD"
say "written: $MD and $RAW"
