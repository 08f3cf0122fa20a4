#!/usr/bin/env bash
# scripts/deploy.sh offline: a stand-in wrangler on PATH (tests/fake-wrangler)
# records the calls and fails at a chosen step; a stand-in worker on a free
# loopback port (tests/deploy-target.py) answers /health and the smoke
# request, and can break the new version. Checks the order of the steps, the
# rollback on a failed health check, a failed smoke request and a failed
# deploy step, the stop on failed migrations, the refusals, the dry-run plan,
# and that the smoke key is never printed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
tmp=$(mktemp -d); trap 'stop_started; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin"; ln -s "$PWD/tests/fake-wrangler" "$tmp/bin/wrangler"

start_bg target_pid "$tmp/target.log" python3 tests/deploy-target.py "$tmp/port" "$tmp/mode" "$tmp/requests"
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || { echo "FAIL  the stand-in worker did not start"; cat "$tmp/target.log"; exit 1; }
target_url="http://127.0.0.1:$(cat "$tmp/port")"

SECRET=sk-smoke-do-not-print-7f3a9
# deploy MODE FAIL ARGS...: run the deploy script; its output in $tmp/out, the
# wrangler calls (one per line, `--message ...` cut) in $tmp/calls.
deploy() {
  local mode=$1 fail=$2; shift 2
  echo "$mode" > "$tmp/mode"; : > "$tmp/wrangler.log"; : > "$tmp/requests"
  env PATH="$tmp/bin:$PATH" WRANGLER=wrangler FAKE_WRANGLER_LOG="$tmp/wrangler.log" FAKE_WRANGLER_FAIL="$fail" \
    DEPLOY_SKIP_SETUP=1 DEPLOY_URL="$target_url" DEPLOY_BAKE_SECONDS=0 DEPLOY_CHECK_ATTEMPTS=2 DEPLOY_CHECK_DELAY=0 \
    "$@" >"$tmp/out" 2>&1
  rc=$?
  sed 's/ --message .*//' "$tmp/wrangler.log" > "$tmp/calls"
}
calls() { paste -sd '|' "$tmp/calls"; }
outcome() { sed -n 's/^  outcome: *//p' "$tmp/out"; }

# --- refusals -------------------------------------------------------------
deploy "" "" scripts/deploy.sh
kit_check "no environment: refused with exit 2" "$rc $(grep -c 'name the environment' "$tmp/out")" "2 1"
kit_check "no environment: wrangler is never called" "$(wc -l < "$tmp/calls")" 0
deploy "" "" scripts/deploy.sh development
kit_check "an unknown environment is refused" "$rc" 2
deploy "" "" env DEPLOY_URL= scripts/deploy.sh production
kit_check "no DEPLOY_URL: refused (nothing to verify against)" "$rc $(grep -c 'set DEPLOY_URL' "$tmp/out") $(wc -l < "$tmp/calls")" "2 1 0"
deploy "" "" env DEPLOY_STEPS="50 10" scripts/deploy.sh production
kit_check "falling steps are refused" "$rc" 2

# --- the plan ---------------------------------------------------------------
deploy "" "" scripts/deploy.sh production --dry-run --steps "5,25,100"
kit_check "--dry-run: exit 0, no wrangler call" "$rc $(wc -l < "$tmp/calls")" "0 0"
kit_check "--dry-run: the plan names each step" \
  "$(grep -cE 'time-travel info DB --env production|migrations apply DB --remote --env production|versions upload --env production|<new>@5 <previous>@95|<new>@25 <previous>@75|<new>@100 --env production|<previous>@100' "$tmp/out")" 7
kit_check "--dry-run: the override header names the production worker" \
  "$(grep -c 'Cloudflare-Workers-Version-Overrides: bitware-content-granulator-production="<new>"' "$tmp/out")" 3

# --- a good deploy ------------------------------------------------------------
status="deployments status --env production --json"
bookmark="d1 time-travel info DB --env production --json"
migrate="d1 migrations apply DB --remote --env production"
upload="versions upload --env production"
step10="versions deploy new-version-1111@10 prev-version-0000@90 --env production --yes"
step100="versions deploy new-version-1111@100 --env production --yes"
back="versions deploy prev-version-0000@100 --env production --yes"
deploy "" "" scripts/deploy.sh production
kit_check "good deploy: exit 0, DEPLOYED" "$rc $(outcome)" "0 DEPLOYED"
kit_check "good deploy: status, bookmark, migrations, upload, 10%, 100% in that order" "$(calls)" \
  "$status|$bookmark|$migrate|$upload|$step10|$step100"
kit_check "good deploy: the restore command names the bookmark" \
  "$(grep -c 'd1 time-travel restore DB --env production --bookmark=00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683' "$tmp/out")" 2
