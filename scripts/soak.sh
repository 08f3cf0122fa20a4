#!/usr/bin/env bash
# Soak: SECONDS of concurrent POST /api/execute (distinct X-Request-IDs, 10 %
# repeats of earlier ones) while the mock injects 5 % 500s and 5 % timeouts,
# and beside it a stream of async executes (`Prefer: respond-async`, 10 %
# repeats, run by the queue consumer). Then, from D1: no 5xx from the worker,
# every acknowledged job present exactly once, repeats replayed or joined (not
# run again), no job left processing once the queue drained, and tokens and
# cost in resource_consumption equal to what the mock served.
# Each sync connection acts for a client of its own (X-Client-ID: soak-…-{c}),
# as the Resource Manager does for many clients, so the per-tenant rate limits
# and spend caps stay out of the way of what the soak measures.
# Needs a running stack (scripts/lib.sh start_stack).
# Usage: soak.sh SECONDS CONCURRENCY [ASYNC_CONCURRENCY ASYNC_MAX_REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
seconds=${1:-60}; concurrency=${2:-32}; async_concurrency=${3:-2}; async_max=${4:-60}
: "${GRANULATOR_URL:?}" "${MOCK_URL:?}" "${STATE_DIR:?}"
client="soak-$(date +%s%N)"
aclient="async-$client"
out=$(mktemp); trap 'rm -f "$out" "$out.async" "$out.stored" "$out.acked"; curl -s -X POST "$MOCK_URL/__mock/config" -H "Content-Type: application/json" -d "{}" >/dev/null' EXIT

curl -sf -X DELETE "$MOCK_URL/__mock/totals" >/dev/null
curl -sf -X POST "$MOCK_URL/__mock/config" -H 'Content-Type: application/json' \
  -d "{\"errorRate\": 0.05, \"timeoutRate\": 0.05, \"hangMs\": $((STACK_ATTEMPT_TIMEOUT_MS + 500))}" >/dev/null
target/release/loadgen --url "$GRANULATOR_URL/api/execute" --method POST \
  --header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: soak' --header "X-Client-ID: $client-{c}" \
  --body '{"action":"granulate","input":{"topic":"Soak topic {n}","structureType":"quiz","granularityLevel":1}}' \
  --concurrency "$concurrency" --seconds "$seconds" --request-ids --duplicate-rate 0.1 > "$out" &
sync_pid=$!
target/release/loadgen --url "$GRANULATOR_URL/api/execute" --method POST \
  --header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: soak' --header "X-Client-ID: $aclient" \
  --header 'Prefer: respond-async' \
  --body '{"action":"granulate","input":{"topic":"Async soak topic {n}","structureType":"quiz","granularityLevel":1}}' \
  --concurrency "$async_concurrency" --seconds "$seconds" --max-requests "$async_max" --request-ids --duplicate-rate 0.1 > "$out.async"
wait "$sync_pid"

db=$(d1_file "$STATE_DIR")
q() { sqlite3 -readonly -cmd '.timeout 10000' "$db" "$1"; }
# The queue consumer finishes the async jobs (faults still injected), then the books are read.
for _ in $(seq 1 240); do
  [ "$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id = '$aclient' AND status = 'processing';")" = 0 ] && break
  sleep 0.5
done
curl -sf -X POST "$MOCK_URL/__mock/config" -H 'Content-Type: application/json' -d '{}' >/dev/null
sleep 1
mock=$(curl -sf "$MOCK_URL/__mock/totals")
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok    $1 ($2)"; else echo "FAIL  $1: got $2, want $3"; fail=1; fi; }

