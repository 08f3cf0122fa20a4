#!/usr/bin/env bash
# The `config` layer: the Configuration table (docs/operations.md) taken at its word. Starts
# ./dev.sh (no build: the build layer made the bundle) with a .dev.vars file
# and environment overrides, against the mock AI provider's keyless
# OpenAI-compatible endpoint (it refuses any Authorization header, as a
# stand-in for Ollama, vLLM or llama.cpp), then checks that every setting took
# effect, that a skipped provider is reported, that the port is checked
# before any build, that request log lines are JSON in the log file dev.sh
# names, and that /health reports migrations that are behind.
# Usage: bash tests/config.sh WORKDIR
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
work=${1:?usage: tests/config.sh WORKDIR}
mkdir -p "$work"
pass=0; fail=0
check() { if [ "$2" = "$3" ]; then echo "ok    $1"; pass=$((pass + 1)); else echo "FAIL  $1: got '$2', want '$3'"; fail=$((fail + 1)); fi; }

dev_pgid=
cleanup() {
  [ -n "$dev_pgid" ] && kill -TERM -- "-$dev_pgid" 2>/dev/null
  # dev.sh stops its wrangler on TERM; its pid file is the fallback.
  for _ in $(seq 40); do kill -0 "$dev_pgid" 2>/dev/null || break; sleep 0.25; done
  [ -f "$work/state/wrangler.pgid" ] && kill -KILL -- "-$(cat "$work/state/wrangler.pgid")" 2>/dev/null
  stop_started
}
trap cleanup EXIT

mock_port=$(free_port)
start_bg mock_pid "$work/mock.log" target/release/mock-ai --port "$mock_port"
wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; exit 1; }

port=$(free_port)
base="http://127.0.0.1:$port"
# .dev.vars (wrangler's dotenv format), one setting per line of the table.
cat > "$work/dev.vars" <<VARS
# keyless OpenAI-compatible server: OPENAI_BASE_URL alone configures it
OPENAI_BASE_URL=http://127.0.0.1:$mock_port/keyless/v1
OPENAI_MODEL=local-llama
ANTHROPIC_MODEL=claude-sonnet-4-5
WORKERS_AI_MODEL=@cf/meta/llama-3.3-70b-instruct-fp8-fast
AI_ATTEMPT_TIMEOUT_MS=2000
AI_MAX_ATTEMPTS=2
AI_BACKOFF_BASE_MS=40
AI_RETRY_AFTER_CAP_MS=1000
KAM_TIMEOUT_MS=1500
PRICING='{"models":{"local-llama":{"input":0,"output":0}}}'
MAX_JOB_COST_USD=0.5
DEFAULT_TIER=premium
DAILY_SPEND_CAP_USD={"basic": 2}
ENVIRONMENT=local-test
JOB_TIMEOUT_MS=700000
JOB_STALL_MS=45000
MODEL_TOKENS_PER_SECOND=60
WAIT_UNTIL_GRACE_MS=15000
AI_STREAM_STALL_MS=2500
VARS
# The environment wins over .dev.vars; anthropic is ordered but has no key.
env -u OPENAI_API_KEY -u ANTHROPIC_API_KEY -u SHARED_SECRET \
  PORT="$port" STATE_DIR="$work/state" DEV_VARS="$work/dev.vars" BITWARE_SKIP_BUILD=1 DEV_WATCH=0 \
  AI_ATTEMPT_TIMEOUT_MS=3000 AI_PROVIDER_ORDER=openai,anthropic \
  bash -c 'source scripts/lib.sh; start_bg pid "$0" ./dev.sh; echo "$pid" > "$1"' "$work/dev.out" "$work/dev.pid"
dev_pgid=$(cat "$work/dev.pid")
for _ in $(seq 240); do grep -q "Ctrl-C to stop" "$work/dev.out" 2>/dev/null && break; kill -0 "$dev_pgid" 2>/dev/null || break; sleep 0.5; done
if ! grep -q "Ctrl-C to stop" "$work/dev.out"; then
  echo "FAIL  ./dev.sh did not come up:"; tail -n 40 "$work/dev.out"; tail -n 20 "$work/state/wrangler.log" 2>/dev/null; exit 1
fi

skipped='AI_PROVIDER_ORDER names `anthropic`, which is skipped: ANTHROPIC_API_KEY is not set'
check "dev.sh reports an ordered provider skipped for a missing key" "$(grep -cF "WARNING: $skipped" "$work/dev.out")" 1
health=$(curl -s "$base/health")
check "/health warns about it too" "$(jq --arg w "$skipped" '[.warnings[] | select(. == $w)] | length' <<<"$health")" 1
check "/health is healthy with migrations applied" "$(jq -r .status <<<"$health")" healthy
check "the secrets file dev.sh writes is 0600" "$(stat -c %a "$work/state/secrets.env")" 600

