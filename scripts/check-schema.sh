#!/usr/bin/env bash
# The schema files and the migrations must build the same database: applied
# to fresh SQLite databases, their sqlite_schema and seeded templates match.
# Then wrangler applies the migrations to a fresh local D1, and a second
# apply must find nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

cat schema/granulator.sql schema/seed.sql | sqlite3 "$tmp/from-schema.db"
cat migrations/*.sql | sqlite3 "$tmp/from-migrations.db"
dump() {
  sqlite3 "$1" "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name;" \
               "SELECT template_name, structure_type, template_schema, ai_prompt_template, validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization FROM granulation_templates ORDER BY id;"
}
if ! diff <(dump "$tmp/from-schema.db") <(dump "$tmp/from-migrations.db"); then
  echo "schema: schema/*.sql and migrations/ have drifted apart (diff above)"; exit 1
fi
echo "schema: schema/*.sql and migrations/ build identical databases ($(dump "$tmp/from-schema.db" | wc -l) lines compared)"

first=$(WRANGLER_LOG=log node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$tmp/d1" 2>&1)
echo "$first" | grep -q "0002_seed_templates.sql" || { echo "$first"; echo "schema: migrations did not apply"; exit 1; }
second=$(WRANGLER_LOG=log node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to "$tmp/d1" 2>&1)
echo "$second" | grep -qi "no migrations to apply" || { echo "$second"; echo "schema: re-applying migrations was not a no-op"; exit 1; }
echo "schema: migrations apply to an empty local D1 and re-apply as a no-op"
