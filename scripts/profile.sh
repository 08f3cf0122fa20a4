#!/usr/bin/env bash
# scripts/profile.sh [ROUTE]: a V8 CPU profile of the worker under load, and
# where each millisecond of a request goes. Builds a profiling bundle (the
# release build, wasm-opt keeping the function names: KIT_PROFILE=1), starts
# the same stack as ./test.sh with wrangler dev's inspector on a known port,
# warms the worker, then samples it (DevTools protocol Profiler.start/stop,
# 100 µs) while loadgen drives it, and prints the breakdown by category (our
# wasm by crate, its dependencies, wasm-bindgen/JS glue, the runtime's native
# work, GC) and by function, per request (scripts/profile.mjs).
#   scripts/profile.sh            POST /api/execute (./bench.sh's granulate body)
#   scripts/profile.sh root       GET /
# SECONDS_PER_RUN (default 8) and CONCURRENCY (default 8) bound the load.
# Writes bench/results/profile-<route>-<stamp>.{json,cpuprofile}; the
# .cpuprofile opens in Chrome DevTools. Afterwards `sh scripts/build.sh`
# restores the release bundle (its wasm-opt output is cached).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ROUTE=${1:-execute}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
CONCURRENCY=${CONCURRENCY:-8}
WORK=$(mktemp -d)
trap 'stop_started; rm -rf "$WORK"' EXIT

scripts/setup.sh >/dev/null
KIT_PROFILE=1 sh scripts/build.sh >/dev/null
cargo build -q -p mock-ai -p loadgen --release
KIT_INSPECTOR_PORT=$(free_port)
export KIT_INSPECTOR_PORT
start_stack "$WORK"
wait_http "http://127.0.0.1:$KIT_INSPECTOR_PORT/json" 30 "$WORKER_PGID" || { echo "profile: no inspector on $KIT_INSPECTOR_PORT"; exit 1; }

# The bench's callers: a worker acting for a client of its own per connection.
WORKER=(--header 'Authorization: Bearer dev-shared-secret' --header 'X-Worker-ID: profile' --header 'X-Client-ID: profile-{c}')
case "$ROUTE" in
  execute)
    LOAD=(--url "$GRANULATOR_URL/api/execute" --method POST "${WORKER[@]}"
      --body '{"action":"granulate","input":{"topic":"Profile topic {n}","structureType":"course","granularityLevel":3}}') ;;
  root) LOAD=(--url "$GRANULATOR_URL/" --method GET) ;;
  *) echo "usage: scripts/profile.sh [execute|root]" >&2; exit 2 ;;
esac
curl -sf -X POST "$MOCK_URL/__mock/config" -H 'Content-Type: application/json' -d '{}' >/dev/null
# Warm up (compiled code, D1's pages), outside the profile.
target/release/loadgen "${LOAD[@]}" --concurrency "$CONCURRENCY" --seconds 3 --max-requests 300 >/dev/null

mkdir -p bench/results
out="bench/results/profile-$ROUTE-$(date -u +%Y%m%dT%H%M%SZ).json"
node scripts/profile.mjs "$KIT_INSPECTOR_PORT" "$SECONDS_PER_RUN" "$out" -- \
  target/release/loadgen "${LOAD[@]}" --concurrency "$CONCURRENCY" --seconds "$SECONDS_PER_RUN" --max-requests 5000
