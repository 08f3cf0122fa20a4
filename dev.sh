#!/usr/bin/env bash
# ./dev.sh: install what is missing, build, apply D1 migrations locally and run
# the granulator in `wrangler dev` with the KAM stand-in bound as
# KEY_ACCOUNT_MANAGER. Ctrl-C stops everything it started.
#
# Script settings: PORT (8787), STATE_DIR (.state), DEV_VARS (.dev.vars),
# DEV_WATCH (1: wrangler rebuilds and reloads when src/ changes; 0: the
# bundle runs as built and is never restarted, as tests/config.sh runs it).
# Worker configuration: every variable of docs/operations.md's Configuration table, from
# the environment or from .dev.vars (the environment wins); see
# scripts/dev_vars.py. With no provider configured the offline provider
# answers (deterministic, free).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

PORT=${PORT:-8787}
STATE_DIR=${STATE_DIR:-.state}
DEV_VARS=${DEV_VARS:-.dev.vars}
DEFAULT_SECRET=dev-shared-secret

# Before any build: a port already taken would only fail after a minute of work.
if ! port_free "$PORT"; then
  echo "dev: port $PORT on 127.0.0.1 is already in use; stop what holds it or run PORT=<free port> ./dev.sh" >&2
  exit 1
fi

scripts/setup.sh
echo "== dev: building the worker"
sh scripts/build.sh
mkdir -p "$STATE_DIR"
echo "== dev: applying D1 migrations to $STATE_DIR"
apply_migrations "$STATE_DIR"

# .dev.vars + the environment, merged into one private env file (mode 0600)
# that wrangler loads with --env-file; never wrangler.toml or the command line.
env_file="$STATE_DIR/secrets.env"
python3 scripts/dev_vars.py write "$DEV_VARS" | write_private "$env_file"
SHARED_SECRET=$(python3 scripts/dev_vars.py get SHARED_SECRET "$env_file")
write_kam_vars "$SHARED_SECRET"
[ -f "$DEV_VARS" ] && echo "== dev: configuration from $DEV_VARS and the environment"

trap stop_started EXIT INT TERM
KIT_WATCH=${DEV_WATCH:-1} start_worker pid "$PORT" "$STATE_DIR" "$env_file" "$STATE_DIR/wrangler.log"
echo "$pid" > "$STATE_DIR/wrangler.pgid"
if ! wait_http "http://127.0.0.1:$PORT/" 90 "$pid"; then
  echo "dev: the worker did not start; see $STATE_DIR/wrangler.log" >&2
  tail -n 30 "$STATE_DIR/wrangler.log" >&2
  exit 1
fi
health=$(curl -s "http://127.0.0.1:$PORT/health")
secret_shown=$SHARED_SECRET
[ "$SHARED_SECRET" = "$DEFAULT_SECRET" ] || secret_shown='<your SHARED_SECRET>'
cat <<MSG

The granulator is running on http://127.0.0.1:$PORT  (logs: $STATE_DIR/wrangler.log, one JSON line per request)
Console (sign in with a credential below): http://127.0.0.1:$PORT/console/
AI providers: $(jq -c '.aiProviders.order' <<<"$health")
$(jq -r '.warnings[] | "WARNING: " + .' <<<"$health")$(jq -r 'select(.status != "healthy") | "\nDEGRADED: " + ([.checks | to_entries[] | select(.value.ok != true) | .key + ": " + (.value.error // "failed")] | join("; "))' <<<"$health")

Dev credentials (KAM stand-in, crates/bitware-kit/dev/kam/index.js):
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
