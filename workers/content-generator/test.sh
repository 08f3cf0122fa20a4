#!/usr/bin/env bash
# ./test.sh: the whole suite. Layers, in order:
#   setup  install what is missing (scripts/setup.sh)
#   lint   rustfmt --check; clippy -D warnings natively and for wasm32;
#          rustdoc -D warnings (kit_lint)
#   unit   cargo test of the pure code (native)
#   build  the worker bundle and the e2e test binary
#   schema the kit's migrations are byte-identical copies (kit_check_migrations);
#          the kit's + schema/*.sql and migrations/ build the same database;
#          migrations re-apply as a no-op (kit_check_schema)
#   deploy wrangler deploy --dry-run --env staging and --env production,
#          offline: each binds its own D1, KV, R2, KAM and granulator (kit_check_deploy)
#   e2e    tests/e2e.rs against wrangler dev (real workerd, local D1/KV/R2,
#          bitware-kit's KAM stand-in): public endpoints, every route x every
#          credential tier, the error model; tests/jobs.rs: the example action
#          as a long job against the mock AI provider streaming at a real
#          token rate (async 202, status, events, join, 422, 504 then replay,
#          cancel, budget ceiling, daily spend cap, rate limit)
# Every layer must pass; a layer that did not run fails the suite.
set -uo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh

LAYERS=(setup lint unit build schema deploy e2e)
WORK=$(mktemp -d)
cleanup() { stop_started; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

lint() { kit_lint; }
unit() { cargo test --lib; }
build() { sh scripts/build.sh && build_mock && cargo test --test e2e --test jobs --no-run; }
schema() {
  kit_check_migrations &&
    kit_check_schema "$(printf '%s ' "$KIT_DIR"/migrations/*.sql)schema/content-generator.sql"
}
deploy() {
  mkdir -p "$WORK/deploy"
  kit_check_deploy "$WORK/deploy" DB CACHE STORAGE KEY_ACCOUNT_MANAGER GRANULATOR JOB_QUEUE
  echo "deploy: $KIT_PASS passed, $KIT_FAIL failed"
  [ "$KIT_FAIL" -eq 0 ]
}
e2e() {
  start_stack "$WORK" || return 1
  cargo test --test e2e -- --test-threads 6 || { tail -n 40 "$WORK/wrangler.log"; return 1; }
  cargo test --test jobs -- --test-threads 8 || { tail -n 40 "$WORK/wrangler.log"; return 1; }
}

layer setup scripts/setup.sh
[ "${RESULT[setup]}" = passed ] && layer lint lint
[ "${RESULT[setup]}" = passed ] && layer unit unit
[ "${RESULT[setup]}" = passed ] && layer build build
[ "${RESULT[build]:-}" = passed ] && layer schema schema
[ "${RESULT[build]:-}" = passed ] && layer deploy deploy
[ "${RESULT[build]:-}" = passed ] && layer e2e e2e

summarize_layers "${LAYERS[@]}"
