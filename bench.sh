#!/usr/bin/env bash
# ./bench.sh: what the granulator costs per request on this machine, how that
# grows with the outline, and the bundle it ships. Starts the same stack as
# ./test.sh (fresh local state, KAM stand-in, mock AI on loopback) and, beside
# it, the floor (bench/floor: the least a granulate must do on the same
# runtime and schema), prints one table with the granulator's figures as
# ratios to the floor's of the same run, and writes the same as JSON to
# bench/results/. Every load run is bounded in time and count; each figure is
# the median of REPS runs.
#   ./bench.sh          the benchmark (REPS=3, SECONDS_PER_RUN=4 by default)
#   ./bench.sh --soak   60 s soak at 32 connections (+ async executes) with injected faults (scripts/soak.sh)
#   ./bench.sh --async  jobs at model speed (scripts/bench_async.py): time to 202, events
#                       stream latency and interval, the Resource Manager's retry pattern
#                       against a ~60 s job (mock streaming at 100 tokens/s)
#   ./bench.sh fanout   parallel hierarchical generation (scripts/bench_fanout.py): course, novel and
#                       workflow at granularity 3-5 with `single` and `fanout` at the same token rate
#                       (speedup, token and cost ratios with and without prompt caching, quality,
#                       time to the first visible branch, how much the branches' titles and
#                       content repeat each other: scripts/bench_overlap.py),
#                       then `auto` at granularity 1-2; FANOUT_CASES=course:5,novel:5 runs only those
#   ./bench.sh chain    the chain's wall clock (scripts/bench_chain.py): granulator then Content
#                       Generator, driven as the Resource Manager drives them, the mock billing
#                       what it writes, at each rate of CHAIN_TPS (default "100 50" tokens/s; a
#                       chain stack of its own per rate); CHAIN_CASES=course:3,novel:3 (default
#                       course:3); CHAIN_BASELINE=DIR also runs every rate against DIR, a git
#                       worktree of another commit with its bundles and mock already built
#                       (before/after in one run; lines say "build": "baseline" or "this")
# Each mode starts only what it uses: the chain its two workers, the others the
# granulator's stack (start_stack).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/lib.sh
REPS=${REPS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
WORK=$(mktemp -d)
trap 'stop_started; rm -rf "$WORK"' EXIT

scripts/setup.sh

if [ "${1:-}" = "chain" ]; then
  sh scripts/build.sh >/dev/null
  build_generator >/dev/null
  cargo build -q -p mock-ai --release
  rc=0
  : > "$WORK/chain.out"
  for tps in ${CHAIN_TPS:-100 50}; do
    for build in ${CHAIN_BASELINE:+baseline} this; do
      dir=$PWD
      [ "$build" = baseline ] && dir=$CHAIN_BASELINE
      # The stack runs from the tree it benchmarks (its bundles, migrations, mock);
      # the script is this tree's, so both builds are measured alike.
      here=$PWD
      cd "$dir"
      if ! start_chain_stack "$WORK/chain-$build-$tps" "$tps" > "$WORK/chain-start.log"; then
        cat "$WORK/chain-start.log"; cd "$here"; stop_started; rc=1; continue
      fi
      cd "$here"
      CHAIN_TPS=$tps CHAIN_BUILD=$build python3 scripts/bench_chain.py | tee -a "$WORK/chain.out" || rc=1
      stop_started
    done
  done
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  jq -s --arg when "$stamp" --arg machine "$(nproc) cores, $(uname -m)" \
    '{when: $when, machine: $machine, section: "chain", results: .}' "$WORK/chain.out" > "bench/results/chain-$stamp.json" || rc=1
  echo "== written to bench/results/chain-$stamp.json"
  exit $rc
fi

sh scripts/build.sh >/dev/null
sh scripts/build.sh --floor >/dev/null
cargo build -q -p mock-ai -p loadgen --release
start_stack "$WORK"

if [ "${1:-}" = "--soak" ]; then
  # Not exec: the EXIT trap must still stop the stack.
  bash scripts/soak.sh 60 32 4 400
  exit $?
fi

if [ "${1:-}" = "fanout" ] || [ "${1:-}" = "--fanout" ]; then
  rc=0
  python3 scripts/bench_fanout.py | tee "$WORK/fanout.out" || rc=1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  jq -s --arg when "$stamp" '{when: $when, section: "fanout", results: .}' "$WORK/fanout.out" > "bench/results/fanout-$stamp.json" || rc=1
  echo "== written to bench/results/fanout-$stamp.json"
  exit $rc
fi

if [ "${1:-}" = "--async" ]; then
  rc=0
  python3 scripts/bench_async.py | tee "$WORK/async.out" || rc=1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  tail -n 1 "$WORK/async.out" | jq --arg when "$stamp" '{when: $when, section: "async"} + .' > "bench/results/async-$stamp.json" || rc=1
  echo "== written to bench/results/async-$stamp.json"
  exit $rc
fi

CLIENT_KEY='X-API-Key: dev-client-key'
# Each loadgen connection acts for a client of its own ({c}), so per-tenant
# rate limits and spend caps stay out of the figures.
WORKER=(--header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: bench' --header 'X-Client-ID: bench-{c}')
# Sections 2 and 3 act for clients of their own, each run under the per-minute
# rate limit (300 at the default tier): a 429 must never pass for a fast answer.
WORKER_CRITICAL=(--header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: bench' --header 'X-Client-ID: bench-critical-{c}')
# all_ok SECTION JSON: fail the bench on any non-200 answer.
all_ok() {
  local bad
  bad=$(jq '[.statuses | to_entries[] | select(.key != "200") | .value] | add // 0' <<<"$2")
  [ "$bad" = 0 ] || { echo "bench: $1 had non-200 answers: $(jq -c .statuses <<<"$2")"; exit 1; }
}
mock_config() { curl -sf -X POST "$MOCK_URL/__mock/config" -H 'Content-Type: application/json' -d "$1" >/dev/null; }
# load C PATH METHOD BODY HEADER...: one bounded run, JSON summary on stdout.
load() {
  local c=$1 path=$2 method=$3 body=$4; shift 4
  local args=(--url "${BASE:-$GRANULATOR_URL}$path" --method "$method" --concurrency "$c" --seconds "$SECONDS_PER_RUN" --max-requests "${MAX_REQUESTS:-5000}" "$@")
  [ -n "$body" ] && args+=(--body "$body")
  target/release/loadgen "${args[@]}"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# CPU seconds used so far by a process group's processes (wrangler, workerd).
cpu_seconds() {
  local tck total=0 pid
  tck=$(getconf CLK_TCK)
  for pid in $(ps -o pid= -g "$1"); do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "scale=3; $total / $tck" | bc
}
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc >/dev/null; }

EXEC_BODY='{"action":"granulate","input":{"topic":"Bench topic {n}","structureType":"course","granularityLevel":3}}'
results=$WORK/results.jsonl
: > "$results"

# The floor writes as many elements per depth as a granulate of EXEC_BODY stores.
mock_config '{}'
curl -sf "$GRANULATOR_URL/api/execute" -H 'Authorization: Bearer dev-shared-secret' -H 'X-Worker-ID: bench' \
  -H 'Content-Type: application/json' -d "${EXEC_BODY//\{n\}/floor sample}" >/dev/null
per_depth=$(sqlite3 -readonly -cmd '.timeout 10000' "$D1_FILE" \
  "SELECT json_group_array(n) FROM (SELECT count(*) AS n FROM structure_elements WHERE job_id = (SELECT max(job_id) FROM structure_elements) GROUP BY depth ORDER BY depth)")
FLOOR_BODY="{\"perDepth\": $per_depth, \"topic\": \"Bench topic {n}\"}"
start_floor "$WORK/floor"

echo "== 1. our work vs the floor (bench/floor, elements per depth $per_depth; median of $REPS runs of ${SECONDS_PER_RUN}s each)"
for c in 1 8 32; do
  for target in floor-root root templates floor-write execute; do
    rps=(); p50=(); p99=(); cpu=()
    pgid=$WORKER_PGID
    case $target in floor-*) pgid=$FLOOR_PGID ;; esac
    for ((r = 0; r < REPS; r++)); do
      before=$(cpu_seconds "$pgid")
      case $target in
        floor-root) out=$(BASE=$FLOOR_URL load "$c" / GET "") ;;
        floor-write) out=$(BASE=$FLOOR_URL load "$c" /write POST "$FLOOR_BODY") ;;
        root) out=$(load "$c" / GET "") ;;
        templates) out=$(load "$c" /api/templates GET "" --header "$CLIENT_KEY") ;;
        execute) out=$(load "$c" /api/execute POST "$EXEC_BODY" "${WORKER[@]}") ;;
      esac
      after=$(cpu_seconds "$pgid")
      rps+=("$(jq .rps <<<"$out")"); p50+=("$(jq .latencyMs.p50 <<<"$out")"); p99+=("$(jq .latencyMs.p99 <<<"$out")")
      cpu+=("$(echo "scale=6; ($after - $before) * 1000 / $(jq .requests <<<"$out")" | bc)")
      bad=$(jq '[.statuses | to_entries[] | select(.key != "200") | .value] | add // 0' <<<"$out")
      [ "$bad" = 0 ] || { echo "bench: $target at c=$c had non-200 answers: $(jq -c .statuses <<<"$out")"; exit 1; }
    done
    row=$(jq -n --arg t "$target" --argjson c "$c" --argjson rps "$(printf '%s\n' "${rps[@]}" | median)" \
      --argjson p50 "$(printf '%s\n' "${p50[@]}" | median)" --argjson p99 "$(printf '%s\n' "${p99[@]}" | median)" \
      --argjson cpu "$(printf '%s\n' "${cpu[@]}" | median)" \
      '{section: "floor", target: $t, concurrency: $c, rps: $rps, p50Ms: $p50, p99Ms: $p99, cpuMsPerRequest: $cpu}')
    echo "$row" >> "$results"
    jq -r '"  \(.target)\tc=\(.concurrency)\t\(.rps) req/s\tp50 \(.p50Ms) ms\tp99 \(.p99Ms) ms\tCPU \(.cpuMsPerRequest) ms/req"' <<<"$row"
  done
