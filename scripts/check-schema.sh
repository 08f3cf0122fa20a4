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
