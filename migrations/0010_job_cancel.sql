-- Cancel (issue 23): a job, and an attempt, may end `cancelled` (POST /api/jobs/{id}/cancel),
-- with who cancelled it (`cancelled_by`: the principal's id, never a secret)
-- and when. The status and stage CHECKs change, and SQLite changes a CHECK
-- only by rebuilding the table.
--
-- D1 enforces foreign keys in every migration, and DROP TABLE runs an implicit
-- DELETE that fires the children's ON DELETE actions even with deferred keys
-- (structure_elements and validation_results would be emptied, attempts
-- unlinked). So the children's rows are set aside, the children dropped and
-- created again after the new parent (as they were), and their rows put back;
-- `defer_foreign_keys` holds every key check to the end of the migration's
-- transaction. Created after their parent, the children also come after it
-- in an export (`wrangler d1 export` writes tables in creation order, and an
-- import cannot insert rows that reference a table not created yet).
--
-- A completed or cancelled job stays so: the trigger aborts any statement
-- that would move it (and with it the whole batch it is in). That is what
-- makes a cancel racing a completion end one way only: the completion's
-- batch (elements, attempts, analytics, spend) fails as a whole and the run
-- settles the job as cancelled instead, or the cancel finds it completed.
PRAGMA defer_foreign_keys = on;

CREATE TABLE keep_structure_elements AS SELECT * FROM structure_elements;
CREATE TABLE keep_validation_results AS SELECT * FROM validation_results;
CREATE TABLE keep_resource_consumption AS SELECT * FROM resource_consumption;
DROP TABLE structure_elements;
DROP TABLE validation_results;
DROP TABLE resource_consumption;

CREATE TABLE granulation_jobs_new (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id TEXT NOT NULL CHECK (length(client_id) > 0),
  -- The Resource Manager's X-Request-ID (or input.executionId): the idempotency key.
  execution_id TEXT NOT NULL CHECK (length(execution_id) BETWEEN 1 AND 128),
  topic TEXT NOT NULL CHECK (length(topic) BETWEEN 1 AND 500),
  structure_type TEXT NOT NULL CHECK (structure_type IN ('course', 'quiz', 'novel', 'workflow', 'knowledge_map', 'learning_path')),
  granularity_level INTEGER NOT NULL CHECK (granularity_level BETWEEN 1 AND 5),
  target_audience TEXT NOT NULL,
  template_id INTEGER REFERENCES granulation_templates (id),
  template_name TEXT,
  status TEXT NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
  stage TEXT NOT NULL DEFAULT 'generating' CHECK (stage IN ('generating', 'refining', 'validating', 'storing', 'done', 'failed', 'cancelled')),
  run_count INTEGER NOT NULL DEFAULT 1 CHECK (run_count >= 1),
  request_params TEXT NOT NULL CHECK (json_valid(request_params)),
  provider TEXT,
  model TEXT,
  tokens_input INTEGER NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
  tokens_output INTEGER NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
  tokens_cached INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),
  cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  quality_score REAL CHECK (quality_score IS NULL OR quality_score BETWEEN 0 AND 1),
  validation_passed INTEGER CHECK (validation_passed IS NULL OR validation_passed IN (0, 1)),
  total_elements INTEGER CHECK (total_elements IS NULL OR total_elements >= 0),
  estimated_total_words INTEGER,
  content_generation_metadata TEXT CHECK (content_generation_metadata IS NULL OR json_valid(content_generation_metadata)),
  deliverable_specs TEXT CHECK (deliverable_specs IS NULL OR json_valid(deliverable_specs)),
  structure_root TEXT CHECK (structure_root IS NULL OR json_valid(structure_root)),
  storage_type TEXT CHECK (storage_type IS NULL OR storage_type IN ('inline', 'kv', 'r2')),
  storage_location TEXT,
  structure_bytes INTEGER,
  -- The execute response of a completed job, replayed as-is for a repeated X-Request-ID.
  result_json TEXT CHECK (result_json IS NULL OR json_valid(result_json)),
  processing_time_ms INTEGER,
  failure_code TEXT,
  failure_reason TEXT,
  -- Epoch ms after which a job still 'processing' is abandoned and may be reclaimed.
  deadline_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  -- When the job ended: completed, or (cancelled) when its run stopped and settled.
  completed_at TEXT,
  request_hash TEXT,
  run_mode TEXT NOT NULL DEFAULT 'inline' CHECK (run_mode IN ('inline', 'queue')),
  submitted_at_ms INTEGER,
  started_at_ms INTEGER,
  heartbeat_at_ms INTEGER,
  progress_tokens INTEGER NOT NULL DEFAULT 0 CHECK (progress_tokens >= 0),
  progress_elements INTEGER NOT NULL DEFAULT 0 CHECK (progress_elements >= 0),
  expected_tokens INTEGER,
  expected_elements INTEGER,
  progress_branches_done INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_done >= 0),
  progress_branches_total INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_total >= 0),
  -- What a run that stops without ending is booked at (migration 0009).
  planned_provider TEXT CHECK (planned_provider IS NULL OR planned_provider IN ('openai', 'anthropic', 'workers_ai', 'offline')),
  planned_model TEXT,
  planned_output_price REAL CHECK (planned_output_price IS NULL OR planned_output_price >= 0),
  -- Who cancelled the job (a client, user, admin or worker id) and when.
  cancelled_by TEXT CHECK (cancelled_by IS NULL OR length(cancelled_by) BETWEEN 1 AND 200),
  cancelled_at TEXT,
  UNIQUE (client_id, execution_id),
  CHECK (status != 'completed' OR (storage_type IS NOT NULL AND result_json IS NOT NULL)),
  CHECK (status != 'failed' OR failure_reason IS NOT NULL),
  CHECK (status != 'cancelled' OR (cancelled_by IS NOT NULL AND cancelled_at IS NOT NULL))
);

