#!/usr/bin/env bash
# ./dev.sh: install what is missing, build, apply D1 migrations locally and run
# the worker in `wrangler dev` with bitware-kit's KAM stand-in bound as
# KEY_ACCOUNT_MANAGER. Ctrl-C stops everything it started.
# Settings: PORT (8787), STATE_DIR (.state), SHARED_SECRET (dev-shared-secret),
# DEV_WATCH (1: rebuild and reload when src/ changes; 0: run the bundle as built),
# DEV_MOCK (1: the example's model calls go to the kit repository's mock AI
# provider, started here at MOCK_TOKENS_PER_SECOND (50); 0: to the providers
# of OPENAI_API_KEY / ANTHROPIC_API_KEY in the environment).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

PORT=${PORT:-8787}
STATE_DIR=${STATE_DIR:-.state}
SHARED_SECRET=${SHARED_SECRET:-dev-shared-secret}
port_free "$PORT" || { echo "dev: port $PORT on 127.0.0.1 is in use; PORT=<free port> ./dev.sh" >&2; exit 1; }

scripts/setup.sh
echo "== dev: building the worker"
sh scripts/build.sh
mkdir -p "$STATE_DIR"
apply_migrations "$STATE_DIR"
write_kam_vars "$SHARED_SECRET"

trap stop_started EXIT INT TERM
providers=()
if [ "${DEV_MOCK:-1}" = 1 ]; then
  build_mock
  mock_port=$(free_port)
  start_bg mock_pid "$STATE_DIR/mock.log" "$MOCK_AI_BIN" --port "$mock_port" --tokens-per-second "${MOCK_TOKENS_PER_SECOND:-50}"
  wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { cat "$STATE_DIR/mock.log" >&2; exit 1; }
  printf 'SHARED_SECRET=%s\nOPENAI_API_KEY=mock-openai-key\n' "$SHARED_SECRET" | write_private "$STATE_DIR/secrets.env"
  providers=(--var "OPENAI_BASE_URL:http://127.0.0.1:$mock_port/v1" --var "AI_PROVIDER_ORDER:openai")
else
  { printf 'SHARED_SECRET=%s\n' "$SHARED_SECRET"
    if [ -n "${OPENAI_API_KEY:-}" ]; then printf 'OPENAI_API_KEY=%s\n' "$OPENAI_API_KEY"; fi
    if [ -n "${ANTHROPIC_API_KEY:-}" ]; then printf 'ANTHROPIC_API_KEY=%s\n' "$ANTHROPIC_API_KEY"; fi
  } | write_private "$STATE_DIR/secrets.env"
fi
KIT_WATCH=${DEV_WATCH:-1} start_worker pid "$PORT" "$STATE_DIR" "$STATE_DIR/secrets.env" "$STATE_DIR/wrangler.log" "${providers[@]}"
wait_http "http://127.0.0.1:$PORT/" 90 "$pid" || { tail -n 30 "$STATE_DIR/wrangler.log" >&2; exit 1; }
cat <<MSG

bitware-content-generator is running on http://127.0.0.1:$PORT  (logs: $STATE_DIR/wrangler.log)
Dev credentials (the KAM stand-in of bitware-kit): X-API-Key: dev-client-key,
x-bitware-session-token: dev-admin-session, Authorization: Bearer <SHARED_SECRET> + X-Worker-ID: <any>.
Try:
  curl -s http://127.0.0.1:$PORT/api/execute -H 'X-API-Key: dev-client-key' -H 'Content-Type: application/json' \\
    -H 'Prefer: respond-async' -d '{"action":"example","input":{"text":"One two. Three!"}}'
  curl -sN http://127.0.0.1:$PORT/api/jobs/<jobId>/events -H 'X-API-Key: dev-client-key'
Ctrl-C to stop.
MSG
wait "$pid"
