-- bitware-kit 0.3.0: the tables of the job lifecycle every worker shares
-- (bitware_kit::jobs). A worker includes them by copying this directory's
-- files, unchanged and first, into its own migrations directory
-- (scripts/new-worker.sh does; kit_check_migrations in scripts/kit.sh checks
-- the copies are identical). The Content Granulator predates them: its own
-- migrations made the same spend tables, and its job table
-- (granulation_jobs) carries every column of `jobs` below and its own.

-- One row per job: its idempotency key (client, execution id), its state,
-- the run that owns it (run_count), progress and heartbeat, usage, cost and
-- the result a repeated request replays. A worker's own columns live in its
-- own table, keyed by the job's id.
CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id TEXT NOT NULL CHECK (length(client_id) > 0),
  execution_id TEXT NOT NULL CHECK (length(execution_id) BETWEEN 1 AND 128),
  request_hash TEXT,
  request_params TEXT NOT NULL CHECK (json_valid(request_params)),
  status TEXT NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'completed', 'failed', 'cancelled')),
  -- The worker's own stage names.
  stage TEXT NOT NULL DEFAULT 'queued' CHECK (length(stage) BETWEEN 1 AND 32),
  run_count INTEGER NOT NULL DEFAULT 1 CHECK (run_count >= 1),
  run_mode TEXT NOT NULL DEFAULT 'inline' CHECK (run_mode IN ('inline', 'queue')),
  provider TEXT,
  model TEXT,
  tokens_input INTEGER NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
  tokens_output INTEGER NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
  tokens_cached INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),
  cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  result_json TEXT CHECK (result_json IS NULL OR json_valid(result_json)),
  processing_time_ms INTEGER,
  failure_code TEXT,
  failure_reason TEXT,
  -- Epoch ms after which a job still 'processing' is abandoned and may be reclaimed.
  deadline_at INTEGER NOT NULL,
  submitted_at_ms INTEGER,
  started_at_ms INTEGER,
  heartbeat_at_ms INTEGER,
  progress_tokens INTEGER NOT NULL DEFAULT 0 CHECK (progress_tokens >= 0),
  progress_elements INTEGER NOT NULL DEFAULT 0 CHECK (progress_elements >= 0),
  expected_tokens INTEGER,
  expected_elements INTEGER,
  progress_branches_done INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_done >= 0),
  progress_branches_total INTEGER NOT NULL DEFAULT 0 CHECK (progress_branches_total >= 0),
  -- What a run that stops without ending is booked at.
  planned_provider TEXT CHECK (planned_provider IS NULL OR planned_provider IN ('openai', 'anthropic', 'workers_ai', 'offline')),
  planned_model TEXT,
  planned_output_price REAL CHECK (planned_output_price IS NULL OR planned_output_price >= 0),
  cancelled_by TEXT CHECK (cancelled_by IS NULL OR length(cancelled_by) BETWEEN 1 AND 200),
  cancelled_at TEXT,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  completed_at TEXT,
  UNIQUE (client_id, execution_id),
  CHECK (status != 'completed' OR result_json IS NOT NULL),
  CHECK (status != 'failed' OR failure_reason IS NOT NULL),
  CHECK (status != 'cancelled' OR (cancelled_by IS NOT NULL AND cancelled_at IS NOT NULL))
);
CREATE INDEX idx_kit_jobs_client_created ON jobs (client_id, created_at);
CREATE INDEX idx_kit_jobs_status_created ON jobs (status, created_at);
-- A completed or cancelled job stays so (a racing completion's batch fails whole).
CREATE TRIGGER kit_job_final_states_are_final BEFORE UPDATE OF status ON jobs
WHEN OLD.status IN ('completed', 'cancelled') AND NEW.status != OLD.status
BEGIN
  SELECT RAISE(ABORT, 'job_already_final');
END;

-- One row per provider attempt, failed ones included: the source of every cost figure.
CREATE TABLE job_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
  client_id TEXT NOT NULL,
  provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'workers_ai', 'offline')),
  model TEXT NOT NULL,
  -- The worker's own call purposes.
  purpose TEXT NOT NULL CHECK (length(purpose) BETWEEN 1 AND 32),
  status TEXT NOT NULL CHECK (status IN ('success', 'http_error', 'timeout', 'network_error', 'invalid_output', 'truncated', 'refused', 'budget_refused', 'abandoned', 'cancelled')),
  http_status INTEGER,
  latency_ms INTEGER NOT NULL CHECK (latency_ms >= 0),
  tokens_input INTEGER NOT NULL DEFAULT 0 CHECK (tokens_input >= 0),
  tokens_output INTEGER NOT NULL DEFAULT 0 CHECK (tokens_output >= 0),
  tokens_cached INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),
  cost_usd REAL CHECK (cost_usd IS NULL OR cost_usd >= 0),
  error TEXT,
  branch TEXT CHECK (branch IS NULL OR length(branch) BETWEEN 1 AND 64),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_kit_attempts_job ON job_attempts (job_id);
CREATE INDEX idx_kit_attempts_client_created ON job_attempts (client_id, created_at);

-- Daily spend caps per tenant: a job reserves its worst-case cost before its
-- first model call and settles to the real cost when it ends, so concurrent
-- jobs can never spend past a tenant's cap for the UTC day.
CREATE TABLE tenant_daily_spend (
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  day TEXT NOT NULL CHECK (length(day) = 10),
  reserved_usd REAL NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
  spent_usd REAL NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  tier TEXT CHECK (tier IS NULL OR tier IN ('basic', 'standard', 'premium', 'enterprise')),
  PRIMARY KEY (tenant, day)
);
-- Open reservations, linked to the job they pay for once it is claimed; the
-- sweep releases those of runs that died after `expires_at` (epoch ms).
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

-- A lease per open events stream, counted against its tenant's allowance until it expires.
CREATE TABLE event_stream_leases (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL CHECK (length(tenant) > 0),
  expires_at INTEGER NOT NULL,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_event_stream_leases_tenant ON event_stream_leases (tenant, expires_at);
