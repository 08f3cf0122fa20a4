#!/usr/bin/env bash
# npm run deploy / npm run deploy:staging: deploy one named environment and
# verify it, rolling back by itself when the new version is unhealthy.
#
#   scripts/deploy.sh production|staging [--dry-run] [--steps "10 100"] [--url URL]
#
# The top level of wrangler.toml is local development (ENVIRONMENT=development,
# local resource ids): a deploy without --env would ship it, so this script
# always names one and refuses anything else.
#
# The steps, in order (docs/runbook.md, Deploying):
#   1. the version now serving traffic (`wrangler deployments status --json`):
#      what a rollback returns to;
#   2. a D1 Time Travel bookmark taken before the migrations
#      (`wrangler d1 time-travel info DB --json`), printed with its restore command;
#   3. the migrations (`wrangler d1 migrations apply DB --remote`);
#   4. the new version uploaded, serving no traffic (`wrangler versions upload`);
#   5. for each step percentage (DEPLOY_STEPS, default "10 100"): `wrangler
#      versions deploy NEW@P PREVIOUS@(100-P)`, then /health and a smoke
#      request sent to the new version (header Cloudflare-Workers-Version-Overrides),
#      again after DEPLOY_BAKE_SECONDS;
#   6. when a check fails: `wrangler versions deploy PREVIOUS@100` (the rollback),
#      then /health of what serves traffic. Migrations are not undone (they
#      are additive; a restore is destructive and is the operator's call):
#      the summary prints the Time Travel restore command.
#
# Configuration (environment):
#   DEPLOY_URL               the environment's base URL (or --url); required unless --dry-run
#   DEPLOY_STEPS             traffic percentages, ascending, ending at 100 (or --steps)
#   DEPLOY_BAKE_SECONDS      wait before re-checking each step (default 30)
#   DEPLOY_CHECK_ATTEMPTS    tries per check before it fails (default 3)
#   DEPLOY_CHECK_DELAY       seconds between tries (default 5)
#   DEPLOY_SMOKE_API_KEY     optional client key: the smoke request becomes
#                            GET /api/templates with it (never printed); else GET /help
#   DEPLOY_SKIP_SETUP=1      skip scripts/setup.sh (the bundle's tools are installed)
#   WRANGLER                 the wrangler to run (default node_modules/.bin/wrangler)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "deploy: name the environment: scripts/deploy.sh production|staging [--dry-run] [--steps \"10 100\"] [--url URL]" >&2
  echo "        (a plain \`wrangler deploy\` would ship ENVIRONMENT=development)" >&2
  exit 2
}
target=${1:-}
case "$target" in
  production|staging) shift ;;
  *) usage ;;
esac

dry_run=0
steps=${DEPLOY_STEPS:-10 100}
url=${DEPLOY_URL:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --steps) steps=${2:?--steps needs a list}; shift ;;
    --url) url=${2:?--url needs a URL}; shift ;;
    *) echo "deploy: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
steps=$(tr ',' ' ' <<<"$steps")
bake=${DEPLOY_BAKE_SECONDS:-30}
attempts=${DEPLOY_CHECK_ATTEMPTS:-3}
delay=${DEPLOY_CHECK_DELAY:-5}
wrangler=${WRANGLER:-node_modules/.bin/wrangler}
# wrangler names an environment's worker `<name>-<env>`; the override header names it.
worker="$(sed -n 's/^name = "\(.*\)"/\1/p' wrangler.toml | head -n 1)-$target"

# The steps must rise and end at 100.
last=0
for p in $steps; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -gt "$last" ] && [ "$p" -le 100 ] ||
    { echo "deploy: DEPLOY_STEPS must be rising percentages ending at 100, got '$steps'" >&2; exit 2; }
  last=$p
done
[ "$last" -eq 100 ] || { echo "deploy: DEPLOY_STEPS must end at 100, got '$steps'" >&2; exit 2; }
[ "$dry_run" -eq 1 ] || [ -n "$url" ] ||
  { echo "deploy: set DEPLOY_URL (or --url) to the $target worker's base URL: the deploy verifies /health there" >&2; exit 2; }