providers=$(curl -s "$base/api/ai-providers" -H 'X-API-Key: dev-client-key')
model() { jq -r --arg n "$1" '.providers[] | select(.name == $n) | .model' <<<"$providers"; }
check "OPENAI_BASE_URL alone configures openai" "$(jq -r '.providers[] | select(.name == "openai") | .configured' <<<"$providers")" true
check "OPENAI_MODEL from .dev.vars" "$(model openai)" local-llama
check "ANTHROPIC_MODEL from .dev.vars" "$(model anthropic)" claude-sonnet-4-5
check "WORKERS_AI_MODEL from .dev.vars" "$(model workers_ai)" "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
check "AI_PROVIDER_ORDER from the environment (anthropic skipped)" "$(jq -c .order <<<"$providers")" '["openai"]'
check "AI_ATTEMPT_TIMEOUT_MS: the environment wins over .dev.vars" "$(jq .settings.attemptTimeoutMs <<<"$providers")" 3000
check "AI_MAX_ATTEMPTS" "$(jq .settings.maxAttempts <<<"$providers")" 2
check "AI_BACKOFF_BASE_MS" "$(jq .settings.backoffBaseMs <<<"$providers")" 40
check "AI_RETRY_AFTER_CAP_MS" "$(jq .settings.retryAfterCapMs <<<"$providers")" 1000
check "AI_STREAM_STALL_MS" "$(jq .settings.streamStallMs <<<"$providers")" 2500

help=$(curl -s "$base/help")
check "DEFAULT_TIER" "$(jq -r .money.defaultTier <<<"$help")" premium
check "DAILY_SPEND_CAP_USD (basic set, standard keeps its default)" \
  "$(jq -c '[.money.tiers[] | select(.tier == "basic" or .tier == "standard") | .dailySpendCapUsd]' <<<"$help")" '[2,25]'
check "MAX_JOB_COST_USD" "$(jq -r '.money.budget | contains("($0.5)")' <<<"$help")" true
check "KAM_TIMEOUT_MS" "$(jq .config.kamTimeoutMs <<<"$health")" 1500
check "JOB_TIMEOUT_MS" "$(jq .config.jobTimeoutMs <<<"$health")" 700000
check "JOB_STALL_MS" "$(jq .config.jobStallMs <<<"$health")" 45000
check "MODEL_TOKENS_PER_SECOND" "$(jq .config.modelTokensPerSecond <<<"$health")" 60
check "WAIT_UNTIL_GRACE_MS" "$(jq .config.waitUntilGraceMs <<<"$health")" 15000
check "ENVIRONMENT from .dev.vars over wrangler.toml [vars]" "$(jq -r .config.environment <<<"$health")" local-test

pricing=$(curl -s "$base/api/economy/pricing" -H 'X-API-Key: dev-client-key')
check "PRICING declares the self-hosted model at 0" "$(jq -c '.models["local-llama"]' <<<"$pricing")" '{"input":0,"output":0}'

# A job on the keyless server: priced at 0, so it may run under a budget.
marker="config-keyless-$$"
job=$(curl -s "$base/api/execute" -H 'X-API-Key: dev-client-key' -H 'Content-Type: application/json' -H "X-Request-ID: $marker" \
  -d "{\"action\":\"granulate\",\"input\":{\"topic\":\"$marker\",\"structureType\":\"quiz\",\"granularityLevel\":1}}")
check "a job runs on the keyless server (no Authorization header sent)" "$(jq -r '.success' <<<"$job")" true
check "its model is the configured one, at the top level" "$(jq -r '.model' <<<"$job")" local-llama
check "its cost is the declared 0" "$(jq -r '.cost' <<<"$job")" 0
check "the mock served it once" "$(curl -s "http://127.0.0.1:$mock_port/__mock/calls?key=$marker" | jq '.calls | length')" 1

# One JSON line per request in the log file dev.sh names, and no credential.
log="$work/state/wrangler.log"
# wrangler prefixes a worker's console lines with its tag ("[undefined] ").
line=$(grep -F "\"requestId\":\"$marker\"" "$log" | head -n 1 | sed 's/^[^{]*//')
check "the request's log line is JSON in $log" "$(jq -r '[.event, .route, .status, .tier, .caller] | join(" ")' <<<"$line" 2>/dev/null)" "request /api/execute 200 standard client"
check "the log line has its job id, tokens and cost" "$(jq -r '[(.jobId | type), (.tokens.input | type), .costUsd] | join(" ")' <<<"$line" 2>/dev/null)" "number number 0"
check "no credential in the log" "$(grep -cE 'dev-client-key|dev-shared-secret' "$log")" 0
# DEV_WATCH=0: the built bundle runs as it is; wrangler never rebuilt or restarted it.
check "DEV_WATCH=0: no build and no rebuild on watch" "$(grep -cE 'restarting build|\[custom build\]' "$log")" 0

# The port is checked before anything is built.
start=$SECONDS
out=$(PORT="$port" STATE_DIR="$work/state2" DEV_VARS=/dev/null ./dev.sh 2>&1); rc=$?
check "dev.sh refuses a port in use" "$rc $(grep -c 'already in use' <<<"$out")" "1 1"
check "...before setup or build" "$(grep -c '== setup\|== dev: building' <<<"$out")" 0
check "...at once" "$(( SECONDS - start < 5 ))" 1

# Migrations behind this code make /health degraded, and say which.
d1=$(d1_file "$work/state")
sqlite3 "$d1" "DELETE FROM d1_migrations WHERE name = '0003_tenant_spend.sql'"
status=$(curl -s -o "$work/health.json" -w '%{http_code}' "$base/health")
check "/health is 503 when a migration is missing" "$status" 503
check "...and names it" "$(jq -r '.checks.database.error | contains("0003_tenant_spend.sql")' "$work/health.json")" true
sqlite3 "$d1" "INSERT INTO d1_migrations (name) VALUES ('0003_tenant_spend.sql')"
check "/health is healthy again once it is applied" "$(curl -s -o /dev/null -w '%{http_code}' "$base/health")" 200

echo "config: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
