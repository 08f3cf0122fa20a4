# The kit's shell library (ports, process groups, wrangler dev with the KAM
# stand-in, migrations, build, setup) and this worker's test stack.
# shellcheck shell=bash

source "$(dirname "${BASH_SOURCE[0]}")/../../../crates/bitware-kit/scripts/kit.sh"

# The mock AI provider of the kit's repository (dev/mock-ai: the OpenAI and
# Anthropic wire formats, streamed at a set token rate, with a request log),
# built by the build layer (`build_mock`).
KIT_ROOT=$(cd "$KIT_DIR/../.." && pwd)
MOCK_AI_BIN=${MOCK_AI_BIN:-${CARGO_TARGET_DIR:-$KIT_ROOT/target}/release/mock-ai}
build_mock() {
  cargo build --release --manifest-path "$KIT_ROOT/Cargo.toml" -p mock-ai
}

# start_stack WORKDIR: the mock AI provider and the worker with fresh local
# state, the KAM stand-in and the granulator stand-in, wired together as the kit's repository does
# it. Exports WORKER_URL (read by bitware_kit::testing), MOCK_URL and WORKER_PGID.
start_stack() {
  local work=$1 port mock_port mock_pid
  port=$(free_port)
  mock_port=$(free_port)
  start_bg mock_pid "$work/mock.log" "$MOCK_AI_BIN" --port "$mock_port"
  wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; cat "$work/mock.log"; return 1; }
  mkdir -p "$work/state"
  apply_migrations "$work/state" || return 1
  printf 'SHARED_SECRET=dev-shared-secret\nOPENAI_API_KEY=mock-openai-key\nANTHROPIC_API_KEY=mock-anthropic-key\n' | write_private "$work/secrets.env"
  write_kam_vars dev-shared-secret
  # The granulator stand-in (dev/granulator) answers the GRANULATOR binding;
  # a registry of the stack's own keeps it from the default one (~/.wrangler),
  # where a person's ./dev.sh looks for the real granulator.
  export WRANGLER_REGISTRY_PATH="$work/registry"
  start_worker WORKER_PGID "$port" "$work/state" "$work/secrets.env" "$work/wrangler.log" \
    -c "$PWD/dev/granulator/wrangler.toml" \
    --var "KAM_TIMEOUT_MS:1000" \
    --var "OPENAI_BASE_URL:http://127.0.0.1:$mock_port/v1" \
    --var "ANTHROPIC_BASE_URL:http://127.0.0.1:$mock_port" \
    --var "AI_PROVIDER_ORDER:openai,anthropic" \
    --var "AI_ATTEMPT_TIMEOUT_MS:20000" --var "AI_BACKOFF_BASE_MS:50" --var "AI_STREAM_STALL_MS:3000"
  if ! wait_http "http://127.0.0.1:$port/" 120 "$WORKER_PGID"; then
    echo "wrangler dev did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  export WORKER_URL="http://127.0.0.1:$port" MOCK_URL="http://127.0.0.1:$mock_port" WORKER_PGID
  echo "worker on $WORKER_URL, mock AI on $MOCK_URL"
}
