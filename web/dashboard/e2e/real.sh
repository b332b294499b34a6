#!/usr/bin/env bash
# E2E against a real `aiusage serve --demo` on 127.0.0.1 (SQLite in a temporary data dir).
#
#   bash e2e/real.sh            build must exist (npx ng build); runs e2e/run.mjs, cleans up
#   bash e2e/real.sh restart    (used by the restart test through E2E_RESTART_CMD)
#
# Env: AIUSAGE (default <repo>/.venv/bin/aiusage), E2E_ARTIFACTS (default e2e/artifacts).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(cd ../.. && pwd)
AIUSAGE=${AIUSAGE:-$REPO/.venv/bin/aiusage}

start_server() { # uses E2E_STATE, E2E_PORT
  setsid "$AIUSAGE" serve --demo --host 127.0.0.1 --port "$E2E_PORT" --data-dir "$E2E_STATE/data" \
    --web-dir "$PWD/dist/dashboard/browser" >>"$E2E_STATE/serve.log" 2>&1 &
  echo $! >"$E2E_STATE/pid"
  for _ in $(seq 1 100); do # at most 20 s
    if curl -fsS "http://127.0.0.1:$E2E_PORT/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "server did not become healthy; log:" >&2
  tail -30 "$E2E_STATE/serve.log" >&2
  return 1
}

stop_server() {
  local pid
  pid=$(cat "$E2E_STATE/pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do # at most 10 s for the graceful stop
    kill -0 "$pid" 2>/dev/null || { rm -f "$E2E_STATE/pid"; return 0; }
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$E2E_STATE/pid"
}

if [ "${1:-}" = restart ]; then
  stop_server
  start_server
  exit 0
fi

[ -f dist/dashboard/browser/index.html ] || { echo "build first: npx ng build" >&2; exit 2; }
export E2E_STATE
E2E_STATE=$(mktemp -d /tmp/aiusage-e2e.XXXXXX)
export E2E_PORT
E2E_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cleanup() { stop_server; rm -rf "$E2E_STATE"; }
trap cleanup EXIT

start_server
# The demo first loads its simulated history (a minute of bulk ingestion); the tests measure
# the live path, so they start once it is in.
for _ in $(seq 1 240); do # at most 240 s
  grep -q "simulated history posted" "$E2E_STATE/serve.log" && break
  sleep 1
done
D=(--data-dir "$E2E_STATE/data")
# Own users with known passwords: `serve --demo` picks a new demo password on every start,
# and the restart test restarts the server.
"$AIUSAGE" user create --email admin@e2e.local --org demo --role Admin --password e2e-admin-pass "${D[@]}" >/dev/null
"$AIUSAGE" user create --email manager@e2e.local --org demo --role Manager --password e2e-manager-pass "${D[@]}" >/dev/null
"$AIUSAGE" org create --id e2e-other --name "E2E other" "${D[@]}" >/dev/null
"$AIUSAGE" user create --email super@e2e.local --org demo --role SuperAdmin --password e2e-super-pass "${D[@]}" >/dev/null

export BASE_URL="http://127.0.0.1:$E2E_PORT"
export E2E_EMAIL=admin@e2e.local E2E_PASSWORD=e2e-admin-pass
export E2E_MANAGER_EMAIL=manager@e2e.local E2E_MANAGER_PASSWORD=e2e-manager-pass
export E2E_SUPER_EMAIL=super@e2e.local E2E_SUPER_PASSWORD=e2e-super-pass
export E2E_ORG=demo E2E_OTHER_ORG=e2e-other
E2E_AGENT_TOKEN=$("$AIUSAGE" token issue --sub e2e-agent --org demo --role Agent "${D[@]}")
E2E_OTHER_AGENT_TOKEN=$("$AIUSAGE" token issue --sub e2e-agent-b --org e2e-other --role Agent "${D[@]}")
export E2E_AGENT_TOKEN E2E_OTHER_AGENT_TOKEN
export E2E_RESTART_CMD="bash $PWD/e2e/real.sh restart"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
node e2e/run.mjs
