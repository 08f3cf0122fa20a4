#!/usr/bin/env bash
# The `openapi` layer: GET /openapi.json is a valid OpenAPI 3.1 document
# (openapi-spec-validator), then Schemathesis drives every route of it against
# the running worker once per credential kind (none, client key, user
# session, admin session, worker secret) with every check and all four
# phases (examples, coverage, fuzzing, stateful): the API must answer
# exactly as its document says (no server error; status codes, content
# types, headers and bodies as declared; every schema-valid request taken
# and every schema-violating one refused; undeclared methods 405 with Allow;
# wrong credentials 401), and the stateful phase follows the document's
# links from real answers (job ids, template names) to the routes they name.
# Usage: bash tests/openapi.sh BASE_URL WORKDIR
set -uo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: tests/openapi.sh BASE_URL WORKDIR}
work=${2:?usage: tests/openapi.sh BASE_URL WORKDIR}
mkdir -p "$work"
venv=.venv
examples=${SCHEMATHESIS_MAX_EXAMPLES:-10}
fail=0

doc="$work/openapi.json"
status=$(curl -s -o "$doc" -w '%{http_code}' "$base/openapi.json")
[ "$status" = 200 ] || { echo "FAIL  GET /openapi.json answered $status"; exit 1; }
if "$venv/bin/openapi-spec-validator" "$doc"; then
  echo "ok    /openapi.json is a valid OpenAPI $(jq -r .openapi "$doc") document"
else
  echo "FAIL  /openapi.json is not a valid OpenAPI document"; fail=1
fi
routes=$(jq '[.paths[] | keys[]] | length' "$doc")
echo "      $routes operations"

run() {
  local name=$1; shift
  echo "== schemathesis as $name"
  # Every check, every phase. NUL (U+0000) is refused in every string of a
  # body (it cannot reach D1, see bitware_kit::http::parse_json_body), which
  # JSON Schema cannot state for the open objects (`input`, `options`):
  # generation leaves it out rather than the document lying.
  if ! "$venv/bin/schemathesis" --config-file tests/schemathesis.toml run "$doc" --url "$base" \
      --checks all --generation-allow-x00 false \
      --mode all --phases examples,coverage,fuzzing,stateful --max-examples "$examples" --seed 15 \
      --workers 1 --request-timeout 30 --no-color --suppress-health-check all \
      --generation-database none --report junit --report-junit-path "$work/junit-$name.xml" \
      "$@" > "$work/schemathesis-$name.log" 2>&1; then
    fail=1
    echo "FAIL  schemathesis as $name:"; tail -n 60 "$work/schemathesis-$name.log"
  else
    echo "ok    schemathesis as $name: $(grep -E '^[0-9]+ (passed|operations)|passed' "$work/schemathesis-$name.log" | tail -n 1)"
  fi
}

run nobody
run client -H "X-API-Key: dev-client-key"
run user-session -H "x-bitware-session-token: dev-user-session"
run admin-session -H "x-bitware-session-token: dev-admin-session"
run worker -H "Authorization: Bearer dev-shared-secret" -H "X-Worker-ID: schemathesis"
[ "$fail" -eq 0 ]