if [ -n "${DEPLOY_SMOKE_API_KEY:-}" ]; then smoke_path=/api/templates; else smoke_path=/help; fi

if [ "$dry_run" -eq 1 ]; then
  echo "deploy plan for $target (worker $worker, --dry-run: nothing is run)"
  echo "  1. previous version:  $wrangler deployments status --env $target --json"
  echo "  2. D1 bookmark:       $wrangler d1 time-travel info DB --env $target --json"
  echo "                        (restore: $wrangler d1 time-travel restore DB --env $target --bookmark=<bookmark>)"
  echo "  3. migrations:        $wrangler d1 migrations apply DB --remote --env $target"
  echo "  4. upload:            $wrangler versions upload --env $target --message <message>"
  n=5
  for p in $steps; do
    if [ "$p" -lt 100 ]; then spec="<new>@$p <previous>@$((100 - p))"; else spec="<new>@100"; fi
    printf '  %-21s %s\n' "$n. deploy $p%:" "$wrangler versions deploy $spec --env $target --yes --message <message>"
    echo "     verify:            GET ${url:-<DEPLOY_URL>}/health and GET ${url:-<DEPLOY_URL>}$smoke_path with"
    echo "                        Cloudflare-Workers-Version-Overrides: $worker=\"<new>\"${DEPLOY_SMOKE_API_KEY:+ and X-API-Key (DEPLOY_SMOKE_API_KEY, not shown)}"
    echo "                        ($attempts tries ${delay}s apart; again after ${bake}s)"
    n=$((n + 1))
  done
  echo "  on a failed check:    $wrangler versions deploy <previous>@100 --env $target --yes --message <reason>"
  echo "                        then GET ${url:-<DEPLOY_URL>}/health of what serves traffic; the D1 restore command is printed"
  exit 0
fi

[ "${DEPLOY_SKIP_SETUP:-}" = 1 ] || scripts/setup.sh

# --- what happened, for the summary ---------------------------------------
previous="" bookmark="" new_version="" reached="0" outcome="" reason=""
summary() {
  echo
  echo "==== deploy summary: $target ($worker)"
  echo "  outcome:          $outcome${reason:+ ($reason)}"
  echo "  previous version: ${previous:-none (first deploy)}"
  echo "  new version:      ${new_version:-not uploaded}"
  echo "  traffic reached:  ${reached}% on the new version"
  if [ -n "$bookmark" ]; then
    echo "  D1 bookmark before migrations: $bookmark"
    echo "  to restore D1 to it: $wrangler d1 time-travel restore DB --env $target --bookmark=$bookmark"
  fi
}
# w ARGS: run wrangler, the command echoed to stderr (its output may be captured).
w() { echo "+ wrangler $*" >&2; "$wrangler" "$@"; }

