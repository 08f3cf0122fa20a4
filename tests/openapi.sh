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

# run NAME [ARGS...]: one tier's run, in the background (the tiers run at
# once: each is mostly waiting on the worker); `finish` collects them.
pids=()
names=()
run() {
  local name=$1; shift
  # Every check, every phase. NUL (U+0000) is refused in every string of a
  # body (it cannot reach D1, see bitware_kit::http::parse_json_body), which
  # JSON Schema cannot state for the open objects (`input`, `options`):
  # generation leaves it out rather than the document lying.
  # tests/schemathesis.toml: the 422s of POST /api/execute (what is stored,
  # not the body's form: a reused idempotency key, a budget).
  "$venv/bin/schemathesis" --config-file tests/schemathesis.toml run "$doc" --url "$base" \
      --checks all --generation-allow-x00 false \
      --mode all --phases examples,coverage,fuzzing,stateful --max-examples "$examples" --seed 15 \
      --workers 1 --request-timeout 30 --no-color --suppress-health-check all \
      --generation-database none --report junit --report-junit-path "$work/junit-$name.xml" \
      "$@" > "$work/schemathesis-$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

finish() {
  local i
  for i in "${!pids[@]}"; do
    local name=${names[$i]} log="$work/schemathesis-${names[$i]}.log"
    if ! wait "${pids[$i]}"; then
      fail=1
      echo "FAIL  schemathesis as $name:"; tail -n 80 "$log"
    elif ! grep -qE '^=+ .*in [0-9.]+s =+$' "$log"; then
      fail=1
      echo "FAIL  schemathesis as $name did not report a result:"; tail -n 20 "$log"
    else
      echo "ok    schemathesis as $name: $(grep -E '[0-9]+ generated' "$log" | tail -n 1 | sed 's/^ *//') ($(grep -oE 'in [0-9.]+s' "$log" | tail -n 1))"
    fi
  done
}

started=$(date +%s)
# Callers that may not use admin routes skip them (they answer 401/403,
# which the auth matrix of tests/auth.rs checks for every route and tier).
run nobody --exclude-tag admin
run client --exclude-tag admin -H "X-API-Key: dev-client-key"
run user-session --exclude-tag admin -H "x-bitware-session-token: dev-user-session"
run admin-session -H "x-bitware-session-token: dev-admin-session"
run worker -H "Authorization: Bearer dev-shared-secret" -H "X-Worker-ID: schemathesis"
finish
echo "      the five tiers took $(( $(date +%s) - started ))s"
[ "$fail" -eq 0 ]
