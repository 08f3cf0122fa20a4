-- Runs that stop without ending (issue 21, items 7b and 7c): a run whose
-- worker went away is ended by the sweep (past its deadline) or taken over by
-- a request with its key or by the queue (no heartbeat for the stall period).
-- What it had streamed is booked then, as one estimated attempt.

-- The first provider, model and output price of the run's chain, fixed when
-- the run is claimed: what the tokens of a run that stopped are priced at.
ALTER TABLE granulation_jobs ADD COLUMN planned_provider TEXT CHECK (planned_provider IS NULL OR planned_provider IN ('openai', 'anthropic', 'workers_ai', 'offline'));
ALTER TABLE granulation_jobs ADD COLUMN planned_model TEXT;
ALTER TABLE granulation_jobs ADD COLUMN planned_output_price REAL CHECK (planned_output_price IS NULL OR planned_output_price >= 0);

-- Attempts gain the status `abandoned`: the estimate of what a run that
-- stopped had streamed (its last recorded output tokens at the planned
-- price; its prompt unknown, so a lower bound). A CHECK cannot be altered in
-- SQLite: the table is rebuilt (nothing references it).
CREATE TABLE resource_consumption_0009 (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER REFERENCES granulation_jobs (id) ON DELETE SET NULL,
  client_id TEXT NOT NULL,
  provider TEXT NOT NULL CHECK (provider IN ('openai', 'anthropic', 'workers_ai', 'offline')),
  model TEXT NOT NULL,
  purpose TEXT NOT NULL CHECK (purpose IN ('granulate', 'repair', 'validate')),
  status TEXT NOT NULL CHECK (status IN ('success', 'http_error', 'timeout', 'network_error', 'invalid_output', 'truncated', 'refused', 'budget_refused', 'abandoned')),
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
INSERT INTO resource_consumption_0009 (id, job_id, client_id, provider, model, purpose, status, http_status, latency_ms,
  tokens_input, tokens_output, tokens_cached, cost_usd, error, created_at, branch)
  SELECT id, job_id, client_id, provider, model, purpose, status, http_status, latency_ms,
  tokens_input, tokens_output, tokens_cached, cost_usd, error, created_at, branch FROM resource_consumption;
DROP TABLE resource_consumption;
ALTER TABLE resource_consumption_0009 RENAME TO resource_consumption;
CREATE INDEX idx_consumption_created ON resource_consumption (created_at);
CREATE INDEX idx_consumption_provider_created ON resource_consumption (provider, created_at);
CREATE INDEX idx_consumption_client_created ON resource_consumption (client_id, created_at);
CREATE INDEX idx_consumption_job ON resource_consumption (job_id);