done
# The issue's figures: the granulator over the floor, in this run.
ratios=$(jq -s '
  . as $rows
  | def at($t; $c): $rows | map(select(.section == "floor" and .target == $t and .concurrency == $c))[0];
  def ratio($a; $b): if $b == 0 then null else ($a / $b * 100 | round / 100) end;
  {section: "ratios",
   rootRps: [1, 8, 32] | map({concurrency: ., ratio: ratio(at("root"; .).rps; at("floor-root"; .).rps)}),
   executeVsWriteRpsC8: ratio(at("execute"; 8).rps; at("floor-write"; 8).rps),
   executeVsWriteCpuC8: ratio(at("execute"; 8).cpuMsPerRequest; at("floor-write"; 8).cpuMsPerRequest)}' "$results")
echo "$ratios" | jq -c . >> "$results"
echo "== ratios to the floor (target: GET / >= 0.8x, execute >= 0.8x the floor's write at c=8, CPU per execute <= 1.5x)"
jq -r '"  GET / req/s: \(.rootRps | map("c=\(.concurrency) \(.ratio)x") | join(", "))\n  POST /api/execute vs floor write at c=8: \(.executeVsWriteRpsC8)x req/s, \(.executeVsWriteCpuC8)x CPU per request"' <<<"$ratios"

echo "== 2. scaling with outline size (c=1, mock answers instantly)"
for counts in "[3,2,1]" "[5,4,4]" "[12,6,6]"; do
  mock_config "{\"counts\": $counts}"
  size_client=(--header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: bench' --header "X-Client-ID: bench-size-${counts//[^0-9]/-}")
  out=$(MAX_REQUESTS=250 SECONDS_PER_RUN=$((SECONDS_PER_RUN * REPS)) load 1 /api/execute POST "$EXEC_BODY" "${size_client[@]}")
  all_ok "size $counts" "$out"
  sample=$(curl -s -D "$WORK/h" "$GRANULATOR_URL/api/execute" -H 'Authorization: Bearer dev-shared-secret' -H 'X-Worker-ID: bench' \
    -H 'Content-Type: application/json' -d "${EXEC_BODY//\{n\}/sample}")
  trips=$(awk 'tolower($1) == "x-d1-round-trips:" {print $2}' "$WORK/h" | tr -d '\r')
  row=$(jq -n --argjson out "$out" --argjson s "$sample" --argjson trips "$trips" \
    '{section: "size", elements: $s.output.summary.totalElements, storage: $s.metadata.storageTier, modelCalls: $s.metadata.attempts,
      p50Ms: $out.latencyMs.p50, p99Ms: $out.latencyMs.p99, d1RoundTrips: $trips}')
  echo "$row" >> "$results"
  jq -r '"  \(.elements) elements\t\(.storage)\tp50 \(.p50Ms) ms\tp99 \(.p99Ms) ms\tD1 round trips \(.d1RoundTrips)\tmodel calls \(.modelCalls)"' <<<"$row"
done
mock_config '{}'

echo "== 3. critical path (mock delays every call by 300 ms; granulate + validation level 2)"
mock_config '{"delayMs": 300}'
VAL_BODY='{"action":"granulate","input":{"topic":"Critical path {n}","structureType":"course","granularityLevel":3},"config":{"validationLevel":2}}'
out=$(target/release/loadgen --url "$GRANULATOR_URL/api/execute" --method POST "${WORKER_CRITICAL[@]}" --body "$VAL_BODY" --concurrency 1 --seconds 30 --max-requests $((REPS * 2 + 1)))
all_ok "critical path" "$out"
mock_config '{}'
row=$(jq -n --argjson out "$out" '{section: "critical", p50Ms: $out.latencyMs.p50, sequentialModelCalls: (($out.latencyMs.p50 / 300) * 100 | round / 100)}')
echo "$row" >> "$results"
jq -r '"  end to end p50 \(.p50Ms) ms = \(.sequentialModelCalls) x 300 ms"' <<<"$row"

echo "== 4. pure pipeline (native, cargo bench)"
cargo bench -q --bench pipeline 2>/dev/null | grep '^{' | while read -r line; do
  row=$(jq -c '{section: "pipeline"} + .' <<<"$line"); echo "$row" >> "$results"
  jq -r '"  \(.elements) elements\t\(.bytes) bytes\t\(.medianMicros) us/outline\t\(.microsPerElement) us/element"' <<<"$row"
done

echo "== 5. bundle (wrangler deploy --dry-run)"
node_modules/.bin/wrangler deploy --dry-run --outdir "$WORK/dist" >/dev/null 2>&1
wasm=$(find "$WORK/dist" -name '*.wasm' | head -n 1)
row=$(jq -n --argjson raw "$(stat -c %s "$wasm")" --argjson gz "$(gzip -9 -c "$wasm" | wc -c)" --argjson js "$(stat -c %s "$WORK/dist/index.js")" \
  '{section: "bundle", wasmBytes: $raw, wasmGzipBytes: $gz, jsGlueBytes: $js}')
echo "$row" >> "$results"
jq -r '"  wasm \(.wasmBytes) bytes (\(.wasmGzipBytes) gzip), JS glue \(.jsGlueBytes) bytes"' <<<"$row"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
jq -s --arg machine "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -m)" --arg when "$stamp" \
  '{when: $when, machine: $machine, results: .}' "$results" > "bench/results/$stamp.json"
echo "== written to bench/results/$stamp.json"