INSERT INTO granulation_jobs_new (id, client_id, execution_id, topic, structure_type, granularity_level, target_audience,
  template_id, template_name, status, stage, run_count, request_params, provider, model, tokens_input, tokens_output,
  tokens_cached, cost_usd, quality_score, validation_passed, total_elements, estimated_total_words,
  content_generation_metadata, deliverable_specs, structure_root, storage_type, storage_location, structure_bytes,
  result_json, processing_time_ms, failure_code, failure_reason, deadline_at, created_at, updated_at, completed_at,
  request_hash, run_mode, submitted_at_ms, started_at_ms, heartbeat_at_ms, progress_tokens, progress_elements,
  expected_tokens, expected_elements, progress_branches_done, progress_branches_total,
  planned_provider, planned_model, planned_output_price)
SELECT id, client_id, execution_id, topic, structure_type, granularity_level, target_audience,
  template_id, template_name, status, stage, run_count, request_params, provider, model, tokens_input, tokens_output,
  tokens_cached, cost_usd, quality_score, validation_passed, total_elements, estimated_total_words,
  content_generation_metadata, deliverable_specs, structure_root, storage_type, storage_location, structure_bytes,
  result_json, processing_time_ms, failure_code, failure_reason, deadline_at, created_at, updated_at, completed_at,
  request_hash, run_mode, submitted_at_ms, started_at_ms, heartbeat_at_ms, progress_tokens, progress_elements,
  expected_tokens, expected_elements, progress_branches_done, progress_branches_total,
  planned_provider, planned_model, planned_output_price
FROM granulation_jobs;

DROP TABLE granulation_jobs;
ALTER TABLE granulation_jobs_new RENAME TO granulation_jobs;
CREATE INDEX idx_jobs_client_created ON granulation_jobs (client_id, created_at);
CREATE INDEX idx_jobs_client_status_created ON granulation_jobs (client_id, status, created_at);
CREATE INDEX idx_jobs_status_created ON granulation_jobs (status, created_at);
CREATE INDEX idx_jobs_created ON granulation_jobs (created_at);
CREATE INDEX idx_jobs_template_created ON granulation_jobs (template_id, created_at);
CREATE TRIGGER job_final_states_are_final BEFORE UPDATE OF status ON granulation_jobs
WHEN OLD.status IN ('completed', 'cancelled') AND NEW.status != OLD.status
BEGIN
  SELECT RAISE(ABORT, 'job_already_final');
END;

