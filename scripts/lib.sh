# Shared by dev.sh, test.sh and bench.sh: the kit's process and port helpers
# (crates/bitware-kit/scripts/kit.sh) and the granulator's test stack.
# shellcheck shell=bash

source "$(dirname "${BASH_SOURCE[0]}")/../crates/bitware-kit/scripts/kit.sh"

# Attempt timeout of the stack below; the soak's injected hangs outlast it.
STACK_ATTEMPT_TIMEOUT_MS=1500
# Prices the operator declares on top of the defaults: an older Claude model,
# and a self-hosted model that is free (0 is a valid price; undeclared
# models are refused while a budget applies).
STACK_PRICING='{"models":{"claude-3-5-haiku-latest":{"input":0.8,"output":4.0},"local-llama":{"input":0,"output":0}}}'

# A stream silent this long is retried (tests/async_jobs.rs stalls the mock past it;
# generous, so a loaded CI box is not mistaken for a stalled provider).
STACK_STREAM_STALL_MS=3000
# A started run silent this long is taken over (tests/panic.rs waits it out;
# the smallest allowed, three of a live run's 5-s heartbeats).
STACK_JOB_STALL_MS=15000
# KAM's positive answers are trusted this long (a logout takes effect within it).
STACK_KAM_CACHE_SECONDS=2
# Queued jobs whose topic holds this marker make the consumer fail (dead-letter test).
STACK_QUEUE_FAULT_MARKER=queue-fault-marker

# start_stack WORKDIR [MOCK_DELAY_MS]: the mock AI provider and the worker with
# fresh local state, wired together (with the development-only panic route,
# TEST_PANIC_ROUTE, that tests/panic.rs uses). Exports GRANULATOR_URL, MOCK_URL, STATE_DIR
# and WORKER_PGID (the wrangler/workerd process group).
start_stack() {
  local work=$1 mock_port worker_port mock_pid
  mock_port=$(free_port)
  worker_port=$(free_port)
  start_bg mock_pid "$work/mock.log" target/release/mock-ai --port "$mock_port"
  wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; cat "$work/mock.log"; return 1; }
  mkdir -p "$work/state"
  apply_migrations "$work/state" || return 1
  printf 'SHARED_SECRET=dev-shared-secret\nOPENAI_API_KEY=mock-openai-key\nANTHROPIC_API_KEY=mock-anthropic-key\n' | write_private "$work/secrets.env"
  write_kam_vars dev-shared-secret
  start_worker WORKER_PGID "$worker_port" "$work/state" "$work/secrets.env" "$work/wrangler.log" \
    --var "OPENAI_BASE_URL:http://127.0.0.1:$mock_port/v1" \
    --var "ANTHROPIC_BASE_URL:http://127.0.0.1:$mock_port" \
    --var "AI_PROVIDER_ORDER:openai,anthropic" \
    --var "AI_ATTEMPT_TIMEOUT_MS:$STACK_ATTEMPT_TIMEOUT_MS" --var "AI_BACKOFF_BASE_MS:50" --var "AI_RETRY_AFTER_CAP_MS:1500" \
    --var "KAM_TIMEOUT_MS:1000" --var "KAM_CACHE_SECONDS:$STACK_KAM_CACHE_SECONDS" --var "PRICING:$STACK_PRICING" \
    --var "AI_STREAM_STALL_MS:$STACK_STREAM_STALL_MS" --var "QUEUE_FAULT_MARKER:$STACK_QUEUE_FAULT_MARKER" \
    --var "JOB_STALL_MS:$STACK_JOB_STALL_MS" \
    --var "TEST_PANIC_ROUTE:enabled"
  if ! wait_http "http://127.0.0.1:$worker_port/" 120 "$WORKER_PGID"; then
    echo "wrangler dev did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  D1_FILE=$(d1_file "$work/state")
  export GRANULATOR_URL="http://127.0.0.1:$worker_port" MOCK_URL="http://127.0.0.1:$mock_port" STATE_DIR="$work/state" WORKER_PGID D1_FILE
  # The kit's test harness (bitware_kit::testing) reads WORKER_URL.
  export WORKER_URL=$GRANULATOR_URL
  echo "worker on $GRANULATOR_URL, mock AI on $MOCK_URL"
}

# start_floor WORKDIR: bench/floor (built by `scripts/build.sh --floor`) on its
# own local D1 with the granulator's migrations. Exports FLOOR_URL and
# FLOOR_PGID (its wrangler/workerd process group).
start_floor() {
  local work=$1 port
  port=$(free_port)
  mkdir -p "$work/state"
  node_modules/.bin/wrangler d1 migrations apply DB --local -c bench/floor/wrangler.toml --persist-to "$work/state" >/dev/null || return 1
  start_bg FLOOR_PGID "$work/wrangler.log" node_modules/.bin/wrangler dev -c bench/floor/wrangler.toml \
    --ip 127.0.0.1 --port "$port" --inspector-port "$(free_port)" --persist-to "$work/state" \
    --show-interactive-dev-session=false
  if ! wait_http "http://127.0.0.1:$port/" 120 "$FLOOR_PGID"; then
    echo "the floor did not start:"; tail -n 40 "$work/wrangler.log"; return 1
  fi
  export FLOOR_URL="http://127.0.0.1:$port" FLOOR_PGID
  echo "floor on $FLOOR_URL"
}

# The Content Generator (workers/content-generator), the stage after the granulator.
GENERATOR_DIR=workers/content-generator

