-- Content Granulator: the whole schema, for reading. Kept identical to what migrations/ build (a test compares them).
-- Timestamps are ISO-8601 UTC text; money is USD (REAL, NULL = unknown); JSON columns are checked.

CREATE TABLE granulation_templates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  template_name TEXT NOT NULL CHECK (length(template_name) BETWEEN 3 AND 64),
  structure_type TEXT NOT NULL CHECK (structure_type IN ('course', 'quiz', 'novel', 'workflow', 'knowledge_map', 'learning_path')),
  description TEXT NOT NULL DEFAULT '',
  template_schema TEXT NOT NULL CHECK (json_valid(template_schema)),
  ai_prompt_template TEXT NOT NULL CHECK (length(ai_prompt_template) > 0),
  validation_rules TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(validation_rules)),
  structure_rules TEXT NOT NULL CHECK (json_valid(structure_rules)),
  complexity_level INTEGER NOT NULL DEFAULT 3 CHECK (complexity_level BETWEEN 1 AND 5),
  target_audience TEXT NOT NULL DEFAULT 'general audience',
  ai_provider_config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(ai_provider_config)),
  cost_optimization TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(cost_optimization)),
  usage_count INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  deleted_at TEXT
);
-- A name is unique among live templates; a soft-deleted one frees its name.
CREATE UNIQUE INDEX idx_templates_live_name ON granulation_templates (template_name) WHERE deleted_at IS NULL;
CREATE INDEX idx_templates_live_type ON granulation_templates (structure_type, template_name) WHERE deleted_at IS NULL;

-- Rebuilt by migrations/0010_job_cancel.sql (cancel, issue 23): every column since version 1 in one table
-- (the planned_* columns are migration 0009's).
CREATE TABLE "granulation_jobs" (
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
CREATE INDEX idx_jobs_client_created ON granulation_jobs (client_id, created_at);
CREATE INDEX idx_jobs_client_status_created ON granulation_jobs (client_id, status, created_at);
CREATE INDEX idx_jobs_status_created ON granulation_jobs (status, created_at);
CREATE INDEX idx_jobs_created ON granulation_jobs (created_at);
CREATE INDEX idx_jobs_template_created ON granulation_jobs (template_id, created_at);
-- A completed or cancelled job stays so (a racing completion's batch fails whole).
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

-- Daily per-template rollup, upserted once per finished job.
CREATE TABLE template_analytics (
  template_id INTEGER NOT NULL REFERENCES granulation_templates (id),
  date TEXT NOT NULL CHECK (date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
  jobs_total INTEGER NOT NULL DEFAULT 0 CHECK (jobs_total >= 0),
  jobs_completed INTEGER NOT NULL DEFAULT 0 CHECK (jobs_completed >= 0),
  jobs_failed INTEGER NOT NULL DEFAULT 0 CHECK (jobs_failed >= 0),
  validation_failures INTEGER NOT NULL DEFAULT 0 CHECK (validation_failures >= 0),
  quality_sum REAL NOT NULL DEFAULT 0,
  processing_ms_sum INTEGER NOT NULL DEFAULT 0,
  tokens_sum INTEGER NOT NULL DEFAULT 0,
  cost_usd_sum REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (template_id, date)
);

-- One row per provider attempt, failed ones included: the source of every cost figure.
-- Rebuilt by migrations/0009_stopped_runs.sql (status 'abandoned') and 0010_job_cancel.sql (status 'cancelled').
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

-- Daily spend caps per tenant (issue 10): a job reserves its worst-case cost
-- before its first model call and settles to the real cost when it ends, so
-- concurrent jobs can never spend past a tenant's cap for the UTC day.
CREATE TABLE tenant_daily_spend (
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  day TEXT NOT NULL CHECK (length(day) = 10),
  reserved_usd REAL NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
  spent_usd REAL NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (tenant, day)
);
-- Open reservations, linked to the job they pay for once it is claimed (its
-- completion or failure settles them in the same batch). A run that dies
-- before settling leaves its reservation here; the scheduled sweep releases
-- it after `expires_at` (epoch ms).
CREATE TABLE spend_reservations (
  id TEXT PRIMARY KEY,
  job_id INTEGER,
  tenant TEXT NOT NULL,
  day TEXT NOT NULL,
  amount_usd REAL NOT NULL CHECK (amount_usd >= 0),
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  FOREIGN KEY (tenant, day) REFERENCES tenant_daily_spend (tenant, day)
);
CREATE INDEX idx_spend_reservations_expiry ON spend_reservations (expires_at);
CREATE INDEX idx_spend_reservations_job ON spend_reservations (job_id);
-- Version 4 (migrations/0004_async_jobs.sql): async execution, request hash, progress.

-- Parallel hierarchical generation (issue 13): which part of a fanned-out outline an attempt wrote
-- ('skeleton', 'branch 3/8'; NULL for a single call, a repair, a review), and branches written so far.

-- Version 7 (migrations/0007_ops_signals.sql): what the alerts read that nothing else records.
CREATE TABLE request_counts (
  bucket TEXT PRIMARY KEY CHECK (length(bucket) = 18),
  requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
  server_errors INTEGER NOT NULL DEFAULT 0 CHECK (server_errors >= 0),
  kam_failures INTEGER NOT NULL DEFAULT 0 CHECK (kam_failures >= 0)
);
ALTER TABLE tenant_daily_spend ADD COLUMN tier TEXT CHECK (tier IS NULL OR tier IN ('basic', 'standard', 'premium', 'enterprise'));

-- Bounded event streams (migrations/0008_event_stream_leases.sql): a lease per
-- open events stream, counted against its tenant's allowance until it expires.
CREATE TABLE event_stream_leases (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_event_stream_leases_tenant ON event_stream_leases (tenant, expires_at);

-- Partial results (migrations/0011_partial_branches.sql): the final branches of a running
-- job, per run and position, until it completes or fails.
CREATE TABLE partial_branches (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES granulation_jobs (id) ON DELETE CASCADE,
  run INTEGER NOT NULL CHECK (run >= 1),
  position INTEGER NOT NULL CHECK (position >= 1),
  total INTEGER NOT NULL CHECK (total >= position),
  title TEXT NOT NULL,
  node TEXT NOT NULL CHECK (json_valid(node)),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  UNIQUE (job_id, run, position)
);
