#!/usr/bin/env bash
# Smoke checks in the spirit of the seed's test.sh (§11), but every check
# asserts a status code and fields. Usage: tests/smoke.sh BASE_URL
set -uo pipefail
BASE=${1:?usage: tests/smoke.sh BASE_URL}
CLIENT=(-H 'X-API-Key: dev-client-key')
JSON=(-H 'Content-Type: application/json')
pass=0; fail=0
body=$(mktemp); trap 'rm -f "$body"' EXIT

# check NAME EXPECTED_STATUS JQ_ASSERTION CURL_ARGS...
check() {
  local name=$1 want=$2 assertion=$3; shift 3
  local got
  got=$(curl -s -o "$body" -w '%{http_code}' "$@")
  if [ "$got" = "$want" ] && jq -e "$assertion" "$body" >/dev/null 2>&1; then
    pass=$((pass + 1)); printf 'ok    %s\n' "$name"
  else
    fail=$((fail + 1)); printf 'FAIL  %s: status %s (want %s), body: %.300s\n' "$name" "$got" "$want" "$(cat "$body")"
  fi
}

check "GET / answers healthy"               200 '.status == "healthy" and .service == "bitware-content-granulator"' "$BASE/"
check "GET /health checks dependencies"     200 '.checks.database.ok and .checks.kv.ok and .checks.r2.ok and .checks.kam.ok and .checks.environment.ok' "$BASE/health"
check "GET /openapi.json is OpenAPI 3.1"    200 '.openapi == "3.1.0" and (.paths["/api/execute"].post.security | length) == 3 and (.components.securitySchemes | keys) == ["clientKey","session","workerId","workerSecret"]' "$BASE/openapi.json"
# The route table's rows (src/routes.rs) as "METHOD path", to hold /help to.
table=$(grep -oE 'route!\([A-Za-z]+, "[A-Z]+", "[^"]+"' "$(dirname "$0")/../src/routes.rs" |
  sed -E 's/^route!\([A-Za-z]+, "([A-Z]+)", "([^"]+)"$/\1 \2/' | jq -Rsc 'split("\n") | map(select(. != "")) | sort')
check "GET /help lists the route table"      200 "(.routes | map(.method + \" \" + .path) | sort) == $table" "$BASE/help"
check "templates need credentials"          401 '.code == "unauthorized" and .status == 401' "$BASE/api/templates"
check "templates list the six seeds"        200 '.count >= 6 and (.templates | map(.structureType) | unique | length) == 6' "${CLIENT[@]}" "$BASE/api/templates"
check "one template by exact name"          200 '.template.templateName == "educational_course_basic"' "${CLIENT[@]}" "$BASE/api/templates/educational_course_basic"
check "no fuzzy template names"             404 '.code == "not_found"' "${CLIENT[@]}" "$BASE/api/templates/educational_course"
check "execute granulates a course"         200 '.success and (.output.granulatorJobId | type) == "number" and .output.structureType == "course" and (.output.structure.modules | length) >= 3 and (.usage.tokens.input | type) == "number" and .metadata.workerChain.currentWorker == "bitware-content-granulator" and (.model | type) == "string"' \
  "${CLIENT[@]}" "${JSON[@]}" -X POST "$BASE/api/execute" -d '{"action":"granulate","input":{"topic":"Smoke test: photosynthesis","structureType":"course","granularityLevel":3}}'
job=$(jq -r '.output.granulatorJobId // empty' "$body")
check "the job can be read back"            200 ".job.id == ${job:-0} and .job.status == \"completed\"" "${CLIENT[@]}" "$BASE/api/jobs/${job:-0}"
check "its structure can be read back"      200 '(.structure.modules | length) >= 3' "${CLIENT[@]}" "$BASE/api/jobs/${job:-0}/structure"
check "an estimate makes no AI call"        200 '.output.estimate.tokens.total > 0 and .output.estimate.structureType == "quiz" and .cost == 0 and .usage.tokens.input == 0 and .model == .output.estimate.model' \
  "${CLIENT[@]}" "${JSON[@]}" -X POST "$BASE/api/execute" -d '{"action":"estimate","input":{"structureType":"quiz"}}'
check "unknown actions are refused"         400 '.code == "unknown_action"' "${CLIENT[@]}" "${JSON[@]}" -X POST "$BASE/api/execute" -d '{"action":"drop_tables","input":{}}'
check "malformed JSON is a 400"             400 '.code == "malformed_json"' "${CLIENT[@]}" "${JSON[@]}" -X POST "$BASE/api/execute" -d '{"action":'
check "unknown routes are a JSON 404"       404 '.code == "not_found"' "$BASE/nope"
check "wrong methods are a JSON 405"        405 '.code == "method_not_allowed"' -X DELETE "$BASE/health"
check "admin routes refuse clients"         403 '.code == "forbidden"' "${CLIENT[@]}" "$BASE/api/admin/stats"

echo "smoke: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