kit_check "good deploy: /health and the smoke request went to the new version at each step" \
  "$(grep -c 'override=bitware-content-granulator-production="new-version-1111"' "$tmp/requests") $(grep -c '^/health ' "$tmp/requests") $(grep -c '^/help ' "$tmp/requests")" "4 2 2"
deploy "" "" scripts/deploy.sh staging --steps 100
kit_check "one step to 100% on staging" "$(calls)" \
  "deployments status --env staging --json|d1 time-travel info DB --env staging --json|d1 migrations apply DB --remote --env staging|versions upload --env staging|versions deploy new-version-1111@100 --env staging --yes"

# --- rollbacks --------------------------------------------------------------
deploy health "" scripts/deploy.sh production
kit_check "failed /health at 10%: exit 1, rolled back to the previous version" "$rc $(outcome)" \
  "1 ROLLED BACK to prev-version-0000 (checks failed at 10%)"
kit_check "failed /health: no 100% step, the previous version back at 100%" "$(calls)" \
  "$status|$bookmark|$migrate|$upload|$step10|$back"
kit_check "failed /health: retried, no smoke, then /health of what serves traffic" \
  "$(paste -sd '|' "$tmp/requests")" \
  '/health override=bitware-content-granulator-production="new-version-1111" key=absent|/health override=bitware-content-granulator-production="new-version-1111" key=absent|/health override= key=absent'
kit_check "failed /health: the summary gives the D1 restore command" "$(grep -c '^  to restore D1 to it:' "$tmp/out")" 1
deploy smoke "" scripts/deploy.sh production
kit_check "failed smoke at 10%: rolled back" "$rc $(outcome) | $(calls)" \
  "1 ROLLED BACK to prev-version-0000 (checks failed at 10%) | $status|$bookmark|$migrate|$upload|$step10|$back"
deploy "" deploy@100 scripts/deploy.sh production
kit_check "failed versions deploy at 100%: rolled back" "$rc $(outcome) | $(calls)" \
  "1 ROLLED BACK to prev-version-0000 (versions deploy at 100% failed) | $status|$bookmark|$migrate|$upload|$step10|$step100|$back"
deploy health rollback scripts/deploy.sh production
kit_check "a failed rollback says so and how to finish it" "$rc $(grep -c 'ROLLBACK FAILED: run wrangler rollback prev-version-0000 --env production' "$tmp/out")" "1 1"
deploy health "" env FAKE_WRANGLER_FIRST=1 scripts/deploy.sh production
kit_check "first deploy: straight to 100%, nothing to roll back to" "$rc $(outcome) | $(tail -n 1 "$tmp/calls")" \
  "1 FAILED, no previous version to roll back to (checks failed at 100%) | versions deploy new-version-1111@100 --env production --yes"

deploy "" "" env FAKE_WRANGLER_BANNER=1 scripts/deploy.sh production
kit_check "a banner before wrangler's JSON is skipped" "$rc $(outcome) | $(calls)" \
  "0 DEPLOYED | $status|$bookmark|$migrate|$upload|$step10|$step100"

# --- stops before traffic -------------------------------------------------------
deploy "" status scripts/deploy.sh production
kit_check "unreadable current deployment: stop before anything changes" "$rc | $(calls)" "1 | $status"
deploy "" migrations scripts/deploy.sh production
kit_check "failed migrations: stop before upload" "$rc | $(calls)" "1 | $status|$bookmark|$migrate"
deploy "" bookmark scripts/deploy.sh production
kit_check "no bookmark: stop before migrations" "$rc | $(calls)" "1 | $status|$bookmark"
deploy "" upload scripts/deploy.sh production
kit_check "failed upload: no traffic moved" "$rc | $(calls)" "1 | $status|$bookmark|$migrate|$upload"

# --- secrets ------------------------------------------------------------------
for mode in "" smoke; do
  deploy "$mode" "" env DEPLOY_SMOKE_API_KEY="$SECRET" scripts/deploy.sh production
  kit_check "smoke key (${mode:-good deploy}): sent with the smoke request" "$(grep -c '^/api/templates .* key=present' "$tmp/requests" | tr -d ' ' | sed 's/^[1-9][0-9]*$/yes/')" yes
  kit_check "smoke key (${mode:-good deploy}): never printed, never given to wrangler" "$(cat "$tmp/out" "$tmp/wrangler.log" | grep -c "$SECRET")" 0
done
deploy "" "" env DEPLOY_SMOKE_API_KEY="$SECRET" scripts/deploy.sh production --dry-run
kit_check "smoke key: the plan mentions it without its value" "$(grep -c 'DEPLOY_SMOKE_API_KEY, not shown' "$tmp/out") $(grep -c "$SECRET" "$tmp/out")" "2 0"

echo "deploy script: $KIT_PASS passed, $KIT_FAIL failed"
[ "$KIT_FAIL" -eq 0 ]