CREATE TABLE structure_elements (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES granulation_jobs (id) ON DELETE CASCADE,
  element_type TEXT NOT NULL,
  parent_id INTEGER REFERENCES structure_elements (id),
  -- "2.1.3": position in the hierarchy, unique per job; parents are resolved through it.
  path TEXT NOT NULL,
  depth INTEGER NOT NULL CHECK (depth BETWEEN 0 AND 2),
  sequence_order INTEGER NOT NULL CHECK (sequence_order >= 1),
  title TEXT NOT NULL,
  content_outline TEXT NOT NULL DEFAULT '',
  target_word_count INTEGER NOT NULL DEFAULT 0 CHECK (target_word_count >= 0),
  content_type TEXT NOT NULL,
  generation_priority INTEGER NOT NULL CHECK (generation_priority BETWEEN 1 AND 3),
  content_tone TEXT NOT NULL DEFAULT '',
  key_points TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(key_points)),
  metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  CHECK ((depth = 0) = (parent_id IS NULL)),
  UNIQUE (job_id, path)
);
CREATE INDEX idx_elements_parent ON structure_elements (parent_id);

CREATE TABLE validation_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES granulation_jobs (id) ON DELETE CASCADE,
  client_id TEXT NOT NULL,
  validation_level INTEGER NOT NULL CHECK (validation_level BETWEEN 1 AND 3),
  accuracy_percentage REAL NOT NULL CHECK (accuracy_percentage BETWEEN 0 AND 100),
  threshold REAL NOT NULL CHECK (threshold BETWEEN 0 AND 100),
  passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
  -- [{"criterion", "score", "reason"}]
  criteria TEXT NOT NULL CHECK (json_valid(criteria)),
  issues TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(issues)),
  ai_feedback TEXT,
  tokens_input INTEGER NOT NULL DEFAULT 0,
  tokens_output INTEGER NOT NULL DEFAULT 0,
  cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_validation_job_created ON validation_results (job_id, created_at);
CREATE INDEX idx_validation_client_created ON validation_results (client_id, created_at);

-- Attempts get the status 'cancelled'.
CREATE TABLE resource_consumption (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER REFERENCES granulation_jobs (id) ON DELETE SET NULL,
  client_id TEXT NOT NULL,
  provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'workers_ai', 'offline')),
  model TEXT NOT NULL,
  purpose TEXT NOT NULL CHECK (purpose IN ('granulate', 'repair', 'validate')),
  -- 'cancelled': a call dropped mid-stream by a cancel (usage: what had streamed);
  -- 'abandoned': the estimate of what a run that stopped had streamed (0009).
  status TEXT NOT NULL CHECK (status IN ('success', 'http_error', 'timeout', 'network_error', 'invalid_output', 'truncated', 'refused', 'budget_refused', 'abandoned', 'cancelled')),
  http_status INTEGER,
  latency_ms INTEGER NOT NULL CHECK (latency_ms >= 0),
  tokens_input INTEGER NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
  tokens_output INTEGER NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
  tokens_cached INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),
  cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  error TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  branch TEXT CHECK (branch IS NULL OR length(branch) BETWEEN 1 AND 64)
);
CREATE INDEX idx_consumption_created ON resource_consumption (created_at);
CREATE INDEX idx_consumption_provider_created ON resource_consumption (provider, created_at);
CREATE INDEX idx_consumption_client_created ON resource_consumption (client_id, created_at);
CREATE INDEX idx_consumption_job ON resource_consumption (job_id);

INSERT INTO structure_elements SELECT * FROM keep_structure_elements;
INSERT INTO validation_results SELECT * FROM keep_validation_results;
INSERT INTO resource_consumption (id, job_id, client_id, provider, model, purpose, status, http_status, latency_ms,
  tokens_input, tokens_output, tokens_cached, cost_usd, error, created_at, branch)
SELECT id, job_id, client_id, provider, model, purpose, status, http_status, latency_ms,
  tokens_input, tokens_output, tokens_cached, cost_usd, error, created_at, branch
FROM keep_resource_consumption;
DROP TABLE keep_structure_elements;
DROP TABLE keep_validation_results;
DROP TABLE keep_resource_consumption;