# build_generator: the Content Generator's bundle (its own scripts/build.sh),
# sharing this project's target directory (compiled dependencies are reused)
# and node_modules (linked when it has none of its own: the same package-lock).
build_generator() {
  [ -e "$GENERATOR_DIR/node_modules" ] || ln -s ../../node_modules "$GENERATOR_DIR/node_modules" || return 1
  (cd "$GENERATOR_DIR" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OLDPWD/target}" sh scripts/build.sh)
}

# start_chain_stack WORKDIR [TOKENS_PER_SECOND]: the chain the Resource Manager
# drives, on loopback: the mock AI provider (streaming at TOKENS_PER_SECOND,
# default instant); the granulator under wrangler dev with the KAM stand-in
# (as start_stack); the Content Generator under a second wrangler dev whose
# GRANULATOR and KEY_ACCOUNT_MANAGER service bindings reach the first
# process's workers through wrangler's dev registry. WRANGLER_REGISTRY_PATH
# (wrangler 4.86's getRegistryPath) keeps each stack's registry in
# WORKDIR/registry: concurrent stacks never bind each other's workers, and no
# file outside WORKDIR is written. Each worker has fresh local D1 from its own
# migrations, the same SHARED_SECRET and the mock as its provider. Both
# bundles are built beforehand (sh scripts/build.sh; cd $GENERATOR_DIR && sh
# scripts/build.sh). Exports GRANULATOR_URL, GENERATOR_URL, MOCK_URL,
# GRANULATOR_PGID and GENERATOR_PGID (WORKER_URL is the granulator's, for
# bitware_kit::testing); stop_started stops all of it.
start_chain_stack() {
  local work=$1 tps=${2:-0} mock_port gran_port gen_port mock_pid config root=$PWD
  mock_port=$(free_port)
  gran_port=$(free_port)
  gen_port=$(free_port)
  mkdir -p "$work/registry" "$work/granulator/state" "$work/generator/state"
  export WRANGLER_REGISTRY_PATH="$work/registry"
  start_bg mock_pid "$work/mock.log" target/release/mock-ai --port "$mock_port" --tokens-per-second "$tps"
  wait_http "http://127.0.0.1:$mock_port/__mock/health" 20 "$mock_pid" || { echo "mock AI did not start"; cat "$work/mock.log"; return 1; }
  apply_migrations "$work/granulator/state" || return 1
  node_modules/.bin/wrangler d1 migrations apply DB --local -c "$GENERATOR_DIR/wrangler.toml" \
    --persist-to "$work/generator/state" >/dev/null || return 1
  printf 'SHARED_SECRET=dev-shared-secret\nOPENAI_API_KEY=mock-openai-key\nANTHROPIC_API_KEY=mock-anthropic-key\n' | write_private "$work/secrets.env"
  write_kam_vars dev-shared-secret
  local provider=(--var "OPENAI_BASE_URL:http://127.0.0.1:$mock_port/v1" --var "ANTHROPIC_BASE_URL:http://127.0.0.1:$mock_port"
    --var "AI_PROVIDER_ORDER:openai,anthropic" --var "AI_BACKOFF_BASE_MS:50" --var "AI_STREAM_STALL_MS:$STACK_STREAM_STALL_MS"
    --var "KAM_TIMEOUT_MS:1000" --var "PRICING:$STACK_PRICING")
  # The granulator and the KAM stand-in, one process (start_worker).
  start_worker GRANULATOR_PGID "$gran_port" "$work/granulator/state" "$work/secrets.env" "$work/granulator.log" \
    "${provider[@]}" --var "AI_ATTEMPT_TIMEOUT_MS:20000" --var "KAM_CACHE_SECONDS:$STACK_KAM_CACHE_SECONDS"
  if ! wait_http "http://127.0.0.1:$gran_port/" 120 "$GRANULATOR_PGID"; then
    echo "the granulator's wrangler dev did not start:"; tail -n 40 "$work/granulator.log"; return 1
  fi
  # The generator alone in its process: its KAM and granulator are the
  # first process's, found in the registry (no stand-in of its own).
  cd "$GENERATOR_DIR" || return 1
  config=$(kit_run_config wrangler.toml) || { cd "$root" || true; return 1; }
  BITWARE_SKIP_BUILD=1 WRANGLER_LOG=$WORKER_LOG_LEVEL start_bg GENERATOR_PGID "$work/generator.log" \
    "$root/node_modules/.bin/wrangler" dev -c "$config" \
    --ip 127.0.0.1 --port "$gen_port" --inspector-port "$(free_port)" \
    --persist-to "$work/generator/state" --env-file "$work/secrets.env" \
    --show-interactive-dev-session=false "${provider[@]}" --var "AI_ATTEMPT_TIMEOUT_MS:20000"
  cd "$root" || return 1
  if ! wait_http "http://127.0.0.1:$gen_port/" 120 "$GENERATOR_PGID"; then
    echo "the generator's wrangler dev did not start:"; tail -n 40 "$work/generator.log"; return 1
  fi
  export GRANULATOR_URL="http://127.0.0.1:$gran_port" GENERATOR_URL="http://127.0.0.1:$gen_port" \
    MOCK_URL="http://127.0.0.1:$mock_port" GRANULATOR_PGID GENERATOR_PGID
  export WORKER_URL=$GRANULATOR_URL
  echo "granulator on $GRANULATOR_URL, generator on $GENERATOR_URL, mock AI on $MOCK_URL (registry $WRANGLER_REGISTRY_PATH)"
}
