#!/usr/bin/env bash
# ./test.sh: the whole suite. Layers, in order:
#   setup   install what is missing (scripts/setup.sh)
#   lint    rustfmt --check; clippy -D warnings natively (every target) and
#           for wasm32 (the worker, the kit with `worker`, the floor); rustdoc
#           -D warnings (kit_lint in crates/bitware-kit/scripts/kit.sh)
#   unit    cargo test of the pure core and the mock (native), and checks of
#           the scripts themselves (tests/scripts.sh)
#   build   the worker bundle, the mock AI server, the e2e test binary
#   schema  migrations == schema/*.sql, and re-applying migrations is a no-op
#   deploy  wrangler deploy --dry-run --env staging and --env production,
#           offline: each resolves its own bindings (scripts/check-deploy.sh);
#           scripts/deploy.sh against a stand-in wrangler and worker: step
#           order, rollback on failed checks, refusals, no secret printed
#           (tests/deploy.sh)
#   e2e     the kit's contract suite on D1: the kit's contract worker
#           (crates/bitware-kit/dev/contract) on the kit's own migrations runs
#           the same cases the in-memory twins pass natively (tests/kit_contract.rs);
#           then Rust integration tests against wrangler dev (real workerd, local
#           D1/KV/R2/queues, the KAM stand-in) and the mock AI provider on
#           loopback: tests/{auth,execute,jobs,templates,economy,faults}.rs
#           (behaviour, by area), tests/safety.rs (tenants,
#           budgets, rate limits, spend caps, leaks, input at the edge),
#           tests/contract.rs (the response contract),
#           tests/output_quality.rs (paid outlines kept, constraint conflicts,
#           placeholders), then tests/async_jobs.rs (async execute, jobs
#           outliving their request, joins, streamed progress, events),
#           tests/fanout.rs (with partial results), tests/cancel.rs (cancel at
#           model speed), tests/alerts.rs alone (faults fire alerts), then
#           tests/panic.rs (a panic answered in JSON, the instance reset; the runs it
#           killed booked by the sweep, or taken over by their key)
#   corpus  messy model answers (30 kinds x 6 types x OpenAI/Anthropic) served by
#           the mock on the same stack: recovery and refusal rates (tests/corpus.rs)
#   smoke   curl + jq checks of the main routes
#   soak    concurrent executes with duplicate request ids while the mock injects
#           500s and timeouts; then D1 must balance (scripts/soak.sh)
#   openapi /openapi.json passes openapi-spec-validator; Schemathesis against
#           the e2e stack as every credential kind: no server error, no
#           response that breaks the document (tests/openapi.sh)
#   config  ./dev.sh with .dev.vars + environment: every README configuration
#           claim takes effect (tests/config.sh)
#   ledger  a fresh stack, a known set of jobs by every tier, then every stats,
#           economy and analytics figure checked exactly (tests/ledger.rs)
#   browser the console (console/, docs/console.md) in Debian's headless
#           Chromium (playwright-core) on a fresh stack, the mock streaming at
#           a real token rate: every screen as a person uses it, axe-core on
#           each; screenshots kept in target/browser/ (tests/browser/console.mjs)
#   dr      a restore rehearsed: the ledger's jobs plus every storage tier,
#           `wrangler d1 export --local`, the D1 destroyed, imported afresh,
#           every figure and outline identical; then KV and R2 lost too:
#           outlines rebuilt from D1 (tests/dr.sh, tests/dr.rs)
#   scaffold  scripts/new-worker.sh creates a worker in a temporary directory
#           (sharing this target dir and node_modules), then its own ./test.sh
#           must pass: setup, unit, build, schema, deploy, e2e (tests/scaffold.sh)
#   generator the Content Generator's own suite (workers/content-generator/test.sh:
#           setup, lint, unit, build, schema, deploy, e2e on its own stack)
#   chain   the granulator and the Content Generator (workers/content-generator)
#           under two wrangler dev processes, the generator's GRANULATOR and
#           KAM bindings reaching the first through wrangler's dev registry
#           (start_chain_stack), the mock at 100 tokens/s: stages driven as the
#           Resource Manager does (30-s race, 3 tries 1 s apart, same id): a
#           client's course through both, once and billed as served; a
#           generation past the first try's race joined by the retry; a KV-tier
#           outline by reference; a cancelled generation (tests/chain.rs); then
#           the generator's /health with the granulator stopped is 503
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

