#!/usr/bin/env bash
# The `deploy` layer: `wrangler deploy --dry-run` of staging and production,
# offline (no account, no upload), with the bundle the build layer made.
# Checks that each environment resolves its own bindings: D1, KV, R2, KAM,
# Workers AI, the four rate limiters, its ENVIRONMENT, and for staging its
# own queues; and that the deploy script refuses an unnamed environment.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
check() { if [ "$2" = "$3" ]; then echo "ok    $1"; pass=$((pass + 1)); else echo "FAIL  $1: got '$2', want '$3'"; fail=$((fail + 1)); fi; }

for env in staging production; do
  out="$tmp/$env.out"
  GRANULATOR_SKIP_BUILD=1 WRANGLER_LOG=log node_modules/.bin/wrangler deploy --dry-run --env "$env" --outdir "$tmp/$env" >"$out" 2>&1
  rc=$?
  check "wrangler deploy --dry-run --env $env succeeds" "$rc" 0
  [ "$rc" -eq 0 ] || tail -n 20 "$out"
  check "$env: the bundle is written" "$([ -s "$tmp/$env/index.js" ] && echo yes)" yes
  for binding in env.DB env.TEMPLATE_CACHE env.JOB_CACHE env.STRUCTURE_STORAGE env.KEY_ACCOUNT_MANAGER env.AI \
    env.RATE_LIMIT_BASIC env.RATE_LIMIT_STANDARD env.RATE_LIMIT_PREMIUM env.RATE_LIMIT_ENTERPRISE; do
    check "$env binds $binding" "$(grep -c "^$binding " "$out")" 1
  done
  check "$env: ENVIRONMENT is $env" "$(grep -c "^env.ENVIRONMENT (\"$env\")" "$out")" 1
done
check "staging has its own D1 database" "$(grep -c 'bitware-content-granulator-db-staging' "$tmp/staging.out")" 1
check "staging produces to its own queue" "$(grep -c 'granulator-jobs-staging' "$tmp/staging.out")" 1
out=$(scripts/deploy.sh 2>&1); rc=$?
check "scripts/deploy.sh refuses an unnamed environment" "$rc $(grep -c 'name the environment' <<<"$out")" "2 1"

echo "deploy: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
