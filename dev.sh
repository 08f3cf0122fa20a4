#!/usr/bin/env bash
# ./dev.sh: install what is missing, build, apply D1 migrations locally and run
# the granulator in `wrangler dev` with the KAM stand-in bound as
# KEY_ACCOUNT_MANAGER. Ctrl-C stops everything it started.
#
# Overrides: PORT (8787), STATE_DIR (.state), SHARED_SECRET, OPENAI_API_KEY,
# OPENAI_BASE_URL, ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, AI_PROVIDER_ORDER.
# With no provider key the offline provider answers (deterministic, free).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

PORT=${PORT:-8787}
STATE_DIR=${STATE_DIR:-.state}
DEFAULT_SECRET=dev-shared-secret
SHARED_SECRET=${SHARED_SECRET:-$DEFAULT_SECRET}

scripts/setup.sh
echo "== dev: building the worker"
sh scripts/build.sh
mkdir -p "$STATE_DIR"
echo "== dev: applying D1 migrations to $STATE_DIR"
apply_migrations "$STATE_DIR"

# Secrets go to a private env file, never to wrangler.toml or the command line.
env_file="$STATE_DIR/secrets.env"
{
  printf 'SHARED_SECRET=%s\n' "$SHARED_SECRET"
  [ -n "${OPENAI_API_KEY:-}" ] && printf 'OPENAI_API_KEY=%s\n' "$OPENAI_API_KEY"
  [ -n "${ANTHROPIC_API_KEY:-}" ] && printf 'ANTHROPIC_API_KEY=%s\n' "$ANTHROPIC_API_KEY"
  true
} | write_private "$env_file"
write_kam_vars "$SHARED_SECRET"

vars=()
for name in OPENAI_BASE_URL ANTHROPIC_BASE_URL AI_PROVIDER_ORDER; do
  [ -n "${!name:-}" ] && vars+=(--var "$name:${!name}")
done

trap stop_started EXIT INT TERM
start_worker pid "$PORT" "$STATE_DIR" "$env_file" "$STATE_DIR/wrangler.log" "${vars[@]}"
if ! wait_http "http://127.0.0.1:$PORT/" 90 "$pid"; then
  echo "dev: the worker did not start; see $STATE_DIR/wrangler.log" >&2
  tail -n 30 "$STATE_DIR/wrangler.log" >&2
  exit 1
fi
secret_shown=$SHARED_SECRET
[ "$SHARED_SECRET" = "$DEFAULT_SECRET" ] || secret_shown='<your SHARED_SECRET>'
cat <<MSG

The granulator is running on http://127.0.0.1:$PORT  (logs: $STATE_DIR/wrangler.log)
AI providers: $(curl -s "http://127.0.0.1:$PORT/health" | jq -c '.aiProviders.order')

Dev credentials (KAM stand-in, dev/kam/index.js):
  client          X-API-Key: dev-client-key          (client dev-client, tier standard)
  other client    X-API-Key: dev-other-key           (client other-client, tier basic)
  admin session   x-bitware-session-token: dev-admin-session
  user session    x-bitware-session-token: dev-user-session   (client dev-client)
  orphan session  x-bitware-session-token: dev-orphan-session (user dev-client, no client: its own tenant)
  worker          Authorization: Bearer $secret_shown  +  X-Worker-ID: <any>

Try:
  curl -s http://127.0.0.1:$PORT/api/execute -H 'X-API-Key: dev-client-key' -H 'Content-Type: application/json' \\
    -d '{"action":"granulate","input":{"topic":"Rust ownership","structureType":"course","granularityLevel":3}}' | jq .

Smoke checks against this server:  BASE_URL=http://127.0.0.1:$PORT ./test.sh --smoke
Ctrl-C to stop.
MSG
wait "$pid"
