#!/usr/bin/env bash
# The `dr` layer: a restore rehearsed on local state.
#   tests/dr.sh WORKDIR
# 1. A fresh stack; the ledger's jobs (tests/ledger.rs, every credential tier)
#    and an outline in every storage tier by every tier (tests/dr.rs fill);
#    every figure, job and outline read (tests/dr.rs snapshot).
# 2. The worker stopped; `wrangler d1 export DB --local` to a SQL file; the
#    local D1 destroyed; the file imported into a fresh database with
#    `wrangler d1 execute DB --local --file`; `wrangler d1 migrations apply`
#    must find nothing to do; the worker restarted on it: every answer
#    identical (tests/dr.rs compare), /health green.
# 3. KV and R2 destroyed as well: every outline still readable, those that
#    lived in KV or R2 rebuilt from D1's elements, equal to what storage held.
# Prints the rows exported and restored per table and the time each step took.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
work=${1:?usage: tests/dr.sh WORKDIR}
mkdir -p "$work"; work=$(cd "$work" && pwd)
trap stop_started EXIT
W=node_modules/.bin/wrangler
fail() { echo "dr: FAIL: $*"; [ -f "$work/wrangler.log" ] && tail -n 30 "$work/wrangler.log"; exit 1; }
ms() { date +%s%3N; }
tables() { sqlite3 "$1" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name"; }
counts() { local t; for t in $(tables "$1"); do echo "$t $(sqlite3 "$1" "SELECT count(*) FROM \"$t\"")"; done; }
health() { curl -s "$GRANULATOR_URL/health" | jq -r .status; }

start_stack "$work" || fail "the stack did not start"
cargo test --test ledger || fail "the ledger's jobs"
DR_PHASE=fill cargo test --test dr || fail "filling every storage tier"
DR_PHASE=snapshot DR_SNAPSHOT="$work/before.json" cargo test --test dr || fail "the snapshot"
stop_started
counts "$D1_FILE" > "$work/rows-before.txt"

t0=$(ms)
# `d1 export --local` has no --persist-to (wrangler 4.86): it reads the
# .wrangler/state beside its config file, so a copy of the config sits beside
# a link to the drill's state.
mkdir -p "$work/export/.wrangler"; cp wrangler.toml "$work/export/"; ln -sfn "$work/state" "$work/export/.wrangler/state"
$W d1 export DB --local -c "$work/export/wrangler.toml" --output "$work/dump.sql" >"$work/export.log" 2>&1 || { cat "$work/export.log"; fail "export"; }
t1=$(ms)
rm -rf "$work/state/v3/d1"
[ -z "$(d1_file "$work/state" 2>/dev/null)" ] || fail "the local D1 is still there"
t2=$(ms)
$W d1 execute DB --local --persist-to "$work/state" --file "$work/dump.sql" >"$work/import.log" 2>&1 || { tail -n 20 "$work/import.log"; fail "import"; }
t3=$(ms)
reapply=$(WRANGLER_LOG=log $W d1 migrations apply DB --local --persist-to "$work/state" 2>&1)
grep -qi "no migrations to apply" <<<"$reapply" || { echo "$reapply"; fail "the restored database is not at the latest migration"; }
counts "$(d1_file "$work/state")" > "$work/rows-after.txt"

echo "dr: rows per table (exported -> restored):"
LC_ALL=C join "$work/rows-before.txt" "$work/rows-after.txt" | awk '{printf "  %-24s %6d -> %6d%s\n", $1, $2, $3, ($2 == $3 ? "" : "   DIFFERENT")}'
diff -q "$work/rows-before.txt" "$work/rows-after.txt" >/dev/null || fail "rows differ after the restore"
total=$(awk '{s += $2} END {print s}' "$work/rows-after.txt")
inserts=$(grep -c '^INSERT INTO' "$work/dump.sql")
echo "dr: $total rows restored in $(wc -l < "$work/rows-after.txt") tables; the dump holds $inserts INSERTs (with sqlite_sequence's), $(wc -c < "$work/dump.sql") bytes"
echo "dr: export $((t1 - t0)) ms, import into a fresh database $((t3 - t2)) ms"

t4=$(ms)
start_stack "$work" || fail "the worker did not start on the restored state"
[ "$(health)" = healthy ] || fail "/health is $(health) after the restore"
t5=$(ms)
echo "dr: worker up and /health healthy $((t5 - t4)) ms after the import"
# The cron on the restored database: its sweeps run and it logs one alert line per signal.
curl -sf "$GRANULATOR_URL/__scheduled?cron=*/5+*+*+*+*" >/dev/null || fail "the scheduled handler"
for _ in $(seq 40); do grep -q '"event":"alert"' "$work/wrangler.log" && break; sleep 0.25; done
sleep 0.5
lines=$(grep -c '"event":"alert"' "$work/wrangler.log")
[ "$lines" -ge 9 ] || fail "the cron logged $lines alert lines, want one per signal"
echo "dr: the cron ran on the restored database and logged $lines alert lines, e.g.:"
grep -m 1 '"signal":"jobs_dead_lettered"' "$work/wrangler.log" | sed 's/^[^{]*/  /'

DR_PHASE=compare DR_SNAPSHOT="$work/before.json" cargo test --test dr -- --nocapture 2>&1 | tee "$work/compare.log" | grep -E '^dr:|panicked|test result' ; [ "${PIPESTATUS[0]}" -eq 0 ] || fail "answers differ after the D1 restore"
stop_started

# KV and R2 lost too: D1 alone must give back every outline.
kv_r2=$(du -sh "$work/state/v3/kv" "$work/state/v3/r2" 2>/dev/null | awk '{print $2 "=" $1}' | tr '\n' ' ')
rm -rf "$work/state/v3/kv" "$work/state/v3/r2"
start_stack "$work" || fail "the worker did not start without KV and R2"
[ "$(health)" = healthy ] || fail "/health is $(health) with empty KV and R2"
echo "dr: KV and R2 destroyed ($kv_r2)"
DR_PHASE=compare DR_STORAGE_LOST=1 DR_SNAPSHOT="$work/before.json" cargo test --test dr -- --nocapture 2>&1 | tee "$work/compare2.log" | grep -E '^dr:|panicked|test result'; [ "${PIPESTATUS[0]}" -eq 0 ] || fail "outlines lost with KV and R2"
echo "dr: passed (restore total: export + import + restart $((t1 - t0 + t3 - t2 + t5 - t4)) ms)"
