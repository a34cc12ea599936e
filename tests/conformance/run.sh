#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against mcp-daemon.
#
#   bash tests/conformance/run.sh
#
# Idempotent: installs the pinned suite and Node 22 (the suite crashes on Node 20) from npm into
# .tooling/conformance, starts the daemon with tests/fixtures/conformance.json on a free port,
# runs `--requirements 2025-11-25`, `--requirements 2026-07-28` and `--suite all` against the
# same URL, and fails when the suite exits non-zero, when a scenario listed in
# tests/conformance/expected/<run>.txt did not run (or one ran that is not listed), on any
# FAILURE or WARNING, and on any SKIPPED check except the ones the suite skips by design (the
# undeclared skills extension, tasks-status-notifications). check.mjs gives that verdict;
# report.mjs writes the tables of docs/CONFORMANCE.md to <results>/tables.md.
# A fourth run, `authorization`, tests the built-in OAuth 2.1 authorization server: a second
# daemon with local auth and OAUTH_TEST_USER (so /authorize approves at once), a public client
# registered through /register, and this script playing the browser; any FAILURE, WARNING or
# SKIPPED check there fails the script too.
#
# Env: MCP_DAEMON_BIN (default target/release/mcp-daemon), CONFORMANCE_OUT (results folder).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/conformance"
TOOL="$ROOT/.tooling/conformance"
BIN="${MCP_DAEMON_BIN:-$ROOT/target/release/mcp-daemon}"
OUT="${CONFORMANCE_OUT:-$ROOT/conformance-results}"

log() { printf '[conformance] %s\n' "$*" >&2; }

