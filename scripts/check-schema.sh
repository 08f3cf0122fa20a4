#!/usr/bin/env bash
# The schema files and the migrations must build the same database: applied
# to fresh SQLite databases, their sqlite_schema and seeded templates match.
# Then wrangler applies the migrations to a fresh local D1, and a second
# apply must find nothing to do (kit_check_schema in the kit's scripts/kit.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
kit_check_schema "schema/granulator.sql schema/seed.sql" \
  "SELECT template_name, structure_type, template_schema, ai_prompt_template, validation_rules, structure_rules, complexity_level, target_audience, ai_provider_config, cost_optimization FROM granulation_templates ORDER BY id;"

# Migration 0010 (cancel) rebuilds granulation_jobs under enforced foreign keys,
# as D1 applies it: the children's rows survive, and the trigger keeps a
# cancelled job cancelled (a completion's batch fails whole).
db=$(mktemp -d)/m.db
{ echo "PRAGMA foreign_keys = ON;"; for f in migrations/*.sql; do if [ "$f" \< migrations/0010 ]; then cat "$f"; fi; done; } | sqlite3 "$db"
sqlite3 "$db" "PRAGMA foreign_keys = ON;
  INSERT INTO granulation_jobs (client_id, execution_id, topic, structure_type, granularity_level, target_audience, request_params, deadline_at, status, stage, storage_type, result_json)
    VALUES ('c', 'e1', 't', 'quiz', 1, 'a', '{}', 1, 'completed', 'done', 'inline', '{}'), ('c', 'e2', 't', 'quiz', 1, 'a', '{}', 1, 'processing', 'generating', NULL, NULL);
  INSERT INTO structure_elements (job_id, element_type, path, depth, sequence_order, title, content_type, generation_priority) VALUES (1, 'q', '1', 0, 1, 'x', 't', 1);
  INSERT INTO validation_results (job_id, client_id, validation_level, accuracy_percentage, threshold, passed, criteria) VALUES (1, 'c', 2, 80, 70, 1, '[]');
  INSERT INTO resource_consumption (job_id, client_id, provider, model, purpose, status, latency_ms, branch) VALUES (1, 'c', 'openai', 'm', 'granulate', 'success', 5, 'skeleton');"
{ echo "PRAGMA foreign_keys = ON; BEGIN;"; for f in migrations/*.sql; do if ! [ "$f" \< migrations/0010 ]; then cat "$f"; fi; done; echo "COMMIT;"; } | sqlite3 "$db" || { echo "schema: migrations from 0010 failed on a database with rows"; exit 1; }
kept=$(sqlite3 "$db" "SELECT (SELECT count(*) FROM structure_elements) || (SELECT count(*) FROM validation_results) || (SELECT job_id || branch FROM resource_consumption);")
[ "$kept" = "111skeleton" ] || { echo "schema: 0010 lost rows of the jobs table's children (got $kept)"; exit 1; }
sqlite3 "$db" "UPDATE granulation_jobs SET status = 'cancelled', stage = 'cancelled', cancelled_by = 'client:c', cancelled_at = 'now' WHERE id = 2;"
if sqlite3 "$db" "UPDATE granulation_jobs SET status = 'completed', storage_type = 'inline', result_json = '{}' WHERE id = 2;" 2>/dev/null; then
  echo "schema: a cancelled job could be completed"; exit 1
fi
[ "$(sqlite3 "$db" "SELECT status FROM granulation_jobs WHERE id = 2;")" = cancelled ] || { echo "schema: the cancelled job moved"; exit 1; }
echo "schema: 0010 keeps the children's rows under enforced foreign keys, and a cancelled job stays cancelled"
