-- bitware-content-generator: this worker's own schema, as its migrations build it (the
-- schema layer of ./test.sh checks that the kit's migrations plus this file
-- and migrations/ agree). The job lifecycle's tables are bitware-kit's
-- (migrations/0001_kit_jobs.sql, a byte-identical copy of the kit's).
CREATE TABLE IF NOT EXISTS generations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The tenant key (bitware_kit::auth::Tenant::key): client id, user:<id> or worker:<id>.
  tenant TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 600),
  -- The kit's job that made it.
  job_id INTEGER NOT NULL UNIQUE,
  -- The granulator's job whose outline it wrote.
  granulator_job_id INTEGER NOT NULL CHECK (granulator_job_id > 0),
  structure_type TEXT NOT NULL CHECK (structure_type IN ('course', 'quiz', 'novel', 'workflow', 'knowledge_map', 'learning_path')),
  elements INTEGER NOT NULL CHECK (elements >= 0),
  words INTEGER NOT NULL CHECK (words >= 0),
  target_words INTEGER NOT NULL CHECK (target_words >= 0),
  quality_score REAL NOT NULL CHECK (quality_score BETWEEN 0 AND 1),
  -- Where the content is kept beside the job's result: inline, kv or r2.
  storage_tier TEXT NOT NULL CHECK (storage_tier IN ('inline', 'kv', 'r2')),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_generations_tenant ON generations (tenant);
CREATE INDEX IF NOT EXISTS idx_generations_granulator_job ON generations (granulator_job_id);