want="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$TOOL/.installed" || "$(cat "$TOOL/.installed")" != "$want" ]]; then
  log "installing the conformance suite and Node 22 into $TOOL"
  rm -rf "$TOOL" && mkdir -p "$TOOL"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$TOOL/"
  (cd "$TOOL" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$TOOL/.installed"
fi
NODE="$TOOL/node_modules/.bin/node"
CLI="$TOOL/node_modules/@modelcontextprotocol/conformance/dist/index.js"
log "suite $("$NODE" -p "require('$TOOL/node_modules/@modelcontextprotocol/conformance/package.json').version") on node $("$NODE" --version)"

[[ -x "$BIN" ]] || { log "daemon binary not found: $BIN"; exit 1; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp "${TMPDIR:-/tmp}/conformance-daemon.XXXXXX")"
env -u HOST -u PORT -u MCP_CONFIG_FILE -u MCP_TRANSPORT -u PAGE_SIZE -u AUTH_PROVIDER -u PUBLIC_URL \
  "$BIN" --port "$PORT" --config "$ROOT/tests/fixtures/conformance.json" 2>"$LOG" &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done

rm -rf "$OUT" && mkdir -p "$OUT"
status=0
# Both protocol eras against the same URL, then everything the suite has (adds the pending
# scenarios). check.mjs gives the verdict: the suite's exit code, every scenario of
# expected/<run>.txt present, none unlisted, no FAILURE, WARNING or SKIPPED check. Two
# exceptions for SKIPPED, both skipped by the suite itself: the skills extension (sep-2640-*),
# which this server does not declare, and tasks-status-notifications, which this suite version
# skips unconditionally. They are counted as skipped, never as passed.
for run in "2025-11-25:--requirements 2025-11-25" "2026-07-28:--requirements 2026-07-28" "all:--suite all"; do
  name="${run%%:*}"
  suite_exit=0
  # shellcheck disable=SC2086
  "$NODE" "$CLI" server --url "http://127.0.0.1:$PORT/mcp" ${run#*:} -o "$OUT/$name" >"$OUT/$name.txt" 2>&1 || suite_exit=$?
  echo "[$name] $(grep -E '^Total' "$OUT/$name.txt" || echo 'no total line')"
  "$NODE" "$HERE/check.mjs" "$name" "$OUT/$name" server "$suite_exit" \
    --allow-skip '^(sep-2640-skills-|tasks-status-notifications$)' || status=1
done
if [[ $status -ne 0 ]]; then
  log "daemon log:"
  cat "$LOG" >&2
fi

# Fourth run: the authorization server (`conformance authorization`). Its two scenarios fetch the
# metadata at /.well-known/oauth-authorization-server (issuer, endpoints, S256, CIMD support) and
# run one authorization code grant: the suite prints an /authorize URL with PKCE, state and
# resource, waits for a browser to come back to http://127.0.0.1:<port>/callback, then redeems
# the code at /token. OAUTH_TEST_USER makes /authorize answer with a 302 straight to the
# callback, so curl is the browser. The client is a public one registered through /register:
# the suite sends no client secret whenever the server advertises the `none` auth method, so a
# confidential client from OAUTH_CLIENTS_FILE could not redeem its code.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
APORT="$(free_port)"
CBPORT="$(free_port)"
ISSUER="http://127.0.0.1:$APORT"
ALOG="$(mktemp "${TMPDIR:-/tmp}/conformance-auth-daemon.XXXXXX")"
ADATA="$(mktemp -d "${TMPDIR:-/tmp}/conformance-auth-data.XXXXXX")"
env -u HOST -u PORT -u MCP_CONFIG_FILE -u MCP_TRANSPORT -u PAGE_SIZE -u PUBLIC_URL -u AUTH_PROVIDER \
  -u LOCAL_USER_FILE -u ADMIN_USERNAME -u OAUTH_CLIENTS_FILE -u JWT_SECRET_KEY -u JWT_PREVIOUS_KEYS \
  -u REDIS_URL -u REDIS_CLUSTER \
  "$BIN" --port "$APORT" --config "$ROOT/tests/fixtures/conformance.json" --data-dir "$ADATA" \
  --auth-provider local --admin-username admin --admin-password conformance-admin-password \
  --oauth-test-user admin 2>"$ALOG" &
ADAEMON=$!
trap 'kill $DAEMON $ADAEMON 2>/dev/null || true; rm -rf "$LOG" "$ALOG" "$ADATA"' EXIT
for _ in $(seq 100); do
  curl -fsS "$ISSUER/health" >/dev/null 2>&1 && break
  sleep 0.1
done
auth_status=0
CLIENT_ID="$(curl -fsS "$ISSUER/register" -H 'content-type: application/json' -d "{
    \"client_name\": \"MCP conformance suite\", \"application_type\": \"native\",
    \"redirect_uris\": [\"http://127.0.0.1:$CBPORT/callback\"], \"token_endpoint_auth_method\": \"none\",
    \"grant_types\": [\"authorization_code\", \"refresh_token\"], \"response_types\": [\"code\"]}" |
  "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).client_id))')" ||
  { log "client registration at $ISSUER/register failed"; auth_status=1; }
# The browser: passes the suite's output through and opens the authorization URL it prints,
# once its callback server says it is listening (it says so after printing the URL). Anything
# but a redirect to the callback is handed to the suite as an error, so it fails at once instead
# of waiting five minutes for a callback.
browser() {
  local line url='' listening='' answer
  while IFS= read -r line; do
    printf '%s\n' "$line"
    case $line in
      "$ISSUER/authorize?"*) url=$line ;;
      "Callback server started: http://127.0.0.1:$CBPORT") listening=1 ;;
      *) continue ;;
    esac
    [[ -n $url && -n $listening ]] || continue
    answer="$(curl -sS -o /dev/null --max-time 10 -w '%{http_code} %{redirect_url}' "$url" || true)"
    if [[ $answer =~ ^30[23]\ (http://127\.0\.0\.1:$CBPORT/callback\?.*)$ ]]; then
      curl -sS -o /dev/null --max-time 10 "${BASH_REMATCH[1]}" || true
    else
      curl -sS -o /dev/null --max-time 10 -G "http://127.0.0.1:$CBPORT/callback" \
        --data-urlencode error=browser_not_redirected \
        --data-urlencode "error_description=/authorize answered: ${answer:-no response}" || true
    fi
    url=''
  done
}
if [[ $auth_status -eq 0 ]]; then
  suite_exit=0
  timeout 60 "$NODE" "$CLI" authorization --url "$ISSUER" --client-id "$CLIENT_ID" \
    --resource "$ISSUER/mcp" -p "$CBPORT" -o "$OUT/authorization" 2>&1 | browser >"$OUT/authorization.txt" ||
    suite_exit="${PIPESTATUS[0]}"
  echo "[authorization] $(grep -E '^Total' "$OUT/authorization.txt" || echo 'no total line')"
  # Every scenario of expected/authorization.txt must have run (result folders are
  # authorization-server-<scenario>-<time>) and every check must pass: FAILURE, WARNING and
  # SKIPPED all fail the run.
  "$NODE" "$HERE/check.mjs" authorization "$OUT/authorization" authorization-server "$suite_exit" || auth_status=1
fi
if [[ $auth_status -ne 0 ]]; then
  log "authorization daemon log:"
  cat "$ALOG" >&2
  status=1
fi
# The tables of docs/CONFORMANCE.md, regenerated from this run.
"$NODE" "$HERE/report.mjs" "$OUT" >"$OUT/tables.md" || status=1
log "result tables: $OUT/tables.md"
exit $status
