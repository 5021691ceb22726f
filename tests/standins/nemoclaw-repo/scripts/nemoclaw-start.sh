#!/usr/bin/env bash
# agentsec stand-in for NemoClaw v0.0.21's sandbox entrypoint (NemoClaw scripts/nemoclaw-start.sh @db3453b5), our
# own script for the parts the collection relies on:
#   - onboarding runs it as `env CHAT_UI_URL=... [NEMOCLAW_DASHBOARD_PORT=...] nemoclaw-start`: the env wrapper around
#     itself is consumed and its assignments exported (nemoclaw-start.sh:128-149), its own name as $1 is dropped
#     (:154-156);
#   - NEMOCLAW_DASHBOARD_PORT must be 1024-65535 and, when set, overrides CHAT_UI_URL (:159-184);
#   - the baked /sandbox/.openclaw/openclaw.json must match the hash pinned at build time (verify_config_integrity,
#     :193-217), else it refuses to start;
#   - with a command it execs the command (:911-915); without one it starts `openclaw gateway run --port <port>` in
#     the background with its log in /tmp/gateway.log (0600) (:919-929).
# Deliberate difference (stand-in): upstream then waits on the gateway process (:934-935) and relies on onboarding to
# stop the create stream once the sandbox is Ready (src/lib/sandbox-create-stream.ts:186-210); this script returns
# once the gateway is started, so `openshell sandbox create -- ... nemoclaw-start` ends by itself. No gosu/gateway
# user separation, no auto-pair watcher, no messaging bridges.
set -euo pipefail

if [ "${1:-}" = "env" ]; then
  args=("$@")
  wrapper=""
  for ((i = 1; i < ${#args[@]}; i += 1)); do
    case "${args[$i]}" in
      *=*) ;;
      nemoclaw-start | /usr/local/bin/nemoclaw-start) wrapper="$i"; break ;;
      *) break ;;
    esac
  done
  if [ -n "$wrapper" ]; then
    for ((i = 1; i < wrapper; i += 1)); do export "${args[$i]}"; done
    set -- "${args[@]:$((wrapper + 1))}"
  fi
fi
case "${1:-}" in
  nemoclaw-start | /usr/local/bin/nemoclaw-start) shift ;;
esac

port="${NEMOCLAW_DASHBOARD_PORT:-18789}"
port="$(printf '%s' "$port" | tr -d '[:space:]')"
case "$port" in
  '' | *[!0-9]*) echo "[SECURITY] Invalid NEMOCLAW_DASHBOARD_PORT='${NEMOCLAW_DASHBOARD_PORT:-}' — must be an integer between 1024 and 65535" >&2; exit 1 ;;
esac
if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
  echo "[SECURITY] Invalid NEMOCLAW_DASHBOARD_PORT='${NEMOCLAW_DASHBOARD_PORT:-}' — must be an integer between 1024 and 65535" >&2
  exit 1
fi
if [ -n "${NEMOCLAW_DASHBOARD_PORT:-}" ]; then
  export CHAT_UI_URL="http://127.0.0.1:${port}"
else
  export CHAT_UI_URL="${CHAT_UI_URL:-http://127.0.0.1:${port}}"
fi

if ! (cd / && sha256sum -c --status /sandbox/.openclaw/.config-hash) 2>/dev/null; then
  echo "[SECURITY] Config integrity check failed — refusing to start" >&2
  exit 1
fi

if [ "$#" -gt 0 ]; then
  exec "$@"
fi

[ "$(id -u)" -eq 0 ] || export HOME=/sandbox
: >/tmp/gateway.log
chmod 600 /tmp/gateway.log
nohup openclaw gateway run --port "$port" >/tmp/gateway.log 2>&1 &
echo "[gateway] openclaw gateway launched (pid $!)" >&2
echo "[gateway] dashboard: ${CHAT_UI_URL%/}/" >&2