jq -c '{requests, rps, statuses, latencyMs, duplicatesSent, distinctIdsSent}' "$out"
check "no 5xx or transport errors from the worker" "$(jq '[.statuses | to_entries[] | select(.key | test("^5|error|timeout")) | .value] | add // 0' "$out")" 0
acked=$(jq '.acknowledgedIds | length' "$out")
in_db=$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id LIKE '$client-%' AND status = 'completed';")
distinct=$(q "SELECT COUNT(DISTINCT client_id || '/' || execution_id) FROM granulation_jobs WHERE client_id LIKE '$client-%';")
rows=$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id LIKE '$client-%';")
check "every acknowledged job is stored, completed" "$in_db" "$acked"
check "each request id is one job" "$rows" "$distinct"
q "SELECT execution_id FROM granulation_jobs WHERE client_id LIKE '$client-%' AND status = 'completed';" | LC_ALL=C sort > "$out.stored"
jq -r '.acknowledgedIds[]' "$out" | LC_ALL=C sort > "$out.acked"
missing=$(LC_ALL=C comm -23 "$out.acked" "$out.stored" | wc -l)
check "acknowledged ids missing from D1" "$missing" 0
check "jobs left processing" "$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id LIKE '$client-%' AND status = 'processing';")" 0
jq -c '{async: true, requests, statuses, latencyMs, duplicatesSent, distinctIdsSent}' "$out.async"
check "async: only 202 (or 200 replays) from the worker" "$(jq '[.statuses | to_entries[] | select(.key != "202" and .key != "200") | .value] | add // 0' "$out.async")" 0
aacked=$(jq '.acknowledgedIds | length' "$out.async")
check "async: each request id is one job" "$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id = '$aclient';")" "$(q "SELECT COUNT(DISTINCT execution_id) FROM granulation_jobs WHERE client_id = '$aclient';")"
check "async: every accepted job is stored and completed (0 lost)" "$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id = '$aclient' AND status = 'completed';")" "$aacked"
check "async: jobs left processing" "$(q "SELECT COUNT(*) FROM granulation_jobs WHERE client_id = '$aclient' AND status = 'processing';")" 0
completed_all=$(q "SELECT COUNT(*) FROM granulation_jobs WHERE (client_id LIKE '$client-%' OR client_id = '$aclient') AND status = 'completed';")
successes=$(q "SELECT COUNT(*) FROM resource_consumption WHERE (client_id LIKE '$client-%' OR client_id = '$aclient') AND status = 'success';")
check "one successful model call per completed job, sync and async (0 duplicated)" "$successes" "$completed_all"
check "model answers the mock served = successful calls recorded" "$(jq .answered <<<"$mock")" "$successes"
check "input tokens recorded = served" "$(q "SELECT COALESCE(SUM(tokens_input), 0) FROM resource_consumption WHERE (client_id LIKE '$client-%' OR client_id = '$aclient');")" "$(jq .tokensInput <<<"$mock")"
check "output tokens recorded = served" "$(q "SELECT COALESCE(SUM(tokens_output), 0) FROM resource_consumption WHERE (client_id LIKE '$client-%' OR client_id = '$aclient');")" "$(jq .tokensOutput <<<"$mock")"
cost_ok=$(q "SELECT CASE WHEN ABS(SUM(cost_usd) - SUM(CASE provider WHEN 'openai' THEN (tokens_input * 0.15 + tokens_output * 0.60) ELSE (tokens_input * 1.0 + tokens_output * 5.0) END) / 1e6) <= 1e-6 * COUNT(*) THEN 'equal' ELSE 'differs' END FROM resource_consumption WHERE (client_id LIKE '$client-%' OR client_id = '$aclient');")
check "cost recorded = served tokens at list prices" "$cost_ok" equal
check "job costs = sum of their attempts" "$(q "SELECT CASE WHEN ABS((SELECT SUM(cost_usd) FROM granulation_jobs WHERE client_id LIKE '$client-%') - (SELECT SUM(cost_usd) FROM resource_consumption WHERE client_id LIKE '$client-%')) <= 1e-9 THEN 'equal' ELSE 'differs' END;")" equal
echo "soak: $(jq .requests "$out") sync + $(jq .requests "$out.async") async requests, $(jq .duplicatesSent "$out") + $(jq .duplicatesSent "$out.async") repeats, $(jq .injectedErrors <<<"$mock") injected 500s, $(jq .injectedTimeouts <<<"$mock") injected timeouts"
exit $fail
