#!/usr/bin/env bash
# The `deploy` layer: `wrangler deploy --dry-run` of staging and production,
# offline (no account, no upload), with the bundle the build layer made.
# Checks that each environment resolves its own bindings: D1, KV, R2, KAM,
# Workers AI, the four rate limiters, its ENVIRONMENT (kit_check_deploy in the
# kit's scripts/kit.sh), the console's assets, and for staging its own queues; and that the deploy
# script refuses an unnamed environment.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

kit_check_deploy "$tmp" DB TEMPLATE_CACHE JOB_CACHE STRUCTURE_STORAGE KEY_ACCOUNT_MANAGER AI \
  RATE_LIMIT_BASIC RATE_LIMIT_STANDARD RATE_LIMIT_PREMIUM RATE_LIMIT_ENTERPRISE
kit_check "staging has its own D1 database" "$(grep -c 'bitware-content-granulator-db-staging' "$tmp/staging.out")" 1
kit_check "staging produces to its own queue" "$(grep -c 'granulator-jobs-staging' "$tmp/staging.out")" 1
# The console's static assets (wrangler.toml [assets], inherited by both environments).
for env in staging production; do
  kit_check "$env uploads the console's assets" "$(grep -c 'files from the assets directory .*console/dist' "$tmp/$env.out")" 1
done
out=$(scripts/deploy.sh 2>&1); rc=$?
kit_check "scripts/deploy.sh refuses an unnamed environment" "$rc $(grep -c 'name the environment' <<<"$out")" "2 1"

echo "deploy: $KIT_PASS passed, $KIT_FAIL failed"
[ "$KIT_FAIL" -eq 0 ]
