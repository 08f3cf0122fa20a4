#!/usr/bin/env bash
# ./test.sh: the whole suite. Layers, in order:
#   setup   install what is missing (scripts/setup.sh)
#   unit    cargo test of the pure core and the mock (native)
#   build   the worker bundle, the mock AI server, the e2e test binary
#   schema  migrations == schema/*.sql, and re-applying migrations is a no-op
#   e2e     Rust integration tests against wrangler dev (real workerd, local
#           D1/KV/R2, the KAM stand-in) and the mock AI provider on loopback
#   smoke   curl + jq checks of the main routes
# Every layer must pass; a layer that did not run fails the suite.
#
# BASE_URL=http://127.0.0.1:8787 ./test.sh --smoke  runs only the smoke checks
# against a worker that is already running (./dev.sh).
set -uo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

if [ "${1:-}" = "--smoke" ]; then
  : "${BASE_URL:?set BASE_URL, e.g. BASE_URL=http://127.0.0.1:8787}"
  exec bash tests/smoke.sh "$BASE_URL"
fi

LAYERS=(setup unit build schema e2e smoke)
declare -A RESULT
WORK=$(mktemp -d)
cleanup() { stop_started; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

layer() {
  local name=$1; shift
  printf '\n======== %s ========\n' "$name"
  local start=$SECONDS
  if "$@"; then RESULT[$name]=passed; else RESULT[$name]=failed; fi
  printf -- '-------- %s %s in %ss\n' "$name" "${RESULT[$name]}" $((SECONDS - start))
}

unit() { cargo test --workspace --lib --bins; }
build() {
  sh scripts/build.sh && cargo build -p mock-ai --release && cargo test --test e2e --no-run
}

start_services() {
  MOCK_PORT=$(free_port)
  WORKER_PORT=$(free_port)
  local mock_pid worker_pid
  mock_pid=$(start_bg "$WORK/mock.log" target/release/mock-ai --port "$MOCK_PORT")
  wait_http "http://127.0.0.1:$MOCK_PORT/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; cat "$WORK/mock.log"; return 1; }
  mkdir -p "$WORK/state"
  apply_migrations "$WORK/state" || return 1
  SHARED_SECRET=dev-shared-secret
  (umask 077; printf 'SHARED_SECRET=%s\nOPENAI_API_KEY=mock-openai-key\nANTHROPIC_API_KEY=mock-anthropic-key\n' "$SHARED_SECRET" > "$WORK/secrets.env")
  write_kam_vars "$SHARED_SECRET"
  worker_pid=$(start_worker "$WORKER_PORT" "$WORK/state" "$WORK/secrets.env" "$WORK/wrangler.log" \
    --var "OPENAI_BASE_URL:http://127.0.0.1:$MOCK_PORT/v1" \
    --var "ANTHROPIC_BASE_URL:http://127.0.0.1:$MOCK_PORT" \
    --var "AI_PROVIDER_ORDER:openai,anthropic" \
    --var "AI_ATTEMPT_TIMEOUT_MS:1500" --var "AI_BACKOFF_BASE_MS:50" --var "AI_RETRY_AFTER_CAP_MS:1500" \
    --var "KAM_TIMEOUT_MS:1000")
  if ! wait_http "http://127.0.0.1:$WORKER_PORT/" 120 "$worker_pid"; then
    echo "wrangler dev did not start:"; tail -n 40 "$WORK/wrangler.log"; return 1
  fi
  export GRANULATOR_URL="http://127.0.0.1:$WORKER_PORT" MOCK_URL="http://127.0.0.1:$MOCK_PORT"
  echo "worker on $GRANULATOR_URL, mock AI on $MOCK_URL"
}

e2e() {
  start_services || return 1
  local rc=0
  cargo test --test e2e -- --test-threads 6 || rc=1
  [ $rc -eq 0 ] || { echo "last wrangler log lines:"; tail -n 40 "$WORK/wrangler.log"; }
  return $rc
}

smoke() {
  [ -n "${GRANULATOR_URL:-}" ] || { echo "smoke: no running worker (the e2e layer did not start one)"; return 1; }
  bash tests/smoke.sh "$GRANULATOR_URL"
}

layer setup scripts/setup.sh
[ "${RESULT[setup]}" = passed ] && layer unit unit
[ "${RESULT[setup]}" = passed ] && layer build build
[ "${RESULT[build]:-}" = passed ] && layer schema bash scripts/check-schema.sh
[ "${RESULT[build]:-}" = passed ] && layer e2e e2e
[ "${RESULT[e2e]:-}" != "" ] && layer smoke smoke

passed=0; failed=0
printf '\n======== summary ========\n'
for l in "${LAYERS[@]}"; do
  status=${RESULT[$l]:-did-not-run}
  printf '  %-7s %s\n' "$l" "$status"
  if [ "$status" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