# json_field KEY: the first string value of "KEY" in the JSON object on
# stdin (anything wrangler printed before the object is skipped).
json_field() { python3 -c 'import json, sys
def find(v, key):
    if isinstance(v, dict):
        if isinstance(v.get(key), str): return v[key]
        v = list(v.values())
    if isinstance(v, list):
        for x in v:
            r = find(x, key)
            if r: return r
    return ""
text = sys.stdin.read()
try: print(find(json.JSONDecoder().raw_decode(text[text.index("{"):])[0], sys.argv[1]))
except ValueError: print("")' "$1"; }

# check NAME PATH [--new]: GET URL/PATH until it answers 200 (and /health says
# healthy), at most $attempts tries; --new sends it to the new version.
check() {
  local name=$1 path=$2 i code body headers=()
  [ "${3:-}" = --new ] && headers+=(-H "Cloudflare-Workers-Version-Overrides: $worker=\"$new_version\"")
  [ "$path" = /api/templates ] && headers+=(-H "X-API-Key: $DEPLOY_SMOKE_API_KEY")
  for ((i = 1; i <= attempts; i++)); do
    body=$(curl -s -m 20 -w '\n%{http_code}' "${headers[@]}" "$url$path" 2>/dev/null) || body=$'\n000'
    code=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$code" = 200 ] && { [ "$path" != /health ] || [ "$(json_field status <<<"$body")" = healthy ]; }; then
      echo "  ok    $name: GET $path -> $code${3:+ (new version)}"
      return 0
    fi
    echo "  try $i/$attempts: $name: GET $path -> $code${3:+ (new version)}$([ "$path" = /health ] && echo " status=$(json_field status <<<"$body")")"
    [ "$i" -lt "$attempts" ] && sleep "$delay"
  done
  return 1
}
verify() { check health /health --new && check smoke "$smoke_path" --new; }

rollback() {
  reason=$1
  echo
  echo "!! $reason: rolling back"
  if [ -z "$previous" ]; then
    outcome="FAILED, no previous version to roll back to"
  elif w versions deploy "$previous@100" --env "$target" --yes --message "rollback: $reason"; then
    if check "health after rollback" /health; then outcome="ROLLED BACK to $previous"
    else outcome="ROLLED BACK to $previous, but /health is still failing"; fi
  else
    outcome="ROLLBACK FAILED: run $wrangler rollback $previous --env $target"
  fi
  summary
  exit 1
}

echo "== 1. the version serving traffic now"
# The version with the most traffic (a deploy interrupted mid-way leaves two).
# Only wrangler's "has no deployments" means a first deploy: any other
# failure stops here, or the rollout would skip its gradual steps.
if status=$(w deployments status --env "$target" --json 2>&1); then
  previous=$(python3 -c 'import json, sys
text = sys.stdin.read()
try: d = json.JSONDecoder().raw_decode(text[text.index("{"):])[0]
except ValueError: sys.exit(0)
v = sorted(d.get("versions", []), key=lambda v: -v.get("percentage", 0))
print(v[0]["version_id"] if v else "")' <<<"$status")
  [ -n "$previous" ] || { echo "$status"; outcome="STOPPED: no version in the current deployment"; summary; exit 1; }
elif ! grep -q "has no deployments" <<<"$status"; then
  echo "$status"; outcome="STOPPED: could not read the current deployment"; summary; exit 1
fi
echo "previous version: ${previous:-none (first deploy)}"

echo "== 2. D1 Time Travel bookmark before the migrations"
if ! bookmark=$(w d1 time-travel info DB --env "$target" --json | json_field bookmark) || [ -z "$bookmark" ]; then
  bookmark=""; outcome="STOPPED before migrations"; reason="no D1 Time Travel bookmark"; summary; exit 1
fi
echo "bookmark: $bookmark"
echo "restore with: $wrangler d1 time-travel restore DB --env $target --bookmark=$bookmark"

echo "== 3. migrations"
w d1 migrations apply DB --remote --env "$target" ||
  { outcome="STOPPED: migrations failed (wrangler applies each in a transaction)"; summary; exit 1; }

echo "== 4. upload the new version (no traffic yet)"
upload=$(w versions upload --env "$target" --message "deploy $(git rev-parse --short HEAD 2>/dev/null || echo unknown)") ||
  { echo "$upload"; outcome="STOPPED: upload failed"; summary; exit 1; }
echo "$upload"
new_version=$(sed -n 's/.*Worker Version ID: *\([0-9A-Za-z-]*\).*/\1/p' <<<"$upload" | head -n 1)
[ -n "$new_version" ] || { outcome="STOPPED: no Worker Version ID in the upload's output"; summary; exit 1; }

n=5
for p in $steps; do
  # A first deploy has no version to split traffic with: straight to 100%.
  [ -n "$previous" ] || p=100
  echo "== $n. $p% of traffic to $new_version"
  if [ "$p" -lt 100 ]; then
    specs=("$new_version@$p" "$previous@$((100 - p))")
  else
    specs=("$new_version@100")
  fi
  w versions deploy "${specs[@]}" --env "$target" --yes --message "deploy step $p%" ||
    rollback "versions deploy at $p% failed"
  reached=${specs[0]##*@}
  verify || rollback "checks failed at $p%"
  if [ "$bake" -gt 0 ]; then
    echo "  baking ${bake}s"; sleep "$bake"
    verify || rollback "checks failed after ${bake}s at $p%"
  fi
  n=$((n + 1))
  [ "$reached" = 100 ] && break
done

outcome="DEPLOYED"
summary