LAYERS=(setup lint unit build schema deploy e2e corpus smoke soak openapi config ledger dr browser scaffold generator chain)
WORK=$(mktemp -d)
cleanup() { stop_started; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Formatting, clippy and rustdoc warnings fail the suite (kit_lint).
lint() { kit_lint -p content-granulator -p bitware-kit -p floor -p kit-contract -p content_generator; }

# The kit's pure core alone first: without the `worker` feature it must build
# and pass natively.
unit() {
  cargo test -p bitware-kit --lib && cargo test --workspace --lib --bins && cargo test --test recovery && bash tests/scripts.sh
}

# The behaviour tests, one file per area (they share tests/support/).
E2E_TESTS=(--test auth --test execute --test jobs --test templates --test economy --test faults)
build() {
  sh scripts/build.sh && sh scripts/build.sh --contract && build_generator && cargo build -p mock-ai -p loadgen --release &&
    cargo test "${E2E_TESTS[@]}" --test safety --test contract --test output_quality --test async_jobs --test fanout --test cancel --test alerts --test panic --test ledger --test dr --test corpus --test kit_contract --test chain --no-run
}

deploy() {
  local rc=0
  bash scripts/check-deploy.sh || rc=1
  bash tests/deploy.sh || rc=1
  return $rc
}

e2e() {
  local rc=0
  # The kit's contract suite on D1 (its own worker and migrations), beside
  # the same cases on the in-memory twins (tests/kit_contract.rs).
  kit_start_contract "$WORK/kit-contract" && cargo test --test kit_contract || rc=1
  start_stack "$WORK" || return 1
  cargo test "${E2E_TESTS[@]}" --test safety --test contract -- --test-threads 6 || rc=1
  cargo test --test output_quality -- --test-threads 4 || rc=1
  # Jobs at model speed (the mock streams at a real token rate; the local queue).
  cargo test --test async_jobs -- --test-threads 6 || rc=1
  # Fanned-out outlines: skeleton, branches, failure isolation, budget, progress.
  cargo test --test fanout -- --test-threads 6 || rc=1
  # Cancel at model speed: queued, streaming, fan-out, review, racing completion.
  cargo test --test cancel -- --test-threads 4 || rc=1
  # Alerts: faults injected, then windows that must see only this file's own.
  cargo test --test alerts -- --test-threads 1 || rc=1
  # Last, alone: a panic inside the worker resets its instance (tests/panic.rs).
  cargo test --test panic || rc=1
  # The worker ran as built: never rebuilt or restarted by wrangler's watcher (kit_run_config).
  if grep -q 'restarting build' "$WORK/wrangler.log"; then echo "e2e: wrangler rebuilt the worker under the tests"; rc=1; fi
  [ $rc -eq 0 ] || { echo "last wrangler log lines:"; tail -n 40 "$WORK/wrangler.log"; }
  return $rc
}

corpus() {
  [ -n "${GRANULATOR_URL:-}" ] || { echo "corpus: no running worker (the e2e layer did not start one)"; return 1; }
  cargo test --test corpus -- --nocapture
}

# A short soak: concurrent executes with duplicate ids while the mock injects
# 500s and timeouts; then the books are checked in D1 (scripts/soak.sh).
soak() {
  [ -n "${GRANULATOR_URL:-}" ] || { echo "soak: no running worker (the e2e layer did not start one)"; return 1; }
  bash scripts/soak.sh 8 16
}

# /openapi.json validated, then Schemathesis against the e2e stack with every
# credential kind. It runs after the other layers of that stack: as an admin
# it creates, updates and deletes templates (tests/openapi.sh).
openapi() {
  [ -n "${GRANULATOR_URL:-}" ] || { echo "openapi: no running worker (the e2e layer did not start one)"; return 1; }
  # Steps earlier layers scripted and never used (a fault for a topic) must
  # not answer Schemathesis' retries of their jobs: the mock answers validly.
  curl -sf -X DELETE "$MOCK_URL/__mock/script" >/dev/null &&
    curl -sf -X POST "$MOCK_URL/__mock/config" -H 'Content-Type: application/json' -d '{}' >/dev/null || return 1
  bash tests/openapi.sh "$GRANULATOR_URL" "$WORK/openapi"
}

# ./dev.sh with .dev.vars and environment overrides: every README
# configuration claim takes effect (tests/config.sh).
config() {
  mkdir -p "$WORK/config"
  bash tests/config.sh "$WORK/config"
}

# Exact figures need a database that holds only the ledger's jobs: a fresh stack.
ledger() {
  stop_started
  mkdir -p "$WORK/ledger"
  start_stack "$WORK/ledger" || return 1
  cargo test --test ledger
}

# A restore rehearsed: the ledger's jobs and every storage tier exported,
# the local D1 destroyed, imported into a fresh one; every figure identical,
# then KV and R2 destroyed too (tests/dr.sh).
dr() {
  stop_started
  bash tests/dr.sh "$WORK/dr"
}

smoke() {
  [ -n "${GRANULATOR_URL:-}" ] || { echo "smoke: no running worker (the e2e layer did not start one)"; return 1; }
  bash tests/smoke.sh "$GRANULATOR_URL"
}

# The console in real Chromium on its own fresh stack; the screenshots and
# axe's findings outlive $WORK in target/browser/.
browser() {
  node tests/browser/units.mjs || return 1
  stop_started
  mkdir -p "$WORK/browser"
  start_stack "$WORK/browser" || return 1
  local rc=0
  node tests/browser/console.mjs "$WORK/browser/screens" || rc=1
  rm -rf target/browser && mkdir -p target/browser && cp -r "$WORK/browser/screens/." target/browser/
  [ $rc -eq 0 ] || { echo "last wrangler log lines:"; tail -n 40 "$WORK/browser/wrangler.log"; }
  return $rc
}

scaffold() {
  stop_started
  bash tests/scaffold.sh "$WORK/scaffold"
}

# The second worker's own suite, as its README runs it (its stack is its own).
generator() {
  stop_started
  (cd "$GENERATOR_DIR" && ./test.sh)
}

# The chain on a stack of its own (start_chain_stack), its tests one at a
# time: each stage's figures are the mock's totals, reset between stages.
chain() {
  stop_started
  mkdir -p "$WORK/chain"
  start_chain_stack "$WORK/chain" 100 || return 1
  local rc=0 health
  cargo test --test chain -- --test-threads 1 --nocapture || rc=1
  # The granulator gone: the generator's /health says so (503, granulator not ok).
  kill -TERM -- "-$GRANULATOR_PGID" 2>/dev/null
  sleep 1
  health=$(curl -s -o /dev/null -w '%{http_code}' "$GENERATOR_URL/health")
  if [ "$health" != 503 ] || [ "$(curl -s "$GENERATOR_URL/health" | jq -r .checks.granulator.ok)" != false ]; then
    echo "chain: with the granulator stopped the generator's /health answered $health"; rc=1
  fi
  [ $rc -eq 0 ] || { echo "last log lines:"; tail -n 20 "$WORK/chain/granulator.log" "$WORK/chain/generator.log"; }
  return $rc
}

layer setup scripts/setup.sh
[ "${RESULT[setup]}" = passed ] && layer lint lint
[ "${RESULT[setup]}" = passed ] && layer unit unit
[ "${RESULT[setup]}" = passed ] && layer build build
[ "${RESULT[build]:-}" = passed ] && layer schema bash scripts/check-schema.sh
[ "${RESULT[build]:-}" = passed ] && layer deploy deploy
[ "${RESULT[build]:-}" = passed ] && layer e2e e2e
[ "${RESULT[e2e]:-}" != "" ] && layer corpus corpus
[ "${RESULT[e2e]:-}" != "" ] && layer smoke smoke
[ "${RESULT[e2e]:-}" != "" ] && layer soak soak
[ "${RESULT[e2e]:-}" != "" ] && layer openapi openapi
[ "${RESULT[build]:-}" = passed ] && layer config config
[ "${RESULT[build]:-}" = passed ] && layer ledger ledger
[ "${RESULT[build]:-}" = passed ] && layer dr dr
[ "${RESULT[build]:-}" = passed ] && layer browser browser
[ "${RESULT[build]:-}" = passed ] && layer scaffold scaffold
[ "${RESULT[build]:-}" = passed ] && layer generator generator
[ "${RESULT[build]:-}" = passed ] && layer chain chain

summarize_layers "${LAYERS[@]}"
