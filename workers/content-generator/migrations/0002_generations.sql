-- 0002: executions, one row per completed example job (written in the same
-- batch that completes it). 0001 is the kit's job lifecycle (jobs,
-- job_attempts, spend), copied unchanged from bitware-kit's migrations/.
CREATE TABLE IF NOT EXISTS executions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- The tenant key (bitware_kit::auth::Tenant::key): client id, user:<id> or worker:<id>.
  tenant TEXT NOT NULL CHECK (length(tenant) BETWEEN 1 AND 600),
  action TEXT NOT NULL CHECK (action IN ('example')),
  input_chars INTEGER NOT NULL CHECK (input_chars >= 0),
  -- The kit's job that made it.
  job_id INTEGER NOT NULL UNIQUE,
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_executions_tenant ON executions (tenant);
