-- bitware-content-generator: this worker's own schema, as its migrations build it (the
-- schema layer of ./test.sh checks that the kit's migrations plus this file
-- and migrations/ agree). The job lifecycle's tables are bitware-kit's
-- (migrations/0001_kit_jobs.sql, a byte-identical copy of the kit's).
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
